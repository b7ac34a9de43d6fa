// Package wmnats connects Watermill to JetStream the way Revline's
// consumers need it: a named durable consumer (never Watermill's default
// ephemeral one, which would deliver everything again after a restart), a
// connection of its own, and messages that keep their subject and stream
// sequence.
package wmnats

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmjetstream "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/jetstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/events"
)

// Metadata keys added to every message.
const (
	MetadataSubject  = "Revline-Subject"
	MetadataSequence = "Revline-Stream-Sequence"
	// MetadataAckReply is the subject JetStream takes acknowledgements of
	// the message on; KeepInProgress sends progress on it.
	MetadataAckReply = "Revline-Ack-Reply"
	// MetadataStoredAt is when JetStream stored the message (RFC 3339),
	// from its metadata, never from a header the publisher set.
	MetadataStoredAt = "Revline-Stored-At"
)

// SubscriberConfig configures a durable subscriber.
type SubscriberConfig struct {
	// NATSURL and NATSOptions open the subscriber's own connection:
	// Watermill drains it on Close.
	NATSURL     string
	NATSOptions []nats.Option
	// Consumer is the durable consumer; its Durable name is required and
	// is a stable API (renaming it replays the stream).
	Consumer jetstream.ConsumerConfig
	Logger   watermill.LoggerAdapter
	// HandlerTimeout is how long a handler may take to ack or nack a
	// message before Watermill gives up on it (JetStream then redelivers
	// it). Default: the consumer's AckWait, or 30s. Set it above AckWait
	// when handlers keep their messages in progress (KeepInProgress).
	HandlerTimeout time.Duration
	// NakDelay, optional, is how long JetStream waits before it redelivers
	// a message its handler failed; default at once.
	NakDelay wmjetstream.Delay
}

// Subscriber is a Watermill JetStream subscriber on a connection of its
// own, which Run drains before it closes the router.
type Subscriber struct {
	*wmjetstream.Subscriber
	nc *nats.Conn
	// connClosed is closed once nc is closed, in particular once a drain
	// has handed over every message already delivered.
	connClosed chan struct{}
}

// drain stops deliveries: it drains the subscriber's connection, whose
// messages already delivered are still handed to the router, and waits
// until it is closed (at the latest after the connection's drain timeout).
func (s *Subscriber) drain() {
	if err := s.nc.Drain(); err == nil {
		<-s.connClosed
	}
}

// Close drains the connection if Run has not, then closes the Watermill
// subscriber.
func (s *Subscriber) Close() error {
	s.drain()
	if err := s.Subscriber.Close(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		return err
	}
	return nil
}

// NewSubscriber returns a Watermill subscriber whose topic is a stream
// name and which consumes through cfg.Consumer. The connection it opens
// has a closed handler of its own: one in cfg.NATSOptions is ignored.
func NewSubscriber(cfg SubscriberConfig) (*Subscriber, error) {
	if cfg.Consumer.Durable == "" {
		return nil, fmt.Errorf("wmnats: the consumer needs a durable name")
	}
	connClosed := make(chan struct{})
	options := append([]nats.Option{nats.Name(cfg.Consumer.Durable)}, cfg.NATSOptions...)
	options = append(options, nats.ClosedHandler(func(*nats.Conn) { close(connClosed) }))
	nc, err := nats.Connect(cfg.NATSURL, options...)
	if err != nil {
		return nil, fmt.Errorf("%s: connect to NATS: %w", cfg.Consumer.Durable, err)
	}
	sub, err := wmjetstream.NewSubscriber(wmjetstream.SubscriberConfig{
		Conn:                nc,
		Logger:              cfg.Logger,
		AckWaitTimeout:      cmp.Or(cfg.HandlerTimeout, cfg.Consumer.AckWait, 30*time.Second),
		NakDelay:            cfg.NakDelay,
		ResourceInitializer: durable(cfg.Consumer),
		Unmarshaler:         unmarshaler{},
		// A plain ack needs no context: on shutdown the last message's ack
		// is flushed by the connection's drain instead of being dropped
		// with a cancelled context (it would then block a consumer with
		// MaxAckPending 1 until AckWait runs out).
		AckAsync: true,
		// A pull the server loses (seen on a 3-node cluster while a new
		// consumer's leader settles) is made again after two missed
		// heartbeats or at its expiry; nats.go's defaults (5 s, 30 s) let a
		// command wait half a minute.
		ConsumeOptions: []jetstream.PullConsumeOpt{jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat)},
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%s: subscriber: %w", cfg.Consumer.Durable, err)
	}
	return &Subscriber{Subscriber: sub, nc: nc, connClosed: connClosed}, nil
}

