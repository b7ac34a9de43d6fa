package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// apiAttemptTimeout bounds one attempt at a JetStream API request that
// is safe to repeat: on a cluster a request can go unanswered while the
// meta leader changes (seen in TestServeOnACluster as a consumer create
// that hung for two minutes), and waiting out the whole deadline on it
// helps nobody.
const apiAttemptTimeout = 5 * time.Second

// EnsureStream creates cfg's stream or updates it to cfg, trying again
// while the JetStream cluster is temporarily unable to (no answer, no meta
// leader, peers not placed yet) until ctx ends.
func EnsureStream(ctx context.Context, js jetstream.StreamManager, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	var stream jetstream.Stream
	err := RetryWhileBusy(ctx, func(attempt context.Context) (err error) {
		stream, err = js.CreateOrUpdateStream(attempt, cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", cfg.Name, err)
	}
	return stream, nil
}

// EnsureConsumer creates the durable consumer cfg on stream or updates it
// to cfg, and returns it once it has a leader: a pull sent to a replicated
// consumer before that is lost, and only made again at its expiry. It
// tries again while the JetStream cluster is temporarily unable to answer
// (as EnsureStream does) until ctx ends: several replicas of a server
// starting at once create the same consumers.
func EnsureConsumer(ctx context.Context, js jetstream.StreamConsumerManager, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	var consumer jetstream.Consumer
	err := RetryWhileBusy(ctx, func(attempt context.Context) (err error) {
		consumer, err = js.CreateOrUpdateConsumer(attempt, stream, cfg)
		return err
	})
	if err == nil {
		err = waitForLeader(ctx, consumer)
	}
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", cfg.Durable, stream, err)
	}
	return consumer, nil
}

// waitForLeader returns once a replicated consumer has elected a leader.
func waitForLeader(ctx context.Context, consumer jetstream.Consumer) error {
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		var info *jetstream.ConsumerInfo
		err := RetryWhileBusy(ctx, func(attempt context.Context) (err error) {
			info, err = consumer.Info(attempt)
			return err
		})
		if err != nil {
			return err
		}
		if info.Cluster == nil || info.Cluster.Leader != "" {
			return nil
		}
		if err := pause(ctx, delay); err != nil { // the server offers no notification
			return fmt.Errorf("no leader elected: %w", err)
		}
	}
}

// RetryWhileBusy runs request, each attempt bounded by apiAttemptTimeout,
// until it succeeds, fails in a way that will not change (see
// clusterBusy: no responders yet, no leader yet, a timed-out attempt), or
// ctx ends. request must be safe to repeat: a read, or a write with an
// expected sequence.
func RetryWhileBusy(ctx context.Context, request func(attempt context.Context) error) error {
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		attempt, cancel := context.WithTimeout(ctx, apiAttemptTimeout)
		err := request(attempt)
		cancel()
		if err == nil || !clusterBusy(err) || ctx.Err() != nil {
			return err
		}
		if pause(ctx, delay) != nil {
			return err
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
