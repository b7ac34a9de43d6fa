package aggregates_test

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
)

// T is the part of *testing.T (and *rapid.T) the helpers need, so that the
// specs read the same in table tests and in property tests.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
}

// appName is the app every spec is about.
const appName = "my-model"

// t0 is the fixed clock of the given history: every given event occurred
// at t0. A spec's "now" defaults to t0 plus a minute.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// scenario is a given history and the state folded from it.
type scenario struct {
	t       T
	history []events.Envelope
	state   aggregates.App
	now     time.Time
}

// given starts a spec from the history evs: each event is wrapped into an
// envelope of appName with the next sequence number, occurring at t0.
func given(t T, evs ...events.Event) *scenario {
	t.Helper()
	s := &scenario{t: t, state: aggregates.App{Name: appName}, now: t0.Add(time.Minute)}
	return s.and(evs...)
}

// and appends more history.
func (s *scenario) and(evs ...events.Event) *scenario {
	s.t.Helper()
	for _, ev := range evs {
		env := envelope(uint64(len(s.history)+1), t0, ev)
		s.history = append(s.history, env)
		s.state = aggregates.Evolve(s.state, env)
	}
	return s
}

// at sets the time the next command is decided at.
func (s *scenario) at(now time.Time) *scenario {
	s.now = now
	return s
}

// when decides cmd on the given state. It also checks that Decide is pure:
// the state it was handed is unchanged afterwards.
func (s *scenario) when(cmd events.Command) *outcome {
	s.t.Helper()
	before := cloneApp(s.state)
	evs, err := aggregates.Decide(s.state, cmd, s.now)
	if !reflect.DeepEqual(before, s.state) {
		s.t.Fatalf("Decide(%T) modified the state it was given:\nbefore %s\nafter  %s", cmd, dump(before), dump(s.state))
	}
	return &outcome{s: s, cmd: cmd, events: evs, err: err}
}

// outcome is what Decide returned for one command.
type outcome struct {
	s      *scenario
	cmd    events.Command
	events []events.Event
	err    error
}

// then asserts the command was accepted with exactly want, and returns the
// state after evolving them (occurring at the decision time).
func (o *outcome) then(want ...events.Event) aggregates.App {
	t := o.s.t
	t.Helper()
	if o.err != nil {
		t.Fatalf("%T: want events, got error %T: %v", o.cmd, o.err, o.err)
	}
	if len(want) == 0 {
		t.Fatalf("%T: a spec must name the events it expects", o.cmd)
	}
	if !reflect.DeepEqual(o.events, want) {
		t.Fatalf("%T: events differ\n got: %s\nwant: %s", o.cmd, dump(o.events), dump(want))
	}
	state := cloneApp(o.s.state)
	next := uint64(len(o.s.history))
	for _, ev := range o.events {
		next++
		state = aggregates.Evolve(state, envelope(next, o.s.now, ev))
	}
	if state.Version != next {
		t.Fatalf("%T: version after evolve = %d, want %d", o.cmd, state.Version, next)
	}
	return state
}

// thenReject asserts the command was refused (not a no-op) with code, and
// returns the rejection so that a spec can read its message.
func (o *outcome) thenReject(code string) *events.Rejection {
	o.s.t.Helper()
	r := o.rejection(code)
	if r.NoOp {
		o.s.t.Fatalf("%T: rejection %q is marked NoOp; want a refusal", o.cmd, code)
	}
	return r
}

// thenNoOp asserts the command was reported as a no-op with code.
func (o *outcome) thenNoOp(code string) *events.Rejection {
	o.s.t.Helper()
	r := o.rejection(code)
	if !r.NoOp {
		o.s.t.Fatalf("%T: rejection %q is not marked NoOp; want a no-op", o.cmd, code)
	}
	return r
}

func (o *outcome) rejection(code string) *events.Rejection {
	t := o.s.t
	t.Helper()
	if o.err == nil {
		t.Fatalf("%T: want rejection %q, got events %s", o.cmd, code, dump(o.events))
	}
	if len(o.events) != 0 {
		t.Fatalf("%T: a rejection came with events %s", o.cmd, dump(o.events))
	}
	r := asRejection(t, o.err)
	if r.Code != code {
		t.Fatalf("%T: rejection code = %q (%s), want %q", o.cmd, r.Code, r.Message, code)
	}
	return r
}

