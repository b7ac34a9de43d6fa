package projections_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/revline/revline/events"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/projections/queryapi"
)

// deleteApp records the app's deletion; the fixture forgets its current
// revision and scaling, as the decider does.
func (f *fixture) deleteApp(app, actor, reason string) uint64 {
	f.t.Helper()
	a := f.app(app)
	seq := f.append(app, actor, events.AppDeleted{RevisionID: a.current, Reason: reason})
	a.current, a.deployed = "", false
	return seq
}

func appNames(apps []projections.AppView) []string {
	out := make([]string, len(apps))
	for i, a := range apps {
		out[i] = a.Name
	}
	return out
}

func TestADeletedAppLeavesTheListsAndComesBackWithADeploy(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, f *fixture) {
		model := f.live()
		f.deploy("demo", rev1, "alice", codeSmall, runtimeA)
		f.deploy("other", rev3, "carol", codeSmall, runtimeA)
		f.runner("demo", "runner-1", rev1, events.RunnerIdle, 100, 9000)
		f.rollout("demo", rev5, false)
		deletedAt := f.clock.Add(time.Minute)
		f.deleteApp("demo", "bob", "made by mistake")

		f.caughtUp(model)
		if got := appNames(model.Apps()); !slices.Equal(got, []string{"other"}) {
			t.Fatalf("apps = %v, want other alone", got)
		}
		view := mustApp(t, model, "demo")
		if view.Deleted == nil || view.Deleted.By != "bob" || view.Deleted.Reason != "made by mistake" || !view.Deleted.At.Equal(deletedAt) {
			t.Fatalf("deleted = %+v, want bob's at %v", view.Deleted, deletedAt)
		}
		if view.CurrentRevision != "" || view.Revisions != 0 || view.Runners != 1 {
			t.Errorf("app = %+v; want no current revision, no revision listed, its runner until reported terminated", view)
		}
		if revs := model.Revisions("demo"); len(revs) != 0 {
			t.Errorf("revisions = %v, want none listed", ids(revs))
		}
		if r := mustRevision(t, model, "demo", rev1); !r.Deleted || r.Number != 1 {
			t.Errorf("v1 by id = %+v, want it kept, deleted", r)
		}
		if _, active := model.ActiveRollout("demo"); active {
			t.Error("the deleted app still has a rollout in progress")
		}

		local := queryapi.Local{Model: model}
		_, err := local.Revisions(f.ctx, "demo", queryapi.PageRequest{}, 0)
		var qerr *queryapi.Error
		if !errors.As(err, &qerr) || qerr.Code != queryapi.CodeAppDeleted || !strings.Contains(qerr.Message, "bob") || !strings.Contains(qerr.Message, "made by mistake") {
			t.Fatalf("list-rev of the deleted app: %v, want app_deleted naming bob and the reason", err)
		}

		f.deploy("demo", rev2, "alice", codeLarge, runtimeB)
		f.caughtUp(model)
		if got := appNames(model.Apps()); !slices.Equal(got, []string{"demo", "other"}) {
			t.Fatalf("apps after the new deploy = %v, want demo back", got)
		}
		revs := model.Revisions("demo")
		if len(revs) != 1 || revs[0].RevisionID != rev2 || revs[0].Number != 2 || !revs[0].Current || revs[0].RuntimeParams != runtimeB {
			t.Fatalf("revisions after the new deploy = %+v, want v2 alone, current, with its own scaling", revs)
		}
		if mustApp(t, model, "demo").Deleted != nil {
			t.Error("the deployed app still shows as deleted")
		}
	})
}
