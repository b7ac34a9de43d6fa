// Package runner is the runner worker: it makes the running processes of
// every app match what the event log says they should be. It starts a
// runner for each revision being deployed and reports it Deployed or
// Failed, scales the runners of the current revision with the demand the
// gateway sees (fal's min/max concurrency, buffer, max_multiplexing and
// keep_alive, down to zero), replaces runners on set-rev and rollouts, and
// reports every runner change
// back as a command so that it lands in the event log. It tells the
// gateway which runners are ready, and stops a runner gracefully only once
// the gateway has no request of it left in flight.
//
// A deploy's runner starts without holding the app's pass: a set-rev, a
// scale or a crash meanwhile is acted on at once (an emergency rollback
// does not wait for a deploy's startup timeout), and the deploy is settled
// on the pass after its runner listens or fails.
//
// The worker is level-triggered: an event only wakes the app it belongs to,
// and each pass compares the app's state, folded from its history, with the
// processes actually running. A missed or repeated event therefore changes
// nothing, and after a restart the same pass brings the runners back: those
// that were serving (a runner being stopped, or the new runner a graceful
// rollout was starting next to the one it replaces, is not), each naming
// the lost runner it replaces. A rollout the restart cut short is completed
// by that pass, which replaces those runners for it (see docs/bus.md,
// rollout.completed, for how it then counts).
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/events"
	"github.com/revline/revline/workers/gateway"
	"github.com/revline/revline/workers/process"
)

// ConsumerName is the worker's durable consumer on the event stream. It is
// a stable name: replicas of the worker on one host would share it.
const ConsumerName = "revline-runner-worker"

// Actor is the actor of the commands the worker sends.
const Actor = "worker:runner"

// CommandExecutor sends a command and waits for its outcome.
type CommandExecutor interface {
	Execute(ctx context.Context, cmd events.CommandEnvelope) (events.Outcome, error)
}

// Traffic is what the worker needs of the data plane (the gateway): it
// publishes each app's route and ready runners, and asks before stopping a
// runner, so that a graceful stop waits for the runner's last request and
// a forced one knows exactly what it cut.
type Traffic interface {
	SetRoute(app string, r gateway.Route)
	AddRunner(app string, b gateway.Backend)
	// Drain stops new requests to the runner and waits until its in-flight
	// requests have ended or ctx ends; it returns how many are left.
	Drain(ctx context.Context, app, runnerID string) (remaining int)
	// Drop cuts the runner's in-flight requests and returns how many failed.
	Drop(app, runnerID string) (dropped int)
	RemoveRunner(app, runnerID string)
	// Load is the app's live demand, which sets how many runners it needs.
	Load(app string) gateway.Load
	// OnDemand registers what to call when an app is short of runners.
	OnDemand(fn func(app string))
	// Expect announces an app whose route comes with its first pass.
	Expect(app string)
	// BackOff says that no runner of the app starts before until.
	BackOff(app string, until time.Time)
}

// SecretReader returns the value of one version of an app's secret.
type SecretReader interface {
	Get(ctx context.Context, app, name string, version uint64) ([]byte, error)
}

// Config configures a Worker.
type Config struct {
	// NATSURL is required: the event subscriber opens its own connection.
	NATSURL     string
	NATSOptions []nats.Option
	// JetStream is required (to list the apps that have events).
	JetStream jetstream.JetStream
	// Store is required: the worker folds each app's history from it.
	Store events.AppLoader
	// Snapshots, optional, holds the snapshots the command processor
	// writes: the first load of an app reads its snapshot and the events
	// after it instead of its whole history.
	Snapshots *events.SnapshotStore
	// Commands is required: where runner reports and deploy outcomes go.
	Commands CommandExecutor
	// Supervisor is required: it runs the processes.
	Supervisor *process.Supervisor
	// Traffic is required: the gateway that routes requests to runners.
	Traffic Traffic
	// Secrets, optional, holds the values of the apps' secrets (see
	// package secrets). Without it, a runner of an app that has secrets
	// does not start.
	Secrets SecretReader
	// StopGrace is how long a runner has to exit after SIGTERM, once its
	// requests have ended, before it is killed; default 10s.
	StopGrace time.Duration
	// ShutdownGrace bounds how long runners get to stop when the worker
	// stops; default 10s.
	ShutdownGrace time.Duration
	// CrashBackoff is the first delay before restarting a runner that
	// crashed or did not become ready; it doubles up to 30s. Default 1s.
	CrashBackoff time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 10 * time.Second
	}
	if c.StopGrace == 0 {
		c.StopGrace = 10 * time.Second
	}
	if c.CrashBackoff == 0 {
		c.CrashBackoff = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports missing required settings.
func (c Config) Validate() error {
	var errs []error
	if c.NATSURL == "" {
		errs = append(errs, errors.New("runner worker: NATSURL is required"))
	}
	if c.JetStream == nil {
		errs = append(errs, errors.New("runner worker: JetStream is required"))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("runner worker: Store is required"))
	}
	if c.Commands == nil {
		errs = append(errs, errors.New("runner worker: Commands is required"))
	}
	if c.Supervisor == nil {
		errs = append(errs, errors.New("runner worker: Supervisor is required"))
	}
	if c.Traffic == nil {
		errs = append(errs, errors.New("runner worker: Traffic is required"))
	}
	return errors.Join(errs...)
}