// asRejection asserts err is a well-formed *events.Rejection: a code and a
// non-empty one-line message.
func asRejection(t T, err error) *events.Rejection {
	t.Helper()
	var r *events.Rejection
	if !errors.As(err, &r) {
		t.Fatalf("error %T (%v) is not an *events.Rejection", err, err)
	}
	switch {
	case r.Code == "":
		t.Fatalf("rejection without a code: %q", r.Message)
	case strings.TrimSpace(r.Message) == "":
		t.Fatalf("rejection %q without a message", r.Code)
	case strings.ContainsAny(r.Message, "\r\n"):
		t.Fatalf("rejection %q has a multi-line message: %q", r.Code, r.Message)
	case err.Error() != r.Message:
		t.Fatalf("rejection %q: Error() = %q, want the message %q", r.Code, err.Error(), r.Message)
	case len(r.Message) > maxRejectionBytes:
		t.Fatalf("rejection %q has a %d-byte message, more than %d: %.200q…", r.Code, len(r.Message), maxRejectionBytes, r.Message)
	case !printable(r.Message):
		t.Fatalf("rejection %q message %q holds a character a terminal could act on", r.Code, r.Message)
	}
	return r
}

// maxRejectionBytes bounds a rejection's sentence, whatever the command
// held: values it quotes are cut short.
const maxRejectionBytes = 400

// printable reports whether s is valid UTF-8 free of control characters
// (tab included) and of the other characters free text may not hold.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || '\u202a' <= r && r <= '\u202e' || '\u2066' <= r && r <= '\u2069' {
			return false
		}
	}
	return true
}

// says asserts a rejection's message contains every fragment.
func says(t T, r *events.Rejection, fragments ...string) {
	t.Helper()
	for _, f := range fragments {
		if !strings.Contains(r.Message, f) {
			t.Fatalf("rejection %q message %q does not mention %q", r.Code, r.Message, f)
		}
	}
}

// envelope wraps ev as the event of appName at sequence seq.
func envelope(seq uint64, at time.Time, ev events.Event) events.Envelope {
	return events.Envelope{
		EventID:       fmt.Sprintf("event-%d", seq),
		App:           appName,
		Type:          ev.EventType(),
		SchemaVersion: events.SchemaVersion,
		OccurredAt:    at,
		Metadata:      events.Metadata{Actor: "spec"},
		Sequence:      seq,
		Event:         ev,
	}
}

// cloneApp deep-copies a state: Evolve updates the revision map in place.
func cloneApp(a aggregates.App) aggregates.App {
	c := a
	if a.Revisions != nil {
		c.Revisions = make(map[string]*aggregates.Revision, len(a.Revisions))
		for id, r := range a.Revisions {
			cp := *r
			c.Revisions[id] = &cp
		}
	}
	if a.Rollout != nil {
		ro := *a.Rollout
		c.Rollout = &ro
	}
	return c
}

