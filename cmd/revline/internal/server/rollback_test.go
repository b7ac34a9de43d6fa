package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/cmd/revline/internal/server"
	"github.com/revline/revline/cmd/revline/internal/servertest"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/workers/runner/runnertest"
)

// cliResult is what one CLI run in the background answered.
type cliResult struct {
	code           int
	stdout, stderr string
}

// inBackground runs the CLI against addrs in a goroutine; its answer
// comes on the channel.
func inBackground(t *testing.T, addrs server.Addresses, args ...string) <-chan cliResult {
	done := make(chan cliResult, 1)
	go func() {
		code, stdout, stderr := revline(t, addrs.NATSURL, append(args, "--token-file", addrs.AdminTokenFile)...)
		done <- cliResult{code, stdout, stderr}
	}()
	return done
}

// await returns the background run's answer, failing the test if ctx
// ends first.
func await(ctx context.Context, t *testing.T, what string, done <-chan cliResult) cliResult {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-ctx.Done():
		t.Fatalf("%s did not return in time", what)
		return cliResult{}
	}
}

// revisionRow is a line of list-rev -o json.
type revisionRow struct {
	Number       int    `json:"number"`
	RevisionID   string `json:"revision_id"`
	Status       string `json:"status"`
	Current      bool   `json:"current"`
	RolledBackTo string `json:"rolled_back_to"`
}

// revisionsByNumber lists the app's revisions by number.
func revisionsByNumber(t *testing.T, cli func(...string) string, app string) map[int]revisionRow {
	t.Helper()
	var rows []revisionRow
	if err := json.Unmarshal([]byte(cli("apps", "list-rev", app, "-o", "json")), &rows); err != nil {
		t.Fatal(err)
	}
	out := map[int]revisionRow{}
	for _, r := range rows {
		out[r.Number] = r
	}
	return out
}

// runnerRow is a line of apps runners -o json.
type runnerRow struct {
	RunnerID   string `json:"runner_id"`
	RevisionID string `json:"revision_id"`
	State      string `json:"state"`
	Restarts   int    `json:"restarts"`
}

// runnerRows lists the app's live runners.
func runnerRows(t *testing.T, cli func(...string) string, app string) []runnerRow {
	t.Helper()
	var runners []runnerRow
	if err := json.Unmarshal([]byte(cli("apps", "runners", app, "-o", "json")), &runners); err != nil {
		t.Fatal(err)
	}
	return runners
}

// runnersOf lists the revision ids of the app's live runners.
func runnersOf(t *testing.T, cli func(...string) string, app string) []string {
	t.Helper()
	runners := runnerRows(t, cli, app)
	out := make([]string, len(runners))
	for i, r := range runners {
		out[i] = r.RevisionID
	}
	return out
}

