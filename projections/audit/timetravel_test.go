package audit_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/projections/audit"
)

// randomHistory decides n random commands (deploys, their outcomes,
// scales, rollbacks, deletes, runner reports, suspends, rollouts) for two
// apps with aggregates.Decide and stores the accepted ones. Refused
// commands store nothing, as in the processor.
func randomHistory(t *testing.T, h *history, rng *rand.Rand, n int) {
	t.Helper()
	apps := []string{"alpha", "beta"}
	runners := map[string][]string{}
	for range n {
		app := apps[rng.IntN(len(apps))]
		stored, err := h.store.Load(h.ctx, app, 0)
		if err != nil {
			t.Fatal(err)
		}
		state := aggregates.Fold(app, stored)
		var ids []string
		for id := range state.Revisions {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		pick := func() string {
			if len(ids) == 0 {
				return uuid.NewString()
			}
			return ids[rng.IntN(len(ids))]
		}
		var cmd events.Command
		switch k := rng.IntN(12); {
		case k < 3 || len(ids) == 0:
			cmd = events.Deploy{RevisionID: uuid.NewString(), Command: "run $PORT", Message: fmt.Sprintf("change %d", rng.IntN(100)),
				ResetScale: rng.IntN(4) == 0, Runtime: events.RuntimeOverrides{MinConcurrency: ptr(rng.IntN(3))},
				Annotations: map[string]string{"git_sha": fmt.Sprint(rng.IntN(1000))}}
		case k < 5:
			cmd = events.CompleteDeploy{RevisionID: pick()}
		case k == 5:
			cmd = events.FailDeploy{RevisionID: pick(), Reason: "exit 1"}
		case k == 6:
			cmd = events.Scale{Runtime: events.RuntimeOverrides{MinConcurrency: ptr(rng.IntN(3)), KeepAlive: ptr(events.Seconds(rng.IntN(600)))},
				Code: events.CodeOverrides{MaxMultiplexing: ptr(1 + rng.IntN(4))}}
		case k == 7:
			cmd = events.SetRevision{RevisionID: fmt.Sprintf("v%d", 1+rng.IntN(int(state.LastNumber))), Message: "back"}
		case k == 8:
			cmd = events.DeleteRevision{RevisionID: pick()}
		case k == 9:
			if len(runners[app]) == 0 || rng.IntN(2) == 0 {
				runners[app] = append(runners[app], uuid.NewString())
			}
			states := []events.RunnerState{events.RunnerIdle, events.RunnerRunning, events.RunnerDraining, events.RunnerTerminated, events.RunnerCrashBackoff}
			cmd = events.ReportRunner{RunnerID: runners[app][rng.IntN(len(runners[app]))], RevisionID: pick(), State: states[rng.IntN(len(states))],
				PID: rng.IntN(3) * 100, Port: 8000 + rng.IntN(2), Reason: fmt.Sprint("reason ", rng.IntN(5))}
		case k == 10:
			if state.Suspended {
				cmd = events.Resume{}
			} else {
				cmd = events.Suspend{}
			}
		default:
			if state.Rollout != nil {
				cmd = events.CompleteRollout{RolloutID: state.Rollout.ID, Replaced: 1}
			} else {
				cmd = events.Rollout{RolloutID: uuid.NewString()}
			}
		}
		if evs, err := aggregates.Decide(state, cmd, h.clock); err == nil && len(evs) > 0 {
			h.do(app, fmt.Sprintf("user%d", rng.IntN(3)), cmd)
		}
	}
}

// Time travel at many points of a random history equals the revision
// list the live projection's own fold (projections.Rebuild) gives at the
// same sequence, and the aggregate folded from the app's events up to it.
func TestTimeTravelMatchesFoldsOfTheLog(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	randomHistory(t, h, rand.New(rand.NewPCG(9, 26)), 400)
	end, err := h.store.LastSequence(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if end < 150 {
		t.Fatalf("the random history has only %d events", end)
	}
	compared := 0
	for seq := uint64(1); seq <= end; seq += 1 + seq/7 {
		model, err := projections.Rebuild(h.ctx, h.store, seq)
		if err != nil {
			t.Fatal(err)
		}
		for _, app := range []string{"alpha", "beta"} {
			want := model.Revisions(app)
			got, err := audit.RevisionsAt(h.ctx, h.store, app, audit.Point{Sequence: seq})
			if want == nil {
				if err == nil {
					t.Fatalf("%s at %d: %+v, want no history", app, seq, got)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s at %d: %v", app, seq, err)
			}
			if !reflect.DeepEqual(got.Revisions, want) {
				t.Fatalf("%s at %d:\n got %+v\nwant %+v", app, seq, got.Revisions, want)
			}
			runners, err := audit.RunnersAt(h.ctx, h.store, app, audit.Point{Sequence: seq})
			if err != nil {
				t.Fatal(err)
			}
			if want := model.Runners(app, true); !reflect.DeepEqual(runners.Runners, want) && len(want)+len(runners.Runners) > 0 {
				t.Fatalf("%s runners at %d:\n got %+v\nwant %+v", app, seq, runners.Runners, want)
			}
			stored, err := h.store.Load(h.ctx, app, 0)
			if err != nil {
				t.Fatal(err)
			}
			upTo := slices.DeleteFunc(stored, func(env events.Envelope) bool { return env.Sequence > seq })
			folded := aggregates.Fold(app, upTo)
			if got.Sequence != folded.Version || len(got.Revisions) != countLive(folded) {
				t.Fatalf("%s at %d: sequence %d and %d revisions; the aggregate folded to %d has %d", app, seq, got.Sequence, len(got.Revisions), folded.Version, countLive(folded))
			}
			compared++
		}
	}
	if compared < 20 {
		t.Fatalf("compared only %d points", compared)
	}
}

func countLive(a aggregates.App) int {
	n := 0
	for _, r := range a.Revisions {
		if !r.Deleted {
			n++
		}
	}
	return n
}

// A point in time keeps the events that occurred up to it: the same list
// as the sequence of the last of them.
func TestTimeTravelByTime(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	h.standard()
	for minute, seq := range map[int]uint64{2: 4, 5: 9, 7: 11, 60: 16} {
		at := t0.Add(time.Duration(minute) * time.Minute)
		byTime, err := audit.RevisionsAt(h.ctx, h.store, "my-model", audit.Point{Time: at})
		if err != nil {
			t.Fatal(err)
		}
		bySeq, err := audit.RevisionsAt(h.ctx, h.store, "my-model", audit.Point{Sequence: seq})
		if err != nil {
			t.Fatal(err)
		}
		if byTime.Sequence != seq || !reflect.DeepEqual(byTime, bySeq) {
			t.Errorf("at t0+%dm: event %d, %+v; want event %d, %+v", minute, byTime.Sequence, byTime.Revisions, seq, bySeq.Revisions)
		}
	}
	var none *audit.NoHistoryError
	if _, err := audit.RevisionsAt(h.ctx, h.store, "my-model", audit.Point{Time: t0.Add(-time.Hour)}); err == nil || !reflectAs(err, &none) {
		t.Errorf("before the first event: %v, want no history", err)
	}
}

func reflectAs(err error, target **audit.NoHistoryError) bool {
	e, ok := err.(*audit.NoHistoryError)
	*target = e
	return ok
}
