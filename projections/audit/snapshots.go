package audit

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
)

// SnapshotBucketName is the JetStream key-value bucket of time travel's
// snapshots: what folding an app's events up to a sequence gave (the
// aggregate, the revision list's extras, the runners, every parameter's
// provenance), so that a question about a point of the log folds only the
// events after the newest snapshot at or before it. The server writes it;
// clients may read it, never write it. It is a shortcut, never the truth.
const SnapshotBucketName = "REVLINE_TIMETRAVEL"

// foldVersion is the version of foldState's encoding; bump it when
// foldState, listing, tracker or anything they hold changes, or when
// observe folds an event differently.
const foldVersion = 1

// foldSchema is the schema of a stored foldState: its own version and
// that of the aggregate it holds, so that a change of either makes every
// older snapshot ignored (and, in the index, replaced).
const foldSchema = uint32(aggregates.SnapshotSchema)<<16 | foldVersion

// Defaults of SnapshotsConfig.
const (
	DefaultSnapshotEvery = 500
	DefaultSnapshotKeep  = 64
)

// SnapshotsConfig configures EnsureSnapshots.
type SnapshotsConfig struct {
	// Every is how many of an app's events lie between two of its
	// snapshots (default DefaultSnapshotEvery).
	Every int
	// Keep bounds the snapshots kept per app (default
	// DefaultSnapshotKeep). Past it, the snapshot whose neighbours are
	// closest goes: the kept ones stay spread over the whole history, the
	// newest always kept, and the gaps between them grow as the history
	// does.
	Keep int
	// Replicas of the bucket (default 1).
	Replicas int
	// Logger hears about snapshots ignored or not written (default
	// slog.Default()).
	Logger *slog.Logger
}

// Snapshots are time travel's snapshots of each app, in
// SnapshotBucketName: one key per snapshot (fold.<app>.<n>, after the
// app's n-th event) and an index per app (index.<app>) listing them. A
// snapshot is only a shortcut: one that cannot be read, of another
// schema, beyond the point asked about, or whose last event the log no
// longer holds as it was, is ignored and the app's events folded from
// the start. A nil *Snapshots has none.
type Snapshots struct {
	kv       jetstream.KeyValue
	every    uint64
	keep     int
	writable bool
	logger   *slog.Logger
}

