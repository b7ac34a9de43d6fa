package queryapi_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/embedded/embeddedtest"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/projections/queryapi"
)

// Revision ids of app "web": rev1 and rev2 share their first 30
// characters, rev3 is the only one starting with 0193f1d9.
const (
	rev1     = "0193f1c2-aaaa-7000-8000-000000000001"
	rev2     = "0193f1c2-aaaa-7000-8000-000000000002"
	rev3     = "0193f1d9-bbbb-7000-8000-000000000003"
	runnerA  = "0193f1c2-cccc-7000-8000-00000000000a"
	runnerB  = "0193f1c2-cccc-7000-8000-00000000000b"
	rollout1 = "0193f1c2-dddd-7000-8000-000000000001"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// history is what the projection is fed: app web with three revisions
// (rev1 current), two runners (one terminated) and a completed rollout;
// app api with a failed deploy.
func history() []events.Envelope {
	code := events.DefaultCodeParams()
	runtime := events.DefaultRuntimeParams()
	type item struct {
		app string
		ev  events.Event
	}
	items := []item{
		{"web", events.RevisionCreated{RevisionID: rev1, Command: "run $PORT", Code: code, Runtime: runtime, Message: "first", Annotations: map[string]string{"git_sha": "abc"}}},
		{"web", events.RevisionDeployed{RevisionID: rev1}},
		{"web", events.CurrentRevisionSet{To: rev1, Reason: "deploy", Strategy: events.StrategyRolling, Code: code, Runtime: runtime}},
		{"web", events.RunnerStateChanged{RunnerID: runnerA, RevisionID: rev1, State: events.RunnerIdle, PID: 100, Port: 40001}},
		{"web", events.RunnerStateChanged{RunnerID: runnerB, RevisionID: rev1, State: events.RunnerTerminated, PID: 101, Port: 40002}},
		{"web", events.RevisionCreated{RevisionID: rev2, Command: "run2 $PORT", Code: code, Runtime: runtime}},
		{"web", events.RevisionFailed{RevisionID: rev2, Reason: "runner exited with status 1"}},
		{"web", events.RevisionCreated{RevisionID: rev3, Command: "run3 $PORT", Code: code, Runtime: runtime}},
		{"web", events.RolloutRequested{RolloutID: rollout1, RevisionID: rev1}},
		{"web", events.RolloutCompleted{RolloutID: rollout1, RevisionID: rev1, Replaced: 1}},
		{"api", events.RevisionCreated{RevisionID: rev1, Command: "api $PORT", Code: code, Runtime: runtime}},
		{"api", events.RevisionFailed{RevisionID: rev1, Reason: "not listening"}},
	}
	out := make([]events.Envelope, len(items))
	for i, it := range items {
		env := events.NewEnvelope(it.app, it.ev, events.Metadata{Actor: "alice"}, t0.Add(time.Duration(i)*time.Minute))
		env.Sequence = uint64(i + 1)
		out[i] = env
	}
	return out
}

type fixture struct {
	model  *projections.RevisionHistory
	local  queryapi.Local
	client *queryapi.Client
	nc     *nats.Conn // the client's connection
}

// newFixture feeds a model with history and serves it on an embedded
// server; the client asks over a connection of its own.
func newFixture(t *testing.T) fixture {
	t.Helper()
	srv := embeddedtest.Start(t)
	serverConn, _ := embeddedtest.Connect(t, srv)
	clientConn, _ := embeddedtest.Connect(t, srv)
	model := projections.NewRevisionHistory()
	for _, env := range history() {
		if !model.Apply(env) {
			t.Fatalf("event %d not applied", env.Sequence)
		}
	}
	local := queryapi.Local{Model: model}
	svc, err := queryapi.Serve(serverConn, local, "0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	return fixture{model: model, local: local, client: queryapi.NewClient(clientConn), nc: clientConn}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// withoutReasons clears RunnerView.Reason, which is not part of the JSON
// contract and so never crosses the wire.
func withoutReasons(runners []projections.RunnerView) []projections.RunnerView {
	for i := range runners {
		runners[i].Reason = ""
	}
	return runners
}

// sameAnswer runs a query on Local and on the client and fails unless both
// succeed with equal results.
func sameAnswer[T any](t *testing.T, name string, local, remote func() (T, error)) T {
	t.Helper()
	want, err := local()
	if err != nil {
		t.Fatalf("%s: local: %v", name, err)
	}
	got, err := remote()
	if err != nil {
		t.Fatalf("%s: client: %v", name, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: client answered\n %+v\nlocal answered\n %+v", name, got, want)
	}
	return got
}

func TestClientAnswersLikeLocal(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := testContext(t)

	apps := sameAnswer(t, "apps",
		func() (queryapi.Page[projections.AppView], error) {
			return f.local.Apps(ctx, queryapi.PageRequest{}, 0)
		},
		func() (queryapi.Page[projections.AppView], error) {
			return f.client.Apps(ctx, queryapi.PageRequest{}, 0)
		})
	if apps.NextPageToken != "" {
		t.Errorf("apps: a short list has a next page token %q", apps.NextPageToken)
	}
	if apps := apps.Items; len(apps) != 2 || apps[0].Name != "api" || apps[1].Name != "web" || apps[1].CurrentRevision != rev1 || apps[1].Runners != 1 || apps[1].Revisions != 3 {
		t.Errorf("apps = %+v", apps)
	}

	revs := sameAnswer(t, "revisions",
		func() (queryapi.Page[projections.RevisionView], error) {
			return f.local.Revisions(ctx, "web", queryapi.PageRequest{}, 0)
		},
		func() (queryapi.Page[projections.RevisionView], error) {
			return f.client.Revisions(ctx, "web", queryapi.PageRequest{}, 0)
		})
	if revs.NextPageToken != "" {
		t.Errorf("revisions: a short list has a next page token %q", revs.NextPageToken)
	}
	if revs := revs.Items; len(revs) != 3 || revs[0].RevisionID != rev3 || revs[2].RevisionID != rev1 || !revs[2].Current || revs[2].Annotations["git_sha"] != "abc" {
		t.Errorf("revisions = %+v", revs)
	}

	for _, tc := range []struct{ ref, want string }{
		{rev1, rev1},
		{rev2, rev2},
		{"0193f1d9", rev3},
		{"0193F1D9-BBBB", rev3},
		{strings.ToUpper(rev1), rev1},
	} {
		rev := sameAnswer(t, "revision "+tc.ref,
			func() (projections.RevisionView, error) { return f.local.Revision(ctx, "web", tc.ref, 0) },
			func() (projections.RevisionView, error) { return f.client.Revision(ctx, "web", tc.ref, 0) })
		if rev.RevisionID != tc.want {
			t.Errorf("revision %q resolved to %s, want %s", tc.ref, rev.RevisionID, tc.want)
		}
	}
	failed := sameAnswer(t, "failed revision",
		func() (projections.RevisionView, error) { return f.local.Revision(ctx, "web", rev2, 0) },
		func() (projections.RevisionView, error) { return f.client.Revision(ctx, "web", rev2, 0) })
	if failed.Status != events.StatusFailed || failed.FailReason != "runner exited with status 1" {
		t.Errorf("failed revision = %+v", failed)
	}

	for _, tc := range []struct {
		filter queryapi.RunnerFilter
		want   []string
	}{
		{queryapi.RunnerFilter{}, []string{runnerA}},
		{queryapi.RunnerFilter{All: true}, []string{runnerA, runnerB}},
		{queryapi.RunnerFilter{State: events.RunnerIdle}, []string{runnerA}},
		{queryapi.RunnerFilter{State: events.RunnerTerminated}, []string{runnerB}},
		{queryapi.RunnerFilter{State: events.RunnerDraining}, []string{}},
	} {
		runners := sameAnswer(t, "runners",
			func() ([]projections.RunnerView, error) {
				r, err := f.local.Runners(ctx, "web", tc.filter, queryapi.PageRequest{}, 0)
				return withoutReasons(r.Items), err
			},
			func() ([]projections.RunnerView, error) {
				r, err := f.client.Runners(ctx, "web", tc.filter, queryapi.PageRequest{}, 0)
				return r.Items, err
			})
		var got []string
		for _, r := range runners {
			got = append(got, r.RunnerID)
		}
		if !slices.Equal(got, tc.want) && len(got)+len(tc.want) > 0 {
			t.Errorf("runners %+v = %v, want %v", tc.filter, got, tc.want)
		}
		if len(runners) > 0 && runners[0].RunnerID == runnerA && (runners[0].State != events.RunnerIdle || runners[0].Port != 40001) {
			t.Errorf("runner A = %+v", runners[0])
		}
	}

	ro := sameAnswer(t, "rollout",
		func() (projections.RolloutView, error) { return f.local.Rollout(ctx, "web", rollout1, 0) },
		func() (projections.RolloutView, error) { return f.client.Rollout(ctx, "web", rollout1, 0) })
	if ro.Status != projections.RolloutCompleted || ro.Replaced != 1 || ro.RequestedBy != "alice" {
		t.Errorf("rollout = %+v", ro)
	}
}

func TestServerAnswersItsVersion(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	v, err := f.client.ServerVersion(testContext(t))
	if err != nil || v.Version != "0.1.0" {
		t.Fatalf("ServerVersion() = %+v, %v; want the version Serve was given", v, err)
	}
}

func TestFailedQueriesHaveTheSameCodeOnBothReaders(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := testContext(t)
	for _, tc := range []struct {
		name  string
		query func(r queryapi.Reader) error
		code  string
	}{
		{"revisions of an unknown app", func(r queryapi.Reader) error {
			_, err := r.Revisions(ctx, "nope", queryapi.PageRequest{}, 0)
			return err
		}, queryapi.CodeAppNotFound},
		{"runners of an unknown app", func(r queryapi.Reader) error {
			_, err := r.Runners(ctx, "nope", queryapi.RunnerFilter{All: true}, queryapi.PageRequest{}, 0)
			return err
		}, queryapi.CodeAppNotFound},
		{"revision of an unknown app", func(r queryapi.Reader) error {
			_, err := r.Revision(ctx, "nope", rev1, 0)
			return err
		}, queryapi.CodeAppNotFound},
		{"rollout of an unknown app", func(r queryapi.Reader) error {
			_, err := r.Rollout(ctx, "nope", rollout1, 0)
			return err
		}, queryapi.CodeAppNotFound},
		{"revision prefix too short", func(r queryapi.Reader) error {
			_, err := r.Revision(ctx, "web", "0193f1d", 0)
			return err
		}, queryapi.CodeRevisionRefTooShort},
		{"empty revision ref", func(r queryapi.Reader) error {
			_, err := r.Revision(ctx, "web", "", 0)
			return err
		}, queryapi.CodeRevisionRefTooShort},
		{"ambiguous revision prefix", func(r queryapi.Reader) error {
			_, err := r.Revision(ctx, "web", "0193f1c2", 0)
			return err
		}, queryapi.CodeAmbiguousRevision},
		{"longer ambiguous revision prefix", func(r queryapi.Reader) error {
			_, err := r.Revision(ctx, "web", rev1[:len(rev1)-1], 0)
			return err
		}, queryapi.CodeAmbiguousRevision},
		{"unknown revision", func(r queryapi.Reader) error {
			_, err := r.Revision(ctx, "web", "ffffffff", 0)
			return err
		}, queryapi.CodeRevisionNotFound},
		{"unknown rollout", func(r queryapi.Reader) error {
			_, err := r.Rollout(ctx, "web", "0193f1c2-dddd-7000-8000-000000000099", 0)
			return err
		}, queryapi.CodeRolloutNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for name, reader := range map[string]queryapi.Reader{"local": f.local, "client": f.client} {
				err := tc.query(reader)
				var qerr *queryapi.Error
				if !errors.As(err, &qerr) || qerr.Code != tc.code || qerr.Message == "" {
					t.Errorf("%s: err = %#v, want *queryapi.Error with code %s", name, err, tc.code)
				}
			}
		})
	}
}

func TestServerRefusesInvalidAppNamesAsBadRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := testContext(t)
	for _, app := range []string{"", "Web", "a.b", "*", ">", strings.Repeat("a", 64)} {
		t.Run(app, func(t *testing.T) {
			t.Parallel()
			for name, query := range map[string]func() error{
				"revisions": func() error { _, err := f.client.Revisions(ctx, app, queryapi.PageRequest{}, 0); return err },
				"revision":  func() error { _, err := f.client.Revision(ctx, app, rev1, 0); return err },
				"runners": func() error {
					_, err := f.client.Runners(ctx, app, queryapi.RunnerFilter{}, queryapi.PageRequest{}, 0)
					return err
				},
				"rollout": func() error { _, err := f.client.Rollout(ctx, app, rollout1, 0); return err },
			} {
				var qerr *queryapi.Error
				if err := query(); !errors.As(err, &qerr) || qerr.Code != queryapi.CodeBadRequest || !strings.Contains(qerr.Message, "invalid app name") {
					t.Errorf("%s: err = %#v, want bad_request naming the invalid app name", name, err)
				}
			}
		})
	}
}

func TestServerRefusesABodyThatIsNotJSON(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	msg, err := f.nc.RequestWithContext(testContext(t), queryapi.SubjectPrefix+queryapi.EndpointApps, []byte("apps please"))
	if err != nil {
		t.Fatal(err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != queryapi.CodeBadRequest {
		t.Fatalf("error code %q, want %s (headers %v)", code, queryapi.CodeBadRequest, msg.Header)
	}
}

// A query with MinSequence beyond the model's checkpoint is answered only
// once the model has applied that sequence, and the answer includes it.
func TestQueryWaitsForItsMinSequence(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := testContext(t)
	next := f.model.Checkpoint() + 1
	late := events.NewEnvelope("web", events.RevisionCreated{RevisionID: "0193f1ee-eeee-7000-8000-00000000000e", Command: "late $PORT"},
		events.Metadata{Actor: "bob"}, t0.Add(time.Hour))
	late.Sequence = next

	// Watch the query subject to know when the query is in flight.
	seen, err := f.nc.SubscribeSync(queryapi.SubjectPrefix + queryapi.EndpointRevisions)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.nc.FlushWithContext(ctx); err != nil {
		t.Fatal(err)
	}

	type answer struct {
		revs []projections.RevisionView
		err  error
	}
	answers := make(chan answer, 1)
	go func() {
		revs, err := f.client.Revisions(ctx, "web", queryapi.PageRequest{}, next)
		answers <- answer{revs.Items, err}
	}()
	if _, err := seen.NextMsgWithContext(ctx); err != nil {
		t.Fatalf("the query was never sent: %v", err)
	}
	select {
	case a := <-answers:
		t.Fatalf("answered before sequence %d was applied: %+v", next, a)
	default:
	}

	applied := make(chan struct{})
	go func() {
		defer close(applied)
		f.model.Apply(late)
	}()
	<-applied

	select {
	case a := <-answers:
		if a.err != nil {
			t.Fatal(a.err)
		}
		if len(a.revs) != 4 || a.revs[0].RevisionID != "0193f1ee-eeee-7000-8000-00000000000e" || a.revs[0].CreatedBy != "bob" {
			t.Fatalf("answer does not include sequence %d: %+v", next, a.revs)
		}
	case <-ctx.Done():
		t.Fatalf("no answer after sequence %d was applied: %v", next, ctx.Err())
	}
}

func TestLocalQueryWaitsForItsMinSequence(t *testing.T) {
	t.Parallel()
	model := projections.NewRevisionHistory()
	local := queryapi.Local{Model: model}
	ctx := testContext(t)
	envs := history()
	answers := make(chan []projections.AppView, 1)
	go func() {
		apps, err := local.Apps(ctx, queryapi.PageRequest{}, uint64(len(envs)))
		if err != nil {
			t.Error(err)
		}
		answers <- apps.Items
	}()
	for _, env := range envs {
		model.Apply(env)
	}
	select {
	case apps := <-answers:
		if len(apps) != 2 {
			t.Fatalf("apps = %+v, want both apps of the history", apps)
		}
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
}

func TestLocalQueryForAnUnreachedSequenceFailsWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	local := queryapi.Local{Model: projections.NewRevisionHistory()}
	ctx, cancel := context.WithCancel(testContext(t))
	cancel()
	_, err := local.Apps(ctx, queryapi.PageRequest{}, 5)
	var qerr *queryapi.Error
	if !errors.As(err, &qerr) || qerr.Code != queryapi.CodeNotCaughtUp || !strings.Contains(qerr.Message, "sequence 5") {
		t.Fatalf("err = %#v, want not_caught_up", err)
	}
}

func TestClientWithoutServerSaysToRunServe(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.Start(t)
	nc, _ := embeddedtest.Connect(t, srv)
	client := queryapi.NewClient(nc)
	ctx := testContext(t)
	for name, query := range map[string]func() error{
		"apps":      func() error { _, err := client.Apps(ctx, queryapi.PageRequest{}, 0); return err },
		"revisions": func() error { _, err := client.Revisions(ctx, "web", queryapi.PageRequest{}, 0); return err },
		"rollout":   func() error { _, err := client.Rollout(ctx, "web", rollout1, 0); return err },
	} {
		err := query()
		if err == nil || !strings.Contains(err.Error(), "`revline serve`") {
			t.Errorf("%s: err = %v, want one mentioning `revline serve`", name, err)
		}
		var qerr *queryapi.Error
		if errors.As(err, &qerr) {
			t.Errorf("%s: a missing server is not a failed query: %#v", name, err)
		}
	}
}

// liveState is the data plane's live state, as maps by app.
type liveState struct {
	inFlight map[string]map[string]int
	expiries map[string]map[string]time.Time
}

func (l liveState) InFlight(app string) map[string]int { return l.inFlight[app] }

func (l liveState) KeepAliveExpiries(app string) map[string]time.Time { return l.expiries[app] }

// Runner views carry the gateway's live in-flight counts: an idle runner
// with requests shows as running, over NATS as in-process, and the state
// filter sees the merged state.
func TestRunnersShowLiveInFlightRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	expiry := t0.Add(time.Hour)
	expiries := map[string]map[string]time.Time{"web": {runnerA: expiry}}
	live := queryapi.Local{Model: f.model, Live: liveState{inFlight: map[string]map[string]int{"web": {runnerA: 3}}, expiries: expiries}}
	ctx := testContext(t)
	page, err := live.Runners(ctx, "web", queryapi.RunnerFilter{}, queryapi.PageRequest{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0].State != events.RunnerRunning || page.Items[0].InFlight != 3 {
		t.Fatalf("runners with live state: %+v", page.Items)
	}
	running, err := live.Runners(ctx, "web", queryapi.RunnerFilter{State: events.RunnerRunning}, queryapi.PageRequest{}, 0)
	if err != nil || len(running.Items) != 1 {
		t.Fatalf("--state running: %+v %v", running.Items, err)
	}
	idle, err := live.Runners(ctx, "web", queryapi.RunnerFilter{State: events.RunnerIdle}, queryapi.PageRequest{}, 0)
	if err != nil || len(idle.Items) != 0 {
		t.Fatalf("--state idle: %+v %v", idle.Items, err)
	}
	if page.Items[0].ExpiresAt != nil {
		t.Errorf("a runner with requests shows a keep-alive countdown: %v", page.Items[0].ExpiresAt)
	}
	// Idle, it counts down to its keep-alive's end.
	idleLive := queryapi.Local{Model: f.model, Live: liveState{expiries: expiries}}
	page, err = idleLive.Runners(ctx, "web", queryapi.RunnerFilter{}, queryapi.PageRequest{}, 0)
	if err != nil || page.Items[0].ExpiresAt == nil || !page.Items[0].ExpiresAt.Equal(expiry) {
		t.Fatalf("idle runner's keep-alive countdown: %+v %v", page.Items, err)
	}
	// Without live state, the log alone: idle, nothing in flight.
	plain, err := f.local.Runners(ctx, "web", queryapi.RunnerFilter{}, queryapi.PageRequest{}, 0)
	if err != nil || plain.Items[0].State != events.RunnerIdle || plain.Items[0].InFlight != 0 {
		t.Fatalf("runners from the log alone: %+v %v", plain.Items, err)
	}
}

// With LogEnd, a query without min_sequence answers as of the log's end:
// a write acknowledged before the query is in its answer.
func TestQueryWithoutMinSequenceReadsUpToTheLogsEnd(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	end := uint64(len(history()) + 1)
	local := queryapi.Local{Model: f.model, LogEnd: func(context.Context) (uint64, error) { return end, nil }}
	answered := make(chan []projections.AppView, 1)
	go func() {
		page, err := local.Apps(testContext(t), queryapi.PageRequest{}, 0)
		if err != nil {
			t.Error(err)
		}
		answered <- page.Items
	}()
	env := events.NewEnvelope("late", events.RevisionCreated{RevisionID: rev1, Command: "run $PORT", Code: events.DefaultCodeParams(), Runtime: events.DefaultRuntimeParams()}, events.Metadata{Actor: "alice"}, t0)
	env.Sequence = end
	if !f.model.Apply(env) {
		t.Fatal("not applied")
	}
	apps := <-answered
	if !slices.ContainsFunc(apps, func(a projections.AppView) bool { return a.Name == "late" }) {
		t.Fatalf("apps = %+v, want the one written before the query", apps)
	}
}
