package dashboard_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/revline/revline/events"
	"github.com/revline/revline/internal/testsupport"
)

// TestLiveUpdates keeps a versions page open while the CLI deploys: a
// slow deploy shows Deploying, then Deployed and Current; a failing one
// shows Failed with its reason; a suspend shows Suspended; the page is
// never reloaded.
func TestLiveUpdates(t *testing.T) {
	t.Parallel()
	s := serve(t)
	ctx := tab(t, s)
	rev1, _ := s.deploy("web", runnerBin, "--message", "first")

	do(t, ctx, "open the versions page", chromedp.Navigate(s.addrs.HTTPURL+"/ui/apps/web"))
	waitFor(t, ctx, "the page is live", `document.getElementById('conn').dataset.state === 'live'`)
	eval[bool](t, ctx, `window.notReloaded = true`)

	// The runner waits a moment before it starts: the revision is
	// Deploying meanwhile.
	slow, _ := s.deploy("web", "sleep 2; exec "+runnerBin, "--message", "slow start", "--no-wait")
	slowRow := fmt.Sprintf(`document.querySelector('#revisions tr[data-revision=%q]')`, slow)
	waitFor(t, ctx, "the new revision appears as Deploying", slowRow+`?.querySelector('.badge-deploying') != null`)
	waitFor(t, ctx, "it becomes Deployed and Current", slowRow+`?.querySelector('.badge-deployed') != null && `+slowRow+`.querySelector('.badge-current') != null`)

	code, stdout, stderr := s.revline("deploy", "web", "--command", "echo model weights not found >&2; exit 3", "--message", "broken")
	if code == 0 {
		t.Fatalf("a failing deploy exited 0: %s %s", stdout, stderr)
	}
	failed := lastEvent(t, s.history("web"), events.TypeRevisionFailed).Event.(events.RevisionFailed)
	failedRow := fmt.Sprintf(`document.querySelector('#revisions tr[data-revision=%q]')`, failed.RevisionID)
	waitFor(t, ctx, "the failed revision shows Failed with its reason", failedRow+`?.querySelector('.badge-failed') != null && `+
		failedRow+`.querySelector('.reason').textContent.includes('model weights not found')`)
	rows := eval[[]revisionRow](t, ctx, readRevisionRows)
	if r := row(t, rows, failed.RevisionID); r.Current || r.Rollback || !r.Delete {
		t.Errorf("failed revision shows %+v; want not current, no Rollback, Delete", r)
	}
	if r := row(t, rows, slow); !r.Current {
		t.Errorf("the failed deploy moved Current away from %s: %+v", slow, rows)
	}
	if r := row(t, rows, rev1); r.Current || !r.Rollback {
		t.Errorf("first revision shows %+v; want Rollback, not current", r)
	}
	// Suspended shows on the current revision, and nothing can be rolled
	// back to meanwhile.
	if code, stdout, stderr := s.revline("apps", "suspend", "web"); code != 0 {
		t.Fatalf("suspend: exit %d, %s %s", code, stdout, stderr)
	}
	waitFor(t, ctx, "the current revision shows Suspended", slowRow+`.querySelector('.badge-suspended') != null && !document.querySelector('button[data-action=rollback]')`)
	if !eval[bool](t, ctx, `window.notReloaded === true`) {
		t.Error("the page was reloaded")
	}

	// The apps page follows every app.
	do(t, ctx, "open the apps page", chromedp.Navigate(s.addrs.HTTPURL+"/"))
	waitFor(t, ctx, "the apps page is live", `document.getElementById('conn').dataset.state === 'live'`)
	s.deploy("api", runnerBin)
	waitFor(t, ctx, "a new app appears", `!!document.querySelector('#apps tr[data-app="api"] .badge-deployed')`)
	// The runner worker reported the deploy's end: the change is still
	// the deployer's.
	if by := eval[string](t, ctx, `document.querySelector('#apps tr[data-app="api"] td[data-label="Last change"] .actor')?.textContent ?? ''`); by != "token:alice" {
		t.Errorf("the apps page says api was last changed by %q; want alice, who deployed it", by)
	}
	if current := eval[string](t, ctx, `document.querySelector('#apps tr[data-app="web"] td[data-label="Current revision"]').textContent.trim()`); current != "v2 "+slow[:13] {
		t.Errorf("the apps page shows web's current revision as %q; want v2 and its short id", current)
	}
}

