package server_test

import (
	"encoding/json"
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