// dump prints events or states readably, following pointers one level.
func dump(v any) string {
	switch v := v.(type) {
	case []events.Event:
		parts := make([]string, len(v))
		for i, ev := range v {
			parts[i] = fmt.Sprintf("%T%+v", ev, ev)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case aggregates.App:
		revs := make([]string, 0, len(v.Revisions))
		for _, id := range slices.Sorted(maps.Keys(v.Revisions)) {
			revs = append(revs, fmt.Sprintf("%s:%+v", id, *v.Revisions[id]))
		}
		rollout := "<nil>"
		if v.Rollout != nil {
			rollout = fmt.Sprintf("%+v", *v.Rollout)
		}
		return fmt.Sprintf("{Name:%s Version:%d Current:%q Runtime:%+v HasRuntime:%t Suspended:%t Rollout:%s Revisions:[%s]}",
			v.Name, v.Version, v.Current, v.Runtime, v.HasRuntime, v.Suspended, rollout, strings.Join(revs, " "))
	}
	return fmt.Sprintf("%+v", v)
}

// ---- fixtures: the history of an app, one fact at a time ----

// Ids of the specs' revisions (r…), rollouts (ro…) and runners (runner…):
// canonical UUIDs, as the decider requires of every id a client chooses.
// Their last digits tell them apart.
const (
	r1      = "01900000-0000-7000-8000-000000000001"
	r2      = "01900000-0000-7000-8000-000000000002"
	r3      = "01900000-0000-7000-8000-000000000003"
	r5      = "01900000-0000-7000-8000-000000000005"
	r7      = "01900000-0000-7000-8000-000000000007"
	r9      = "01900000-0000-7000-8000-000000000009"
	ro1     = "01900000-0000-7000-9000-000000000001"
	ro2     = "01900000-0000-7000-9000-000000000002"
	ro9     = "01900000-0000-7000-9000-000000000009"
	runner1 = "01900000-0000-7000-a000-000000000001"
	runner2 = "01900000-0000-7000-a000-000000000002"
)

// revisionUUID is the id of the n-th revision of a generated history,
// rolloutUUID that of its n-th rollout.
func revisionUUID(n int) string { return fmt.Sprintf("01900000-0000-7000-8000-%012d", n) }
func rolloutUUID(n int) string  { return fmt.Sprintf("01900000-0000-7000-9000-%012d", n) }

func ptr[V any](v V) *V { return &v }

// Code parameters that differ from the defaults, to tell revisions apart.
var (
	gpuCode = events.CodeParams{MachineType: "GPU-A100", MaxMultiplexing: 4, StartupTimeout: 600}
	cpuCode = events.CodeParams{MachineType: "M", MaxMultiplexing: 2, StartupTimeout: 120}
)

// Runtime parameters that differ from the defaults and from each other.
var (
	defaultRuntime = events.DefaultRuntimeParams()
	busyRuntime    = events.RuntimeParams{KeepAlive: 300, MinConcurrency: 2, MaxConcurrency: 20, ConcurrencyBuffer: 1, RequestTimeout: 600}
	quietRuntime   = events.RuntimeParams{KeepAlive: 10, MinConcurrency: 0, MaxConcurrency: 3, ConcurrencyBuffer: 0, RequestTimeout: 60}
)

const runCommand = "python -m app --port $PORT"

type revisionOption func(*events.RevisionCreated)

func withCode(c events.CodeParams) revisionOption {
	return func(ev *events.RevisionCreated) { ev.Code = c }
}

func withRuntime(r events.RuntimeParams) revisionOption {
	return func(ev *events.RevisionCreated) { ev.Runtime = r }
}

func withResetScale() revisionOption {
	return func(ev *events.RevisionCreated) { ev.ResetScale = true }
}

// numbered is the number a deploy decided now records (given histories
// leave it out, as events written before revisions had numbers did).
func numbered(n uint64) revisionOption {
	return func(ev *events.RevisionCreated) { ev.Number = n }
}

func withMessage(m string) revisionOption {
	return func(ev *events.RevisionCreated) { ev.Message = m }
}

// created is a deploy request for revision id, default parameters.
func created(id string, opts ...revisionOption) events.RevisionCreated {
	ev := events.RevisionCreated{
		RevisionID: id,
		Command:    runCommand,
		Code:       events.DefaultCodeParams(),
		Runtime:    events.DefaultRuntimeParams(),
		Strategy:   events.StrategyRolling,
	}
	for _, o := range opts {
		o(&ev)
	}
	return ev
}

func deployed(id string) events.RevisionDeployed { return events.RevisionDeployed{RevisionID: id} }

func failed(id string) events.RevisionFailed {
	return events.RevisionFailed{RevisionID: id, Reason: "health check timed out"}
}

func deleted(id string) events.RevisionDeleted { return events.RevisionDeleted{RevisionID: id} }

func suspended(id string) events.AppSuspended { return events.AppSuspended{RevisionID: id} }

func resumed(id string) events.AppResumed { return events.AppResumed{RevisionID: id} }

// defaultCode is the code of every fixture revision that sets none.
var defaultCode = events.DefaultCodeParams()

func scaled(before, after events.RuntimeParams) events.AppScaled {
	return events.AppScaled{Before: before, After: after, CodeBefore: defaultCode, CodeAfter: defaultCode, Changed: events.ChangedRuntimeParams(before, after)}
}

func rolloutRequested(id, revision string, force bool) events.RolloutRequested {
	return events.RolloutRequested{RolloutID: id, RevisionID: revision, Force: force}
}

func rolloutCompleted(id, revision string) events.RolloutCompleted {
	return events.RolloutCompleted{RolloutID: id, RevisionID: revision, Replaced: 1}
}

// live is the first deploy of an app: revision id is created, deployed and
// made current with its own runtime parameters.
func live(id string, opts ...revisionOption) []events.Event {
	c := created(id, opts...)
	return []events.Event{c, deployed(id), events.CurrentRevisionSet{
		To: id, Reason: "deploy", Strategy: c.Strategy, Message: c.Message, Code: c.Code, Runtime: c.Runtime,
	}}
}

// promoted is a later deploy: revision id is created, deployed and made
// current in place of from, keeping the app's runtime parameters rt.
func promoted(from, id string, rt events.RuntimeParams, opts ...revisionOption) []events.Event {
	c := created(id, opts...)
	return []events.Event{c, deployed(id), events.CurrentRevisionSet{
		From: from, To: id, Reason: "deploy", Strategy: c.Strategy, Message: c.Message, Code: c.Code,
		Runtime: rt, Inherited: slices.Clone(events.RuntimeParamNames), InheritedFrom: from,
	}}
}

// history joins fixtures and single events into one history.
func history(parts ...[]events.Event) []events.Event { return slices.Concat(parts...) }

// evs is a history of single events.
func evs(e ...events.Event) []events.Event { return e }
