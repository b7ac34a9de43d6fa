package processor_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/events/embedded/embeddedtest"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/workers/processor"
)

type bus struct {
	srv    *server.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	store  *events.JetStreamStore
	client *commandbus.Client
}

func newBus(t *testing.T) *bus {
	t.Helper()
	srv := embeddedtest.Start(t)
	nc, js := embeddedtest.Connect(t, srv)
	ctx := testContext(t)
	if err := commandbus.EnsureStreams(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	store, err := events.NewJetStreamStore(ctx, events.JetStreamStoreConfig{JetStream: js})
	if err != nil {
		t.Fatal(err)
	}
	return &bus{srv: srv, nc: nc, js: js, store: store, client: commandbus.NewClient(js)}
}

// startProcessor runs a processor until the test ends.
func (b *bus) startProcessor(t *testing.T) *processor.Processor {
	t.Helper()
	p, err := processor.New(processor.Config{Verifier: testsupport.TrustActor{}, NATSURL: b.srv.ClientURL(), JetStream: b.js, Store: b.store})
	if err != nil {
		t.Fatal(err)
	}
	runProcessor(t, p)
	return p
}

// runProcessor runs p until the test ends.
func runProcessor(t *testing.T, p *processor.Processor) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor stopped with %v", err)
		}
	})
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var alice = events.Metadata{Actor: "alice"}

func deploy(app string) events.CommandEnvelope {
	return events.NewCommand(app, events.Deploy{Command: "python3 -m http.server $PORT"}, alice)
}

func (b *bus) execute(t *testing.T, cmd events.CommandEnvelope) events.Outcome {
	t.Helper()
	o, err := b.client.Execute(testContext(t), cmd)
	if err != nil {
		t.Fatalf("execute %s: %v", cmd.Type, err)
	}
	return o
}

