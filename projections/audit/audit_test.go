package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/embedded/embeddedtest"
	"github.com/revline/revline/projections/audit"
)

// t0 is when the first command of a history is decided; each further
// command comes a minute later.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// history writes app histories as the command processor does: it folds the
// app's stored events, decides a command with aggregates.Decide and
// appends the events with the command's metadata.
type history struct {
	t     *testing.T
	ctx   context.Context
	store *events.JetStreamStore
	js    jetstream.JetStream
	clock time.Time
}

func newHistory(t *testing.T) *history {
	t.Helper()
	// A deadline, not a measure: the time-travel test folds a random
	// history at many points, 8 s alone and 25 s at a load of 10.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	srv := embeddedtest.Start(t)
	_, js := embeddedtest.Connect(t, srv)
	store, err := events.NewJetStreamStore(ctx, events.JetStreamStoreConfig{JetStream: js, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return &history{t: t, ctx: ctx, store: store, js: js, clock: t0}
}

// do decides cmd for app as actor and stores its events; it returns the
// command id.
func (h *history) do(app, actor string, cmd events.Command) string {
	h.t.Helper()
	stored, err := h.store.Load(h.ctx, app, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	state := aggregates.Fold(app, stored)
	evs, err := aggregates.Decide(state, cmd, h.clock)
	if err != nil {
		h.t.Fatalf("%T for %s: %v", cmd, app, err)
	}
	commandID := uuid.NewString()
	envs := make([]events.Envelope, len(evs))
	for i, ev := range evs {
		envs[i] = events.NewEnvelope(app, ev, events.Metadata{Actor: actor, CorrelationID: commandID, CausationID: commandID}, h.clock)
	}
	// Chained as the processor chains them (events.Chain).
	chained, err := events.Chain(state.LastHash, envs)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.store.Append(h.ctx, app, state.Version, chained); err != nil {
		h.t.Fatal(err)
	}
	h.clock = h.clock.Add(time.Minute)
	return commandID
}

// revision ids of the standard history.
var (
	rev1 = "01a20000-0000-7000-8000-000000000001"
	rev2 = "01a20000-0000-7000-8000-000000000002"
	rev3 = "01a20000-0000-7000-8000-000000000003"
	revX = "01a20000-0000-7000-8000-0000000000ff"
)

func ptr[V any](v V) *V { return &v }

// standard writes a history of deploys, a scale, a rollback, a
// roll-forward, a failed deploy and a delete for my-model (16 events),
// and one deploy of other (3 events) in between. It returns the command id of the
// rollback.
func (h *history) standard() string {
	worker := "worker:runner"
	h.do("my-model", "alice", events.Deploy{RevisionID: rev1, Command: "run $PORT", Message: "first"})
	h.do("my-model", worker, events.CompleteDeploy{RevisionID: rev1})
	h.do("my-model", "bob", events.Deploy{RevisionID: rev2, Command: "run $PORT", Code: events.CodeOverrides{MachineType: ptr("GPU-H100")}})
	h.do("other", "dave", events.Deploy{RevisionID: revX, Command: "serve $PORT"})
	h.do("other", worker, events.CompleteDeploy{RevisionID: revX})
	h.do("my-model", worker, events.CompleteDeploy{RevisionID: rev2})
	h.do("my-model", "carol", events.Scale{Runtime: events.RuntimeOverrides{MinConcurrency: ptr(2), KeepAlive: ptr(events.Seconds(300))}})
	rollback := h.do("my-model", "alice", events.SetRevision{RevisionID: "v1", Message: "v2 leaks memory"})
	h.do("my-model", "bob", events.SetRevision{RevisionID: "v2"})
	h.do("my-model", "bob", events.Deploy{RevisionID: rev3, Command: "broken $PORT"})
	h.do("my-model", worker, events.FailDeploy{RevisionID: rev3, Reason: "exit 1"})
	h.do("my-model", "alice", events.DeleteRevision{RevisionID: "v3"})
	h.do("my-model", "carol", events.Rollout{RolloutID: uuid.NewString(), Force: true})
	return rollback
}

func read(t *testing.T, h *history, q audit.Query) audit.Page {
	t.Helper()
	page, err := audit.Read(h.ctx, h.store, q)
	if err != nil {
		t.Fatal(err)
	}
	return page
}

func summaries(entries []audit.Entry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Summary
	}
	return out
}

func sequences(entries []audit.Entry) []uint64 {
	out := make([]uint64, len(entries))
	for i, e := range entries {
		out[i] = e.Sequence
	}
	return out
}

func TestSummariesOfDeployScaleRollbackChains(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	h.standard()
	page := read(t, h, audit.Query{Filter: audit.Filter{App: "my-model"}})
	want := []string{
		`deploy of v1 requested (XS): "first"`,
		`v1 is up`,
		`deployed v1 (first deploy: runtime params from the deploy): "first"`,
		`deploy of v2 requested (GPU-H100)`,
		`v2 is up`,
		`deployed v2 (runtime params kept from v1)`,
		`scaled keep_alive 60s→300s, min_concurrency 0→2`,
		`rolled back to v1 (runtime params kept from v2): "v2 leaks memory"`,
		`rolled forward to v2 (runtime params kept from v1)`,
		`deploy of v3 requested (XS)`,
		`deploy of v3 failed: "exit 1"`,
		`deleted v3`,
		`force rollout of v2 requested`,
	}
	if got := summaries(page.Entries); !slices.Equal(got, want) {
		t.Fatalf("summaries:\n got %q\nwant %q", got, want)
	}
	if page.More || page.Sequence != page.Entries[len(page.Entries)-1].Sequence {
		t.Errorf("page: more %v, sequence %d; want the whole history up to its last event", page.More, page.Sequence)
	}
}

func TestEntriesCarryWhoWhenAndWhichCommand(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	rollback := h.standard()
	page := read(t, h, audit.Query{Filter: audit.Filter{App: "my-model", Types: []string{"app.current_revision_set"}, Actor: "alice"}})
	if len(page.Entries) != 1 {
		t.Fatalf("entries = %q, want the rollback alone", summaries(page.Entries))
	}
	e := page.Entries[0]
	if e.CausationID != rollback || e.CorrelationID != rollback || e.Actor != "alice" || e.App != "my-model" ||
		e.SchemaVersion != events.SchemaVersion || e.ID == "" || !e.Time.Equal(t0.Add(7*time.Minute)) {
		t.Fatalf("entry = %+v; want alice's rollback, caused by command %s, at t0+7m", e.Record, rollback)
	}
	set, ok := e.Payload.(events.CurrentRevisionSet)
	if !ok || set.To != rev1 || set.Reason != "rollback" {
		t.Fatalf("payload = %#v, want the rollback to %s", e.Payload, rev1)
	}
}

func TestFilters(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	h.standard()
	all := read(t, h, audit.Query{Limit: audit.MaxLimit}).Entries
	if len(all) != 16 {
		t.Fatalf("the whole log has %d entries, want 16", len(all))
	}
	keep := func(pred func(audit.Entry) bool) []uint64 {
		var out []uint64
		for _, e := range all {
			if pred(e) {
				out = append(out, e.Sequence)
			}
		}
		return out
	}
	tests := []struct {
		name   string
		filter audit.Filter
		want   []uint64
	}{
		{"everything", audit.Filter{}, sequences(all)},
		{"app", audit.Filter{App: "other"}, keep(func(e audit.Entry) bool { return e.App == "other" })},
		{"type_glob", audit.Filter{Types: []string{"revision.*"}}, keep(func(e audit.Entry) bool { return strings.HasPrefix(e.Type, "revision.") })},
		{"two_types", audit.Filter{Types: []string{"app.scaled", "rollout.requested"}}, keep(func(e audit.Entry) bool { return e.Type == "app.scaled" || e.Type == "rollout.requested" })},
		{"actor", audit.Filter{Actor: "carol"}, keep(func(e audit.Entry) bool { return e.Actor == "carol" })},
		{"since", audit.Filter{Since: t0.Add(9 * time.Minute)}, keep(func(e audit.Entry) bool { return !e.Time.Before(t0.Add(9 * time.Minute)) })},
		{"until", audit.Filter{Until: t0.Add(2 * time.Minute)}, keep(func(e audit.Entry) bool { return e.Time.Before(t0.Add(2 * time.Minute)) })},
		{"window_and_app", audit.Filter{App: "my-model", Since: t0.Add(3 * time.Minute), Until: t0.Add(5 * time.Minute)}, keep(func(e audit.Entry) bool {
			return e.App == "my-model" && !e.Time.Before(t0.Add(3*time.Minute)) && e.Time.Before(t0.Add(5*time.Minute))
		})},
		{"revision", audit.Filter{App: "my-model", Revision: rev3}, keep(func(e audit.Entry) bool {
			return e.App == "my-model" && strings.Contains(e.Summary, "v3")
		})},
		{"nothing", audit.Filter{Actor: "mallory"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := sequences(read(t, h, audit.Query{Filter: tt.filter, Limit: audit.MaxLimit}).Entries)
			if len(tt.want) == 0 && len(got) == 0 {
				return
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("sequences = %v, want %v", got, tt.want)
			}
			if len(got) == 0 || len(got) == len(all) && tt.name != "everything" {
				t.Fatalf("filter %s keeps %d of %d entries: the test must tell it from no filter at all", tt.name, len(got), len(all))
			}
		})
	}
}

func TestPagesBySequence(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	h.standard()
	all := read(t, h, audit.Query{}).Entries
	var got []audit.Entry
	after := uint64(0)
	for range len(all) + 1 {
		page := read(t, h, audit.Query{After: after, Limit: 3})
		got = append(got, page.Entries...)
		if !page.More {
			break
		}
		if page.Sequence <= after {
			t.Fatalf("page after %d does not move on (sequence %d)", after, page.Sequence)
		}
		after = page.Sequence
	}
	if !slices.Equal(sequences(got), sequences(all)) {
		t.Fatalf("pages of 3 = %v, want %v", sequences(got), sequences(all))
	}
	// A poller that read everything gets nothing until something happens.
	last := read(t, h, audit.Query{After: after, Limit: 3})
	if len(last.Entries) != 0 && last.More {
		t.Fatalf("the page after the end: %d entries, more %v", len(last.Entries), last.More)
	}
	end := last.Sequence
	if empty := read(t, h, audit.Query{After: end}); len(empty.Entries) != 0 || empty.Sequence != end {
		t.Fatalf("after the end: %d entries, sequence %d; want none, %d", len(empty.Entries), empty.Sequence, end)
	}
	h.do("other", "dave", events.Scale{Runtime: events.RuntimeOverrides{MaxConcurrency: ptr(3)}})
	next := read(t, h, audit.Query{After: end})
	if got := summaries(next.Entries); !slices.Equal(got, []string{"scaled max_concurrency 10→3"}) {
		t.Fatalf("what came after the end: %q", got)
	}
}

func TestBadQueriesAreRefused(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	for name, q := range map[string]audit.Query{
		"bad_glob":              {Filter: audit.Filter{Types: []string{"revision.["}}},
		"revision_without_app":  {Filter: audit.Filter{Revision: rev1}},
		"empty_window":          {Filter: audit.Filter{Since: t0, Until: t0}},
		"invalid_app":           {Filter: audit.Filter{App: "a.b"}},
		"limit_above_the_most":  {Limit: audit.MaxLimit + 1},
		"negative_limit":        {Limit: -1},
		"empty_type_pattern":    {Filter: audit.Filter{Types: []string{""}}},
		"window_upside_down":    {Filter: audit.Filter{Since: t0.Add(time.Hour), Until: t0}},
		"subject_wildcard_name": {Filter: audit.Filter{App: "my-model.>"}},
	} {
		if _, err := audit.Read(h.ctx, h.store, q); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err = %v, want a one-line refusal", name, err)
		}
	}
}

func TestResolveRevision(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	h.standard()
	for ref, want := range map[string]string{"v1": rev1, "2": rev2, "v3": rev3, rev3: rev3, "01a20000-0000-7000-8000-00000000000": ""} {
		got, err := audit.ResolveRevision(h.ctx, h.store, "my-model", ref)
		switch {
		case want == "" && !errors.Is(err, aggregates.ErrAmbiguousRevision):
			t.Errorf("ResolveRevision(%q) = %q, %v; want ambiguous", ref, got, err)
		case want != "" && (err != nil || got != want):
			t.Errorf("ResolveRevision(%q) = %q, %v; want %s", ref, got, err, want)
		}
	}
	if _, err := audit.ResolveRevision(h.ctx, h.store, "my-model", "v4"); !errors.Is(err, aggregates.ErrRevisionNotFound) {
		t.Errorf("v4: err = %v, want not found", err)
	}
	var none *audit.NoHistoryError
	if _, err := audit.ResolveRevision(h.ctx, h.store, "nobody", "v1"); !errors.As(err, &none) {
		t.Errorf("unknown app: err = %v, want no history", err)
	}
}

func TestFollowStreamsNewEntries(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	h.standard()
	ctx, cancel := context.WithCancel(h.ctx)
	got := make(chan audit.Entry, 100)
	done := make(chan error, 1)
	go func() {
		done <- audit.Follow(ctx, h.store, audit.Filter{App: "my-model", Types: []string{"app.scaled"}}, 0, func(e audit.Entry) error {
			got <- e
			return nil
		})
	}()
	next := func() audit.Entry {
		t.Helper()
		select {
		case e := <-got:
			return e
		case <-h.ctx.Done():
			t.Fatal("no entry before the test's deadline")
		}
		return audit.Entry{}
	}
	if e := next(); e.Summary != "scaled keep_alive 60s→300s, min_concurrency 0→2" {
		t.Fatalf("first entry from the history: %q", e.Summary)
	}
	h.do("other", "dave", events.Scale{Runtime: events.RuntimeOverrides{MaxConcurrency: ptr(3)}}) // another app: filtered out
	h.do("my-model", "carol", events.Scale{Runtime: events.RuntimeOverrides{MinConcurrency: ptr(0)}})
	if e := next(); e.Summary != "scaled min_concurrency 2→0" || e.Actor != "carol" {
		t.Fatalf("live entry: %q by %s", e.Summary, e.Actor)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow returned %v, want context.Canceled", err)
	}
}

// The export form of every event type holds every field a tool needs, and
// reads back into the same event.
func TestRecordsExportEveryField(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	h.standard()
	for _, e := range read(t, h, audit.Query{}).Entries {
		data, err := json.Marshal(e.Record)
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(data, &fields); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"sequence", "id", "type", "schema_version", "app", "time", "actor", "correlation_id", "causation_id", "payload"} {
			if _, ok := fields[key]; !ok {
				t.Fatalf("record %s has no %q: %s", e.Type, key, data)
			}
		}
		// A record reads back into the same record, its payload into the
		// event type it names.
		var back audit.Record
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatalf("record %s does not read back: %v", data, err)
		}
		if !back.Time.Equal(e.Time) {
			t.Fatalf("time reads back as %v, want %v", back.Time, e.Time)
		}
		back.Time = e.Time
		if !reflect.DeepEqual(back, e.Record) {
			t.Fatalf("record reads back as\n%#v\nwant\n%#v", back, e.Record)
		}
	}
	var bad audit.Record
	if err := json.Unmarshal([]byte(`{"type":"app.scaled","payload":{"befor":{}}}`), &bad); err == nil {
		t.Fatal("a payload with an unknown field reads back without an error")
	}
}

func TestParseTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		text string
		want time.Time
	}{
		{"2025-05-31T10:00:00Z", time.Date(2025, 5, 31, 10, 0, 0, 0, time.UTC)},
		{"2025-05-31T10:00:00.5+02:00", time.Date(2025, 5, 31, 8, 0, 0, 5e8, time.UTC)},
		{"2h ago", now.Add(-2 * time.Hour)},
		{"30m", now.Add(-30 * time.Minute)},
		{" 1h30m ago ", now.Add(-90 * time.Minute)},
		{"3d", now.Add(-72 * time.Hour)},
		{"2dago", now.Add(-48 * time.Hour)},
		{"now", now},
	}
	for _, tt := range tests {
		got, err := audit.ParseTime(tt.text, now)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tt.text, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "ago", "yesterday", "-2h", "0s", "2025-13-01T00:00:00Z", "1.5d", "0d"} {
		if _, err := audit.ParseTime(bad, now); err == nil || !strings.Contains(err.Error(), "RFC 3339") {
			t.Errorf("ParseTime(%q) error = %v, want one saying what is accepted", bad, err)
		}
	}
}

// The short history says who asked for each change: the deployer for what
// the runner worker reports of a deploy, and which revision was current
// after it.
func TestHistoryNamesTheDeployer(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	h.standard()
	page := read(t, h, audit.Query{Filter: audit.Filter{App: "my-model", Types: audit.HistoryTypes}})
	var got []string
	for _, e := range page.Entries {
		got = append(got, e.Current+" "+e.By+" "+e.Type)
	}
	want := []string{
		"v1 alice app.current_revision_set",
		"v2 bob app.current_revision_set",
		"v2 carol app.scaled",
		"v1 alice app.current_revision_set",
		"v2 bob app.current_revision_set",
		"v2 bob revision.failed",
		"v2 alice revision.deleted",
		"v2 carol rollout.requested",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("history:\n got %q\nwant %q", got, want)
	}
	for _, e := range page.Entries {
		if e.Type == events.TypeRevisionFailed && e.Actor != "worker:runner" {
			t.Fatalf("the failure's actor is %q: the record keeps the event's own actor", e.Actor)
		}
	}
}

