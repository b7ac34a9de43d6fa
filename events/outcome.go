package events

import (
	"fmt"

	"github.com/nats-io/nats.go"
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
// revline.outcomes.<command_id> in the command's own encoding.
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
}

// Err returns a *Rejection for a rejected outcome and nil otherwise.
func (o Outcome) Err() error {
	if o.Status == OutcomeRejected {
		return &Rejection{Code: o.Code, Message: o.Message}
	}
	return nil
}

// OutcomeMsg encodes o in contentType on its outcome subject.
// Any content type but JSON gets msgpack, so that a command in an
// unsupported encoding still hears why it was refused.
func OutcomeMsg(o Outcome, contentType string) (*nats.Msg, error) {
	if contentType != ContentTypeJSON {
		contentType = ContentTypeMsgpack
	}
	data, err := Marshal(contentType, o)
	if err != nil {
		return nil, fmt.Errorf("encode outcome: %w", err)
	}
	msg := nats.NewMsg(OutcomeSubject(o.CommandID))
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