func TestDeployIsAcceptedWithItsSequenceAndRevision(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	b.startProcessor(t)
	o := b.execute(t, deploy("web"))
	if o.Status != events.OutcomeAccepted || o.RevisionID == "" || o.FirstSequence == 0 || o.CommandType != events.CmdDeploy {
		t.Fatalf("outcome = %+v", o)
	}
	history, err := b.store.Load(testContext(t), "web", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != 1 || history[0].Sequence != o.FirstSequence || history[0].Actor != "alice" || history[0].CausationID == "" {
		t.Fatalf("history = %+v", history)
	}
}

func TestRejectedCommandGetsCodeAndSentence(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	b.startProcessor(t)
	o := b.execute(t, events.NewCommand("web", events.Rollout{}, alice))
	if o.Status != events.OutcomeRejected || o.Code != aggregates.CodeNoCurrentRevision || !strings.Contains(o.Message, "no current revision") {
		t.Fatalf("outcome = %+v", o)
	}
	var rej *events.Rejection
	if !errors.As(o.Err(), &rej) || rej.Code != aggregates.CodeNoCurrentRevision {
		t.Fatalf("Err() = %v", o.Err())
	}
}

func TestJSONCommandGetsJSONOutcome(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	b.startProcessor(t)
	id := uuid.NewString()
	sub, err := b.nc.SubscribeSync(events.OutcomeSubject(events.NoOutcomeKey, id))
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(events.CommandSubject("web", events.CmdDeploy))
	msg.Header.Set(events.HeaderMsgID, id)
	msg.Header.Set(events.HeaderContentType, events.ContentTypeJSON)
	msg.Header.Set(events.HeaderActor, "ci-bot")
	msg.Data = []byte(`{"command":"./serve","code":{"machine_type":"GPU-A100"},"runtime":{"keep_alive":300},"message":"from JSON"}`)
	if _, err := b.js.PublishMsg(testContext(t), msg); err != nil {
		t.Fatal(err)
	}
	reply, err := sub.NextMsgWithContext(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if ct := reply.Header.Get(events.HeaderContentType); ct != events.ContentTypeJSON {
		t.Fatalf("outcome content type %q", ct)
	}
	if !strings.Contains(string(reply.Data), `"status":"accepted"`) {
		t.Fatalf("outcome = %s", reply.Data)
	}
	history, _ := b.store.Load(testContext(t), "web", 0)
	created := history[0].Event.(events.RevisionCreated)
	if created.Code.MachineType != "GPU-A100" || created.Runtime.KeepAlive != 300 || history[0].Actor != "ci-bot" {
		t.Fatalf("stored %+v by %s", created, history[0].Actor)
	}
}

func TestSameCommandTwiceHasOneEffect(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	b.startProcessor(t)
	cmd := deploy("web")
	first := b.execute(t, cmd)
	// Sent again past JetStream's own dedupe: the processor must know it.
	cmd2 := cmd
	second, err := b.client.Execute(testContext(t), cmd2)
	if err != nil {
		t.Fatal(err)
	}
	if second.RevisionID != first.RevisionID || second.FirstSequence != first.FirstSequence {
		t.Fatalf("second outcome %+v differs from first %+v", second, first)
	}
	// And a processor with a cold cache must know it too.
	p, err := processor.New(processor.Config{Verifier: testsupport.TrustActor{}, NATSURL: b.srv.ClientURL(), JetStream: b.js, Store: b.store})
	if err != nil {
		t.Fatal(err)
	}
	third, appended, err := p.Process(testContext(t), cmd)
	if err != nil || appended != 0 || !third.Duplicate || third.RevisionID != first.RevisionID {
		t.Fatalf("cold retry = %+v, appended %d, err %v", third, appended, err)
	}
	history, _ := b.store.Load(testContext(t), "web", 0)
	if len(history) != 1 {
		t.Fatalf("%d events stored, want 1", len(history))
	}
}

func TestCommandSentBeforeProcessorStartsIsProcessed(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	cmd := deploy("early")
	if err := b.client.Send(testContext(t), cmd); err != nil {
		t.Fatal(err)
	}
	b.startProcessor(t)
	o, err := b.client.Await(testContext(t), cmd.CommandID)
	if err != nil || o.Status != events.OutcomeAccepted {
		t.Fatalf("outcome %+v, err %v", o, err)
	}
}

func TestGarbageIsRejectedOrDeadLetteredAndProcessingGoesOn(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	b.startProcessor(t)
	ctx := testContext(t)
	garbage := []struct {
		name     string
		subject  string
		data     string
		wantCode string
	}{
		{"bad msgpack", events.CommandSubject("web", events.CmdDeploy), "\xc1\xff\x00", events.CodeMalformedCommand},
		{"unknown type", events.CommandSubject("web", "explode"), "\x80", events.CodeUnknownCommand},
		{"dotted app", "revline.commands.a.b.deploy", "\x80", events.CodeUnknownCommand},
		{"uppercase app", events.CommandSubject("Web", events.CmdDeploy), "\x80", events.CodeInvalidAppName},
		{"300 characters", events.CommandSubject(strings.Repeat("a", 300), events.CmdDeploy), "\x80", events.CodeInvalidAppName},
		{"unknown field", events.CommandSubject("web", events.CmdScale), `{"runtime":{"keep_alive":1},"colour":"red"}`, events.CodeMalformedCommand},
	}
	for _, g := range garbage {
		id := uuid.NewString()
		sub, err := b.nc.SubscribeSync(events.OutcomeSubject(events.NoOutcomeKey, id))
		if err != nil {
			t.Fatal(err)
		}
		msg := nats.NewMsg(g.subject)
		msg.Header.Set(events.HeaderMsgID, id)
		if strings.HasPrefix(g.data, "{") {
			msg.Header.Set(events.HeaderContentType, events.ContentTypeJSON)
		}
		msg.Data = []byte(g.data)
		if _, err := b.js.PublishMsg(ctx, msg); err != nil {
			t.Fatalf("%s: publish: %v", g.name, err)
		}
		reply, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			t.Fatalf("%s: no outcome: %v", g.name, err)
		}
		o, err := events.DecodeOutcome(reply.Header, reply.Data)
		if err != nil || o.Status != events.OutcomeRejected || o.Code != g.wantCode || o.Message == "" || strings.Contains(o.Message, "\n") {
			t.Errorf("%s: outcome %+v (err %v), want rejected %s with a one-line message", g.name, o, err, g.wantCode)
		}
	}
	// A command without a usable id cannot be answered: it is dead-lettered.
	noID := nats.NewMsg(events.CommandSubject("web", events.CmdDeploy))
	noID.Data = []byte("\x80")
	if _, err := b.js.PublishMsg(ctx, noID); err != nil {
		t.Fatal(err)
	}
	// The processor carries on.
	if o := b.execute(t, deploy("web")); o.Status != events.OutcomeAccepted {
		t.Fatalf("after garbage: %+v", o)
	}
	stream, err := b.js.Stream(ctx, commandbus.DeadLetterStreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(len(garbage) + 1); info.State.Msgs != want {
		t.Fatalf("dead letters = %d, want %d", info.State.Msgs, want)
	}
	last, err := stream.GetLastMsgForSubject(ctx, events.DeadLetterSubject)
	if err != nil {
		t.Fatal(err)
	}
	if reason := last.Header.Get(events.HeaderDeadLetter); !strings.Contains(reason, "UUID") {
		t.Fatalf("dead letter reason %q", reason)
	}
}

func TestClientRefusesUnsafeAppNames(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	for _, app := range []string{"", "*", ">", "a.b", "a b", strings.Repeat("x", 300)} {
		err := b.client.Send(testContext(t), deploy(app))
		var invalid *events.InvalidNameError
		if !errors.As(err, &invalid) {
			t.Errorf("app %q: err = %v, want *InvalidNameError", app, err)
		}
	}
}

// Two processors with their own caches race on one app: every command is
// applied exactly once and the app's history has no gaps or duplicates.
func TestRacingProcessorsLoseNoUpdate(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	ctx := testContext(t)
	const perProcessor = 15
	var wg sync.WaitGroup
	revisions := make(chan string, 2*perProcessor)
	for range 2 {
		p, err := processor.New(processor.Config{Verifier: testsupport.TrustActor{}, NATSURL: b.srv.ClientURL(), JetStream: b.js, Store: b.store})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for range perProcessor {
				o, _, err := p.Process(ctx, deploy("race"))
				if err != nil || o.Status != events.OutcomeAccepted {
					t.Errorf("outcome %+v, err %v", o, err)
					return
				}
				revisions <- o.RevisionID
			}
		})
	}
	wg.Wait()
	close(revisions)
	history, err := b.store.Load(ctx, "race", 0)
	if err != nil {
		t.Fatal(err)
	}
	state := aggregates.Fold("race", history)
	for id := range revisions {
		if _, ok := state.Revisions[id]; !ok {
			t.Errorf("revision %s was acknowledged but is not stored", id)
		}
	}
	if len(history) != 2*perProcessor || len(state.Revisions) != 2*perProcessor {
		t.Fatalf("stored %d events, %d revisions; want %d", len(history), len(state.Revisions), 2*perProcessor)
	}
}

