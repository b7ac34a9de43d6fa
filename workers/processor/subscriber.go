package processor

import (
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/workers/wmnats"
)

// CommandTopic is the Watermill topic the processor subscribes to: the
// command stream.
const CommandTopic = commandbus.CommandStreamName

// newSubscriber returns a subscriber to the durable consumer named
// durable, which takes the commands stored on filter.
func newSubscriber(cfg Config, logger watermill.LoggerAdapter, durable, filter string) (*wmnats.Subscriber, error) {
	return wmnats.NewSubscriber(wmnats.SubscriberConfig{
		NATSURL:     cfg.NATSURL,
		NATSOptions: cfg.NATSOptions,
		Logger:      logger,
		// MaxAckPending 1 keeps the consumer's commands in order; replicas
		// share the consumer, so each command is handled by one of them,
		// and no two of them decide commands of one app at once. A command
		// is redelivered until it is processed (MaxDeliver unlimited): one
		// that can never be is answered and dead-lettered by the handler,
		// so only an outage makes a command wait, and it never disappears.
		Consumer: jetstream.ConsumerConfig{
			Durable:       durable,
			Description:   "Revline command processor",
			FilterSubject: filter,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       cfg.AckWait,
			MaxDeliver:    -1,
			MaxAckPending: 1,
		},
		// Each attempt is bounded by ProcessTimeout and kept in progress;
		// Watermill must wait for every retry of the handler.
		HandlerTimeout: (handlerRetries+1)*cfg.ProcessTimeout + handlerRetries*handlerMaxRetryInterval,
		NakDelay:       redeliveryDelay{},
	})
}

// redeliveryDelay spaces out the redeliveries of a command whose handler
// failed (the store is unreachable): 1s, 2s, 4s, ... up to 30s.
type redeliveryDelay struct{}

// WaitTime implements the Watermill JetStream subscriber's Delay.
func (redeliveryDelay) WaitTime(delivered uint64) time.Duration {
	const first, most = time.Second, 30 * time.Second
	if delivered > 5 {
		return most
	}
	return min(first<<max(delivered, 1)/2, most)
}

// deadLetterPublisher publishes poisoned commands to the dead-letter
// subject with their original headers and the reason.
type deadLetterPublisher struct {
	js jetstream.JetStream
}

func (d deadLetterPublisher) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		out := nats.NewMsg(topic)
		out.Data = m.Payload
		for key, value := range m.Metadata {
			out.Header.Set(key, value)
		}
		// NATS' own headers (the message id, expectations a client set) must
		// not make JetStream refuse or dedupe the dead letter.
		for key := range out.Header {
			if strings.HasPrefix(key, "Nats-") || key == wmnats.MetadataAckReply {
				out.Header.Del(key)
			}
		}
		out.Header.Set(events.HeaderDeadLetter, m.Metadata.Get("reason_poisoned"))
		if _, err := d.js.PublishMsg(m.Context(), out); err != nil {
			return fmt.Errorf("dead letter: %w", err)
		}
	}
	return nil
}

func (deadLetterPublisher) Close() error { return nil }
