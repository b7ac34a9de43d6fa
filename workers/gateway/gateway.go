// Package gateway is Revline's data plane: every request to an app passes
// through it on its way to one of the app's runners. Because it sees every
// request, it knows each runner's in-flight count, which is what makes a
// graceful drain real (a draining runner gets nothing new and is stopped
// only when its last request has ended), lets a forced stop count exactly
// the requests it cut, and keeps a runner within its max_multiplexing.
//
// The control plane (the runner worker) tells the gateway what exists: each
// app's route (current revision, suspended, limits) and each ready runner's
// address. Per-request facts stay here, as live state; they never become
// events.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/revline/revline/events"
)

// Headers the gateway adds.
const (
	// HeaderRequestID identifies a request end to end; a client's own value
	// is kept.
	HeaderRequestID = "X-Revline-Request-Id"
	// HeaderRunner and HeaderRevision name the runner that answered.
	HeaderRunner   = "X-Revline-Runner"
	HeaderRevision = "X-Revline-Revision"
)

// Route is what the control plane says about one app.
type Route struct {
	// CurrentRevision is the revision requests should go to ("" before the
	// first successful deploy: the app then serves nothing).
	CurrentRevision string
	// Suspended apps answer 503.
	Suspended bool
	// Deleted apps answer 404 app_not_found, as unknown ones do.
	Deleted bool
	// MaxMultiplexing is how many requests one runner handles at once.
	MaxMultiplexing int
	// RequestTimeout bounds a request, including its wait for a runner.
	RequestTimeout time.Duration
	// ConcurrencyBuffer is how many runners the app keeps free beyond its
	// demand: when a request leaves fewer, the gateway signals demand.
	ConcurrencyBuffer int
}

// Backend is one ready runner.
type Backend struct {
	RunnerID   string
	RevisionID string
	// Addr is host:port, where the runner listens.
	Addr string
	// MaxMultiplexing is its revision's max_multiplexing: it holds while
	// the runner serves for a revision that is no longer current (during
	// a rolling switch); the route's holds for the current one.
	MaxMultiplexing int
}

// Config configures a Gateway.
type Config struct {
	// QueueLimit bounds how many requests of one app may wait for a free
	// runner; beyond it requests get 503 with Retry-After. Default 1000.
	QueueLimit int
	// Transport carries requests to runners; default a transport tuned for
	// many idle connections per runner.
	Transport http.RoundTripper
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Now is the clock of idle times; default time.Now.
	Now func() time.Time
	// StartingGrace is how long an app announced with Expect answers
	// "starting" while its route does not come; after it, requests get
	// 503 app_unavailable without Retry-After. Default 1 min.
	StartingGrace time.Duration
	// Observe, optional, is told about every request once it is answered
	// (metrics). It runs on the request's goroutine: keep it quick.
	Observe func(RequestStats)
	// ControlPlaneCookies are the names of cookies that belong to the
	// control plane on this host (the dashboard's session): browsers send
	// a host's cookies to every port of it, so the gateway takes them out
	// of requests before a runner sees them, and out of runners' answers
	// so that no app can set or replace them.
	ControlPlaneCookies []string
}

// RequestStats describes one answered request.
type RequestStats struct {
	// App is the app's name, "" for an app the gateway does not know
	// (so that requests for made-up names cannot grow a metric's labels).
	App string
	// Status is the status sent to the client; 499 when the client went
	// away before an answer.
	Status int
	// Duration is from the request's arrival to its answer's end; Waited
	// is the part spent waiting for a runner slot.
	Duration, Waited time.Duration
	// ColdStart is true when the app had no runner taking requests when
	// the request arrived: it waited for one to start (scaled to zero).
	ColdStart bool
}

func (c *Config) setDefaults() {
	if c.QueueLimit == 0 {
		c.QueueLimit = 1000
	}
	if c.Transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 0
		t.MaxIdleConnsPerHost = 1024
		t.ForceAttemptHTTP2 = false
		c.Transport = t
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.StartingGrace == 0 {
		c.StartingGrace = time.Minute
	}
}

