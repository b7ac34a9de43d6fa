package gateway_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revline/revline/events"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/workers/gateway"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fixture is a gateway served on a loopback port.
type fixture struct {
	gw  *gateway.Gateway
	url string
}

func newFixture(t *testing.T, cfg gateway.Config) *fixture {
	t.Helper()
	gw, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return &fixture{gw: gw, url: srv.URL}
}

// runner is a test backend that counts its concurrency and can hold
// requests until released.
type runner struct {
	srv     *httptest.Server
	mu      sync.Mutex
	now     int
	peak    int
	release chan struct{}
	started chan struct{} // one value per request that arrived
}

func newRunner(t *testing.T) *runner {
	t.Helper()
	r := &runner{release: make(chan struct{}), started: make(chan struct{}, 1000)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.now++
		r.peak = max(r.peak, r.now)
		r.mu.Unlock()
		defer func() {
			r.mu.Lock()
			r.now--
			r.mu.Unlock()
		}()
		r.started <- struct{}{}
		if req.URL.Path == "/hold" {
			select {
			case <-r.release:
			case <-req.Context().Done():
				return
			}
		}
		if req.URL.Path == "/untyped" {
			w.Header()["Content-Type"] = nil // answer without one
		}
		if req.URL.Path == "/cookies" {
			w.Header().Add("Set-Cookie", "revline_session=chosen-by-the-app; Path=/")
			w.Header().Add("Set-Cookie", "app_pref=dark; Path=/")
			fmt.Fprintf(w, "cookie=%q ", req.Header.Values("Cookie"))
		}
		fmt.Fprintf(w, "path=%s query=%s prefix=%s id=%s method=%s", req.URL.Path, req.URL.RawQuery,
			req.Header.Get("X-Forwarded-Prefix"), req.Header.Get(gateway.HeaderRequestID), req.Method)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *runner) addr() string { return strings.TrimPrefix(r.srv.URL, "http://") }

func (r *runner) peakConcurrency() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peak
}

// waitStarted waits until n requests have reached the runner.
func (r *runner) waitStarted(t *testing.T, n int) {
	t.Helper()
	ctx := testContext(t)
	for range n {
		select {
		case <-r.started:
		case <-ctx.Done():
			t.Fatal("requests did not reach the runner")
		}
	}
}

var route = gateway.Route{CurrentRevision: "rev-1", MaxMultiplexing: 1, RequestTimeout: time.Minute}

// serveOneRunner gives app "web" the route r and one runner "r1" of
// revision rev-1.
func (f *fixture) serveOneRunner(t *testing.T, r gateway.Route) *runner {
	t.Helper()
	backend := newRunner(t)
	f.gw.SetRoute("web", r)
	f.gw.AddRunner("web", gateway.Backend{RunnerID: "r1", RevisionID: "rev-1", Addr: backend.addr()})
	return backend
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestRequestsReachTheRunnerWithoutThePrefix(t *testing.T) {
	t.Parallel()
	f := newFixture(t, gateway.Config{})
	f.serveOneRunner(t, route)

	resp, body := get(t, f.url+"/apps/web/v1/predict?x=1&y=%2F")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if !strings.HasPrefix(body, "path=/v1/predict query=x=1&y=%2F prefix=/apps/web id=") {
		t.Fatalf("runner saw %q", body)
	}
	if resp.Header.Get(gateway.HeaderRunner) != "r1" || resp.Header.Get(gateway.HeaderRevision) != "rev-1" || resp.Header.Get(gateway.HeaderRequestID) == "" {
		t.Fatalf("headers %v", resp.Header)
	}
	if !strings.Contains(body, "id="+resp.Header.Get(gateway.HeaderRequestID)) {
		t.Fatalf("request id not passed on: %q vs %q", body, resp.Header.Get(gateway.HeaderRequestID))
	}

	req, _ := http.NewRequestWithContext(testContext(t), http.MethodDelete, f.url+"/apps/web", nil)
	req.Header.Set(gateway.HeaderRequestID, "client-chosen")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body2, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if !strings.Contains(string(body2), "path=/ ") || !strings.Contains(string(body2), "id=client-chosen method=DELETE") || resp2.Header.Get(gateway.HeaderRequestID) != "client-chosen" {
		t.Fatalf("bare app path: %q %v", body2, resp2.Header)
	}
}

// Headers pass as the runner sent them: an answer without a Content-Type
// gets none on the way (net/http would sniff one).
func TestAnswersKeepTheRunnersContentType(t *testing.T) {
	t.Parallel()
	f := newFixture(t, gateway.Config{})
	f.serveOneRunner(t, route)
	resp, body := get(t, f.url+"/apps/web/untyped")
	if _, set := resp.Header["Content-Type"]; set || !strings.HasPrefix(body, "path=/untyped") {
		t.Fatalf("an answer without a Content-Type came with %q: %s", resp.Header.Get("Content-Type"), body)
	}
	resp, _ = get(t, f.url+"/apps/web/typed")
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Fatalf("the runner's own Content-Type became %q", ct)
	}
}

