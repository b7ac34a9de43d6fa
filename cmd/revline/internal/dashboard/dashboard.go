// Package dashboard serves Revline's web dashboard: the apps, each app's
// versions (with rollback and delete), its runners (with rollouts) and its
// history, updated live from the event log through server-sent events.
//
// Pages are rendered on the server with html/template; the stylesheet and
// a small script are embedded in the binary, so the dashboard needs nothing
// from the internet. Reads go through the same queryapi.Reader as the HTTP
// API and actions through the same package control. Every page but the
// login page needs a session, opened by pasting a bearer token (see
// session.go); pages need the viewer role, actions the operator's, and
// actions are recorded as the token's (token:NAME). The dashboard is mounted
// inside the HTTP API's handler, whose Host, Origin and content-type checks
// run before any of its routes: actions are JSON posts made by its script,
// which a cross-site form cannot imitate.
package dashboard

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"

	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/cmd/revline/internal/control"
	"github.com/revline/revline/cmd/revline/internal/httpapi"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections/queryapi"
)

// EventLog is what the dashboard reads from the event store: one app's
// history (the rollback preview, the runners page's last rollout, the
// history page), the log as it grows (live updates) and where it ends now.
type EventLog interface {
	events.AppLoader
	events.Follower
	control.AppFollower
	// LastSequence returns the stream sequence of the log's last event.
	LastSequence(ctx context.Context) (uint64, error)
}

// Config configures the dashboard.
type Config struct {
	// Control performs the actions; required. Its Actor is replaced by
	// the session's token's.
	Control *control.Control
	// Tokens checks the tokens users log in with; required.
	Tokens Tokens
	// Reader answers the pages' reads; required.
	Reader queryapi.Reader
	// Events is the event store; required.
	Events EventLog
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Validate reports missing required settings.
func (c Config) Validate() error {
	var errs []error
	if c.Control == nil {
		errs = append(errs, errors.New("dashboard: Control is required"))
	}
	if c.Reader == nil {
		errs = append(errs, errors.New("dashboard: Reader is required"))
	}
	if c.Tokens == nil {
		errs = append(errs, errors.New("dashboard: Tokens is required"))
	}
	if c.Events == nil {
		errs = append(errs, errors.New("dashboard: Events is required"))
	}
	return errors.Join(errs...)
}

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed assets
var assetFiles embed.FS

// Dashboard is the dashboard's HTTP handler, mounted at "GET /{$}" and
// "/ui/" (httpapi.Config.Dashboard).
type Dashboard struct {
	cfg   Config
	mux   *http.ServeMux
	pages map[string]*template.Template
	login *template.Template
	// sessions are the logged-in browsers.
	sessions sessions
	// closed ends the live streams when the server shuts down: an open
	// page would otherwise hold its connection for the whole grace.
	closed    chan struct{}
	closeOnce sync.Once
}

// New checks cfg, parses the templates and returns the dashboard.
func New(cfg Config) (*Dashboard, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	login, err := template.ParseFS(templateFiles, "templates/login.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	d := &Dashboard{cfg: cfg, mux: http.NewServeMux(), pages: pages, login: login, sessions: sessions{m: map[string]session{}}, closed: make(chan struct{})}
	d.routes()
	return d, nil
}

// pageNames are the templates rendered as whole pages; each is parsed
// with layout.html.
var pageNames = []string{"apps", "versions", "runners", "history", "error"}

func parsePages() (map[string]*template.Template, error) {
	layout, err := template.New("layout.html").Funcs(templateFuncs).ParseFS(templateFiles, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	pages := map[string]*template.Template{}
	for _, name := range append(pageNames, "preview") {
		t, err := layout.Clone()
		if err != nil {
			return nil, fmt.Errorf("dashboard: %w", err)
		}
		if pages[name], err = t.ParseFS(templateFiles, "templates/"+name+".html"); err != nil {
			return nil, fmt.Errorf("dashboard: %w", err)
		}
	}
	return pages, nil
}

func (d *Dashboard) routes() {
	assets, _ := fs.Sub(assetFiles, "assets") // "assets" is embedded above
	m := d.mux
	m.HandleFunc("GET /ui/login", d.loginPage)
	m.HandleFunc("POST /ui/login", d.logIn)
	m.HandleFunc("POST /ui/logout", d.logOut)
	m.HandleFunc("GET /{$}", d.appsPage)
	m.Handle("GET /ui/assets/", http.StripPrefix("/ui/assets/", noCache(http.FileServerFS(assets))))
	m.HandleFunc("GET /ui/events", d.live)
	m.HandleFunc("GET /ui/apps/{app}", d.app(d.versionsPage))
	m.HandleFunc("GET /ui/apps/{app}/runners", d.app(d.runnersPage))
	m.HandleFunc("GET /ui/apps/{app}/history", d.app(d.historyPage))
	m.HandleFunc("GET /ui/apps/{app}/rollback-preview", d.app(d.rollbackPreview))
	m.HandleFunc("POST /ui/apps/{app}/rollback", d.app(d.rollback))
	m.HandleFunc("POST /ui/apps/{app}/delete-revision", d.app(d.deleteRevision))
	m.HandleFunc("POST /ui/apps/{app}/rollout", d.app(d.rollout))
	m.HandleFunc("/ui/", d.notFound)
}

// ServeHTTP answers a dashboard route. Every answer forbids framing
// (clickjacking) and loads nothing but the dashboard's own files. Every
// route but the login page's and the static files needs a session.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	if !public(r.URL.Path) {
		t, err := d.authenticate(r)
		if err != nil {
			d.unauthenticated(w, r, err)
			return
		}
		r = r.WithContext(httpapi.WithToken(r.Context(), t))
	}
	d.mux.ServeHTTP(w, r)
}

// Close ends the live streams of open pages; give it to
// http.Server.RegisterOnShutdown.
func (d *Dashboard) Close() {
	d.closeOnce.Do(func() { close(d.closed) })
}

// appRoute serves a route under /ui/apps/{app}; it returns an error to
// answer with an error page (or, for actions, a JSON error).
type appRoute func(w http.ResponseWriter, r *http.Request, app string) error

// app checks the {app} path value, and that the session's token may read
// the app (GET) or act on it (POST), before anything else runs.
func (d *Dashboard) app(h appRoute) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		app := r.PathValue("app")
		need := auth.Read
		if r.Method != http.MethodGet {
			need = auth.Operate
		}
		err := events.ValidateAppName(app)
		if err == nil {
			err = d.authorize(r, need, app)
		}
		if err == nil {
			err = h(w, r, app)
		}
		if err != nil {
			d.fail(w, r, err)
		}
	}
}

func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}
