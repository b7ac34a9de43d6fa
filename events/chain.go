package events

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"strconv"
	"strings"
)

// ZeroHash is the previous hash of an app's first hashed event.
var ZeroHash = strings.Repeat("0", sha256.Size*2)

// Chain hashes envs, the events of one command, in order: the first one
// chains from prev, the hash of the app's last event ("" when it has no
// hashed event: ZeroHash), each next one from the one before. It encodes
// each event into its Payload, which EventMsg then stores as hashed, and
// returns envs with PrevHash, Hash and Payload set.
func Chain(prev string, envs []Envelope) ([]Envelope, error) {
	if prev == "" {
		prev = ZeroHash
	}
	out := make([]Envelope, len(envs))
	for i, env := range envs {
		env.Payload = nil
		data, err := env.payload()
		if err != nil {
			return nil, err
		}
		env.Payload, env.PrevHash = data, prev
		env.Hash = EventHash(env)
		out[i], prev = env, env.Hash
	}
	return out, nil
}

// EventHash computes the hash env should carry: SHA-256, in hex, over
// env.PrevHash and env's stream-independent content, each field as its
// length (8 bytes, big-endian) then its bytes, in this order: previous
// hash, app, event id, event type, schema version as stored (decimal), occurred-at
// (as its header holds it), actor, correlation id, causation id, payload.
// The stream sequence is not covered: it is not known before the append.
// docs/bus.md says the same for verifiers in other languages.
func EventHash(env Envelope) string {
	h := sha256.New()
	for _, field := range []string{
		env.PrevHash, env.App, env.EventID, env.Type, strconv.Itoa(storedVersion(env)),
		formatOccurredAt(env.OccurredAt), env.Actor, env.CorrelationID, env.CausationID,
	} {
		writeField(h, []byte(field))
	}
	writeField(h, env.Payload)
	return hex.EncodeToString(h.Sum(nil))
}

func writeField(h hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}

// storedVersion is the schema version env's payload is stored at, which
// the hash covers: an upcast event is hashed as it was written.
func storedVersion(env Envelope) int {
	if env.StoredSchemaVersion != 0 {
		return env.StoredSchemaVersion
	}
	return env.SchemaVersion
}
