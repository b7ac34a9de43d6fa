package events_test

import (
	"testing"
	"time"

	"github.com/revline/revline/events"
)

func chainOf(t *testing.T, prev string, evs ...events.Event) []events.Envelope {
	t.Helper()
	at := time.Date(2026, 11, 26, 12, 0, 0, 123456789, time.UTC)
	envs := make([]events.Envelope, len(evs))
	for i, ev := range evs {
		envs[i] = events.NewEnvelope("web", ev, events.Metadata{Actor: "alice", CorrelationID: "c", CausationID: "k"}, at)
	}
	chained, err := events.Chain(prev, envs)
	if err != nil {
		t.Fatal(err)
	}
	return chained
}

// The events of a batch chain one to the next, the first from the hash it
// is given (ZeroHash for none), and each hash is what EventHash computes.
func TestChainLinksEachEventToTheOneBefore(t *testing.T) {
	t.Parallel()
	envs := chainOf(t, "", events.RevisionDeployed{RevisionID: "r1"}, events.AppSuspended{})
	if envs[0].PrevHash != events.ZeroHash || envs[1].PrevHash != envs[0].Hash || envs[0].Hash == envs[1].Hash {
		t.Fatalf("links: %q -> %q, %q -> %q", envs[0].PrevHash, envs[0].Hash, envs[1].PrevHash, envs[1].Hash)
	}
	for _, env := range envs {
		if len(env.Hash) != 64 || events.EventHash(env) != env.Hash || env.Payload == nil {
			t.Errorf("event %s: hash %q, recomputed %q, payload %v", env.Type, env.Hash, events.EventHash(env), env.Payload)
		}
	}
	if next := chainOf(t, envs[1].Hash, events.AppResumed{}); next[0].PrevHash != envs[1].Hash {
		t.Errorf("a next batch chains from %q, want %q", next[0].PrevHash, envs[1].Hash)
	}
}

// Every field the hash covers changes it; the stream sequence does not.
func TestEventHashCoversTheEventsContent(t *testing.T) {
	t.Parallel()
	env := chainOf(t, "", events.RevisionDeployed{RevisionID: "r1"})[0]
	for name, change := range map[string]func(*events.Envelope){
		"previous hash":  func(e *events.Envelope) { e.PrevHash = e.Hash },
		"app":            func(e *events.Envelope) { e.App = "api" },
		"event id":       func(e *events.Envelope) { e.EventID = "other" },
		"type":           func(e *events.Envelope) { e.Type = "revision.failed" },
		"schema version": func(e *events.Envelope) { e.SchemaVersion = 2 },
		"occurred at":    func(e *events.Envelope) { e.OccurredAt = e.OccurredAt.Add(time.Nanosecond) },
		"actor":          func(e *events.Envelope) { e.Actor = "mallory" },
		"correlation id": func(e *events.Envelope) { e.CorrelationID = "c2" },
		"causation id":   func(e *events.Envelope) { e.CausationID = "k2" },
		"payload":        func(e *events.Envelope) { e.Payload = append([]byte{0x80}, e.Payload[1:]...) },
		// Fields run together must not hash alike: "alice"+"c" vs "alic"+"ec".
		"field boundary": func(e *events.Envelope) { e.Actor, e.CorrelationID = "alic", "ec" },
	} {
		changed := env
		change(&changed)
		if events.EventHash(changed) == env.Hash {
			t.Errorf("changing the %s leaves the hash as it was", name)
		}
	}
	env.Sequence = 99
	if events.EventHash(env) != env.Hash {
		t.Error("the stream sequence changes the hash")
	}
}
