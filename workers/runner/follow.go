package runner

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/events"
	"github.com/revline/revline/workers/wmnats"
)

// follow wakes the app of every new event, through the worker's durable
// consumer, until ctx ends. The event's app is read from its headers, so
// the payload is never decoded here.
func (w *Worker) follow(ctx context.Context) error {
	logger := watermill.NewSlogLoggerWithLevelMapping(w.cfg.Logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	sub, err := wmnats.NewSubscriber(wmnats.SubscriberConfig{
		NATSURL:     w.cfg.NATSURL,
		NATSOptions: w.cfg.NATSOptions,
		Logger:      logger,
		Consumer: jetstream.ConsumerConfig{
			Durable:       ConsumerName,
			Description:   "Revline runner worker: wakes the app of each event",
			FilterSubject: events.EventSubjectPrefix + ">",
			AckPolicy:     jetstream.AckExplicitPolicy,
			DeliverPolicy: jetstream.DeliverNewPolicy,
		},
	})
	if err != nil {
		return err
	}
	router, err := wmnats.NewRouter(logger)
	if err != nil {
		return fmt.Errorf("runner worker: router: %w", err)
	}
	router.AddMiddleware(middleware.Recoverer)
	router.AddConsumerHandler(ConsumerName, events.EventStreamName, sub, func(msg *message.Message) error {
		w.Wake(msg.Metadata.Get(events.HeaderApp))
		return nil
	})
	// The consumer only delivers events stored once it exists (DeliverNew
	// when it is first created): wake every app with events again as soon
	// as it does, so that none stored in between goes unnoticed.
	var woke sync.WaitGroup
	stopped := make(chan struct{})
	woke.Go(func() {
		select {
		case <-router.Running():
		case <-stopped:
			return
		}
		apps, err := w.knownApps(ctx)
		if err != nil {
			w.cfg.Logger.Warn("listing apps once following", "error", err)
			return
		}
		for _, app := range apps {
			w.Wake(app)
		}
	})
	err = wmnats.Run(ctx, router, sub)
	close(stopped)
	woke.Wait()
	return err
}
