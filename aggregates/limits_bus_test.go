package aggregates_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/events/embedded"
	"github.com/revline/revline/events/embedded/embeddedtest"
)

// The bus must agree with the decider: the command stream's message limit
// and the embedded server's max payload must let through every command the
// decider accepts, and refuse what is far beyond.

// largestCommandMsg is the largest valid command, with the headers a client
// sends, encoded in contentType.
func largestCommandMsg(t *testing.T, contentType string) *nats.Msg {
	t.Helper()
	env := events.NewCommand(appName, largestDeploy(), events.Metadata{
		Actor:         "ci@" + strings.Repeat("build-host-", 10),
		CorrelationID: "01900000-0000-7000-b000-000000000001",
	})
	env.ContentType = contentType
	msg, err := events.CommandMsg(env)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// msgSize is the size JetStream counts against a stream's MaxMsgSize:
// headers and payload.
func msgSize(t *testing.T, msg *nats.Msg) int {
	t.Helper()
	return msg.Size() - len(msg.Subject) - len(msg.Reply)
}

func TestTheLargestValidCommandFitsTheCommandStream(t *testing.T) {
	t.Parallel()
	if _, err := aggregates.Decide(aggregates.App{Name: appName}, largestDeploy(), t0); err != nil {
		t.Fatalf("the largest deploy is not valid: %v", err)
	}
	for _, ct := range []string{events.ContentTypeMsgpack, events.ContentTypeJSON} {
		size := msgSize(t, largestCommandMsg(t, ct))
		t.Logf("largest valid command in %s: %d bytes with headers (stream limit %d)", ct, size, commandbus.MaxCommandMsgSize)
		// Room for a longer actor, correlation id or other headers.
		if size > commandbus.MaxCommandMsgSize*3/4 {
			t.Errorf("the largest valid command takes %d bytes in %s, too close to the command stream's limit of %d", size, ct, commandbus.MaxCommandMsgSize)
		}
	}
	if commandbus.MaxCommandMsgSize >= embedded.MaxPayload {
		t.Errorf("the command stream's limit (%d) is not below the embedded server's max payload (%d): JetStream's refusal would never be seen", commandbus.MaxCommandMsgSize, embedded.MaxPayload)
	}
}

func TestTheBusRefusesOversizedCommandsAtPublish(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.Start(t)
	nc, js := embeddedtest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := commandbus.EnsureStreams(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	if got := nc.MaxPayload(); got != embedded.MaxPayload {
		t.Fatalf("the embedded server's max payload is %d, want %d", got, embedded.MaxPayload)
	}

	for _, ct := range []string{events.ContentTypeMsgpack, events.ContentTypeJSON} {
		if _, err := js.PublishMsg(ctx, largestCommandMsg(t, ct)); err != nil {
			t.Fatalf("publish the largest valid command in %s: %v", ct, err)
		}
	}

	// Just over the stream's limit: JetStream refuses it, stores nothing.
	over := largestCommandMsg(t, events.ContentTypeJSON)
	over.Data = []byte(`{"command":"` + strings.Repeat("x", commandbus.MaxCommandMsgSize) + `"}`)
	stream, err := js.Stream(ctx, commandbus.CommandStreamName)
	if err != nil {
		t.Fatal(err)
	}
	before, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = js.PublishMsg(ctx, over)
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamMessageExceedsMaximum {
		t.Fatalf("publish of a %d-byte command: error %v; want JetStream's %d (message size exceeds maximum allowed)", len(over.Data), err, jetstream.JSErrCodeStreamMessageExceedsMaximum)
	}
	after, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.State.Msgs != before.State.Msgs {
		t.Fatalf("the refused command was stored: %d messages, then %d", before.State.Msgs, after.State.Msgs)
	}

	// The attacker's 7 MiB message never leaves the client: it is over the
	// server's max payload.
	huge := largestCommandMsg(t, events.ContentTypeJSON)
	huge.Data = []byte(`{"command":"` + strings.Repeat("x", 7<<20) + `"}`)
	if _, err := js.PublishMsg(ctx, huge); !errors.Is(err, nats.ErrMaxPayload) {
		t.Fatalf("publish of a 7 MiB command: error %v; want %v", err, nats.ErrMaxPayload)
	}
}
