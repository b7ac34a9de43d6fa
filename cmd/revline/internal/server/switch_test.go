package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/revline/revline/cmd/revline/internal/cli"
	"github.com/revline/revline/cmd/revline/internal/server"
	"github.com/revline/revline/cmd/revline/internal/servertest"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/workers/runner/runnertest"
)

// set-rev returns once the runners have moved: the target's are ready
// and no runner of another revision is left. --wait, from before waiting
// was the default, is still accepted.
func TestSetRevWaitsForTheRunnersToMove(t *testing.T) {
	t.Parallel()
	addrs := servertest.Serve(t, server.Config{})
	cli := asClient(t, addrs)
	cli("deploy", "web", "--command", runnerBin)
	cli("apps", "scale", "web", "--min-concurrency", "2")
	cli("deploy", "web", "--command", runnerBin+" v2")
	out := cli("apps", "set-rev", "web", "v1")
	if !strings.Contains(out, "Runners moved: 2 of v1") {
		t.Fatalf("set-rev: %s", out)
	}
	var runners []struct {
		RevisionID string `json:"revision_id"`
		State      string `json:"state"`
	}
	if err := json.Unmarshal([]byte(cli("apps", "runners", "web", "-o", "json")), &runners); err != nil {
		t.Fatal(err)
	}
	var revs []struct {
		Number     int    `json:"number"`
		RevisionID string `json:"revision_id"`
	}
	if err := json.Unmarshal([]byte(cli("apps", "list-rev", "web", "-o", "json")), &revs); err != nil {
		t.Fatal(err)
	}
	v1 := revs[len(revs)-1].RevisionID
	if len(runners) != 2 {
		t.Fatalf("after set-rev --wait: %+v, want 2 runners of v1", runners)
	}
	for _, r := range runners {
		if r.RevisionID != v1 || (r.State != "idle" && r.State != "running") {
			t.Fatalf("after set-rev --wait: %+v, want only ready runners of v1 (%s)", runners, v1)
		}
	}
	if out := cli("apps", "set-rev", "web", "v2", "--wait"); !strings.Contains(out, "Runners moved: 2 of v2") {
		t.Fatalf("set-rev --wait: %s", out)
	}
	if out := cli("apps", "set-rev", "web", "v1", "--no-wait"); strings.Contains(out, "Runners moved") {
		t.Fatalf("set-rev --no-wait waited: %s", out)
	}
}

// breakableCommand is a runner command that starts until the test calls
// the function returned; from then on it exits with status 3 before it
// listens, saying 'model weights missing'. (The flag file it tests for is
// where runners, which run as an unprivileged user when the tests run as
// root, can see it.)
func breakableCommand(t *testing.T) (string, func()) {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	broken := filepath.Join(dir, "broken")
	command := "if [ -e " + broken + " ]; then echo 'model weights missing' >&2; exit 3; fi; exec " + runnerBin
	return command, func() {
		if err := os.WriteFile(broken, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// A change whose runners cannot start (their command exits before it
// listens) ends its wait, the default, with exit 1 and one line saying
// what the last runner did once they have failed control.FailureLimit
// times, instead of waiting out --timeout: the test's context (2 minutes)
// ends long before --timeout (10 minutes), so only an early end passes.
// A rollout's wait ends with the rollout, which the runner worker reports
// failed after as many failed replacements.
func TestACrashLoopEndsTheDefaultWait(t *testing.T) {
	t.Parallel()
	for name, change := range map[string][]string{
		"scale":   {"apps", "scale", "web", "--min-concurrency", "2"},
		"rollout": {"apps", "rollout", "web"},
		"set-rev": {"apps", "set-rev", "web", "v1"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			addrs := servertest.Serve(t, server.Config{})
			cli := asClient(t, addrs)
			command, breakIt := breakableCommand(t)
			cli("deploy", "web", "--command", command)
			if name == "set-rev" {
				cli("deploy", "web", "--command", runnerBin+" v2")
			}
			breakIt()
			r := await(ctx, t, name, inBackground(t, addrs, append(change, "--timeout", "10m")...))
			if name == "rollout" {
				// The rollout ends itself, failed (as a failed deploy
				// does: on stdout, exit 1), the old runner still serving.
				if r.code != 1 || r.stderr != "" {
					t.Fatalf("rollout of a crash loop: exit %d, stdout %q, stderr %q; want exit 1 and the failure on stdout", r.code, r.stdout, r.stderr)
				}
				for _, want := range []string{"Graceful rollout ", " of web failed: 3 replacement runners in a row did not start; the last: runner exited with status 3", "model weights missing", "0 runner(s) replaced", "It stopped none of the runners it did not replace"} {
					if !strings.Contains(r.stdout, want) {
						t.Errorf("rollout of a crash loop: stdout %q lacks %q", r.stdout, want)
					}
				}
				return
			}
			if r.code != 1 || strings.Count(r.stderr, "\n") != 1 {
				t.Fatalf("%s of a crash loop: exit %d, stdout %q, stderr %q; want exit 1 and one line", name, r.code, r.stdout, r.stderr)
			}
			for _, want := range []string{"the runners of web keep failing (3 times since the change)", " of v1, did not start: runner exited with status 3", "model weights missing", "(its output: revline runners logs web "} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("%s of a crash loop: stderr %q lacks %q", name, r.stderr, want)
				}
			}
		})
	}
}

