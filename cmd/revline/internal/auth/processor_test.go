package auth_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/events/embedded/embeddedtest"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/workers/processor"
)

// bus is an embedded server with Revline's streams, its event store, the
// token store and the value of a deployer token named ci.
type bus struct {
	srv    *server.Server
	js     jetstream.JetStream
	store  *events.JetStreamStore
	tokens *auth.Store
	value  string
}

func newBus(ctx context.Context, t *testing.T) bus {
	t.Helper()
	b := bus{srv: embeddedtest.Start(t)}
	_, b.js = embeddedtest.Connect(t, b.srv)
	if err := commandbus.EnsureStreams(ctx, b.js, 1); err != nil {
		t.Fatal(err)
	}
	var err error
	if b.store, err = events.NewJetStreamStore(ctx, events.JetStreamStoreConfig{JetStream: b.js}); err != nil {
		t.Fatal(err)
	}
	if b.tokens, err = auth.Ensure(ctx, b.js, 1); err != nil {
		t.Fatal(err)
	}
	if b.value, _, err = b.tokens.Create(ctx, auth.NewToken{Name: "ci", Role: auth.RoleDeployer}, time.Now()); err != nil {
		t.Fatal(err)
	}
	return b
}

// runProcessor runs a command processor configured by cfg until the test
// ends.
func runProcessor(t *testing.T, cfg processor.Config) {
	t.Helper()
	p, err := processor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
}

// signedAt signs msg as the token name (value) would have at at: by hand,
// as a client in another language does (docs/bus.md §3).
func signedAt(t *testing.T, msg *nats.Msg, name, value string, at time.Time) {
	t.Helper()
	msg.Header.Set(events.HeaderKey, name)
	msg.Header.Set(events.HeaderSignedAt, at.UTC().Format(time.RFC3339))
	sig := ed25519.Sign(events.SigningKey(value), events.SigningPayload(msg.Subject, msg.Header, msg.Data))
	msg.Header.Set(events.HeaderSignature, base64.StdEncoding.EncodeToString(sig))
}

// A signature's age is measured from when JetStream stored the command:
// commands queued while no processor ran are decided when one starts,
// however late, and a command whose signature was old when it was stored
// (a replay) is refused.
func TestSignaturesAgeFromWhenTheCommandWasStored(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := newBus(ctx, t)
	srv, js, store, tokens, value := b.srv, b.js, b.store, b.tokens, b.value
	publish := func(at time.Time) string {
		t.Helper()
		env := events.NewCommand("web", events.Deploy{Command: "true"}, events.Metadata{})
		msg, err := events.CommandMsg(env)
		if err != nil {
			t.Fatal(err)
		}
		signedAt(t, msg, "ci", value, at)
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
		return env.CommandID
	}
	// Stored while no processor runs.
	queued := publish(time.Now())
	replayed := publish(time.Now().Add(-auth.MaxSignatureAge - time.Minute))

	// The processor starts late: its clock says an hour has passed.
	runProcessor(t, processor.Config{
		NATSURL: srv.ClientURL(), JetStream: js, Store: store, Verifier: tokens,
		Now: func() time.Time { return time.Now().Add(time.Hour) },
	})

	client := commandbus.NewClient(js, commandbus.WithSigner(events.NewSigner("ci", value)))
	o, err := client.Await(ctx, queued)
	if err != nil || o.Status != events.OutcomeAccepted {
		t.Fatalf("queued command: %+v, %v", o, err)
	}
	envs, err := store.Load(ctx, "web", 0)
	if err != nil || len(envs) == 0 || envs[0].Actor != "token:ci" {
		t.Fatalf("queued command's events: %+v, %v; want actor token:ci", envs, err)
	}
	if o, err := client.Await(ctx, replayed); err != nil || o.Status != events.OutcomeRejected || o.Code != events.CodeUnauthenticated {
		t.Errorf("command signed %s before it was stored: %+v, %v", auth.MaxSignatureAge+time.Minute, o, err)
	}
}

