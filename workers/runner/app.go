package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
	"github.com/revline/revline/workers/gateway"
	"github.com/revline/revline/workers/process"
)

// maxCrashBackoff caps the delay before restarting a crashing runner.
const maxCrashBackoff = 30 * time.Second

// stableAfter is how long an app must go without a runner failure for its
// back-off to start over from CrashBackoff. A runner that listens and then
// dies soon after keeps backing off longer.
const stableAfter = 2 * maxCrashBackoff

// reportTimeout bounds one report to the command bus.
const reportTimeout = 15 * time.Second

// appWorker owns the runners of one app. Its loop is the only goroutine
// that starts runners or changes the app; stops run in the background and
// wake the loop when they are done.
type appWorker struct {
	name   string
	cfg    Config
	log    *slog.Logger
	wakeCh chan struct{}

	state  aggregates.App
	routed bool // the gateway has the app's route

	mu      sync.Mutex
	runners map[string]*runner // live processes by runner id
	// scaling is what the last pass scaled the current revision by, for
	// the keep-alive countdown asked from other goroutines.
	scaling scalingView
	drains  sync.WaitGroup // background drains and deploy waits in progress

	// recheck wakes the loop when the next keep-alive may have run out,
	// at recheckAt.
	recheck   *time.Timer
	recheckAt time.Time
	// restarting holds the runners of the current revision that crashed and
	// wait out their back-off (reported crash_backoff), by runner id: each
	// comes back under its own id, as a restarted container does.
	restarting map[string]string // runner id → revision id
	// floor is a number of runners of the current revision that the app
	// gets whatever its demand, until they are up: the capacity that a
	// switch of revision, a resume, a crash or a restart of the server must
	// not take away. Once they are up, demand and keep_alive decide again.
	floor int
	// lost are the runners of the current revision lost in a restart of
	// the server that were serving (runner id → revision id): the floor
	// brings their capacity back, and each runner started for it names
	// the one it replaces.
	lost map[string]string
	// served is the current revision the floor was last set for;
	// suspendedWith is how many runners the app had when it was suspended.
	served        string
	suspended     bool
	suspendedWith int

	// deploys are the deploys whose runner is starting, by revision id
	// (only the loop uses it).
	deploys map[string]*pendingDeploy
	// rolled is what the rollout in progress has done so far: a failed
	// replacement backs off, and a later pass goes on from there.
	rolled rolloutProgress

	// crashes counts runner failures since the app was last stable; it
	// sets the back-off before the next start (nextStart).
	crashes     int
	lastFailure time.Time
	nextStart   time.Time
}

// rolloutFailureLimit is how many replacements in a row may fail to
// start before a rollout is reported failed (as the CLI's wait gives up
// on runners that failed as often).
const rolloutFailureLimit = 3

// rolloutProgress counts the runners a rollout replaced and the requests
// it dropped, across passes; owed is the runners a force rollout killed
// whose replacement is not up yet, and failures the replacements that
// failed to start since the last one that came up.
type rolloutProgress struct {
	id                string
	replaced, dropped int
	owed, failures    int
}

// runner is one process the worker started.
type runner struct {
	proc       *process.Process
	revisionID string
	draining   bool
	// deploying is set while r is its revision's deploy runner, not yet
	// settled: it is no capacity of the app (neither live nor another
	// revision's runner to stop), and its exit is the deploy's to report.
	deploying bool
}

// pendingDeploy is a deploy whose runner is starting: the loop goes on
// (a set-rev meanwhile moves the app's runners at once) and settles the
// deploy once ready says how the runner's start ended.
type pendingDeploy struct {
	r     *runner
	ready chan error // awaitReady's answer; buffered
	// cancel ends the wait, for a deploy settled by someone else.
	cancel context.CancelFunc
}

func newAppWorker(name string, cfg Config) *appWorker {
	return &appWorker{
		name:       name,
		cfg:        cfg,
		log:        cfg.Logger.With("app", name),
		wakeCh:     make(chan struct{}, 1),
		runners:    map[string]*runner{},
		restarting: map[string]string{},
		lost:       map[string]string{},
		deploys:    map[string]*pendingDeploy{},
	}
}

func (a *appWorker) wake() {
	select {
	case a.wakeCh <- struct{}{}:
	default: // a pass is already due
	}
}

func (a *appWorker) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.wakeCh:
		}
		if err := a.reconcile(ctx); err != nil && ctx.Err() == nil {
			a.backOff("reconcile failed: " + err.Error())
		}
	}
}

// refresh folds the app's new events into the worker's view.
func (a *appWorker) refresh(ctx context.Context) error {
	var history []events.Envelope
	var err error
	if a.state.Version == 0 {
		history, err = a.loadCold(ctx)
	} else {
		history, err = a.cfg.Store.Load(ctx, a.name, a.state.Version)
	}
	if err != nil {
		return err
	}
	for _, env := range history {
		a.state = aggregates.Evolve(a.state, env)
	}
	if len(history) > 0 || !a.routed {
		a.cfg.Traffic.SetRoute(a.name, gateway.Route{
			CurrentRevision:   a.state.Current,
			Suspended:         a.state.Suspended,
			Deleted:           a.state.Deleted,
			MaxMultiplexing:   a.state.Code.MaxMultiplexing,
			RequestTimeout:    a.state.Runtime.RequestTimeout.Duration(),
			ConcurrencyBuffer: a.state.Runtime.ConcurrencyBuffer,
		})
		a.routed = true
	}
	return nil
}