// While a change waits, stderr on a terminal gets what it waits for and
// each runner's step; on a pipe it gets nothing (the crash-loop test
// above checks that stderr is its one error line).
func TestAWaitShowsTheRunnersStepsOnATerminal(t *testing.T) {
	t.Parallel()
	addrs := servertest.Serve(t, server.Config{})
	asClient(t, addrs)("deploy", "web", "--command", runnerBin)
	terminal, written := testsupport.Terminal(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout strings.Builder
	code := cli.Main(ctx, []string{"apps", "scale", "web", "--min-concurrency", "2", "--nats-url", addrs.NATSURL, "--token-file", addrs.AdminTokenFile}, &stdout, terminal)
	progress := written()
	if code != 0 || !strings.Contains(stdout.String(), "Runners settled: 2 ready.") || strings.Contains(stdout.String(), "…") {
		t.Fatalf("scale: exit %d, stdout %q, stderr %q", code, stdout.String(), progress)
	}
	for _, want := range []string{"… waiting for the runners of web to settle\n", ": starting (", ": ready\n"} {
		if !strings.Contains(progress, want) {
			t.Errorf("scale's progress on a terminal lacks %q:\n%s", want, progress)
		}
	}
}

// Over HTTP, a scale that waits ("wait": true) for runners that cannot
// start ends early too, in 422 runners_failing; without "wait", the
// default, it answers at once as before.
func TestACrashLoopEndsAnHTTPWait(t *testing.T) {
	t.Parallel()
	addrs := servertest.Serve(t, server.Config{})
	command, breakIt := breakableCommand(t)
	asClient(t, addrs)("deploy", "web", "--command", command)
	breakIt()
	var p struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}
	postJSON(t, addrs, "/v1/apps/web/scale", `{"min_concurrency": 2, "wait": true}`, http.StatusUnprocessableEntity, &p)
	if p.Code != "runners_failing" || !strings.Contains(p.Detail, "did not start: runner exited with status 3") {
		t.Fatalf("scale with wait of a crash loop: %+v, want runners_failing saying what the runner did", p)
	}
	var res struct {
		Status       string `json:"status"`
		ReadyRunners *int   `json:"ready_runners"`
	}
	postJSON(t, addrs, "/v1/apps/web/scale", `{"min_concurrency": 3}`, http.StatusOK, &res)
	if res.Status != "accepted" || res.ReadyRunners != nil {
		t.Fatalf("scale without wait: %+v, want accepted at once, without ready_runners", res)
	}
}

// scale --no-wait returns once the change is recorded, as scale did
// before waiting became the default: here, while its runners are still
// starting (they wait at a gate).
func TestScaleNoWaitReturnsAtOnce(t *testing.T) {
	t.Parallel()
	addrs := servertest.Serve(t, server.Config{})
	cli := asClient(t, addrs)
	gate := runnertest.NewGate(t)
	gate.Open(t)
	cli("deploy", "web", "--command", gate.Command(runnerBin))
	gate.Close(t)
	if out := cli("apps", "scale", "web", "--min-concurrency", "3", "--no-wait"); !strings.HasPrefix(out, "Scaled web.") || strings.Contains(out, "settled") {
		t.Fatalf("scale --no-wait: %s", out)
	}
}

// postJSON sends an HTTP POST of body with the admin token and decodes the
// answer into out, failing unless the status is want.
func postJSON(t *testing.T, addrs server.Addresses, path, body string, want int, out any) {
	t.Helper()
	token, err := os.ReadFile(addrs.AdminTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, addrs.HTTPURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("POST %s: status %d, %s; want %d", path, resp.StatusCode, data, want)
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("POST %s: %v in %s", path, err, data)
	}
}

// A scale, suspend or resume with "wait" answers once the runners have
// settled on it: as many serve as min_concurrency asks, or none.
func TestScaleSuspendResumeWaitForTheRunners(t *testing.T) {
	t.Parallel()
	addrs := servertest.Serve(t, server.Config{})
	cli := asClient(t, addrs)
	cli("deploy", "web", "--command", runnerBin)

	liveRunners := func() int {
		runners := runnerRows(t, cli, "web")
		ready := 0
		for _, r := range runners {
			if r.State != "idle" && r.State != "running" {
				t.Fatalf("after a wait: runners %+v, want every one ready", runners)
			}
			ready++
		}
		return ready
	}
	var res struct {
		Status       string `json:"status"`
		ReadyRunners *int   `json:"ready_runners"`
	}
	for _, step := range []struct {
		path, body string
		ready      int
	}{
		{"/v1/apps/web/scale", `{"min_concurrency": 3, "wait": true}`, 3},
		{"/v1/apps/web/suspend", `{"wait": true}`, 0},
		{"/v1/apps/web/resume", `{"wait": true}`, 3},
		{"/v1/apps/web/scale", `{"min_concurrency": 1, "wait": true}`, 1},
	} {
		res.ReadyRunners = nil
		postJSON(t, addrs, step.path, step.body, http.StatusOK, &res)
		if res.ReadyRunners == nil || *res.ReadyRunners < step.ready {
			t.Fatalf("%s %s: %+v, want ready_runners %d", step.path, step.body, res, step.ready)
		}
		if step.ready == 0 && *res.ReadyRunners != 0 {
			t.Fatalf("%s: %d runners ready, want none", step.path, *res.ReadyRunners)
		}
		if n := liveRunners(); n < step.ready || (step.ready == 0 && n != 0) {
			t.Fatalf("after %s %s: %d runners, want %d", step.path, step.body, n, step.ready)
		}
	}
}
