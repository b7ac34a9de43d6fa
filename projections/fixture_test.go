package projections_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/embedded/embeddedtest"
	"github.com/revline/revline/projections"
)

// storeKind names a Store implementation the tests run against.
type storeKind struct {
	name string
	open func(t *testing.T, ctx context.Context) (events.Store, jetstream.JetStream)
}

func storeKinds() []storeKind {
	return []storeKind{
		{"memory", func(*testing.T, context.Context) (events.Store, jetstream.JetStream) {
			return events.NewMemoryStore(), nil
		}},
		{"jetstream", openJetStream},
	}
}

// openJetStream starts an in-process NATS server and opens the event
// store on it.
func openJetStream(t *testing.T, ctx context.Context) (events.Store, jetstream.JetStream) {
	srv := embeddedtest.Start(t)
	_, js := embeddedtest.Connect(t, srv)
	store, err := events.NewJetStreamStore(ctx, events.JetStreamStoreConfig{
		JetStream: js, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return store, js
}

// forEachStore runs test, in parallel, once per store implementation.
func forEachStore(t *testing.T, test func(t *testing.T, f *fixture)) {
	t.Helper()
	for _, kind := range storeKinds() {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			store, js := kind.open(t, ctx)
			test(t, newFixture(t, ctx, store, js))
		})
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fixture writes app histories the way the App decider would, one command's
// events per Append, each command a minute after the previous one.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	store events.Store
	js    jetstream.JetStream // nil for the memory store
	clock time.Time
	// head is the stream sequence of the last message stored.
	head     uint64
	commands int
	apps     map[string]*appFixture
}

type appFixture struct {
	version   uint64
	current   string
	runtime   events.RuntimeParams
	deployed  bool
	revisions map[string]events.RevisionCreated
	ids       []string
}

func newFixture(t *testing.T, ctx context.Context, store events.Store, js jetstream.JetStream) *fixture {
	return &fixture{
		t: t, ctx: ctx, store: store, js: js,
		clock: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		apps:  map[string]*appFixture{},
	}
}

func (f *fixture) app(name string) *appFixture {
	a, ok := f.apps[name]
	if !ok {
		a = &appFixture{revisions: map[string]events.RevisionCreated{}}
		f.apps[name] = a
	}
	return a
}

// append stores one command's events for app and returns the sequence of
// the last one.
func (f *fixture) append(app, actor string, evs ...events.Event) uint64 {
	f.t.Helper()
	f.clock = f.clock.Add(time.Minute)
	f.commands++
	meta := events.Metadata{Actor: actor, CausationID: fmt.Sprintf("cmd-%d", f.commands)}
	envs := make([]events.Envelope, len(evs))
	for i, ev := range evs {
		envs[i] = events.NewEnvelope(app, ev, meta, f.clock)
	}
	a := f.app(app)
	res, err := f.store.Append(f.ctx, app, a.version, envs)
	if err != nil {
		f.t.Fatalf("append %d events to %s: %v", len(evs), app, err)
	}
	a.version = res.LastSequence
	f.head = res.LastSequence
	return res.LastSequence
}

var (
	codeSmall = events.CodeParams{MachineType: "GPU-A100", MaxMultiplexing: 1, StartupTimeout: 60}
	codeLarge = events.CodeParams{MachineType: "GPU-H100", MaxMultiplexing: 4, StartupTimeout: 600}
	runtimeA  = events.RuntimeParams{KeepAlive: 60, MinConcurrency: 0, MaxConcurrency: 10, ConcurrencyBuffer: 0, RequestTimeout: 3600}
	runtimeB  = events.RuntimeParams{KeepAlive: 300, MinConcurrency: 1, MaxConcurrency: 20, ConcurrencyBuffer: 2, RequestTimeout: 900}
	runtimeC  = events.RuntimeParams{KeepAlive: 30, MinConcurrency: 2, MaxConcurrency: 5, ConcurrencyBuffer: 1, RequestTimeout: 120}
)

// create records a deploy request for revision id.
func (f *fixture) create(app, id, actor string, code events.CodeParams, runtime events.RuntimeParams) uint64 {
	f.t.Helper()
	ev := events.RevisionCreated{
		RevisionID: id, Command: "python serve.py --rev " + id, Code: code, Runtime: runtime,
		Strategy: events.StrategyRolling, Message: "deploy " + id,
		Annotations: map[string]string{"git_sha": "sha-" + id},
	}
	a := f.app(app)
	a.revisions[id] = ev
	a.ids = append(a.ids, id)
	return f.append(app, actor, ev)
}

// complete marks revision id deployed and moves the alias to it, keeping
// the app's runtime parameters once it has some.
func (f *fixture) complete(app, id string) uint64 {
	f.t.Helper()
	a := f.app(app)
	rev := a.revisions[id]
	set := events.CurrentRevisionSet{From: a.current, To: id, Reason: "deploy", Strategy: rev.Strategy, Message: rev.Message, Code: rev.Code}
	if a.deployed {
		set.Runtime = a.runtime
		set.Inherited = slices.Clone(events.RuntimeParamNames)
		set.InheritedFrom = a.current
	} else {
		set.Runtime = rev.Runtime
	}
	a.current, a.runtime, a.deployed = id, set.Runtime, true
	return f.append(app, "worker:runner", events.RevisionDeployed{RevisionID: id}, set)
}

// deploy creates revision id and completes its deploy.
func (f *fixture) deploy(app, id, actor string, code events.CodeParams, runtime events.RuntimeParams) uint64 {
	f.t.Helper()
	f.create(app, id, actor, code, runtime)
	return f.complete(app, id)
}

func (f *fixture) fail(app, id, reason string) uint64 {
	f.t.Helper()
	return f.append(app, "worker:runner", events.RevisionFailed{RevisionID: id, Reason: reason})
}

// setRev rolls the alias to revision id, inheriting the runtime parameters.
func (f *fixture) setRev(app, id, actor string) uint64 {
	f.t.Helper()
	a := f.app(app)
	set := events.CurrentRevisionSet{
		From: a.current, To: id, Reason: "rollback", Strategy: events.StrategyRolling,
		Message: "roll back", Code: a.revisions[id].Code, Runtime: a.runtime,
		Inherited: slices.Clone(events.RuntimeParamNames), InheritedFrom: a.current,
	}
	a.current = id
	return f.append(app, actor, set)
}

func (f *fixture) scale(app, actor string, after events.RuntimeParams) uint64 {
	f.t.Helper()
	a := f.app(app)
	ev := events.AppScaled{Before: a.runtime, After: after, Changed: events.ChangedRuntimeParams(a.runtime, after)}
	a.runtime = after
	return f.append(app, actor, ev)
}

func (f *fixture) deleteRev(app, id, actor string) uint64 {
	f.t.Helper()
	return f.append(app, actor, events.RevisionDeleted{RevisionID: id})
}

func (f *fixture) suspend(app string) uint64 {
	f.t.Helper()
	return f.append(app, "alice", events.AppSuspended{RevisionID: f.app(app).current})
}

func (f *fixture) resume(app string) uint64 {
	f.t.Helper()
	return f.append(app, "alice", events.AppResumed{RevisionID: f.app(app).current})
}

func (f *fixture) rollout(app, id string, force bool) uint64 {
	f.t.Helper()
	return f.append(app, "alice", events.RolloutRequested{RolloutID: id, RevisionID: f.app(app).current, Force: force})
}

func (f *fixture) completeRollout(app, id string, force bool, replaced, dropped int) uint64 {
	f.t.Helper()
	return f.append(app, "worker:runner", events.RolloutCompleted{
		RolloutID: id, RevisionID: f.app(app).current, Force: force, Replaced: replaced, DroppedRequests: dropped,
	})
}

func (f *fixture) runner(app, runnerID, revisionID string, state events.RunnerState, pid, port int) uint64 {
	f.t.Helper()
	return f.append(app, "worker:runner", events.RunnerStateChanged{
		RunnerID: runnerID, RevisionID: revisionID, State: state, PID: pid, Port: port,
	})
}

// publishGarbage stores a message the registry cannot decode (JetStream
// only) under an app no other event uses, and returns its sequence.
func (f *fixture) publishGarbage() uint64 {
	f.t.Helper()
	ack, err := f.js.Publish(f.ctx, events.EventSubject("garbage", events.TypeRevisionCreated), []byte("not msgpack"))
	if err != nil {
		f.t.Fatal(err)
	}
	f.head = ack.Sequence
	return ack.Sequence
}

// live starts Run on a fresh model for the rest of the test.
func (f *fixture) live() *projections.RevisionHistory {
	f.t.Helper()
	model := projections.NewRevisionHistory()
	f.run(model)
	return model
}

// run runs model until the test ends; a Run that stops for any other
// reason than the end of the test fails it.
func (f *fixture) run(model *projections.RevisionHistory) {
	f.t.Helper()
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan error, 1)
	go func() { done <- projections.Run(ctx, f.store, model) }()
	f.t.Cleanup(func() {
		cancel()
		// The test's own deadline is reported where it hits; here only
		// an unexpected stop is.
		if err := <-done; !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			f.t.Errorf("Run stopped with %v, want the end of its context", err)
		}
	})
}