// loadCold returns the app's history for the first load: from its
// snapshot, which it makes the worker's view, when there is a usable one.
func (a *appWorker) loadCold(ctx context.Context) ([]events.Envelope, error) {
	history, _, err := a.cfg.Snapshots.LoadApp(ctx, a.cfg.Store, a.name, func(stored events.Snapshot) error {
		snap, err := aggregates.DecodeSnapshot(a.name, stored)
		if err == nil {
			a.state = snap.State
		}
		return err
	})
	return history, err
}

// reconcile is one pass: settle deploys, run a requested rollout, then
// converge the runners on the desired count of the current revision.
func (a *appWorker) reconcile(ctx context.Context) error {
	if err := a.refresh(ctx); err != nil {
		return err
	}
	if err := a.reapCrashed(ctx); err != nil {
		return err
	}
	if err := a.forgetLostRunners(ctx); err != nil {
		return err
	}
	a.abandonSettledDeploys(ctx)
	for _, rev := range a.deploying() {
		if err := a.deploy(ctx, rev); err != nil {
			return err
		}
	}
	if a.state.Rollout != nil {
		if err := a.rollout(ctx, *a.state.Rollout); err != nil {
			return err
		}
	}
	if err := a.stopRequested(ctx); err != nil {
		return err
	}
	if err := a.converge(ctx); err != nil {
		return err
	}
	if a.state.Deleted {
		// The logs of its runners go with the app, each once it has
		// stopped: the end of each stop wakes a pass.
		if err := a.cfg.Supervisor.RemoveLogs(a.name); err != nil {
			a.log.Warn("removing the logs of a deleted app", "error", err)
		}
	}
	return nil
}

// stopRequested carries out the stops of single runners users asked for
// (revline runners stop|kill): a kill at once, its requests in flight
// dropped and counted; a graceful stop in the background, once a
// replacement is ready if one was asked for. A runner waiting out a crash
// back-off simply does not come back.
func (a *appWorker) stopRequested(ctx context.Context) error {
	acted := false
	for _, id := range slices.Sorted(maps.Keys(a.state.Runners)) {
		stop := a.state.Runners[id].Stop
		if stop == nil {
			continue
		}
		acted = true
		why := "stop requested by " + stop.By
		if stop.Force {
			why = "kill requested by " + stop.By
		}
		a.mu.Lock()
		r, running := a.runners[id]
		revisionID, restarting := a.restarting[id]
		delete(a.restarting, id)
		a.mu.Unlock()
		switch {
		case restarting:
			if _, err := a.send(ctx, events.ReportRunner{RunnerID: id, RevisionID: revisionID, State: events.RunnerTerminated, Reason: why}, id); err != nil {
				return err
			}
		case !running:
			// Not this worker's, or already gone: its end is reported.
		case stop.Force && r.draining:
			// Stopping gracefully already: cut it short. The drain under
			// way reports its end.
			a.cfg.Traffic.Drop(a.name, id)
			if err := r.proc.Kill(ctx); err != nil {
				return err
			}
		case stop.Force:
			if _, err := a.kill(ctx, r, why, ""); err != nil {
				return err
			}
		case r.draining:
			// Stopping already.
		default:
			if rev, ok := a.state.Revisions[r.revisionID]; ok && stop.Replace && r.revisionID == a.state.Current && !a.state.Suspended {
				if _, err := a.startReady(ctx, rev, "replacing runner "+id, ""); err != nil {
					if reason, failed := runnerFailure(err); failed {
						a.backOff("replacement of runner " + id + ": " + reason)
						return nil // the stop waits for a replacement
					}
					return err
				}
			}
			a.drainInBackground(ctx, r, a.state.Runtime.RequestTimeout.Duration(), why)
		}
	}
	if !acted {
		return nil
	}
	return a.refresh(ctx)
}

// deploying lists the revisions being deployed, oldest first (by number:
// revision ids are random, not time-ordered).
func (a *appWorker) deploying() []*aggregates.Revision {
	var out []*aggregates.Revision
	for _, rev := range a.state.Revisions {
		if rev.Status == events.StatusDeploying {
			out = append(out, rev)
		}
	}
	slices.SortFunc(out, func(x, y *aggregates.Revision) int { return cmp.Compare(x.Number, y.Number) })
	return out
}

// deploy starts the revision's first runner and, on a later pass, once
// it listens, reports the revision Deployed, or Failed with the reason.
// The loop does not wait for the runner meanwhile: a rollback, a scale or
// a crash of another runner is acted on while a deploy starts.
func (a *appWorker) deploy(ctx context.Context, rev *aggregates.Revision) error {
	p, started := a.deploys[rev.ID]
	if !started {
		r, err := a.start(ctx, rev, "deploy", "")
		if err != nil {
			return a.settleDeploy(ctx, rev, nil, err)
		}
		a.mu.Lock()
		r.deploying = true
		a.mu.Unlock()
		waitCtx, cancel := context.WithCancel(ctx)
		p = &pendingDeploy{r: r, ready: make(chan error, 1), cancel: cancel}
		a.deploys[rev.ID] = p
		// The loop's state changes meanwhile: the wait gets its own copy.
		starting, timeout := *rev, a.startupTimeout(rev)
		// Joined on shutdown with the drains: a runner still starting is
		// killed and reported before the worker returns.
		a.drains.Go(func() {
			defer cancel()
			ctx := waitCtx
			// Not in the gateway yet: a deploy's runner serves only once
			// its revision is current (settleDeploy), never while another
			// revision's runners are starting or the deploy was overtaken.
			p.ready <- a.awaitReady(ctx, r, &starting, timeout, false)
			a.wake()
		})
		return nil
	}
	select {
	case err := <-p.ready:
		delete(a.deploys, rev.ID)
		p.cancel()
		a.mu.Lock()
		p.r.deploying = false
		a.mu.Unlock()
		if err != nil {
			return a.settleDeploy(ctx, rev, nil, err)
		}
		return a.settleDeploy(ctx, rev, p.r, nil)
	default:
		return nil // still starting: its answer wakes the loop
	}
}

