package projections

import (
	"context"
	"errors"
	"fmt"

	"github.com/revline/revline/events"
)

// Run feeds model from follower, starting after model's checkpoint, until
// ctx ends or the follower fails. Undecodable events are skipped (the
// checkpoint still moves past them). It returns an error wrapping ctx.Err()
// when ctx ends, or the follower's error.
func Run(ctx context.Context, follower events.Follower, model *RevisionHistory) error {
	from := model.Checkpoint() + 1
	if err := follower.Follow(ctx, from, model.Handle); err != nil {
		return fmt.Errorf("revision history: follow from sequence %d (now at %d): %w", from, model.Checkpoint(), err)
	}
	return nil
}

// errCaughtUp stops Rebuild's Follow once the target sequence is reached.
var errCaughtUp = errors.New("caught up")

// Rebuild builds a fresh model from the start of the log up to stream
// sequence upTo, which must already be stored: it waits for it otherwise,
// and returns an error wrapping ctx.Err() once ctx ends. Events after upTo
// that the follower delivers in the same batch are not applied.
func Rebuild(ctx context.Context, follower events.Follower, upTo uint64) (*RevisionHistory, error) {
	model := NewRevisionHistory()
	if upTo == 0 {
		return model, nil
	}
	err := follower.Follow(ctx, 1, func(env events.Envelope, decodeErr error) error {
		if env.Sequence > upTo {
			return errCaughtUp
		}
		_ = model.Handle(env, decodeErr)
		if model.Checkpoint() >= upTo {
			return errCaughtUp
		}
		return nil
	})
	if err == nil {
		err = errors.New("the log ended early")
	}
	if !errors.Is(err, errCaughtUp) {
		return nil, fmt.Errorf("revision history: rebuild up to sequence %d (reached %d): %w", upTo, model.Checkpoint(), err)
	}
	return model, nil
}