// caughtUp waits until model has applied everything stored so far.
func (f *fixture) caughtUp(model *projections.RevisionHistory) *projections.RevisionHistory {
	f.t.Helper()
	if err := model.WaitFor(f.ctx, f.head); err != nil {
		f.t.Fatal(err)
	}
	return model
}

// rebuild builds a fresh model up to everything stored so far.
func (f *fixture) rebuild() *projections.RevisionHistory {
	f.t.Helper()
	model, err := projections.Rebuild(f.ctx, f.store, f.head)
	if err != nil {
		f.t.Fatal(err)
	}
	return model
}

// snapshot is every query's answer on every app and revision the fixture
// wrote, for comparing two models.
type snapshot struct {
	Checkpoint uint64
	Apps       []projections.AppView
	Lists      map[string][]projections.RevisionView
	ByID       map[string]projections.RevisionView
	Runners    map[string][]projections.RunnerView
	Rollouts   map[string][]projections.RolloutView
	Switches   map[string]projections.SwitchView
}

func (f *fixture) snapshot(model *projections.RevisionHistory) snapshot {
	s := snapshot{
		Checkpoint: model.Checkpoint(),
		Apps:       model.Apps(),
		Lists:      map[string][]projections.RevisionView{},
		ByID:       map[string]projections.RevisionView{},
		Runners:    map[string][]projections.RunnerView{},
		Rollouts:   map[string][]projections.RolloutView{},
		Switches:   map[string]projections.SwitchView{},
	}
	for name, a := range f.apps {
		s.Lists[name] = model.Revisions(name)
		s.Runners[name] = model.Runners(name, true)
		s.Rollouts[name] = model.Rollouts(name)
		if sw, ok := model.LastSwitch(name); ok {
			s.Switches[name] = sw
		}
		for _, id := range a.ids {
			if rev, ok := model.Revision(name, id); ok {
				s.ByID[name+"/"+id] = rev
			}
		}
	}
	return s
}

// ids lists the revision ids of revs, in order.
func ids(revs []projections.RevisionView) []string {
	out := make([]string, len(revs))
	for i, r := range revs {
		out[i] = r.RevisionID
	}
	return out
}

func mustRevision(t *testing.T, model *projections.RevisionHistory, app, id string) projections.RevisionView {
	t.Helper()
	rev, ok := model.Revision(app, id)
	if !ok {
		t.Fatalf("Revision(%q, %q) not found", app, id)
	}
	return rev
}

func mustApp(t *testing.T, model *projections.RevisionHistory, app string) projections.AppView {
	t.Helper()
	view, ok := model.App(app)
	if !ok {
		t.Fatalf("App(%q) not found", app)
	}
	return view
}
