package processor_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/revline/revline/events"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/projections/audit"
	"github.com/revline/revline/workers/processor"
)

// conflictCounter counts the appends that conflicted.
type conflictCounter struct {
	*events.JetStreamStore
	conflicts atomic.Int64
}

func (s *conflictCounter) Append(ctx context.Context, app string, expected uint64, evs []events.Envelope) (events.AppendResult, error) {
	res, err := s.JetStreamStore.Append(ctx, app, expected, evs)
	if errors.Is(err, events.ErrConflict) {
		s.conflicts.Add(1)
	}
	return res, err
}

// verifyChain checks app's chain in the log and returns its report; a
// broken chain fails the test.
func verifyChain(t *testing.T, store audit.Log, app string) audit.ChainReport {
	t.Helper()
	reports, err := audit.VerifyChains(testContext(t), store, app)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 1 {
		t.Fatalf("%d reports for one app: %+v", len(reports), reports)
	}
	return reports[0]
}

// Events chain from one to the next whoever writes them: a processor that
// decided the previous command, one that lost an append to another and
// re-decided, one that loaded the app from its snapshot, one that folded
// the whole history, and the events of one command among themselves.
func TestEventsChainAcrossProcessorsRestartsSnapshotsAndConflicts(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	ctx := testContext(t)
	snaps := b.snapshots(t)
	store := &conflictCounter{JetStreamStore: b.store}
	newProcessor := func(withSnapshots bool) *processor.Processor {
		cfg := processor.Config{Verifier: testsupport.TrustActor{}, NATSURL: b.srv.ClientURL(), JetStream: b.js, Store: store}
		if withSnapshots {
			cfg.Snapshots, cfg.SnapshotEvery = snaps, 2
		}
		p, err := processor.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	const app = "chained"
	first, second := newProcessor(true), newProcessor(false)
	deployed := accepting(t, ctx, first, app)(events.Deploy{Command: "./web"})
	completed := accepting(t, ctx, first, app)(events.CompleteDeploy{RevisionID: deployed.RevisionID})
	if completed.LastSequence == completed.FirstSequence {
		t.Fatalf("completing a deploy stored one event (%+v): the test needs a command with several", completed)
	}
	accepting(t, ctx, second, app)(events.SetSecret{Name: "A", Version: 1})
	// first's cache is now behind: its append conflicts, and it re-decides.
	last := accepting(t, ctx, first, app)(events.SetSecret{Name: "B", Version: 1})
	if store.conflicts.Load() == 0 {
		t.Fatal("no append conflicted: the test does not cover a re-decided command")
	}
	awaitSnapshot(ctx, t, snaps, app, last.LastSequence)
	// A restart: a cold load from the snapshot, another from the history.
	accepting(t, ctx, newProcessor(true), app)(events.Suspend{})
	last = accepting(t, ctx, newProcessor(false), app)(events.Resume{})

	history, err := b.store.Load(ctx, app, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := verifyChain(t, b.store, app)
	if !r.OK || r.Events != len(history) || r.Unhashed != 0 || r.Start != history[0].Sequence {
		t.Fatalf("chain report %+v; want OK over all %d events", r, len(history))
	}
	if end := history[len(history)-1]; r.LastSequence != last.LastSequence || r.LastHash != end.Hash || end.Hash == "" {
		t.Errorf("chain ends at %d with %s; the log ends at %d with %q", r.LastSequence, r.LastHash, end.Sequence, end.Hash)
	}
}

// What someone with the server's rights can store on an app's subjects is
// reported at its sequence, and the app's commands go on: an event forged
// with a chain of its own, an event whose content was changed after it was
// hashed, a message that is no event, and events written before events
// were hashed.
func TestTamperingIsReportedAtItsSequence(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	ctx := testContext(t)
	p := b.startProcessor(t)
	publish := func(env events.Envelope) uint64 {
		t.Helper()
		msg, err := events.EventMsg(env)
		if err != nil {
			t.Fatal(err)
		}
		ack, err := b.js.PublishMsg(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	forged := func(app string, prev string) events.Envelope {
		t.Helper()
		env := events.NewEnvelope(app, events.SecretSet{Name: "STOLEN", Version: 9}, events.Metadata{Actor: "mallory"}, time.Now())
		chained, err := events.Chain(prev, []events.Envelope{env})
		if err != nil {
			t.Fatal(err)
		}
		return chained[0]
	}
	for _, app := range []string{"forged", "altered", "legacy"} {
		if app == "legacy" {
			publish(events.NewEnvelope(app, events.AppResumed{}, alice, time.Now())) // unhashed
		}
		if o := b.execute(t, deploy(app)); o.Status != events.OutcomeAccepted {
			t.Fatalf("deploy %s: %+v", app, o)
		}
	}
	forgedAt := publish(forged("forged", "")) // chains from nothing
	env := forged("altered", p.CachedState("altered").LastHash)
	env.Payload = bytes.Replace(env.Payload, []byte("STOLEN"), []byte("SECRET"), 1) // the hash no longer covers it
	alteredAt := publish(env)
	junk := nats.NewMsg(events.EventSubjectPrefix + "legacy.junk")
	junk.Data = []byte("not an event")
	ack, err := b.js.PublishMsg(ctx, junk)
	if err != nil {
		t.Fatal(err)
	}
	for _, app := range []string{"forged", "altered", "legacy"} {
		if o := b.execute(t, events.NewCommand(app, events.SetSecret{Name: "TOKEN", Version: 1}, alice)); o.Status != events.OutcomeAccepted {
			t.Fatalf("a command for %s after the tampering: %+v", app, o)
		}
	}

	if r := verifyChain(t, b.store, "forged"); r.OK || r.Broken.Sequence != forgedAt || r.Broken.Reason != audit.ReasonPrevHash || r.Broken.Found != events.ZeroHash {
		t.Errorf("forged event at %d: report %+v, broken %+v", forgedAt, r, r.Broken)
	}
	if r := verifyChain(t, b.store, "altered"); r.OK || r.Broken.Sequence != alteredAt || r.Broken.Reason != audit.ReasonContent {
		t.Errorf("altered event at %d: report %+v, broken %+v", alteredAt, r, r.Broken)
	}
	r := verifyChain(t, b.store, "legacy")
	if !r.OK || r.Unhashed != 1 || r.Events != 2 || !slices.Equal(r.Junk, []uint64{ack.Sequence}) {
		t.Errorf("legacy app: report %+v; want OK, 1 unhashed event, 2 hashed ones and the junk at %d", r, ack.Sequence)
	}
}
