package dashboard_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestLoginAndViewerRole opens a page without a session (the login page
// comes instead, and sends the user back once logged in), then, as a
// viewer, sees the versions page but gets 403 on Rollback; logging out
// ends the session.
func TestLoginAndViewerRole(t *testing.T) {
	t.Parallel()
	s := serve(t)
	rev1, _ := s.deploy("web", runnerBin, "--message", "first")
	s.deploy("web", runnerBin, "--message", "second")
	viewer := s.token("vera", "viewer")
	ctx := loggedOutTab(t)

	do(t, ctx, "open the versions page without a session", chromedp.Navigate(s.addrs.HTTPURL+"/ui/apps/web"))
	if path := eval[string](t, ctx, `location.pathname + location.search`); path != "/ui/login?next=%2Fui%2Fapps%2Fweb" {
		t.Fatalf("a page without a session shows %s; want the login page", path)
	}
	// A wrong token is refused on the page.
	eval[bool](t, ctx, `(() => { document.getElementById('login-token').value = 'rvl_vera_nope'; document.getElementById('login-submit').click(); return true })()`)
	waitFor(t, ctx, "the refusal shows", `!document.getElementById('login-error').hidden`)

	logIn(t, ctx, s, "/ui/apps/web", viewer)
	waitFor(t, ctx, "the versions page shows both revisions", `location.pathname === '/ui/apps/web' && document.querySelectorAll('#revisions tbody tr').length === 2`)

	before := len(s.history("web"))
	click(t, ctx, fmt.Sprintf(`button[data-action=rollback][data-revision=%q]`, rev1))
	waitFor(t, ctx, "the rollback dialog shows the parameters", `document.getElementById('confirm').open && !!document.querySelector('#preview-params')`)
	click(t, ctx, "#confirm-ok")
	waitFor(t, ctx, "the dialog shows the refusal", `!document.getElementById('confirm-error').hidden`)
	if msg := eval[string](t, ctx, `document.getElementById('confirm-error').textContent`); !strings.Contains(msg, "role viewer; this needs operator") {
		t.Errorf("Rollback as a viewer says %q; want the 403's reason", msg)
	}
	if after := len(s.history("web")); after != before {
		t.Errorf("a viewer's rollback changed the log: %d events, then %d", before, after)
	}

	click(t, ctx, "#confirm-cancel")
	click(t, ctx, "#logout")
	waitFor(t, ctx, "the login page follows", `location.pathname === '/ui/login'`)
	do(t, ctx, "open the apps page after logging out", chromedp.Navigate(s.addrs.HTTPURL+"/"))
	if path := eval[string](t, ctx, `location.pathname`); path != "/ui/login" {
		t.Errorf("after logging out, the apps page shows %s; want the login page", path)
	}
}
