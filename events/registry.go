package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"

	"github.com/vmihailenco/msgpack/v5"
)

// UnknownTypeError reports a command or event name the registry does not know.
type UnknownTypeError struct {
	Kind string // "command" or "event"
	Name string
}

// Error implements the error interface.
func (e *UnknownTypeError) Error() string {
	return fmt.Sprintf("unknown %s type %q", e.Kind, truncate(e.Name, 80))
}

type decodeFunc[T any] func(data []byte, unmarshal func([]byte, any) error) (T, error)

// Registry maps stable wire names to payload types. It is built once by
// NewRegistry and never changes afterwards, so it is safe to share.
type Registry struct {
	events   map[string]decodeFunc[Event]
	commands map[string]decodeFunc[Command]
	// fieldless names the commands that have no fields: only they may be
	// sent with an empty payload.
	fieldless map[string]bool
	// upcasters holds, per event type past its first schema version, the
	// functions from each version to the next: upcasters[t][0] turns
	// version 1 into 2. A type's current version is one more than its
	// number of upcasters.
	upcasters map[string][]Upcaster
}

// RegistryOption changes a Registry as NewRegistry builds it.
type RegistryOption func(*Registry)

// WithUpcasters makes the registry read eventType at version
// 1+len(upcasters), upcasters[i] turning version i+1 into i+2, in place of
// what the type declares. It is for tests of the upcasting mechanism (a
// real type read as if it had a version 2); the product declares a
// type's versions with the type (Versioned) and in NewRegistry. NewRegistry
// panics when eventType is not registered: that is a mistake in the
// program, not in its input.
func WithUpcasters(eventType string, upcasters ...Upcaster) RegistryOption {
	return func(r *Registry) {
		if _, ok := r.events[eventType]; !ok {
			panic(fmt.Sprintf("events: WithUpcasters: unknown event type %q", eventType))
		}
		r.upcasters[eventType] = upcasters
	}
}

// NewRegistry returns the registry of every Revline command and event.
func NewRegistry(opts ...RegistryOption) *Registry {
	r := &Registry{events: map[string]decodeFunc[Event]{}, commands: map[string]decodeFunc[Command]{}, fieldless: map[string]bool{}, upcasters: map[string][]Upcaster{}}
	registerEvent[RevisionCreated](r)
	registerEvent[RevisionDeployed](r)
	registerEvent[RevisionFailed](r)
	registerEvent[RevisionDeleted](r)
	registerEvent[CurrentRevisionSet](r)
	registerEvent[AppScaled](r)
	registerEvent[AppSuspended](r)
	registerEvent[AppResumed](r)
	registerEvent[RolloutRequested](r)
	registerEvent[RolloutCompleted](r)
	registerEvent[RolloutFailed](r)
	registerEvent[RunnerStateChanged](r)
	registerEvent[SecretSet](r)
	registerEvent[SecretUnset](r)
	registerEvent[RunnerStopRequested](r)
	registerEvent[AppDeleted](r)
	registerEvent[WebhookAdded](r)
	registerEvent[WebhookDisabled](r)
	registerEvent[WebhookEnabled](r)
	registerEvent[WebhookRemoved](r)

	registerCommand[Deploy](r)
	registerCommand[SetRevision](r)
	registerCommand[Rollout](r)
	registerCommand[DeleteRevision](r)
	registerCommand[Scale](r)
	registerCommand[Suspend](r)
	registerCommand[Resume](r)
	registerCommand[CompleteDeploy](r)
	registerCommand[FailDeploy](r)
	registerCommand[CompleteRollout](r)
	registerCommand[FailRollout](r)
	registerCommand[SetSecret](r)
	registerCommand[UnsetSecret](r)
	registerCommand[StopRunner](r)
	registerCommand[DeleteApp](r)
	registerCommand[ReportRunner](r)
	for _, opt := range opts {
		opt(r)
	}
	return r
}

// registerEvent registers T with the upcasters that bring each of its
// older versions to the next. It panics when their number does not match
// T's version (Versioned), a mistake every test that builds a registry
// finds.
func registerEvent[T Event](r *Registry, upcasters ...Upcaster) {
	var zero T
	if version := eventVersion(zero); len(upcasters) != version-1 {
		panic(fmt.Sprintf("events: %s is at schema version %d, so it needs %d upcasters, not %d", zero.EventType(), version, version-1, len(upcasters)))
	}
	if len(upcasters) > 0 {
		r.upcasters[zero.EventType()] = upcasters
	}
	r.events[zero.EventType()] = func(data []byte, unmarshal func([]byte, any) error) (Event, error) {
		var v T
		err := unmarshal(data, &v)
		return v, err
	}
}