// Validate reports impossible settings.
func (c Config) Validate() error {
	if c.QueueLimit < 0 {
		return fmt.Errorf("gateway: QueueLimit must not be negative, got %d", c.QueueLimit)
	}
	return nil
}

// Gateway routes requests to runners. It is an http.Handler for
// /apps/{app}/{path...}. Its methods are safe for concurrent use.
type Gateway struct {
	cfg   Config
	proxy *httputil.ReverseProxy

	mu       sync.Mutex
	apps     map[string]*app
	onDemand func(app string)
}

// app is the gateway's state of one app; its fields are guarded by
// Gateway.mu.
type app struct {
	route    Route
	known    bool // a route was set
	expected bool // the control plane knows the app and will set its route
	// expectedAt is when Expect announced it.
	expectedAt time.Time
	backends   map[string]*backend
	queued     int
	// queuedSince is when the queue last became non-empty.
	queuedSince time.Time
	// changed is closed (and replaced) whenever a slot frees or the
	// backends change, waking the requests that wait for a runner.
	changed chan struct{}
	// backOffUntil is when the control plane starts runners of the app
	// again after a failure (BackOff); zero if it is not backing off.
	backOffUntil time.Time
}

// backend is one runner with its in-flight requests.
type backend struct {
	Backend
	flights  map[*flight]struct{}
	draining bool // no new requests
	dropping bool // in-flight requests are being cut
	dropped  int  // requests that failed because they were cut
	// idle is closed once the backend is draining and has no request.
	idle chan struct{}
	// idleSince is when its last request ended (or it was added); zero
	// while it has requests.
	idleSince time.Time
}

// flight is one request in progress.
type flight struct {
	backend *backend
	cancel  context.CancelCauseFunc
	failed  bool
	// coldStart: the app had no runner taking requests when the request
	// arrived.
	coldStart bool
}

// New checks cfg and returns a Gateway.
func New(cfg Config) (*Gateway, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, apps: map[string]*app{}}
	g.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			rewrite(pr)
			dropCookies(pr.Out.Header, "Cookie", cfg.ControlPlaneCookies)
		},
		Transport: cfg.Transport,
		// No FlushInterval: the standard library already flushes at once
		// answers of unknown length (chunked) and server-sent events, and
		// flushing every answer costs a write per request (bench: 0.8 of a
		// bare proxy's throughput with it, 0.92-0.99 without).
		ErrorHandler: g.proxyError,
		ModifyResponse: func(resp *http.Response) error {
			dropCookies(resp.Header, "Set-Cookie", cfg.ControlPlaneCookies)
			return keepContentTypeUnset(resp)
		},
		ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return g, nil
}

// keepContentTypeUnset passes on a runner's answer without a Content-Type
// as it is: net/http would otherwise sniff the body and add one the runner
// never sent (a Content-Type without a value in the answer's headers tells
// it not to; the proxy copies the runner's headers in beside it).
func keepContentTypeUnset(resp *http.Response) error {
	if _, set := resp.Header["Content-Type"]; !set {
		resp.Request.Context().Value(stateKey{}).(*requestState).answer["Content-Type"] = nil
	}
	return nil
}

// SetRoute tells the gateway what the control plane decided for app.
func (g *Gateway) SetRoute(appName string, r Route) {
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.app(appName)
	a.route, a.known = r, true
	a.notify()
}

// Expect tells the gateway that app exists and its route is coming (the
// runner worker calls it for every app at start-up): until then requests
// for it get 503 app_starting with Retry-After, not 404.
func (g *Gateway) Expect(appName string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.app(appName)
	a.expected, a.expectedAt = true, g.cfg.Now()
}

