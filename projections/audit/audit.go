// Package audit reads the event log as an audit trail: every event with
// who, when, what (a one-line human summary) and which command caused it,
// filtered by app, time, type, actor and revision, a page at a time or
// live. The CLI's `revline audit` and `apps history`, the HTTP API's
// /v1/audit and the dashboard share it.
//
// It reads the event store itself, not a read model, and folds each app's
// events with aggregates.Evolve, the one fold every view builds on, to
// know what an event meant when it happened (which revision number an id
// had, what a scale changed).
package audit

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
)

// Log is the part of the event store the audit reads;
// *events.JetStreamStore has it.
type Log interface {
	events.Follower
	// FollowApp is Follow restricted to one app's events.
	FollowApp(ctx context.Context, app string, from uint64, fn events.FollowFunc) error
	// LastSequence returns the sequence of the log's last event.
	LastSequence(ctx context.Context) (uint64, error)
	// LastAppSequence returns the sequence of app's last event.
	LastAppSequence(ctx context.Context, app string) (uint64, error)
}

// Record is one event of the log in its export form, which is stable:
// `revline audit -o jsonl` writes one per line, and a tool that ingests
// them may rely on every field.
type Record struct {
	Sequence      uint64    `json:"sequence"`
	ID            string    `json:"id"`
	Type          string    `json:"type"`
	SchemaVersion int       `json:"schema_version"`
	App           string    `json:"app"`
	Time          time.Time `json:"time"`
	Actor         string    `json:"actor"`
	CorrelationID string    `json:"correlation_id"`
	// CausationID is the id of the command that caused the event.
	CausationID string `json:"causation_id"`
	// Payload is the event's fields as docs/bus.md §6 lists them; null
	// for an event that could not be decoded.
	Payload events.Event `json:"payload"`
	// Error says why the event could not be decoded; absent otherwise.
	Error string `json:"error,omitempty"`
	// PrevHash and Hash chain the event to its app's previous one
	// (docs/bus.md "Tamper evidence"); absent for an event written before
	// events were hashed.
	PrevHash string `json:"prev_hash,omitempty"`
	Hash     string `json:"hash,omitempty"`
	// StoredSchemaVersion and StoredPayload are the schema version and
	// the bytes (msgpack; base64 in JSON) of the payload exactly as
	// stored, which the hash covers: CheckExport verifies an export with
	// them, offline.
	StoredSchemaVersion int    `json:"stored_schema_version,omitempty"`
	StoredPayload       []byte `json:"stored_payload,omitempty"`
}

// registry decodes the payloads of records read back from JSON.
var registry = events.NewRegistry()

// UnmarshalJSON reads a record back from its export form, decoding its
// payload into the event type it names, as DecodeRecord does with every
// event type's current upcasters.
func (r *Record) UnmarshalJSON(data []byte) error {
	rec, err := DecodeRecord(registry, data)
	if err != nil {
		return err
	}
	*r = rec
	return nil
}

// DecodeRecord reads a record back from its export form (one line of
// `revline audit -o jsonl`) with reg: its payload is decoded into the
// event type it names at its schema_version, and a payload exported at an
// older version than reg reads is upcast to the current one, as the log's
// readers upcast stored events (events.Registry.DecodeEventJSONAt); the
// record then says the current version. A record without schema_version
// is read at the current version.
func DecodeRecord(reg *events.Registry, data []byte) (Record, error) {
	type plain Record // without UnmarshalJSON
	var raw struct {
		plain
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return Record{}, err
	}
	r := Record(raw.plain)
	r.Payload = nil
	if len(raw.Payload) == 0 || string(raw.Payload) == "null" {
		return r, nil
	}
	if r.SchemaVersion == 0 {
		r.SchemaVersion = reg.EventVersion(r.Type)
	}
	ev, err := reg.DecodeEventJSONAt(r.Type, r.SchemaVersion, raw.Payload)
	if err != nil {
		return Record{}, fmt.Errorf("record %d: %w", r.Sequence, err)
	}
	r.Payload, r.SchemaVersion = ev, reg.EventVersion(r.Type)
	return r, nil
}