// An event the log holds but this build cannot decode, and a message that
// is no event at all, are shown for what they are; every other entry, and
// the folds, go on past them.
func TestUnreadableEventsAreShownAndSkipped(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	h.do("web", "alice", events.Deploy{RevisionID: rev1, Command: "run $PORT"})
	h.do("web", "worker:runner", events.CompleteDeploy{RevisionID: rev1})
	bad := nats.NewMsg(events.EventSubject("web", "revision.created"))
	bad.Data = []byte("not msgpack")
	bad.Header.Set(events.HeaderEventType, events.TypeRevisionCreated)
	bad.Header.Set(events.HeaderSchemaVersion, "1")
	bad.Header.Set(events.HeaderApp, "web")
	bad.Header.Set(events.HeaderOccurredAt, t0.Format(time.RFC3339Nano))
	noEvent := nats.NewMsg(events.EventSubject("web", "junk"))
	noEvent.Data = []byte("{}")
	for _, msg := range []*nats.Msg{bad, noEvent} {
		if _, err := h.js.PublishMsg(h.ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	h.do("other", "bob", events.Deploy{RevisionID: revX, Command: "run $PORT"})
	page := read(t, h, audit.Query{})
	if len(page.Entries) != 6 {
		t.Fatalf("entries: %q", summaries(page.Entries))
	}
	if e := page.Entries[3]; e.Error == "" || e.Payload != nil || !strings.HasPrefix(e.Summary, "unreadable event") || e.App != "web" {
		t.Errorf("the undecodable event: %+v", e)
	}
	if e := page.Entries[4]; !strings.Contains(e.Summary, "not a Revline event") {
		t.Errorf("the message that is no event: %+v", e)
	}
	if e := page.Entries[5]; e.App != "other" || e.Summary != "deploy of v1 requested (XS)" {
		t.Errorf("after them: %+v", e)
	}
	revs, err := audit.RevisionsAt(h.ctx, h.store, "web", audit.Point{})
	if err != nil || len(revs.Revisions) != 1 || !revs.Revisions[0].Current || revs.Sequence != 3 {
		t.Fatalf("time travel past them: %+v, %v", revs, err)
	}
}

// A runner's stop request is about its runner's revision: the revision
// filter keeps it.
func TestRevisionFilterKeepsRunnerStopRequests(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	const runner = "01a20000-0000-7000-a000-000000000001"
	h.do("web", "alice", events.Deploy{RevisionID: rev1, Command: "run $PORT"})
	h.do("web", "worker:runner", events.ReportRunner{RunnerID: runner, RevisionID: rev1, State: events.RunnerIdle, PID: 100, Port: 8000})
	h.do("web", "worker:runner", events.CompleteDeploy{RevisionID: rev1})
	h.do("web", "bob", events.StopRunner{RunnerID: runner, Force: true})
	entries := read(t, h, audit.Query{Filter: audit.Filter{App: "web", Revision: rev1, Types: []string{events.TypeRunnerStopRequested}}}).Entries
	if len(entries) != 1 || entries[0].Actor != "bob" {
		t.Fatalf("stop requests of v1's runners: %q, want bob's", summaries(entries))
	}
}

// TestADeletedAppKeepsItsHistory: app.deleted is one more entry, worded
// with its reason; the history before it stays readable, and a deploy
// after it goes on numbering.
func TestADeletedAppKeepsItsHistory(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	h.do("typo", "alice", events.SetSecret{Name: "HF_TOKEN", Version: 1})
	h.do("typo", "alice", events.Deploy{RevisionID: rev1, Command: "run $PORT"})
	h.do("typo", "worker:runner", events.CompleteDeploy{RevisionID: rev1})
	h.do("typo", "bob", events.DeleteApp{Reason: "made by mistake"})
	h.do("typo", "alice", events.Deploy{RevisionID: rev2, Command: "run $PORT"})
	page := read(t, h, audit.Query{Filter: audit.Filter{App: "typo", Types: audit.HistoryTypes}})
	want := []string{
		`deployed v1 (first deploy: runtime params from the deploy)`,
		`deleted the app: "made by mistake" (current revision was v1; secrets forgotten: HF_TOKEN)`,
	}
	if got := summaries(page.Entries); !slices.Equal(got, want) {
		t.Fatalf("history:\n got %q\nwant %q", got, want)
	}
	if e := page.Entries[1]; e.Actor != "bob" {
		t.Errorf("deletion by %q, want bob", e.Actor)
	}
	all := summaries(read(t, h, audit.Query{Filter: audit.Filter{App: "typo"}}).Entries)
	if last := all[len(all)-1]; last != `deploy of v2 requested (XS)` {
		t.Errorf("the deploy after the deletion reads %q, want v2", last)
	}
}
