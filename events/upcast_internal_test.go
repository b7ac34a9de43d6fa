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
