package commandbus

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/events"
)

// Client publishes commands and waits for their outcomes.
type Client struct {
	js jetstream.JetStream
}

// NewClient returns a Client on js. The bus streams must exist (the
// server creates them; EnsureStreams does too).
func NewClient(js jetstream.JetStream) *Client { return &Client{js: js} }

// Send publishes cmd and returns once JetStream has stored it. The command
// is processed even if no processor runs yet.
func (c *Client) Send(ctx context.Context, cmd events.CommandEnvelope) error {
	_, err := c.send(ctx, cmd)
	return err
}

func (c *Client) send(ctx context.Context, cmd events.CommandEnvelope) (*jetstream.PubAck, error) {
	msg, err := events.CommandMsg(cmd)
	if err != nil {
		return nil, err
	}
	ack, err := c.js.PublishMsg(ctx, msg)
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		return nil, fmt.Errorf("send %s command: no Revline server is listening on this NATS (is `revline serve` running?): %w", cmd.Type, err)
	}
	if err != nil {
		return nil, fmt.Errorf("send %s command: %w", cmd.Type, err)
	}
	return ack, nil
}

// Execute sends cmd and waits for its outcome until ctx ends. A rejected
// command is returned as an Outcome, not as an error: err is for failures
// to reach the bus or to hear back in time.
func (c *Client) Execute(ctx context.Context, cmd events.CommandEnvelope) (events.Outcome, error) {
	// Subscribe before publishing so the outcome cannot slip past.
	sub, err := c.js.Conn().SubscribeSync(events.OutcomeSubject(cmd.CommandID))
	if err != nil {
		return events.Outcome{}, fmt.Errorf("subscribe to outcome: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	ack, err := c.send(ctx, cmd)
	if err != nil {
		return events.Outcome{}, err
	}
	if ack.Duplicate {
		// JetStream dropped the command as a duplicate within its window:
		// the processor will not answer again, the stored outcome is the answer.
		o, err := c.await(ctx, cmd.CommandID, sub)
		o.Duplicate = err == nil
		return o, err
	}
	return next(ctx, cmd.CommandID, sub)
}

// Await waits for the outcome of a command sent earlier, which may already
// have been published.
func (c *Client) Await(ctx context.Context, commandID string) (events.Outcome, error) {
	sub, err := c.js.Conn().SubscribeSync(events.OutcomeSubject(commandID))
	if err != nil {
		return events.Outcome{}, fmt.Errorf("subscribe to outcome: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	return c.await(ctx, commandID, sub)
}

func (c *Client) await(ctx context.Context, commandID string, sub *nats.Subscription) (events.Outcome, error) {
	// The outcome may have been stored before we subscribed (Await after a
	// reconnect, or a duplicate command answered at once).
	stored, err := c.js.Stream(ctx, OutcomeStreamName)
	if err != nil {
		return events.Outcome{}, fmt.Errorf("outcome stream: %w", err)
	}
	if raw, err := stored.GetLastMsgForSubject(ctx, events.OutcomeSubject(commandID)); err == nil {
		return events.DecodeOutcome(raw.Header, raw.Data)
	} else if !errors.Is(err, jetstream.ErrMsgNotFound) {
		return events.Outcome{}, fmt.Errorf("read outcome: %w", err)
	}
	return next(ctx, commandID, sub)
}

func next(ctx context.Context, commandID string, sub *nats.Subscription) (events.Outcome, error) {
	msg, err := sub.NextMsgWithContext(ctx)
	if err != nil {
		return events.Outcome{}, fmt.Errorf("no outcome for command %s: %w", commandID, err)
	}
	return events.DecodeOutcome(msg.Header, msg.Data)
}
