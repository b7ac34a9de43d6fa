package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/revline/revline/cmd/revline/internal/metrics"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/workers/gateway"
)

// Case ids of the HTTP cases.
const (
	CaseHTTPDirect       = "http_direct"
	CaseHTTPReverseProxy = "http_reverse_proxy"
	CaseHTTPGateway      = "http_gateway"
)

// The target for the gateway against a bare reverse proxy.
const (
	TargetP50Ratio        = 1.15
	TargetThroughputRatio = 0.85
)

// HTTPConfig sets the size of the HTTP cases.
type HTTPConfig struct {
	// Requests is how many measured requests each case sends.
	Requests int
	// Concurrency is how many clients send them at once, each on its own
	// keep-alive connection.
	Concurrency int
	// Warmup is how many unmeasured requests each case sends first;
	// default max(Requests/10, 20*Concurrency).
	Warmup int
	// Rounds splits the measured requests into rounds that take turns
	// between the cases (each round starting with the next case), so that
	// a change of the machine's load during the run hits all three alike; default 10 (fewer when there are too
	// few requests).
	Rounds int
}

func (c *HTTPConfig) setDefaults() error {
	if c.Requests < 1 || c.Concurrency < 1 {
		return fmt.Errorf("bench: requests and concurrency must be at least 1, got %d and %d", c.Requests, c.Concurrency)
	}
	if c.Warmup == 0 {
		c.Warmup = max(c.Requests/10, 20*c.Concurrency)
	}
	if c.Rounds == 0 {
		c.Rounds = 10
	}
	// Every round keeps every client busy.
	c.Rounds = max(1, min(c.Rounds, c.Requests/c.Concurrency))
	return nil
}

// runnerBody is what the bench's runner answers: a small fixed body.
var runnerBody = []byte("Hello from the bench runner: a small, fixed answer of 64 bytes.\n")

// httpTarget is one way to reach the runner.
type httpTarget struct {
	id, name, url string
	client        *http.Client
	res           *Case
	firstErr      error
}