// abandonSettledDeploys ends the pending deploys whose revision is no
// longer deploying because someone else settled it (a fail_deploy or
// complete_deploy sent on the bus): a runner still starting is killed
// (awaitReady reports it), one that listens already, which never served,
// is drained. None is left behind untracked.
func (a *appWorker) abandonSettledDeploys(ctx context.Context) {
	for id, p := range a.deploys {
		if rev, ok := a.state.Revisions[id]; ok && rev.Status == events.StatusDeploying {
			continue
		}
		p.cancel()
		if err := <-p.ready; err == nil {
			a.drainInBackground(ctx, p.r, a.state.Runtime.RequestTimeout.Duration(), "its deploy was settled elsewhere")
		}
		a.mu.Lock()
		p.r.deploying = false
		a.mu.Unlock()
		delete(a.deploys, id)
	}
}

// settleDeploy reports how the deploy of rev ended: r is its runner,
// listening, or err why it is not.
func (a *appWorker) settleDeploy(ctx context.Context, rev *aggregates.Revision, r *runner, err error) error {
	if reason, failed := runnerFailure(err); failed {
		_, err = a.send(ctx, events.FailDeploy{RevisionID: rev.ID, Reason: aggregates.FitText(reason, aggregates.MaxReasonBytes)}, rev.ID)
	} else if err == nil {
		var o events.Outcome
		o, err = a.send(ctx, events.CompleteDeploy{RevisionID: rev.ID}, rev.ID)
		if err == nil && o.Status == events.OutcomeAccepted {
			a.log.Info("revision deployed", "revision", rev.ID, "runner", r.proc.RunnerID(), "port", r.proc.Port())
		}
	}
	if err != nil {
		return err
	}
	if err := a.refresh(ctx); err != nil {
		return err
	}
	switch done := a.state.Revisions[rev.ID]; {
	case r == nil:
	case done != nil && done.ID == a.state.Current:
		a.serveTraffic(r, done)
	default:
		// A set-rev while it deployed (or its deploy settled by someone
		// else): the revision is not current, and its runner, which never
		// served, is no capacity of the app; it goes now, before the
		// switch's capacity is counted.
		why := "deployed, not current"
		if done != nil && done.RolledBackTo != "" {
			why += ": rolled back to " + a.revisionLabel(done.RolledBackTo) + " while it deployed"
		}
		a.log.Info("revision deployed, not made current", "revision", rev.ID, "why", why)
		a.drainInBackground(ctx, r, a.state.Runtime.RequestTimeout.Duration(), why)
	}
	return nil
}

// revisionLabel names a revision in a runner's reason: "v3", or its id.
func (a *appWorker) revisionLabel(id string) string {
	if rev, ok := a.state.Revisions[id]; ok && rev.Number != 0 {
		return fmt.Sprintf("v%d", rev.Number)
	}
	return id
}

// startFailedError is a runner whose process could not be started.
type startFailedError struct{ err error }

// Error implements the error interface.
func (e startFailedError) Error() string { return "runner could not start: " + e.err.Error() }

// Unwrap returns the underlying error, for errors.Is and errors.As.
func (e startFailedError) Unwrap() error { return e.err }

// runnerFailure tells a runner that failed (it could not start, or did not
// listen in time) from a failure to reach the bus, and returns the reason
// to record.
func runnerFailure(err error) (reason string, failed bool) {
	var notReady *process.NotReadyError
	var startFailed startFailedError
	switch {
	case errors.As(err, &notReady):
		return notReady.Reason, true
	case errors.As(err, &startFailed):
		return startFailed.Error(), true
	}
	return "", false
}

// startReady starts one runner of rev, for the reason why, and waits until
// it listens. A runner that does not is killed and reported terminated;
// runnerFailure then recognises the error. runnerID is "" for a new
// runner, or the id of one that crashed and is restarted.
func (a *appWorker) startReady(ctx context.Context, rev *aggregates.Revision, why, runnerID string) (*runner, error) {
	r, err := a.start(ctx, rev, why, runnerID)
	if err != nil {
		return nil, err
	}
	return r, a.awaitReady(ctx, r, rev, a.startupTimeout(rev), true)
}

// start starts one runner of rev, for the reason why, and reports it
// setup. runnerID is "" for a new runner, or the id of one that crashed
// and is restarted.
func (a *appWorker) start(ctx context.Context, rev *aggregates.Revision, why, runnerID string) (*runner, error) {
	if runnerID == "" {
		runnerID = uuid.Must(uuid.NewV7()).String()
	}
	env, err := a.secretEnv(ctx)
	if err != nil {
		return nil, a.startFailed(ctx, runnerID, rev.ID, why, err)
	}
	proc, err := a.cfg.Supervisor.Start(process.Spec{
		RunnerID:   runnerID,
		App:        a.name,
		RevisionID: rev.ID,
		Command:    rev.Command,
		Env:        env,
	})
	if err != nil {
		return nil, a.startFailed(ctx, runnerID, rev.ID, why, err)
	}
	r := &runner{proc: proc, revisionID: rev.ID}
	a.mu.Lock()
	a.runners[proc.RunnerID()] = r
	a.mu.Unlock()
	// A runner that exits on its own must be noticed even when no event
	// comes: its exit wakes the loop, whose next pass reaps it.
	go func() {
		<-proc.Done()
		a.wake()
	}()
	if err := a.report(ctx, r, events.RunnerSetup, why); err != nil {
		return nil, err
	}
	return r, nil
}

