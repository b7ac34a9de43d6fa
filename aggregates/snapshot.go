package aggregates

import (
	"bytes"
	"fmt"
	"maps"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/revline/revline/events"
)

// SnapshotSchema is the version of the snapshot encoding (Snapshot and
// every type it holds). Change it whenever App, or anything it holds,
// gains, loses or changes a field, or Evolve starts to fold an event
// differently: a snapshot of another version is ignored and the app's
// history folded instead.
const SnapshotSchema = 5

// Snapshot is what a cold load of one app needs besides the events after
// State.Version: the folded state, and the outcomes of the app's latest
// accepted commands, by which a redelivered command whose events are
// already folded into the state is recognised.
type Snapshot struct {
	State App
	// Accepted are the outcomes of the app's latest accepted commands,
	// oldest first.
	Accepted []events.Outcome
}

// Clone returns a deep copy of a: no map, pointer or slice is shared, so
// that Evolve on either leaves the other as it was.
func (a App) Clone() App {
	c := a
	c.Revisions = cloneMap(a.Revisions)
	c.Runners = cloneMap(a.Runners)
	for id, r := range c.Runners {
		if r.Stop != nil {
			stop := *r.Stop
			c.Runners[id].Stop = &stop
		}
	}
	c.Secrets = maps.Clone(a.Secrets)
	if a.Rollout != nil {
		rollout := *a.Rollout
		c.Rollout = &rollout
	}
	return c
}

// cloneMap copies m and the values its pointers point to.
func cloneMap[V any](m map[string]*V) map[string]*V {
	if m == nil {
		return nil
	}
	c := make(map[string]*V, len(m))
	for k, v := range m {
		copied := *v
		c[k] = &copied
	}
	return c
}

// EncodeSnapshot encodes s with msgpack, as of SnapshotSchema. Structs
// are encoded as arrays of their fields, in order, without their names
// (which would be most of a large app's snapshot): DecodeSnapshot refuses
// one with another number of fields, and SnapshotSchema tells the rest.
func EncodeSnapshot(s Snapshot) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseArrayEncodedStructs(true)
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("encode snapshot of app %q: %w", s.State.Name, err)
	}
	return buf.Bytes(), nil
}

// DecodeSnapshot decodes stored, a snapshot of app's state encoded by
// EncodeSnapshot. It refuses another schema, any field it does not know,
// and a state of another app or sequence than stored says: a snapshot is
// only trusted if it is exactly what this version writes.
func DecodeSnapshot(app string, stored events.Snapshot) (Snapshot, error) {
	if stored.Schema != SnapshotSchema {
		return Snapshot{}, fmt.Errorf("snapshot schema %d, this version reads %d", stored.Schema, SnapshotSchema)
	}
	r := bytes.NewReader(stored.Data)
	dec := msgpack.NewDecoder(r)
	dec.DisallowUnknownFields(true)
	var s Snapshot
	if err := dec.Decode(&s); err != nil {
		return Snapshot{}, fmt.Errorf("decode snapshot: %w", err)
	}
	if r.Len() > 0 {
		return Snapshot{}, fmt.Errorf("decode snapshot: %d trailing bytes", r.Len())
	}
	if s.State.Name != app || s.State.Version != stored.Sequence {
		return Snapshot{}, fmt.Errorf("snapshot of app %q at sequence %d holds app %q at %d", app, stored.Sequence, s.State.Name, s.State.Version)
	}
	return s, nil
}
