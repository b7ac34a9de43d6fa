package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/revline/revline/events"
)

// SnapshotStore keeps the model's snapshot (*events.ReadModelStore).
type SnapshotStore interface {
	Get(ctx context.Context) (snap events.Snapshot, found bool, err error)
	Put(ctx context.Context, snap events.Snapshot) error
}

// errUnusable says why a stored snapshot is not restored.
type errUnusable struct{ why string }

func (e errUnusable) Error() string { return e.why }

// RestoreFrom fills m, which must be empty, from the snapshot in snaps if
// there is a usable one: of SnapshotSchema, not past the log's end, and
// folded from the log as it is (the log still holds, at the snapshot's
// checkpoint, the event the snapshot says it applied last). It returns
// the checkpoint it restored (0: none, and m is left empty) and, when a
// snapshot was found and not used, why (for the log). An error is only
// returned for a log that cannot be read; a snapshot that cannot be read
// is a reason not to use it.
func (m *RevisionHistory) RestoreFrom(ctx context.Context, snaps SnapshotStore, log ReplayLog) (checkpoint uint64, ignored string, err error) {
	snap, found, err := snaps.Get(ctx)
	if err != nil {
		return 0, err.Error(), nil
	}
	if !found {
		return 0, "", nil
	}
	err = m.restoreChecked(ctx, snap, log)
	var unusable errUnusable
	if errors.As(err, &unusable) {
		return 0, unusable.why, nil
	}
	if err != nil {
		return 0, "", err
	}
	return snap.Sequence, "", nil
}

// restoreChecked restores snap into m after checking it against log; an
// errUnusable says why it was not.
func (m *RevisionHistory) restoreChecked(ctx context.Context, snap events.Snapshot, log ReplayLog) error {
	if snap.Schema != SnapshotSchema {
		return errUnusable{fmt.Sprintf("the snapshot has schema %d, this build reads %d", snap.Schema, SnapshotSchema)}
	}
	end, err := log.LastSequence(ctx)
	if err != nil {
		return fmt.Errorf("revision history: restore: %w", err)
	}
	if snap.Sequence == 0 || snap.Sequence > end {
		return errUnusable{fmt.Sprintf("the snapshot is at sequence %d, the log ends at %d", snap.Sequence, end)}
	}
	want, err := SnapshotEventID(snap.Data)
	if err != nil {
		return errUnusable{err.Error()}
	}
	at, got, err := firstMessage(ctx, log, snap.Sequence)
	if err != nil {
		return fmt.Errorf("revision history: restore: %w", err)
	}
	if at != snap.Sequence || got != want {
		return errUnusable{fmt.Sprintf("the log no longer holds the snapshot's last event (sequence %d, event %q; found %d, %q)", snap.Sequence, want, at, got)}
	}
	if err := m.Restore(snap.Data); err != nil {
		return errUnusable{err.Error()}
	}
	return nil
}

// errFirst stops firstMessage's Follow.
var errFirst = errors.New("first message read")

// firstMessage returns the sequence and event id of the first message of
// log at or after from.
func firstMessage(ctx context.Context, log events.Follower, from uint64) (seq uint64, eventID string, err error) {
	err = log.Follow(ctx, from, func(env events.Envelope, decodeErr error) error {
		seq = env.Sequence
		if decodeErr == nil {
			eventID = env.EventID
		}
		return errFirst
	})
	if errors.Is(err, errFirst) {
		return seq, eventID, nil
	}
	if err == nil {
		err = errors.New("the log ended early")
	}
	return 0, "", fmt.Errorf("read the log at sequence %d: %w", from, err)
}

// SnapshotPolicy says when KeepSnapshots writes one.
type SnapshotPolicy struct {
	// Every: a snapshot is written once the model has moved this many
	// sequences past the last one; default 10,000.
	Every uint64
	// Interval is how often the model is looked at; a model that moved at
	// all gets a snapshot after MaxAge. Defaults 10s and 5m.
	Interval, MaxAge time.Duration
}

func (p *SnapshotPolicy) setDefaults() {
	if p.Every == 0 {
		p.Every = 10_000
	}
	if p.Interval == 0 {
		p.Interval = 10 * time.Second
	}
	if p.MaxAge == 0 {
		p.MaxAge = 5 * time.Minute
	}
}

// KeepSnapshots writes m's snapshot to snaps in the background as policy
// says, from checkpoint from (the one it was restored at, or 0), after
// each replay that switched m to a new generation, and once more when ctx
// ends if the model moved since (so that the next start
// reads little of the log). A write that fails is logged: only a shortcut
// is lost. It returns when ctx ends.
func KeepSnapshots(ctx context.Context, m *RevisionHistory, snaps SnapshotStore, from uint64, policy SnapshotPolicy, logger *slog.Logger) {
	policy.setDefaults()
	written, writtenAt, generation := from, time.Now(), m.Generation()
	write := func(ctx context.Context) {
		gen := m.Generation()
		data, checkpoint, err := m.Snapshot()
		if err == nil {
			err = snaps.Put(ctx, events.Snapshot{Schema: SnapshotSchema, Sequence: checkpoint, Data: data})
		}
		if err != nil {
			logger.Warn("writing the read model's snapshot failed", "error", err)
			return
		}
		written, writtenAt, generation = checkpoint, time.Now(), gen
		logger.Debug("read model snapshot written", "sequence", checkpoint, "bytes", len(data))
	}
	tick := time.NewTicker(policy.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if m.Checkpoint() > written {
				final, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				write(final)
				cancel()
			}
			return
		case <-tick.C:
			// A replay that switched generations changed what the
			// model holds at the same checkpoint.
			moved := m.Checkpoint() - min(written, m.Checkpoint())
			if moved >= policy.Every || (moved > 0 && time.Since(writtenAt) >= policy.MaxAge) || m.Generation() != generation {
				write(ctx)
			}
		}
	}
}
