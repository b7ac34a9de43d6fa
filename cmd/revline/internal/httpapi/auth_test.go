package httpapi_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/cmd/revline/internal/httpapi"
	"github.com/revline/revline/internal/testsupport"
)

func TestRoutesNeedATokenThatAllowsThem(t *testing.T) {
	t.Parallel()
	var logs testsupport.SyncBuffer
	s := newStack(t, func(c *httpapi.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	s.deployed(t, "web", nil)
	bearer := func(value string) []string { return []string{"Authorization", "Bearer " + value} }
	viewer := bearer(s.token(t, "vera", auth.RoleViewer, ""))
	operator := bearer(s.token(t, "otto", auth.RoleOperator, ""))
	deployer := bearer(s.token(t, "dora", auth.RoleDeployer, ""))
	webOnly := bearer(s.token(t, "wes", auth.RoleDeployer, "web*"))
	adminOfWeb := bearer(s.token(t, "ada", auth.RoleAdmin, "web*"))
	revokedValue := s.token(t, "rex", auth.RoleAdmin, "")
	if _, err := s.tokens.Revoke(testContext(t), "rex", "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	revoked := bearer(revokedValue)
	// The right secret's shape with a wrong value, and a value that is no
	// Revline token at all.
	forged := bearer(revokedValue[:len(revokedValue)-4] + "0000")
	junk := []string{"Authorization", "Basic dXNlcjpwYXNz"}
	none := []string{"Authorization", ""}

	noWait := map[string]any{"wait": false}
	for _, tc := range []struct {
		name         string
		method, path string
		body         any
		headers      []string
		status       int
	}{
		{"no token", "GET", "/v1/apps", nil, none, http.StatusUnauthorized},
		{"not a bearer token", "GET", "/v1/apps", nil, junk, http.StatusUnauthorized},
		{"wrong secret", "GET", "/v1/apps", nil, forged, http.StatusUnauthorized},
		{"revoked", "GET", "/v1/apps/web/revisions", nil, revoked, http.StatusUnauthorized},
		{"no token for the OpenAPI document", "GET", "/v1/openapi.yaml", nil, none, http.StatusUnauthorized},
		{"no token for a deploy", "POST", "/v1/apps/web/deploy", map[string]any{"command": "serve"}, none, http.StatusUnauthorized},
		{"viewer reads", "GET", "/v1/apps/web/revisions", nil, viewer, http.StatusOK},
		{"viewer reads the audit log", "GET", "/v1/audit", nil, viewer, http.StatusOK},
		{"viewer reads the OpenAPI document", "GET", "/v1/openapi.yaml", nil, viewer, http.StatusOK},
		{"viewer may not roll out", "POST", "/v1/apps/web/rollout", noWait, viewer, http.StatusForbidden},
		{"viewer may not scale", "POST", "/v1/apps/web/scale", map[string]any{"min_concurrency": 1}, viewer, http.StatusForbidden},
		{"viewer may not suspend", "POST", "/v1/apps/web/suspend", nil, viewer, http.StatusForbidden},
		{"viewer may not delete", "DELETE", "/v1/apps/web/revisions/v1", nil, viewer, http.StatusForbidden},
		{"viewer may not kill a runner", "POST", "/v1/apps/web/runners/r1/kill", nil, viewer, http.StatusForbidden},
		{"operator rolls out", "POST", "/v1/apps/web/rollout", noWait, operator, http.StatusAccepted},
		{"operator scales", "POST", "/v1/apps/web/scale", map[string]any{"min_concurrency": 1}, operator, http.StatusOK},
		{"operator may not delete an app", "DELETE", "/v1/apps/web", nil, operator, http.StatusForbidden},
		{"operator may not deploy", "POST", "/v1/apps/web/deploy", map[string]any{"command": "serve"}, operator, http.StatusForbidden},
		{"deployer deploys", "POST", "/v1/apps/web/deploy", map[string]any{"command": "serve"}, deployer, http.StatusAccepted},
		{"app glob: its app", "POST", "/v1/apps/web-2/deploy", map[string]any{"command": "serve"}, webOnly, http.StatusAccepted},
		{"app glob: another app", "POST", "/v1/apps/api/deploy", map[string]any{"command": "serve"}, webOnly, http.StatusForbidden},
		{"app glob: reading another app", "GET", "/v1/apps/api/revisions", nil, webOnly, http.StatusForbidden},
		{"app glob: a list across apps", "GET", "/v1/apps", nil, webOnly, http.StatusForbidden},
		{"app glob: the whole audit log", "GET", "/v1/audit", nil, webOnly, http.StatusForbidden},
		{"app glob: the audit log of its app", "GET", "/v1/audit?app=web", nil, webOnly, http.StatusOK},
		{"app glob: the audit log of another app", "GET", "/v1/audit?app=api", nil, webOnly, http.StatusForbidden},
		{"deployer may not replay", "POST", "/v1/replay", nil, deployer, http.StatusForbidden},
		{"app glob: an admin of some apps may not replay", "POST", "/v1/replay", nil, adminOfWeb, http.StatusForbidden},
		{"health without a token", "GET", "/healthz", nil, none, http.StatusOK},
		{"metrics without a token", "GET", "/metrics", nil, none, http.StatusOK},
	} {
		r := s.do(t, tc.method, tc.path, tc.body, tc.headers...)
		if r.status != tc.status {
			t.Errorf("%s: %s %s answered %d, want %d: %s", tc.name, tc.method, tc.path, r.status, tc.status, r.body)
			continue
		}
		switch tc.status {
		case http.StatusUnauthorized:
			problem(t, r, tc.status, "unauthenticated")
			if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("%s: WWW-Authenticate = %q", tc.name, got)
			}
		case http.StatusForbidden:
			problem(t, r, tc.status, "forbidden")
		}
	}

	// A 401 does not tell whether a token's name exists: a wrong secret
	// and an unknown name get the same answer.
	unknown := bearer(strings.Replace(revokedValue, "rvl_rex_", "rvl_nobody_", 1))
	wrong := problem(t, s.do(t, "GET", "/v1/apps", nil, forged...), http.StatusUnauthorized, "unauthenticated")
	if other := problem(t, s.do(t, "GET", "/v1/apps", nil, unknown...), http.StatusUnauthorized, "unauthenticated"); other.Detail != wrong.Detail || strings.Contains(wrong.Detail, "rex") {
		t.Errorf("401 details tell names apart: %q (wrong secret) vs %q (unknown name)", wrong.Detail, other.Detail)
	}

	// Refusals are logged with the token's name, the route and why;
	// no token's value is.
	log := logs.String()
	for _, want := range []string{
		`token=vera method=POST route="POST /v1/apps/{app}/rollout"`,
		`token=otto method=POST route="POST /v1/apps/{app}/deploy"`,
		"token=wes", "needs deployer", `token=rex method=GET route="GET /v1/apps/{app}/revisions"`, "token rex was revoked", "wrong secret for token rex",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log does not say %q:\n%s", want, log)
		}
	}
	for _, h := range [][]string{viewer, operator, deployer, webOnly, revoked, forged} {
		secret := strings.TrimPrefix(h[1], "Bearer ")
		if strings.Contains(log, secret[len(secret)-64:]) {
			t.Errorf("a token's secret is in the log:\n%s", log)
		}
	}
}

func TestRevocationCountsFromTheNextRequest(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	value := s.token(t, "carl", auth.RoleViewer, "")
	header := []string{"Authorization", "Bearer " + value}
	ok[[]any](t, s.do(t, "GET", "/v1/apps", nil, header...), http.StatusOK)
	if _, err := s.tokens.Revoke(testContext(t), "carl", "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	problem(t, s.do(t, "GET", "/v1/apps", nil, header...), http.StatusUnauthorized, "unauthenticated")
}
