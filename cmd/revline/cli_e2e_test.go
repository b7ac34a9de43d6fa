package main_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// rolloutJSON is the rollout shape of -o json.
type rolloutJSON struct {
	App       string `json:"app"`
	RolloutID string `json:"rollout_id"`
	Force     bool   `json:"force"`
	Status    string `json:"status"`
}

func decodeRollout(t *testing.T, r result) rolloutJSON {
	t.Helper()
	var ro rolloutJSON
	if err := json.Unmarshal([]byte(r.stdout), &ro); err != nil {
		t.Fatalf("not a rollout: %v in %q (exit %d, stderr %q)", err, r.stdout, r.code, r.stderr)
	}
	return ro
}

// `apps rollout-status` follows a rollout started by another client to its
// end: exit 0 once it completes, 1 once a newer rollout supersedes it or
// --timeout passes; without --watch it says where the rollout is.
func TestRolloutStatusFollowsARolloutStartedElsewhere(t *testing.T) {
	s := startServe(t, t.TempDir(), freePort(t), freePort(t))
	const app = "watched"
	r, v1 := deploy(t, s, app, "--min-concurrency", "1")
	if r.code != 0 || v1["status"] != "deployed" {
		t.Fatalf("deploy: exit %d %v %s", r.code, v1, r.stderr)
	}
	rev := v1["revision_id"].(string)
	s.waitRunners(t, app, rev, 1)

	if r := s.revline(t, "apps", "rollout-status", app); r.code != 1 || !strings.Contains(r.stderr, "has no rollout") {
		t.Fatalf("rollout-status before any rollout: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := s.revline(t, "apps", "rollout-status", app, "not-a-rollout-id"); r.code != 2 || !strings.Contains(r.stderr, "rollout id") {
		t.Fatalf("rollout-status of a malformed id: exit %d, stderr %q", r.code, r.stderr)
	}

	// A graceful rollout cannot end while a request is in flight: it stays
	// requested, and a watch bounded by --timeout fails.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	inflight := make(chan error, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.gatewayURL+"/apps/"+app+"/slow?ms=600000", nil)
		if err == nil {
			var resp *http.Response
			if resp, err = http.DefaultClient.Do(req); err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		inflight <- err
	}()
	s.waitInFlight(t, app, 1)
	first := decodeRollout(t, s.revline(t, "apps", "rollout", app, "--no-wait", "-o", "json"))
	if first.Status != "requested" || first.RolloutID == "" || first.App != app {
		t.Fatalf("rollout --no-wait: %+v", first)
	}
	if got := decodeRollout(t, s.revline(t, "apps", "rollout-status", app, "-o", "json")); got.RolloutID != first.RolloutID || got.Status != "requested" {
		t.Fatalf("rollout-status of the last rollout: %+v, want %s requested", got, first.RolloutID)
	}
	if r := s.revline(t, "apps", "rollout-status", app, first.RolloutID, "--watch", "--timeout", "2s"); r.code != 1 || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("watch past --timeout: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	// A watch of it ends when a force rollout, requested elsewhere,
	// supersedes it: exit 1, the rollout on stdout and no error line.
	watched := make(chan result, 1)
	go func() {
		watched <- s.revline(t, "apps", "rollout-status", app, first.RolloutID, "--watch", "-o", "json")
	}()
	forced := decodeRollout(t, s.revline(t, "apps", "rollout", app, "--force", "--no-wait", "-o", "json"))
	w := <-watched
	if got := decodeRollout(t, w); w.code != 1 || got.Status != "superseded" || got.RolloutID != first.RolloutID || w.stderr != "" {
		t.Fatalf("watch of a superseded rollout: exit %d, %+v, stderr %q", w.code, got, w.stderr)
	}
	// The drain ends with the request; then the force rollout runs and a
	// watch of it ends when it completes: exit 0.
	cancel()
	<-inflight
	if got := decodeRollout(t, s.revline(t, "apps", "rollout-status", app, forced.RolloutID, "--watch", "-o", "json")); got.Status != "completed" || !got.Force {
		t.Fatalf("watch of the force rollout: %+v, want completed", got)
	}
	if r := s.revline(t, "apps", "rollout-status", app, first.RolloutID); r.code != 1 || !strings.Contains(r.stdout, "superseded") || r.stderr != "" {
		t.Fatalf("rollout-status of a superseded rollout: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if got := decodeRollout(t, s.revline(t, "apps", "rollout-status", app, "-o", "json")); got.RolloutID != forced.RolloutID || got.Status != "completed" {
		t.Fatalf("rollout-status after the force rollout: %+v, want %s completed", got, forced.RolloutID)
	}

	// A rollout started with --no-wait, watched by another command to its
	// end: exit 0, and the table says so.
	third := decodeRollout(t, s.revline(t, "apps", "rollout", app, "--no-wait", "-o", "json"))
	if r := s.revline(t, "apps", "rollout-status", app, "--watch"); r.code != 0 || !strings.Contains(r.stdout, "rollout "+third.RolloutID+" of "+app+" complete") {
		t.Fatalf("watch of a graceful rollout: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// A failed deploy says why once: in the table's sentence on stdout (exit
// 1, no error line), or with -o json in the JSON and in one line on
// stderr.
func TestFailedDeployIsReportedOnce(t *testing.T) {
	s := startServe(t, t.TempDir(), freePort(t), freePort(t))
	r := s.revline(t, "deploy", "broken", "--command", "echo 'weights not found' >&2; exit 3")
	if r.code != 1 || strings.Count(r.stdout, "weights not found") != 1 || !strings.Contains(r.stdout, "failed") || r.stderr != "" {
		t.Fatalf("failed deploy: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = s.revline(t, "deploy", "broken", "--command", "echo 'weights not found' >&2; exit 3", "-o", "json")
	var got struct{ Status string }
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 1 || got.Status != "failed" || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "weights not found") {
		t.Fatalf("failed deploy -o json: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}
