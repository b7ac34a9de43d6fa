package queryapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/embedded/embeddedtest"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/projections/queryapi"
)

// bigApp folds n revisions of app into model, without a decider or a
// store: revision i is created at t0 + i/3 seconds (so three share a
// time and their ids decide their order), and ids are a permutation of
// rev-00000.. unrelated to the creation order.
func bigApp(t testing.TB, model *projections.RevisionHistory, app string, n int) {
	t.Helper()
	seq := model.Checkpoint()
	code, runtime := events.DefaultCodeParams(), events.DefaultRuntimeParams()
	for i := range n {
		id := fmt.Sprintf("rev-%05d", (i*7919)%n)
		ev := events.RevisionCreated{
			RevisionID: id, Command: "python3 -m http.server $PORT --bind 127.0.0.1", Code: code, Runtime: runtime,
			Message: "revision number " + id, Annotations: map[string]string{"git_sha": "0123456789abcdef0123456789abcdef01234567"},
		}
		seq++
		env := events.NewEnvelope(app, ev, events.Metadata{Actor: "ci@build"}, t0.Add(time.Duration(i/3)*time.Second))
		env.Sequence = seq
		if !model.Apply(env) {
			t.Fatalf("revision %d not applied", i)
		}
	}
}

// serveModel serves model's queries on srv and returns a client on a
// connection of its own.
func serveModel(t testing.TB, srv *server.Server, model *projections.RevisionHistory) (*queryapi.Client, *nats.Conn) {
	t.Helper()
	serverConn, _ := embeddedtest.Connect(t, srv)
	clientConn, _ := embeddedtest.Connect(t, srv)
	svc, err := queryapi.Serve(serverConn, queryapi.Local{Model: model}, "0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	return queryapi.NewClient(clientConn), clientConn
}

// startServerWithMaxPayload starts a plain NATS server (no JetStream)
// whose messages carry at most maxPayload bytes.
func startServerWithMaxPayload(t testing.TB, maxPayload int32) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, MaxPayload: maxPayload, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

func revisionIDs(revs []projections.RevisionView) []string {
	ids := make([]string, len(revs))
	for i, r := range revs {
		ids[i] = r.RevisionID
	}
	return ids
}

// countingPages wraps a list query, recording the size of every page.
func countingPages[T any](sizes *[]int, list func(context.Context, queryapi.PageRequest) (queryapi.Page[T], error)) func(context.Context, queryapi.PageRequest) (queryapi.Page[T], error) {
	return func(ctx context.Context, req queryapi.PageRequest) (queryapi.Page[T], error) {
		page, err := list(ctx, req)
		*sizes = append(*sizes, len(page.Items))
		return page, err
	}
}

// slowTestContext bounds a test that reads a long list.
func slowTestContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// On a server with a small max payload, pages are cut by size, not only
// by count, and the whole list still comes through.
func TestPagesAreCutToFitTheMaxPayload(t *testing.T) {
	t.Parallel()
	const maxPayload = 64 << 10
	model := projections.NewRevisionHistory()
	bigApp(t, model, "big", 3000)
	client, _ := serveModel(t, startServerWithMaxPayload(t, maxPayload), model)
	ctx := slowTestContext(t)

	var sizes []int
	revs, err := queryapi.All(ctx, 0, countingPages(&sizes, func(ctx context.Context, p queryapi.PageRequest) (queryapi.Page[projections.RevisionView], error) {
		return client.Revisions(ctx, "big", p, 0)
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := revisionIDs(model.Revisions("big"))
	if got := revisionIDs(revs); !slices.Equal(got, want) {
		t.Fatalf("read %d revisions; want the model's %d in its order", len(got), len(want))
	}
	if len(sizes) < 2 || slices.Max(sizes) >= queryapi.MaxPageSize {
		t.Fatalf("pages of %v items: want pages cut below %d items by size", sizes, queryapi.MaxPageSize)
	}
	// A limit stops early, on a page boundary or not.
	for _, limit := range []int{1, sizes[0], sizes[0] + 1, queryapi.MaxPageSize + 1} {
		some, err := queryapi.All(ctx, limit, func(ctx context.Context, p queryapi.PageRequest) (queryapi.Page[projections.RevisionView], error) {
			return client.Revisions(ctx, "big", p, 0)
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := revisionIDs(some); !slices.Equal(got, want[:limit]) {
			t.Errorf("All with max %d: %d revisions, want the first %d", limit, len(got), limit)
		}
	}
	// Each page, token included, fits: ask for the largest one again and
	// measure it.
	page, err := client.Revisions(ctx, "big", queryapi.PageRequest{Limit: queryapi.MaxPageSize}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := json.Marshal(page); len(body) > maxPayload || page.NextPageToken == "" {
		t.Fatalf("first page: %d bytes, token %q; want at most %d bytes and a token", len(body), page.NextPageToken, maxPayload)
	}
}

// hugeRevision folds into model a revision of app whose message alone is
// larger than size bytes.
func hugeRevision(t *testing.T, model *projections.RevisionHistory, app, id string, at time.Time, size int) {
	t.Helper()
	env := events.NewEnvelope(app, events.RevisionCreated{RevisionID: id, Command: "run $PORT", Message: strings.Repeat("x", size+1)},
		events.Metadata{Actor: "alice"}, at)
	env.Sequence = model.Checkpoint() + 1
	if !model.Apply(env) {
		t.Fatal("huge revision not applied")
	}
}

func wantCode(t *testing.T, what string, err error, code string) *queryapi.Error {
	t.Helper()
	var qerr *queryapi.Error
	if !errors.As(err, &qerr) || qerr.Code != code {
		t.Fatalf("%s: err = %v (%#v), want a *queryapi.Error with code %s", what, err, err, code)
	}
	return qerr
}

// An answer larger than the max payload is an error the client gets at
// once, not a reply the server fails to send and the client waits for
// until its deadline. The deadline here is only a safety net: reaching it
// fails the test through the error code.
func TestReplyThatCannotFitIsAnErrorAtOnce(t *testing.T) {
	t.Parallel()
	const maxPayload = 64 << 10
	model := projections.NewRevisionHistory()
	hugeRevision(t, model, "web", "rev-huge", t0.Add(-time.Hour), maxPayload) // the oldest: listed last
	bigApp(t, model, "web", 2)
	client, _ := serveModel(t, startServerWithMaxPayload(t, maxPayload), model)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	_, err := client.Revision(ctx, "web", "rev-huge", 0)
	qerr := wantCode(t, "revision", err, queryapi.CodeReplyTooLarge)
	if !strings.Contains(qerr.Message, "bytes") || !strings.Contains(qerr.Message, "HTTP API") {
		t.Errorf("message %q: want one saying how large and where to read it instead", qerr.Message)
	}

	// The revisions before the huge one come in a page of their own; the
	// page that would start with it is refused.
	first, err := client.Revisions(ctx, "web", queryapi.PageRequest{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Items) != 2 || first.NextPageToken == "" {
		t.Fatalf("first page: %d items, token %q; want the 2 small revisions and a token", len(first.Items), first.NextPageToken)
	}
	_, err = client.Revisions(ctx, "web", queryapi.PageRequest{PageToken: first.NextPageToken}, 0)
	qerr = wantCode(t, "second page", err, queryapi.CodeReplyTooLarge)
	if !strings.Contains(qerr.Message, "rev-huge") || !strings.Contains(qerr.Message, "HTTP API") {
		t.Errorf("message %q: want it to name the revision and where to read it instead", qerr.Message)
	}
	_, err = queryapi.All(ctx, 0, func(ctx context.Context, p queryapi.PageRequest) (queryapi.Page[projections.RevisionView], error) {
		return client.Revisions(ctx, "web", p, 0)
	})
	wantCode(t, "all pages", err, queryapi.CodeReplyTooLarge)

	// The service still answers afterwards.
	if _, err := client.Revision(ctx, "web", "rev-00000", 0); err != nil {
		t.Fatal(err)
	}
}

// token returns a page token carrying the given JSON, as a client that
// forges one would.
func token(content string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(content))
}

func TestPageRequestsOutOfBoundsAreBadRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := testContext(t)
	runnersPage, err := f.local.Runners(ctx, "web", queryapi.RunnerFilter{All: true}, queryapi.PageRequest{Limit: 1}, 0)
	if err != nil || runnersPage.NextPageToken == "" {
		t.Fatalf("runners page: %+v, %v; want a token", runnersPage, err)
	}
	apiPage, err := f.local.Revisions(ctx, "api", queryapi.PageRequest{Limit: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	webPage, err := f.local.Revisions(ctx, "web", queryapi.PageRequest{Limit: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if apiPage.NextPageToken != "" {
		t.Fatalf("api's only revision: token %q, want none", apiPage.NextPageToken)
	}
	for _, tc := range []struct {
		name    string
		app     string
		page    queryapi.PageRequest
		mention string
	}{
		{"negative limit", "web", queryapi.PageRequest{Limit: -1}, "limit -1"},
		{"limit over the maximum", "web", queryapi.PageRequest{Limit: queryapi.MaxPageSize + 1}, fmt.Sprint(queryapi.MaxPageSize)},
		{"token not base64", "web", queryapi.PageRequest{PageToken: "not a token!"}, "page_token"},
		{"token not JSON", "web", queryapi.PageRequest{PageToken: token("{")}, "page_token"},
		{"token without a position", "web", queryapi.PageRequest{PageToken: token(`{"l":"revisions","a":"web"}`)}, "page_token"},
		{"token of another list", "web", queryapi.PageRequest{PageToken: runnersPage.NextPageToken}, "another list"},
		{"token of another app", "api", queryapi.PageRequest{PageToken: webPage.NextPageToken}, "another list"},
		{"token of a server that listed by time", "web", queryapi.PageRequest{PageToken: token(`{"l":"revisions","a":"web","t":"2025-01-01T00:00:00Z","i":"rev-1"}`)}, "older server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for name, reader := range map[string]queryapi.Reader{"local": f.local, "client": f.client} {
				_, err := reader.Revisions(ctx, tc.app, tc.page, 0)
				if qerr := wantCode(t, name, err, queryapi.CodeBadRequest); !strings.Contains(qerr.Message, tc.mention) {
					t.Errorf("%s: message %q does not mention %q", name, qerr.Message, tc.mention)
				}
			}
		})
	}
	for name, reader := range map[string]queryapi.Reader{"local": f.local, "client": f.client} {
		_, err := reader.Runners(ctx, "web", queryapi.RunnerFilter{State: "sleeping"}, queryapi.PageRequest{}, 0)
		wantCode(t, name+": unknown runner state", err, queryapi.CodeBadRequest)
		_, err = reader.Apps(ctx, queryapi.PageRequest{Limit: queryapi.MaxPageSize + 1}, 0)
		wantCode(t, name+": apps limit over the maximum", err, queryapi.CodeBadRequest)
		if _, err := reader.Apps(ctx, queryapi.PageRequest{Limit: queryapi.MaxPageSize}, 0); err != nil {
			t.Errorf("%s: apps with the maximum limit: %v", name, err)
		}
	}
}

// Pages of one item walk each list to its end; only the last page has no
// token.
func TestPagesOfOneWalkEveryList(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := testContext(t)
	walk := func(name string, wantItems int, list func(queryapi.PageRequest) (int, string, error)) {
		t.Helper()
		req := queryapi.PageRequest{Limit: 1}
		for i := range wantItems {
			n, next, err := list(req)
			if err != nil {
				t.Fatalf("%s: page %d: %v", name, i, err)
			}
			last := i == wantItems-1
			if n != 1 || (next == "") != last {
				t.Fatalf("%s: page %d of %d: %d items, token %q", name, i, wantItems, n, next)
			}
			req.PageToken = next
		}
	}
	for name, r := range map[string]queryapi.Reader{"local": f.local, "client": f.client} {
		walk(name+" apps", 2, func(p queryapi.PageRequest) (int, string, error) {
			page, err := r.Apps(ctx, p, 0)
			return len(page.Items), page.NextPageToken, err
		})
		walk(name+" revisions", 3, func(p queryapi.PageRequest) (int, string, error) {
			page, err := r.Revisions(ctx, "web", p, 0)
			return len(page.Items), page.NextPageToken, err
		})
		walk(name+" runners", 2, func(p queryapi.PageRequest) (int, string, error) {
			page, err := r.Runners(ctx, "web", queryapi.RunnerFilter{All: true}, p, 0)
			return len(page.Items), page.NextPageToken, err
		})
		// A limit equal to the list's length: one page, no token.
		page, err := r.Revisions(ctx, "web", queryapi.PageRequest{Limit: 3}, 0)
		if err != nil || len(page.Items) != 3 || page.NextPageToken != "" {
			t.Fatalf("%s: limit 3 of 3: %d items, token %q, %v; want all and no token", name, len(page.Items), page.NextPageToken, err)
		}
	}
}

// A token names a position, not an offset: revisions created or deleted
// between two pages neither repeat nor hide the others.
func TestPageTokenIsStableWhileRevisionsArrive(t *testing.T) {
	t.Parallel()
	model := projections.NewRevisionHistory()
	bigApp(t, model, "web", 10)
	local := queryapi.Local{Model: model}
	ctx := testContext(t)
	before := revisionIDs(model.Revisions("web"))

	first, err := local.Revisions(ctx, "web", queryapi.PageRequest{Limit: 4}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A newer revision arrives; the last revision of the first page and
	// one the second page would have started with are deleted.
	seq := model.Checkpoint()
	for _, ev := range []events.Event{
		events.RevisionCreated{RevisionID: "rev-new", Command: "run $PORT"},
		events.RevisionDeleted{RevisionID: before[3]},
		events.RevisionDeleted{RevisionID: before[4]},
	} {
		seq++
		env := events.NewEnvelope("web", ev, events.Metadata{Actor: "bob"}, t0.Add(time.Hour))
		env.Sequence = seq
		model.Apply(env)
	}
	rest, err := queryapi.All(ctx, 0, func(ctx context.Context, p queryapi.PageRequest) (queryapi.Page[projections.RevisionView], error) {
		if p.PageToken == "" {
			p.PageToken = first.NextPageToken
		}
		return local.Revisions(ctx, "web", p, 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := revisionIDs(rest), before[5:]; !slices.Equal(got, want) {
		t.Fatalf("after the first page: %v, want %v", got, want)
	}
}

// A token carries the sequence its page was read at: a reader behind it
// (another replica) waits until it has caught up before answering.
func TestNextPageWaitsForTheModelThePreviousPageWasReadFrom(t *testing.T) {
	t.Parallel()
	ahead := projections.NewRevisionHistory()
	bigApp(t, ahead, "web", 3)
	first, err := queryapi.Local{Model: ahead}.Revisions(testContext(t), "web", queryapi.PageRequest{Limit: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	behind := projections.NewRevisionHistory()
	bigApp(t, behind, "web", 2)
	ctx, cancel := context.WithCancel(testContext(t))
	cancel()
	_, err = queryapi.Local{Model: behind}.Revisions(ctx, "web", queryapi.PageRequest{PageToken: first.NextPageToken}, 0)
	if qerr := wantCode(t, "next page from a model behind", err, queryapi.CodeNotCaughtUp); !strings.Contains(qerr.Message, "sequence 3") {
		t.Fatalf("message %q, want it to name sequence 3", qerr.Message)
	}
}