// startFailed reports a runner that could not be started (a secret it
// needs is gone, no uid is free, ...) as set up and at once terminated,
// with the reason, so that the log, the audit and a waiting client see
// the failure, not only the server's log; it returns the
// startFailedError. An error reaching the bus is returned instead.
func (a *appWorker) startFailed(ctx context.Context, runnerID, revisionID, why string, cause error) error {
	failure := startFailedError{cause}
	for _, step := range []struct {
		state  events.RunnerState
		reason string
	}{{events.RunnerSetup, why}, {events.RunnerTerminated, failure.Error()}} {
		report := events.ReportRunner{RunnerID: runnerID, RevisionID: revisionID, State: step.state, Reason: aggregates.FitText(step.reason, aggregates.MaxReasonBytes)}
		if _, err := a.send(ctx, report, runnerID); err != nil {
			return err
		}
	}
	return failure
}

// startupTimeout is how long a runner of rev may take to listen.
func (a *appWorker) startupTimeout(rev *aggregates.Revision) time.Duration {
	if rev.ID == a.state.Current {
		return a.state.Code.StartupTimeout.Duration() // a scale may have changed it
	}
	return rev.Code.StartupTimeout.Duration()
}

// awaitReady waits until r, a runner of rev, listens, then gives it to
// the gateway if serve is set and reports it idle. A runner that does not
// listen within timeout is killed and reported terminated; runnerFailure
// then recognises the error. Safe to call from any goroutine.
func (a *appWorker) awaitReady(ctx context.Context, r *runner, rev *aggregates.Revision, timeout time.Duration, serve bool) error {
	proc := r.proc
	if err := proc.WaitReady(ctx, timeout); err != nil {
		// The kill and its report outlive a wait that was cancelled (a
		// deploy settled elsewhere, a shutdown).
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reportTimeout)
		defer cancel()
		killErr := proc.Kill(ctx)
		// Its end is in the log before the runner is forgotten, so that
		// the loop never takes it for a runner lost in a restart.
		rerr := a.report(ctx, r, events.RunnerTerminated, err.Error())
		a.forget(r)
		if rerr != nil {
			return errors.Join(err, rerr)
		}
		return errors.Join(err, killErr)
	}
	if serve {
		a.serveTraffic(r, rev)
	}
	return a.report(ctx, r, events.RunnerIdle, "")
}

// serveTraffic gives r, a listening runner of rev, to the gateway.
func (a *appWorker) serveTraffic(r *runner, rev *aggregates.Revision) {
	a.cfg.Traffic.AddRunner(a.name, gateway.Backend{RunnerID: r.proc.RunnerID(), RevisionID: rev.ID, Addr: r.proc.Addr(), MaxMultiplexing: rev.Code.MaxMultiplexing})
}

// rollout replaces every runner of the rollout's revision that started
// before it was requested, then reports the rollout complete. Graceful:
// each replacement is up before its old runner is drained (no new
// requests; stopped once its requests have ended, or cut at
// request_timeout). Force: old runners are killed at once, and the
// requests the gateway had in flight on them are dropped and counted.
func (a *appWorker) rollout(ctx context.Context, ro aggregates.Rollout) error {
	rev, ok := a.state.Revisions[ro.RevisionID]
	if !ok {
		return fmt.Errorf("rollout %s: unknown revision %s", ro.ID, ro.RevisionID)
	}
	if time.Until(a.nextStart) > 0 {
		return nil // backing off after a failed replacement; a wake is scheduled
	}
	if a.rolled.id != ro.ID {
		// What the log says it cut already: before a restart of the
		// server, or nothing.
		a.rolled = rolloutProgress{id: ro.ID, dropped: ro.Dropped}
	}
	if ro.RevisionID != a.state.Current || a.state.Suspended {
		// A set-rev, deploy or suspend since the request replaced or
		// stopped the runners the rollout was about: nothing is left to do.
		return a.completeRollout(ctx, ro)
	}
	// After a restart of the server no runner of before is left: those
	// that were serving are replaced for the rollout, and counted. (The
	// requests it cut before the restart are in the log, ro.Dropped; those
	// in flight when the server died went with it, uncounted.)
	for _, id := range a.lostOf(ro.RevisionID) {
		if up, err := a.replaceForRollout(ctx, ro, rev, replacingLost(id)); !up {
			return err
		}
		delete(a.lost, id)
		a.rolled.replaced++
	}
	// A force rollout replaces the runners it killed before it kills
	// another: replacements that do not start fail the rollout with the
	// runners not killed yet still serving.
	for a.rolled.owed > 0 {
		if up, err := a.replaceForRollout(ctx, ro, rev, ""); !up {
			return err
		}
		a.rolled.owed--
		a.rolled.replaced++
	}
	var old []*runner
	for _, r := range a.live(ro.RevisionID) {
		if r.proc.StartedAt().Before(ro.RequestedAt) {
			old = append(old, r)
		}
	}
	for _, r := range old {
		if ro.Force {
			cut, err := a.kill(ctx, r, "force rollout "+ro.ID, ro.ID)
			a.rolled.dropped += cut
			a.rolled.owed++
			if err != nil {
				return err
			}
		}
		// Graceful: the old runner serves until its replacement is up,
		// and keeps serving if none comes up.
		if up, err := a.replaceForRollout(ctx, ro, rev, ""); !up {
			return err
		}
		if ro.Force {
			a.rolled.owed--
		} else if err := a.drain(ctx, r, a.state.Runtime.RequestTimeout.Duration(), "rollout "+ro.ID); err != nil {
			return err
		}
		a.rolled.replaced++
	}
	return a.completeRollout(ctx, ro)
}

