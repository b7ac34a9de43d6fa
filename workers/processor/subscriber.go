package processor

import (
	"context"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill"
	wmjetstream "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/jetstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
)

// CommandTopic is the Watermill topic the processor subscribes to: the
// command stream.
const CommandTopic = commandbus.CommandStreamName

// Metadata keys the unmarshaler adds to every Watermill message.
const (
	metadataSubject  = "Revline-Subject"
	metadataSequence = "Revline-Stream-Sequence"
)

func newSubscriber(cfg Config, logger watermill.LoggerAdapter) (*wmjetstream.Subscriber, error) {
	nc, err := nats.Connect(cfg.NATSURL, append([]nats.Option{nats.Name("revline-command-processor")}, cfg.NATSOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("processor: connect to %s: %w", cfg.NATSURL, err)
	}
	sub, err := wmjetstream.NewSubscriber(wmjetstream.SubscriberConfig{
		Conn:                nc,
		Logger:              logger,
		AckWaitTimeout:      cfg.AckWait,
		ResourceInitializer: durableConsumer(cfg),
		Unmarshaler:         unmarshaler{},
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("processor: subscriber: %w", err)
	}
	return sub, nil
}

// durableConsumer creates (or joins) the processor's durable consumer on
// the command stream. Replicas share it, so each command is handled once.
func durableConsumer(cfg Config) wmjetstream.ResourceInitializer {
	return func(ctx context.Context, js jetstream.JetStream, topic string) (jetstream.Consumer, func(context.Context, watermill.LoggerAdapter), error) {
		consumer, err := js.CreateOrUpdateConsumer(ctx, topic, jetstream.ConsumerConfig{
			Durable:       ConsumerName,
			Description:   "Revline command processor",
			FilterSubject: events.CommandSubjectPrefix + ">",
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       cfg.AckWait,
			MaxDeliver:    10,
			MaxAckPending: 1,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("processor: consumer %s on %s: %w", ConsumerName, topic, err)
		}
		return consumer, nil, nil
	}
}

// unmarshaler keeps every header and adds the subject and the stream
// sequence, which the default Watermill unmarshaler drops. It never fails:
// a message it could not pass on would be lost.
type unmarshaler struct{}

func (unmarshaler) Unmarshal(msg jetstream.Msg) (*message.Message, error) {
	wm := message.NewMessage(watermill.NewUUID(), msg.Data())
	for key, values := range msg.Headers() {
		if len(values) > 0 {
			wm.Metadata.Set(key, values[0])
		}
	}
	wm.Metadata.Set(metadataSubject, msg.Subject())
	if meta, err := msg.Metadata(); err == nil {
		wm.Metadata.Set(metadataSequence, strconv.FormatUint(meta.Sequence.Stream, 10))
	}
	return wm, nil
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
		out.Header.Del(events.HeaderMsgID) // the original id must not dedupe the dead letter
		out.Header.Set(events.HeaderDeadLetter, m.Metadata.Get("reason_poisoned"))
		if _, err := d.js.PublishMsg(m.Context(), out); err != nil {
			return fmt.Errorf("dead letter: %w", err)
		}
	}
	return nil
}

func (deadLetterPublisher) Close() error { return nil }
