//go:build linux

package runner_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/events/embedded/embeddedtest"
	"github.com/revline/revline/events/secrets"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/workers/gateway"
	"github.com/revline/revline/workers/process"
	"github.com/revline/revline/workers/processor"
	"github.com/revline/revline/workers/runner"
	"github.com/revline/revline/workers/runner/runnertest"
)

// runnerCommand starts the test runner (echo-runner), built once in
// TestMain: an HTTP server on $PORT that exits 0 on SIGTERM.
var runnerCommand string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "revline-runner-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin, err := runnertest.BuildEchoRunner(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	runnerCommand = "'" + bin + "'"
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

var (
	alice   = events.Metadata{Actor: "alice"}
	discard = slog.New(slog.DiscardHandler)
)

// stack is the control plane without the CLI: an embedded NATS server, the
// bus streams, the event store and a command processor, plus runner
// workers started on one supervisor state directory.
type stack struct {
	srv      *server.Server
	js       jetstream.JetStream
	store    *events.JetStreamStore
	client   *commandbus.Client
	stateDir string
	// gw is the gateway every worker of the stack feeds, served on gwURL.
	gw    *gateway.Gateway
	gwURL string
	// secrets holds the apps' secret values.
	secrets *secrets.Store
	// snapshots is where workers look for apps' snapshots (the stack's
	// processor writes none).
	snapshots *events.SnapshotStore
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newStack(t *testing.T) *stack {
	t.Helper()
	return newStackWithGateway(t, gateway.Config{})
}

// newStackWithGateway is newStack with a gateway configured by gwConfig.
func newStackWithGateway(t *testing.T, gwConfig gateway.Config) *stack {
	t.Helper()
	srv := embeddedtest.Start(t)
	_, js := embeddedtest.Connect(t, srv)
	ctx := testContext(t)
	if err := commandbus.EnsureStreams(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	store, err := events.NewJetStreamStore(ctx, events.JetStreamStoreConfig{JetStream: js, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	proc, err := processor.New(processor.Config{Verifier: testsupport.TrustActor{}, NATSURL: srv.ClientURL(), JetStream: js, Store: store, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	procCtx, stopProc := context.WithCancel(context.Background())
	procDone := make(chan error, 1)
	go func() { procDone <- proc.Run(procCtx) }()
	// Cleanups run last-registered first: every worker (registered later)
	// stops before the processor, which takes its last reports.
	t.Cleanup(func() {
		stopProc()
		if err := <-procDone; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("processor: %v", err)
		}
	})
	gwConfig.Logger = discard
	gw, err := gateway.New(gwConfig)
	if err != nil {
		t.Fatal(err)
	}
	gwServer := httptest.NewServer(gw)
	t.Cleanup(gwServer.Close)
	secretStore, err := secrets.Ensure(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	snapshots, err := events.EnsureSnapshotStore(ctx, js, 1, discard)
	if err != nil {
		t.Fatal(err)
	}
	return &stack{srv: srv, js: js, store: store, client: commandbus.NewClient(js), stateDir: t.TempDir(), gw: gw, gwURL: gwServer.URL, secrets: secretStore, snapshots: snapshots}
}

// startWorker runs a runner worker with a fresh supervisor on the stack's
// state directory. The returned stop cancels it and waits until it has
// drained its runners; it also runs when the test ends.
func (s *stack) startWorker(t *testing.T) (stop func()) {
	t.Helper()
	_, stop = s.runWorker(t, s.client, true)
	return stop
}

// startCrashableWorker runs a runner worker whose commands go through a
// NATS connection of its own. crash stops it as kill -9 stops serve: the
// connection goes first, so nothing the worker does from then on reaches
// the log (its runners' processes stop, but the log still believes in
// them), and a worker started next finds the log as the crash left it.
func (s *stack) startCrashableWorker(t *testing.T) (crash func()) {
	t.Helper()
	nc, js := embeddedtest.Connect(t, s.srv)
	_, stop := s.runWorker(t, commandbus.NewClient(js), false)
	return func() {
		nc.Close()
		stop()
	}
}

// runWorker runs a runner worker on the stack's state directory that
// sends its commands to commands; stop cancels it and waits until it has
// stopped its runners (failing the test if it returns an error and
// checkErr is set). stop also runs when the test ends.
func (s *stack) runWorker(t *testing.T, commands runner.CommandExecutor, checkErr bool) (w *runner.Worker, stop func()) {
	t.Helper()
	sup, err := process.NewSupervisor(process.Config{StateDir: s.stateDir, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	w, err = runner.New(runner.Config{
		NATSURL: s.srv.ClientURL(), JetStream: s.js, Store: s.store, Snapshots: s.snapshots, Commands: commands, Supervisor: sup, Traffic: s.gw, Secrets: s.secrets,
		CrashBackoff: 50 * time.Millisecond, ShutdownGrace: 2 * time.Second, StopGrace: time.Second, Logger: discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && checkErr {
				t.Errorf("runner worker: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return w, stop
}

// execute sends a command for app and fails the test unless it is accepted.
func (s *stack) execute(t *testing.T, app string, cmd events.Command) events.Outcome {
	t.Helper()
	o, err := s.client.Execute(testContext(t), events.NewCommand(app, cmd, alice))
	if err != nil {
		t.Fatalf("%s: %v", cmd.CommandType(), err)
	}
	if o.Status != events.OutcomeAccepted {
		t.Fatalf("%s: %s %s: %s", cmd.CommandType(), o.Status, o.Code, o.Message)
	}
	return o
}

// eventLog collects one app's events as the store delivers them.
type eventLog struct {
	mu      sync.Mutex
	envs    []events.Envelope
	err     error
	changed chan struct{} // closed and replaced on every change
}

// follow collects app's events, from the beginning, until the test ends.
func (s *stack) follow(t *testing.T, app string) *eventLog {
	t.Helper()
	l := &eventLog{changed: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := s.store.FollowApp(ctx, app, 1, func(env events.Envelope, decodeErr error) error {
			if decodeErr != nil {
				return decodeErr
			}
			l.mu.Lock()
			l.envs = append(l.envs, env)
			close(l.changed)
			l.changed = make(chan struct{})
			l.mu.Unlock()
			return nil
		})
		l.mu.Lock()
		l.err = err
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		checkRunnersEndOnce(t, l.snapshot())
	})
	return l
}

// checkRunnersEndOnce fails the test if a runner was reported terminated
// twice, or reported at all after it was terminated.
func checkRunnersEndOnce(t *testing.T, envs []events.Envelope) {
	t.Helper()
	ended := map[string]uint64{}
	for _, env := range envs {
		ev, ok := runnerEvent(env)
		if !ok {
			continue
		}
		if at, done := ended[ev.RunnerID]; done {
			t.Errorf("runner %s reported %s (%q) at %d after it was terminated at %d", ev.RunnerID, ev.State, ev.Reason, env.Sequence, at)
		}
		if ev.State == events.RunnerTerminated {
			ended[ev.RunnerID] = env.Sequence
		}
	}
}

// snapshot returns the events collected so far.
func (l *eventLog) snapshot() []events.Envelope {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.envs)
}

// waitUntil waits until cond holds on the events collected so far and
// returns them.
func (l *eventLog) waitUntil(t *testing.T, what string, cond func([]events.Envelope) bool) []events.Envelope {
	t.Helper()
	ctx := testContext(t)
	for {
		l.mu.Lock()
		envs, changed, err := slices.Clone(l.envs), l.changed, l.err
		l.mu.Unlock()
		if cond(envs) {
			return envs
		}
		if err != nil {
			t.Fatalf("waiting for %s: following the events stopped: %v", what, err)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v; events so far:\n%s", what, ctx.Err(), describe(envs))
		}
	}
}

// waitFor waits for the first event after sequence `after` that match
// accepts, and returns it.
func (l *eventLog) waitFor(t *testing.T, what string, after uint64, match func(events.Envelope) bool) events.Envelope {
	t.Helper()
	var found events.Envelope
	l.waitUntil(t, what, func(envs []events.Envelope) bool {
		for _, env := range envs {
			if env.Sequence > after && match(env) {
				found = env
				return true
			}
		}
		return false
	})
	return found
}

func describe(envs []events.Envelope) string {
	var b strings.Builder
	for _, env := range envs {
		fmt.Fprintf(&b, "  %d %s %+v\n", env.Sequence, env.Type, env.Event)
	}
	return b.String()
}

// runnerEvent returns env's runner report, if it is one.
func runnerEvent(env events.Envelope) (events.RunnerStateChanged, bool) {
	ev, ok := env.Event.(events.RunnerStateChanged)
	return ev, ok
}

// liveRunners folds the runner reports of envs: the last report of every
// runner not reported terminated, by runner id.
func liveRunners(envs []events.Envelope) map[string]events.RunnerStateChanged {
	live := map[string]events.RunnerStateChanged{}
	for _, env := range envs {
		if ev, ok := runnerEvent(env); ok {
			if ev.State == events.RunnerTerminated {
				delete(live, ev.RunnerID)
			} else {
				live[ev.RunnerID] = ev
			}
		}
	}
	return live
}

// exactlyIdle reports whether the live runners are n idle runners of
// revisionID and nothing else.
func exactlyIdle(n int, revisionID string) func([]events.Envelope) bool {
	return func(envs []events.Envelope) bool {
		live := liveRunners(envs)
		if len(live) != n {
			return false
		}
		for _, r := range live {
			if r.State != events.RunnerIdle || r.RevisionID != revisionID {
				return false
			}
		}
		return true
	}
}

func idleRunners(envs []events.Envelope) []events.RunnerStateChanged {
	var out []events.RunnerStateChanged
	for _, r := range liveRunners(envs) {
		out = append(out, r)
	}
	return out
}

func isType(eventType, revisionID string) func(events.Envelope) bool {
	return func(env events.Envelope) bool {
		if env.Type != eventType {
			return false
		}
		switch ev := env.Event.(type) {
		case events.RevisionDeployed:
			return ev.RevisionID == revisionID
		case events.RevisionFailed:
			return ev.RevisionID == revisionID
		case events.CurrentRevisionSet:
			return ev.To == revisionID
		}
		return true
	}
}

func runnerState(runnerID string, state events.RunnerState) func(events.Envelope) bool {
	return func(env events.Envelope) bool {
		ev, ok := runnerEvent(env)
		return ok && ev.RunnerID == runnerID && ev.State == state
	}
}

// deploy deploys command and waits until the revision is deployed and
// current with one idle runner; it returns the revision id and the runner.
func (s *stack) deploy(t *testing.T, log *eventLog, app, command string) (string, events.RunnerStateChanged) {
	t.Helper()
	o := s.execute(t, app, events.Deploy{Command: command})
	log.waitFor(t, "revision.deployed", o.LastSequence, isType(events.TypeRevisionDeployed, o.RevisionID))
	log.waitFor(t, "alias moved", o.LastSequence, isType(events.TypeCurrentRevisionSet, o.RevisionID))
	envs := log.waitUntil(t, "one idle runner", exactlyIdle(1, o.RevisionID))
	return o.RevisionID, idleRunners(envs)[0]
}

// get asks the runner on port who it is.
func get(t *testing.T, port int) string {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("runner on port %d: %v", port, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// gone reports whether no process has id pid (the runner's group leader,
// reaped by the supervisor once it exited).
func gone(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }

func TestDeployStartsOneIdleRunnerAndMakesTheRevisionCurrent(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	log := s.follow(t, "web")
	s.startWorker(t)

	rev, r := s.deploy(t, log, "web", runnerCommand)
	if r.PID == 0 || r.Port == 0 {
		t.Fatalf("idle runner without pid or port: %+v", r)
	}
	if body := get(t, r.Port); !strings.Contains(body, "revision="+rev) || !strings.Contains(body, "runner="+r.RunnerID) {
		t.Fatalf("runner on port %d answered %q", r.Port, body)
	}
	envs := log.snapshot()
	setup := slices.IndexFunc(envs, runnerState(r.RunnerID, events.RunnerSetup))
	idle := slices.IndexFunc(envs, runnerState(r.RunnerID, events.RunnerIdle))
	deployed := slices.IndexFunc(envs, isType(events.TypeRevisionDeployed, rev))
	if setup < 0 || setup > idle || idle > deployed {
		t.Fatalf("want setup, idle, then deployed:\n%s", describe(envs))
	}
	for _, env := range envs {
		if _, ok := runnerEvent(env); ok && env.Actor != runner.Actor {
			t.Errorf("runner report by %q, want %q", env.Actor, runner.Actor)
		}
	}
}

func TestDeployOfACommandThatExitsFailsAndKeepsTheCurrentRevision(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	log := s.follow(t, "web")
	s.startWorker(t)
	good, r := s.deploy(t, log, "web", runnerCommand)

	o := s.execute(t, "web", events.Deploy{Command: "exit 1"})
	failed := log.waitFor(t, "revision.failed", o.LastSequence, isType(events.TypeRevisionFailed, o.RevisionID))
	if reason := failed.Event.(events.RevisionFailed).Reason; !strings.Contains(reason, "status 1") {
		t.Errorf("failure reason %q does not mention status 1", reason)
	}
	envs := log.waitUntil(t, "the failed runner terminated", func(envs []events.Envelope) bool {
		return slices.ContainsFunc(envs, func(env events.Envelope) bool {
			ev, ok := runnerEvent(env)
			return ok && ev.RevisionID == o.RevisionID && ev.State == events.RunnerTerminated
		})
	})
	for _, env := range envs {
		if isType(events.TypeCurrentRevisionSet, o.RevisionID)(env) || isType(events.TypeRevisionDeployed, o.RevisionID)(env) {
			t.Fatalf("the failed revision was made current at %d:\n%s", env.Sequence, describe(envs))
		}
	}
	if live := liveRunners(envs); len(live) != 1 || live[r.RunnerID].State != events.RunnerIdle {
		t.Fatalf("live runners %+v, want only %s of %s", live, r.RunnerID, good)
	}
	if body := get(t, r.Port); !strings.Contains(body, "revision="+good) {
		t.Fatalf("the current runner answered %q", body)
	}
}

func TestSuspendTerminatesRunnersAndResumeBringsOneBack(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	log := s.follow(t, "web")
	s.startWorker(t)
	rev, r := s.deploy(t, log, "web", runnerCommand)

	o := s.execute(t, "web", events.Suspend{})
	log.waitFor(t, "runner terminated", o.LastSequence, runnerState(r.RunnerID, events.RunnerTerminated))
	log.waitUntil(t, "no live runner", func(envs []events.Envelope) bool { return len(liveRunners(envs)) == 0 })
	if !gone(r.PID) {
		t.Errorf("runner process %d still exists after it was reported terminated", r.PID)
	}

	o = s.execute(t, "web", events.Resume{})
	envs := log.waitUntil(t, "a runner back", exactlyIdle(1, rev))
	back := idleRunners(envs)[0]
	if back.RunnerID == r.RunnerID {
		t.Fatalf("runner %s reported idle again after it was terminated", back.RunnerID)
	}
	if body := get(t, back.Port); !strings.Contains(body, "revision="+rev) {
		t.Fatalf("resumed runner answered %q", body)
	}
}

func TestScaleChangesTheNumberOfIdleRunners(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	log := s.follow(t, "web")
	s.startWorker(t)
	rev, first := s.deploy(t, log, "web", runnerCommand)

	two := 2
	s.execute(t, "web", events.Scale{Runtime: events.RuntimeOverrides{MinConcurrency: &two}})
	envs := log.waitUntil(t, "two idle runners", exactlyIdle(2, rev))
	if _, kept := liveRunners(envs)[first.RunnerID]; !kept {
		t.Errorf("scaling up replaced runner %s", first.RunnerID)
	}
	ports := map[int]bool{}
	for _, r := range idleRunners(envs) {
		ports[r.Port] = true
		if body := get(t, r.Port); !strings.Contains(body, "runner="+r.RunnerID) {
			t.Errorf("runner %s on port %d answered %q", r.RunnerID, r.Port, body)
		}
	}
	if len(ports) != 2 {
		t.Errorf("two runners share a port: %v", ports)
	}

	// Scaled down to one, the runner above the minimum stops once it has
	// been idle for keep_alive.
	one, second := 1, events.Seconds(1)
	s.execute(t, "web", events.Scale{Runtime: events.RuntimeOverrides{MinConcurrency: &one, KeepAlive: &second}})
	log.waitUntil(t, "back to one idle runner", exactlyIdle(1, rev))
}

// A runner that crashes waits out a back-off, shown as crash_backoff with
// its exit status, and comes back under its own id as a new process, as a
// restarted container does.
func TestCrashedRunnerBacksOffAndRestartsUnderItsID(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	log := s.follow(t, "web")
	s.startWorker(t)
	rev, r := s.deploy(t, log, "web", runnerCommand)
	last := log.snapshot()

	if err := syscall.Kill(-r.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	backoff := log.waitFor(t, "the crash reported", last[len(last)-1].Sequence, runnerState(r.RunnerID, events.RunnerCrashBackoff))
	if reason := backoff.Event.(events.RunnerStateChanged).Reason; !strings.Contains(reason, "exited") || !strings.Contains(reason, "restarting in") {
		t.Errorf("crash_backoff reason %q does not say how the runner exited and when it restarts", reason)
	}
	envs := log.waitUntil(t, "the runner back", exactlyIdle(1, rev))
	back := idleRunners(envs)[0]
	if back.RunnerID != r.RunnerID || back.PID == r.PID {
		t.Fatalf("after the crash: runner %s pid %d; want %s with a new process (was pid %d)", back.RunnerID, back.PID, r.RunnerID, r.PID)
	}
	if body := get(t, back.Port); !strings.Contains(body, "runner="+r.RunnerID) {
		t.Fatalf("restarted runner answered %q", body)
	}
}

func TestSetRevisionMovesRunnersToTheTarget(t *testing.T) {
	t.Parallel()
	for _, strategy := range []events.Strategy{events.StrategyRecreate, events.StrategyRolling} {
		t.Run(string(strategy), func(t *testing.T) {
			t.Parallel()
			s := newStack(t)
			log := s.follow(t, "web")
			s.startWorker(t)
			first, _ := s.deploy(t, log, "web", runnerCommand)
			second, old := s.deploy(t, log, "web", runnerCommand+" --second")

			o := s.execute(t, "web", events.SetRevision{RevisionID: first, Strategy: strategy})
			log.waitFor(t, "alias moved back", o.FirstSequence-1, isType(events.TypeCurrentRevisionSet, first))
			envs := log.waitUntil(t, "runners moved to the target", exactlyIdle(1, first))
			moved := idleRunners(envs)[0]
			if body := get(t, moved.Port); !strings.Contains(body, "revision="+first) {
				t.Fatalf("runner answered %q", body)
			}

			oldStopping := slices.IndexFunc(envs, runnerState(old.RunnerID, events.RunnerDraining))
			oldTerminating := slices.IndexFunc(envs, runnerState(old.RunnerID, events.RunnerTerminating))
			oldStopped := slices.IndexFunc(envs, runnerState(old.RunnerID, events.RunnerTerminated))
			newSetup := slices.IndexFunc(envs, runnerState(moved.RunnerID, events.RunnerSetup))
			newIdle := slices.IndexFunc(envs, runnerState(moved.RunnerID, events.RunnerIdle))
			if oldStopping < 0 || oldStopped < 0 || newSetup < 0 || newIdle < 0 {
				t.Fatalf("runner %s of %s was not drained, or %s not started:\n%s", old.RunnerID, second, moved.RunnerID, describe(envs))
			}
			if !(oldStopping < oldTerminating && oldTerminating < oldStopped) {
				t.Errorf("runner %s went to terminated without draining, then terminating:\n%s", old.RunnerID, describe(envs))
			}
			switch strategy {
			case events.StrategyRecreate:
				if oldStopped > newSetup {
					t.Errorf("recreate started the new runner before the old one stopped:\n%s", describe(envs))
				}
			case events.StrategyRolling:
				if newIdle > oldStopping {
					t.Errorf("rolling stopped the old runner before the new one was idle:\n%s", describe(envs))
				}
			}
		})
	}
}

// A rollback is instant even while a deploy is in flight: the runners
// move to the target before the deploying revision's runner listens.
// When it does, the revision is deployed but not current, and its runner
// stops.
func TestASetRevisionMovesTheRunnersWhileADeployStarts(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	log := s.follow(t, "web")
	s.startWorker(t)
	first, _ := s.deploy(t, log, "web", runnerCommand)
	_, old := s.deploy(t, log, "web", runnerCommand+" --second")
	gate := runnertest.NewGate(t)
	third := s.execute(t, "web", events.Deploy{Command: gate.Command(runnerCommand + " --third")})
	log.waitUntil(t, "the third revision's runner in setup", func(envs []events.Envelope) bool {
		return slices.ContainsFunc(envs, func(env events.Envelope) bool {
			ev, ok := runnerEvent(env)
			return ok && ev.RevisionID == third.RevisionID && ev.State == events.RunnerSetup
		})
	})

	s.execute(t, "web", events.SetRevision{RevisionID: first})
	envs := log.waitUntil(t, "runners moved to the target while the deploy starts", func(envs []events.Envelope) bool {
		return slices.ContainsFunc(envs, runnerState(old.RunnerID, events.RunnerTerminated)) &&
			slices.ContainsFunc(idleRunners(envs), func(r events.RunnerStateChanged) bool { return r.RevisionID == first })
	})
	if slices.ContainsFunc(envs, isType(events.TypeRevisionDeployed, third.RevisionID)) {
		t.Fatalf("the switch waited for the deploy in flight:\n%s", describe(envs))
	}

	gate.Open(t)
	deployed := log.waitFor(t, "the third revision deployed", third.LastSequence, isType(events.TypeRevisionDeployed, third.RevisionID))
	if ev := deployed.Event.(events.RevisionDeployed); ev.RolledBackTo != first {
		t.Fatalf("revision.deployed = %+v, want rolled_back_to %s", ev, first)
	}
	envs = log.waitUntil(t, "only the target's runner left", exactlyIdle(1, first))
	if slices.ContainsFunc(envs, isType(events.TypeCurrentRevisionSet, third.RevisionID)) {
		t.Fatalf("the deploy moved the alias after the rollback:\n%s", describe(envs))
	}
	checkRunnersEndOnce(t, envs)
}

func TestRolloutReplacesEveryRunner(t *testing.T) {
	t.Parallel()
	for _, force := range []bool{false, true} {
		t.Run(fmt.Sprintf("force=%v", force), func(t *testing.T) {
			t.Parallel()
			s := newStack(t)
			log := s.follow(t, "web")
			s.startWorker(t)
			rev, old := s.deploy(t, log, "web", runnerCommand)

			o := s.execute(t, "web", events.Rollout{Force: force})
			done := log.waitFor(t, "rollout.completed", o.LastSequence, func(env events.Envelope) bool {
				ev, ok := env.Event.(events.RolloutCompleted)
				return ok && ev.RolloutID == o.RolloutID
			}).Event.(events.RolloutCompleted)
			if done.Replaced != 1 || done.Force != force || done.RevisionID != rev {
				t.Fatalf("rollout completed %+v, want one runner of %s replaced", done, rev)
			}
			envs := log.waitUntil(t, "one new idle runner", exactlyIdle(1, rev))
			if idleRunners(envs)[0].RunnerID == old.RunnerID {
				t.Fatalf("runner %s was not replaced", old.RunnerID)
			}
			if !gone(old.PID) {
				t.Errorf("old runner process %d still exists", old.PID)
			}
		})
	}
}

// flaggedRunner returns a command that runs the echo runner only while
// the file flag exists (created here): removing it makes every runner
// started afterwards exit at once.
func flaggedRunner(t *testing.T) (command, flag string) {
	t.Helper()
	// Runners run as another user, who must be able to see the file.
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	flag = filepath.Join(dir, "ok")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("test -e '%s' && exec %s", flag, runnerCommand), flag
}

// A rollout whose replacements never start is reported failed, with the
// reason, after rolloutFailureLimit of them; a graceful one leaves the old
// runners serving, a force one kills only the runner whose replacement
// it waited for. The rollout is over: the next one is accepted, and
// completes once runners start again.
func TestARolloutWhoseReplacementsFailIsReportedFailed(t *testing.T) {
	t.Parallel()
	for _, force := range []bool{false, true} {
		t.Run(fmt.Sprintf("force=%v", force), func(t *testing.T) {
			t.Parallel()
			command, flag := flaggedRunner(t)
			s := newStack(t)
			log := s.follow(t, "web")
			s.startWorker(t)
			rev, _ := s.deploy(t, log, "web", command)
			two := 2
			s.execute(t, "web", events.Scale{Runtime: events.RuntimeOverrides{MinConcurrency: &two}})
			old := idleRunners(log.waitUntil(t, "two idle runners", exactlyIdle(2, rev)))

			if err := os.Remove(flag); err != nil {
				t.Fatal(err)
			}
			o := s.execute(t, "web", events.Rollout{Force: force})
			end := log.waitFor(t, "the rollout's end", o.LastSequence, func(env events.Envelope) bool {
				switch ev := env.Event.(type) {
				case events.RolloutCompleted:
					return ev.RolloutID == o.RolloutID
				case events.RolloutFailed:
					return ev.RolloutID == o.RolloutID
				}
				return false
			})
			failed, ok := end.Event.(events.RolloutFailed)
			if !ok {
				t.Fatalf("the rollout ended %s %+v, want rollout.failed", end.Type, end.Event)
			}
			if failed.Replaced != 0 || failed.Force != force || !strings.Contains(failed.Reason, "3 replacement runners in a row did not start") || !strings.Contains(failed.Reason, "exited") {
				t.Fatalf("rollout failed %+v, want 0 replaced and the reason", failed)
			}
			envs := log.snapshot()
			serving := 0
			for _, r := range old {
				if _, alive := liveRunners(envs)[r.RunnerID]; alive && !gone(r.PID) {
					serving++
					if got := get(t, r.Port); !strings.Contains(got, r.RunnerID) {
						t.Errorf("runner %s answers %q", r.RunnerID, got)
					}
				}
			}
			want := 2
			if force {
				want = 1 // killed, its replacement never came up; the other was left alone
			}
			if serving != want {
				t.Fatalf("%d old runner(s) left serving after the failed rollout, want %d; events:\n%s", serving, want, describe(envs))
			}

			if err := os.WriteFile(flag, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			next := s.execute(t, "web", events.Rollout{})
			log.waitFor(t, "the next rollout completed", next.LastSequence, func(env events.Envelope) bool {
				ev, ok := env.Event.(events.RolloutCompleted)
				return ok && ev.RolloutID == next.RolloutID && ev.Replaced > 0
			})
		})
	}
}

func TestRestartedWorkerBringsTheRunnersBack(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	log := s.follow(t, "web")
	stop := s.startWorker(t)
	rev, r := s.deploy(t, log, "web", runnerCommand)

	stop()
	envs := log.waitUntil(t, "the runner drained on shutdown", func(envs []events.Envelope) bool { return len(liveRunners(envs)) == 0 })
	terminated := envs[slices.IndexFunc(envs, runnerState(r.RunnerID, events.RunnerTerminated))]
	if reason := terminated.Event.(events.RunnerStateChanged).Reason; !strings.Contains(reason, "shutting down") {
		t.Errorf("shutdown reason %q", reason)
	}
	if !gone(r.PID) {
		t.Errorf("runner process %d outlived its worker", r.PID)
	}

	// While no worker runs, the log comes to believe in a runner that no
	// process backs, as after a crash of the whole server.
	ghost := "0193f1c2-0000-7000-8000-00000000beef"
	s.execute(t, "web", events.ReportRunner{RunnerID: ghost, RevisionID: rev, State: events.RunnerIdle, PID: 1, Port: 1})

	s.startWorker(t)
	lost := log.waitFor(t, "the ghost runner reported lost", 0, runnerState(ghost, events.RunnerTerminated))
	if reason := lost.Event.(events.RunnerStateChanged).Reason; !strings.Contains(reason, "lost") {
		t.Errorf("lost runner reason %q", reason)
	}
	envs = log.waitUntil(t, "a runner back after the restart", exactlyIdle(1, rev))
	back := idleRunners(envs)[0]
	if back.RunnerID == r.RunnerID {
		t.Fatalf("the drained runner %s came back to life", r.RunnerID)
	}
	if body := get(t, back.Port); !strings.Contains(body, "revision="+rev) {
		t.Fatalf("runner answered %q", body)
	}
}
