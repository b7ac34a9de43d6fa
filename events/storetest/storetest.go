// Package storetest is the contract every events.Store implementation must
// pass. Implementations call Run from their own tests.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/revline/revline/events"
)

// Factory returns a new, empty store for one test.
type Factory func(t *testing.T) events.Store

// Run runs the contract suite against stores made by newStore. The tests
// use app names of their own, so a factory may hand every test the same
// store (a shared cluster, say).
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		run  func(t *testing.T, s events.Store)
	}{
		{"append_to_new_app_returns_sequences", appendToNewApp},
		{"multi_event_append_is_contiguous_and_loads_back", multiEventAppend},
		{"stale_expected_version_conflicts", staleExpectedConflicts},
		{"conflict_appends_nothing", conflictAppendsNothing},
		{"apps_are_independent", appsAreIndependent},
		{"retried_append_has_one_effect", retriedAppend},
		{"retry_after_other_commands_is_still_a_duplicate", retryAfterOthers},
		{"concurrent_appends_lose_nothing", concurrentAppends},
		{"load_after_skips_earlier_events", loadAfter},
		{"follow_delivers_everything_in_order_then_new_events", followDelivers},
		{"invalid_batches_are_refused", invalidBatches},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}
}

var clock = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// batch builds the events of one command for app.
func batch(app string, commandID string, evs ...events.Event) []events.Envelope {
	out := make([]events.Envelope, len(evs))
	for i, ev := range evs {
		out[i] = events.NewEnvelope(app, ev, events.Metadata{Actor: "test", CorrelationID: commandID, CausationID: commandID}, clock)
	}
	return out
}

func created(id string) events.Event {
	return events.RevisionCreated{RevisionID: id, Command: "serve", Code: events.DefaultCodeParams(), Runtime: events.DefaultRuntimeParams(), Strategy: events.StrategyRolling}
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// unique returns app names no other test uses: "web" becomes "web-3f9a1c".
func unique() func(string) string {
	suffix := uuid.NewString()[:6]
	return func(name string) string { return name + "-" + suffix }
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustAppend(t *testing.T, s events.Store, app string, expected uint64, b []events.Envelope) events.AppendResult {
	t.Helper()
	res, err := s.Append(ctxFor(t), app, expected, b)
	if err != nil {
		t.Fatalf("append to %s at %d: %v", app, expected, err)
	}
	return res
}

func mustLoad(t *testing.T, s events.Store, app string, after uint64) []events.Envelope {
	t.Helper()
	evs, err := s.Load(ctxFor(t), app, after)
	if err != nil {
		t.Fatalf("load %s after %d: %v", app, after, err)
	}
	return evs
}

func appendToNewApp(t *testing.T, s events.Store) {
	n := unique()
	b := batch(n("web"), newID(), created("r1"))
	res := mustAppend(t, s, n("web"), 0, b)
	if res.FirstSequence == 0 || res.FirstSequence != res.LastSequence || res.Duplicate {
		t.Fatalf("result = %+v, want one new sequence", res)
	}
	got := mustLoad(t, s, n("web"), 0)
	if len(got) != 1 {
		t.Fatalf("loaded %d events, want 1", len(got))
	}
	env := got[0]
	if env.Sequence != res.FirstSequence || env.EventID != b[0].EventID || env.Actor != "test" ||
		env.CausationID != b[0].CausationID || !env.OccurredAt.Equal(clock) || env.SchemaVersion != events.SchemaVersion {
		t.Fatalf("loaded envelope %+v does not match appended %+v", env, b[0])
	}
	if ev, ok := env.Event.(events.RevisionCreated); !ok || ev.RevisionID != "r1" || ev.Code != events.DefaultCodeParams() {
		t.Fatalf("payload = %#v", env.Event)
	}
}

func multiEventAppend(t *testing.T, s events.Store) {
	n := unique()
	first := mustAppend(t, s, n("web"), 0, batch(n("web"), newID(), created("r1")))
	res := mustAppend(t, s, n("web"), first.LastSequence, batch(n("web"), newID(),
		events.RevisionDeployed{RevisionID: "r1"},
		events.CurrentRevisionSet{To: "r1", Reason: "deploy"},
	))
	if res.LastSequence-res.FirstSequence != 1 || res.FirstSequence <= first.LastSequence {
		t.Fatalf("result = %+v after %+v, want two contiguous sequences", res, first)
	}
	got := mustLoad(t, s, n("web"), 0)
	if len(got) != 3 || got[1].Type != events.TypeRevisionDeployed || got[2].Type != events.TypeCurrentRevisionSet {
		t.Fatalf("loaded %d events: %v", len(got), types(got))
	}
}

func types(evs []events.Envelope) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = fmt.Sprintf("%d:%s", e.Sequence, e.Type)
	}
	return out
}