func TestUnknownSuspendedDeletedAndUndeployedApps(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64 // seconds
	f := newFixture(t, gateway.Config{Now: func() time.Time { return time.Unix(clock.Load(), 0) }, StartingGrace: time.Minute})
	f.gw.SetRoute("sleepy", gateway.Route{CurrentRevision: "rev-1", Suspended: true, MaxMultiplexing: 1, RequestTimeout: time.Minute})
	f.gw.SetRoute("fresh", gateway.Route{MaxMultiplexing: 1, RequestTimeout: time.Minute})
	f.gw.SetRoute("gone", gateway.Route{Deleted: true, MaxMultiplexing: 1, RequestTimeout: time.Minute})
	f.gw.Expect("booting")
	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{
		{"/apps/nope/x", http.StatusNotFound, "app_not_found"},
		{"/apps/Bad.Name/x", http.StatusNotFound, "app_not_found"},
		{"/elsewhere", http.StatusNotFound, "not_found"},
		{"/apps/sleepy/x", http.StatusServiceUnavailable, "app_suspended"},
		{"/apps/fresh/x", http.StatusServiceUnavailable, "no_current_revision"},
		{"/apps/gone/x", http.StatusNotFound, "app_not_found"},
		{"/apps/booting/x", http.StatusServiceUnavailable, "app_starting"},
	} {
		resp, body := get(t, f.url+tc.path)
		if resp.StatusCode != tc.status || !strings.Contains(body, `"code":"`+tc.code+`"`) || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want %d %s", tc.path, resp.StatusCode, body, tc.status, tc.code)
		}
		checkProblem(t, tc.path, resp.StatusCode, body)
	}
	// An app that never comes back stops saying "starting".
	clock.Add(61)
	if resp, body := get(t, f.url+"/apps/booting/x"); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "app_unavailable") || resp.Header.Get("Retry-After") != "" {
		t.Errorf("an app that did not come back: %d %v %s", resp.StatusCode, resp.Header, body)
	}
}

// checkProblem fails the test unless body is a problem document in the
// HTTP API's scheme: a type URI and title made from a code of the
// catalogue, the status answered, and the request's path as instance.
func checkProblem(t *testing.T, path string, status int, body string) {
	t.Helper()
	var p struct {
		Type, Title, Detail, Code, Instance string
		Status                              int
	}
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Errorf("%s: %v: %s", path, err, body)
		return
	}
	if _, ok := events.LookupCode(p.Code); !ok {
		t.Errorf("%s: code %q is not in the catalogue (events/codes.go, docs/bus.md §7)", path, p.Code)
	}
	if p.Type != "https://revline.dev/problems/"+p.Code || p.Title != events.ProblemTitle(p.Code) || p.Status != status || p.Detail == "" || p.Instance != path {
		t.Errorf("%s: problem %+v, want type https://revline.dev/problems/%s, its title, status %d, a detail and instance %s", path, p, p.Code, status, path)
	}
}

