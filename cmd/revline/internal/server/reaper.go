package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/events"
	"github.com/revline/revline/workers/runner"
	"github.com/revline/revline/workers/webhooks"
)

// maxClientInactivity is the longest a client's consumer of the event
// stream may stay unused before the server deletes it: nats.go's ordered
// consumers ask for 5 minutes.
const maxClientInactivity = 5 * time.Minute

// consumerReaper deletes the consumers of the event stream that clients
// made and that could outlive their token: a token may create consumers
// (eventReads, appEventReads), and NATS permissions cannot see the
// request's body, so it could make a push consumer that delivers to
// another token's inbox, or a durable one, which would keep going after
// its revocation (and feed one app's events to a token of another). A
// client's consumer stays only if it is an ephemeral pull consumer that
// the server deletes once unused for at most maxClientInactivity; the
// server's own (the runner worker's, the webhooks') stay.
type consumerReaper struct {
	js    jetstream.JetStream
	hooks *webhooks.Store
	log   *slog.Logger
	// mu lets one sweep run at a time.
	mu sync.Mutex
}

// lasting reports whether cfg, a client's consumer, could outlive the
// client: a push consumer, a durable one, or one left unused for longer
// than maxClientInactivity.
func lasting(cfg jetstream.ConsumerConfig) bool {
	return cfg.DeliverSubject != "" || cfg.Durable != "" ||
		cfg.InactiveThreshold <= 0 || cfg.InactiveThreshold > maxClientInactivity
}

// sweep deletes every lasting consumer of the event stream that is not
// the server's own.
func (r *consumerReaper) sweep(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	stream, err := r.js.Stream(ctx, events.EventStreamName)
	if err != nil {
		return fmt.Errorf("consumers of the event stream: %w", err)
	}
	var suspects []*jetstream.ConsumerInfo
	consumers := stream.ListConsumers(ctx)
	for info := range consumers.Info() {
		if lasting(info.Config) {
			suspects = append(suspects, info)
		}
	}
	if err := consumers.Err(); err != nil {
		return fmt.Errorf("consumers of the event stream: %w", err)
	}
	if len(suspects) == 0 {
		return nil
	}
	// The webhooks are listed after the consumers: a webhook's consumer
	// is made once the webhook is stored, so none listed is missed.
	own := map[string]bool{runner.ConsumerName: true}
	hooks, err := r.hooks.List(ctx)
	if err != nil {
		return fmt.Errorf("consumers of the event stream: %w", err)
	}
	for _, hook := range hooks {
		own[r.hooks.ConsumerName(hook)] = true
	}
	for _, info := range suspects {
		// The server's consumers are pull consumers: one of their names
		// that a client made a push consumer goes too.
		if own[info.Name] && info.Config.DeliverSubject == "" {
			continue
		}
		err := stream.DeleteConsumer(ctx, info.Name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("delete consumer %s of the event stream: %w", info.Name, err)
		}
		r.log.Warn("deleted a client's consumer of the event stream that could outlive its token",
			"consumer", info.Name, "deliver_subject", info.Config.DeliverSubject, "durable", info.Config.Durable != "",
			"inactive_threshold", info.Config.InactiveThreshold, "filter", info.Config.FilterSubject)
	}
	return nil
}

// run sweeps every interval until ctx ends; a failed sweep is logged and
// tried again at the next.
func (r *consumerReaper) run(ctx context.Context, interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		if err := r.sweep(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("sweeping the clients' consumers", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
