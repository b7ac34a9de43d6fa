package events_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/embedded/embeddedtest"
)

// The read model store keeps one snapshot: a Put deletes the chunks a
// crashed Put left behind, and the newest snapshot reads back whole.
func TestReadModelStoreKeepsOneSnapshot(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, js := embeddedtest.Connect(t, embeddedtest.Start(t))
	store, err := events.EnsureReadModelStore(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, found, err := store.Get(ctx); found || err != nil {
		t.Fatalf("an empty store: found %v, %v", found, err)
	}
	// What a Put killed halfway leaves: chunks no object names.
	chunks := "$O." + events.ReadModelBucketName + ".C."
	for range 3 {
		if _, err := js.Publish(ctx, chunks+"crashedput", bytes.Repeat([]byte{'x'}, 64<<10)); err != nil {
			t.Fatal(err)
		}
	}
	data := bytes.Repeat([]byte("model "), 100_000) // several chunks
	for seq := uint64(1); seq <= 3; seq++ {
		if err := store.Put(ctx, events.Snapshot{Schema: 1, Sequence: seq, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	snap, found, err := store.Get(ctx)
	if err != nil || !found || snap.Sequence != 3 || !bytes.Equal(snap.Data, data) {
		t.Fatalf("read back: found %v, sequence %d, %d bytes, %v", found, snap.Sequence, len(snap.Data), err)
	}
	stream, err := js.Stream(ctx, "OBJ_"+events.ReadModelBucketName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(chunks+">"))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.State.Subjects) != 1 {
		t.Fatalf("chunk sets stored: %v; want the newest snapshot's alone", info.State.Subjects)
	}
}
