package aggregates_test

import (
	"strings"
	"testing"
	"time"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
)

func appDeleted(current, reason string, secrets ...string) events.AppDeleted {
	return events.AppDeleted{RevisionID: current, Reason: reason, Secrets: secrets}
}

func deleteAppSpecs() []spec {
	inProgress := history(live(r1), evs(rolloutRequested(ro1, r1, false)))
	gone := history(live(r1), evs(events.SecretSet{Name: "HF_TOKEN", Version: 3}, appDeleted(r1, "")))
	return []spec{
		{
			name:  "delete_forgets_the_current_revision_revisions_and_secrets",
			given: history(live(r1), evs(created(r2), deployed(r2), events.SecretSet{Name: "HF_TOKEN", Version: 3}, events.SecretSet{Name: "A_KEY", Version: 4})),
			when:  events.DeleteApp{Reason: "made by mistake"},
			then:  evs(appDeleted(r1, "made by mistake", "A_KEY", "HF_TOKEN")),
			after: func(t T, s aggregates.App) {
				equal(t, "deleted", s.Deleted, true)
				equal(t, "deleted by", s.DeletedBy, "spec")
				equal(t, "current", s.Current, "")
				equal(t, "has runtime", s.HasRuntime, false)
				equal(t, "secrets", len(s.Secrets), 0)
				equal(t, "r1 deleted", revision(t, s, r1).Deleted, true)
				equal(t, "r2 deleted", revision(t, s, r2).Deleted, true)
				equal(t, "last number", s.LastNumber, uint64(2))
			},
		},
		{
			name:  "an_app_made_by_a_secret_alone_can_be_deleted",
			given: evs(events.SecretSet{Name: "HF_TOKEN", Version: 1}),
			when:  events.DeleteApp{},
			then:  evs(appDeleted("", "", "HF_TOKEN")),
		},
		{
			name:  "a_suspended_app_can_be_deleted",
			given: history(live(r1), evs(suspended(r1))),
			when:  events.DeleteApp{},
			then:  evs(appDeleted(r1, "")),
			after: func(t T, s aggregates.App) { equal(t, "suspended", s.Suspended, false) },
		},
		{
			name:   "deleting_an_unknown_app_is_rejected",
			when:   events.DeleteApp{},
			reject: aggregates.CodeAppNotFound,
			says:   []string{appName},
		},
		{
			name:  "deleting_a_deleted_app_is_a_noop",
			given: gone,
			when:  events.DeleteApp{Reason: "again"},
			noop:  aggregates.CodeAlreadyDeleted,
			says:  []string{"spec"},
		},
		{
			name:   "deleting_during_a_deploy_is_rejected",
			given:  history(live(r1), evs(created(r2))),
			when:   events.DeleteApp{},
			reject: aggregates.CodeDeployInProgress,
			says:   []string{r2},
		},
		{
			name:   "deleting_during_the_first_deploy_is_rejected",
			given:  evs(created(r1)),
			when:   events.DeleteApp{},
			reject: aggregates.CodeDeployInProgress,
		},
		{
			name:   "deleting_during_a_rollout_is_rejected",
			given:  inProgress,
			when:   events.DeleteApp{},
			reject: aggregates.CodeRolloutInProgress,
			says:   []string{ro1},
		},
		{
			name:  "a_stuck_rollout_does_not_hold_a_delete",
			given: inProgress,
			now:   t0.Add(aggregates.RolloutStuckAfter),
			when:  events.DeleteApp{},
			then:  evs(appDeleted(r1, "")),
			after: func(t T, s aggregates.App) { equal(t, "rollout", s.Rollout, (*aggregates.Rollout)(nil)) },
		},
		{
			name:   "a_reason_over_the_limit_is_rejected",
			given:  live(r1),
			when:   events.DeleteApp{Reason: strings.Repeat("x", aggregates.MaxReasonBytes+1)},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"reason"},
		},
		{
			name:  "deploy_after_delete_starts_the_app_again_with_the_next_number",
			given: gone,
			when:  events.Deploy{RevisionID: r2, Command: runCommand},
			then: evs(events.RevisionCreated{
				RevisionID: r2, Number: 2, Command: runCommand, Code: events.DefaultCodeParams(),
				Runtime: events.DefaultRuntimeParams(), Strategy: events.StrategyRolling,
			}),
			after: func(t T, s aggregates.App) {
				equal(t, "deleted", s.Deleted, false)
				equal(t, "deleted by", s.DeletedBy, "")
				equal(t, "r1 still deleted", revision(t, s, r1).Deleted, true)
			},
		},
		{
			name:  "the_first_deploy_after_delete_takes_its_own_scaling",
			given: history(gone, evs(created(r2, withRuntime(quietRuntime)))),
			when:  events.CompleteDeploy{RevisionID: r2},
			then: evs(deployed(r2), events.CurrentRevisionSet{
				To: r2, Reason: events.ReasonDeploy, Strategy: events.StrategyRolling, Code: events.DefaultCodeParams(), Runtime: quietRuntime,
			}),
		},
		{
			name:   "redeploying_a_revision_of_the_deleted_app_is_rejected",
			given:  gone,
			when:   events.Deploy{RevisionID: r1, Command: runCommand},
			reject: aggregates.CodeRevisionExists,
		},
		{
			name:   "set_rev_on_a_deleted_app_is_rejected",
			given:  gone,
			when:   events.SetRevision{RevisionID: r1},
			reject: aggregates.CodeAppDeleted,
			says:   []string{appName, "spec", "deploy"},
		},
		{
			name:   "set_rev_to_a_revision_from_before_the_delete_is_rejected",
			given:  history(gone, live(r2)),
			when:   events.SetRevision{RevisionID: r1},
			reject: aggregates.CodeRevisionDeleted,
		},
		{
			name:  "a_runner_of_a_deleted_app_is_still_reported",
			given: history(gone),
			when:  events.ReportRunner{RunnerID: runner1, RevisionID: r1, State: events.RunnerTerminated},
			then:  evs(events.RunnerStateChanged{RunnerID: runner1, RevisionID: r1, State: events.RunnerTerminated}),
		},
	}
}

func TestDeleteApp(t *testing.T) { t.Parallel(); run(t, deleteAppSpecs()) }

// TestEveryOtherCommandOnADeletedAppIsRefused: every command but a deploy,
// a runner report and another delete gets app_deleted.
func TestEveryOtherCommandOnADeletedAppIsRefused(t *testing.T) {
	t.Parallel()
	gone := given(t, history(live(r1), evs(appDeleted(r1, "")))...)
	for _, cmd := range []events.Command{
		events.SetRevision{RevisionID: r1}, events.Rollout{RolloutID: ro1}, events.DeleteRevision{RevisionID: r1},
		events.Scale{Runtime: events.RuntimeOverrides{MinConcurrency: ptr(1)}}, events.Suspend{}, events.Resume{},
		events.CompleteDeploy{RevisionID: r1}, events.FailDeploy{RevisionID: r1, Reason: "x"}, events.CompleteRollout{RolloutID: ro1},
		events.SetSecret{Name: "HF_TOKEN", Version: 1}, events.UnsetSecret{Name: "HF_TOKEN"}, events.StopRunner{RunnerID: runner1},
	} {
		says(t, gone.when(cmd).thenReject(aggregates.CodeAppDeleted), t0.Format(time.RFC3339))
	}
}
