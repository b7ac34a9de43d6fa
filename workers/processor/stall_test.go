package processor_test

import (
	"context"
	"testing"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/workers/processor"
)

// pausingStore blocks the first Load until released: a processor that
// stalls (a pause, a lost connection) past the ack wait after looking the
// outcome up, while JetStream redelivers the command to another replica,
// which decides it and goes on to later commands.
type pausingStore struct {
	*events.JetStreamStore
	entered, release chan struct{}
}

// stallWhileProcessing starts processing cmd on a processor of its own
// that stalls in its first read of the log; release lets it go on, and
// res then receives its outcome.
func stallWhileProcessing(t *testing.T, b *bus, cmd events.CommandEnvelope) (res <-chan events.Outcome, release func()) {
	t.Helper()
	ps := &pausingStore{JetStreamStore: b.store, entered: make(chan struct{}), release: make(chan struct{})}
	p, err := processor.New(processor.Config{Verifier: testsupport.TrustActor{}, NATSURL: b.srv.ClientURL(), JetStream: b.js, Store: ps})
	if err != nil {
		t.Fatal(err)
	}
	entered := ps.entered
	out := make(chan events.Outcome, 1)
	go func() {
		o, _, err := p.Process(testContext(t), cmd)
		if err != nil {
			t.Error(err)
		}
		out <- o
	}()
	<-entered
	return out, func() { close(ps.release) }
}

func (s *pausingStore) Load(ctx context.Context, app string, after uint64) ([]events.Envelope, error) {
	if s.entered != nil {
		close(s.entered)
		s.entered = nil
		<-s.release
	}
	return s.JetStreamStore.Load(ctx, app, after)
}

// The refusal another replica recorded is final: the stalled one, which
// finds the app changed so that it would now accept, answers the refusal.
func TestStalledProcessorDoesNotApplyACommandAnotherRefused(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	ctx := testContext(t)
	p2, err := processor.New(processor.Config{Verifier: testsupport.TrustActor{}, NATSURL: b.srv.ClientURL(), JetStream: b.js, Store: b.store})
	if err != nil {
		t.Fatal(err)
	}
	must := func(c events.Command) events.Outcome {
		o, _, err := p2.Process(ctx, events.NewCommand("x", c, alice))
		if err != nil || o.Status != events.OutcomeAccepted {
			t.Fatalf("%+v %v", o, err)
		}
		return o
	}
	v1 := must(events.Deploy{Command: "serve"}).RevisionID
	must(events.CompleteDeploy{RevisionID: v1})
	v2 := must(events.Deploy{Command: "serve"}).RevisionID

	cmd := events.NewCommand("x", events.DeleteRevision{RevisionID: v1}, alice)
	res, release := stallWhileProcessing(t, b, cmd)
	// redelivered to p2: refused (v1 is current), recorded, acked.
	o, _, err := p2.Process(ctx, cmd)
	if err != nil || o.Status != events.OutcomeRejected {
		t.Fatalf("p2: %+v %v", o, err)
	}
	must(events.CompleteDeploy{RevisionID: v2}) // next command: v2 current
	release()
	o1 := <-res
	if o1.Status != events.OutcomeRejected || !o1.Duplicate {
		t.Errorf("the stalled processor answered %+v, want the recorded refusal", o1)
	}
	h, err := b.store.Load(ctx, "x", 0)
	if err != nil {
		t.Fatal(err)
	}
	if st := aggregates.Fold("x", h); st.Revisions[v1].Deleted {
		t.Errorf("a refused delete-rev took effect")
	}
}

// An accepted command has one effect even when the stalled processor comes
// back after more commands of the app than its cache remembers by id.
func TestStalledProcessorDoesNotApplyACommandTwice(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	ctx := testContext(t)
	p2, err := processor.New(processor.Config{Verifier: testsupport.TrustActor{}, NATSURL: b.srv.ClientURL(), JetStream: b.js, Store: b.store})
	if err != nil {
		t.Fatal(err)
	}
	cmd := deploy("y")
	res, release := stallWhileProcessing(t, b, cmd)
	if o, _, err := p2.Process(ctx, cmd); err != nil || o.Status != events.OutcomeAccepted {
		t.Fatalf("p2: %+v %v", o, err)
	}
	for range 20 { // more than the cache remembers by id
		if o, _, err := p2.Process(ctx, deploy("y")); err != nil || o.Status != events.OutcomeAccepted {
			t.Fatalf("p2: %+v %v", o, err)
		}
	}
	release()
	if o := <-res; o.Status != events.OutcomeAccepted || !o.Duplicate {
		t.Errorf("the stalled processor answered %+v, want the recorded acceptance", o)
	}
	h, err := b.store.Load(ctx, "y", 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range h {
		if e.CausationID == cmd.CommandID {
			n++
		}
	}
	if n != 1 {
		t.Errorf("command %s caused %d events, want 1", cmd.CommandID, n)
	}
}
