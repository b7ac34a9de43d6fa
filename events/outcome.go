package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/vmihailenco/msgpack/v5"
)

// OutcomeStatus says what became of a command.
type OutcomeStatus string

// Outcome statuses.
const (
	// OutcomeAccepted: the command's events were appended.
	OutcomeAccepted OutcomeStatus = "accepted"
	// OutcomeRejected: a rule refused the command; nothing was appended.
	OutcomeRejected OutcomeStatus = "rejected"
	// OutcomeNoOp: the command asked for what is already true (for example
	// set-rev to the current revision); nothing was appended.
	OutcomeNoOp OutcomeStatus = "noop"
)

// Outcome is the answer to one command, published on
// revline.outcomes.<command_id>.<key> (OutcomeSubject) in the command's
// own encoding.
type Outcome struct {
	CommandID   string        `msgpack:"command_id" json:"command_id"`
	App         string        `msgpack:"app" json:"app"`
	CommandType string        `msgpack:"command_type" json:"command_type"`
	Status      OutcomeStatus `msgpack:"status" json:"status"`
	// Code and Message explain a rejection or a no-op.
	Code    string `msgpack:"code,omitempty" json:"code,omitempty"`
	Message string `msgpack:"message,omitempty" json:"message,omitempty"`
	// FirstSequence and LastSequence are the stream sequences of the
	// appended events (accepted only).
	FirstSequence uint64 `msgpack:"first_sequence,omitempty" json:"first_sequence,omitempty"`
	LastSequence  uint64 `msgpack:"last_sequence,omitempty" json:"last_sequence,omitempty"`
	// Duplicate is true when the command id had already been processed;
	// the sequences are those of the first processing.
	Duplicate bool `msgpack:"duplicate,omitempty" json:"duplicate,omitempty"`
	// RevisionID names the revision a deploy created.
	RevisionID string `msgpack:"revision_id,omitempty" json:"revision_id,omitempty"`
	// RolloutID names the rollout a rollout command started.
	RolloutID string `msgpack:"rollout_id,omitempty" json:"rollout_id,omitempty"`
	// Fingerprint identifies the command this outcome answers (see
	// Fingerprint): the same command id sent with another command is then
	// told apart and refused (CodeIdempotencyKeyReused).
	Fingerprint string `msgpack:"fingerprint,omitempty" json:"fingerprint,omitempty"`
}

// CodeIdempotencyKeyReused refuses a command whose id (idempotency key) was
// used before for a different command: the first one's outcome stands, and
// the second has no effect.
const CodeIdempotencyKeyReused = "idempotency_key_reused"

// Fingerprint identifies a command by its app, type and fields, however
// it was encoded (msgpack or JSON, fields in any order).
func Fingerprint(cmd CommandEnvelope) string {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	_ = enc.Encode(cmd.Command) // commands are plain structs: this does not fail
	sum := sha256.Sum256(append([]byte(cmd.App+"\x00"+cmd.Type+"\x00"), buf.Bytes()...))
	return hex.EncodeToString(sum[:16])
}

// Answers reports whether the stored outcome o answers cmd, rather than
// another command sent with the same id. Outcomes recorded before
// fingerprints existed answer any command.
func (o Outcome) Answers(cmd CommandEnvelope) bool {
	return o.Fingerprint == "" || o.Fingerprint == Fingerprint(cmd)
}

// ReusedKey is the refusal of cmd, sent with the id of the command that o
// answers.
func ReusedKey(cmd CommandEnvelope) Outcome {
	return Outcome{CommandID: cmd.CommandID, App: cmd.App, CommandType: cmd.Type, Status: OutcomeRejected, Code: CodeIdempotencyKeyReused,
		Message: fmt.Sprintf("command id (idempotency key) %s was used before for another command; that one's outcome stands: send this command with another key", cmd.CommandID)}
}

// Err returns a *Rejection for a rejected outcome and nil otherwise.
func (o Outcome) Err() error {
	if o.Status == OutcomeRejected {
		return &Rejection{Code: o.Code, Message: o.Message}
	}
	return nil
}

// OutcomeMsg encodes o in contentType on its outcome subject for the
// command's key (OutcomeSubject): the name of the token that signed it.
// Any content type but JSON gets msgpack, so that a command in an
// unsupported encoding still hears why it was refused.
func OutcomeMsg(o Outcome, key, contentType string) (*nats.Msg, error) {
	if contentType != ContentTypeJSON {
		contentType = ContentTypeMsgpack
	}
	data, err := Marshal(contentType, o)
	if err != nil {
		return nil, fmt.Errorf("encode outcome: %w", err)
	}
	msg := nats.NewMsg(OutcomeSubject(key, o.CommandID))
	msg.Data = data
	msg.Header.Set(HeaderContentType, contentType)
	return msg, nil
}

// DecodeOutcome decodes an outcome message.
func DecodeOutcome(h HeaderGetter, data []byte) (Outcome, error) {
	var o Outcome
	if err := Unmarshal(contentTypeOrDefault(h.Get(HeaderContentType)), data, &o); err != nil {
		return Outcome{}, fmt.Errorf("decode outcome: %w", err)
	}
	return o, nil
}

// Rejection is a command refused by a rule: a stable machine-readable code
// and a sentence for people. NoOp marks a command that asked for what is
// already true.
type Rejection struct {
	Code    string
	Message string
	NoOp    bool
}

// Error implements the error interface.
func (r *Rejection) Error() string { return r.Message }