func staleExpectedConflicts(t *testing.T, s events.Store) {
	n := unique()
	mustAppend(t, s, n("web"), 0, batch(n("web"), newID(), created("r1")))
	_, err := s.Append(ctxFor(t), n("web"), 0, batch(n("web"), newID(), created("r2")))
	var conflict *events.ConflictError
	if !errors.As(err, &conflict) || !errors.Is(err, events.ErrConflict) || conflict.App != n("web") {
		t.Fatalf("append with stale version: err = %v, want *ConflictError", err)
	}
}

func conflictAppendsNothing(t *testing.T, s events.Store) {
	n := unique()
	res := mustAppend(t, s, n("web"), 0, batch(n("web"), newID(), created("r1")))
	_, err := s.Append(ctxFor(t), n("web"), 0, batch(n("web"), newID(), created("r2"), events.RevisionDeployed{RevisionID: "r2"}))
	if !errors.Is(err, events.ErrConflict) {
		t.Fatalf("err = %v, want conflict", err)
	}
	if got := mustLoad(t, s, n("web"), 0); len(got) != 1 || got[0].Sequence != res.LastSequence {
		t.Fatalf("after a refused batch the app has %v", types(got))
	}
}

func appsAreIndependent(t *testing.T, s events.Store) {
	n := unique()
	a := mustAppend(t, s, n("a"), 0, batch(n("a"), newID(), created("r1")))
	// b has no events yet: 0 is right for it although the stream moved on.
	b := mustAppend(t, s, n("b"), 0, batch(n("b"), newID(), created("r1")))
	mustAppend(t, s, n("a"), a.LastSequence, batch(n("a"), newID(), events.RevisionDeployed{RevisionID: "r1"}))
	mustAppend(t, s, n("b"), b.LastSequence, batch(n("b"), newID(), events.RevisionDeployed{RevisionID: "r1"}))
	// An app whose name prefixes another's is still separate.
	mustAppend(t, s, n("a-2"), 0, batch(n("a-2"), newID(), created("r1")))
	if got := mustLoad(t, s, n("a"), 0); len(got) != 2 {
		t.Fatalf("app a has %v", types(got))
	}
}

func retriedAppend(t *testing.T, s events.Store) {
	n := unique()
	commandID := newID()
	b := batch(n("web"), commandID, created("r1"), events.RevisionDeployed{RevisionID: "r1"})
	first := mustAppend(t, s, n("web"), 0, b)
	again := mustAppend(t, s, n("web"), 0, b)
	if !again.Duplicate || again.FirstSequence != first.FirstSequence || again.LastSequence != first.LastSequence {
		t.Fatalf("retry result = %+v, want duplicate of %+v", again, first)
	}
	if got := mustLoad(t, s, n("web"), 0); len(got) != 2 {
		t.Fatalf("after a retry the app has %v, want 2 events", types(got))
	}
}

func retryAfterOthers(t *testing.T, s events.Store) {
	n := unique()
	b := batch(n("web"), newID(), created("r1"))
	first := mustAppend(t, s, n("web"), 0, b)
	mustAppend(t, s, n("web"), first.LastSequence, batch(n("web"), newID(), created("r2")))
	again := mustAppend(t, s, n("web"), 0, b)
	if !again.Duplicate || again.FirstSequence != first.FirstSequence {
		t.Fatalf("late retry = %+v, want duplicate of %+v", again, first)
	}
}

// concurrentAppends runs 16 writers that each append 4 commands to one app,
// re-reading on conflict, and checks that nothing is lost and nothing is
// stored twice.
func concurrentAppends(t *testing.T, s events.Store) {
	n := unique()
	const writers, perWriter = 16, 4
	ctx := ctxFor(t)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				b := batch(n("hot"), newID(), created(fmt.Sprintf("w%d-%d", w, i)))
				if err := appendWithRetry(ctx, s, n("hot"), b); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := mustLoad(t, s, n("hot"), 0)
	if len(got) != writers*perWriter {
		t.Fatalf("stored %d events, want %d", len(got), writers*perWriter)
	}
	seen := map[string]bool{}
	for i, env := range got {
		id := env.Event.(events.RevisionCreated).RevisionID
		if seen[id] {
			t.Fatalf("revision %s stored twice", id)
		}
		seen[id] = true
		if i > 0 && env.Sequence <= got[i-1].Sequence {
			t.Fatalf("sequences out of order: %v", types(got))
		}
	}
}

