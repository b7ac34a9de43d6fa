package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// streamAttemptTimeout bounds one attempt at creating or updating a
// stream: on a cluster a JetStream API request can go unanswered while the
// meta leader changes, and waiting out the whole deadline on it helps
// nobody.
const streamAttemptTimeout = 5 * time.Second

// EnsureStream creates cfg's stream or updates it to cfg, trying again
// while the JetStream cluster is temporarily unable to (no answer, no meta
// leader, peers not placed yet) until ctx ends.
func EnsureStream(ctx context.Context, js jetstream.StreamManager, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		attempt, cancel := context.WithTimeout(ctx, streamAttemptTimeout)
		stream, err := js.CreateOrUpdateStream(attempt, cfg)
		cancel()
		if err == nil {
			return stream, nil
		}
		if !clusterBusy(err) || ctx.Err() != nil {
			return nil, fmt.Errorf("create stream %s: %w", cfg.Name, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("create stream %s: %w", cfg.Name, err)
		case <-time.After(delay):
		}
	}
}

// clusterBusy tells a JetStream cluster that cannot answer now from a
// refusal that will not change.
func clusterBusy(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case 10005, 10008, 10009: // no peers for placement yet, system unavailable, not the leader
			return true
		}
	}
	return false
}