// Worker runs the runners of every app. Create it with New, run it with Run.
type Worker struct {
	cfg Config

	mu   sync.Mutex
	apps map[string]*appWorker
	wg   sync.WaitGroup
	ctx  context.Context // the Run context, for app loops started later
}

// New checks cfg and returns a Worker.
func New(cfg Config) (*Worker, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Worker{cfg: cfg, apps: map[string]*appWorker{}}, nil
}

// Run sweeps runners orphaned by a previous run, wakes every app that has
// events, follows the event stream until ctx ends, then stops every runner.
func (w *Worker) Run(ctx context.Context) error {
	if n, err := w.cfg.Supervisor.SweepOrphans(); err != nil {
		w.cfg.Logger.Warn("sweeping orphaned runners", "error", err)
	} else if n > 0 {
		w.cfg.Logger.Info("killed runners orphaned by a previous run", "count", n)
	}
	// The app loops stop when ctx ends, and also when following the event
	// stream fails: the worker then reports the failure instead of going
	// on deaf to new events.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w.mu.Lock()
	w.ctx = ctx
	w.mu.Unlock()
	apps, err := w.knownApps(ctx)
	if err != nil {
		return err
	}
	w.cfg.Traffic.OnDemand(w.Wake)
	for _, app := range apps {
		w.cfg.Traffic.Expect(app)
		w.Wake(app)
	}
	err = w.follow(ctx)
	cancel()
	w.wg.Wait()
	w.stopAll()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// knownApps lists the apps that have events, from the stream's subjects.
func (w *Worker) knownApps(ctx context.Context) ([]string, error) {
	stream, err := w.cfg.JetStream.Stream(ctx, events.EventStreamName)
	if err != nil {
		return nil, fmt.Errorf("runner worker: event stream: %w", err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(events.EventSubjectPrefix+">"))
	if err != nil {
		return nil, fmt.Errorf("runner worker: list apps: %w", err)
	}
	seen := map[string]bool{}
	var apps []string
	for subject := range info.State.Subjects {
		app, _, _ := strings.Cut(strings.TrimPrefix(subject, events.EventSubjectPrefix), ".")
		if !seen[app] {
			seen[app] = true
			apps = append(apps, app)
		}
	}
	return apps, nil
}

// InFlight returns how many requests each runner of app is handling, as
// the gateway sees it (see queryapi.LiveState).
func (w *Worker) InFlight(app string) map[string]int {
	return w.cfg.Traffic.Load(app).InFlight
}

// KeepAliveExpiries returns, by runner id, when the app's idle runners
// above the desired count will be stopped for keep_alive if they stay idle
// (see queryapi.LiveState).
func (w *Worker) KeepAliveExpiries(app string) map[string]time.Time {
	w.mu.Lock()
	a, ok := w.apps[app]
	w.mu.Unlock()
	if !ok {
		return nil
	}
	return a.keepAliveExpiries()
}

// Wake asks the app's loop for a reconcile pass, starting the loop if needed.
func (w *Worker) Wake(app string) {
	if events.ValidateAppName(app) != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx == nil || w.ctx.Err() != nil {
		return
	}
	a, ok := w.apps[app]
	if !ok {
		a = newAppWorker(app, w.cfg)
		w.apps[app] = a
		w.wg.Go(func() { a.loop(w.ctx) })
	}
	a.wake()
}

// stopAll drains every runner on shutdown and reports it terminated, so
// that the log does not show runners that no longer exist. The command
// processor still runs at this point; the caller stops it afterwards.
func (w *Worker) stopAll() {
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.ShutdownGrace+reportTimeout)
	defer cancel()
	var wg sync.WaitGroup
	w.mu.Lock()
	for _, a := range w.apps {
		for _, r := range a.selectRunners(func(*runner) bool { return true }) {
			wg.Go(func() {
				if err := a.drain(ctx, r, w.cfg.ShutdownGrace/2, "server shutting down"); err != nil {
					a.log.Warn("stopping runner on shutdown", "runner", r.proc.RunnerID(), "error", err)
				}
			})
		}
	}
	// Drains started before the shutdown may report their end too, within
	// the shutdown's grace; whatever still runs then is stopped below.
	for _, a := range w.apps {
		wg.Go(a.drains.Wait)
		// Runners waiting out a crash back-off have no process to stop.
		for id, revisionID := range a.restarting {
			wg.Go(func() {
				if _, err := a.send(ctx, events.ReportRunner{RunnerID: id, RevisionID: revisionID, State: events.RunnerTerminated, Reason: "server shutting down"}, id); err != nil {
					a.log.Warn("reporting a crashed runner on shutdown", "runner", id, "error", err)
				}
			})
		}
	}
	w.mu.Unlock()
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
	}
	w.cfg.Supervisor.StopAll(ctx, w.cfg.ShutdownGrace) // anything left
}
