package dashboard_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/cmd/revline/internal/cli"
	"github.com/revline/revline/cmd/revline/internal/server"
	"github.com/revline/revline/cmd/revline/internal/servertest"
	"github.com/revline/revline/events"
	"github.com/revline/revline/workers/runner/runnertest"
)

var (
	runnerBin string
	// browser is the context of the one browser the tests share; each
	// test opens a tab in it. It is nil when no browser was found.
	browser context.Context
	// noBrowser says why browser is nil.
	noBrowser string
)

// browserPaths are where a Chromium or Chrome is looked for, after
// $REVLINE_CHROMIUM.
var browserPaths = []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "revline-dashboard-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if runnerBin, err = runnertest.BuildEchoRunner(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	stop, err := startBrowser(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	return m.Run()
}

// startBrowser starts the shared headless browser. Without one, browser
// tests skip, unless $CI is set: CI must run them.
func startBrowser(dir string) (func(), error) {
	path := os.Getenv("REVLINE_CHROMIUM")
	for _, p := range browserPaths {
		if path != "" {
			break
		}
		path, _ = exec.LookPath(p)
	}
	if path == "" {
		noBrowser = "no Chromium found (install the chromium package, or set REVLINE_CHROMIUM to a Chrome or Chromium binary)"
		if os.Getenv("CI") != "" {
			return nil, fmt.Errorf("dashboard tests: %s; CI is set, so the browser tests may not be skipped", noBrowser)
		}
		return func() {}, nil
	}
	profile, err := os.MkdirTemp(dir, "chromium-profile-")
	if err != nil {
		return nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.NoSandbox, // tests may run as root
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// The machine may have no network: nothing may reach for it.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 860),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		return nil, fmt.Errorf("dashboard tests: start %s: %w", path, err)
	}
	browser = ctx
	return func() { cancel(); cancelAlloc() }, nil
}

// stack is a running `revline serve` with real runners.
type stack struct {
	t     *testing.T
	addrs server.Addresses
	store *events.JetStreamStore
	// admin is the value of the bootstrap admin token.
	admin string
	// aliceFile holds the admin token alice, with which the CLI acts once
	// it is made.
	aliceFile string
}