// Route returns the route the gateway has for app, and whether it has one.
func (g *Gateway) Route(appName string) (Route, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	a, ok := g.apps[appName]
	if !ok || !a.known {
		return Route{}, false
	}
	return a.route, true
}

// AddRunner makes a ready runner of app available to requests.
func (g *Gateway) AddRunner(appName string, b Backend) {
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.app(appName)
	a.backends[b.RunnerID] = &backend{Backend: b, flights: map[*flight]struct{}{}, idle: make(chan struct{}), idleSince: g.cfg.Now()}
	a.notify()
}

// Drain stops sending new requests to a runner and waits until the
// requests it has in flight have ended, or ctx ends. It returns how many
// are still in flight (0: the runner may be stopped without cutting any).
func (g *Gateway) Drain(ctx context.Context, appName, runnerID string) (remaining int) {
	g.mu.Lock()
	b := g.stopRouting(appName, runnerID)
	if b == nil {
		g.mu.Unlock()
		return 0
	}
	idle := b.idle
	g.mu.Unlock()
	select {
	case <-idle:
		return 0
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(b.flights)
}

// Drop stops sending requests to a runner, cuts the requests it has in
// flight (their clients get 502), waits until they have ended, and returns
// how many of them failed: the exact number of requests dropped. The runner
// stays listed (as draining) until RemoveRunner.
func (g *Gateway) Drop(appName, runnerID string) (dropped int) {
	g.mu.Lock()
	b := g.stopRouting(appName, runnerID)
	if b == nil {
		g.mu.Unlock()
		return 0
	}
	b.dropping = true
	before := b.dropped
	for f := range b.flights {
		f.cancel(errDropped)
	}
	idle := b.idle
	g.mu.Unlock()
	<-idle // cancelled requests end at once
	g.mu.Lock()
	defer g.mu.Unlock()
	return b.dropped - before
}

// BackOff tells the gateway that the control plane starts no runner of
// app before until, after runners failed (a crash loop, replacements or
// cold starts that did not listen). Meanwhile, while no runner of the app
// takes requests, nothing is coming for them: they get 503 app_backing_off
// with Retry-After at once, those waiting already included, rather than
// wait out request_timeout. A runner added, or until passing, ends it; a
// request that finds the app with no runner otherwise waits for one to
// start, as from zero.
func (g *Gateway) BackOff(appName string, until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.app(appName)
	a.backOffUntil = until
	a.notify()
}

// RemoveRunner forgets a runner that has stopped.
func (g *Gateway) RemoveRunner(appName, runnerID string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if a, ok := g.apps[appName]; ok {
		delete(a.backends, runnerID)
		a.notify()
	}
}

// Load is the live demand on one app.
type Load struct {
	// InFlight counts the requests each runner is handling, by runner id.
	InFlight map[string]int
	// Queued counts the requests waiting for a free runner; QueuedSince
	// is since when some have been waiting without a break (zero when
	// none waits).
	Queued      int
	QueuedSince time.Time
	// IdleSince tells, for each runner that is taking requests but has
	// none, since when.
	IdleSince map[string]time.Time
}

// InFlight returns how many requests each runner of app is handling, by
// runner id: the live state merged into the runner views.
func (g *Gateway) InFlight(appName string) map[string]int { return g.Load(appName).InFlight }

// Demand is how many requests the app has: in flight and waiting.
func (l Load) Demand() int {
	n := l.Queued
	for _, c := range l.InFlight {
		n += c
	}
	return n
}

// OnDemand registers fn, called (without blocking, never under the
// gateway's lock) whenever a request finds the app short of runners: it
// has to wait, or leaves fewer free runners than the app's concurrency
// buffer. The runner worker uses it to scale up, and to start the first
// runner of an app scaled to zero.
func (g *Gateway) OnDemand(fn func(app string)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.onDemand = fn
}

// Load returns the live demand on app: what an autoscaler and the runner
// views need, and what never goes into the event log.
func (g *Gateway) Load(appName string) Load {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := Load{InFlight: map[string]int{}, IdleSince: map[string]time.Time{}}
	if a, ok := g.apps[appName]; ok {
		out.Queued, out.QueuedSince = a.queued, a.queuedSince
		for id, b := range a.backends {
			out.InFlight[id] = len(b.flights)
			if !b.draining && len(b.flights) == 0 {
				out.IdleSince[id] = b.idleSince
			}
		}
	}
	return out
}

// ServeHTTP implements http.Handler: /apps/{app}/{path...} goes to a
// runner of app. The path is split by hand, not by an http.ServeMux, which
// would redirect a path it cleans (turning a POST into a GET for many
// clients) and decode the app's segment before it is split off.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/apps/")
	if !ok {
		problem(w, r.URL.EscapedPath(), http.StatusNotFound, codeNotFound, "the gateway serves /apps/{app}/{path}")
		return
	}
	app, path, _ := strings.Cut(rest, "/")
	g.serveApp(w, r, app, "/"+path)
}

