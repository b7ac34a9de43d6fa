package audit_test

import (
	"testing"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections/audit"
)

// Summaries of single events against a known state, for what the standard
// history does not show.
func TestSummaryOfOneEvent(t *testing.T) {
	t.Parallel()
	before := aggregates.Fold("web", []events.Envelope{
		events.NewEnvelope("web", events.RevisionCreated{RevisionID: rev1, Number: 1, Command: "run $PORT"}, events.Metadata{Actor: "alice"}, t0),
		events.NewEnvelope("web", events.RevisionDeployed{RevisionID: rev1}, events.Metadata{Actor: "worker:runner"}, t0),
		events.NewEnvelope("web", events.CurrentRevisionSet{To: rev1, Reason: "deploy"}, events.Metadata{Actor: "worker:runner"}, t0),
		events.NewEnvelope("web", events.RevisionCreated{RevisionID: rev2, Number: 2, Command: "run $PORT"}, events.Metadata{Actor: "alice"}, t0),
		events.NewEnvelope("web", events.RevisionCreated{RevisionID: rev3, Number: 3, Command: "run $PORT"}, events.Metadata{Actor: "alice"}, t0),
	})
	for name, tc := range map[string]struct {
		event events.Event
		want  string
	}{
		"a revision the state does not know is named by its short id": {
			events.RevisionDeleted{RevisionID: revX},
			"deleted 01a20000",
		},
		"a message over several lines stays on one line, quoted": {
			events.CurrentRevisionSet{From: rev1, To: rev1, Reason: "rollback", Message: "latency\nregression"},
			`rolled back to v1 (runtime params reset from the deploy): "latency\nregression"`,
		},
		"a deploy that a rollback overtook says it did not become current": {
			events.RevisionDeployed{RevisionID: rev3, RolledBackTo: rev1},
			"v3 is up; not made current: rolled back to v1 while it deployed",
		},
		"and says so of a roll-forward too": {
			events.RevisionDeployed{RevisionID: rev2, RolledBackTo: rev3},
			"v2 is up; not made current: rolled forward to v3 while it deployed",
		},
		"a deploy made current is simply up": {
			events.RevisionDeployed{RevisionID: rev3},
			"v3 is up",
		},
	} {
		env := events.NewEnvelope("web", tc.event, events.Metadata{Actor: "alice"}, t0)
		if got := audit.Summary(before, env); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", name, got, tc.want)
		}
	}
}