// replaceForRollout starts a runner of rev for the rollout, why ("" or
// what it replaces) added to its reason, and reports whether it is up. A
// runner that did not come up backs the app off (up false, no error): a
// pass after it goes on, unless it was the rolloutFailureLimit-th in a
// row, which fails the rollout.
func (a *appWorker) replaceForRollout(ctx context.Context, ro aggregates.Rollout, rev *aggregates.Revision, why string) (up bool, err error) {
	reason := "rollout " + ro.ID
	if why != "" {
		reason += ": " + why
	}
	if _, err := a.startReady(ctx, rev, reason, ""); err != nil {
		failure, failed := runnerFailure(err)
		if !failed {
			return false, fmt.Errorf("rollout %s: replacement runner: %w", ro.ID, err)
		}
		// The runners already replaced are new enough to be left alone by
		// the next pass.
		a.backOff("rollout " + ro.ID + ": replacement " + failure)
		a.rolled.failures++
		if a.rolled.failures >= rolloutFailureLimit {
			return false, a.failRollout(ctx, ro, fmt.Sprintf("%d replacement runners in a row did not start; the last: %s", a.rolled.failures, failure))
		}
		return false, nil
	}
	a.rolled.failures = 0
	return true, nil
}

// failRollout reports the rollout failed, for reason, with what it did.
func (a *appWorker) failRollout(ctx context.Context, ro aggregates.Rollout, reason string) error {
	replaced, dropped := a.rolled.replaced, a.rolled.dropped
	o, err := a.send(ctx, events.FailRollout{RolloutID: ro.ID, Replaced: replaced, DroppedRequests: dropped, Reason: aggregates.FitText(reason, aggregates.MaxReasonBytes)}, ro.ID)
	if err != nil {
		return err
	}
	if o.Status == events.OutcomeAccepted {
		a.log.Warn("rollout failed", "rollout", ro.ID, "force", ro.Force, "replaced", replaced, "dropped_requests", dropped, "reason", reason)
	}
	return a.refresh(ctx)
}

func (a *appWorker) completeRollout(ctx context.Context, ro aggregates.Rollout) error {
	replaced, dropped := a.rolled.replaced, a.rolled.dropped
	o, err := a.send(ctx, events.CompleteRollout{RolloutID: ro.ID, Replaced: replaced, DroppedRequests: dropped}, ro.ID)
	if err != nil {
		return err
	}
	if o.Status == events.OutcomeAccepted {
		a.log.Info("rollout complete", "rollout", ro.ID, "force", ro.Force, "replaced", replaced, "dropped_requests", dropped)
	}
	return a.refresh(ctx)
}

// converge brings the runners of the current revision to the desired
// count and stops the others. Rolling: new runners are up before old ones
// stop; recreate: old ones stop first.
func (a *appWorker) converge(ctx context.Context) error {
	a.keepCapacity()
	load := a.cfg.Traffic.Load(a.name)
	serving := a.state.Current != "" && !a.state.Suspended
	// The keep-alive countdown is read from the scaling this pass leaves,
	// which may reset the floor: the runners it restored then count as
	// idle runners in excess at once, not only after the next pass.
	defer a.publishScaling(serving)
	desired := a.scalingNow(serving).desired(load)
	grace := a.state.Runtime.RequestTimeout.Duration()
	why := "not the current revision"
	if a.state.Deleted {
		why = "app deleted"
	}
	stopOthers := func() {
		for _, r := range a.liveExcept(a.state.Current) {
			a.drainInBackground(ctx, r, grace, why)
		}
	}
	if a.state.Strategy == events.StrategyRecreate || desired == 0 {
		stopOthers()
	}
	if a.state.Strategy == events.StrategyRecreate && desired > 0 && a.anyRunnerExcept(a.state.Current) {
		// Recreate: the new runners start once the old ones have stopped;
		// each stop wakes the loop.
		return nil
	}
	if err := a.restartCrashed(ctx, serving); err != nil {
		return err
	}
	current := a.live(a.state.Current)
	for i := len(current) + len(a.restarting); i < desired; i++ {
		if time.Until(a.nextStart) > 0 {
			return nil // backing off: backOff scheduled the pass that goes on
		}
		reason := startReason(a.state.Runtime, i)
		// Demand waits out scaling_delay; capacity kept across a switch,
		// a resume or a crash (the floor) does not.
		if wait := scalingDelayLeft(a.state.Runtime, load.QueuedSince, time.Now()); reason == reasonDemand && i >= a.floor && wait > 0 {
			a.wakeAfter(wait) // the requests may be served before then
			break
		}
		lost := a.lostOf(a.state.Current)
		if len(lost) > 0 && i < a.floor {
			reason = replacingLost(lost[0])
		}
		if _, err := a.startReady(ctx, a.state.Revisions[a.state.Current], reason, ""); err != nil {
			reason, failed := runnerFailure(err)
			if !failed {
				return err
			}
			a.backOff(reason)
			return nil
		}
		if len(lost) > 0 && i < a.floor {
			delete(a.lost, lost[0])
		}
	}
	current = a.live(a.state.Current)
	if len(current) >= min(a.floor, a.state.Runtime.MaxConcurrency) {
		// The capacity is back: demand decides from here, this pass's
		// scale-down included.
		a.floor = 0
		clear(a.lost)
		desired = a.scalingNow(serving).desired(load)
	}
	if !serving {
		for _, r := range current {
			a.drainInBackground(ctx, r, grace, "suspended")
		}
	} else {
		ids := make([]string, len(current))
		for i, r := range current {
			ids[i] = r.proc.RunnerID()
		}
		plan := planScaleDown(ids, desired, a.state.Runtime, load.IdleSince, time.Now())
		for _, r := range current {
			if slices.Contains(plan.stop, r.proc.RunnerID()) {
				a.drainInBackground(ctx, r, grace, "scaled down: "+plan.reason)
			}
		}
		if plan.recheck > 0 {
			a.wakeAfter(plan.recheck)
		}
	}
	stopOthers()
	return nil
}