// Entry is a Record with its summary: one line saying what happened, for
// people ("rolled back to v3 (runtime params kept from v5)"). The wording
// of summaries may change between versions; Record's fields do not.
type Entry struct {
	Record
	Summary string `json:"summary"`
	// By is who asked for what the event records: its actor, except for
	// what the runner worker reports of a deploy (the revision up or
	// failed, and the alias moving to it), which is the deployer's doing.
	By string `json:"by"`
	// Current is the app's current revision after the event ("v3"; ""
	// before the first deploy).
	Current string `json:"current,omitempty"`
}

// UnmarshalJSON reads an entry back from its JSON form: the record, then
// the fields an entry adds (Record's own UnmarshalJSON would otherwise
// take the whole object and drop them).
func (e *Entry) UnmarshalJSON(data []byte) error {
	if err := json.Unmarshal(data, &e.Record); err != nil {
		return err
	}
	var extra struct {
		Summary string `json:"summary"`
		By      string `json:"by"`
		Current string `json:"current"`
	}
	if err := json.Unmarshal(data, &extra); err != nil {
		return err
	}
	e.Summary, e.By, e.Current = extra.Summary, extra.By, extra.Current
	return nil
}

// HistoryTypes are the event types of an app's short history (`revline
// apps history`): what changed what runs or how, leaving out deploy
// requests (their outcome is there) and runner reports.
var HistoryTypes = []string{
	events.TypeCurrentRevisionSet, events.TypeAppScaled, events.TypeRevisionFailed, events.TypeRevisionDeleted,
	events.TypeAppSuspended, events.TypeAppResumed, events.TypeRolloutRequested, events.TypeAppDeleted,
}

// Filter selects entries. Its zero value selects every entry.
type Filter struct {
	// App keeps one app's events ("": every app).
	App string
	// Since and Until keep events that occurred at or after Since and
	// before Until (zero: no bound).
	Since, Until time.Time
	// Types keeps events whose type matches one of these globs
	// (path.Match: "revision.*", "app.scaled"); none keeps every type.
	Types []string
	// Actor keeps events of this actor.
	Actor string
	// Revision keeps events about this revision (its full id: see
	// ResolveRevision); it needs App.
	Revision string
}

// Validate reports a filter that can select nothing by mistake: a bad
// glob, an invalid app name, a revision without its app, or an empty
// time window.
func (f Filter) Validate() error {
	if f.App != "" {
		if err := events.ValidateAggregateName(f.App); err != nil {
			return err
		}
	}
	for _, glob := range f.Types {
		if _, err := path.Match(glob, ""); err != nil || glob == "" {
			return fmt.Errorf("event type pattern %q is not a valid glob (such as revision.* or app.scaled)", glob)
		}
	}
	if f.Revision != "" && f.App == "" {
		return errors.New("a revision filter needs the app: revision numbers and ids belong to one app")
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return fmt.Errorf("since (%s) is not before until (%s)", f.Since.Format(time.RFC3339), f.Until.Format(time.RFC3339))
	}
	return nil
}

// Match reports whether the filter keeps env.
func (f Filter) Match(env events.Envelope) bool {
	switch {
	case f.App != "" && env.App != f.App:
		return false
	case !f.Since.IsZero() && env.OccurredAt.Before(f.Since):
		return false
	case !f.Until.IsZero() && !env.OccurredAt.Before(f.Until):
		return false
	case f.Actor != "" && env.Actor != f.Actor:
		return false
	case f.Revision != "" && !namesRevision(env.Event, f.Revision):
		return false
	}
	if len(f.Types) == 0 {
		return true
	}
	for _, glob := range f.Types {
		if ok, _ := path.Match(glob, env.Type); ok {
			return true
		}
	}
	return false
}

