package dashboard_test

import (
	"testing"
	"time"

	"github.com/revline/revline/cmd/revline/internal/dashboard"
	"github.com/revline/revline/events"
)

var testTime = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func TestSummary(t *testing.T) {
	t.Parallel()
	const a, b = "01a2182b-941d-7b65-80c4-d10c58d1eb10", "01a2182b-9a3e-7c1d-8f00-0a1b2c3d4e5f"
	numbers := map[string]int{a: 1, b: 2}
	for name, tc := range map[string]struct {
		event events.Event
		want  string
	}{
		"rollback keeps runtime parameters": {
			events.CurrentRevisionSet{From: b, To: a, Reason: "rollback", Message: "latency\nregression", Inherited: events.RuntimeParamNames},
			"Rolled back: switched from #2 (01a2182b-9a3e) to #1 (01a2182b-941d); runtime parameters kept: “latency regression”",
		},
		"first deploy": {
			events.CurrentRevisionSet{To: a, Reason: "deploy"},
			"Deployed: switched to #1 (01a2182b-941d) (first current revision)",
		},
		"failed deploy with its reason": {
			events.RevisionFailed{RevisionID: b, Reason: "runner exited with status 3"},
			"Revision #2 (01a2182b-9a3e) failed: runner exited with status 3",
		},
		"scale lists old and new values": {
			events.AppScaled{Before: events.RuntimeParams{KeepAlive: 60, MaxConcurrency: 10}, After: events.RuntimeParams{KeepAlive: 300, MaxConcurrency: 10}},
			"Scaled: keep_alive 60s → 300s",
		},
		"force rollout": {
			events.RolloutRequested{RolloutID: b, RevisionID: a, Force: true},
			"Force rollout 01a2182b-9a3e of revision #1 (01a2182b-941d) requested",
		},
		"unknown revision": {
			events.RevisionDeleted{RevisionID: "01a2ffff-0000-7000-8000-000000000000"},
			"Revision 01a2ffff-0000 deleted",
		},
	} {
		env := events.NewEnvelope("web", tc.event, events.Metadata{Actor: "alice"}, testTime)
		if got := dashboard.Summary(env, numbers); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", name, got, tc.want)
		}
	}
}
