package events

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
)

// SchemaVersion is the first schema version of every event type, and the
// version of each type that has not changed since (see Versioned and
// Upcaster). Readers that meet a newer version than they know refuse it
// instead of guessing; older ones they upcast.
const SchemaVersion = 1

// Metadata says who asked for a change and how it relates to others. Every
// command and every event carries it.
type Metadata struct {
	// Actor is who asked: a user ("alice@laptop"), or a worker ("worker:runner").
	Actor string `json:"actor"`
	// CorrelationID ties together everything one user action caused.
	CorrelationID string `json:"correlation_id"`
	// CausationID is the id of the message that directly caused this one:
	// for an event, the command id; for a worker's command, the event id.
	CausationID string `json:"causation_id"`
}

// Envelope is one stored event with its metadata.
type Envelope struct {
	EventID       string
	App           string
	Type          string
	SchemaVersion int
	OccurredAt    time.Time
	Metadata
	// Sequence is the stream sequence, set once the event is stored.
	Sequence uint64
	Event    Event
	// PrevHash and Hash chain the event to the app's previous one (see
	// Chain); both are empty on an event written before events were
	// hashed.
	PrevHash, Hash string
	// Payload is the encoded event: as stored (before any upcasting),
	// once read back; as it will be stored, once Chain has hashed it. Nil
	// on a new envelope.
	Payload []byte
	// StoredSchemaVersion is the version Payload was stored at, once read
	// back (SchemaVersion is then the current one, which upcasting brought
	// the event to); 0 on a new envelope, stored at SchemaVersion.
	StoredSchemaVersion int
}

// NewEnvelope wraps ev for app with a fresh UUID v7 event id, at the
// schema version of ev's type.
func NewEnvelope(app string, ev Event, meta Metadata, now time.Time) Envelope {
	return Envelope{
		EventID:       uuid.Must(uuid.NewV7()).String(),
		App:           app,
		Type:          ev.EventType(),
		SchemaVersion: eventVersion(ev),
		OccurredAt:    now.UTC(),
		Metadata:      meta,
		Event:         ev,
	}
}

// HeaderGetter reads one header; nats.Header and Watermill's
// message.Metadata both satisfy it.
type HeaderGetter interface {
	Get(key string) string
}

// EventMsg encodes env as a NATS message on its event subject: the payload
// is the msgpack event, the envelope travels in headers.
func EventMsg(env Envelope) (*nats.Msg, error) {
	data, err := env.payload()
	if err != nil {
		return nil, err
	}
	msg := nats.NewMsg(EventSubject(env.App, env.Type))
	msg.Data = data
	h := msg.Header
	h.Set(HeaderMsgID, env.EventID)
	h.Set(HeaderContentType, ContentTypeMsgpack)
	h.Set(HeaderEventID, env.EventID)
	h.Set(HeaderEventType, env.Type)
	h.Set(HeaderSchemaVersion, strconv.Itoa(env.SchemaVersion))
	h.Set(HeaderApp, env.App)
	h.Set(HeaderOccurredAt, formatOccurredAt(env.OccurredAt))
	setMetadataHeaders(h, env.Metadata)
	if env.Hash != "" {
		h.Set(HeaderPrevHash, env.PrevHash)
		h.Set(HeaderEventHash, env.Hash)
	}
	return msg, nil
}

// payload returns the encoded event: the bytes Chain hashed, if it did.
func (env Envelope) payload() ([]byte, error) {
	if env.Payload != nil {
		return env.Payload, nil
	}
	data, err := Marshal(ContentTypeMsgpack, env.Event)
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", env.Type, err)
	}
	return data, nil
}