// serve runs `revline serve` until the test ends.
func serve(t *testing.T) *stack {
	t.Helper()
	s := &stack{t: t, addrs: servertest.Serve(t, server.Config{})}
	admin, err := os.ReadFile(s.addrs.AdminTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	s.admin = strings.TrimSpace(string(admin))
	// The test reads the event log as a client does, as the admin token.
	asAdmin, err := events.NewSigner(auth.BootstrapName, s.admin).NATSOptions()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(s.addrs.NATSURL, asAdmin...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if s.store, err = events.OpenJetStreamStore(t.Context(), events.JetStreamStoreConfig{JetStream: js}); err != nil {
		t.Fatal(err)
	}
	alice := filepath.Join(t.TempDir(), "alice.token")
	if err := os.WriteFile(alice, []byte(s.token("alice", "admin")), 0o600); err != nil {
		t.Fatal(err)
	}
	s.aliceFile = alice
	return s
}

// revline runs the CLI against the stack, as the token alice (the
// bootstrap admin until it is made).
func (s *stack) revline(args ...string) (int, string, string) {
	s.t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args = append(args, "--nats-url", s.addrs.NATSURL, "--token-file", cmp.Or(s.aliceFile, s.addrs.AdminTokenFile))
	code := cli.Main(ctx, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// token makes a token with the CLI (more flags: --app) and returns its
// value.
func (s *stack) token(name, role string, flags ...string) string {
	s.t.Helper()
	code, stdout, stderr := s.revline(append([]string{"tokens", "create", name, "--role", role, "-o", "json"}, flags...)...)
	var res struct{ Value string }
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.Value == "" {
		s.t.Fatalf("tokens create %s: exit %d, stdout %q, stderr %q", name, code, stdout, stderr)
	}
	return res.Value
}

// session logs in with a token's value as the login page does, and
// returns the session cookie.
func (s *stack) session(value string) *http.Cookie {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.addrs.HTTPURL+"/ui/login", strings.NewReader(`{"token":"`+value+`"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "revline_session" && resp.StatusCode == http.StatusOK {
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Value == value {
				s.t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, and not the token", c)
			}
			return c
		}
	}
	s.t.Fatalf("login answered %d without a session cookie", resp.StatusCode)
	return nil
}

// deploy deploys a revision of app from the CLI and returns its id and
// status.
func (s *stack) deploy(app, command string, flags ...string) (string, string) {
	s.t.Helper()
	code, stdout, stderr := s.revline(append([]string{"deploy", app, "--command", command, "-o", "json"}, flags...)...)
	var res struct {
		RevisionID string `json:"revision_id"`
		Status     string `json:"status"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.RevisionID == "" {
		s.t.Fatalf("deploy %s: exit %d, stdout %q, stderr %q", app, code, stdout, stderr)
	}
	return res.RevisionID, res.Status
}

// history returns app's events, read from the event log.
func (s *stack) history(app string) []events.Envelope {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	envs, err := s.store.Load(ctx, app, 0)
	if err != nil {
		s.t.Fatal(err)
	}
	return envs
}

// holdRequest sends app a request through the gateway that its runner
// holds for two minutes; the function it returns ends the request.
func (s *stack) holdRequest(app string) (release func()) {
	ctx, cancel := context.WithCancel(s.t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.addrs.GatewayURL+"/apps/"+app+"/slow?ms=120000", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	return func() { cancel(); <-done }
}

// tab opens a browser tab for the test, logged in to s's dashboard as
// its admin, or skips the test when there is no browser (outside CI).
func tab(t *testing.T, s *stack) context.Context {
	t.Helper()
	ctx := loggedOutTab(t)
	logIn(t, ctx, s, "/ui/login", s.admin)
	return ctx
}

// loggedOutTab opens a browser tab with cookies of its own (each test's
// server has its own sessions), or skips the test when there is no
// browser (outside CI).
func loggedOutTab(t *testing.T) context.Context {
	t.Helper()
	if browser == nil {
		t.Skip("browser test skipped: " + noBrowser)
	}
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelTimeout)
	return ctx
}

// logIn opens path on s's dashboard, which must be or lead to the login
// page, pastes the token value there and waits to be sent on.
func logIn(t *testing.T, ctx context.Context, s *stack, path, value string) {
	t.Helper()
	do(t, ctx, "open "+path, chromedp.Navigate(s.addrs.HTTPURL+path))
	waitFor(t, ctx, "the login page shows", `!!document.getElementById('login-token')`)
	eval[bool](t, ctx, fmt.Sprintf(`(() => { document.getElementById('login-token').value = %q; document.getElementById('login-submit').click(); return true })()`, value))
	waitFor(t, ctx, "the login is done", `location.pathname !== '/ui/login' && document.readyState === 'complete'`)
}

// do runs browser actions, failing the test on an error.
func do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// pageState describes the page for a failure message.
const pageState = `JSON.stringify({
	url: location.href, live: document.getElementById('conn')?.dataset.state, focus: document.activeElement?.id || document.activeElement?.tagName,
	dialog: document.getElementById('confirm')?.open, confirmDisabled: document.getElementById('confirm-ok')?.disabled,
	dialogText: document.getElementById('confirm')?.textContent.replace(/\s+/g, ' ').slice(0, 300),
	main: document.getElementById('live')?.textContent.replace(/\s+/g, ' ').slice(0, 500),
})`

// waitFor waits until the JavaScript expression cond is true on the page.
// A navigation interrupts a poll (the page it ran in is gone): it polls
// again in the new page.
func waitFor(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	poll := func() error {
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second)))
		return err
	}
	err := poll()
	for err != nil && ctx.Err() == nil && (strings.Contains(err.Error(), "navigated or closed") || strings.Contains(err.Error(), "Cannot find context")) {
		err = poll()
	}
	if err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](pageState))
		t.Fatalf("waiting until %s (%s): %v\npage: %s", what, cond, err, state)
	}
}

// click focuses and clicks the element sel selects, as a keyboard user
// does, in one step: a live refresh may replace the element at any time.
func click(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	waitFor(t, ctx, sel+" is on the page", fmt.Sprintf(`!!document.querySelector(%q)`, sel))
	if !eval[bool](t, ctx, fmt.Sprintf(`(() => { const el = document.querySelector(%q); if (!el) return false; el.focus(); el.click(); return true })()`, sel)) {
		t.Fatalf("%s left the page before it was clicked", sel)
	}
}

// eval returns the value of a JavaScript expression on the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}
