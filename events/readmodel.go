package events

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// ReadModelBucketName is the JetStream object store of the read model's
// snapshot (projections.RevisionHistory, the model behind every query):
// serve starts from it and follows the log from its sequence on, instead
// of folding the whole log. An object store, not a key-value bucket: the
// model of many apps is larger than one message. Only the server writes
// and reads it.
const ReadModelBucketName = "REVLINE_READ_MODEL"

// readModelObject is the name of the one snapshot the bucket keeps.
const readModelObject = "revision-history"

// ReadModelStore keeps the read model's snapshot in ReadModelBucketName:
// one object, replaced by each write. Like every snapshot it is only ever
// a shortcut: one that cannot be used is ignored and the model rebuilt.
type ReadModelStore struct {
	obs    jetstream.ObjectStore
	stream jetstream.Stream
}

// EnsureReadModelStore creates or updates the bucket, as serve does at
// start-up.
func EnsureReadModelStore(ctx context.Context, js jetstream.JetStream, replicas int) (*ReadModelStore, error) {
	obs, err := ensureObjectStore(ctx, js, jetstream.ObjectStoreConfig{
		Bucket:      ReadModelBucketName,
		Description: "Revline read model snapshot: the query model folded from the event log up to a sequence; a shortcut, never the truth",
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("read model store: %w", err)
	}
	stream, err := js.Stream(ctx, "OBJ_"+ReadModelBucketName)
	if err != nil {
		return nil, fmt.Errorf("read model store: %w", err)
	}
	return &ReadModelStore{obs: obs, stream: stream}, nil
}

// ensureObjectStore creates cfg's object store or updates it to cfg, as
// EnsureStream does a stream: left alone if configured so already.
func ensureObjectStore(ctx context.Context, js jetstream.ObjectStoreManager, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	if obs, err := js.ObjectStore(ctx, cfg.Bucket); err == nil {
		status, err := obs.Status(ctx)
		if err == nil && status.Description() == cfg.Description && status.TTL() == cfg.TTL &&
			status.Storage() == cfg.Storage && status.Replicas() == max(cfg.Replicas, 1) && !status.Sealed() {
			return obs, nil
		}
	}
	var obs jetstream.ObjectStore
	err := RetryWhileBusy(ctx, func(attempt context.Context) (err error) {
		obs, err = js.CreateOrUpdateObjectStore(attempt, cfg)
		return err
	})
	return obs, err
}

// Put stores snap, replacing the snapshot stored before, and deletes the
// chunks of any other: an object store's Put deletes those of the object
// it replaces, not those of a Put that a crash cut short. It expects one
// writer at a time (serve writes from the replica that runs the runners):
// two would delete each other's chunks, and a reader would then find no
// usable snapshot and fold the log.
func (s *ReadModelStore) Put(ctx context.Context, snap Snapshot) error {
	value, err := snap.Marshal()
	if err != nil {
		return fmt.Errorf("read model snapshot: %w", err)
	}
	info, err := s.obs.PutBytes(ctx, readModelObject, value)
	if err != nil {
		return fmt.Errorf("store the read model snapshot (%d bytes) at sequence %d: %w", len(value), snap.Sequence, err)
	}
	chunks := "$O." + ReadModelBucketName + ".C."
	state, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(chunks+">"))
	if err != nil {
		return fmt.Errorf("read model snapshot: list its chunks: %w", err)
	}
	for subject := range state.State.Subjects {
		if subject == chunks+info.NUID {
			continue
		}
		if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
			return fmt.Errorf("read model snapshot: delete the chunks %s of another: %w", subject, err)
		}
	}
	return nil
}

// Get returns the stored snapshot; found is false if there is none.
func (s *ReadModelStore) Get(ctx context.Context) (snap Snapshot, found bool, err error) {
	value, err := s.obs.GetBytes(ctx, readModelObject)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return Snapshot{}, false, nil
	}
	if err != nil {
		return Snapshot{}, false, fmt.Errorf("read the read model snapshot: %w", err)
	}
	if snap, err = UnmarshalSnapshot(value); err != nil {
		return Snapshot{}, false, fmt.Errorf("read the read model snapshot: %w", err)
	}
	return snap, true, nil
}