// scalingView is what keepAliveExpiries needs of the loop's state.
type scalingView struct {
	current      string
	serving      bool
	runtime      events.RuntimeParams
	multiplexing int
	floor        int
}

// scalingNow is the loop's scaling of the current revision.
func (a *appWorker) scalingNow(serving bool) scalingView {
	return scalingView{current: a.state.Current, serving: serving, runtime: a.state.Runtime, multiplexing: a.state.Code.MaxMultiplexing, floor: a.floor}
}

// publishScaling makes the loop's scaling the one keepAliveExpiries reads.
func (a *appWorker) publishScaling(serving bool) {
	v := a.scalingNow(serving)
	a.mu.Lock()
	a.scaling = v
	a.mu.Unlock()
}

// desired is how many runners of the current revision the app needs for
// load: fal's formula, raised to the floor (none if it is not serving).
func (v scalingView) desired(load gateway.Load) int {
	if !v.serving {
		return 0
	}
	return max(desiredRunners(v.runtime, v.multiplexing, load.Demand()), min(v.floor, v.runtime.MaxConcurrency))
}

// keepAliveExpiries returns, by runner id, when idle runners above the
// desired count will be stopped if they stay idle, from the demand the
// gateway sees now. Safe to call from any goroutine.
func (a *appWorker) keepAliveExpiries() map[string]time.Time {
	a.mu.Lock()
	v := a.scaling
	a.mu.Unlock()
	if !v.serving {
		return nil
	}
	load := a.cfg.Traffic.Load(a.name)
	desired := v.desired(load)
	current := a.live(v.current)
	ids := make([]string, len(current))
	for i, r := range current {
		ids[i] = r.proc.RunnerID()
	}
	return keepAliveExpiries(ids, desired, v.runtime, load.IdleSince)
}

// keepCapacity raises the floor when the app's runners must be replaced
// rather than left to demand: the current revision changed (the runners of
// the others are replaced one for one), or the app was resumed (it gets
// back the runners it had when it was suspended). A deletion drops it.
func (a *appWorker) keepCapacity() {
	if a.state.Deleted {
		// A deleted app keeps no capacity for what a later deploy brings:
		// that starts as a new app does.
		a.floor, a.suspended, a.served = 0, false, ""
		return
	}
	if a.state.Current != a.served {
		a.served = a.state.Current
		a.floor = max(a.floor, len(a.liveExcept(a.state.Current)))
	}
	switch {
	case a.state.Suspended && !a.suspended:
		a.suspended, a.suspendedWith = true, len(a.live(a.state.Current))
	case !a.state.Suspended && a.suspended:
		a.suspended = false
		a.floor = max(a.floor, a.suspendedWith)
	}
}

// wakeAfter makes sure a pass comes within d (a keep-alive running out):
// one timer per app, never put off by a later request for one. Only the
// loop calls it.
func (a *appWorker) wakeAfter(d time.Duration) {
	at := time.Now().Add(d)
	if a.recheck != nil && a.recheckAt.After(time.Now()) && !a.recheckAt.After(at) {
		return // an earlier pass is due already
	}
	a.recheckAt = at
	if a.recheck == nil {
		a.recheck = time.AfterFunc(d, a.wake)
		return
	}
	a.recheck.Reset(d)
}

// restartCrashed brings back, once the back-off is over, the runners that
// crashed, under their own ids: a crash does not lower the app's capacity
// (demand and keep_alive may, later). Those of a revision no longer served
// (a switch of revision, a suspend) are reported terminated instead. It
// returns early while backing off.
func (a *appWorker) restartCrashed(ctx context.Context, serving bool) error {
	for id, revisionID := range a.restarting {
		if revisionID != a.state.Current || !serving {
			delete(a.restarting, id)
			if _, err := a.send(ctx, events.ReportRunner{RunnerID: id, RevisionID: revisionID, State: events.RunnerTerminated, Reason: "not restarted: no longer needed"}, id); err != nil {
				return err
			}
			continue
		}
		if time.Until(a.nextStart) > 0 {
			return nil // backing off: backOff scheduled the pass that goes on
		}
		delete(a.restarting, id)
		if _, err := a.startReady(ctx, a.state.Revisions[revisionID], "restart after a crash", id); err != nil {
			reason, failed := runnerFailure(err)
			if !failed {
				return err
			}
			// It did not come back (and is reported terminated): a new
			// runner takes its place after the next back-off.
			a.floor = max(a.floor, len(a.live(a.state.Current))+1)
			a.backOff(reason)
			return nil
		}
	}
	return nil
}

// backOff delays the app's next runner start after a failure, longer for
// each failure in a row, and returns the delay.
func (a *appWorker) backOff(reason string) time.Duration {
	if time.Since(a.lastFailure) > stableAfter {
		a.crashes = 0 // the last failure is long past: start the back-off over
	}
	a.lastFailure = time.Now()
	delay := min(a.cfg.CrashBackoff<<min(a.crashes, 10), maxCrashBackoff)
	a.crashes++
	a.nextStart = time.Now().Add(delay)
	// Requests that find no runner then get 503 at once, not a wait
	// for a runner that is not coming.
	a.cfg.Traffic.BackOff(a.name, a.nextStart)
	a.log.Warn("runner failed; backing off", "reason", reason, "retry_in", delay)
	time.AfterFunc(delay, a.wake)
	return delay
}