func appendWithRetry(ctx context.Context, s events.Store, app string, b []events.Envelope) error {
	for {
		history, err := s.Load(ctx, app, 0)
		if err != nil {
			return err
		}
		var expected uint64
		if len(history) > 0 {
			expected = history[len(history)-1].Sequence
		}
		_, err = s.Append(ctx, app, expected, b)
		if !errors.Is(err, events.ErrConflict) {
			return err
		}
	}
}

func loadAfter(t *testing.T, s events.Store) {
	n := unique()
	r1 := mustAppend(t, s, n("web"), 0, batch(n("web"), newID(), created("r1")))
	r2 := mustAppend(t, s, n("web"), r1.LastSequence, batch(n("web"), newID(), created("r2")))
	got := mustLoad(t, s, n("web"), r1.LastSequence)
	if len(got) != 1 || got[0].Sequence != r2.FirstSequence {
		t.Fatalf("load after %d = %v", r1.LastSequence, types(got))
	}
	if got := mustLoad(t, s, n("web"), r2.LastSequence); len(got) != 0 {
		t.Fatalf("load after the last event = %v, want none", types(got))
	}
	if got := mustLoad(t, s, n("nobody"), 0); len(got) != 0 {
		t.Fatalf("unknown app has %v", types(got))
	}
}

func followDelivers(t *testing.T, s events.Store) {
	n := unique()
	a := mustAppend(t, s, n("a"), 0, batch(n("a"), newID(), created("r1")))
	mustAppend(t, s, n("b"), 0, batch(n("b"), newID(), created("r1")))
	ctx, cancel := context.WithCancel(ctxFor(t))
	defer cancel()
	got := make(chan events.Envelope, 10)
	done := make(chan error, 1)
	go func() {
		done <- s.Follow(ctx, a.FirstSequence, func(env events.Envelope, err error) error {
			if err != nil {
				return err
			}
			if env.App == n("a") || env.App == n("b") { // the store may be shared
				got <- env
			}
			return nil
		})
	}()
	next := func() events.Envelope {
		select {
		case env := <-got:
			return env
		case <-ctx.Done():
			t.Fatal("follow delivered nothing before the deadline")
		}
		return events.Envelope{}
	}
	first, second := next(), next()
	if first.App != n("a") || second.App != n("b") || second.Sequence <= first.Sequence {
		t.Fatalf("follow delivered %d:%s then %d:%s", first.Sequence, first.App, second.Sequence, second.App)
	}
	late := mustAppend(t, s, n("a"), a.LastSequence, batch(n("a"), newID(), events.RevisionDeployed{RevisionID: "r1"}))
	if env := next(); env.Sequence != late.FirstSequence || env.Type != events.TypeRevisionDeployed {
		t.Fatalf("follow delivered %d:%s, want the new event %d", env.Sequence, env.Type, late.FirstSequence)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("follow returned %v after cancel", err)
	}
}

func invalidBatches(t *testing.T, s events.Store) {
	n := unique()
	ctx := ctxFor(t)
	cases := map[string]struct {
		app string
		b   []events.Envelope
	}{
		"empty":              {n("web"), nil},
		"unsafe app name":    {"a.b", batch("a.b", newID(), created("r1"))},
		"wildcard app name":  {"*", batch("*", newID(), created("r1"))},
		"event of other app": {n("web"), batch(n("api"), newID(), created("r1"))},
		"mixed causation":    {n("web"), append(batch(n("web"), newID(), created("r1")), batch(n("web"), newID(), created("r2"))...)},
	}
	for name, tc := range cases {
		if _, err := s.Append(ctx, tc.app, 0, tc.b); err == nil || errors.Is(err, events.ErrConflict) {
			t.Errorf("%s: err = %v, want a validation error", name, err)
		}
	}
	if got := mustLoad(t, s, n("web"), 0); len(got) != 0 {
		t.Fatalf("refused batches stored %v", types(got))
	}
}