// The outsider's sequence: v3 is deploying when the operator rolls back to
// v1 (set-rev --wait). The runners move at once, and set-rev --wait ends
// on v1's, while v3 still deploys. When v3 comes up it is deployed but not
// made current, its runner stops, and the audit log says what happened.
// Then a deploy waited for that a rollback overtakes ends with exit 1 and
// says so.
func TestARollbackDuringADeployWins(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addrs := servertest.Serve(t, server.Config{})
	cli := asClient(t, addrs)
	cli("deploy", "dd", "--command", runnerBin)
	cli("deploy", "dd", "--command", runnerBin+" v2")
	v3 := runnertest.NewGate(t)
	cli("deploy", "dd", "--command", v3.Command(runnerBin+" v3"), "--no-wait")

	out := cli("apps", "set-rev", "dd", "v1", "--wait")
	if !strings.Contains(out, "Runners moved: 1 of v1 (") {
		t.Fatalf("set-rev --wait: %s", out)
	}
	revs := revisionsByNumber(t, cli, "dd")
	if !revs[1].Current || revs[3].Status != "deploying" {
		t.Fatalf("after set-rev --wait: %+v, want v1 current and v3 still deploying", revs)
	}
	v3.Open(t)
	testsupport.Eventually(ctx, t, "v3 deployed and its runner gone", func() bool {
		return revisionsByNumber(t, cli, "dd")[3].Status == "deployed" && slices.Equal(runnersOf(t, cli, "dd"), []string{revs[1].RevisionID})
	})
	if revs := revisionsByNumber(t, cli, "dd"); !revs[1].Current || revs[3].Current || revs[3].RolledBackTo != revs[1].RevisionID {
		t.Fatalf("after v3 came up: %+v, want v1 current and v3 not, left behind for v1", revs)
	}
	if table := cli("apps", "list-rev", "dd"); !strings.Contains(table, "deployed, never live") {
		t.Fatalf("list-rev does not say v3 never went live:\n%s", table)
	}
	audit := cli("audit", "dd", "-o", "wide")
	if !strings.Contains(audit, "v3 is up; not made current: rolled back to v1 while it deployed") {
		t.Fatalf("audit does not say v3 was left behind:\n%s", audit)
	}
	if strings.Contains(audit, "deployed v3") {
		t.Fatalf("audit says v3 was made current:\n%s", audit)
	}
	if !strings.Contains(audit, "deployed, not current: rolled back to v1 while it deployed") {
		t.Fatalf("audit does not give why v3's runner stopped:\n%s", audit)
	}

	// A deploy waited for, overtaken by a rollback to v2.
	v4 := runnertest.NewGate(t)
	deploy := inBackground(t, addrs, "deploy", "dd", "--command", v4.Command(runnerBin+" v4"))
	testsupport.Eventually(ctx, t, "v4 is deploying", func() bool {
		return revisionsByNumber(t, cli, "dd")[4].Status == "deploying"
	})
	cli("apps", "set-rev", "dd", "v2")
	v4.Open(t)
	r := await(ctx, t, "deploy", deploy)
	if r.code != 1 || !strings.Contains(r.stdout, "is deployed, not current: the app was rolled back to v2 (") || r.stderr != "" {
		t.Fatalf("deploy overtaken by a rollback: exit %d, stdout %q, stderr %q; want exit 1 and the reason once", r.code, r.stdout, r.stderr)
	}
	if revs := revisionsByNumber(t, cli, "dd"); !revs[2].Current || revs[4].Status != "deployed" {
		t.Fatalf("after v4 came up: %+v, want v2 current and v4 deployed", revs)
	}
	// It can be made current later.
	cli("apps", "set-rev", "dd", "v4", "--wait")
	if revs := revisionsByNumber(t, cli, "dd"); !revs[4].Current {
		t.Fatalf("after set-rev v4: %+v, want v4 current", revs)
	}
}