// reapCrashed reports runners that exited without being asked to.
func (a *appWorker) reapCrashed(ctx context.Context) error {
	a.mu.Lock()
	var crashed []*runner
	for _, r := range a.runners {
		select {
		case <-r.proc.Done():
			if !r.draining && !r.deploying {
				crashed = append(crashed, r)
			}
		default:
		}
	}
	a.mu.Unlock()
	for _, r := range crashed {
		a.cfg.Traffic.RemoveRunner(a.name, r.proc.RunnerID())
		a.forget(r)
		reason := "exited"
		if err := r.proc.ExitErr(); err != nil {
			reason = "exited: " + err.Error()
		}
		delay := a.backOff("runner " + r.proc.RunnerID() + " " + reason)
		if r.revisionID != a.state.Current || a.state.Suspended {
			if err := a.report(ctx, r, events.RunnerTerminated, reason); err != nil {
				return err
			}
			continue
		}
		// A crash does not lower the capacity: the runner waits out the
		// back-off, visibly, and is restarted under its own id.
		a.restarting[r.proc.RunnerID()] = r.revisionID
		if err := a.report(ctx, r, events.RunnerCrashBackoff, fmt.Sprintf("%s; restarting in %s", reason, delay)); err != nil {
			return err
		}
	}
	return nil
}

// forgetLostRunners reports runners the log believes alive but that this
// worker does not run: left over from before a restart of serve.
func (a *appWorker) forgetLostRunners(ctx context.Context) error {
	if len(a.untracked()) == 0 {
		return nil
	}
	// A runner that stopped since the last refresh is forgotten only once
	// its end is in the log: read the log again, so as not to take it for
	// a lost one and report its end twice.
	if err := a.refresh(ctx); err != nil {
		return err
	}
	lost := a.untracked()
	for _, id := range lost {
		if r := a.state.Runners[id]; r.RevisionID == a.state.Current && a.wasServing(r) {
			a.lost[id] = r.RevisionID
		}
	}
	// A restart does not lower the capacity either (counted once, however
	// often this pass is retried); runners being stopped, or started to
	// take over from them, are no capacity to restore.
	a.floor = max(a.floor, len(a.live(a.state.Current))+len(a.lostOf(a.state.Current)))
	for _, id := range lost {
		cmd := events.ReportRunner{RunnerID: id, RevisionID: a.state.Runners[id].RevisionID, State: events.RunnerTerminated, Reason: lostInRestart}
		if _, err := a.send(ctx, cmd, id); err != nil {
			return err
		}
	}
	if len(lost) > 0 {
		return a.refresh(ctx)
	}
	return nil
}

// lostInRestart is the reason of a runner lost in a restart of the server.
const lostInRestart = "lost when the server restarted"

// replacingLost is the reason of a runner started in place of runner id,
// lost in a restart of the server.
func replacingLost(id string) string {
	return "replacing runner " + id + ", " + lostInRestart
}

// wasServing reports whether a runner lost in a restart was capacity of
// the app: not being stopped (draining, terminating), and not the
// replacement a graceful rollout was starting before it drained the
// runner it replaces (the surge).
func (a *appWorker) wasServing(r *aggregates.Runner) bool {
	switch r.State {
	case events.RunnerDraining, events.RunnerTerminating:
		return false
	case events.RunnerSetup:
		ro := a.state.Rollout
		return ro == nil || ro.Force || ro.RevisionID != r.RevisionID
	}
	return true
}