func (g *Gateway) app(name string) *app {
	a, ok := g.apps[name]
	if !ok {
		a = &app{backends: map[string]*backend{}, changed: make(chan struct{})}
		g.apps[name] = a
	}
	return a
}

func (g *Gateway) backend(appName, runnerID string) *backend {
	if a, ok := g.apps[appName]; ok {
		return a.backends[runnerID]
	}
	return nil
}

// taking reports whether a runner of the app takes requests.
func (a *app) taking() bool {
	for _, b := range a.backends {
		if !b.draining {
			return true
		}
	}
	return false
}

// freeRunners counts the runners taking requests that have none.
func (a *app) freeRunners() int {
	n := 0
	for _, b := range a.backends {
		if !b.draining && len(b.flights) == 0 {
			n++
		}
	}
	return n
}

// stopRouting marks a runner draining, so that it gets no new request, and
// returns it; nil if the gateway does not know it. g.mu must be held.
func (g *Gateway) stopRouting(appName, runnerID string) *backend {
	b := g.backend(appName, runnerID)
	if b != nil {
		b.startDraining()
		g.apps[appName].notify()
	}
	return b
}

func (a *app) notify() {
	close(a.changed)
	a.changed = make(chan struct{})
}

func (b *backend) startDraining() {
	if !b.draining {
		b.draining = true
		if len(b.flights) == 0 {
			close(b.idle)
		}
	}
}

// pick returns the least-loaded runner with a free slot: one of the
// current revision, or, while the current revision has no ready runner at
// all (a rolling switch is starting its runners), one of another revision.
// It returns nil when every candidate is busy or none exists.
func (a *app) pick() *backend {
	var current, others []*backend
	for _, b := range a.backends {
		if b.draining {
			continue
		}
		if b.RevisionID == a.route.CurrentRevision {
			current = append(current, b)
		} else {
			others = append(others, b)
		}
	}
	candidates := current
	if len(current) == 0 {
		candidates = others
	}
	free := slices.DeleteFunc(candidates, func(b *backend) bool { return len(b.flights) >= a.limit(b) })
	if len(free) == 0 {
		return nil
	}
	return slices.MinFunc(free, func(x, y *backend) int {
		if c := len(x.flights) - len(y.flights); c != 0 {
			return c
		}
		return strings.Compare(x.RunnerID, y.RunnerID)
	})
}

// limit is how many requests b may handle at once: the route's
// max_multiplexing for a runner of the current revision (a scale may have
// changed it), its own revision's for another.
func (a *app) limit(b *backend) int {
	if b.RevisionID == a.route.CurrentRevision || b.MaxMultiplexing == 0 {
		return max(a.route.MaxMultiplexing, 1)
	}
	return b.MaxMultiplexing
}

// Why a proxied request's context ended.
var (
	errDropped        = errors.New("the runner was stopped while it handled the request")
	errRequestTimeout = errors.New("request_timeout elapsed")
)

