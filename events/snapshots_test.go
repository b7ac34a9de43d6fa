package events_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/revline/revline/events"
	"github.com/revline/revline/events/embedded/embeddedtest"
)

// A snapshot is used only while the log still holds its last event; one
// ahead of the log, one its owner refuses, or one that cannot be read
// makes LoadApp return the whole history.
func TestLoadAppUsesOnlyASnapshotTheLogBacks(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, js := embeddedtest.Connect(t, embeddedtest.Start(t))
	store, err := events.NewJetStreamStore(ctx, events.JetStreamStoreConfig{JetStream: js})
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := events.EnsureSnapshotStore(ctx, js, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for i := range 5 {
		env := events.NewEnvelope("app", events.AppScaled{}, events.Metadata{CausationID: string(rune('a' + i)), Actor: "t"}, time.Now())
		res, err := store.Append(ctx, "app", last, []events.Envelope{env})
		if err != nil {
			t.Fatal(err)
		}
		last = res.LastSequence
	}
	accept := func(events.Snapshot) error { return nil }
	load := func(restore func(events.Snapshot) error) ([]events.Envelope, bool) {
		t.Helper()
		history, restored, err := snaps.LoadApp(ctx, store, "app", restore)
		if err != nil {
			t.Fatal(err)
		}
		return history, restored
	}

	if history, restored := load(accept); restored || len(history) != 5 {
		t.Errorf("without a snapshot: %d events, restored %v; want 5, false", len(history), restored)
	}
	put := func(seq uint64, data string) {
		t.Helper()
		if err := snaps.Put(ctx, events.AppSnapshotKey("app"), events.Snapshot{Schema: 1, Sequence: seq, Data: []byte(data)}); err != nil {
			t.Fatal(err)
		}
	}
	put(3, "state at 3")
	var got events.Snapshot
	history, restored := load(func(s events.Snapshot) error { got = s; return nil })
	if !restored || len(history) != 2 || history[0].Sequence != 4 || string(got.Data) != "state at 3" || got.Sequence != 3 {
		t.Errorf("from a snapshot at 3: %d events, restored %v, snapshot %+v; want 2 from 4, the snapshot", len(history), restored, got)
	}
	if history, restored := load(func(events.Snapshot) error { return errors.New("schema 1, this version reads 2") }); restored || len(history) != 5 {
		t.Errorf("a refused snapshot: %d events, restored %v; want 5, false", len(history), restored)
	}
	put(last+10, "from another log")
	if history, restored := load(accept); restored || len(history) != 5 {
		t.Errorf("a snapshot ahead of the log: %d events, restored %v; want 5, false", len(history), restored)
	}
	if _, err := js.Conn().Request("$KV."+events.SnapshotBucketName+"."+events.AppSnapshotKey("app"), []byte("not msgpack"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if history, restored := load(accept); restored || len(history) != 5 {
		t.Errorf("an unreadable snapshot: %d events, restored %v; want 5, false", len(history), restored)
	}
	var none *events.SnapshotStore
	if history, restored, err := none.LoadApp(ctx, store, "app", accept); err != nil || restored || len(history) != 5 {
		t.Errorf("no snapshot store: %d events, restored %v, %v; want 5, false", len(history), restored, err)
	}
}
