package dashboard

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/cmd/revline/internal/httpapi"
)

// Sessions: a user logs in by pasting a token; the dashboard keeps, in
// memory, the token's name and hash under a random session id, and gives
// the browser only that id, in an HttpOnly, SameSite=Strict cookie. The
// token's value never lives in the browser past the login, and every
// request checks the token again in the token bucket, so a revoked token
// ends its sessions at once. Sessions are per replica and end when serve
// restarts: log in again.
const (
	sessionLifetime = 12 * time.Hour
	maxSessions     = 10000
	maxLoginBytes   = 4 << 10
)

// SessionCookie is the name of the dashboard's session cookie. Browsers
// send a host's cookies to all its ports, so the request gateway on the
// same host must not pass it to apps (gateway.Config.ControlPlaneCookies).
const SessionCookie = "revline_session"

// Tokens is what the dashboard asks of the token store (auth.Store).
type Tokens interface {
	httpapi.Authenticator
	// Check returns the token named name if its hash is tokenHash and it
	// is not revoked, else an error wrapping auth.ErrUnauthenticated.
	Check(ctx context.Context, name, tokenHash string) (auth.Token, error)
}

// session is a logged-in browser.
type session struct {
	name, hash string
	expires    time.Time
}

// sessions are the logged-in browsers, by session id.
type sessions struct {
	mu sync.Mutex
	m  map[string]session
}

// open starts a session for t and returns its id.
func (s *sessions) open(t auth.Token, now time.Time) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("session: %w", err)
	}
	id := base64.RawURLEncoding.EncodeToString(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxSessions {
		for k, v := range s.m {
			if now.After(v.expires) {
				delete(s.m, k)
			}
		}
		if len(s.m) >= maxSessions {
			return "", errors.New("too many open sessions: log out elsewhere or restart serve")
		}
	}
	s.m[id] = session{name: t.Name, hash: t.Hash, expires: now.Add(sessionLifetime)}
	return id, nil
}

// get returns the live session id names.
func (s *sessions) get(id string, now time.Time) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[id]
	if ok && now.After(sess.expires) {
		delete(s.m, id)
		return session{}, false
	}
	return sess, ok
}

func (s *sessions) close(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

// public reports whether path is served without a session: the login
// page, logging out and the static files.
func public(path string) bool {
	return path == "/ui/login" || path == "/ui/logout" || strings.HasPrefix(path, "/ui/assets/")
}

// authenticate returns the token of r's session.
func (d *Dashboard) authenticate(r *http.Request) (auth.Token, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return auth.Token{}, fmt.Errorf("%w: not logged in", auth.ErrUnauthenticated)
	}
	sess, ok := d.sessions.get(c.Value, time.Now())
	if !ok {
		return auth.Token{}, fmt.Errorf("%w: the session ended; log in again", auth.ErrUnauthenticated)
	}
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	t, err := d.cfg.Tokens.Check(ctx, sess.name, sess.hash)
	if errors.Is(err, auth.ErrUnauthenticated) {
		d.sessions.close(c.Value)
	}
	return t, err
}

// unauthenticated answers a request without a valid session: a page is
// redirected to the login page, which comes back to it; the script's
// requests get 401.
func (d *Dashboard) unauthenticated(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, auth.ErrUnauthenticated) {
		d.fail(w, r, err)
		return
	}
	if r.Method == http.MethodGet && r.Header.Get("X-Revline-Dashboard") == "" && r.URL.Path != "/ui/events" {
		http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "log in again: " + strings.TrimPrefix(err.Error(), auth.ErrUnauthenticated.Error()+": ")})
}

// authorize returns an *auth.ForbiddenError, logged for the operator,
// unless r's token grants need on app ("" for every app).
func (d *Dashboard) authorize(r *http.Request, need auth.Permission, app string) error {
	t, ok := httpapi.TokenFrom(r.Context())
	if !ok {
		return errors.New("dashboard: no token on an authenticated request")
	}
	err := t.Authorize(need, app)
	if err != nil {
		d.cfg.Logger.Warn("dashboard request refused", "status", http.StatusForbidden, "token", t.Name, "method", r.Method, "route", r.Pattern, "path", r.URL.Path, "reason", err.Error())
	}
	return err
}

// safeNext returns next if it is a path on this site, else "/".
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.HasPrefix(next, "/ui/login") {
		return "/"
	}
	return next
}

// loginPage shows the login form.
func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := d.login.Execute(w, map[string]string{"Next": safeNext(r.URL.Query().Get("next"))}); err != nil {
		d.cfg.Logger.Error("dashboard: render the login page", "error", err)
	}
}

// loginRequest is the body of POST /ui/login.
type loginRequest struct {
	Token string `json:"token"`
}

// logIn checks the pasted token and opens a session for it.
func (d *Dashboard) logIn(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxLoginBytes))
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		d.fail(w, r, badRequest("the request body is not the JSON login takes: "+err.Error()))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	t, err := d.cfg.Tokens.Authenticate(ctx, strings.TrimSpace(req.Token))
	if errors.Is(err, auth.ErrUnauthenticated) {
		d.cfg.Logger.Warn("dashboard login refused", "status", http.StatusUnauthorized, "token", auth.ClaimedName(strings.TrimSpace(req.Token)), "remote", r.RemoteAddr, "reason", err.Error())
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "That token is not valid: unknown, revoked or mistyped."})
		return
	}
	if err != nil {
		d.fail(w, r, err)
		return
	}
	id, err := d.sessions.open(t, time.Now())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: id, Path: "/", MaxAge: int(sessionLifetime / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	d.cfg.Logger.Info("dashboard login", "token", t.Name, "role", t.Role, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]string{"message": fmt.Sprintf("Logged in as %s (%s).", t.Actor(), t.Role)})
}

// logOut ends the session, if any, and clears the cookie.
func (d *Dashboard) logOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		d.sessions.close(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	writeJSON(w, http.StatusOK, map[string]string{"message": "Logged out."})
}
