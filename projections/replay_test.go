package projections_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections"
)

// generator writes a random history as the command processor would: it
// decides random commands with aggregates.Decide on each app's state
// (kept folded in memory, so that a long history costs no reloads) and
// appends the accepted ones' events through the store.
type generator struct {
	f       *fixture
	rng     *rand.Rand
	apps    []string
	states  map[string]aggregates.App
	runners map[string][]string
	// events counts the events stored.
	events int
}

func newGenerator(f *fixture, seed uint64, apps int) *generator {
	g := &generator{f: f, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), states: map[string]aggregates.App{}, runners: map[string][]string{}}
	for i := range apps {
		g.apps = append(g.apps, fmt.Sprintf("app-%02d", i))
	}
	return g
}

// ptr returns a pointer to v.
func ptr[V any](v V) *V { return &v }

// command returns a random command for state: deploys and their outcomes,
// scales, set-rev, deletes, runner reports, suspends, rollouts.
func (g *generator) command(app string, state aggregates.App) events.Command {
	rng := g.rng
	ids := slices.Sorted(maps.Keys(state.Revisions))
	pick := func() string {
		if len(ids) == 0 {
			return uuid.NewString()
		}
		return ids[rng.IntN(len(ids))]
	}
	switch k := rng.IntN(14); {
	case k < 2 || len(ids) == 0:
		return events.Deploy{RevisionID: uuid.NewString(), Command: "run $PORT", Message: fmt.Sprintf("change %d", rng.IntN(100)),
			ResetScale: rng.IntN(4) == 0, Runtime: events.RuntimeOverrides{MinConcurrency: ptr(rng.IntN(3))},
			Annotations: map[string]string{"git_sha": fmt.Sprint(rng.IntN(1000))}}
	case k < 4:
		return events.CompleteDeploy{RevisionID: pick()}
	case k == 4:
		return events.FailDeploy{RevisionID: pick(), Reason: "exit 1"}
	case k == 5:
		return events.Scale{Runtime: events.RuntimeOverrides{MinConcurrency: ptr(rng.IntN(3)), KeepAlive: ptr(events.Seconds(rng.IntN(600)))},
			Code: events.CodeOverrides{MaxMultiplexing: ptr(1 + rng.IntN(4))}}
	case k == 6:
		return events.SetRevision{RevisionID: fmt.Sprintf("v%d", 1+rng.IntN(int(max(state.LastNumber, 1)))), Message: "back"}
	case k == 7:
		return events.DeleteRevision{RevisionID: pick()}
	case k < 11:
		if len(g.runners[app]) == 0 || rng.IntN(3) == 0 {
			g.runners[app] = append(g.runners[app], uuid.NewString())
		}
		states := []events.RunnerState{events.RunnerSetup, events.RunnerIdle, events.RunnerRunning, events.RunnerDraining, events.RunnerTerminated, events.RunnerCrashBackoff}
		return events.ReportRunner{RunnerID: g.runners[app][rng.IntN(len(g.runners[app]))], RevisionID: pick(), State: states[rng.IntN(len(states))],
			PID: rng.IntN(3) * 100, Port: 8000 + rng.IntN(2), Reason: fmt.Sprint("reason ", rng.IntN(5))}
	case k == 11:
		if state.Suspended {
			return events.Resume{}
		}
		return events.Suspend{}
	default:
		if state.Rollout != nil {
			return events.CompleteRollout{RolloutID: state.Rollout.ID, Replaced: 1 + rng.IntN(3)}
		}
		return events.Rollout{RolloutID: uuid.NewString(), Force: rng.IntN(3) == 0}
	}
}

// until decides random commands until at least n events are stored.
func (g *generator) until(n int) {
	g.f.t.Helper()
	for g.events < n {
		app := g.apps[g.rng.IntN(len(g.apps))]
		g.do(app, fmt.Sprintf("user%d", g.rng.IntN(4)), g.command(app, g.states[app]))
	}
}

// do decides cmd for app and stores its events, if it is accepted.
func (g *generator) do(app, actor string, cmd events.Command) {
	g.f.t.Helper()
	state := g.states[app]
	g.f.clock = g.f.clock.Add(time.Second)
	evs, err := aggregates.Decide(state, cmd, g.f.clock)
	if err != nil || len(evs) == 0 {
		return
	}
	commandID := uuid.NewString()
	envs := make([]events.Envelope, len(evs))
	for i, ev := range evs {
		envs[i] = events.NewEnvelope(app, ev, events.Metadata{Actor: actor, CorrelationID: commandID, CausationID: commandID}, g.f.clock)
	}
	res, err := g.f.store.Append(g.f.ctx, app, state.Version, envs)
	if err != nil {
		g.f.t.Fatalf("append %T to %s: %v", cmd, app, err)
	}
	for i := range envs {
		envs[i].Sequence = res.FirstSequence + uint64(i)
		state = aggregates.Evolve(state, envs[i])
	}
	state.Version = res.LastSequence
	g.states[app] = state
	g.events += len(envs)
	g.f.head = max(g.f.head, res.LastSequence)
}