// A runner never has more than max_multiplexing requests at once: the rest
// wait for a free slot and are served in turn.
func TestMaxMultiplexingIsNeverExceeded(t *testing.T) {
	t.Parallel()
	f := newFixture(t, gateway.Config{})
	r := f.serveOneRunner(t, gateway.Route{CurrentRevision: "rev-1", MaxMultiplexing: 2, RequestTimeout: time.Minute})

	const requests = 8
	var wg sync.WaitGroup
	var ok atomic.Int32
	for range requests {
		wg.Go(func() {
			if resp, _ := get(t, f.url+"/apps/web/hold"); resp.StatusCode == http.StatusOK {
				ok.Add(1)
			}
		})
	}
	r.waitStarted(t, 2)
	if n := f.gw.Load("web").InFlight["r1"]; n != 2 {
		t.Fatalf("in flight on r1 = %d, want 2", n)
	}
	close(r.release)
	wg.Wait()
	if ok.Load() != requests || r.peakConcurrency() != 2 {
		t.Fatalf("%d of %d answered, peak concurrency %d; want all, peak 2", ok.Load(), requests, r.peakConcurrency())
	}
}

// holdTheOneSlot serves web from one runner with one slot, which a request
// holds until end is called; further requests wait. The wait group is for
// the test's own requests too: end releases the runner, then waits for
// them. The test defers end (not a cleanup: its requests' context ends
// before cleanups run).
func holdTheOneSlot(t *testing.T, cfg gateway.Config) (f *fixture, wg *sync.WaitGroup, end func()) {
	t.Helper()
	f = newFixture(t, cfg)
	r := f.serveOneRunner(t, route)
	wg = &sync.WaitGroup{}
	wg.Go(func() { get(t, f.url+"/apps/web/hold") }) // takes the one slot
	r.waitStarted(t, 1)
	return f, wg, func() {
		close(r.release)
		wg.Wait()
	}
}

