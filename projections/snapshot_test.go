package projections_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revline/revline/events"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/projections"
)

// countingLog counts the messages the model reads from the log.
type countingLog struct {
	projections.ReplayLog
	read atomic.Int64
}

func (c *countingLog) Follow(ctx context.Context, from uint64, fn events.FollowFunc) error {
	return c.ReplayLog.Follow(ctx, from, func(env events.Envelope, decodeErr error) error {
		c.read.Add(1)
		return fn(env, decodeErr)
	})
}

// follow runs model on log until it has applied sequence head.
func follow(t *testing.T, ctx context.Context, log events.Follower, model *projections.RevisionHistory, head uint64) {
	t.Helper()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- projections.Run(runCtx, log, model) }()
	err := model.WaitFor(ctx, head)
	stop()
	<-done
	if err != nil {
		t.Fatal(err)
	}
}

// sameModel fails unless a and b answer every query the same way and
// encode the same snapshot.
func sameModel(t *testing.T, a, b *projections.RevisionHistory) {
	t.Helper()
	if !reflect.DeepEqual(a.Apps(), b.Apps()) {
		t.Fatalf("apps differ:\n%+v\n%+v", a.Apps(), b.Apps())
	}
	for _, app := range a.Apps() {
		for what, views := range map[string][2]any{
			"revisions": {a.Revisions(app.Name), b.Revisions(app.Name)},
			"runners":   {a.Runners(app.Name, true), b.Runners(app.Name, true)},
			"rollouts":  {a.Rollouts(app.Name), b.Rollouts(app.Name)},
		} {
			if !reflect.DeepEqual(views[0], views[1]) {
				t.Fatalf("app %s: %s differ:\n%+v\n%+v", app.Name, what, views[0], views[1])
			}
		}
	}
	da, ca, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	db, cb, err := b.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if ca != cb || !bytes.Equal(da, db) {
		t.Fatalf("snapshots differ: at %d (%d bytes) and %d (%d bytes)", ca, len(da), cb, len(db))
	}
}

// snapshotFixture returns a JetStream fixture and its read model store.
func snapshotFixture(t *testing.T) (context.Context, *fixture, *events.ReadModelStore) {
	t.Helper()
	ctx := testContext(t)
	f := jetStreamFixture(t, ctx)
	snaps, err := events.EnsureReadModelStore(ctx, f.js, 1)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, f, snaps
}

// A model restored from a snapshot of a random history, then fed the
// events after it, equals the model folded from the whole log, and reads
// only those events.
func TestARestoredSnapshotAndTheTailEqualAFoldOfTheWholeLog(t *testing.T) {
	t.Parallel()
	ctx, f, snaps := snapshotFixture(t)
	g := newGenerator(f, 7, 12)
	g.until(3000)
	live := projections.NewRevisionHistory()
	follow(t, ctx, f.store, live, f.head)
	data, checkpoint, err := live.Snapshot()
	if err != nil || checkpoint != f.head {
		t.Fatalf("snapshot at %d, %v; want at %d", checkpoint, err, f.head)
	}
	if err := snaps.Put(ctx, events.Snapshot{Schema: projections.SnapshotSchema, Sequence: checkpoint, Data: data}); err != nil {
		t.Fatal(err)
	}
	g.until(4000)

	log := &countingLog{ReplayLog: f.replayLog()}
	restored := projections.NewRevisionHistory()
	at, ignored, err := restored.RestoreFrom(ctx, snaps, log)
	if err != nil || at != checkpoint || ignored != "" {
		t.Fatalf("restored at %d (ignored: %q), %v; want at %d", at, ignored, err, checkpoint)
	}
	follow(t, ctx, log, restored, f.head)
	// The snapshot's own last event, read to check it, and the tail.
	if read, tail := log.read.Load(), int64(f.head-checkpoint); read > tail+1 {
		t.Errorf("read %d messages of the log; the tail after the snapshot is %d", read, tail)
	}
	full := projections.NewRevisionHistory()
	follow(t, ctx, f.store, full, f.head)
	sameModel(t, restored, full)

	if err := restored.Restore(data); !errors.Is(err, projections.ErrNotEmpty) {
		t.Errorf("restore into a model that applied events: %v; want ErrNotEmpty", err)
	}
}

// A snapshot that does not match the log, or of another schema, or that
// cannot be read, is ignored, with the reason, and the model left empty.
func TestASnapshotThatDoesNotMatchTheLogIsIgnored(t *testing.T) {
	t.Parallel()
	ctx, f, snaps := snapshotFixture(t)
	newGenerator(f, 11, 3).until(200)
	model := projections.NewRevisionHistory()
	follow(t, ctx, f.store, model, f.head)
	data, checkpoint, err := model.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// The same model, at a sequence where the log holds another event.
	other := projections.NewRevisionHistory()
	follow(t, ctx, f.store, other, f.head-1)
	otherData, otherAt, err := other.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for name, snap := range map[string]events.Snapshot{
		"another schema":        {Schema: projections.SnapshotSchema + 1, Sequence: checkpoint, Data: data},
		"past the log's end":    {Schema: projections.SnapshotSchema, Sequence: checkpoint + 5, Data: data},
		"another event there":   {Schema: projections.SnapshotSchema, Sequence: otherAt + 1, Data: otherData},
		"not a snapshot at all": {Schema: projections.SnapshotSchema, Sequence: checkpoint, Data: []byte("junk")},
	} {
		if err := snaps.Put(ctx, snap); err != nil {
			t.Fatal(err)
		}
		fresh := projections.NewRevisionHistory()
		at, ignored, err := fresh.RestoreFrom(ctx, snaps, f.replayLog())
		if err != nil || at != 0 || ignored == "" || fresh.Checkpoint() != 0 || len(fresh.Apps()) != 0 {
			t.Errorf("%s: restored at %d (ignored: %q), %v, checkpoint %d; want ignored, model empty", name, at, ignored, err, fresh.Checkpoint())
		}
	}
}

// KeepSnapshots writes a snapshot once the model has moved far enough,
// and a last one when it stops.
func TestKeepSnapshotsWritesAsTheModelMoves(t *testing.T) {
	t.Parallel()
	ctx, f, snaps := snapshotFixture(t)
	g := newGenerator(f, 3, 4)
	model := projections.NewRevisionHistory()
	keepCtx, stop := context.WithCancel(ctx)
	kept := make(chan struct{})
	go func() {
		projections.KeepSnapshots(keepCtx, model, snaps, 0, projections.SnapshotPolicy{Every: 100, Interval: 5 * time.Millisecond, MaxAge: time.Hour}, slog.New(slog.DiscardHandler))
		close(kept)
	}()
	g.until(150)
	follow(t, ctx, f.store, model, f.head)
	stored := func() uint64 {
		snap, found, err := snaps.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			return 0
		}
		return snap.Sequence
	}
	testsupport.Eventually(ctx, t, "a snapshot after 100 events", func() bool { return stored() >= 100 })
	g.until(170) // fewer than Every more: written only when it stops
	follow(t, ctx, f.store, model, f.head)
	stop()
	<-kept
	if got := stored(); got != f.head {
		t.Errorf("snapshot at %d after stopping; want the model's checkpoint %d", got, f.head)
	}
}
