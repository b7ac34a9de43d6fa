package events

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Versioned is implemented by an event type whose payload schema has
// changed since its first version: SchemaVersion returns the version the
// type's Go struct has, which new events of the type are written with. A
// type without the method is at version 1 (SchemaVersion). Introducing
// version N+1 of a type means adding the method (or raising what it
// returns) and registering, in NewRegistry, one more Upcaster that turns
// version N's payload into N+1's (docs/bus.md, Schema versions).
type Versioned interface {
	Event
	SchemaVersion() int
}

// eventVersion is the schema version ev is written with.
func eventVersion(ev Event) int {
	if v, ok := ev.(Versioned); ok {
		return v.SchemaVersion()
	}
	return SchemaVersion
}

// Upcaster turns the payload of one schema version of an event type into
// the next version's. It works on the payload decoded into a map (msgpack
// maps become map[string]any, arrays []any, integers int8 to int64 or
// uint8 to uint64 by their encoded width): a change of schema renames,
// splits, moves or computes fields, which is a few map operations, with no
// Go struct of the old version to keep forever and no msgpack parsing in
// each upcaster. The map it returns is encoded again and decoded into the
// current Go type by the same lenient decoder as any event, so the result
// is checked as strictly as a payload written at the current version. Only
// events stored at an older version pay for the round trip. An upcaster
// may change the map it is given and return it.
type Upcaster func(payload map[string]any) (map[string]any, error)

// EventVersion returns the schema version this registry reads eventType
// at: the version every stored event of the type is brought to. It is 1
// (SchemaVersion) for a type that never changed and for an unknown one.
func (r *Registry) EventVersion(eventType string) int {
	return SchemaVersion + len(r.upcasters[eventType])
}

// upcast brings data, a msgpack payload of eventType at version, to the
// type's current version. A payload at the current version is returned as
// it is.
func (r *Registry) upcast(eventType string, version int, data []byte) ([]byte, error) {
	upcasters := r.upcasters[eventType]
	if version == SchemaVersion+len(upcasters) {
		return data, nil
	}
	var payload map[string]any
	if err := msgpack.Unmarshal(data, &payload); err != nil {
		return nil, fmt.Errorf("decode %s event of version %d to upcast it: %w", eventType, version, err)
	}
	for v := version; v < SchemaVersion+len(upcasters); v++ {
		next, err := upcasters[v-1](payload)
		if err != nil {
			return nil, fmt.Errorf("upcast %s event from version %d to %d: %w", eventType, v, v+1, err)
		}
		payload = next
	}
	out, err := msgpack.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode upcast %s event: %w", eventType, err)
	}
	return out, nil
}