func registerCommand[T Command](r *Registry) {
	var zero T
	r.fieldless[zero.CommandType()] = reflect.TypeFor[T]().NumField() == 0
	r.commands[zero.CommandType()] = func(data []byte, unmarshal func([]byte, any) error) (Command, error) {
		var v T
		err := unmarshal(data, &v)
		return v, err
	}
}

// EventTypes lists the registered event names.
func (r *Registry) EventTypes() []string { return keys(r.events) }

// CommandTypes lists the registered command names.
func (r *Registry) CommandTypes() []string { return keys(r.commands) }

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// DecodeEvent decodes a msgpack event payload of the named type. Fields
// it does not know are skipped: an event is a fact a newer version may
// have written with fields added since (every added field is optional), and
// a reader that refused it would find the app's whole history unreadable
// after a rollback of the binary. Commands stay strict (DecodeCommand).
// It returns an *UnknownTypeError for an unregistered name.
func (r *Registry) DecodeEvent(name string, data []byte) (Event, error) {
	return r.decodeEvent(name, data, unmarshalEventMsgpack, "")
}

func (r *Registry) decodeEvent(name string, data []byte, unmarshal func([]byte, any) error, from string) (Event, error) {
	decode, ok := r.events[name]
	if !ok {
		return nil, &UnknownTypeError{Kind: "event", Name: name}
	}
	ev, err := decode(data, unmarshal)
	if err != nil {
		return nil, fmt.Errorf("decode %s event%s: %w", name, from, err)
	}
	return ev, nil
}

// DecodeEventJSON decodes an event of the named type from its JSON form
// (docs/bus.md §6), as exports of the log write it. Unlike DecodeEvent it
// refuses unknown fields: it checks an export, where a field this version
// does not know is a mistake to report. It returns an *UnknownTypeError for
// an unregistered name.
func (r *Registry) DecodeEventJSON(name string, data []byte) (Event, error) {
	return r.decodeEvent(name, data, unmarshalJSON, " from JSON")
}

// DecodeCommand decodes a command payload of the named type, in msgpack or
// JSON according to contentType ("" means msgpack). Unknown fields are
// rejected so that a misspelt parameter is not silently ignored. An empty
// payload is accepted only for a command without fields (suspend, resume):
// for any other it is an error, so that a body lost on the way never turns
// into a command with every field at its default (an empty rollout would
// recycle every runner).
func (r *Registry) DecodeCommand(name, contentType string, data []byte) (Command, error) {
	decode, ok := r.commands[name]
	if !ok {
		return nil, &UnknownTypeError{Kind: "command", Name: name}
	}
	unmarshal, err := unmarshalerFor(contentType)
	if err != nil {
		return nil, err
	}
	if len(data) == 0 {
		if !r.fieldless[name] {
			return nil, fmt.Errorf("decode %s command: empty payload: send a map of its fields ({} in JSON, 0x80 in msgpack for all defaults)", name)
		}
		data, _ = Marshal(contentType, struct{}{})
	}
	cmd, err := decode(data, unmarshal)
	if err != nil {
		return nil, fmt.Errorf("decode %s command: %w", name, err)
	}
	return cmd, nil
}

func unmarshalerFor(contentType string) (func([]byte, any) error, error) {
	switch contentType {
	case "", ContentTypeMsgpack:
		return unmarshalMsgpack, nil
	case ContentTypeJSON:
		return unmarshalJSON, nil
	}
	return nil, fmt.Errorf("unsupported content type %q: want %s or %s", contentType, ContentTypeMsgpack, ContentTypeJSON)
}

// Marshal encodes v in the given content type ("" means msgpack).
func Marshal(contentType string, v any) ([]byte, error) {
	switch contentType {
	case "", ContentTypeMsgpack:
		return msgpack.Marshal(v)
	case ContentTypeJSON:
		return json.Marshal(v)
	}
	return nil, fmt.Errorf("unsupported content type %q", contentType)
}

// Unmarshal decodes data of the given content type ("" means msgpack) into v.
func Unmarshal(contentType string, data []byte, v any) error {
	unmarshal, err := unmarshalerFor(contentType)
	if err != nil {
		return err
	}
	return unmarshal(data, v)
}

func unmarshalMsgpack(data []byte, v any) error { return decodeMsgpack(data, v, true) }

func unmarshalEventMsgpack(data []byte, v any) error { return decodeMsgpack(data, v, false) }

func unmarshalJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	// More() misses a stray closing '}' or ']'; only the end of input will do.
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after JSON value")
	}
	return nil
}

// decodeMsgpack decodes one msgpack value, and nothing after it; strict
// refuses fields v does not have.
func decodeMsgpack(data []byte, v any, strict bool) error {
	if len(data) == 0 {
		return fmt.Errorf("empty payload")
	}
	dec := msgpack.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields(strict)
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.PeekCode(); err == nil {
		return fmt.Errorf("trailing data after msgpack value")
	}
	return nil
}