func TestFullQueueGets503WithRetryAfter(t *testing.T) {
	t.Parallel()
	f, wg, end := holdTheOneSlot(t, gateway.Config{QueueLimit: 1})
	defer end()
	wg.Go(func() { get(t, f.url+"/apps/web/hold") }) // waits in the queue
	testsupport.Eventually(testContext(t), t, "one request queued", func() bool { return f.gw.Load("web").Queued == 1 })
	resp, body := get(t, f.url+"/apps/web/x")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "queue_full") {
		t.Fatalf("over the queue limit: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	checkProblem(t, "/apps/web/x", resp.StatusCode, body)
}

// An app with no runner, whose runners are backing off after failures,
// answers 503 app_backing_off with Retry-After at once, the request that
// was waiting for a cold start included; with a runner it serves again,
// and once the back-off ends a request finding no runner waits for one.
func TestAnAppBackingOffWithNoRunnerGets503AtOnce(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64 // seconds
	f := newFixture(t, gateway.Config{Now: func() time.Time { return time.Unix(clock.Load(), 0) }})
	f.gw.SetRoute("web", gateway.Route{CurrentRevision: "rev-1", MaxMultiplexing: 1, RequestTimeout: time.Hour})
	waiting := make(chan *http.Response, 1)
	go func() {
		resp, _ := get(t, f.url+"/apps/web/x") // from zero: waits for a runner
		waiting <- resp
	}()
	testsupport.Eventually(testContext(t), t, "one request waiting for a cold start", func() bool { return f.gw.Load("web").Queued == 1 })

	f.gw.BackOff("web", time.Unix(clock.Load(), 0).Add(4500*time.Millisecond)) // the cold start failed
	select {
	case resp := <-waiting:
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" {
			t.Fatalf("the waiting request got %d Retry-After %q, want 503 with Retry-After 5", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	case <-testContext(t).Done():
		t.Fatal("the request waiting for a runner that is not coming was not answered")
	}
	resp, body := get(t, f.url+"/apps/web/x")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"code":"app_backing_off"`) || resp.Header.Get("Content-Type") != "application/problem+json" || resp.Header.Get("Retry-After") != "5" {
		t.Fatalf("a request during the back-off: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	checkProblem(t, "/apps/web/x", resp.StatusCode, body)

	// A runner taking requests serves whatever the back-off.
	backend := newRunner(t)
	f.gw.AddRunner("web", gateway.Backend{RunnerID: "r1", RevisionID: "rev-1", Addr: backend.addr()})
	if resp, body := get(t, f.url+"/apps/web/x"); resp.StatusCode != http.StatusOK {
		t.Fatalf("with a runner: %d %s", resp.StatusCode, body)
	}
	// Once it ends, a request finding no runner waits for one again.
	f.gw.RemoveRunner("web", "r1")
	clock.Add(5)
	go func() {
		resp, _ := get(t, f.url+"/apps/web/x")
		waiting <- resp
	}()
	testsupport.Eventually(testContext(t), t, "a request waiting after the back-off", func() bool { return f.gw.Load("web").Queued == 1 })
	f.gw.AddRunner("web", gateway.Backend{RunnerID: "r2", RevisionID: "rev-1", Addr: backend.addr()})
	select {
	case resp := <-waiting:
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("the request waiting after the back-off got %d, want 200 from the runner that started", resp.StatusCode)
		}
	case <-testContext(t).Done():
		t.Fatal("the request waiting after the back-off was not answered")
	}
}

// A request waiting for a runner of an app that is deleted meanwhile gets
// 404 app_not_found at once, as later ones do.
func TestARequestWaitingForADeletedAppGets404(t *testing.T) {
	t.Parallel()
	f, wg, end := holdTheOneSlot(t, gateway.Config{})
	defer end()
	waiting := make(chan string, 1)
	wg.Go(func() {
		resp, body := get(t, f.url+"/apps/web/x")
		waiting <- fmt.Sprint(resp.StatusCode, " ", body)
	})
	testsupport.Eventually(testContext(t), t, "one request queued", func() bool { return f.gw.Load("web").Queued == 1 })
	deleted := route
	deleted.Deleted = true
	f.gw.SetRoute("web", deleted)
	select {
	case got := <-waiting:
		if !strings.HasPrefix(got, "404 ") || !strings.Contains(got, `"app_not_found"`) {
			t.Fatalf("the waiting request got %s, want 404 app_not_found", got)
		}
	case <-testContext(t).Done():
		t.Fatal("the request waiting for the deleted app was not answered")
	}
}

func TestRequestTimeoutGets504(t *testing.T) {
	t.Parallel()
	f := newFixture(t, gateway.Config{})
	r := f.serveOneRunner(t, gateway.Route{CurrentRevision: "rev-1", MaxMultiplexing: 1, RequestTimeout: 200 * time.Millisecond})
	defer close(r.release)
	resp, body := get(t, f.url+"/apps/web/hold") // the runner holds it past request_timeout
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(body, "request_timeout") {
		t.Fatalf("slow runner: %d %s", resp.StatusCode, body)
	}
	checkProblem(t, "/apps/web/hold", resp.StatusCode, body)
	f.gw.SetRoute("web", gateway.Route{CurrentRevision: "rev-2", MaxMultiplexing: 1, RequestTimeout: 200 * time.Millisecond})
	f.gw.Drain(testContext(t), "web", "r1")
	resp, body = get(t, f.url+"/apps/web/x") // no runner comes within request_timeout
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(body, "request_timeout") {
		t.Fatalf("no runner: %d %s", resp.StatusCode, body)
	}
	checkProblem(t, "/apps/web/x", resp.StatusCode, body)
}

// A draining runner gets no new request, and Drain returns once its last
// request has ended; the requests themselves succeed.
func TestDrainWaitsForInFlightRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t, gateway.Config{})
	old, next := newRunner(t), newRunner(t)
	f.gw.SetRoute("web", gateway.Route{CurrentRevision: "rev-1", MaxMultiplexing: 4, RequestTimeout: time.Minute})
	f.gw.AddRunner("web", gateway.Backend{RunnerID: "old", RevisionID: "rev-1", Addr: old.addr()})
	var wg sync.WaitGroup
	statuses := make(chan int, 3)
	for range 3 {
		wg.Go(func() {
			resp, _ := get(t, f.url+"/apps/web/hold")
			statuses <- resp.StatusCode
		})
	}
	old.waitStarted(t, 3)
	f.gw.AddRunner("web", gateway.Backend{RunnerID: "new", RevisionID: "rev-1", Addr: next.addr()})
	drained := make(chan int, 1)
	go func() { drained <- f.gw.Drain(testContext(t), "web", "old") }()
	// Drain has begun once the old runner gets nothing new.
	for {
		resp, _ := get(t, f.url+"/apps/web/x")
		if resp.Header.Get(gateway.HeaderRunner) == "new" {
			break
		}
	}
	select {
	case n := <-drained:
		t.Fatalf("drain returned %d with 3 requests in flight", n)
	default:
	}
	close(old.release)
	if remaining := <-drained; remaining != 0 {
		t.Fatalf("drain left %d requests", remaining)
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK {
			t.Fatalf("a request failed with %d during the drain", s)
		}
	}
}

// Drop cuts the requests in flight and counts exactly those that failed.
func TestDropCountsTheRequestsItCut(t *testing.T) {
	t.Parallel()
	f := newFixture(t, gateway.Config{})
	r := f.serveOneRunner(t, gateway.Route{CurrentRevision: "rev-1", MaxMultiplexing: 10, RequestTimeout: time.Minute})
	const inFlight = 4
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range inFlight {
		wg.Go(func() {
			if resp, body := get(t, f.url+"/apps/web/hold"); resp.StatusCode == http.StatusBadGateway && strings.Contains(body, "runner_stopped") {
				failed.Add(1)
			}
		})
	}
	r.waitStarted(t, inFlight)
	dropped := f.gw.Drop("web", "r1")
	wg.Wait()
	if dropped != inFlight || failed.Load() != inFlight {
		t.Fatalf("Drop counted %d, clients saw %d failures; want %d", dropped, failed.Load(), inFlight)
	}
	// Drain and Drop of a runner the gateway does not know are harmless.
	if f.gw.Drop("web", "r1") != 0 || f.gw.Drain(testContext(t), "web", "nope") != 0 {
		t.Fatal("a second drop counted again")
	}
}

// While the current revision has no ready runner (a rolling switch is
// starting them), requests go to the previous revision's runners; once it
// has one, they go there.
func TestRollingSwitchServesFromTheOldRevisionUntilTheNewIsReady(t *testing.T) {
	t.Parallel()
	f := newFixture(t, gateway.Config{})
	old, next := newRunner(t), newRunner(t)
	f.gw.SetRoute("web", route)
	f.gw.AddRunner("web", gateway.Backend{RunnerID: "old", RevisionID: "rev-1", Addr: old.addr()})
	f.gw.SetRoute("web", gateway.Route{CurrentRevision: "rev-2", MaxMultiplexing: 1, RequestTimeout: time.Minute})
	if resp, _ := get(t, f.url+"/apps/web/x"); resp.Header.Get(gateway.HeaderRevision) != "rev-1" {
		t.Fatalf("before the new runner: served by %s", resp.Header.Get(gateway.HeaderRevision))
	}
	f.gw.AddRunner("web", gateway.Backend{RunnerID: "new", RevisionID: "rev-2", Addr: next.addr()})
	if resp, _ := get(t, f.url+"/apps/web/x"); resp.Header.Get(gateway.HeaderRevision) != "rev-2" {
		t.Fatalf("after the new runner: served by %s", resp.Header.Get(gateway.HeaderRevision))
	}
}

// Bodies stream both ways: a large upload is not held whole, and each
// chunk of a streamed answer reaches the client before the next is sent.
func TestBodiesStream(t *testing.T) {
	t.Parallel()
	f := newFixture(t, gateway.Config{})
	next := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/upload":
			n, err := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "received=%d err=%v", n, err)
		case "/events", "/chunks":
			if r.URL.Path == "/events" {
				w.Header().Set("Content-Type", "text/event-stream")
			}
			for i := range 3 {
				fmt.Fprintf(w, "data: %d\n\n", i)
				w.(http.Flusher).Flush()
				<-next // the client must have seen this event
			}
		}
	}))
	t.Cleanup(backend.Close)
	f.gw.SetRoute("web", gateway.Route{CurrentRevision: "rev-1", MaxMultiplexing: 4, RequestTimeout: time.Minute})
	f.gw.AddRunner("web", gateway.Backend{RunnerID: "r1", RevisionID: "rev-1", Addr: strings.TrimPrefix(backend.URL, "http://")})

	const size = 50 << 20
	req, _ := http.NewRequestWithContext(testContext(t), http.MethodPost, f.url+"/apps/web/upload", io.LimitReader(rand.Reader, size))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != fmt.Sprintf("received=%d err=<nil>", size) {
		t.Fatalf("upload: %s", body)
	}

	// Server-sent events, and a chunked answer of another type alike.
	for _, path := range []string{"/events", "/chunks"} {
		req, _ = http.NewRequestWithContext(testContext(t), http.MethodGet, f.url+"/apps/web"+path, nil)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewReader(resp.Body)
		for i := range 3 {
			line, err := lines.ReadString('\n')
			if err != nil || line != fmt.Sprintf("data: %d\n", i) {
				t.Fatalf("%s: event %d: %q %v", path, i, line, err)
			}
			_, _ = lines.ReadString('\n')
			next <- struct{}{}
		}
		resp.Body.Close()
	}
}

// The path after the app's segment reaches the runner as the client wrote
// it (an escaped slash stays escaped), and the gateway redirects nothing:
// a POST to a path with "//" stays a POST.
func TestPathsPassAsWritten(t *testing.T) {
	t.Parallel()
	f := newFixture(t, gateway.Config{})
	f.serveOneRunner(t, gateway.Route{CurrentRevision: "rev-1", MaxMultiplexing: 4, RequestTimeout: time.Minute})
	for _, tc := range []struct{ method, path, want string }{
		{http.MethodGet, "/apps/web/a%2Fb", "path=/a/b "},
		{http.MethodPost, "/apps/web//x", "path=//x "},
		{http.MethodGet, "/apps/web/../etc", "path=/../etc "},
	} {
		req, _ := http.NewRequestWithContext(testContext(t), tc.method, f.url+tc.path, nil)
		req.URL.Opaque = tc.path // send it exactly so
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), tc.want) || !strings.Contains(string(body), "method="+tc.method) {
			t.Errorf("%s %s: %d %q, want %q", tc.method, tc.path, resp.StatusCode, body, tc.want)
		}
	}
	if resp, body := get(t, f.url+"/apps/w%65b/x"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("an escaped app name: %d %s, want 404", resp.StatusCode, body)
	}
}

// A client that stops reading a large answer cannot hold a runner: Drop
// still cuts its request and returns.
func TestDropDoesNotWaitForAClientThatStopsReading(t *testing.T) {
	t.Parallel()
	f := newFixture(t, gateway.Config{})
	var written atomic.Int64
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for range 8192 { // 512 MiB, far more than the connections buffer
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(big.Close)
	f.gw.SetRoute("web", gateway.Route{CurrentRevision: "rev-1", MaxMultiplexing: 4, RequestTimeout: time.Minute})
	f.gw.AddRunner("web", gateway.Backend{RunnerID: "r1", RevisionID: "rev-1", Addr: strings.TrimPrefix(big.URL, "http://")})
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /apps/web/big HTTP/1.1\r\nHost: x\r\n\r\n")
	// Never read: the runner's writes stall once the buffers are full.
	last := int64(-1)
	testsupport.Eventually(testContext(t), t, "the answer stalls", func() bool {
		now := written.Load()
		stalled := now > 1<<20 && now == last
		last = now
		return stalled
	})
	dropped := make(chan int, 1)
	go func() { dropped <- f.gw.Drop("web", "r1") }()
	select {
	case n := <-dropped:
		if n != 1 {
			t.Errorf("Drop counted %d, want the one stalled request", n)
		}
	case <-testContext(t).Done():
		t.Fatalf("Drop still waits for the stalled request; in flight: %v", f.gw.Load("web").InFlight)
	}
}

// During a rolling switch the old revision's runners keep their own
// max_multiplexing, not the new revision's.
func TestOldRevisionKeepsItsMaxMultiplexing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, gateway.Config{})
	old := newRunner(t)
	f.gw.SetRoute("web", gateway.Route{CurrentRevision: "rev-1", MaxMultiplexing: 1, RequestTimeout: time.Minute})
	f.gw.AddRunner("web", gateway.Backend{RunnerID: "old", RevisionID: "rev-1", Addr: old.addr(), MaxMultiplexing: 1})
	f.gw.SetRoute("web", gateway.Route{CurrentRevision: "rev-2", MaxMultiplexing: 8, RequestTimeout: time.Minute})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(old.release)
	for range 2 {
		wg.Go(func() { get(t, f.url+"/apps/web/hold") })
	}
	old.waitStarted(t, 1)
	testsupport.Eventually(testContext(t), t, "the second request queued", func() bool { return f.gw.Load("web").Queued == 1 })
	if n := f.gw.Load("web").InFlight["old"]; n != 1 {
		t.Fatalf("the old runner has %d requests, want its own limit of 1", n)
	}
}

// Every answered request is reported with its status; a request for an
// app with no runner taking requests is a cold start, with the time it
// waited for one; requests for unknown apps are reported without the
// made-up name.
func TestObserveReportsStatusesAndColdStarts(t *testing.T) {
	t.Parallel()
	stats := make(chan gateway.RequestStats, 10)
	f := newFixture(t, gateway.Config{Observe: func(s gateway.RequestStats) { stats <- s }})
	next := func() gateway.RequestStats {
		t.Helper()
		select {
		case s := <-stats:
			return s
		case <-testContext(t).Done():
			t.Fatal("no request reported")
			return gateway.RequestStats{}
		}
	}

	if resp, _ := get(t, f.url+"/apps/made-up-name/"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown app: %d", resp.StatusCode)
	}
	if s := next(); s.App != "" || s.Status != http.StatusNotFound || s.ColdStart {
		t.Errorf("unknown app reported as %+v", s)
	}

	// Scaled to zero: the request waits until a runner comes.
	f.gw.SetRoute("web", route)
	answered := make(chan int, 1)
	go func() {
		resp, _ := get(t, f.url+"/apps/web/")
		answered <- resp.StatusCode
	}()
	testsupport.Eventually(testContext(t), t, "the request waits in the queue", func() bool { return f.gw.Load("web").Queued == 1 })
	backend := newRunner(t)
	f.gw.AddRunner("web", gateway.Backend{RunnerID: "r1", RevisionID: "rev-1", Addr: backend.addr()})
	if status := <-answered; status != http.StatusOK {
		t.Fatalf("cold start: %d", status)
	}
	if s := next(); s.App != "web" || s.Status != http.StatusOK || !s.ColdStart || s.Waited <= 0 || s.Duration < s.Waited {
		t.Errorf("cold start reported as %+v", s)
	}

	// A runner is up now: no cold start.
	if resp, _ := get(t, f.url+"/apps/web/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("warm request: %d", resp.StatusCode)
	}
	if s := next(); s.App != "web" || s.Status != http.StatusOK || s.ColdStart {
		t.Errorf("warm request reported as %+v", s)
	}
}

// The control plane's cookies (the dashboard's session, on the same host)
// never reach a runner, and no runner can set them; the app's own cookies
// pass both ways.
func TestControlPlaneCookiesNeverReachARunner(t *testing.T) {
	t.Parallel()
	f := newFixture(t, gateway.Config{ControlPlaneCookies: []string{"revline_session"}})
	f.serveOneRunner(t, route)
	for _, sent := range [][]string{
		{"app_pref=light; revline_session=secret-session; b=2"},
		{"revline_session=secret-session", "app_pref=light; b=2"},
	} {
		req, err := http.NewRequestWithContext(testContext(t), http.MethodGet, f.url+"/apps/web/cookies", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header["Cookie"] = sent
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), "secret-session") || !strings.Contains(string(body), "app_pref=light") || !strings.Contains(string(body), "b=2") {
			t.Errorf("sent %q; the runner saw %s", sent, body)
		}
		if set := resp.Header.Values("Set-Cookie"); len(set) != 1 || !strings.HasPrefix(set[0], "app_pref=dark") {
			t.Errorf("the client was asked to set %q; want the app's own cookie alone", set)
		}
	}
}
