// Package httpapi serves Revline's HTTP API: the same operations as the
// CLI (deploy, set-rev, rollout, delete-rev, scale, suspend, resume)
// through package control, and the read models through a queryapi.Reader.
// Bodies are JSON; errors are RFC 9457 problem documents carrying the same
// stable codes as the CLI. The API is described by the OpenAPI document
// served at /v1/openapi.yaml.
package httpapi

import (
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/cmd/revline/internal/control"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections/audit"
	"github.com/revline/revline/projections/queryapi"
	"github.com/revline/revline/workers/webhooks"
)

// Header names the API reads and writes. Who asks for a change is the
// bearer token's name (see Authenticator): no header can claim another
// actor.
const (
	// IdempotencyKeyHeader makes a retried deploy create no second
	// revision; the body's idempotency_key does the same.
	IdempotencyKeyHeader = "Idempotency-Key"
	// NextPageTokenHeader, on a page of a list (apps, revisions, runners)
	// that is not its last, holds the token of the next page: pass it as
	// the page_token query parameter. The Link header (rel="next") gives
	// the same as a URL.
	NextPageTokenHeader = "X-Revline-Next-Page-Token"
	// AsOfSequenceHeader, on a revision list as it was (at, at_seq), is
	// the sequence of the app's last event up to that point.
	AsOfSequenceHeader = "X-Revline-As-Of-Sequence"
)

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 1 << 20

// Deadlines of one request: long enough for a deploy or rollout the caller
// waits for, short for everything else.
const (
	waitTimeout    = 10 * time.Minute
	requestTimeout = 30 * time.Second
)

//go:embed openapi.yaml
var openAPIDocument []byte

// OpenAPI returns the OpenAPI 3.1 document describing the API.
func OpenAPI() []byte { return append([]byte(nil), openAPIDocument...) }

// Config configures the HTTP API.
type Config struct {
	// Control performs the operations; required. Its Actor is replaced by
	// the request's token's.
	Control *control.Control
	// Tokens authenticates the bearer token every /v1 route requires;
	// required.
	Tokens Authenticator
	// Reader answers the read routes; required.
	Reader queryapi.Reader
	// RunnerLogs, optional, answers GET .../runners/{runner}/logs: a
	// queryapi.Local with Logs on the server that runs the runners, a
	// queryapi.Client (which asks that server) elsewhere. Without it the
	// route answers 503 runner_logs_unavailable.
	RunnerLogs queryapi.LogReader
	// Audit, optional, is the event log that GET /v1/audit and
	// /v1/audit/stream read (the event store); without it they are not
	// served.
	Audit audit.Log
	// Webhooks, optional, is the webhook store /v1/webhooks manages (admin
	// only); without it those routes are not served.
	Webhooks *webhooks.Store
	// Replay, optional, serves POST /v1/replay (admin role on every app):
	// the server's read model rebuilt from the log.
	Replay queryapi.Replayer
	// Metrics, optional, is served at /metrics.
	Metrics http.Handler
	// Dashboard, optional, is served at / and under /ui/, behind the same
	// Host and cross-site checks as the API.
	Dashboard http.Handler
	// Ready, optional, is asked by /healthz: when it fails, /healthz
	// answers 503 with the error text.
	Ready func() error
	// AllowedHosts are host names (lower case) requests may name in their
	// Host header besides localhost and IP addresses; any other is refused,
	// which stops DNS-rebinding pages.
	AllowedHosts []string
	// Logger; default slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	for i, h := range c.AllowedHosts {
		c.AllowedHosts[i] = strings.ToLower(strings.TrimSpace(h))
	}
}

// Validate reports missing required settings.
func (c Config) Validate() error {
	var errs []error
	if c.Control == nil {
		errs = append(errs, errors.New("httpapi: Control is required"))
	} else {
		if c.Control.Commands == nil {
			errs = append(errs, errors.New("httpapi: Control.Commands is required"))
		}
		if c.Control.Reader == nil {
			errs = append(errs, errors.New("httpapi: Control.Reader is required"))
		}
		if c.Control.Events == nil {
			errs = append(errs, errors.New("httpapi: Control.Events is required"))
		}
	}
	if c.Reader == nil {
		errs = append(errs, errors.New("httpapi: Reader is required"))
	}
	if c.Tokens == nil {
		errs = append(errs, errors.New("httpapi: Tokens is required"))
	}
	return errors.Join(errs...)
}

// api holds what the handlers share.
type api struct {
	cfg Config
	mux *http.ServeMux
	// closing is closed by CloseStreams.
	closing   chan struct{}
	closeOnce sync.Once
}

// Handler is the API's http.Handler.
type Handler interface {
	http.Handler
	// CloseStreams ends the event streams (GET /v1/audit/stream) being
	// served, and those that start later: http.Server.Shutdown waits for
	// requests to end, and a stream would not (give it to the server's
	// RegisterOnShutdown).
	CloseStreams()
}

// CloseStreams implements Handler.
func (a *api) CloseStreams() { a.closeOnce.Do(func() { close(a.closing) }) }

// NewHandler checks cfg and returns the API's handler. It returns an error
// naming each missing required setting.
func NewHandler(cfg Config) (Handler, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &api{cfg: cfg, mux: http.NewServeMux(), closing: make(chan struct{})}
	a.routes()
	return a, nil
}