// RunHTTP measures HTTP requests to one runner (an http.Server on its own
// loopback listener in this process, answering a small fixed body) sent
// directly, through a bare httputil.ReverseProxy, and through the Revline
// gateway, with the same clients, in the same run. It returns the three
// cases and the gateway's ratios to the other two.
func RunHTTP(ctx context.Context, cfg HTTPConfig) (map[string]Case, map[string]Comparison, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, nil, err
	}
	var servers []*http.Server
	defer func() {
		for _, s := range servers {
			_ = s.Close()
		}
	}()
	// Every goroutine of a server (its connections, and the connections
	// of its transport) carries the label bench_server=<name>, and the
	// clients of a case bench_client=<case id>, so that a CPU profile
	// (--cpuprofile) splits by case: go tool pprof -tagfocus.
	serve := func(name string, h http.Handler) (string, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn)}
		servers = append(servers, s)
		go pprof.Do(context.Background(), pprof.Labels("bench_server", name), func(context.Context) { _ = s.Serve(ln) })
		return ln.Addr().String(), nil
	}

	runner, err := serve("runner", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(runnerBody)
	}))
	if err != nil {
		return nil, nil, err
	}
	runnerURL := &url.URL{Scheme: "http", Host: runner}

	// The bare proxy gets a transport set up as the gateway's default one,
	// so that the comparison is between the two handlers, not their
	// connection pools.
	proxyTransport := http.DefaultTransport.(*http.Transport).Clone()
	proxyTransport.MaxIdleConns = 0
	proxyTransport.MaxIdleConnsPerHost = 1024
	proxyTransport.ForceAttemptHTTP2 = false
	defer proxyTransport.CloseIdleConnections()
	proxy, err := serve("reverse_proxy", &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(runnerURL)
			pr.SetXForwarded()
		},
		Transport: proxyTransport,
	})
	if err != nil {
		return nil, nil, err
	}

	// The gateway as serve runs it: every request observed into the
	// Prometheus metrics.
	m, err := metrics.New(projections.NewRevisionHistory())
	if err != nil {
		return nil, nil, err
	}
	gw, err := gateway.New(gateway.Config{Observe: m.ObserveRequest})
	if err != nil {
		return nil, nil, err
	}
	gw.SetRoute("bench", gateway.Route{CurrentRevision: "r", MaxMultiplexing: cfg.Concurrency, RequestTimeout: time.Minute})
	gw.AddRunner("bench", gateway.Backend{RunnerID: "bench-runner", RevisionID: "r", Addr: runner})
	gwAddr, err := serve("gateway", gw)
	if err != nil {
		return nil, nil, err
	}

	targets := []*httpTarget{
		{id: CaseHTTPDirect, name: "HTTP direct to the runner", url: "http://" + runner + "/hello"},
		{id: CaseHTTPReverseProxy, name: "HTTP through a bare httputil.ReverseProxy", url: "http://" + proxy + "/hello"},
		{id: CaseHTTPGateway, name: "HTTP through the Revline gateway", url: "http://" + gwAddr + "/apps/bench/hello"},
	}
	for _, t := range targets {
		tr := &http.Transport{
			Proxy:               nil,
			MaxIdleConnsPerHost: 2 * cfg.Concurrency,
			DisableCompression:  true,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		}
		defer tr.CloseIdleConnections()
		t.client = &http.Client{Transport: tr, Timeout: time.Minute}
		t.res = &Case{Name: t.name, Concurrency: cfg.Concurrency}
	}

	for _, t := range targets {
		if _, err := t.batch(ctx, cfg.Warmup, cfg.Concurrency); err != nil {
			return nil, nil, fmt.Errorf("%s: warm-up: %w", t.name, err)
		}
	}
	lats := make(map[string][]time.Duration, len(targets))
	for round := range cfg.Rounds {
		n := cfg.Requests / cfg.Rounds
		if round < cfg.Requests%cfg.Rounds {
			n++
		}
		// Each round starts with another case, so that none always runs
		// right after the same one.
		for i := range targets {
			t := targets[(round+i)%len(targets)]
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			start := time.Now()
			lat, err := t.batch(ctx, n, cfg.Concurrency)
			t.res.elapsed += time.Since(start)
			t.res.Ops += n
			lats[t.id] = append(lats[t.id], lat...)
			if err != nil {
				t.res.Errors += n - len(lat)
				if t.firstErr == nil {
					t.firstErr = err
				}
			}
		}
	}
	cases := make(map[string]Case, len(targets))
	var errs []error
	for _, t := range targets {
		t.res.finish(lats[t.id])
		cases[t.id] = *t.res
		if t.firstErr != nil {
			errs = append(errs, fmt.Errorf("%s: %d of %d requests failed, the first with: %w", t.name, t.res.Errors, t.res.Ops, t.firstErr))
		}
	}
	comparisons := map[string]Comparison{
		"gateway_vs_reverse_proxy": compare(cases, CaseHTTPGateway, CaseHTTPReverseProxy, &Target{MaxP50Ratio: TargetP50Ratio, MinThroughputRatio: TargetThroughputRatio}),
		"gateway_vs_direct":        compare(cases, CaseHTTPGateway, CaseHTTPDirect, nil),
		"reverse_proxy_vs_direct":  compare(cases, CaseHTTPReverseProxy, CaseHTTPDirect, nil),
	}
	return cases, comparisons, errors.Join(errs...)
}

// batch sends n requests from concurrency clients and returns the
// latencies of those that succeeded, and the first failure.
func (t *httpTarget) batch(ctx context.Context, n, concurrency int) ([]time.Duration, error) {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		all      = make([]time.Duration, 0, n)
		firstErr error
	)
	for range min(concurrency, n) {
		wg.Go(func() {
			pprof.SetGoroutineLabels(pprof.WithLabels(ctx, pprof.Labels("bench_client", t.id)))
			lat := make([]time.Duration, 0, n/concurrency+1)
			var err error
			for next.Add(1) <= int64(n) {
				start := time.Now()
				if e := t.get(ctx); e != nil {
					err = cmpErr(err, e)
					continue
				}
				lat = append(lat, time.Since(start))
			}
			mu.Lock()
			all = append(all, lat...)
			firstErr = cmpErr(firstErr, err)
			mu.Unlock()
		})
	}
	wg.Wait()
	return all, firstErr
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// get sends one request and reads the whole answer.
func (t *httpTarget) get(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return err
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("status %s", resp.Status)
	case n != int64(len(runnerBody)):
		return fmt.Errorf("answer of %d bytes, want %d", n, len(runnerBody))
	}
	return nil
}
