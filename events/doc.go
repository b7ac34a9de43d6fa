// Package events defines Revline's wire contract and its event store.
//
// Everything that crosses the bus lives here: the commands clients publish,
// the events the App aggregate emits, the envelope that carries actor,
// correlation and causation ids, the stable wire names registered once in a
// Registry, and the msgpack/JSON codecs. The Store interface is the event
// store; JetStreamStore (one stream, one subject tree per app) is the
// production implementation and MemoryStore the in-memory one used by unit
// tests. Both pass the same contract suite (package events/storetest).
//
// docs/bus.md describes this contract for clients in other languages.
package events