// errUnavailable explains a request that found no runner; retryAfter,
// if set, is when to try again.
type errUnavailable struct {
	status     int
	code       string
	message    string
	retryAfter time.Duration
}

// acquire waits for a runner slot of appName until ctx ends. It returns
// the flight holding the slot, or the answer to give instead.
func (g *Gateway) acquire(ctx context.Context, appName string, cancel context.CancelCauseFunc) (*flight, *errUnavailable) {
	g.mu.Lock()
	short := false
	defer func() {
		notify := g.onDemand
		g.mu.Unlock()
		if short && notify != nil {
			notify(appName)
		}
	}()
	a, ok := g.apps[appName]
	switch {
	case ok && a.expected && !a.known && g.cfg.Now().Sub(a.expectedAt) < g.cfg.StartingGrace:
		return nil, &errUnavailable{http.StatusServiceUnavailable, codeAppStarting, fmt.Sprintf("app %q is starting: its runners are not known yet", appName), time.Second}
	case ok && a.expected && !a.known:
		return nil, &errUnavailable{http.StatusServiceUnavailable, codeAppUnavailable, fmt.Sprintf("app %q has not come back since the server started (its log may not be readable: see the server's log)", appName), 0}
	case !ok || !a.known:
		return nil, &errUnavailable{http.StatusNotFound, codeAppNotFound, fmt.Sprintf("app %q not found", appName), 0}
	}
	queued, coldStart := false, !a.taking()
	defer func() {
		if queued {
			if a.queued--; a.queued == 0 {
				a.queuedSince = time.Time{}
			}
		}
	}()
	for {
		switch {
		case a.route.Deleted:
			// Also for a request that waited: the app went away meanwhile.
			return nil, &errUnavailable{http.StatusNotFound, codeAppNotFound, fmt.Sprintf("app %q not found", appName), 0}
		case a.route.Suspended:
			return nil, &errUnavailable{http.StatusServiceUnavailable, codeAppSuspended, fmt.Sprintf("app %q is suspended: resume it to serve requests", appName), 0}
		case a.route.CurrentRevision == "":
			return nil, &errUnavailable{http.StatusServiceUnavailable, codeNoCurrentRevision, fmt.Sprintf("app %q has no deployed revision yet", appName), 0}
		}
		if b := a.pick(); b != nil {
			f := &flight{backend: b, cancel: cancel, coldStart: coldStart}
			b.flights[f] = struct{}{}
			b.idleSince = time.Time{}
			short = short || a.freeRunners() < a.route.ConcurrencyBuffer
			return f, nil
		}
		if wait := a.backOffUntil.Sub(g.cfg.Now()); wait > 0 && !a.taking() {
			// Not even a runner of another revision takes requests, and
			// none starts before the back-off ends. (Its reason, which may
			// quote the runner's output, is for the operator, not the
			// app's clients: the audit log and `revline apps runners`.)
			return nil, &errUnavailable{http.StatusServiceUnavailable, codeAppBackingOff, fmt.Sprintf("app %q has no runner that can take requests: its runners failed, and the next one starts in %s", appName, wait.Round(time.Second)), wait}
		}
		signal := false
		if !queued {
			if a.queued >= g.cfg.QueueLimit {
				return nil, &errUnavailable{http.StatusServiceUnavailable, codeQueueFull, fmt.Sprintf("app %q has %d requests waiting for a runner already", appName, a.queued), time.Second}
			}
			if a.queued++; a.queued == 1 {
				a.queuedSince = g.cfg.Now()
			}
			queued, signal = true, true
		}
		changed, notify := a.changed, g.onDemand
		g.mu.Unlock()
		if signal && notify != nil {
			notify(appName) // ask for a runner now, not once the wait is over
		}
		select {
		case <-changed:
			g.mu.Lock()
		case <-ctx.Done():
			g.mu.Lock()
			if errors.Is(context.Cause(ctx), errRequestTimeout) {
				return nil, &errUnavailable{http.StatusGatewayTimeout, codeRequestTimeout, fmt.Sprintf("no runner of app %q was free within its request_timeout", appName), 0}
			}
			return nil, &errUnavailable{499, "client_gone", "the client went away", 0}
		}
	}
}

