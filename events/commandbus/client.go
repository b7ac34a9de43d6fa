package commandbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/events"
)

// Client publishes commands and waits for their outcomes: those of its
// signer's key (events.OutcomeSubject), the only ones its token may read.
type Client struct {
	js     jetstream.JetStream
	signer *events.Signer
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithSigner signs every command the client sends with s: `revline serve`
// refuses unsigned commands (docs/bus.md §3).
func WithSigner(s *events.Signer) ClientOption {
	return func(c *Client) { c.signer = s }
}

// NewClient returns a Client on js. The bus streams must exist (the
// server creates them; EnsureStreams does too).
func NewClient(js jetstream.JetStream, opts ...ClientOption) *Client {
	c := &Client{js: js}
	for _, opt := range opts {
		opt(c)
	}
	return c
}

// Send publishes cmd and returns once JetStream has stored it. The command
// is processed even if no processor runs yet.
func (c *Client) Send(ctx context.Context, cmd events.CommandEnvelope) error {
	msg, err := c.message(cmd)
	if err != nil {
		return err
	}
	_, err = c.publish(ctx, msg, cmd.Type)
	return err
}

// message encodes cmd, signed if the client signs.
func (c *Client) message(cmd events.CommandEnvelope) (*nats.Msg, error) {
	msg, err := events.CommandMsg(cmd) // checks the command id before it becomes a subject
	if err != nil || c.signer == nil {
		return msg, err
	}
	return msg, c.signer.Sign(msg)
}

// key is the key the client's outcomes are published under: its signer's,
// events.NoOutcomeKey for a client that does not sign.
func (c *Client) key() string {
	if c.signer == nil {
		return events.NoOutcomeKey
	}
	return c.signer.Key
}

// ErrNoOutcomeYet is wrapped by the error of a wait for an outcome that
// ended first (with the context's error): no server decided the command
// in time, which does not mean it never will.
var ErrNoOutcomeYet = errors.New("no outcome yet")

// ErrCommandTooLarge is wrapped by the error of a command larger than
// the command stream takes (MaxCommandMsgSize) or than a NATS message may
// be: it is refused before it is stored.
var ErrCommandTooLarge = errors.New("command too large")

func (c *Client) publish(ctx context.Context, msg *nats.Msg, commandType string) (*jetstream.PubAck, error) {
	ack, err := c.js.PublishMsg(ctx, msg)
	if errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum) || errors.Is(err, nats.ErrMaxPayload) {
		return nil, fmt.Errorf("send %s command: %w: %d bytes with its headers, at most %d", commandType, ErrCommandTooLarge, len(msg.Data)+headerBytes(msg.Header), MaxCommandMsgSize)
	}
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		return nil, fmt.Errorf("send %s command: no Revline server is listening on this NATS (is `revline serve` running?): %w", commandType, err)
	}
	if err != nil {
		return nil, fmt.Errorf("send %s command: %w", commandType, err)
	}
	return ack, nil
}

// Execute sends cmd and waits for its outcome until ctx ends. A rejected
// command is returned as an Outcome, not as an error: err is for failures
// to reach the bus or to hear back in time.
func (c *Client) Execute(ctx context.Context, cmd events.CommandEnvelope) (events.Outcome, error) {
	msg, err := c.message(cmd)
	if err != nil {
		return events.Outcome{}, err
	}
	// Subscribe before publishing so the outcome cannot slip past.
	sub, err := c.subscribe(cmd.CommandID)
	if err != nil {
		return events.Outcome{}, err
	}
	defer sub.unsubscribe()
	ack, err := c.publish(ctx, msg, cmd.Type)
	if err != nil {
		return events.Outcome{}, err
	}
	// JetStream drops a command id it stored in its duplicate window: the
	// answer is then the outcome stored the first time, under this
	// client's key if it sent it then (one that another token sent first
	// has its outcome under that token's key, which this one cannot read:
	// the wait ends with ErrNoOutcomeYet). A new command's outcome cannot
	// be stored yet, so the first look is at the subscription.
	o, err := c.await(ctx, cmd.CommandID, sub, ack.Duplicate)
	if errors.Is(err, ErrNoOutcomeYet) {
		// Stored: a server decides it when one runs, whoever waits.
		return events.Outcome{}, fmt.Errorf("%w; the command is stored (sequence %d) and will be decided when a Revline server runs", err, ack.Sequence)
	}
	if err != nil {
		return events.Outcome{}, err
	}
	if !o.Answers(cmd) {
		// The id was another command's: its outcome is not this one's.
		return events.ReusedKey(cmd), nil
	}
	o.Duplicate = o.Duplicate || ack.Duplicate
	return o, nil
}

// Await waits for the outcome of a command sent earlier, which may already
// have been published.
func (c *Client) Await(ctx context.Context, commandID string) (events.Outcome, error) {
	sub, err := c.subscribe(commandID)
	if err != nil {
		return events.Outcome{}, err
	}
	defer sub.unsubscribe()
	return c.await(ctx, commandID, sub, true)
}

// outcomeSub is a subscription to one command's outcome subject.
type outcomeSub struct {
	sub  *nats.Subscription
	msgs chan *nats.Msg
}

// outcomeSubBuffer is how many outcome messages a subscription holds: a
// command's outcome is published once, or twice when a stalled processor
// answers it again (docs/bus.md §9). A subscription's default buffer (64k
// messages) would be allocated, and cleared, for every command.
const outcomeSubBuffer = 4

func (c *Client) subscribe(commandID string) (outcomeSub, error) {
	msgs := make(chan *nats.Msg, outcomeSubBuffer)
	sub, err := c.js.Conn().ChanSubscribe(events.OutcomeSubject(c.key(), commandID), msgs)
	if err != nil {
		return outcomeSub{}, fmt.Errorf("subscribe to outcome: %w", err)
	}
	if err := c.js.Conn().Flush(); err != nil {
		_ = sub.Unsubscribe()
		return outcomeSub{}, fmt.Errorf("subscribe to outcome: %w", err)
	}
	return outcomeSub{sub: sub, msgs: msgs}, nil
}

func (s outcomeSub) unsubscribe() { _ = s.sub.Unsubscribe() }

// storedOutcomeCheck is how often a waiting client also looks for the
// outcome in its stream. On a cluster, a subscription takes a moment to
// reach every server: an outcome published meanwhile is only in the stream.
const storedOutcomeCheck = time.Second

func (c *Client) await(ctx context.Context, commandID string, sub outcomeSub, lookFirst bool) (events.Outcome, error) {
	check := time.NewTimer(storedOutcomeCheck)
	defer check.Stop()
	noOutcomeYet := func() (events.Outcome, error) {
		return events.Outcome{}, fmt.Errorf("%w for command %s (%w)", ErrNoOutcomeYet, commandID, ctx.Err())
	}
	for look := lookFirst; ; look = true {
		if look {
			o, found, err := ownOutcome(ctx, c.js.Conn(), c.key(), commandID)
			switch {
			case err != nil && ctx.Err() != nil:
				return noOutcomeYet() // the wait ended during the look
			case err != nil || found:
				return o, err
			}
		}
		check.Reset(storedOutcomeCheck)
		select {
		case msg := <-sub.msgs:
			return events.DecodeOutcome(msg.Header, msg.Data)
		case <-ctx.Done():
			return noOutcomeYet()
		case <-check.C:
		}
	}
}

// headerBytes is about what h takes on the wire.
func headerBytes(h nats.Header) int {
	n := 0
	for key, values := range h {
		for _, v := range values {
			n += len(key) + len(v) + 4
		}
	}
	return n
}