// duringReplay is the log a replay reads, with a hook called once, in the
// middle of the rebuild, when the event at sequence at is delivered.
type duringReplay struct {
	projections.ReplayLog
	at   uint64
	once sync.Once
	hook func()
}

func (d *duringReplay) Follow(ctx context.Context, from uint64, fn events.FollowFunc) error {
	return d.ReplayLog.Follow(ctx, from, func(env events.Envelope, decodeErr error) error {
		if env.Sequence == d.at {
			d.once.Do(d.hook)
		}
		return fn(env, decodeErr)
	})
}

// jetStreamFixture returns a fixture on the JetStream store of an
// in-process NATS server.
func jetStreamFixture(t *testing.T, ctx context.Context) *fixture {
	store, js := openJetStream(t, ctx)
	return newFixture(t, ctx, store, js)
}

// replayLog returns the fixture's store as the log a replay reads.
func (f *fixture) replayLog() projections.ReplayLog {
	f.t.Helper()
	log, ok := f.store.(projections.ReplayLog)
	if !ok {
		f.t.Fatalf("%T has no LastSequence", f.store)
	}
	return log
}

// A replay of a random history of more than 10,000 events, on the real
// store, switches in a generation equal to the live one, which kept
// answering queries throughout; events appended during the rebuild are
// in the new generation exactly once.
func TestReplayOfARandomHistoryEqualsTheLiveModel(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("random history seed: %d", seed)
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute) // a deadline, not a measure
	defer cancel()
	f := jetStreamFixture(t, ctx)
	g := newGenerator(f, seed, 40)
	g.until(10_000)
	live := f.caughtUp(f.live())
	appsBefore, revisionsBefore := len(live.Apps()), len(live.Revisions(g.apps[0]))
	if appsBefore != len(g.apps) {
		t.Fatalf("%d apps in the live model, want %d", appsBefore, len(g.apps))
	}

	// A reader queries the live model all along; every answer must be a
	// whole generation, never a half-built one.
	stopReader := make(chan struct{})
	var reads atomic.Int64
	readerDone := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stopReader:
				readerDone <- nil
				return
			default:
			}
			if n := len(live.Apps()); n < appsBefore {
				readerDone <- fmt.Errorf("a query saw %d apps, fewer than the %d there were", n, appsBefore)
				return
			}
			if n := len(live.Revisions(g.apps[0])); n != revisionsBefore {
				readerDone <- fmt.Errorf("a query saw %d revisions of %s, not the %d there are", n, g.apps[0], revisionsBefore)
				return
			}
			reads.Add(1)
		}
	}()

	// In the middle of the rebuild: the live model answers, a second
	// replay is refused, and new events arrive, among them a crash
	// report, which counts one restart each time it is applied.
	const lateApp, busyApp = "late", "busy"
	lateRunner, lateRevision := uuid.NewString(), uuid.NewString()
	midway := f.head / 2
	var duringErr error
	log := &duringReplay{ReplayLog: f.replayLog(), at: midway, hook: func() {
		if n := len(live.Revisions(g.apps[0])); n != revisionsBefore {
			duringErr = errors.Join(duringErr, fmt.Errorf("the live model listed %d revisions of %s during the rebuild, want %d", n, g.apps[0], revisionsBefore))
		}
		if _, err := projections.Replay(ctx, f.replayLog(), live, projections.ReplayOptions{}); !errors.Is(err, projections.ErrReplayRunning) {
			duringErr = errors.Join(duringErr, fmt.Errorf("a second replay during the first = %v, want ErrReplayRunning", err))
		}
		g.do(lateApp, "late-user", events.Deploy{RevisionID: lateRevision, Command: "run $PORT"})
		g.do(lateApp, "worker:runner", events.ReportRunner{RunnerID: lateRunner, RevisionID: lateRevision, State: events.RunnerCrashBackoff, Reason: "exit 3"})
	}}
	// Another writer appends crash reports of one runner all along, each
	// counting one restart where it is applied.
	stopWriter := make(chan struct{})
	writerDone := make(chan int, 1)
	busyRunner, busyTime := uuid.NewString(), f.clock
	go func() {
		var version uint64
		crashes := 0
		defer func() { writerDone <- crashes }()
		for {
			env := events.NewEnvelope(busyApp, events.RunnerStateChanged{RunnerID: busyRunner, State: events.RunnerCrashBackoff, Reason: "exit 1"}, events.Metadata{Actor: "worker:runner", CausationID: uuid.NewString()}, busyTime)
			res, err := f.store.Append(ctx, busyApp, version, []events.Envelope{env})
			if err != nil {
				t.Errorf("append a crash report: %v", err)
				return
			}
			version, crashes = res.LastSequence, crashes+1
			select {
			case <-stopWriter:
				return
			default:
			}
		}
	}()
	report, err := projections.Replay(ctx, log, live, projections.ReplayOptions{})
	close(stopWriter)
	crashes := <-writerDone
	close(stopReader)
	if readerErr := <-readerDone; readerErr != nil {
		t.Error(readerErr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if duringErr != nil {
		t.Error(duringErr)
	}
	if reads.Load() == 0 {
		t.Error("the concurrent reader got no answer")
	}
	t.Logf("replayed %d events in %.2fs (%.0f events/s): %+v", report.EventsRead, report.Seconds, float64(report.EventsRead)/report.Seconds, report.Differences)

	if !report.Switched || report.Generation != 2 || live.Generation() != 2 {
		t.Errorf("report %+v, live generation %d; want switched to generation 2", report, live.Generation())
	}
	if report.EventsRead < 10_000 || report.ToSequence != report.EventsRead || report.LiveSequence != report.ToSequence || report.ToSequence > live.Checkpoint() {
		t.Errorf("report: %d events read, to sequence %d (live at %d when compared); live at %d now",
			report.EventsRead, report.ToSequence, report.LiveSequence, live.Checkpoint())
	}
	if !report.Differences.None() || len(report.Differences.Details) != 0 {
		t.Errorf("the new generation differs from the old one: %+v", report.Differences)
	}

	// The events appended during the replay are in the switched-in
	// generation once each (applied by the replay before the switch, or
	// by the live model's follower after it).
	f.head, _ = f.replayLog().LastSequence(ctx)
	f.caughtUp(live)
	runners := live.Runners(lateApp, true)
	if len(runners) != 1 || runners[0].RunnerID != lateRunner || runners[0].Restarts != 1 {
		t.Errorf("the runner reported during the rebuild: %+v, want it once with 1 restart", runners)
	}
	if busy := live.Runners(busyApp, true); len(busy) != 1 || busy[0].Restarts != crashes {
		t.Errorf("a runner with %d crash reports appended during the replay shows %+v, want %d restarts", crashes, busy, crashes)
	}
	// The live model goes on following the log after the switch.
	g.do(lateApp, "worker:runner", events.CompleteDeploy{RevisionID: lateRevision})
	f.caughtUp(live)
	if app := mustApp(t, live, lateApp); app.CurrentRevision != lateRevision {
		t.Errorf("a deploy completed after the switch: current revision %q, want %s", app.CurrentRevision, lateRevision)
	}

	// The read model agrees with the aggregate's fold (aggregates.Evolve,
	// what the decider knows) on every app the generator wrote.
	for _, app := range g.apps {
		agreesWithTheAggregate(t, live, g.states[app])
	}

	f.app(lateApp) // snapshot every app written
	f.app(busyApp)
	for _, app := range g.apps {
		f.app(app)
		f.app(app).ids = slices.Sorted(maps.Keys(g.states[app].Revisions))
	}
	if got, want := f.snapshot(live), f.snapshot(f.rebuild()); !reflect.DeepEqual(got, want) {
		t.Errorf("the live model after the switch differs from a rebuild of the log")
	}
}

// agreesWithTheAggregate checks that model shows what state, the
// aggregate folded from the same events, knows of its app: the current
// revision, the runtime parameters, suspension, each revision's number,
// status, command and deletion, and the live runners.
func agreesWithTheAggregate(t *testing.T, model *projections.RevisionHistory, state aggregates.App) {
	t.Helper()
	view := mustApp(t, model, state.Name)
	if view.CurrentRevision != state.Current || view.Suspended != state.Suspended || (state.HasRuntime && view.RuntimeParams != state.Runtime) {
		t.Errorf("app %s: read model current %q, suspended %v, runtime %+v; aggregate %q, %v, %+v",
			state.Name, view.CurrentRevision, view.Suspended, view.RuntimeParams, state.Current, state.Suspended, state.Runtime)
	}
	for id, rev := range state.Revisions {
		got := mustRevision(t, model, state.Name, id)
		status := got.Status
		if status == events.StatusSuspended {
			status = events.StatusDeployed // the view's word for the current revision of a suspended app
		}
		if got.Number != rev.Number || status != rev.Status || got.Deleted != rev.Deleted || got.Command != rev.Command {
			t.Errorf("app %s revision %s: read model v%d %s deleted %v %q; aggregate v%d %s deleted %v %q",
				state.Name, id, got.Number, got.Status, got.Deleted, got.Command, rev.Number, rev.Status, rev.Deleted, rev.Command)
		}
	}
	var live []string
	for _, r := range model.Runners(state.Name, false) {
		live = append(live, r.RunnerID)
	}
	slices.Sort(live)
	if want := slices.Sorted(maps.Keys(state.Runners)); !slices.Equal(live, want) {
		t.Errorf("app %s: live runners %v in the read model, %v in the aggregate", state.Name, live, want)
	}
}

// A replay reports what the new generation shows differently: here the
// live model applied an event the log does not hold as such (what a bug
// fixed in the fold looks like), and the replay puts the log's version in.
func TestReplayReportsAndFixesDifferences(t *testing.T) {
	t.Parallel()
	f := jetStreamFixture(t, testContext(t))
	ctx := f.ctx
	f.deploy("web", "r1", "alice", codeSmall, runtimeA)
	f.deploy("web", "r2", "bob", codeLarge, runtimeB)
	f.runner("web", "runner-1", "r2", events.RunnerIdle, 100, 8000)

	// The live model saw "web"'s first event with another message, and
	// an app the log does not have.
	live := projections.NewRevisionHistory()
	first := events.NewEnvelope("web", events.RevisionCreated{RevisionID: "r1", Command: "python serve.py --rev r1", Code: codeSmall, Runtime: runtimeA, Message: "wrong"}, events.Metadata{Actor: "alice"}, f.clock)
	first.Sequence = 1
	live.Apply(first)
	ghost := events.NewEnvelope("ghost", events.RevisionCreated{RevisionID: "g1", Command: "x"}, events.Metadata{Actor: "x"}, f.clock)
	ghost.Sequence = 2
	live.Apply(ghost)
	f.run(live)
	f.caughtUp(live)

	report, err := projections.Replay(ctx, f.replayLog(), live, projections.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := report.Differences
	want := projections.Differences{
		Apps:      projections.Changes{Removed: 1, Changed: 1},
		Revisions: projections.Changes{Removed: 1, Changed: 1},
		Details:   d.Details,
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("differences %+v, want %+v", d, want)
	}
	joined := strings.Join(d.Details, "\n")
	for _, part := range []string{"app ghost: only in the old generation", "app web: revision v1 (r1) differs: ", "message"} {
		if !strings.Contains(joined, part) {
			t.Errorf("details do not say %q:\n%s", part, joined)
		}
	}
	if rev := mustRevision(t, live, "web", "r1"); rev.Message != "deploy r1" {
		t.Errorf("after the switch r1's message is %q, want the log's", rev.Message)
	}
	if _, ok := live.App("ghost"); ok {
		t.Error("the app the log does not hold is still there after the switch")
	}
}

// A replay to a sequence builds the past, compares it with the live model
// and leaves the live one serving.
func TestReplayToSequenceDoesNotSwitch(t *testing.T) {
	t.Parallel()
	f := jetStreamFixture(t, testContext(t))
	ctx := f.ctx
	live := f.live()
	f.deploy("web", "r1", "alice", codeSmall, runtimeA)
	mid := f.head
	f.deploy("web", "r2", "bob", codeLarge, runtimeB)
	f.deploy("api", "a1", "bob", codeLarge, runtimeB)
	f.caughtUp(live)

	report, err := projections.Replay(ctx, f.replayLog(), live, projections.ReplayOptions{ToSequence: mid})
	if err != nil {
		t.Fatal(err)
	}
	if report.Switched || report.Generation != 1 || live.Generation() != 1 || report.ToSequence != mid || report.LiveSequence != f.head {
		t.Errorf("report %+v, live generation %d; want generation 1 kept, to %d, live at %d", report, live.Generation(), mid, f.head)
	}
	// From the past to now: api and r2 were added, web and r1 changed
	// (r1 is no longer current).
	d := report.Differences
	if d.Apps != (projections.Changes{Added: 1, Changed: 1}) || d.Revisions != (projections.Changes{Added: 2, Changed: 1}) {
		t.Errorf("differences %+v", d)
	}
	if !slices.Contains(d.Details, "app api: only in the live model") {
		t.Errorf("details do not say api is new since sequence %d:\n%s", mid, strings.Join(d.Details, "\n"))
	}
	if got := len(live.Revisions("web")); got != 2 {
		t.Errorf("the live model lists %d revisions of web, want 2 (it must not be switched to the past)", got)
	}

	if _, err := projections.Replay(ctx, f.replayLog(), live, projections.ReplayOptions{ToSequence: f.head + 1}); !errors.Is(err, projections.ErrBeyondLog) {
		t.Errorf("a replay past the log's end = %v, want ErrBeyondLog", err)
	}
}
