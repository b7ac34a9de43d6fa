package audit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/embedded/embeddedtest"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/projections/audit"
)

// countingLog counts the events an app's fold reads from the log.
type countingLog struct {
	audit.Log
	read atomic.Int64
}

func (c *countingLog) FollowApp(ctx context.Context, app string, from uint64, fn events.FollowFunc) error {
	return c.Log.FollowApp(ctx, app, from, func(env events.Envelope, decodeErr error) error {
		c.read.Add(1)
		return fn(env, decodeErr)
	})
}

// at is what time travel answers at one point of an app's history.
type at struct {
	revisions audit.Revisions
	runners   audit.Runners
	config    audit.Config
}

func travel(t *testing.T, h *history, log audit.Log, app string, p audit.Point) at {
	t.Helper()
	var (
		got at
		err error
	)
	if got.revisions, err = audit.RevisionsAt(h.ctx, log, app, p); err != nil {
		t.Fatalf("%s at %s: %v", app, p, err)
	}
	if got.runners, err = audit.RunnersAt(h.ctx, log, app, p); err != nil {
		t.Fatal(err)
	}
	if got.config, err = audit.Provenance(h.ctx, log, app, p); err != nil {
		t.Fatal(err)
	}
	return got
}

func ensureSnapshots(t *testing.T, h *history, every, keep int) *audit.Snapshots {
	t.Helper()
	snaps, err := audit.EnsureSnapshots(h.ctx, h.js, audit.SnapshotsConfig{Every: every, Keep: keep, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return snaps
}

// Time travel from snapshots answers at every point what a fold of the
// log from its first event answers (revisions, runners, provenance with
// each parameter's whole history), reading only the events after the
// newest snapshot at or before the point; a client that may only read
// the snapshots gets the same.
func TestTimeTravelFromSnapshotsReadsOnlyTheTail(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	randomHistory(t, h, rand.New(rand.NewPCG(9, 27)), 300)
	const every = 10
	snaps := ensureSnapshots(t, h, every, 64)
	withSnaps := audit.WithSnapshots(h.store, snaps)
	for _, app := range []string{"alpha", "beta"} {
		// The first question folds the whole history and leaves snapshots.
		if _, err := audit.RevisionsAt(h.ctx, withSnaps, app, audit.Point{}); err != nil {
			t.Fatal(err)
		}
	}
	reader := snapshotsReader(t, h)
	end, err := h.store.LastSequence(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var points []audit.Point
	for seq := uint64(1); seq <= end; seq += 1 + seq/3 {
		points = append(points, audit.Point{Sequence: seq})
	}
	for minutes := 3; minutes < 300; minutes += 47 {
		points = append(points, audit.Point{Time: t0.Add(time.Duration(minutes)*time.Minute + time.Second)})
	}
	points = append(points, audit.Point{}, audit.Point{Sequence: end - 3, Time: t0.Add(100 * time.Minute)})
	compared, saved := 0, int64(0)
	for _, p := range points {
		for _, app := range []string{"alpha", "beta"} {
			if _, err := audit.RevisionsAt(h.ctx, h.store, app, p); err != nil {
				continue // no history yet at p: the same with snapshots below
			}
			full := &countingLog{Log: h.store}
			want := travel(t, h, full, app, p)
			for name, snapshots := range map[string]*audit.Snapshots{"server": snaps, "client": reader} {
				counted := &countingLog{Log: h.store}
				got := travel(t, h, audit.WithSnapshots(counted, snapshots), app, p)
				if !reflect.DeepEqual(got.revisions, want.revisions) || !reflect.DeepEqual(got.runners, want.runners) {
					t.Fatalf("%s at %s (%s):\n got %+v\nwant %+v", app, p, name, got, want)
				}
				if !reflect.DeepEqual(got.config, want.config) || !reflect.DeepEqual(got.config.History, want.config.History) {
					t.Fatalf("%s provenance at %s (%s):\n got %+v\nwant %+v", app, p, name, got.config, want.config)
				}
				// Three questions, each the tail after a snapshot and the
				// snapshot's own event, read again to check it.
				if read := counted.read.Load(); read > 3*(every+1) {
					t.Fatalf("%s at %s (%s): read %d events; the full folds read %d", app, p, name, read, full.read.Load())
				}
				saved += full.read.Load() - counted.read.Load()
			}
			compared++
		}
	}
	if compared < 20 || saved < 500 {
		t.Fatalf("compared %d points, saving %d event reads", compared, saved)
	}
}

// alphaWithSnapshots makes a random history and the snapshots of its app
// alpha, one every every events, and returns their bucket and keys.
func alphaWithSnapshots(t *testing.T, r *rand.Rand, every int) (*history, jetstream.KeyValue, []string) {
	t.Helper()
	h := newHistory(t)
	randomHistory(t, h, r, 120)
	snaps := ensureSnapshots(t, h, every, 64)
	if _, err := audit.RevisionsAt(h.ctx, audit.WithSnapshots(h.store, snaps), "alpha", audit.Point{}); err != nil {
		t.Fatal(err)
	}
	kv, err := h.js.KeyValue(h.ctx, audit.SnapshotBucketName)
	if err != nil {
		t.Fatal(err)
	}
	keys := snapshotKeys(t, h, kv, "alpha")
	if len(keys) < 3 {
		t.Fatalf("snapshots of alpha: %v", keys)
	}
	return h, kv, keys
}

// A snapshot that cannot be trusted (unreadable, of another schema) is
// ignored: the answer is the full fold's.
func TestTimeTravelIgnoresUntrustedSnapshots(t *testing.T) {
	t.Parallel()
	h, kv, keys := alphaWithSnapshots(t, rand.New(rand.NewPCG(3, 4)), 5)
	want := travel(t, h, h.store, "alpha", audit.Point{})
	for name, value := range map[string][]byte{
		"garbage":      []byte("not a snapshot"),
		"other schema": mustMarshal(t, events.Snapshot{Schema: 1, Sequence: 1, Data: []byte{0x80}}),
	} {
		for _, key := range keys {
			if _, err := kv.Put(h.ctx, key, value); err != nil {
				t.Fatal(err)
			}
		}
		counted := &countingLog{Log: h.store}
		got := travel(t, h, audit.WithSnapshots(counted, snapshotsReader(t, h)), "alpha", audit.Point{})
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s snapshots: got %+v, want %+v", name, got, want)
		}
		if counted.read.Load() < int64(want.revisions.Sequence)/4 {
			t.Fatalf("%s snapshots: read only %d events", name, counted.read.Load())
		}
	}
}

// A snapshot the index lists but the bucket no longer holds (another
// writer purged it after this reader read the index) is passed over for
// the next older one, not for the whole history.
func TestTimeTravelFallsBackToAnOlderSnapshot(t *testing.T) {
	t.Parallel()
	const every = 5
	h, kv, keys := alphaWithSnapshots(t, rand.New(rand.NewPCG(5, 6)), every)
	newest := slices.MaxFunc(keys, func(a, b string) int { return foldNumber(t, a) - foldNumber(t, b) })
	if err := kv.Purge(h.ctx, newest); err != nil {
		t.Fatal(err)
	}
	want := travel(t, h, h.store, "alpha", audit.Point{})
	counted := &countingLog{Log: h.store}
	got := travel(t, h, audit.WithSnapshots(counted, snapshotsReader(t, h)), "alpha", audit.Point{})
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// Three questions, each from the snapshot before the purged one: two
	// snapshots' worth of events and the snapshot's own, at most.
	if read := counted.read.Load(); read > 3*(2*every+1) {
		t.Fatalf("read %d events after the newest snapshot was purged", read)
	}
}

// foldNumber is how many events the snapshot of key fold.APP.N follows.
func foldNumber(t *testing.T, key string) int {
	t.Helper()
	n, err := strconv.Atoi(key[strings.LastIndexByte(key, '.')+1:])
	if err != nil {
		t.Fatalf("snapshot key %q: %v", key, err)
	}
	return n
}

// Past Keep snapshots per app, those kept stay spread over the history,
// the newest among them, and the others are purged from the bucket.
func TestTimeTravelSnapshotsAreBounded(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	randomHistory(t, h, rand.New(rand.NewPCG(5, 6)), 200)
	snaps := ensureSnapshots(t, h, 3, 4)
	if _, err := audit.RevisionsAt(h.ctx, audit.WithSnapshots(h.store, snaps), "alpha", audit.Point{}); err != nil {
		t.Fatal(err)
	}
	kv, err := h.js.KeyValue(h.ctx, audit.SnapshotBucketName)
	if err != nil {
		t.Fatal(err)
	}
	keys := snapshotKeys(t, h, kv, "alpha")
	if len(keys) != 4 {
		t.Fatalf("kept %v, want 4 snapshots", keys)
	}
	history, err := h.store.Load(h.ctx, "alpha", 0)
	if err != nil {
		t.Fatal(err)
	}
	newest := "fold.alpha." + strconv.Itoa(len(history)-len(history)%3)
	if !slices.Contains(keys, newest) {
		t.Fatalf("kept %v, not the newest %s", keys, newest)
	}
	if slices.Contains(keys, "fold.alpha.3") && slices.Contains(keys, "fold.alpha.6") && slices.Contains(keys, "fold.alpha.9") {
		t.Fatalf("kept %v: the oldest, not spread", keys)
	}
}

func snapshotKeys(t *testing.T, h *history, kv jetstream.KeyValue, app string) []string {
	t.Helper()
	lister, err := kv.ListKeysFiltered(h.ctx, "fold."+app+".*")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for key := range lister.Keys() {
		keys = append(keys, key)
	}
	if !slices.ContainsFunc(keys, func(k string) bool { return strings.HasPrefix(k, "fold.") }) {
		t.Fatalf("no snapshot of %s", app)
	}
	return keys
}

func snapshotsReader(t *testing.T, h *history) *audit.Snapshots {
	t.Helper()
	reader, err := audit.OpenSnapshots(h.ctx, h.js, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return reader
}

func mustMarshal(t *testing.T, s events.Snapshot) []byte {
	t.Helper()
	value, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return value
}

// Warm leaves a snapshot behind once an app has Every new events, so
// that time travel folds only the tail without having written it.
func TestWarmSnapshotsNewEvents(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	snaps := ensureSnapshots(t, h, 4, 64)
	ctx, stop := context.WithCancel(h.ctx)
	warmed := make(chan error, 1)
	go func() { warmed <- snaps.Warm(ctx, h.store) }()
	kv, err := h.js.KeyValue(h.ctx, audit.SnapshotBucketName)
	if err != nil {
		t.Fatal(err)
	}
	// Warm follows from the log's end when it starts: wait until it has.
	testsupport.Eventually(h.ctx, t, "Warm following the log", func() bool {
		info, err := h.js.Stream(h.ctx, events.EventStreamName)
		return err == nil && info.CachedInfo().State.Consumers > 0
	})
	h.standard()
	history, err := h.store.Load(h.ctx, "my-model", 0)
	if err != nil {
		t.Fatal(err)
	}
	newest := "fold.my-model." + strconv.Itoa(len(history)-len(history)%4)
	// The index lists a snapshot once its key is written: wait for both.
	testsupport.Eventually(h.ctx, t, newest+" in the index", func() bool {
		fold, err := kv.Get(h.ctx, newest)
		if err != nil {
			return false
		}
		index, err := kv.Get(h.ctx, "index.my-model")
		return err == nil && index.Revision() > fold.Revision()
	})
	stop()
	if err := <-warmed; !errors.Is(err, context.Canceled) {
		t.Fatalf("Warm: %v", err)
	}
	counted := &countingLog{Log: h.store}
	got := travel(t, h, audit.WithSnapshots(counted, snapshotsReader(t, h)), "my-model", audit.Point{})
	if want := travel(t, h, h.store, "my-model", audit.Point{}); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if read := counted.read.Load(); read > 3*(4+1) {
		t.Fatalf("read %d events", read)
	}
}

// BenchmarkTimeTravel answers `apps show --at-seq` near the end of one
// app's history of 5,000 events (a deploy, then scales), folding from the
// first event and from the newest snapshot (every 500 events), in the
// same run: BENCHMARKS.md "Time travel".
func BenchmarkTimeTravel(b *testing.B) {
	ctx := b.Context()
	srv := embeddedtest.Start(b)
	_, js := embeddedtest.Connect(b, srv)
	store, err := events.NewJetStreamStore(ctx, events.JetStreamStoreConfig{JetStream: js, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	const app, n = "big", 5000
	state, clock := aggregates.App{Name: app}, t0
	for i := range n {
		var cmd events.Command = events.Scale{Runtime: events.RuntimeOverrides{KeepAlive: ptr(events.Seconds(100 + i))}}
		switch i {
		case 0:
			cmd = events.Deploy{RevisionID: rev1, Command: "run $PORT"}
		case 1:
			cmd = events.CompleteDeploy{RevisionID: rev1}
		}
		evs, err := aggregates.Decide(state, cmd, clock)
		if err != nil {
			b.Fatal(err)
		}
		envs := make([]events.Envelope, len(evs))
		for j, ev := range evs {
			envs[j] = events.NewEnvelope(app, ev, events.Metadata{Actor: "alice", CorrelationID: rev1, CausationID: fmt.Sprint(i)}, clock)
		}
		if envs, err = events.Chain(state.LastHash, envs); err != nil {
			b.Fatal(err)
		}
		res, err := store.Append(ctx, app, state.Version, envs)
		if err != nil {
			b.Fatal(err)
		}
		for j := range envs {
			envs[j].Sequence = res.FirstSequence + uint64(j)
			state = aggregates.Evolve(state, envs[j])
		}
		clock = clock.Add(time.Second)
	}
	snaps, err := audit.EnsureSnapshots(ctx, js, audit.SnapshotsConfig{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	withSnaps := audit.WithSnapshots(store, snaps)
	if _, err := audit.Provenance(ctx, withSnaps, app, audit.Point{}); err != nil { // writes the snapshots
		b.Fatal(err)
	}
	at := audit.Point{Sequence: state.Version - 10}
	for name, log := range map[string]audit.Log{"from_the_first_event": store, "from_a_snapshot": withSnaps} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := audit.Provenance(ctx, log, app, at); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
