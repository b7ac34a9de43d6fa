package processor

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
)

// snapshotWriteTimeout bounds the write of one snapshot.
const snapshotWriteTimeout = 30 * time.Second

// maybeSnapshot hands a deep copy of the app's cached state to the
// snapshot writer once SnapshotEvery events were folded in since the
// last one. The caller holds c.mu.
func (p *Processor) maybeSnapshot(c *appCache) {
	if p.snaps == nil || c.unsnapshotted < p.cfg.SnapshotEvery || c.state.Version == 0 {
		return
	}
	c.unsnapshotted = 0
	p.snaps.submit(aggregates.Snapshot{State: c.state.Clone(), Accepted: slices.Clone(c.recent)})
}

// snapshotWriter writes snapshots in the background, one at a time; of
// the snapshots of one app waiting to be written, only the newest is.
type snapshotWriter struct {
	store  *events.SnapshotStore
	logger *slog.Logger

	mu      sync.Mutex
	pending map[string]aggregates.Snapshot
	running bool
}

func newSnapshotWriter(store *events.SnapshotStore, logger *slog.Logger) *snapshotWriter {
	return &snapshotWriter{store: store, logger: logger, pending: map[string]aggregates.Snapshot{}}
}

// submit queues snap, replacing a snapshot of the same app still waiting,
// and starts a writer if none is running.
func (w *snapshotWriter) submit(snap aggregates.Snapshot) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending[snap.State.Name] = snap
	if !w.running {
		w.running = true
		go w.drain()
	}
}

// drain writes the waiting snapshots until none is left.
func (w *snapshotWriter) drain() {
	for {
		w.mu.Lock()
		var snap aggregates.Snapshot
		found := false
		for app, s := range w.pending {
			snap, found = s, true
			delete(w.pending, app)
			break
		}
		if !found {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		w.write(snap)
	}
}

func (w *snapshotWriter) write(snap aggregates.Snapshot) {
	data, err := aggregates.EncodeSnapshot(snap)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), snapshotWriteTimeout)
		err = w.store.Put(ctx, events.AppSnapshotKey(snap.State.Name), events.Snapshot{Schema: aggregates.SnapshotSchema, Sequence: snap.State.Version, Data: data})
		cancel()
	}
	if err != nil {
		// Only a shortcut is lost: the next cold load reads more events.
		w.logger.Warn("writing an app's snapshot failed", "app", snap.State.Name, "sequence", snap.State.Version, "error", err)
	}
}
