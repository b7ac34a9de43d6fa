package processor_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/workers/processor"
)

// countingStore counts the events its loads return.
type countingStore struct {
	*events.JetStreamStore
	read atomic.Int64
}

func (s *countingStore) Load(ctx context.Context, app string, after uint64) ([]events.Envelope, error) {
	history, err := s.JetStreamStore.Load(ctx, app, after)
	s.read.Add(int64(len(history)))
	return history, err
}

func (b *bus) snapshots(t *testing.T) *events.SnapshotStore {
	t.Helper()
	snaps, err := events.EnsureSnapshotStore(testContext(t), b.js, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	return snaps
}

// awaitSnapshot waits until app's snapshot covers sequence seq.
func awaitSnapshot(ctx context.Context, t *testing.T, snaps *events.SnapshotStore, app string, seq uint64) events.Snapshot {
	t.Helper()
	var snap events.Snapshot
	testsupport.Eventually(ctx, t, fmt.Sprintf("a snapshot of %s at sequence %d", app, seq), func() bool {
		s, found, err := snaps.Get(ctx, events.AppSnapshotKey(app))
		if err != nil {
			t.Fatal(err)
		}
		snap = s
		return found && s.Sequence == seq
	})
	return snap
}

// normalised makes states folded and decoded comparable: times in UTC
// without a monotonic reading, no empty maps.
func normalised(a aggregates.App) aggregates.App {
	a = a.Clone()
	for _, r := range a.Revisions {
		r.CreatedAt = r.CreatedAt.UTC().Round(0)
	}
	for name, s := range a.Secrets {
		s.SetAt = s.SetAt.UTC().Round(0)
		a.Secrets[name] = s
	}
	if a.Rollout != nil {
		a.Rollout.RequestedAt = a.Rollout.RequestedAt.UTC().Round(0)
	}
	if len(a.Runners) == 0 {
		a.Runners = nil
	}
	if len(a.Secrets) == 0 {
		a.Secrets = nil
	}
	return a
}

// A long history, snapshotted every 1,000 events: after a restart the
// processor reads the snapshot and the events after it, one of which is
// the snapshot's own last event (checked to still be in the log), and
// holds the state a full fold gives.
func TestColdLoadReadsOnlyTheEventsAfterTheSnapshot(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	ctx := testContext(t)
	snaps := b.snapshots(t)
	const app, history, tail = "long", 5000, 7
	first, err := processor.New(processor.Config{Verifier: testsupport.TrustActor{}, NATSURL: b.srv.ClientURL(), JetStream: b.js, Store: b.store, Snapshots: snaps, SnapshotEvery: 1000})
	if err != nil {
		t.Fatal(err)
	}
	accept := accepting(t, ctx, first, app)
	revision := accept(events.Deploy{RevisionID: uuid.NewString(), Command: "./web"}).RevisionID
	accept(events.SetSecret{Name: "TOKEN", Version: 3})
	runners := make([]string, 8)
	for i := range runners {
		runners[i] = uuid.NewString()
	}
	states := []events.RunnerState{events.RunnerSetup, events.RunnerIdle, events.RunnerRunning}
	var last events.Outcome
	for i := 2; i < history+tail; i++ {
		if i == history {
			awaitSnapshot(ctx, t, snaps, app, last.LastSequence)
		}
		runner, state := runners[i%len(runners)], states[i%len(states)]
		switch i % 97 {
		case 0:
			last = accept(events.StopRunner{RunnerID: runner, Replace: i%2 == 0})
			continue
		case 1:
			runner, state = runners[(i-1)%len(runners)], events.RunnerTerminated
		}
		last = accept(events.ReportRunner{RunnerID: runner, RevisionID: revision, State: state, PID: i, Port: 8000 + i%100})
	}

	counting := &countingStore{JetStreamStore: b.store}
	restarted, err := processor.New(processor.Config{Verifier: testsupport.TrustActor{}, NATSURL: b.srv.ClientURL(), JetStream: b.js, Store: counting, Snapshots: snaps, SnapshotEvery: 1000})
	if err != nil {
		t.Fatal(err)
	}
	o, _, err := restarted.Process(ctx, events.NewCommand(app, events.ReportRunner{RunnerID: runners[0], RevisionID: revision, State: events.RunnerDraining}, alice))
	if err != nil || o.Status != events.OutcomeAccepted || o.FirstSequence != last.LastSequence+1 {
		t.Fatalf("command after the restart: %+v, %v; want accepted at %d", o, err, last.LastSequence+1)
	}
	if read := counting.read.Load(); read != tail+1 {
		t.Errorf("the cold load read %d events; want %d (the snapshot's last and the %d after it)", read, tail+1, tail)
	}
	full, err := b.store.Load(ctx, app, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(full) != history+tail+1 {
		t.Fatalf("the log holds %d events; want %d", len(full), history+tail+1)
	}
	if got, want := normalised(restarted.CachedState(app)), normalised(aggregates.Fold(app, full)); !reflect.DeepEqual(got, want) {
		t.Errorf("state from the snapshot and the tail differs from the full fold:\n got %+v\nwant %+v", got, want)
	}
}

// outcomeBlackout is a JetStream whose stored publishes fail while it is
// on: a processor on it appends events and then cannot record the
// outcome, as one that died in between.
type outcomeBlackout struct {
	jetstream.JetStream
	on atomic.Bool
}

func (o *outcomeBlackout) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if o.on.Load() && strings.HasPrefix(msg.Subject, events.OutcomeSubjectPrefix) {
		return nil, errors.New("outcome stream unreachable (test)")
	}
	return o.JetStream.PublishMsg(ctx, msg, opts...)
}

// A command whose events a snapshot covers but whose outcome was never
// recorded is redelivered to a processor that loads the app from that
// snapshot: it is recognised (the snapshot keeps the latest commands'
// outcomes), and has one effect.
func TestCommandCoveredByASnapshotBeforeItsOutcomeHasOneEffect(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	ctx := testContext(t)
	snaps := b.snapshots(t)
	blackout := &outcomeBlackout{JetStream: b.js}
	first, err := processor.New(processor.Config{Verifier: testsupport.TrustActor{}, NATSURL: b.srv.ClientURL(), JetStream: blackout, Store: b.store, Snapshots: snaps, SnapshotEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	revision := accepting(t, ctx, first, "once")(events.Deploy{RevisionID: uuid.NewString(), Command: "./web"}).RevisionID
	report := events.NewCommand("once", events.ReportRunner{RunnerID: uuid.NewString(), RevisionID: revision, State: events.RunnerIdle}, alice)
	blackout.on.Store(true)
	if _, _, err := first.Process(ctx, report); err == nil {
		t.Fatal("the command was processed with its outcome unrecorded")
	}
	appended, err := b.store.Load(ctx, "once", 0)
	if err != nil {
		t.Fatal(err)
	}
	stored := appended[len(appended)-1]
	if stored.CausationID != report.CommandID {
		t.Fatalf("the report's event was not appended: last event %+v", stored)
	}
	awaitSnapshot(ctx, t, snaps, "once", stored.Sequence)

	restarted, err := processor.New(processor.Config{Verifier: testsupport.TrustActor{}, NATSURL: b.srv.ClientURL(), JetStream: b.js, Store: b.store, Snapshots: snaps})
	if err != nil {
		t.Fatal(err)
	}
	o, _, err := restarted.Process(ctx, report)
	if err != nil || o.Status != events.OutcomeAccepted || o.FirstSequence != stored.Sequence {
		t.Fatalf("redelivered command: %+v, %v; want accepted at %d", o, err, stored.Sequence)
	}
	after, err := b.store.Load(ctx, "once", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(appended) {
		t.Errorf("the redelivered command appended %d more events", len(after)-len(appended))
	}
	recorded, found, err := commandbus.NewOutcomeLog(b.js).Lookup(ctx, report.CommandID)
	if err != nil || !found || recorded.FirstSequence != stored.Sequence {
		t.Errorf("recorded outcome %+v (found %v, %v); want accepted at %d", recorded, found, err, stored.Sequence)
	}
}
