package runner

import (
	"log/slog"
	"testing"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/workers/process"
)

// A deleted app keeps no capacity: the revision a later deploy makes
// current starts from its own min_concurrency, not from the runners the
// app had (nor those it had when suspended) before its deletion.
func TestADeletedAppKeepsNoCapacityForItsNextDeploy(t *testing.T) {
	t.Parallel()
	a := newAppWorker("web", Config{Logger: slog.New(slog.DiscardHandler)})
	// Two processes the loop tracks (never started: only their count and
	// revision matter here).
	a.runners["r1"] = &runner{proc: &process.Process{}, revisionID: "v1"}
	a.runners["r2"] = &runner{proc: &process.Process{}, revisionID: "v1"}
	a.state = aggregates.App{Name: "web", Current: "v1", Suspended: true}
	a.keepCapacity()
	if !a.suspended || a.suspendedWith != 2 {
		t.Fatalf("suspended with %d runners (%v), want 2", a.suspendedWith, a.suspended)
	}

	a.state = aggregates.App{Name: "web", Deleted: true}
	a.keepCapacity()
	if a.floor != 0 {
		t.Errorf("floor of the deleted app = %d, want 0", a.floor)
	}
	delete(a.runners, "r1")
	delete(a.runners, "r2")
	a.state = aggregates.App{Name: "web", Current: "v2"}
	a.keepCapacity()
	if a.floor != 0 {
		t.Errorf("floor of the app deployed again = %d, want 0: the deleted app's capacity came back", a.floor)
	}
}