// EnsureSnapshots creates or updates the bucket, as serve does, and
// returns the snapshots for writing and reading.
func EnsureSnapshots(ctx context.Context, js jetstream.JetStream, cfg SnapshotsConfig) (*Snapshots, error) {
	if cfg.Every <= 0 {
		cfg.Every = DefaultSnapshotEvery
	}
	if cfg.Keep <= 0 {
		cfg.Keep = DefaultSnapshotKeep
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	kv, err := events.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      SnapshotBucketName,
		Description: "Revline time travel: apps folded from the event log up to a sequence; a shortcut, never the truth",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(cfg.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("time travel snapshots: %w", err)
	}
	return &Snapshots{kv: kv, every: uint64(cfg.Every), keep: cfg.Keep, writable: true, logger: cfg.Logger}, nil
}

// OpenSnapshots opens the bucket for reading only, as clients do: their
// folds use the snapshots the server wrote and write none.
func OpenSnapshots(ctx context.Context, js jetstream.JetStream, logger *slog.Logger) (*Snapshots, error) {
	if logger == nil {
		logger = slog.Default()
	}
	kv, err := js.KeyValue(ctx, SnapshotBucketName)
	if err != nil {
		return nil, fmt.Errorf("time travel snapshots: %w", err)
	}
	return &Snapshots{kv: kv, every: DefaultSnapshotEvery, keep: DefaultSnapshotKeep, logger: logger}, nil
}

// WithSnapshots returns log with s: time travel, provenance and revision
// lookups on it start from the newest usable snapshot (and, if s is
// writable, leave new ones behind). A nil s returns log.
func WithSnapshots(log Log, s *Snapshots) Log {
	if s == nil {
		return log
	}
	return snapshotLog{Log: log, snaps: s}
}

type snapshotLog struct {
	Log
	snaps *Snapshots
}

// Warm follows the log from its end and, whenever an app has Every new
// events, folds it up to the last of them, which writes its snapshots:
// so that time travel rarely writes one while answering. Serve runs it
// until ctx ends. An app's events before Warm started count from its
// next snapshot on.
func (s *Snapshots) Warm(ctx context.Context, log Log) error {
	end, err := log.LastSequence(ctx)
	if err != nil {
		return fmt.Errorf("time travel snapshots: the end of the log: %w", err)
	}
	with := WithSnapshots(log, s)
	pending := map[string]uint64{}
	return log.Follow(ctx, end+1, func(env events.Envelope, _ error) error {
		if events.ValidateAppName(env.App) != nil {
			return nil
		}
		if pending[env.App]++; pending[env.App] < s.every {
			return nil
		}
		delete(pending, env.App)
		if _, err := foldApp(ctx, with, env.App, Point{Sequence: env.Sequence}); err != nil && ctx.Err() == nil {
			s.logger.Warn("folding an app for its time travel snapshots failed", "app", env.App, "sequence", env.Sequence, "error", err)
		}
		return nil
	})
}

// foldState is what folding an app's events up to a sequence gives time
// travel, and what a snapshot holds.
type foldState struct {
	App aggregates.App
	// Read counts the app's events read, undecodable ones included, and
	// At and AtHash are the sequence and hash of the last one: snapshots
	// are taken every Snapshots.every of them, at places that depend on
	// the log only, and one is trusted only while the log holds that
	// event with that hash.
	Read   uint64
	At     uint64
	AtHash string
	// Last and LastAt are the sequence and time of the last event folded.
	Last   uint64
	LastAt time.Time
	// MaxTime is the latest time of the events folded: a point in time
	// before it never reaches this state.
	MaxTime time.Time
	Listing *listing
	Tracker *tracker
}

func newFoldState(app string) *foldState {
	return &foldState{App: aggregates.App{Name: app}, Listing: newListing(), Tracker: newTracker()}
}

// fold folds env, an event of the app that could be decoded.
func (f *foldState) fold(env events.Envelope) {
	f.Listing.observe(f.App, env)
	f.Tracker.observe(f.App, env)
	f.App = aggregates.Evolve(f.App, env)
	f.Last, f.LastAt = env.Sequence, env.OccurredAt
	if env.OccurredAt.After(f.MaxTime) {
		f.MaxTime = env.OccurredAt
	}
}

// errSnapshotStale stops a fold from a snapshot whose last event the log
// no longer holds as it was.
var errSnapshotStale = errors.New("the log no longer holds the snapshot's last event as it was")

// foldApp folds app's events up to p with aggregates.Evolve, from the
// newest usable snapshot at or before p if log has snapshots
// (WithSnapshots). Events that cannot be decoded are left out, as every
// reader does. An app without events up to p is a *NoHistoryError.
func foldApp(ctx context.Context, log Log, app string, p Point) (*foldState, error) {
	if err := events.ValidateAppName(app); err != nil {
		return nil, err
	}
	end, err := log.LastAppSequence(ctx, app)
	if err != nil {
		return nil, fmt.Errorf("audit: the end of app %q's history: %w", app, err)
	}
	if p.Sequence != 0 {
		end = min(end, p.Sequence)
	}
	var s *Snapshots
	if with, ok := log.(snapshotLog); ok {
		s = with.snaps
	}
	idx := s.index(ctx, app)
	f, err := foldFrom(ctx, log, s, idx, s.restore(ctx, app, idx, p, end), p, end)
	if errors.Is(err, errSnapshotStale) {
		s.logger.Warn("ignoring a time travel snapshot; folding the whole history", "app", app, "error", err)
		f, err = foldFrom(ctx, log, s, idx, nil, p, end)
	}
	if err != nil {
		return nil, err
	}
	if f.Last == 0 {
		return nil, &NoHistoryError{App: app, At: p}
	}
	return f, nil
}

// foldFrom folds app's events after start (nil: from the first) up to
// p and end, leaving snapshots behind in s.
func foldFrom(ctx context.Context, log Log, s *Snapshots, idx *snapshotIndex, start *foldState, p Point, end uint64) (*foldState, error) {
	f, from, check := start, uint64(1), start != nil
	if start == nil {
		f = newFoldState(idx.app)
	} else {
		from = start.At // read again, to check it is still there
	}
	err := scan(ctx, log, idx.app, from, end, func(env events.Envelope, decodeErr error) error {
		if check {
			check = false
			if env.Sequence != f.At || env.Hash != f.AtHash {
				return fmt.Errorf("event %d: %w", f.At, errSnapshotStale)
			}
			return nil
		}
		decoded := decodeErr == nil && env.Event != nil
		if decoded && !p.Time.IsZero() && env.OccurredAt.After(p.Time) {
			return errStop
		}
		f.Read, f.At, f.AtHash = f.Read+1, env.Sequence, env.Hash
		if decoded {
			f.fold(env)
		}
		s.save(ctx, idx, f)
		return nil
	})
	return f, err
}

// snapshotIndex lists an app's snapshots (index.<app>), oldest first.
type snapshotIndex struct {
	app     string
	entries []indexEntry
}

// indexEntry is one snapshot: after the app's Read-th event, at stream
// sequence Sequence, with events up to MaxTime.
type indexEntry struct {
	Schema   uint32
	Read     uint64
	Sequence uint64
	MaxTime  time.Time
}

func indexKey(app string) string { return "index." + app }

func foldKey(app string, read uint64) string { return fmt.Sprintf("fold.%s.%d", app, read) }

// index reads app's index; an index that cannot be read is empty.
func (s *Snapshots) index(ctx context.Context, app string) *snapshotIndex {
	idx := &snapshotIndex{app: app}
	if s != nil {
		entries, _, err := s.readIndex(ctx, app)
		if err != nil {
			s.logger.Warn("ignoring time travel snapshots whose index cannot be read", "app", app, "error", err)
		}
		idx.entries = entries
	}
	return idx
}

// readIndex returns app's index and its revision in the bucket (0: none).
func (s *Snapshots) readIndex(ctx context.Context, app string) ([]indexEntry, uint64, error) {
	entry, err := s.kv.Get(ctx, indexKey(app))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var entries []indexEntry
	if err := msgpack.Unmarshal(entry.Value(), &entries); err != nil {
		return nil, 0, fmt.Errorf("index of app %q: %w", app, err)
	}
	return entries, entry.Revision(), nil
}

// restore returns the newest snapshot of idx's app that is usable at p
// and end, or nil. A listed snapshot that is gone or cannot be read is
// passed over for the next older one.
func (s *Snapshots) restore(ctx context.Context, app string, idx *snapshotIndex, p Point, end uint64) *foldState {
	usable := func(schema uint32, seq uint64, maxTime time.Time) bool {
		return schema == foldSchema && seq <= end && (p.Time.IsZero() || !maxTime.After(p.Time))
	}
	for _, e := range slices.Backward(idx.entries) {
		if !usable(e.Schema, e.Sequence, e.MaxTime) {
			continue
		}
		f, err := s.get(ctx, app, e)
		if err == nil && !usable(foldSchema, f.At, f.MaxTime) {
			err = fmt.Errorf("it holds event %d at %s, beyond %s", f.At, f.MaxTime.Format(time.RFC3339Nano), p)
		}
		if err != nil {
			// Purged after the index was read (another writer thinned
			// the list), or unusable: an older one may do.
			s.logger.Warn("ignoring a time travel snapshot; trying an older one", "app", app, "read", e.Read, "error", err)
			continue
		}
		return f
	}
	return nil
}

// get reads and checks the snapshot e lists.
func (s *Snapshots) get(ctx context.Context, app string, e indexEntry) (*foldState, error) {
	entry, err := s.kv.Get(ctx, foldKey(app, e.Read))
	if err != nil {
		return nil, err
	}
	snap, err := events.UnmarshalSnapshot(entry.Value())
	if err != nil {
		return nil, err
	}
	if snap.Schema != foldSchema {
		return nil, fmt.Errorf("schema %#x, this version reads %#x", snap.Schema, foldSchema)
	}
	dec := msgpack.NewDecoder(bytes.NewReader(snap.Data))
	dec.DisallowUnknownFields(true)
	var f foldState
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	events.TimesInUTC(&f)
	if f.App.Name != app || f.At != snap.Sequence || f.At != e.Sequence || f.Read != e.Read || f.Listing == nil || f.Tracker == nil {
		return nil, fmt.Errorf("snapshot %d of app %q at sequence %d holds app %q's event %d at %d", e.Read, app, e.Sequence, f.App.Name, f.Read, f.At)
	}
	return &f, nil
}

// save writes f as a snapshot if it is at one of the places snapshots
// are taken and idx does not have it yet.
func (s *Snapshots) save(ctx context.Context, idx *snapshotIndex, f *foldState) {
	if s == nil || !s.writable || f.Read%s.every != 0 || idx.has(f.Read) {
		return
	}
	e := indexEntry{Schema: foldSchema, Read: f.Read, Sequence: f.At, MaxTime: f.MaxTime}
	if err := s.write(ctx, idx.app, f, e); err != nil {
		// Only a shortcut is lost: the next question folds more events.
		s.logger.Warn("writing a time travel snapshot failed", "app", idx.app, "sequence", f.At, "error", err)
		return
	}
	idx.entries = append(idx.entries, e)
}

func (idx *snapshotIndex) has(read uint64) bool {
	return slices.ContainsFunc(idx.entries, func(e indexEntry) bool { return e.Read == read && e.Schema == foldSchema })
}

// write stores f, then lists it in the app's index.
func (s *Snapshots) write(ctx context.Context, app string, f *foldState, e indexEntry) error {
	var buf bytes.Buffer
	if err := msgpack.NewEncoder(&buf).Encode(f); err != nil {
		return err
	}
	value, err := events.Snapshot{Schema: foldSchema, Sequence: f.At, Data: buf.Bytes()}.Marshal()
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, foldKey(app, e.Read), value); err != nil {
		return err
	}
	return s.list(ctx, app, e)
}

