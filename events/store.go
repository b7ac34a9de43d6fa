package events

import (
	"context"
	"errors"
	"fmt"
)

// AppendResult reports where a command's events were stored.
type AppendResult struct {
	FirstSequence uint64
	LastSequence  uint64
	// Duplicate is true when the same command's events were already stored;
	// nothing was appended and the sequences are the stored ones.
	Duplicate bool
}

// ErrConflict is wrapped by *ConflictError.
var ErrConflict = errors.New("expected version conflict")

// ConflictError reports that an app's history moved on since the caller
// read it: another command was appended first. Reload and decide again.
type ConflictError struct {
	App      string
	Expected uint64
}

// Error implements the error interface.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("app %q: history moved past sequence %d: %s", e.App, e.Expected, ErrConflict)
}

// Unwrap returns the underlying error, for errors.Is and errors.As.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// UnreadableEventError reports a stored event of an app that cannot be
// decoded (corrupt, of an unknown type, or of a newer schema). Reading the
// app's history fails the same way every time: callers treat it as
// permanent, not as an outage to retry.
type UnreadableEventError struct {
	App      string
	Sequence uint64
	Err      error
}

// Error implements the error interface.
func (e *UnreadableEventError) Error() string {
	return fmt.Sprintf("app %q: stored event at sequence %d cannot be read: %v", e.App, e.Sequence, e.Err)
}

// Unwrap returns the underlying error, for errors.Is and errors.As.
func (e *UnreadableEventError) Unwrap() error { return e.Err }

// Appender appends one command's events to one app's history.
type Appender interface {
	// Append stores events, all for app and all caused by one command,
	// all-or-nothing, provided the app's last stored event has stream
	// sequence expected (0: the app has no events yet).
	//
	// Appending is idempotent per command: if the app's history after
	// expected already holds events caused by the same command (a retry),
	// nothing is appended and the result has Duplicate set. Otherwise a
	// mismatch returns a *ConflictError (errors.Is ErrConflict).
	Append(ctx context.Context, app string, expected uint64, events []Envelope) (AppendResult, error)
}

// AppLoader reads one app's history.
type AppLoader interface {
	// Load returns the app's events with a stream sequence above after, in
	// order. A stored event that cannot be decoded makes it return an
	// *UnreadableEventError; a message with no event type, which is no
	// event at all, comes with a nil Event, only to keep its sequence.
	Load(ctx context.Context, app string, after uint64) ([]Envelope, error)
}

// FollowFunc receives each stored event in sequence order. An event that
// cannot be decoded arrives with decodeErr set and only Sequence (and what
// the headers told) filled in, so a follower can count it and move on.
// Returning an error stops Follow with that error.
type FollowFunc func(env Envelope, decodeErr error) error

// Follower delivers the whole log.
type Follower interface {
	// Follow calls fn for every event from stream sequence from (1: the
	// beginning) onwards, then waits for new ones until ctx ends.
	Follow(ctx context.Context, from uint64, fn FollowFunc) error
}

// Store is the event store: the single source of truth.
type Store interface {
	Appender
	AppLoader
	Follower
}

// checkBatch validates the events of one Append call.
func checkBatch(app string, events []Envelope) error {
	if err := ValidateAggregateName(app); err != nil {
		return err
	}
	if len(events) == 0 {
		return errors.New("append: no events")
	}
	for _, env := range events {
		if env.App != app {
			return fmt.Errorf("append: event %s is for app %q, not %q", env.Type, env.App, app)
		}
		if env.CausationID != events[0].CausationID {
			return fmt.Errorf("append: events of one call must share one causation id")
		}
		if env.Event == nil || env.Type != env.Event.EventType() {
			return fmt.Errorf("append: event type %q does not match its payload", env.Type)
		}
	}
	return nil
}

// findDuplicate returns the sequences of the events in history caused by
// causationID, if any.
func findDuplicate(history []Envelope, causationID string) (AppendResult, bool) {
	var res AppendResult
	for _, env := range history {
		if causationID == "" || env.CausationID != causationID {
			continue
		}
		if res.FirstSequence == 0 {
			res.FirstSequence = env.Sequence
		}
		res.LastSequence = env.Sequence
	}
	res.Duplicate = res.FirstSequence != 0
	return res, res.Duplicate
}
