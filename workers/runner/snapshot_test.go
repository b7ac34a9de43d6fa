package runner_test

import (
	"testing"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
)

// A worker's first load of an app starts from the app's snapshot: one
// that says (unlike the log) that the app keeps 3 runners makes a
// restarted worker start 3.
func TestRestartedWorkerLoadsAppsFromTheirSnapshots(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	log := s.follow(t, "snap")
	stop := s.startWorker(t)
	revision, _ := s.deploy(t, log, "snap", runnerCommand)
	stop()

	ctx := testContext(t)
	history, err := s.store.Load(ctx, "snap", 0)
	if err != nil {
		t.Fatal(err)
	}
	state := aggregates.Fold("snap", history)
	if state.Runtime.MinConcurrency != 0 {
		t.Fatalf("the log already keeps %d runners", state.Runtime.MinConcurrency)
	}
	state.Runtime.MinConcurrency = 3
	data, err := aggregates.EncodeSnapshot(aggregates.Snapshot{State: state})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.snapshots.Put(ctx, events.AppSnapshotKey("snap"), events.Snapshot{Schema: aggregates.SnapshotSchema, Sequence: state.Version, Data: data}); err != nil {
		t.Fatal(err)
	}

	s.startWorker(t)
	log.waitUntil(t, "three idle runners, as the snapshot says", exactlyIdle(3, revision))
}