// release ends a flight and frees its slot.
func (g *Gateway) release(appName string, f *flight) {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := f.backend
	delete(b.flights, f)
	if len(b.flights) == 0 {
		b.idleSince = g.cfg.Now()
	}
	if f.failed && b.dropping {
		b.dropped++
	}
	if b.draining && len(b.flights) == 0 {
		select {
		case <-b.idle:
		default:
			close(b.idle)
		}
	}
	if a, ok := g.apps[appName]; ok {
		a.notify()
	}
}

// unblockWrites is how long writes to a client go on once its request was
// cut or timed out.
const unblockWrites = time.Second

// requestState travels in the proxied request's context.
type requestState struct {
	flight *flight
	// app and path (escaped) come from the request's path.
	app, path string
	// answer holds the headers of the answer to the client.
	answer http.Header
}

type stateKey struct{}

// serveApp proxies r to a runner of appName, which receives path (still
// escaped as the client sent it).
func (g *Gateway) serveApp(w http.ResponseWriter, r *http.Request, appName, path string) {
	if err := events.ValidateAppName(appName); err != nil {
		problem(w, r.URL.EscapedPath(), http.StatusNotFound, codeAppNotFound, err.Error())
		return
	}
	requestID := r.Header.Get(HeaderRequestID)
	if requestID == "" || len(requestID) > 128 {
		requestID = uuid.NewString()
	}
	w.Header().Set(HeaderRequestID, requestID)

	g.mu.Lock()
	timeout := time.Duration(0)
	if a, ok := g.apps[appName]; ok {
		timeout = a.route.RequestTimeout
	}
	g.mu.Unlock()
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	if timeout > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeoutCause(ctx, timeout, errRequestTimeout)
		defer stop()
	}
	if g.cfg.Observe != nil {
		recorder := &statusRecorder{ResponseWriter: w}
		w = recorder
		defer g.observe(appName, recorder, time.Now())
	}
	f, unavailable := g.acquire(ctx, appName, cancel)
	if unavailable != nil {
		if unavailable.retryAfter > 0 {
			// Whole seconds (RFC 9110), rounded up: never 0.
			w.Header().Set("Retry-After", strconv.Itoa(int((unavailable.retryAfter+time.Second-1)/time.Second)))
		}
		if unavailable.status != 499 {
			problem(w, r.URL.EscapedPath(), unavailable.status, unavailable.code, unavailable.message)
		}
		return
	}
	if recorder, ok := w.(*statusRecorder); ok {
		recorder.acquired, recorder.coldStart = time.Now(), f.coldStart
	}
	defer func() {
		if p := recover(); p != nil {
			// The runner's answer broke off mid-body: the client saw a
			// failure even though its status was sent.
			g.mu.Lock()
			f.failed = true
			g.mu.Unlock()
			g.release(appName, f)
			panic(p)
		}
		g.release(appName, f)
	}()
	// A cut or timed-out request must end even while its client reads
	// nothing: a write blocked on a full connection then fails within
	// unblockWrites, which still leaves time to write the 502 or 504.
	unblock := context.AfterFunc(ctx, func() {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(unblockWrites))
	})
	defer unblock()
	w.Header().Set(HeaderRunner, f.backend.RunnerID)
	w.Header().Set(HeaderRevision, f.backend.RevisionID)
	out := r.WithContext(context.WithValue(ctx, stateKey{}, &requestState{flight: f, app: appName, path: path, answer: w.Header()}))
	out.Header.Set(HeaderRequestID, requestID)
	g.proxy.ServeHTTP(w, out)
}