// lostOf lists the runners of revisionID lost in a restart whose capacity
// is still to restore, in a stable order.
func (a *appWorker) lostOf(revisionID string) []string {
	var out []string
	for id, rev := range a.lost {
		if rev == revisionID {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// untracked lists the runners the log believes alive but this worker
// does not run.
func (a *appWorker) untracked() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for id := range a.state.Runners {
		_, running := a.runners[id]
		_, restarting := a.restarting[id]
		if !running && !restarting {
			out = append(out, id)
		}
	}
	return out
}

// live returns the running, not draining runners of revisionID, oldest first.
func (a *appWorker) live(revisionID string) []*runner {
	return a.selectRunners(func(r *runner) bool { return !r.deploying && r.revisionID == revisionID })
}

func (a *appWorker) liveExcept(revisionID string) []*runner {
	return a.selectRunners(func(r *runner) bool { return !r.deploying && r.revisionID != revisionID })
}

// anyRunnerExcept reports whether a runner of another revision than
// revisionID is still tracked, draining or not.
func (a *appWorker) anyRunnerExcept(revisionID string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.runners {
		if r.revisionID != revisionID && !r.deploying {
			return true
		}
	}
	return false
}

func (a *appWorker) selectRunners(keep func(*runner) bool) []*runner {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*runner
	for _, r := range a.runners {
		if !r.draining && keep(r) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(x, y *runner) int { return x.proc.StartedAt().Compare(y.proc.StartedAt()) })
	return out
}

func (a *appWorker) forget(r *runner) {
	a.mu.Lock()
	delete(a.runners, r.proc.RunnerID())
	a.mu.Unlock()
}

func (a *appWorker) markDraining(r *runner) {
	a.mu.Lock()
	r.draining = true
	a.mu.Unlock()
}

// drain stops r gracefully: the gateway sends it nothing new (draining),
// its requests in flight get up to requestTimeout to end (those still
// running then are cut and counted), and only then does it get SIGTERM,
// and SIGKILL after the stop grace (terminating), until it is gone
// (terminated).
func (a *appWorker) drain(ctx context.Context, r *runner, requestTimeout time.Duration, why string) error {
	a.markDraining(r)
	// The report is best effort: the runner is stopped even if the bus is
	// unreachable, or it would keep running untracked.
	drainingErr := a.report(ctx, r, events.RunnerDraining, why)
	id := r.proc.RunnerID()
	waitCtx, cancel := context.WithTimeout(ctx, requestTimeout)
	remaining := a.cfg.Traffic.Drain(waitCtx, a.name, id)
	cancel()
	reason := why
	if remaining > 0 {
		cut := a.cfg.Traffic.Drop(a.name, id)
		reason += fmt.Sprintf("; %d in-flight request(s) cut after %s", cut, requestTimeout)
	}
	terminatingErr := a.report(ctx, r, events.RunnerTerminating, fmt.Sprintf("%s; SIGTERM, then SIGKILL after %s if still running", why, a.cfg.StopGrace))
	forced, err := r.proc.Stop(ctx, a.cfg.StopGrace)
	if forced {
		reason += "; killed after " + a.cfg.StopGrace.String()
	}
	a.cfg.Traffic.RemoveRunner(a.name, id)
	// Forget the runner only once its end is reported: a pass in between
	// would take a runner the log believes alive but that is not tracked
	// for one lost in a restart, and report it terminated a second time.
	err = errors.Join(drainingErr, terminatingErr, err, a.report(ctx, r, events.RunnerTerminated, reason))
	a.forget(r)
	return err
}

// drainInBackground drains r without holding up the loop. The drain
// outlives the loop's context (a shutdown lets it finish within its grace
// and report) and the worker waits for it before it returns.
func (a *appWorker) drainInBackground(ctx context.Context, r *runner, requestTimeout time.Duration, why string) {
	a.markDraining(r)
	a.drains.Go(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout+a.cfg.StopGrace+2*reportTimeout)
		defer cancel()
		if err := a.drain(ctx, r, requestTimeout, why); err != nil {
			a.log.Warn("stopping runner", "runner", r.proc.RunnerID(), "error", err)
		}
		a.wake()
	})
}

// kill stops r at once: the gateway cuts its requests in flight (their
// clients get 502), then the process is killed. It returns how many
// requests were cut, which its terminated report records, for the force
// rollout rolloutID if it is one ("" for a single kill).
func (a *appWorker) kill(ctx context.Context, r *runner, why, rolloutID string) (dropped int, err error) {
	a.markDraining(r)
	id := r.proc.RunnerID()
	dropped = a.cfg.Traffic.Drop(a.name, id)
	err = r.proc.Kill(ctx)
	a.cfg.Traffic.RemoveRunner(a.name, id)
	a.forget(r)
	end := a.runnerReport(r, events.RunnerTerminated, fmt.Sprintf("%s; %d in-flight request(s) dropped", why, dropped))
	if rolloutID != "" {
		end.RolloutID, end.DroppedRequests = rolloutID, dropped
	}
	_, rerr := a.send(ctx, end, id)
	return dropped, errors.Join(err, rerr)
}

func (a *appWorker) report(ctx context.Context, r *runner, state events.RunnerState, reason string) error {
	_, err := a.send(ctx, a.runnerReport(r, state, reason), r.proc.RunnerID())
	return err
}

// runnerReport is the report of r's move to state, for reason.
func (a *appWorker) runnerReport(r *runner, state events.RunnerState, reason string) events.ReportRunner {
	return events.ReportRunner{
		RunnerID:   r.proc.RunnerID(),
		RevisionID: r.revisionID,
		State:      state,
		PID:        r.proc.PID(),
		Port:       r.proc.Port(),
		// Reasons may quote a runner's output or a multi-line error.
		Reason: aggregates.FitText(reason, aggregates.MaxReasonBytes),
	}
}

// send executes a command for the app and returns its outcome. A rejected
// report is logged, not retried: it means the log moved on (for example the
// rollout was superseded) and the next pass works from the new state.
func (a *appWorker) send(ctx context.Context, cmd events.Command, correlationID string) (events.Outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	o, err := a.cfg.Commands.Execute(ctx, events.NewCommand(a.name, cmd, events.Metadata{Actor: Actor, CorrelationID: correlationID}))
	if err != nil {
		return o, fmt.Errorf("send %s: %w", cmd.CommandType(), err)
	}
	if o.Status == events.OutcomeRejected {
		a.log.Warn("worker command rejected", "command", cmd.CommandType(), "code", o.Code, "message", o.Message)
	}
	return o, nil
}

// secretEnv returns the app's secrets as NAME=VALUE entries of a runner's
// environment: for each secret the log lists, the very version it names.
// A secret whose value cannot be read stops the runner from starting:
// running without it, or with a value the log does not name, would be
// worse. Errors name secrets, never values.
func (a *appWorker) secretEnv(ctx context.Context) ([]string, error) {
	if len(a.state.Secrets) == 0 {
		return nil, nil
	}
	if a.cfg.Secrets == nil {
		return nil, fmt.Errorf("app %q has secrets and this worker has no secret store", a.name)
	}
	env := make([]string, 0, len(a.state.Secrets))
	for _, name := range slices.Sorted(maps.Keys(a.state.Secrets)) {
		value, err := a.cfg.Secrets.Get(ctx, a.name, name, a.state.Secrets[name].Version)
		if err != nil {
			return nil, err
		}
		env = append(env, name+"="+string(value))
	}
	return env, nil
}
