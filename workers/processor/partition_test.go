package processor_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/events/embedded/embeddedtest"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/workers/processor"
)

// A data dir from before the command stream was partitioned holds
// commands stored under the subject they were published on. After the
// upgrade they are decided first, in order, and the app's commands stored
// after the upgrade (in its partition) wait for them.
func TestCommandsStoredBeforePartitioningAreDecidedFirst(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.Start(t)
	_, js := embeddedtest.Connect(t, srv)
	ctx := testContext(t)
	// The stream as an older version made it: no partitions.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: commandbus.CommandStreamName, Subjects: []string{events.CommandSubjectPrefix + ">"},
		Storage: jetstream.FileStorage, MaxAge: commandbus.CommandRetention, Duplicates: commandbus.DuplicateWindow,
	}); err != nil {
		t.Fatal(err)
	}
	client := commandbus.NewClient(js)
	numbered := func(n int) events.CommandEnvelope {
		return events.NewCommand("legacy", events.Deploy{Command: "serve", Message: fmt.Sprint(n)}, alice)
	}
	var sent []events.CommandEnvelope
	send := func(cmd events.CommandEnvelope) {
		t.Helper()
		if err := client.Send(ctx, cmd); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, cmd)
	}
	for n := 1; n <= 5; n++ {
		send(numbered(n))
	}

	// The upgrade: the stream is partitioned, and more commands come.
	if err := commandbus.EnsureStreams(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	for n := 6; n <= 10; n++ {
		send(numbered(n))
	}
	stream, err := js.Stream(ctx, commandbus.CommandStreamName)
	if err != nil {
		t.Fatal(err)
	}
	if first, err := stream.GetMsg(ctx, 1); err != nil || first.Subject != events.CommandSubject("legacy", events.CmdDeploy) {
		t.Fatalf("the first command is stored as %+v (%v), want its published subject", first, err)
	}
	if last, err := stream.GetLastMsgForSubject(ctx, commandbus.PartitionSubjectPrefix+">"); err != nil || last.Subject != commandbus.PartitionSubjectPrefix+fmt.Sprint(partitionOf("legacy"))+".legacy.deploy" {
		t.Fatalf("the last command is stored as %+v (%v), want it in the app's partition", last, err)
	}

	store, err := events.NewJetStreamStore(ctx, events.JetStreamStoreConfig{JetStream: js})
	if err != nil {
		t.Fatal(err)
	}
	p, err := processor.New(processor.Config{Verifier: testsupport.TrustActor{}, NATSURL: srv.ClientURL(), JetStream: js, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	runProcessor(t, p)
	for _, cmd := range sent {
		if o, err := client.Await(ctx, cmd.CommandID); err != nil || o.Status != events.OutcomeAccepted {
			t.Fatalf("%s: %+v, %v", cmd.Type, o, err)
		}
	}
	history, err := store.Load(ctx, "legacy", 0)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, env := range history {
		if created, ok := env.Event.(events.RevisionCreated); ok {
			order = append(order, created.Message)
		}
	}
	if want := []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}; !slices.Equal(order, want) {
		t.Fatalf("revisions created in the order %v, want %v", order, want)
	}
}
