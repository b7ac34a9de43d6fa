package projections

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/revline/revline/events"
	"github.com/vmihailenco/msgpack/v5"
)

// SnapshotSchema is the version of the read model's snapshot encoding
// (EncodeSnapshot). A snapshot of another version is never restored: the
// model is rebuilt from the log instead. Any change to what the model
// keeps (a field of appRecord or revisionRecord) or to how an event is
// folded in changes it: a snapshot holds the results of the fold that
// wrote it. (`revline replay` rebuilds the model and its snapshot too.)
const SnapshotSchema = 1

// readerFingerprint names the events this build folds
// (events.Registry.EventsFingerprint of the registry every store decodes
// with): a snapshot written by a build that reads other events (a rolling
// upgrade, a rollback) is not restored.
var readerFingerprint = events.NewRegistry().EventsFingerprint()

// ErrNotEmpty is returned by Restore for a model that has applied events.
var ErrNotEmpty = errors.New("the read model is not empty")

// ErrOtherReader is wrapped by Restore's error for a snapshot written by a
// build that reads other event types or versions than this one.
var ErrOtherReader = errors.New("the snapshot was folded by a build that reads other events")

// Snapshot returns the model's state encoded for a snapshot, and the
// stream sequence it covers (the checkpoint). The state is copied under
// the model's read lock, so queries go on meanwhile and applying waits
// only for the copy; it is encoded after.
func (m *RevisionHistory) Snapshot() (data []byte, checkpoint uint64, err error) {
	m.mu.RLock()
	snap := modelSnapshot{Checkpoint: m.checkpoint, Skipped: m.skipped, LastEventID: m.lastEventID, Reader: readerFingerprint, Apps: make([]appSnapshot, 0, len(m.apps))}
	for _, name := range slices.Sorted(maps.Keys(m.apps)) {
		snap.Apps = append(snap.Apps, m.apps[name].snapshot())
	}
	m.mu.RUnlock()
	data, err = msgpack.Marshal(snap)
	if err != nil {
		return nil, 0, fmt.Errorf("revision history: encode snapshot at %d: %w", snap.Checkpoint, err)
	}
	return data, snap.Checkpoint, nil
}

// SnapshotEventID returns the id of the event at the checkpoint a
// snapshot encoded by Snapshot covers, "" if that message was skipped (not
// an event Revline could decode): with the checkpoint, it is how a reader
// checks that the log still holds what the snapshot was folded from.
func SnapshotEventID(data []byte) (string, error) {
	var head struct {
		LastEventID string `msgpack:"last_event_id"`
	}
	if err := msgpack.Unmarshal(data, &head); err != nil {
		return "", fmt.Errorf("revision history: read snapshot: %w", err)
	}
	return head.LastEventID, nil
}

// Restore fills an empty model with the state of a snapshot encoded by
// Snapshot (schema SnapshotSchema), at its checkpoint: following the log
// from there on (Run) gives the model a fold of the whole log gives. It
// returns ErrNotEmpty for a model that has applied events, and an error
// wrapping ErrOtherReader for a snapshot a build that reads other events
// wrote. The caller checks first that the log still holds the snapshot's
// checkpoint.
func (m *RevisionHistory) Restore(data []byte) error {
	var snap modelSnapshot
	if err := msgpack.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("revision history: restore snapshot: %w", err)
	}
	if snap.Reader != readerFingerprint {
		return fmt.Errorf("revision history: restore snapshot: %w", ErrOtherReader)
	}
	events.TimesInUTC(&snap)
	apps := make(map[string]*appRecord, len(snap.Apps))
	for _, a := range snap.Apps {
		apps[a.Name] = a.record()
	}
	m.applying.Lock()
	defer m.applying.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.checkpoint != 0 || len(m.apps) != 0 {
		return ErrNotEmpty
	}
	m.apps, m.skipped, m.lastEventID = apps, snap.Skipped, snap.LastEventID
	m.advance(snap.Checkpoint)
	return nil
}

// modelSnapshot is the encoded form of the model: its records with their
// fields exported, in msgpack.
type modelSnapshot struct {
	Checkpoint  uint64 `msgpack:"checkpoint"`
	Skipped     uint64 `msgpack:"skipped"`
	LastEventID string `msgpack:"last_event_id"`
	// Reader is the writer's readerFingerprint.
	Reader string        `msgpack:"reader"`
	Apps   []appSnapshot `msgpack:"apps"`
}