// namesRevision reports whether ev is about revision id.
func namesRevision(ev events.Event, id string) bool {
	switch ev := ev.(type) {
	case events.RevisionCreated:
		return ev.RevisionID == id
	case events.RevisionDeployed:
		return ev.RevisionID == id
	case events.RevisionFailed:
		return ev.RevisionID == id
	case events.RevisionDeleted:
		return ev.RevisionID == id
	case events.CurrentRevisionSet:
		return ev.To == id || ev.From == id
	case events.AppSuspended:
		return ev.RevisionID == id
	case events.AppResumed:
		return ev.RevisionID == id
	case events.AppDeleted:
		return ev.RevisionID == id
	case events.RolloutRequested:
		return ev.RevisionID == id
	case events.RolloutCompleted:
		return ev.RevisionID == id
	case events.RolloutFailed:
		return ev.RevisionID == id
	case events.RunnerStateChanged:
		return ev.RevisionID == id
	case events.RunnerStopRequested:
		return ev.RevisionID == id
	}
	return false
}

// folder folds the log app by app with aggregates.Evolve, so that each
// event is summarised against its app as it was just before.
type folder struct {
	apps map[string]aggregates.App
}

func newFolder() *folder { return &folder{apps: map[string]aggregates.App{}} }

// entry summarises env against its app's state, then folds it in.
func (f *folder) entry(env events.Envelope, decodeErr error) Entry {
	e := Entry{Record: Record{
		Sequence: env.Sequence, ID: env.EventID, Type: env.Type, SchemaVersion: env.SchemaVersion,
		App: env.App, Time: env.OccurredAt, Actor: env.Actor, CorrelationID: env.CorrelationID,
		CausationID: env.CausationID, Payload: env.Event,
		PrevHash: env.PrevHash, Hash: env.Hash, StoredSchemaVersion: env.StoredSchemaVersion, StoredPayload: env.Payload,
	}}
	if decodeErr != nil {
		e.Payload = nil
		e.Error = decodeErr.Error()
		e.Summary = "unreadable event, skipped by every reader: " + oneLine(decodeErr.Error())
		if env.Type == "" {
			e.Summary = Summary(aggregates.App{}, events.Envelope{})
		}
		return e
	}
	state := f.apps[env.App]
	if state.Name == "" {
		state.Name = env.App
	}
	e.Summary = Summary(state, env)
	e.By = requester(state, env)
	if env.Event != nil {
		state = aggregates.Evolve(state, env)
		f.apps[env.App] = state
	}
	if state.Current != "" {
		e.Current = revisionName(state, state.Current)
	}
	return e
}