// Pull settings of every durable subscriber (see NewSubscriber).
const (
	pullExpiry    = 5 * time.Second
	pullHeartbeat = time.Second
)

func durable(cc jetstream.ConsumerConfig) wmjetstream.ResourceInitializer {
	return func(ctx context.Context, js jetstream.JetStream, stream string) (jetstream.Consumer, func(context.Context, watermill.LoggerAdapter), error) {
		consumer, err := events.EnsureConsumer(ctx, js, stream, cc)
		if err != nil {
			return nil, nil, err
		}
		return consumer, nil, nil
	}
}

// unmarshaler keeps every header and adds the subject and the stream
// sequence, which Watermill's default unmarshaler drops. It never fails:
// the Watermill subscriber cannot pass on a message it could not convert.
type unmarshaler struct{}

func (unmarshaler) Unmarshal(msg jetstream.Msg) (*message.Message, error) {
	wm := message.NewMessage(watermill.NewUUID(), msg.Data())
	for key, values := range msg.Headers() {
		if len(values) > 0 {
			wm.Metadata.Set(key, values[0])
		}
	}
	wm.Metadata.Set(MetadataSubject, msg.Subject())
	wm.Metadata.Set(MetadataAckReply, msg.Reply())
	// A publisher's headers of these names are replaced, never believed.
	wm.Metadata.Set(MetadataSequence, "")
	wm.Metadata.Set(MetadataStoredAt, "")
	if meta, err := msg.Metadata(); err == nil {
		wm.Metadata.Set(MetadataSequence, strconv.FormatUint(meta.Sequence.Stream, 10))
		wm.Metadata.Set(MetadataStoredAt, meta.Timestamp.UTC().Format(time.RFC3339Nano))
	}
	return wm, nil
}

// ackProgress is JetStream's "work in progress" acknowledgement: it
// restarts the message's AckWait.
var ackProgress = []byte("+WPI")

// KeepInProgress is a handler middleware that tells JetStream, every
// interval while the handler runs (retries included, when it is the
// outermost middleware), that the message is still being worked on. The
// consumer's AckWait can then be short, so that a message whose handler
// died with its process is redelivered promptly, while slow work is not
// redelivered under a handler that is still alive.
func KeepInProgress(nc *nats.Conn, interval time.Duration) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			reply := msg.Metadata.Get(MetadataAckReply)
			if reply == "" {
				return h(msg)
			}
			done := make(chan struct{})
			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				ticker := time.NewTicker(interval)
				defer ticker.Stop()
				for {
					select {
					case <-done:
						return
					case <-ticker.C:
						// A lost progress ack only risks a redelivery to
						// another handler while this one still works; the
						// command processor is built to tell (see its decide).
						_ = nc.Publish(reply, ackProgress)
					}
				}
			}()
			defer func() { close(done); <-stopped }()
			return h(msg)
		}
	}
}

// NewRouter returns a Watermill router that logs through logger.
func NewRouter(logger watermill.LoggerAdapter) (*message.Router, error) {
	return message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, logger)
}

// Run runs router, which consumes from subs, until ctx ends; it then
// drains subs while the router still handles what they deliver, closes the
// router, and returns once it has stopped.
//
// The Watermill JetStream subscriber closes its output channel as soon as
// its router closes (or the router's context ends), while a message that
// is still arriving may be sent on it: a data race, and a panic when that
// send is chosen. Messages do arrive while Revline stops (a worker's
// runners report their ends), so the subscribers must stop first.
func Run(ctx context.Context, router *message.Router, subs ...*Subscriber) error {
	done := make(chan struct{})
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		select {
		case <-router.Running():
		case <-done:
			return
		}
		for _, sub := range subs {
			sub.drain()
		}
		_ = router.Close()
	}()
	err := router.Run(context.WithoutCancel(ctx))
	close(done)
	<-closed
	return err
}