// rewrite sends the request to the flight's runner, without the
// /apps/{app} prefix, which goes in X-Forwarded-Prefix.
func rewrite(pr *httputil.ProxyRequest) {
	state := pr.In.Context().Value(stateKey{}).(*requestState)
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = state.flight.backend.Addr
	pr.Out.URL.RawPath = state.path
	if path, err := url.PathUnescape(state.path); err == nil {
		pr.Out.URL.Path = path
	} else {
		pr.Out.URL.Path, pr.Out.URL.RawPath = state.path, ""
	}
	pr.Out.Host = ""
	pr.SetXForwarded()
	pr.Out.Header.Set("X-Forwarded-Prefix", "/apps/"+state.app)
}

// dropCookies removes the cookies named in names from h's field: the
// pairs of a Cookie header (a field left empty is removed), or the
// Set-Cookie fields that set one of them.
func dropCookies(h http.Header, field string, names []string) {
	if len(names) == 0 || len(h[field]) == 0 {
		return
	}
	named := func(pair string) bool {
		name, _, _ := strings.Cut(strings.TrimSpace(pair), "=")
		return slices.Contains(names, strings.TrimSpace(name))
	}
	var kept []string
	for _, value := range h[field] {
		if field != "Cookie" {
			if first, _, _ := strings.Cut(value, ";"); !named(first) {
				kept = append(kept, value)
			}
			continue
		}
		pairs := strings.Split(value, ";")
		pairs = slices.DeleteFunc(pairs, named)
		if len(pairs) > 0 {
			kept = append(kept, strings.TrimSpace(strings.Join(pairs, ";")))
		}
	}
	if len(kept) == 0 {
		h.Del(field)
		return
	}
	h[field] = kept
}

// proxyError answers a request the runner did not answer.
func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	state := r.Context().Value(stateKey{}).(*requestState)
	g.mu.Lock()
	state.flight.failed = true
	g.mu.Unlock()
	// r is the request as sent to the runner: the client's path had the
	// app's prefix.
	instance := "/apps/" + state.app + state.path
	switch cause := context.Cause(r.Context()); {
	case errors.Is(cause, errDropped):
		problem(w, instance, http.StatusBadGateway, codeRunnerStopped, errDropped.Error())
	case errors.Is(cause, errRequestTimeout):
		problem(w, instance, http.StatusGatewayTimeout, codeRequestTimeout, "the runner did not answer within the app's request_timeout")
	case r.Context().Err() != nil:
		// The client went away; nobody reads an answer.
	default:
		g.cfg.Logger.Warn("runner unreachable", "runner", state.flight.backend.RunnerID, "error", err)
		problem(w, instance, http.StatusBadGateway, codeRunnerUnreachable, "the runner did not answer: "+err.Error())
	}
}

// observe reports an answered request to Config.Observe.
func (g *Gateway) observe(appName string, rec *statusRecorder, arrived time.Time) {
	stats := RequestStats{Status: rec.status, Duration: time.Since(arrived), ColdStart: rec.coldStart}
	if stats.Status == 0 {
		stats.Status = 499 // nothing was written: the client went away
	}
	if !rec.acquired.IsZero() {
		stats.Waited = rec.acquired.Sub(arrived)
	}
	g.mu.Lock()
	if a, ok := g.apps[appName]; ok && a.known {
		stats.App = appName
	}
	g.mu.Unlock()
	g.cfg.Observe(stats)
}

// statusRecorder notes the status a request was answered with. Unwrap
// keeps http.ResponseController (flushes, write deadlines) working
// through it.
type statusRecorder struct {
	http.ResponseWriter
	status    int
	acquired  time.Time
	coldStart bool
}

// WriteHeader implements http.ResponseWriter.
func (r *statusRecorder) WriteHeader(status int) {
	if r.status == 0 && status >= 200 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

// Write implements http.ResponseWriter.
func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap returns the wrapped ResponseWriter, for http.ResponseController.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
