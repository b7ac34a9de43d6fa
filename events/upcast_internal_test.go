package events

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// probeV3 is a test event type at schema version 3: version 1 called its
// one field "n", version 2 "count" (a string), version 3 "count" (an int).
type probeV3 struct {
	Count int `msgpack:"count" json:"count"`
}

func (probeV3) EventType() string  { return "test.probe" }
func (probeV3) SchemaVersion() int { return 3 }

// probeV1 is version 1 of the same type, for writing old events.
type probeV1 struct {
	N string `msgpack:"n"`
}

func (probeV1) EventType() string { return "test.probe" }

var probeUpcasters = []Upcaster{
	func(p map[string]any) (map[string]any, error) { // 1 → 2: rename
		p["count"] = p["n"]
		delete(p, "n")
		return p, nil
	},
	func(p map[string]any) (map[string]any, error) { // 2 → 3: string to int
		s, _ := p["count"].(string)
		if s == "bad" {
			return nil, errors.New("count is not a number")
		}
		p["count"] = len(s)
		return p, nil
	},
}

func probeRegistry() *Registry {
	r := NewRegistry()
	registerEvent[probeV3](r, probeUpcasters...)
	return r
}

// storedMsg encodes ev as the store writes it, at the given version.
func storedMsg(t *testing.T, ev Event, version int) *nats.Msg {
	t.Helper()
	env := NewEnvelope("app", ev, Metadata{Actor: "test"}, time.Unix(0, 0))
	env.SchemaVersion = version
	msg, err := EventMsg(env)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestUpcastChainsEveryVersionToTheCurrentOne(t *testing.T) {
	r := probeRegistry()
	if got := r.EventVersion("test.probe"); got != 3 {
		t.Fatalf("EventVersion = %d, want 3", got)
	}
	if got := NewEnvelope("app", probeV3{}, Metadata{}, time.Now()).SchemaVersion; got != 3 {
		t.Errorf("NewEnvelope writes version %d, want 3", got)
	}
	for _, tc := range []struct {
		name    string
		ev      any
		version int
	}{
		{"version 1", probeV1{N: "abcd"}, 1},
		{"version 2", map[string]any{"count": "abcd"}, 2},
		{"version 3", probeV3{Count: 4}, 3},
	} {
		msg := storedMsg(t, probeEvent{tc.ev}, tc.version)
		env, err := r.DecodeEventMsg(msg.Header, msg.Data, 7)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if env.SchemaVersion != 3 || env.Event != (probeV3{Count: 4}) {
			t.Errorf("%s: read as version %d, %#v; want version 3, count 4", tc.name, env.SchemaVersion, env.Event)
		}
	}
}

// probeEvent gives any payload the probe's type name.
type probeEvent struct{ payload any }

func (probeEvent) EventType() string { return "test.probe" }

// MarshalMsgpack encodes the payload alone.
func (p probeEvent) MarshalMsgpack() ([]byte, error) { return Marshal(ContentTypeMsgpack, p.payload) }

func TestUpcastRefusals(t *testing.T) {
	r := probeRegistry()
	for _, tc := range []struct {
		name    string
		ev      any
		version int
		want    string
	}{
		{"newer than known", probeV3{Count: 1}, 4, "event at sequence 7: schema version 4 of test.probe is newer than this build knows (3)"},
		{"upcaster fails", probeV1{N: "bad"}, 1, "event at sequence 7: upcast test.probe event from version 2 to 3: count is not a number"},
		{"not a map", probeEvent{"just a string"}, 1, "event at sequence 7: decode test.probe event of version 1 to upcast it"},
	} {
		msg := storedMsg(t, probeEvent{tc.ev}, tc.version)
		_, err := r.DecodeEventMsg(msg.Header, msg.Data, 7)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one starting %q", tc.name, err, tc.want)
		}
	}
}

func TestRegisterEventRefusesAWrongNumberOfUpcasters(t *testing.T) {
	for _, n := range []int{0, 1, 3} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%d upcasters for a version 3 type: no panic", n)
				}
			}()
			registerEvent[probeV3](NewRegistry(), append(probeUpcasters, probeUpcasters...)[:n]...)
		}()
	}
}

// An export read back (its JSON payload and schema_version) goes through
// the same upcasters as a stored event.
func TestDecodeEventJSONAtUpcastsOldVersions(t *testing.T) {
	r := probeRegistry()
	for _, tc := range []struct {
		name    string
		payload string
		version int
	}{
		{"version 1", `{"n": "abcd"}`, 1},
		{"version 2", `{"count": "abcd"}`, 2},
		{"version 3", `{"count": 4}`, 3},
	} {
		ev, err := r.DecodeEventJSONAt("test.probe", tc.version, []byte(tc.payload))
		if err != nil || ev != (probeV3{Count: 4}) {
			t.Errorf("%s: %#v, %v; want count 4", tc.name, ev, err)
		}
	}
	// Numbers reach the upcasters as a msgpack payload's integers do.
	var seen any
	numbers := NewRegistry()
	registerEvent[probeV3](numbers, func(p map[string]any) (map[string]any, error) {
		seen = p["count"]
		return p, nil
	}, func(p map[string]any) (map[string]any, error) { return p, nil })
	if ev, err := numbers.DecodeEventJSONAt("test.probe", 1, []byte(`{"count": 7}`)); err != nil || ev != (probeV3{Count: 7}) || seen != int64(7) {
		t.Errorf("a number through the upcasters: %#v, %v; the upcaster saw %#v (%T), want int64 7", ev, err, seen, seen)
	}

	for _, tc := range []struct {
		name, payload string
		version       int
		want          string
	}{
		{"newer than known", `{"count": 4}`, 4, "schema version 4 is newer than this build knows (3)"},
		{"version 0", `{"count": 4}`, 0, "versions start at 1"},
		{"upcaster fails", `{"n": "bad"}`, 1, "upcast test.probe event from version 2 to 3: count is not a number"},
		{"not an object", `"just a string"`, 1, "decode test.probe event of version 1 from JSON to upcast it"},
		{"an unknown field after upcasting", `{"n": "ab", "extra": 1}`, 1, `unknown field "extra"`},
	} {
		_, err := r.DecodeEventJSONAt("test.probe", tc.version, []byte(tc.payload))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
	var unknown *UnknownTypeError
	if _, err := r.DecodeEventJSONAt("test.nothing", 1, []byte(`{}`)); !errors.As(err, &unknown) {
		t.Errorf("an unknown type: %v, want an *UnknownTypeError", err)
	}
}

// The events fingerprint is the same for the same registry, and differs
// once an event type is added or a type's version moves.
func TestEventsFingerprintChangesWithWhatTheRegistryReads(t *testing.T) {
	base := NewRegistry().EventsFingerprint()
	if again := NewRegistry().EventsFingerprint(); again != base || len(base) != 64 {
		t.Fatalf("fingerprints %q and %q of the same registry", base, again)
	}
	added := NewRegistry()
	registerEvent[probeV1](added)
	upcast := probeRegistry()
	if a, u := added.EventsFingerprint(), upcast.EventsFingerprint(); a == base || u == base || a == u {
		t.Fatalf("fingerprints: base %s, a type added %s, the same at version 3 %s", base, a, u)
	}
}
