package projections

import (
	"context"
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

// Rebuild builds a fresh model from the start of the log up to stream
// sequence upTo, which must already be stored: it waits for it otherwise,
// and returns an error wrapping ctx.Err() once ctx ends. Events after upTo
// that the follower delivers in the same batch are not applied.
func Rebuild(ctx context.Context, follower events.Follower, upTo uint64) (*RevisionHistory, error) {
	model := NewRevisionHistory()
	var read uint64
	if err := model.feed(ctx, follower, upTo, &read); err != nil {
		return nil, fmt.Errorf("revision history: rebuild: %w", err)
	}
	return model, nil
}