// A command whose events were appended before a crash lost its outcome is
// delivered again; if its token was revoked meanwhile, it is still answered
// by what it did (accepted), never refused after the fact.
func TestACommandAcceptedBeforeACrashStaysAcceptedAfterItsTokenIsRevoked(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := newBus(ctx, t)
	srv, js, store, tokens, value := b.srv, b.js, b.store, b.tokens, b.value
	env := events.NewCommand("web", events.Deploy{Command: "true"}, events.Metadata{})
	deploy := events.Deploy{Command: "true", RevisionID: events.RevisionIDFor(env.CommandID)}
	env.Command = deploy

	// What the processor did before it crashed: decided and appended the
	// command's events, and recorded no outcome.
	evs, refusal := aggregates.Decide(aggregates.App{Name: "web"}, deploy, time.Now())
	if refusal != nil {
		t.Fatal(refusal)
	}
	envs := make([]events.Envelope, len(evs))
	for i, ev := range evs {
		envs[i] = events.NewEnvelope("web", ev, events.Metadata{Actor: "token:ci", CausationID: env.CommandID, CorrelationID: env.CommandID}, time.Now())
	}
	appended, err := store.Append(ctx, "web", 0, envs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.Revoke(ctx, "ci", "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	// The command, delivered again after the crash.
	msg, err := events.CommandMsg(env)
	if err != nil {
		t.Fatal(err)
	}
	signedAt(t, msg, "ci", value, time.Now())
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}

	runProcessor(t, processor.Config{NATSURL: srv.ClientURL(), JetStream: js, Store: store, Verifier: tokens})

	o, err := commandbus.NewClient(js, commandbus.WithSigner(events.NewSigner("ci", value))).Await(ctx, env.CommandID)
	if err != nil || o.Status != events.OutcomeAccepted || o.FirstSequence != appended.FirstSequence || o.RevisionID != deploy.RevisionID {
		t.Fatalf("outcome %+v, %v; want the acceptance of the events at %d", o, err, appended.FirstSequence)
	}
}

// A command refused before it was decided (unsigned, here) is answered,
// and its refusal is stored only for RefusalRetention: whoever can publish
// on the command subjects cannot fill the outcome stream for good. An
// accepted command's outcome is kept.
func TestRefusalsToDecideExpireAndDecisionsStay(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := newBus(ctx, t)
	runProcessor(t, processor.Config{NATSURL: b.srv.ClientURL(), JetStream: b.js, Store: b.store, Verifier: b.tokens, RefusalRetention: time.Second})

	send := func(sign bool) string {
		t.Helper()
		env := events.NewCommand("web", events.Deploy{Command: "true"}, events.Metadata{})
		msg, err := events.CommandMsg(env)
		if err != nil {
			t.Fatal(err)
		}
		if sign {
			signedAt(t, msg, "ci", b.value, time.Now())
		}
		if _, err := b.js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
		return env.CommandID
	}
	unsigned, signed := send(false), send(true)
	// Each outcome is published under the key its command names: none,
	// and ci's.
	if o, err := commandbus.NewClient(b.js).Await(ctx, unsigned); err != nil || o.Code != events.CodeUnauthenticated {
		t.Fatalf("unsigned command: %+v, %v; want refused %s", o, err, events.CodeUnauthenticated)
	}
	if o, err := commandbus.NewClient(b.js, commandbus.WithSigner(events.NewSigner("ci", b.value))).Await(ctx, signed); err != nil || o.Status != events.OutcomeAccepted {
		t.Fatalf("signed command: %+v, %v; want accepted", o, err)
	}
	stream, err := b.js.Stream(ctx, commandbus.OutcomeStreamName)
	if err != nil {
		t.Fatal(err)
	}
	stored := func(id string) *jetstream.RawStreamMsg {
		msg, err := stream.GetLastMsgForSubject(ctx, events.CommandOutcomes(id))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		} else if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	// A waiting client can hear an outcome a moment before the stream,
	// which captures the same publish, has stored it.
	var accepted *jetstream.RawStreamMsg
	testsupport.Eventually(ctx, t, "the accepted command's outcome stored", func() bool {
		accepted = stored(signed)
		return accepted != nil
	})
	if ttl := accepted.Header.Get(jetstream.MsgTTLHeader); ttl != "" {
		t.Fatalf("the accepted command's outcome has TTL %q; want none", ttl)
	}
	testsupport.Eventually(ctx, t, "the refusal expires", func() bool { return stored(unsigned) == nil })
	if msg := stored(signed); msg == nil {
		t.Fatal("the accepted command's outcome expired with the refusal")
	}
}

// A command sent while no processor runs is stored: the client that stops
// waiting says so, and that it will be decided when a server runs.
func TestAClientThatStopsWaitingSaysTheCommandIsStored(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := newBus(ctx, t)
	wait, stop := context.WithTimeout(ctx, 200*time.Millisecond)
	defer stop()
	_, err := commandbus.NewClient(b.js, commandbus.WithSigner(events.NewSigner("ci", b.value))).Execute(wait, events.NewCommand("web", events.Deploy{Command: "true"}, events.Metadata{}))
	if !errors.Is(err, commandbus.ErrNoOutcomeYet) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "is stored (sequence 1) and will be decided when a Revline server runs") {
		t.Fatalf("error %v; want no outcome yet, the command stored", err)
	}
}