// TestRunnersAndRollout shows a request in flight on the runners page,
// then starts a graceful rollout from it and follows it until the runner
// is replaced.
func TestRunnersAndRollout(t *testing.T) {
	t.Parallel()
	s := serve(t)
	ctx := tab(t, s)
	s.deploy("web", runnerBin)

	do(t, ctx, "open the runners page", chromedp.Navigate(s.addrs.HTTPURL+"/ui/apps/web/runners"))
	waitFor(t, ctx, "a runner is up", `[...document.querySelectorAll('#runners tbody tr')].some(tr => ['idle', 'running'].includes(tr.querySelector('.state').textContent))`)
	first := eval[string](t, ctx, `document.querySelector('#runners tbody tr').dataset.runner`)
	if rev := eval[string](t, ctx, `document.querySelector('#runners tbody tr td[data-label=Revision] .rev').textContent`); rev != "v1" {
		t.Errorf("the runner's revision shows as %q; want v1", rev)
	}
	if uptime := eval[string](t, ctx, `document.querySelector('#runners time[data-rel=since]').title`); !strings.HasPrefix(uptime, "up since ") {
		t.Errorf("uptime hover text %q", uptime)
	}

	// A request in flight through the gateway shows on the runner: live
	// state the page asks for, not an event.
	release := s.holdRequest("web")
	waitFor(t, ctx, "the runner shows one request in flight", `[...document.querySelectorAll('#runners td[data-label="In flight"]')].some(td => td.textContent === '1')`)
	release()
	waitFor(t, ctx, "the request is over", `[...document.querySelectorAll('#runners td[data-label="In flight"]')].every(td => td.textContent === '0')`)

	click(t, ctx, `button[data-action=rollout][data-force=false]`)
	waitFor(t, ctx, "the rollout dialog opens", `document.getElementById('confirm').open`)
	click(t, ctx, "#confirm-ok")
	confirmed(t, ctx)
	waitFor(t, ctx, "the rollout completes", `document.querySelector('#rollout .badge')?.textContent === 'Completed'`)
	waitFor(t, ctx, "the runner was replaced", fmt.Sprintf(`!document.querySelector('#runners tr[data-runner=%q]') && document.querySelectorAll('#runners tbody tr').length > 0`, first))
	req := lastEvent(t, s.history("web"), events.TypeRolloutRequested)
	if req.Actor != "token:admin" || req.Event.(events.RolloutRequested).Force {
		t.Errorf("rollout requested as %+v by %q; want a graceful one by token:admin", req.Event, req.Actor)
	}
}

