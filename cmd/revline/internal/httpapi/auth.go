package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/cmd/revline/internal/control"
	"github.com/revline/revline/events"
)

// codeUnauthenticated is the code of a request without a valid token.
const codeUnauthenticated = events.CodeUnauthenticated

// Authenticator checks a bearer token's value (auth.Store).
type Authenticator interface {
	// Authenticate returns the token's record, or an error wrapping
	// auth.ErrUnauthenticated when the value is unknown, malformed or
	// revoked.
	Authenticate(ctx context.Context, value string) (auth.Token, error)
}

type tokenKey struct{}

// TokenFrom returns the token a request was authenticated with.
func TokenFrom(ctx context.Context) (auth.Token, bool) {
	t, ok := ctx.Value(tokenKey{}).(auth.Token)
	return t, ok
}

// WithToken returns ctx carrying t, for handlers that authenticate
// requests otherwise (the dashboard's session cookie).
func WithToken(ctx context.Context, t auth.Token) context.Context {
	return context.WithValue(ctx, tokenKey{}, t)
}

// ActingAs returns a copy of base acting for ctx's token: its name is the
// actor every event of the request records. Without a token (a bug: every
// acting route authenticates first) it returns an error.
func ActingAs(ctx context.Context, base *control.Control) (*control.Control, error) {
	t, ok := TokenFrom(ctx)
	if !ok {
		return nil, errors.New("no authenticated token on this request")
	}
	c := *base
	c.Actor = t.Actor()
	return &c, nil
}

// bearer returns the token value of r's Authorization header.
func bearer(r *http.Request) (string, bool) {
	scheme, value, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	value = strings.TrimSpace(value)
	return value, value != ""
}

// allow serves h to requests whose bearer token grants need on the
// route's {app} (or, without one, on every app): 401 without a valid
// token, 403 when its role or app glob falls short. Every refusal is
// logged with the token's name, the route and the reason, never the
// token's value.
func (a *api) allow(need auth.Permission, h http.HandlerFunc) http.HandlerFunc {
	return a.allowOn(need, func(r *http.Request) string { return r.PathValue("app") }, h)
}

// allowOn is allow for a route whose app appOf names ("" for every app).
func (a *api) allowOn(need auth.Permission, appOf func(*http.Request) string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		value, ok := bearer(r)
		if !ok {
			why := "send Authorization: Bearer <token> (revline tokens create)"
			a.refuse(w, r, "", http.StatusUnauthorized, why, why)
			return
		}
		ctx, cancel := requestContext(r, false)
		t, err := a.cfg.Tokens.Authenticate(ctx, value)
		cancel()
		if errors.Is(err, auth.ErrUnauthenticated) {
			// The log says why; the answer does not tell a caller whether
			// the token's name exists.
			a.refuse(w, r, auth.ClaimedName(value), http.StatusUnauthorized, err.Error(), "the token is not valid: unknown, revoked or mistyped (the server's log says which)")
			return
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		var forbidden *auth.ForbiddenError
		if err := t.Authorize(need, appOf(r)); errors.As(err, &forbidden) {
			a.refuse(w, r, t.Name, http.StatusForbidden, forbidden.Reason, forbidden.Reason)
			return
		}
		h(w, r.WithContext(WithToken(r.Context(), t)))
	}
}

// refuse answers 401 or 403 with detail and logs the refusal for the
// operator with its reason and the token's name (on a 401, the name the
// value claims, if any).
func (a *api) refuse(w http.ResponseWriter, r *http.Request, token string, status int, reason, detail string) {
	a.cfg.Logger.Warn("http request refused", "status", status, "token", token, "method", r.Method, "route", r.Pattern, "path", r.URL.Path, "remote", r.RemoteAddr, "reason", reason)
	code := codeForbidden
	if status == http.StatusUnauthorized {
		code = codeUnauthenticated
		w.Header().Set("WWW-Authenticate", `Bearer realm="revline"`)
	}
	a.writeProblem(w, r, newProblem(code, detail))
}
