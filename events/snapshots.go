package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/vmihailenco/msgpack/v5"
)

// SnapshotBucketName is the JetStream key-value bucket of snapshots: state
// folded from the event log up to a stream sequence, so that a cold load
// reads only the events after it. Only the server writes and reads it.
const SnapshotBucketName = "REVLINE_SNAPSHOTS"

// Snapshot is one stored snapshot: Data, encoded by its owner with schema
// Schema, is the state folded from the log up to stream sequence Sequence.
type Snapshot struct {
	Schema   uint32 `msgpack:"schema"`
	Sequence uint64 `msgpack:"sequence"`
	Data     []byte `msgpack:"data"`
}

// SnapshotStore keeps snapshots in SnapshotBucketName, one per key (one
// version each: a snapshot replaces the previous one). Values are
// compressed (S2). A snapshot is only ever a shortcut: whatever is wrong
// with one (unreadable, of another schema, ahead of the log) makes its
// reader fold the log instead.
type SnapshotStore struct {
	kv     jetstream.KeyValue
	logger *slog.Logger
}

// EnsureSnapshotStore creates or updates the bucket, as serve does at
// start-up. logger (default slog.Default()) hears about snapshots ignored.
func EnsureSnapshotStore(ctx context.Context, js jetstream.JetStream, replicas int, logger *slog.Logger) (*SnapshotStore, error) {
	if logger == nil {
		logger = slog.Default()
	}
	kv, err := EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      SnapshotBucketName,
		Description: "Revline snapshots: state folded from the event log up to a sequence; a shortcut, never the truth",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot store: %w", err)
	}
	return &SnapshotStore{kv: kv, logger: logger}, nil
}

// AppSnapshotKey is the key of app's aggregate snapshot.
func AppSnapshotKey(app string) string { return "app." + app }

// Put stores snap under key, replacing the snapshot stored there.
func (s *SnapshotStore) Put(ctx context.Context, key string, snap Snapshot) error {
	value, err := snap.Marshal()
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", key, err)
	}
	if _, err := s.kv.Put(ctx, key, value); err != nil {
		return fmt.Errorf("store snapshot %s (%d bytes) at sequence %d: %w", key, len(value), snap.Sequence, err)
	}
	return nil
}

// Get returns the snapshot stored under key; found is false if there is
// none. A value that cannot be read is an error.
func (s *SnapshotStore) Get(ctx context.Context, key string) (snap Snapshot, found bool, err error) {
	entry, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Snapshot{}, false, nil
	}
	if err != nil {
		return Snapshot{}, false, fmt.Errorf("read snapshot %s: %w", key, err)
	}
	if snap, err = UnmarshalSnapshot(entry.Value()); err != nil {
		return Snapshot{}, false, fmt.Errorf("read snapshot %s: %w", key, err)
	}
	return snap, true, nil
}

// Marshal encodes s as a stored value: msgpack, with Data compressed
// (S2). Other stores of snapshots (time travel's) use it too.
func (s Snapshot) Marshal() ([]byte, error) {
	s.Data = s2.Encode(nil, s.Data)
	return msgpack.Marshal(s)
}

// UnmarshalSnapshot decodes a value that Snapshot.Marshal encoded.
func UnmarshalSnapshot(value []byte) (Snapshot, error) {
	var snap Snapshot
	if err := msgpack.Unmarshal(value, &snap); err != nil {
		return Snapshot{}, err
	}
	data, err := s2.Decode(nil, snap.Data)
	if err != nil {
		return Snapshot{}, err
	}
	snap.Data = data
	return snap, nil
}

// LoadApp reads app's history for a cold load: from its snapshot when
// there is a usable one, else from the beginning. A snapshot is used when
// the log still holds, at the snapshot's sequence, an event of app (so the
// snapshot is not ahead of the log, nor of another log) and restore, given
// the snapshot, accepts it (the caller decodes it, checks its schema and
// keeps the state); LoadApp then returns the events after the snapshot
// and restored true. Otherwise, with the reason logged, it returns the
// whole history and restored false: the caller folds it from scratch.
// A nil store has no snapshots.
func (s *SnapshotStore) LoadApp(ctx context.Context, loader AppLoader, app string, restore func(Snapshot) error) (history []Envelope, restored bool, err error) {
	if s != nil {
		if history, ok := s.tail(ctx, loader, app, restore); ok {
			return history, true, nil
		}
	}
	history, err = loader.Load(ctx, app, 0)
	return history, false, err
}

// tail returns the events of app after its snapshot, if it has a usable one.
func (s *SnapshotStore) tail(ctx context.Context, loader AppLoader, app string, restore func(Snapshot) error) ([]Envelope, bool) {
	key := AppSnapshotKey(app)
	snap, found, err := s.Get(ctx, key)
	if err != nil {
		s.logger.Warn("ignoring a snapshot that cannot be read; folding the whole history", "key", key, "error", err)
		return nil, false
	}
	if !found || snap.Sequence == 0 {
		return nil, false
	}
	// From the snapshot's own last event: it must still be there.
	history, err := loader.Load(ctx, app, snap.Sequence-1)
	if err != nil {
		s.logger.Warn("reading the events after a snapshot failed; folding the whole history", "key", key, "error", err)
		return nil, false
	}
	if len(history) == 0 || history[0].Sequence != snap.Sequence {
		s.logger.Warn("ignoring a snapshot ahead of the event log; folding the whole history", "key", key, "sequence", snap.Sequence)
		return nil, false
	}
	if err := restore(snap); err != nil {
		s.logger.Warn("ignoring a snapshot; folding the whole history", "key", key, "sequence", snap.Sequence, "schema", snap.Schema, "error", err)
		return nil, false
	}
	s.logger.Debug("app loaded from its snapshot", "app", app, "sequence", snap.Sequence, "events_after", len(history)-1)
	return history[1:], true
}
