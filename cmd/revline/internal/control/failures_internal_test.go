package control

import (
	"errors"
	"strings"
	"testing"

	"github.com/revline/revline/events"
)

func report(runner, revision string, state events.RunnerState, reason string) events.RunnerStateChanged {
	return events.RunnerStateChanged{RunnerID: runner, RevisionID: revision, State: state, Reason: reason}
}

// The failure watch counts crashes and failed starts of the current
// revision's runners, and nothing else.
func TestFailureWatch(t *testing.T) {
	t.Parallel()
	const v1, v2 = "rev-1", "rev-2"
	crash := func(runner, rev string) events.Event {
		return report(runner, rev, events.RunnerCrashBackoff, "exited: exit status 3; restarting in 1s")
	}
	setup := func(runner, rev string) events.Event { return report(runner, rev, events.RunnerSetup, "") }
	terminated := func(runner, rev string) events.Event {
		return report(runner, rev, events.RunnerTerminated, "runner exited with status 3 before listening")
	}
	for _, tc := range []struct {
		name string
		evs  []events.Event
		// failsAt is the index of the event that ends the wait, -1 for none.
		failsAt int
		what    string
	}{
		{"three_crashes_end_the_wait", []events.Event{crash("a", v1), setup("a", v1), crash("a", v1), setup("a", v1), crash("a", v1)}, 4, "crashed: exited: exit status 3"},
		{"failed_starts_count", []events.Event{setup("a", v1), terminated("a", v1), setup("b", v1), terminated("b", v1), setup("c", v1), terminated("c", v1)}, 5, "did not start: runner exited"},
		{"crashes_and_failed_starts_add_up", []events.Event{crash("a", v1), setup("a", v1), terminated("a", v1), crash("b", v1)}, 3, "crashed"},
		{"stops_are_not_failures", []events.Event{
			report("a", v1, events.RunnerIdle, ""), report("a", v1, events.RunnerDraining, "rollout"), report("a", v1, events.RunnerTerminated, "drained"),
			setup("b", v1), report("b", v1, events.RunnerTerminating, "scale down"), report("b", v1, events.RunnerTerminated, "stopped"),
			setup("c", v1), report("c", v1, events.RunnerIdle, ""), report("c", v1, events.RunnerTerminated, "keep_alive"),
		}, -1, ""},
		{"other_revisions_do_not_count", []events.Event{crash("a", v2), setup("b", v2), terminated("b", v2), crash("a", v2)}, -1, ""},
		{"a_switch_starts_the_count_over", []events.Event{crash("a", v1), crash("a", v1), events.CurrentRevisionSet{To: v2}, crash("b", v2), crash("b", v2)}, -1, ""},
		{"the_switched_to_revision_counts", []events.Event{events.CurrentRevisionSet{To: v2}, crash("b", v2), crash("b", v2), crash("b", v2)}, 3, "crashed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newFailureWatch("web", v1)
			for i, ev := range tc.evs {
				err := w.observe(ev)
				if i != tc.failsAt {
					if err != nil {
						t.Fatalf("event %d (%+v): %v, want no failure yet", i, ev, err)
					}
					continue
				}
				var failing *RunnersFailingError
				if !errors.As(err, &failing) || !errors.Is(err, ErrRunnersFailing) {
					t.Fatalf("event %d (%+v): %v, want the runners failing", i, ev, err)
				}
				if failing.Failures != FailureLimit || failing.App != "web" || !strings.Contains(err.Error(), tc.what) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("failure %+v (%q), want %d failures of web, one line, saying %q", failing, err, FailureLimit, tc.what)
				}
			}
		})
	}
}