// TestRunnersOfADeletedRevision keeps a runner of v1 draining a request
// after a deploy of v2, then deletes v1: the runner still shows its
// revision's number, which the list of revisions no longer has.
func TestRunnersOfADeletedRevision(t *testing.T) {
	t.Parallel()
	s := serve(t)
	rev1, _ := s.deploy("web", runnerBin)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	// The gateway learns of the runner from the log, a moment after the
	// deploy's answer.
	testsupport.Eventually(ctx, t, "the gateway routes to v1's runner", func() bool {
		resp, err := http.Get(s.addrs.GatewayURL + "/apps/web/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	release := s.holdRequest("web")
	defer release()
	testsupport.Eventually(ctx, t, "the request is in flight on v1's runner", func() bool {
		_, stdout, _ := s.revline("apps", "runners", "web", "-o", "json")
		return strings.Contains(stdout, `"in_flight": 1`)
	})
	s.deploy("web", runnerBin, "--message", "second")
	if code, stdout, stderr := s.revline("apps", "delete-rev", "web", "v1"); code != 0 {
		t.Fatalf("delete v1: exit %d, %s %s", code, stdout, stderr)
	}

	req, _ := http.NewRequest(http.MethodGet, s.addrs.HTTPURL+"/ui/apps/web/runners", nil)
	req.AddCookie(s.session(s.token("vera", "viewer")))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("runners page: %d, %v", resp.StatusCode, err)
	}
	if want := fmt.Sprintf(`<span class="rev">v1</span> <code title="%s">`, rev1); !strings.Contains(string(page), want) {
		t.Errorf("the runners page does not name the draining runner's deleted revision as v1 (%s):\n%s", want, page)
	}
}

// TestCrossSitePostFails submits, from a page of another origin, a form
// to the dashboard's rollback action: the browser's post is refused and
// nothing changes.
func TestCrossSitePostFails(t *testing.T) {
	t.Parallel()
	s := serve(t)
	rev1, _ := s.deploy("web", runnerBin)
	s.deploy("web", runnerBin)
	before := countNotRunner(s.history("web"))

	// Without a browser: a form post, and a JSON post naming another
	// origin or site.
	target := s.addrs.HTTPURL + "/ui/apps/web/rollback"
	for name, req := range map[string]func() *http.Request{
		"form post": func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, target, strings.NewReader("revision="+rev1))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		},
		"JSON from another origin": func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(`{"revision":"`+rev1+`"}`))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Origin", "http://evil.example")
			return r
		},
		"JSON from another site": func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(`{"revision":"`+rev1+`"}`))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			return r
		},
	} {
		resp, err := http.DefaultClient.Do(req())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("%s: answered %d; want 403 or 415", name, resp.StatusCode)
		}
	}

	// With a browser: a page elsewhere posts the classic text/plain form
	// that smuggles a JSON body.
	ctx := tab(t, s)
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<form id="f" method="POST" action="%s" enctype="text/plain"><input name='{"revision":"%s","x":"' value='"}'></form><script>document.getElementById('f').submit()</script>`, target, rev1)
	}))
	defer evil.Close()
	do(t, ctx, "open the other site's page", chromedp.Navigate(evil.URL))
	waitFor(t, ctx, "the form's answer arrives", fmt.Sprintf(`location.href === %q`, target))
	body := eval[string](t, ctx, `document.body.textContent`)
	if !strings.Contains(body, "forbidden") && !strings.Contains(body, "unsupported_media_type") {
		t.Errorf("the cross-site form post was answered with %q; want a refusal", body)
	}
	if after := countNotRunner(s.history("web")); after != before {
		t.Errorf("the cross-site post changed the log: %d events, then %d", before, after)
	}
}

// TestLiveStreamResumes reads the live stream, drops it, and reconnects
// with the last event id seen, as a browser does: the stream resumes with
// the next event, including those appended while it was away.
func TestLiveStreamResumes(t *testing.T) {
	t.Parallel()
	s := serve(t)
	s.deploy("web", runnerBin)
	envs := s.history("web")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cookie := s.session(s.admin)
	ids := readStream(t, ctx, cookie, s.addrs.HTTPURL+"/ui/events?app=web&after=0", "", 2)
	if ids[0] != envs[0].Sequence || ids[1] != envs[1].Sequence {
		t.Fatalf("stream from the start delivered %v; the log starts %d, %d", ids, envs[0].Sequence, envs[1].Sequence)
	}
	// While no one listens, the app changes.
	s.deploy("web", runnerBin, "--message", "while away")
	envs = s.history("web")
	resumed := readStream(t, ctx, cookie, s.addrs.HTTPURL+"/ui/events?app=web&after=0", strconv.FormatUint(ids[1], 10), len(envs)-2)
	for i, id := range resumed {
		if id != envs[i+2].Sequence {
			t.Fatalf("resumed stream delivered %v; want the log's sequences after %d", resumed, ids[1])
		}
	}
}

// readStream reads n event ids from a live stream, in the session of
// cookie, sending lastID as Last-Event-ID when it is not "".
func readStream(t *testing.T, ctx context.Context, cookie *http.Cookie, url, lastID string, n int) []uint64 {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.AddCookie(cookie)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("live stream answered %d %s", resp.StatusCode, ct)
	}
	var ids []uint64
	lines := bufio.NewScanner(resp.Body)
	for len(ids) < n && lines.Scan() {
		if id, ok := strings.CutPrefix(lines.Text(), "id: "); ok {
			seq, err := strconv.ParseUint(id, 10, 64)
			if err != nil {
				t.Fatalf("event id %q", id)
			}
			ids = append(ids, seq)
		}
	}
	if len(ids) < n {
		t.Fatalf("live stream ended after %v (%v)", ids, lines.Err())
	}
	return ids
}