// list adds e to app's index, thinned to s.keep entries of this schema,
// and purges the snapshots it no longer lists. Writers race on the
// index: each update expects the revision it read, and tries again.
func (s *Snapshots) list(ctx context.Context, app string, e indexEntry) error {
	for range 8 {
		entries, revision, err := s.readIndex(ctx, app)
		if err != nil {
			s.logger.Warn("replacing a time travel index that cannot be read", "app", app, "error", err)
		}
		if slices.Contains(entries, e) {
			return nil
		}
		kept, dropped := thin(append(entries, e), s.keep)
		value, err := msgpack.Marshal(kept)
		if err != nil {
			return err
		}
		if revision == 0 {
			_, err = s.kv.Create(ctx, indexKey(app), value)
		} else {
			_, err = s.kv.Update(ctx, indexKey(app), value, revision)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return err
		}
		for _, d := range dropped {
			if err := s.kv.Purge(ctx, foldKey(app, d.Read)); err != nil {
				s.logger.Warn("purging a time travel snapshot failed", "app", app, "read", d.Read, "error", err)
			}
		}
		return nil
	}
	return errors.New("the index kept changing under this writer")
}

// thin sorts entries, drops those of another schema, and while more
// than keep are left drops the one (never the newest) whose neighbours
// are closest, so that those kept stay spread over the history.
func thin(entries []indexEntry, keep int) (kept, dropped []indexEntry) {
	for _, e := range entries {
		if e.Schema == foldSchema {
			kept = append(kept, e)
		} else {
			dropped = append(dropped, e)
		}
	}
	slices.SortFunc(kept, func(a, b indexEntry) int { return cmp.Compare(a.Read, b.Read) })
	for len(kept) > max(keep, 1) {
		best, bestGap := 0, uint64(0)
		for i := range len(kept) - 1 {
			prev := uint64(0)
			if i > 0 {
				prev = kept[i-1].Read
			}
			if gap := kept[i+1].Read - prev; i == 0 || gap < bestGap {
				best, bestGap = i, gap
			}
		}
		dropped = append(dropped, kept[best])
		kept = slices.Delete(kept, best, best+1)
	}
	return kept, dropped
}
