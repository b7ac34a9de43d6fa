package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/revline/revline/cmd/revline/internal/server"
	"github.com/revline/revline/cmd/revline/internal/servertest"
)

// set-rev --wait returns once the runners have moved: the target's are
// ready and no runner of another revision is left.
func TestSetRevWaitsForTheRunnersToMove(t *testing.T) {
	t.Parallel()
	addrs := servertest.Serve(t, server.Config{})
	cli := asClient(t, addrs)
	cli("deploy", "web", "--command", runnerBin)
	cli("apps", "scale", "web", "--min-concurrency", "2")
	cli("deploy", "web", "--command", runnerBin+" v2")
	out := cli("apps", "set-rev", "web", "v1", "--wait")
	if !strings.Contains(out, "Runners moved: 2 of v1") {
		t.Fatalf("set-rev --wait: %s", out)
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
}

// postJSON sends an HTTP POST of body with the admin token and decodes the
// answer into out, failing unless the status is 200.
func postJSON(t *testing.T, addrs server.Addresses, path, body string, out any) {
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
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: status %d, %s", path, resp.StatusCode, data)
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
		postJSON(t, addrs, step.path, step.body, &res)
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