// set-rev --wait ends with a clear error when another set-rev moves the
// app away from the revision it waits for, instead of waiting for the
// other revision's runners to go. v1's runners wait at a gate, so that
// the first wait cannot end before the second set-rev.
func TestSetRevWaitEndsWhenTheAppMovesAway(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addrs := servertest.Serve(t, server.Config{})
	cli := asClient(t, addrs)
	v1 := runnertest.NewGate(t)
	v1.Open(t)
	cli("deploy", "web", "--command", v1.Command(runnerBin))
	cli("deploy", "web", "--command", runnerBin+" v2")
	v1.Close(t)

	wait := inBackground(t, addrs, "apps", "set-rev", "web", "v1", "--wait")
	testsupport.Eventually(ctx, t, "the switch to v1 is recorded", func() bool {
		return revisionsByNumber(t, cli, "web")[1].Current
	})
	cli("apps", "set-rev", "web", "v2")
	r := await(ctx, t, "set-rev --wait", wait)
	if r.code != 1 || !strings.Contains(r.stderr, "no longer the current revision: v2 is current now") {
		t.Fatalf("set-rev --wait overtaken by another set-rev: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// A deploy's runner serves no request before its revision is current: a
// recreate rollback to v1 while v3 deploys leaves the app without a ready
// runner of its current revision for a while, and the requests of that
// while wait for v1's runner rather than go to v3's, which is listening
// but was rolled back from (found in review: the gateway's fallback to
// any revision took it).
func TestADeploysRunnerServesOnlyOnceCurrent(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addrs := servertest.Serve(t, server.Config{})
	cli := asClient(t, addrs)
	v1Gate := runnertest.NewGate(t)
	v1Gate.Open(t)
	cli("deploy", "web", "--command", v1Gate.Command(runnerBin+" v1"))
	v1Gate.Close(t) // v1's next runner waits
	cli("deploy", "web", "--command", runnerBin+" v2")
	v3Gate := runnertest.NewGate(t)
	cli("deploy", "web", "--command", v3Gate.Command(runnerBin+" v3"), "--no-wait")
	revs := revisionsByNumber(t, cli, "web")
	switched := inBackground(t, addrs, "apps", "set-rev", "web", "v1", "--strategy", "recreate", "--wait")
	testsupport.Eventually(ctx, t, "v2's runner gone and v1's starting", func() bool {
		return !slices.Contains(runnersOf(t, cli, "web"), revs[2].RevisionID)
	})
	v3Gate.Open(t)
	testsupport.Eventually(ctx, t, "v3's runner listening", func() bool {
		return slices.ContainsFunc(runnerRows(t, cli, "web"), func(r runnerRow) bool {
			return r.RevisionID == revs[3].RevisionID && r.State == "idle"
		})
	})
	answered := make(chan string, 1)
	go func() {
		resp, err := http.Get(addrs.GatewayURL + "/apps/web/")
		if err != nil {
			answered <- err.Error()
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		answered <- string(body)
	}()
	v1Gate.Open(t)
	if body := <-answered; !strings.Contains(body, "revision="+revs[1].RevisionID) {
		t.Fatalf("the request was answered by %q, want v1's runner (%s)", body, revs[1].RevisionID)
	}
	if r := await(ctx, t, "set-rev --wait", switched); r.code != 0 {
		t.Fatalf("set-rev --wait: exit %d, %s %s", r.code, r.stdout, r.stderr)
	}
}

// A deploy that someone else settles (an admin's fail_deploy on the bus)
// while its runner is still starting leaves no runner behind: the worker
// kills it and reports it terminated (found in review: the runner was
// kept, untracked, until serve restarted).
func TestADeploySettledElsewhereLeavesNoRunner(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	addrs := servertest.Serve(t, server.Config{})
	cli := asClient(t, addrs)
	cli("deploy", "web", "--command", runnerBin)
	gate := runnertest.NewGate(t)
	// A startup timeout longer than the test: only the worker's own
	// cleanup can take the runner away in time.
	cli("deploy", "web", "--command", gate.Command(runnerBin+" v2"), "--startup-timeout", "10m", "--no-wait")
	v2 := revisionsByNumber(t, cli, "web")[2].RevisionID
	testsupport.Eventually(ctx, t, "v2's runner starting", func() bool {
		return slices.Contains(runnersOf(t, cli, "web"), v2)
	})

	adminValue, err := os.ReadFile(addrs.AdminTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	client := commandbus.NewClient(clientConn(t, addrs), commandbus.WithSigner(events.NewSigner(auth.BootstrapName, strings.TrimSpace(string(adminValue)))))
	o, err := client.Execute(ctx, events.NewCommand("web", events.FailDeploy{RevisionID: v2, Reason: "given up by hand"}, events.Metadata{}))
	if err != nil || o.Status != events.OutcomeAccepted {
		t.Fatalf("fail_deploy: %+v, %v", o, err)
	}
	testsupport.Eventually(ctx, t, "v2's runner gone", func() bool {
		return !slices.Contains(runnersOf(t, cli, "web"), v2)
	})
	gate.Open(t) // a runner left behind would listen now
	if revs := revisionsByNumber(t, cli, "web"); revs[2].Status != "failed" || !revs[1].Current {
		t.Fatalf("after fail_deploy: %+v, want v2 failed and v1 current", revs)
	}
	if runners := runnersOf(t, cli, "web"); slices.Contains(runners, v2) {
		t.Fatalf("v2's runner is back: %v", runners)
	}
}
