package dashboard_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/revline/revline/events"
)

// post sends a dashboard action as its script does, in the session of
// cookie (none if nil), and returns the status and the answer's message
// or error.
func post(t *testing.T, url string, cookie *http.Cookie, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	// A claimed actor changes nothing: the session's token is the actor.
	req.Header.Set("X-Revline-Actor", "mallory")
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer struct{ Message, Error string }
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		t.Fatalf("POST %s answered %d without JSON: %v", url, resp.StatusCode, err)
	}
	return resp.StatusCode, answer.Message + answer.Error
}

// TestActionsWithoutABrowser checks the actions' answers and actors, and
// the rollback preview's refusal, over plain HTTP.
func TestActionsWithoutABrowser(t *testing.T) {
	t.Parallel()
	s := serve(t)
	rev1, _ := s.deploy("web", runnerBin)
	base := s.addrs.HTTPURL + "/ui/apps/web"
	bob := s.session(s.token("bob", "operator"))
	viewer := s.session(s.token("vera", "viewer"))
	other := s.session(s.token("olga", "operator"))
	if code, _ := post(t, base+"/rollout", nil, `{}`); code != http.StatusUnauthorized {
		t.Fatalf("rollout without a session answered %d, want 401", code)
	}

	if code, msg := post(t, base+"/rollout", bob, `{"force": true}`); code != http.StatusOK || !strings.Contains(msg, "Force rollout") {
		t.Fatalf("rollout answered %d %q", code, msg)
	}
	if req := lastEvent(t, s.history("web"), events.TypeRolloutRequested); req.Actor != "token:bob" || !req.Event.(events.RolloutRequested).Force {
		t.Errorf("rollout recorded %+v by %q; want a force rollout by token:bob", req.Event, req.Actor)
	}
	// Revoked, olga's session ends at its next request.
	if code, _, stderr := s.revline("tokens", "revoke", "olga"); code != 0 {
		t.Fatalf("tokens revoke: exit %d: %s", code, stderr)
	}

	for name, tc := range map[string]struct {
		path   string
		cookie *http.Cookie
		body   string
		status int
		says   string
	}{
		"viewer may not roll out": {"web/rollout", viewer, `{}`, http.StatusForbidden, "needs operator"},
		"revoked token":           {"web/rollout", other, `{}`, http.StatusUnauthorized, "log in again"},
		"unknown field":           {"web/rollout", bob, `{"forse": true}`, http.StatusBadRequest, "forse"},
		"rollback to nothing":     {"web/rollback", bob, `{}`, http.StatusBadRequest, "needs a revision"},
		"unknown revision":        {"web/delete-revision", bob, `{"revision": "01a2ffff-0000-7000-8000-000000000000"}`, http.StatusNotFound, "01a2ffff"},
		"current revision":        {"web/delete-revision", bob, `{"revision": "` + rev1 + `"}`, http.StatusConflict, "current revision"},
		"rollback to current":     {"web/rollback", bob, `{"revision": "` + rev1 + `"}`, http.StatusOK, "already the current revision"},
		"app with a bad name":     {"BAD/rollout", bob, `{}`, http.StatusBadRequest, "app"},
		"app that is not there":   {"nope/rollout", bob, `{}`, http.StatusConflict, "no current revision"},
	} {
		if code, msg := post(t, s.addrs.HTTPURL+"/ui/apps/"+tc.path, tc.cookie, tc.body); code != tc.status || !strings.Contains(msg, tc.says) {
			t.Errorf("%s: answered %d %q; want %d saying %q", name, code, msg, tc.status, tc.says)
		}
	}

	req, _ := http.NewRequest(http.MethodGet, base+"/rollback-preview?revision="+rev1, nil)
	req.AddCookie(viewer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `id="preview-refusal"`) || !strings.Contains(string(page), "already the current revision") {
		t.Errorf("preview of a rollback to the current revision: %d %s", resp.StatusCode, page)
	}
}

// TestTokenForSomeApps logs in with a token limited to web*: the apps
// page lists those apps only, and another app's page and live stream are
// refused.
func TestTokenForSomeApps(t *testing.T) {
	t.Parallel()
	s := serve(t)
	s.deploy("web-1", runnerBin)
	s.deploy("api", runnerBin)
	cookie := s.session(s.token("webby", "viewer", "--app", "web*"))
	get := func(path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, s.addrs.HTTPURL+path, nil)
		req.AddCookie(cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, page := get("/"); code != http.StatusOK || !strings.Contains(page, `href="/ui/apps/web-1"`) || strings.Contains(page, `href="/ui/apps/api"`) {
		t.Errorf("apps page: %d; want web-1 listed and api not:\n%s", code, page)
	}
	if code, _ := get("/ui/apps/web-1/history"); code != http.StatusOK {
		t.Errorf("web-1's history: %d, want 200", code)
	}
	for _, path := range []string{"/ui/apps/api", "/ui/events?app=api"} {
		if code, page := get(path); code != http.StatusForbidden || !strings.Contains(page, `matching`) {
			t.Errorf("%s: %d, want 403:\n%.300s", path, code, page)
		}
	}
}

// A rollout whose replacements fail shows on the runners page as failed,
// with what it did and why, not as superseded.
func TestAFailedRolloutShowsAsFailed(t *testing.T) {
	t.Parallel()
	s := serve(t)
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	flag := filepath.Join(dir, "ok")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s.deploy("web", "test -e '"+flag+"' && exec "+runnerBin)
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := s.revline("apps", "rollout", "web"); code != 1 || !strings.Contains(stdout, "failed") {
		t.Fatalf("rollout of runners that cannot start: exit %d, stdout %q, stderr %q; want exit 1, failed", code, stdout, stderr)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.addrs.HTTPURL+"/ui/apps/web/runners", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(s.session(s.admin))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<span class="badge badge-failed">Failed</span>`, "replaced 0 runner(s); failed: 3 replacement runners in a row did not start"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the runners page lacks %q:\n%s", want, page)
		}
	}
}