// formatOccurredAt is the one form of the occurred-at header: the writer
// stores it, and the event hash covers it.
func formatOccurredAt(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func setMetadataHeaders(h nats.Header, meta Metadata) {
	h.Set(HeaderActor, meta.Actor)
	if meta.CorrelationID != "" {
		h.Set(HeaderCorrelationID, meta.CorrelationID)
	}
	if meta.CausationID != "" {
		h.Set(HeaderCausationID, meta.CausationID)
	}
}

func metadataFromHeaders(h HeaderGetter) Metadata {
	return Metadata{
		Actor:         h.Get(HeaderActor),
		CorrelationID: h.Get(HeaderCorrelationID),
		CausationID:   h.Get(HeaderCausationID),
	}
}

// DecodeEventMsg rebuilds an Envelope from a stored message's headers and
// payload. seq is the message's stream sequence. It is the one path every
// reader of stored events decodes through (the store's Load and Follow,
// and so the processor, the runner worker, the projections and the audit
// log; the webhooks worker): a payload stored at an older schema version
// is upcast to the type's current version (Upcaster), and the envelope
// says the current version. A version newer than this build knows is
// refused.
func (r *Registry) DecodeEventMsg(h HeaderGetter, data []byte, seq uint64) (Envelope, error) {
	env := Envelope{
		EventID:  h.Get(HeaderEventID),
		App:      h.Get(HeaderApp),
		Type:     h.Get(HeaderEventType),
		Metadata: metadataFromHeaders(h),
		Sequence: seq,
		PrevHash: h.Get(HeaderPrevHash),
		Hash:     h.Get(HeaderEventHash),
		Payload:  data,
	}
	version, err := strconv.Atoi(h.Get(HeaderSchemaVersion))
	if err != nil || version < 1 {
		return Envelope{}, fmt.Errorf("event at sequence %d: bad %s header %q", seq, HeaderSchemaVersion, h.Get(HeaderSchemaVersion))
	}
	current := r.EventVersion(env.Type)
	if version > current {
		return Envelope{}, fmt.Errorf("event at sequence %d: schema version %d of %s is newer than this build knows (%d)", seq, version, truncate(env.Type, 80), current)
	}
	env.SchemaVersion, env.StoredSchemaVersion = current, version
	if env.OccurredAt, err = time.Parse(time.RFC3339Nano, h.Get(HeaderOccurredAt)); err != nil {
		return Envelope{}, fmt.Errorf("event at sequence %d: bad %s header: %w", seq, HeaderOccurredAt, err)
	}
	if env.Event, err = r.DecodeEventAt(env.Type, version, data); err != nil {
		return Envelope{}, fmt.Errorf("event at sequence %d: %w", seq, err)
	}
	return env, nil
}

// DecodeEventAt decodes the msgpack payload of an event of type name
// stored at schema version, upcast to the type's current version.
func (r *Registry) DecodeEventAt(name string, version int, data []byte) (Event, error) {
	data, err := r.upcast(name, version, data)
	if err != nil {
		return nil, err
	}
	return r.DecodeEvent(name, data)
}

// CommandEnvelope is one command with its metadata, as published on the bus.
type CommandEnvelope struct {
	// CommandID is a UUID chosen by the client; it is the idempotency key.
	CommandID string
	App       string
	Type      string
	Metadata
	// ContentType is the encoding the command arrived in; its outcome is
	// published in the same one.
	ContentType string
	// Key is the key the command names as its signer (its Revline-Key
	// header), "" for an unsigned command: its outcome is published under
	// it (OutcomeSubject), for the token of that name alone to read,
	// whether or not the signature verifies.
	Key     string
	Command Command
}

// NewCommand wraps cmd for app with a fresh UUID v7 command id.
func NewCommand(app string, cmd Command, meta Metadata) CommandEnvelope {
	return CommandEnvelope{
		CommandID:   uuid.Must(uuid.NewV7()).String(),
		App:         app,
		Type:        cmd.CommandType(),
		Metadata:    meta,
		ContentType: ContentTypeMsgpack,
		Command:     cmd,
	}
}

// CommandMsg encodes a command as a NATS message on its command subject.
// It refuses an unsafe app name and a command id that is not a UUID (the id
// becomes the outcome's subject).
func CommandMsg(c CommandEnvelope) (*nats.Msg, error) {
	if err := ValidateAppName(c.App); err != nil {
		return nil, err
	}
	if _, err := uuid.Parse(c.CommandID); err != nil {
		return nil, fmt.Errorf("command id %q is not a UUID", truncate(c.CommandID, 80))
	}
	if c.Command == nil {
		return nil, fmt.Errorf("command envelope for %q has no command", c.App)
	}
	data, err := Marshal(c.ContentType, c.Command)
	if err != nil {
		return nil, fmt.Errorf("encode %s command: %w", c.Command.CommandType(), err)
	}
	msg := nats.NewMsg(CommandSubject(c.App, c.Command.CommandType()))
	msg.Data = data
	msg.Header.Set(HeaderMsgID, c.CommandID)
	msg.Header.Set(HeaderContentType, contentTypeOrDefault(c.ContentType))
	setMetadataHeaders(msg.Header, c.Metadata)
	return msg, nil
}

func contentTypeOrDefault(ct string) string {
	if ct == "" {
		return ContentTypeMsgpack
	}
	return ct
}

// MalformedCommandError reports a command message that cannot be decoded.
// CommandID is set when the message carried a usable id, so that the
// sender can still be told.
type MalformedCommandError struct {
	CommandID string
	Code      string // a Rejection code such as "invalid_app_name"
	Err       error
}

// Error implements the error interface.
func (e *MalformedCommandError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error, for errors.Is and errors.As.
func (e *MalformedCommandError) Unwrap() error { return e.Err }

// Codes of commands refused before they reach the aggregate.
const (
	CodeMalformedCommand = "malformed_command"
	CodeInvalidAppName   = "invalid_app_name"
	CodeUnknownCommand   = "unknown_command"
	CodeMissingCommandID = "missing_command_id"
	// CodeAppHistoryUnreadable refuses a command for an app whose stored
	// history holds an event this build cannot decode: nothing can be
	// decided on a history that cannot be read.
	CodeAppHistoryUnreadable = "app_history_unreadable"
	// CodeInternalError refuses a command the server failed on (a bug);
	// the command also goes to the dead letters.
	CodeInternalError = "internal_error"
	// CodeUnauthenticated refuses a command that is unsigned, whose
	// signature does not verify, is too old, or whose key is unknown,
	// revoked or cannot sign (docs/bus.md §3).
	CodeUnauthenticated = "unauthenticated"
	// CodeForbidden refuses a signed command that its token's role or app
	// glob does not allow.
	CodeForbidden = "forbidden"
)

// DecodeCommandMsg decodes a command from its subject, headers and payload.
// It returns a *MalformedCommandError for anything it cannot use.
func (r *Registry) DecodeCommandMsg(subject string, h HeaderGetter, data []byte) (CommandEnvelope, error) {
	commandID := h.Get(HeaderMsgID)
	malformed := func(code string, err error) (CommandEnvelope, error) {
		return CommandEnvelope{}, &MalformedCommandError{CommandID: commandID, Code: code, Err: err}
	}
	if _, err := uuid.Parse(commandID); err != nil {
		commandID = ""
		return malformed(CodeMissingCommandID, fmt.Errorf("command on %q: the %s header must hold a UUID command id", truncate(subject, 120), HeaderMsgID))
	}
	rest, ok := strings.CutPrefix(subject, CommandSubjectPrefix)
	app, commandType, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return malformed(CodeMalformedCommand, fmt.Errorf("subject %q is not %sAPP.COMMAND", truncate(subject, 120), CommandSubjectPrefix))
	}
	if err := ValidateAppName(app); err != nil {
		return malformed(CodeInvalidAppName, err)
	}
	contentType := contentTypeOrDefault(h.Get(HeaderContentType))
	cmd, err := r.DecodeCommand(commandType, contentType, data)
	if err != nil {
		code := CodeMalformedCommand
		if _, unknown := err.(*UnknownTypeError); unknown {
			code = CodeUnknownCommand
		}
		return malformed(code, err)
	}
	return CommandEnvelope{
		CommandID:   commandID,
		App:         app,
		Type:        commandType,
		Metadata:    metadataFromHeaders(h),
		ContentType: contentType,
		Key:         h.Get(HeaderKey),
		Command:     cmd,
	}, nil
}