func (a *api) routes() {
	m := a.mux
	m.HandleFunc("GET /healthz", a.healthz)
	if a.cfg.Metrics != nil {
		m.Handle("GET /metrics", a.cfg.Metrics)
	}
	// Every /v1 route needs a bearer token granting the route's
	// permission on its {app}; /healthz and /metrics stay open (the API
	// listens on loopback unless told otherwise) for probes and scrapers.
	// A route that sends a command needs what the command needs on the
	// bus (auth.CommandPermission): one table for both.
	read := func(h http.HandlerFunc) http.HandlerFunc { return a.allow(auth.Read, h) }
	sends := func(commandType string, h http.HandlerFunc) http.HandlerFunc {
		return a.allow(auth.CommandPermission(commandType), h)
	}
	m.HandleFunc("GET /v1/openapi.yaml", read(serveOpenAPI))
	if a.cfg.Dashboard != nil {
		m.Handle("GET /{$}", a.cfg.Dashboard)
		m.Handle("/ui/", a.cfg.Dashboard)
	}

	if a.cfg.Audit != nil {
		// An audit of one app (?app=) needs the right to read that app
		// only; of every app, a token for every app.
		readAudit := func(h http.HandlerFunc) http.HandlerFunc {
			return a.allowOn(auth.Read, func(r *http.Request) string { return r.URL.Query().Get("app") }, h)
		}
		m.HandleFunc("GET /v1/audit", readAudit(a.auditPage))
		m.HandleFunc("GET /v1/audit/stream", readAudit(a.auditStream))
		m.HandleFunc("GET /v1/apps/{app}/config", read(a.app(a.appConfig)))
		m.HandleFunc("GET /v1/apps/{app}/config/{param}/history", read(a.app(a.paramHistory)))
	}
	if a.cfg.Webhooks != nil {
		a.webhookRoutes(m)
	}
	if a.cfg.Replay != nil {
		m.HandleFunc("POST /v1/replay", a.allow(auth.Admin, a.replay))
	}
	m.HandleFunc("GET /v1/apps", read(a.listApps))
	m.HandleFunc("DELETE /v1/apps/{app}", sends(events.CmdDeleteApp, a.app(a.deleteApp)))
	m.HandleFunc("GET /v1/apps/{app}/revisions", read(a.app(a.listRevisions)))
	m.HandleFunc("GET /v1/apps/{app}/revisions/{ref}", read(a.app(a.getRevision)))
	m.HandleFunc("DELETE /v1/apps/{app}/revisions/{ref}", sends(events.CmdDeleteRevision, a.app(a.deleteRevision)))
	m.HandleFunc("GET /v1/apps/{app}/diff", read(a.app(a.diffRevisions)))
	m.HandleFunc("GET /v1/apps/{app}/runners", read(a.app(a.listRunners)))
	m.HandleFunc("GET /v1/apps/{app}/runners/{runner}/logs", read(a.app(a.runnerLogs)))
	m.HandleFunc("POST /v1/apps/{app}/runners/{runner}/stop", sends(events.CmdStopRunner, a.app(a.stopRunner(false))))
	m.HandleFunc("POST /v1/apps/{app}/runners/{runner}/kill", sends(events.CmdStopRunner, a.app(a.stopRunner(true))))
	m.HandleFunc("GET /v1/apps/{app}/rollouts/{id}", read(a.app(a.getRollout)))
	m.HandleFunc("POST /v1/apps/{app}/deploy", sends(events.CmdDeploy, a.app(a.deploy)))
	m.HandleFunc("POST /v1/apps/{app}/set-rev", sends(events.CmdSetRevision, a.app(a.setRevision)))
	m.HandleFunc("POST /v1/apps/{app}/rollout", sends(events.CmdRollout, a.app(a.rollout)))
	m.HandleFunc("POST /v1/apps/{app}/scale", sends(events.CmdScale, a.app(a.scale)))
	m.HandleFunc("POST /v1/apps/{app}/suspend", sends(events.CmdSuspend, a.app(a.suspend)))
	m.HandleFunc("POST /v1/apps/{app}/resume", sends(events.CmdResume, a.app(a.resume)))
}

// ServeHTTP routes r, answering unknown routes and methods with a problem
// document instead of the mux's plain text, and turning a handler's panic
// into a 500.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			a.fail(w, r, fmt.Errorf("panic: %v", v))
		}
	}()
	if p, ok := checkRequest(r, a.cfg.AllowedHosts); !ok {
		a.writeProblem(w, r, p)
		return
	}
	h, pattern := a.mux.Handler(r)
	if pattern != "" {
		a.mux.ServeHTTP(w, r)
		return
	}
	// No route: learn what the mux would answer (404, 405 with Allow, or a
	// redirect to the cleaned path) and answer 404 and 405 as problems.
	probe := &statusRecorder{header: http.Header{}}
	h.ServeHTTP(probe, r)
	switch probe.status {
	case http.StatusNotFound:
		a.writeProblem(w, r, newProblem(codeNotFound, fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path)))
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", probe.header.Get("Allow"))
		a.writeProblem(w, r, newProblem(codeMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, probe.header.Get("Allow"))))
	default:
		h.ServeHTTP(w, r)
	}
}

// statusRecorder keeps the status and headers a handler writes and drops
// its body.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header { return s.header }
func (s *statusRecorder) WriteHeader(status int) {
	if s.status == 0 {
		s.status = status
	}
}
func (s *statusRecorder) Write(b []byte) (int, error) {
	s.WriteHeader(http.StatusOK)
	return len(b), nil
}

func (a *api) healthz(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Ready != nil {
		if err := a.cfg.Ready(); err != nil {
			a.writeProblem(w, r, newProblem(codeNotReady, "not ready: "+err.Error()))
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(openAPIDocument)
}