// A processor whose cache another processor has moved past must not refuse
// a command on the stale state: refusals are checked against the log.
func TestRefusalIsNotDecidedOnAStaleCache(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	ctx := testContext(t)
	newProcessor := func() *processor.Processor {
		p, err := processor.New(processor.Config{Verifier: testsupport.TrustActor{}, NATSURL: b.srv.ClientURL(), JetStream: b.js, Store: b.store})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	first, second := newProcessor(), newProcessor()
	deployed, _, err := second.Process(ctx, deploy("stale"))
	if err != nil || deployed.Status != events.OutcomeAccepted {
		t.Fatalf("deploy: %+v %v", deployed, err)
	}
	done, _, err := first.Process(ctx, events.NewCommand("stale", events.CompleteDeploy{RevisionID: deployed.RevisionID}, alice))
	if err != nil || done.Status != events.OutcomeAccepted {
		t.Fatalf("complete deploy: %+v %v", done, err)
	}
	// second still believes the app has no current revision.
	o, _, err := second.Process(ctx, events.NewCommand("stale", events.Suspend{}, alice))
	if err != nil || o.Status != events.OutcomeAccepted {
		t.Fatalf("suspend on a stale cache = %+v, %v; want accepted", o, err)
	}
}

// A message on an app's subjects that is no event at all (no event type:
// stored by something else) is skipped, and the app carries on.
func TestMessageThatIsNoEventIsSkipped(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	b.startProcessor(t)
	ctx := testContext(t)
	if o := b.execute(t, deploy("web")); o.Status != events.OutcomeAccepted {
		t.Fatalf("deploy: %+v", o)
	}
	junk := nats.NewMsg(events.EventSubjectPrefix + "web.junk")
	junk.Data = []byte(`{"stream":"REVLINE_COMMANDS","seq":6}`) // a JetStream ack, say
	if _, err := b.js.PublishMsg(ctx, junk); err != nil {
		t.Fatal(err)
	}
	if o := b.execute(t, deploy("web")); o.Status != events.OutcomeAccepted {
		t.Fatalf("command for the app after the junk: %+v", o)
	}
}

// An event this build cannot decode in an app's history makes every
// command for that app a final rejection, at once; other apps carry on.
func TestUnreadableHistoryRefusesTheAppsCommandsAndOthersFlow(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	b.startProcessor(t)
	ctx := testContext(t)
	if o := b.execute(t, deploy("broken")); o.Status != events.OutcomeAccepted {
		t.Fatalf("deploy: %+v", o)
	}
	unreadable := nats.NewMsg(events.EventSubject("broken", events.TypeRevisionCreated))
	unreadable.Header.Set(events.HeaderEventType, events.TypeRevisionCreated)
	unreadable.Header.Set(events.HeaderSchemaVersion, "99") // from a newer Revline
	unreadable.Data = []byte{0x80}
	if _, err := b.js.PublishMsg(ctx, unreadable); err != nil {
		t.Fatal(err)
	}
	cmd := deploy("broken")
	o := b.execute(t, cmd)
	if o.Status != events.OutcomeRejected || o.Code != events.CodeAppHistoryUnreadable || strings.Contains(o.Message, "\n") {
		t.Fatalf("command for the app with an unreadable event in its history: %+v", o)
	}
	if o := b.execute(t, deploy("healthy")); o.Status != events.OutcomeAccepted {
		t.Fatalf("another app after it: %+v", o)
	}
	// The rejection is final: a resend gets it again.
	again := b.execute(t, cmd)
	if again.Status != events.OutcomeRejected || again.Code != events.CodeAppHistoryUnreadable {
		t.Fatalf("resent: %+v", again)
	}
}

// Outcomes are written once: a second, different outcome for the same
// command id, under any key, is refused and the first one is reported
// instead.
func TestOutcomeLogKeepsTheFirstOutcome(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	ctx := testContext(t)
	log := commandbus.NewOutcomeLog(b.js)
	id := uuid.NewString()
	if _, found, err := log.Lookup(ctx, id); err != nil || found {
		t.Fatalf("lookup before anything was recorded: found %v, %v", found, err)
	}
	first := events.Outcome{CommandID: id, App: "web", CommandType: events.CmdScale, Status: events.OutcomeNoOp, Code: aggregates.CodeNothingToChange, Message: "nothing to change"}
	if stored, recorded, err := log.Record(ctx, first, "alice", events.ContentTypeJSON, 0); err != nil || !recorded || stored != first {
		t.Fatalf("first record: %+v, %v, %v", stored, recorded, err)
	}
	second := events.Outcome{CommandID: id, App: "web", CommandType: events.CmdScale, Status: events.OutcomeAccepted, FirstSequence: 9, LastSequence: 9}
	stored, recorded, err := log.Record(ctx, second, "mallory", events.ContentTypeMsgpack, 0)
	if err != nil || recorded || stored != first {
		t.Fatalf("second record: %+v, recorded %v, %v; want the first outcome back", stored, recorded, err)
	}
	if got, found, err := log.Lookup(ctx, id); err != nil || !found || got != first {
		t.Fatalf("lookup: %+v, %v, %v", got, found, err)
	}
	if n := outcomesStored(t, b, events.OutcomeSubject("mallory", id)); n != 0 {
		t.Fatalf("%d outcomes stored under the second key", n)
	}
}

// outcomesStored counts the outcomes stored on subject.
func outcomesStored(t *testing.T, b *bus, subject string) int {
	t.Helper()
	stream, err := b.js.Stream(testContext(t), commandbus.OutcomeStreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(testContext(t), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return int(info.State.Subjects[subject])
}

// An outcome recorded before outcomes were per key is still a command's
// outcome: its command id is not decided again.
func TestOutcomeLogReadsLegacyOutcomes(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	ctx := testContext(t)
	id := uuid.NewString()
	legacy := events.Outcome{CommandID: id, App: "web", CommandType: events.CmdScale, Status: events.OutcomeNoOp, Code: aggregates.CodeNothingToChange, Message: "nothing to change"}
	msg, err := events.OutcomeMsg(legacy, "", events.ContentTypeJSON)
	if err != nil {
		t.Fatal(err)
	}
	msg.Subject = events.LegacyOutcomeSubject(id)
	if _, err := b.js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	log := commandbus.NewOutcomeLog(b.js)
	if got, found, err := log.Lookup(ctx, id); err != nil || !found || got != legacy {
		t.Fatalf("lookup: %+v, %v, %v; want the legacy outcome", got, found, err)
	}
}

// panickingStore panics when it loads app "boom": a bug in the processor's
// path, as a test can cause one.
type panickingStore struct{ *events.JetStreamStore }

func (s panickingStore) Load(ctx context.Context, app string, after uint64) ([]events.Envelope, error) {
	if app == "boom" {
		panic("boom")
	}
	return s.JetStreamStore.Load(ctx, app, after)
}

// Append of app "late-boom" stores the events, then panics: the processor
// fails after its command took effect.
func (s panickingStore) Append(ctx context.Context, app string, expected uint64, evs []events.Envelope) (events.AppendResult, error) {
	res, err := s.JetStreamStore.Append(ctx, app, expected, evs)
	if app == "late-boom" && err == nil {
		panic("late boom")
	}
	return res, err
}

// A command the processor panics on still gets an outcome (and a dead
// letter), so that its client does not wait in vain; others carry on.
func TestCommandThatPanicsIsAnswered(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	p, err := processor.New(processor.Config{Verifier: testsupport.TrustActor{}, NATSURL: b.srv.ClientURL(), JetStream: b.js, Store: panickingStore{b.store}})
	if err != nil {
		t.Fatal(err)
	}
	runProcessor(t, p)
	o := b.execute(t, deploy("boom"))
	if o.Status != events.OutcomeRejected || o.Code != events.CodeInternalError || !strings.Contains(o.Message, "boom") {
		t.Fatalf("outcome of a command the processor panicked on: %+v", o)
	}
	if o := b.execute(t, deploy("fine")); o.Status != events.OutcomeAccepted {
		t.Fatalf("the next command: %+v", o)
	}
	// A panic after the append: the command took effect, and says so.
	late := b.execute(t, deploy("late-boom"))
	history, err := b.store.Load(testContext(t), "late-boom", 0)
	if err != nil || len(history) != 1 {
		t.Fatalf("late-boom history: %d events, %v", len(history), err)
	}
	created := history[0].Event.(events.RevisionCreated)
	if late.Status != events.OutcomeAccepted || late.RevisionID != created.RevisionID || late.LastSequence != history[0].Sequence {
		t.Fatalf("outcome of a command that took effect before the panic: %+v (stored %s at %d)", late, created.RevisionID, history[0].Sequence)
	}
}

// A command id (idempotency key) reused for a different command is
// refused, whether JetStream's dedupe window drops it (the client tells)
// or the processor sees it (it tells): the first command's outcome stands
// and the second has no effect.
func TestReusedIdempotencyKeyIsRefused(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	p := b.startProcessor(t)
	first := deploy("web")
	if o := b.execute(t, first); o.Status != events.OutcomeAccepted {
		t.Fatalf("first: %+v", o)
	}
	other := deploy("web")
	other.Command = events.Deploy{Command: "something else"}
	other.CommandID = first.CommandID
	// Within the dedupe window: JetStream drops it, the client compares.
	if o := b.execute(t, other); o.Status != events.OutcomeRejected || o.Code != events.CodeIdempotencyKeyReused {
		t.Fatalf("reused key, client side: %+v", o)
	}
	// Past it: the processor sees the command and compares.
	o, appended, err := p.Process(testContext(t), other)
	if err != nil || appended != 0 || o.Status != events.OutcomeRejected || o.Code != events.CodeIdempotencyKeyReused {
		t.Fatalf("reused key, processor side: %+v, %d appended, %v", o, appended, err)
	}
	// The same command again is still its first outcome, whoever sends
	// it: a command id has one outcome, under any key.
	again, _, err := p.Process(testContext(t), first)
	if err != nil || again.Status != events.OutcomeAccepted || !again.Duplicate {
		t.Fatalf("the first command again: %+v %v", again, err)
	}
	first.Key, other.Key = "mallory", "mallory"
	if again, _, err := p.Process(testContext(t), first); err != nil || again.Status != events.OutcomeAccepted || !again.Duplicate {
		t.Fatalf("the first command again, under another key: %+v %v", again, err)
	}
	if o, _, err := p.Process(testContext(t), other); err != nil || o.Code != events.CodeIdempotencyKeyReused {
		t.Fatalf("reused key, under another key: %+v, %v", o, err)
	}
	if n := outcomesStored(t, b, events.OutcomeSubject("mallory", first.CommandID)); n != 0 {
		t.Fatalf("%d outcomes stored under the other key", n)
	}
	history, err := b.store.Load(testContext(t), "web", 0)
	if err != nil || len(history) != 1 {
		t.Fatalf("%d events stored (%v), want the first deploy's only", len(history), err)
	}
}

// partitionOf is JetStream's partition mapping of an app name, which
// REVLINE_COMMANDS applies: FNV-1a, modulo the number of partitions.
func partitionOf(app string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(app))
	return int(h.Sum32() % commandbus.Partitions)
}

// appInPartitionOf returns another app name whose commands share app's
// partition, so that they wait behind app's.
func appInPartitionOf(t *testing.T, app string) string {
	t.Helper()
	for i := range 10 * commandbus.Partitions {
		other := fmt.Sprintf("other%d", i)
		if partitionOf(other) == partitionOf(app) {
			return other
		}
	}
	t.Fatalf("no app name shares the partition of %q", app)
	return ""
}

// A processor that verifies nothing is never made by accident: the
// Verifier is required.
func TestProcessorNeedsAVerifier(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	_, err := processor.New(processor.Config{NATSURL: b.srv.ClientURL(), JetStream: b.js, Store: b.store})
	if err == nil || !strings.Contains(err.Error(), "Verifier is required") {
		t.Errorf("New without a Verifier: %v", err)
	}
}
