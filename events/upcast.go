package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

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

// EventsFingerprint names what this registry can read of the log: every
// event type with its current schema version, hashed (SHA-256, hex). A
// snapshot of a fold records the fingerprint of the build that wrote it:
// a build whose registry differs (an event type added, a version moved)
// would have folded some events differently, or skipped them.
func (r *Registry) EventsFingerprint() string {
	types := r.EventTypes()
	slices.Sort(types)
	h := sha256.New()
	for _, t := range types {
		fmt.Fprintf(h, "%s@%d\n", t, r.EventVersion(t))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// upcast brings data, a msgpack payload of eventType at version, to the
// type's current version. A payload at the current version is returned as
// it is.
func (r *Registry) upcast(eventType string, version int, data []byte) ([]byte, error) {
	if version == r.EventVersion(eventType) {
		return data, nil
	}
	var payload map[string]any
	if err := msgpack.Unmarshal(data, &payload); err != nil {
		return nil, fmt.Errorf("decode %s event of version %d to upcast it: %w", eventType, version, err)
	}
	payload, err := r.upcastMap(eventType, version, payload)
	if err != nil {
		return nil, err
	}
	out, err := msgpack.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode upcast %s event: %w", eventType, err)
	}
	return out, nil
}

// upcastMap runs the upcasters that bring payload, of eventType at
// version, to the type's current version.
func (r *Registry) upcastMap(eventType string, version int, payload map[string]any) (map[string]any, error) {
	upcasters := r.upcasters[eventType]
	for v := version; v < SchemaVersion+len(upcasters); v++ {
		next, err := upcasters[v-1](payload)
		if err != nil {
			return nil, fmt.Errorf("upcast %s event from version %d to %d: %w", eventType, v, v+1, err)
		}
		payload = next
	}
	return payload, nil
}

// DecodeEventJSONAt decodes an event of the named type from its JSON form
// as an export of the log wrote it at schema version (its
// schema_version), bringing an older version to the type's current one
// with the same upcasters as DecodeEventMsg, so that an export read back
// by a newer build reads as the log does. The upcasters see the JSON
// object as a map whose numbers are int64 (uint64 above that, float64 if
// not whole), as a msgpack payload's integers are. A version below 1 or
// newer than this build knows is refused; the result is checked as
// strictly as DecodeEventJSON checks it.
func (r *Registry) DecodeEventJSONAt(name string, version int, data []byte) (Event, error) {
	if _, ok := r.events[name]; !ok {
		return nil, &UnknownTypeError{Kind: "event", Name: name}
	}
	current := r.EventVersion(name)
	switch {
	case version < SchemaVersion:
		return nil, fmt.Errorf("decode %s event from JSON: schema version %d: versions start at %d", name, version, SchemaVersion)
	case version > current:
		return nil, fmt.Errorf("decode %s event from JSON: schema version %d is newer than this build knows (%d)", name, version, current)
	case version < current:
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var payload map[string]any
		if err := dec.Decode(&payload); err != nil {
			return nil, fmt.Errorf("decode %s event of version %d from JSON to upcast it: %w", name, version, err)
		}
		payload, err := r.upcastMap(name, version, wholeNumbers(payload).(map[string]any))
		if err != nil {
			return nil, err
		}
		if data, err = json.Marshal(payload); err != nil {
			return nil, fmt.Errorf("encode upcast %s event: %w", name, err)
		}
	}
	return r.DecodeEventJSON(name, data)
}

// wholeNumbers replaces the json.Numbers in v (a decoded JSON value) by
// int64, uint64 or float64 values.
func wholeNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if n, err := strconv.ParseInt(v.String(), 10, 64); err == nil {
			return n
		}
		if n, err := strconv.ParseUint(v.String(), 10, 64); err == nil {
			return n
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, e := range v {
			v[k] = wholeNumbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = wholeNumbers(e)
		}
	}
	return v
}