// requester is who asked for what env records (Entry.By), given its app's
// state before it.
func requester(before aggregates.App, env events.Envelope) string {
	var revision string
	switch ev := env.Event.(type) {
	case events.RevisionDeployed:
		revision = ev.RevisionID
	case events.RevisionFailed:
		revision = ev.RevisionID
	case events.CurrentRevisionSet:
		if ev.Reason == "deploy" {
			revision = ev.To
		}
	case events.WebhookAdded:
		return cmp.Or(ev.By, env.Actor)
	case events.WebhookDisabled:
		return cmp.Or(ev.By, env.Actor)
	case events.WebhookEnabled:
		return cmp.Or(ev.By, env.Actor)
	case events.WebhookRemoved:
		return cmp.Or(ev.By, env.Actor)
	}
	if r, ok := before.Revisions[revision]; ok && r.CreatedBy != "" {
		return r.CreatedBy
	}
	return env.Actor
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Page sizes of Read.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Query is what Read reads: the entries the filter keeps with a sequence
// above After, at most Limit of them.
type Query struct {
	Filter
	// After is the sequence the page starts after: 0 for the beginning,
	// a previous page's Sequence for the next one.
	After uint64
	// Limit is the most entries the page holds: 1 to MaxLimit, 0 for
	// DefaultLimit.
	Limit int
}

// Page is one page of the audit log, oldest first.
type Page struct {
	Entries []Entry `json:"entries"`
	// Sequence is the last sequence this page covers: pass it as After to
	// read on (the next page, or later what has come since).
	Sequence uint64 `json:"sequence"`
	// More is true when entries after Sequence were left out for the limit.
	More bool `json:"more"`
}

// errStop ends a bounded scan.
var errStop = errors.New("stop")

// Read returns a page of the log as it is when Read starts. Errors are
// those of the log, or of a query that Validate refuses.
func Read(ctx context.Context, log Log, q Query) (Page, error) {
	switch {
	case q.Limit == 0:
		q.Limit = DefaultLimit
	case q.Limit < 0 || q.Limit > MaxLimit:
		return Page{}, fmt.Errorf("limit %d is out of range: give 1 to %d", q.Limit, MaxLimit)
	}
	page := Page{Entries: []Entry{}}
	end, err := Each(ctx, log, q.Filter, q.After, func(e Entry) error {
		if len(page.Entries) == q.Limit {
			page.More = true
			return errStop
		}
		page.Entries = append(page.Entries, e)
		return nil
	})
	if err != nil {
		return Page{}, err
	}
	page.Sequence = max(q.After, end)
	if page.More {
		page.Sequence = page.Entries[len(page.Entries)-1].Sequence
	}
	return page, nil
}

// Each calls fn for every entry the filter keeps with a sequence above
// after, up to the end of the log when Each starts, in one pass over the
// log (where reading page after page would fold it again for each page).
// It returns that end, or the first error of the log or of fn.
func Each(ctx context.Context, log Log, filter Filter, after uint64, fn func(Entry) error) (uint64, error) {
	if err := filter.Validate(); err != nil {
		return 0, err
	}
	end, err := lastSequence(ctx, log, filter.App)
	if err != nil {
		return 0, err
	}
	f := newFolder()
	err = scan(ctx, log, filter.App, 1, end, func(env events.Envelope, decodeErr error) error {
		e := f.entry(env, decodeErr)
		if env.Sequence <= after || !filter.Match(env) {
			return nil
		}
		return fn(e)
	})
	return end, err
}

// Follow calls fn for every entry the filter keeps with a sequence above
// after, then for each new one as it is appended, until ctx ends (it then
// returns an error wrapping ctx.Err()) or fn fails.
func Follow(ctx context.Context, log Log, filter Filter, after uint64, fn func(Entry) error) error {
	if err := filter.Validate(); err != nil {
		return err
	}
	f := newFolder()
	handle := func(env events.Envelope, decodeErr error) error {
		e := f.entry(env, decodeErr)
		if env.Sequence <= after || !filter.Match(env) {
			return nil
		}
		return fn(e)
	}
	var err error
	if filter.App != "" {
		err = log.FollowApp(ctx, filter.App, 1, handle)
	} else {
		err = log.Follow(ctx, 1, handle)
	}
	if err != nil {
		return fmt.Errorf("audit: follow the log: %w", err)
	}
	return nil
}

// ResolveRevision returns the full id of app's revision that ref names
// (v3, 3, an id or a unique id prefix), from the app's history as it is
// now. Errors are the log's, a *NoHistoryError, or those of
// aggregates.ResolveRevisionRef.
func ResolveRevision(ctx context.Context, log Log, app, ref string) (string, error) {
	f, err := foldApp(ctx, log, app, Point{})
	if err != nil {
		return "", err
	}
	return f.App.ResolveRevision(ref)
}

func lastSequence(ctx context.Context, log Log, app string) (uint64, error) {
	var (
		end uint64
		err error
	)
	if app != "" {
		end, err = log.LastAppSequence(ctx, app)
	} else {
		end, err = log.LastSequence(ctx)
	}
	if err != nil {
		return 0, fmt.Errorf("audit: the end of the log: %w", err)
	}
	return end, nil
}

// scan calls fn for every event of app ("": every app) from sequence
// from (1: the start of the log) up to sequence end, which must be
// stored, and stops when fn returns errStop.
func scan(ctx context.Context, log Log, app string, from, end uint64, fn events.FollowFunc) error {
	if end == 0 {
		return nil
	}
	bounded := func(env events.Envelope, decodeErr error) error {
		if env.Sequence > end {
			return errStop
		}
		if err := fn(env, decodeErr); err != nil {
			return err
		}
		if env.Sequence == end {
			return errStop
		}
		return nil
	}
	var err error
	if app != "" {
		err = log.FollowApp(ctx, app, from, bounded)
	} else {
		err = log.Follow(ctx, from, bounded)
	}
	if errors.Is(err, errStop) {
		return nil
	}
	if err == nil {
		err = errors.New("the log ended early")
	}
	return fmt.Errorf("audit: read the log up to sequence %d: %w", end, err)
}