type appSnapshot struct {
	Name          string               `msgpack:"name"`
	Current       string               `msgpack:"current"`
	Runtime       events.RuntimeParams `msgpack:"runtime"`
	Code          events.CodeParams    `msgpack:"code"`
	Suspended     bool                 `msgpack:"suspended"`
	UpdatedAt     time.Time            `msgpack:"updated_at"`
	UpdatedBy     string               `msgpack:"updated_by"`
	Revisions     []revisionSnapshot   `msgpack:"revisions"`
	Runners       []RunnerView         `msgpack:"runners"`
	Rollouts      []RolloutView        `msgpack:"rollouts"`
	ActiveRollout string               `msgpack:"active_rollout"`
	LastSwitch    *SwitchView          `msgpack:"last_switch"`
	LastNumber    uint64               `msgpack:"last_number"`
	Deleted       *DeletionView        `msgpack:"deleted"`
}

type revisionSnapshot struct {
	ID           string                `msgpack:"id"`
	Number       uint64                `msgpack:"number"`
	CreatedAt    time.Time             `msgpack:"created_at"`
	CreatedBy    string                `msgpack:"created_by"`
	Status       events.RevisionStatus `msgpack:"status"`
	Deleted      bool                  `msgpack:"deleted"`
	Command      string                `msgpack:"command"`
	Code         events.CodeParams     `msgpack:"code"`
	Message      string                `msgpack:"message"`
	Annotations  map[string]string     `msgpack:"annotations"`
	FailReason   string                `msgpack:"fail_reason"`
	RolledBackTo string                `msgpack:"rolled_back_to"`
	Requested    events.RuntimeParams  `msgpack:"requested"`
	LastRuntime  events.RuntimeParams  `msgpack:"last_runtime"`
	WasCurrent   bool                  `msgpack:"was_current"`
}

// snapshot copies a. The caller holds the model's lock.
func (a *appRecord) snapshot() appSnapshot {
	s := appSnapshot{
		Name: a.name, Current: a.current, Runtime: a.runtime, Code: a.code, Suspended: a.suspended,
		UpdatedAt: a.updatedAt, UpdatedBy: a.updatedBy, ActiveRollout: a.activeRollout, LastNumber: a.lastNumber,
		Revisions: make([]revisionSnapshot, 0, len(a.revisions)),
		Runners:   make([]RunnerView, 0, len(a.runners)),
		Rollouts:  make([]RolloutView, 0, len(a.rollouts)),
	}
	if a.lastSwitch != nil {
		sw := *a.lastSwitch
		sw.Inherited = slices.Clone(sw.Inherited)
		s.LastSwitch = &sw
	}
	if a.deleted != nil {
		d := *a.deleted
		s.Deleted = &d
	}
	for _, id := range slices.Sorted(maps.Keys(a.revisions)) {
		r := a.revisions[id]
		s.Revisions = append(s.Revisions, revisionSnapshot{
			ID: r.id, Number: r.number, CreatedAt: r.createdAt, CreatedBy: r.createdBy, Status: r.status, Deleted: r.deleted,
			Command: r.command, Code: r.code, Message: r.message, Annotations: maps.Clone(r.annotations), FailReason: r.failReason,
			RolledBackTo: r.rolledBackTo, Requested: r.requested, LastRuntime: r.lastRuntime, WasCurrent: r.wasCurrent,
		})
	}
	for _, id := range slices.Sorted(maps.Keys(a.runners)) {
		s.Runners = append(s.Runners, *a.runners[id])
	}
	for _, id := range slices.Sorted(maps.Keys(a.rollouts)) {
		s.Rollouts = append(s.Rollouts, *a.rollouts[id])
	}
	return s
}

// record is the appRecord s was copied from.
func (s appSnapshot) record() *appRecord {
	a := &appRecord{
		name: s.Name, current: s.Current, runtime: s.Runtime, code: s.Code, suspended: s.Suspended,
		updatedAt: s.UpdatedAt, updatedBy: s.UpdatedBy, activeRollout: s.ActiveRollout, lastNumber: s.LastNumber,
		lastSwitch: s.LastSwitch, deleted: s.Deleted,
		revisions: make(map[string]*revisionRecord, len(s.Revisions)),
		runners:   make(map[string]*RunnerView, len(s.Runners)),
		rollouts:  make(map[string]*RolloutView, len(s.Rollouts)),
	}
	for _, r := range s.Revisions {
		a.revisions[r.ID] = &revisionRecord{
			id: r.ID, number: r.Number, createdAt: r.CreatedAt, createdBy: r.CreatedBy, status: r.Status, deleted: r.Deleted,
			command: r.Command, code: r.Code, message: r.Message, annotations: r.Annotations, failReason: r.FailReason,
			rolledBackTo: r.RolledBackTo, requested: r.Requested, lastRuntime: r.LastRuntime, wasCurrent: r.WasCurrent,
		}
	}
	for _, r := range s.Runners {
		a.runners[r.RunnerID] = &r
	}
	for _, ro := range s.Rollouts {
		a.rollouts[ro.RolloutID] = &ro
	}
	return a
}
