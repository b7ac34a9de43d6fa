package aggregates_test

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
)

// spec is one behaviour of the decider: given a history, when a command is
// decided, then exactly these events, or this refusal, or this no-op.
type spec struct {
	name   string
	given  []events.Event
	now    time.Time // zero: a minute after the given history (t0)
	when   events.Command
	then   []events.Event                  // accepted with exactly these events
	reject string                          // or refused with this code
	noop   string                          // or reported as a no-op with this code
	says   []string                        // fragments the refusal's sentence contains
	after  func(t T, state aggregates.App) // checks on the state after `then`
}

func run(t *testing.T, specs []spec) {
	t.Helper()
	for _, s := range specs {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			sc := given(t, s.given...)
			if !s.now.IsZero() {
				sc.at(s.now)
			}
			o := sc.when(s.when)
			switch {
			case s.reject != "":
				says(t, o.thenReject(s.reject), s.says...)
			case s.noop != "":
				says(t, o.thenNoOp(s.noop), s.says...)
			default:
				state := o.then(s.then...)
				if s.after != nil {
					s.after(t, state)
				}
			}
		})
	}
}

func equal[V any](t T, what string, got, want V) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s = %+v, want %+v", what, got, want)
	}
}

func revision(t T, state aggregates.App, id string) aggregates.Revision {
	t.Helper()
	r, ok := state.Revisions[id]
	if !ok {
		t.Fatalf("state has no revision %s", id)
	}
	return *r
}

// rolledBack is a set-rev from `from` to `to`, keeping runtime rt.
func rolledBack(from, to string, code events.CodeParams, rt events.RuntimeParams) events.CurrentRevisionSet {
	return events.CurrentRevisionSet{
		From: from, To: to, Reason: "rollback", Strategy: events.StrategyRolling, Code: code,
		Runtime: rt, Inherited: slices.Clone(events.RuntimeParamNames), InheritedFrom: from,
	}
}

func allInherited() []string { return slices.Clone(events.RuntimeParamNames) }

func deploySpecs() []spec {
	return []spec{
		{
			name: "first_deploy_creates_a_deploying_revision_with_defaults",
			when: events.Deploy{RevisionID: r1, Command: runCommand},
			then: evs(created(r1, numbered(1))),
			after: func(t T, s aggregates.App) {
				r := revision(t, s, r1)
				equal(t, "status", r.Status, events.StatusDeploying)
				equal(t, "created at", r.CreatedAt, t0.Add(time.Minute))
				equal(t, "current", s.Current, "")
				equal(t, "has runtime", s.HasRuntime, false)
				equal(t, "exists", s.Exists(), true)
			},
		},
		{
			name: "deploy_records_every_parameter_it_was_given",
			when: events.Deploy{
				RevisionID: r1, Command: runCommand,
				Code: events.CodeOverrides{MachineType: ptr("GPU-A100"), MaxMultiplexing: ptr(4), StartupTimeout: ptr(events.Seconds(600))},
				Runtime: events.RuntimeOverrides{
					KeepAlive: ptr(events.Seconds(300)), MinConcurrency: ptr(2), MaxConcurrency: ptr(20),
					ConcurrencyBuffer: ptr(1), RequestTimeout: ptr(events.Seconds(600)),
				},
				ResetScale: true, Strategy: events.StrategyRecreate, Message: "new tokenizer",
				Annotations: map[string]string{"git_sha": "abc123"},
			},
			then: evs(events.RevisionCreated{
				RevisionID: r1, Number: 1, Command: runCommand, Code: gpuCode, Runtime: busyRuntime, ResetScale: true,
				Strategy: events.StrategyRecreate, Message: "new tokenizer", Annotations: map[string]string{"git_sha": "abc123"},
			}),
		},
		{
			name: "unset_parameters_take_their_defaults",
			when: events.Deploy{
				RevisionID: r1, Command: runCommand,
				Code:    events.CodeOverrides{MaxMultiplexing: ptr(8)},
				Runtime: events.RuntimeOverrides{MinConcurrency: ptr(1)},
			},
			then: evs(events.RevisionCreated{
				RevisionID: r1, Number: 1, Command: runCommand,
				Code:     events.CodeParams{MachineType: "XS", MaxMultiplexing: 8, StartupTimeout: 60},
				Runtime:  events.RuntimeParams{KeepAlive: 60, MinConcurrency: 1, MaxConcurrency: 10, RequestTimeout: 3600},
				Strategy: events.StrategyRolling,
			}),
		},
		{
			name:  "deploying_to_a_live_app_does_not_move_the_alias_yet",
			given: live(r1, withRuntime(busyRuntime)),
			when:  events.Deploy{RevisionID: r2, Command: runCommand},
			then:  evs(created(r2, numbered(2))),
			after: func(t T, s aggregates.App) {
				equal(t, "current", s.Current, r1)
				equal(t, "runtime", s.Runtime, busyRuntime)
				equal(t, "r2 status", revision(t, s, r2).Status, events.StatusDeploying)
			},
		},
		{
			name:  "deploying_after_a_resume_is_accepted",
			given: history(live(r1), evs(suspended(r1), resumed(r1))),
			when:  events.Deploy{RevisionID: r2, Command: runCommand},
			then:  evs(created(r2, numbered(2))),
		},
		{
			name:   "empty_deploy_is_rejected",
			when:   events.Deploy{},
			reject: aggregates.CodeInvalidArgument,
		},
		{
			name:   "deploy_without_a_revision_id_is_rejected",
			when:   events.Deploy{Command: runCommand},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"revision id"},
		},
		{
			name:   "deploy_without_a_command_is_rejected",
			when:   events.Deploy{RevisionID: r1},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"command"},
		},
		{
			name:   "negative_keep_alive_is_rejected",
			when:   events.Deploy{RevisionID: r1, Command: runCommand, Runtime: events.RuntimeOverrides{KeepAlive: ptr(events.Seconds(-1))}},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"keep_alive", "negative"},
		},
		{
			name:   "negative_min_concurrency_is_rejected",
			when:   events.Deploy{RevisionID: r1, Command: runCommand, Runtime: events.RuntimeOverrides{MinConcurrency: ptr(-1)}},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"min_concurrency", "negative"},
		},
		{
			name:   "negative_max_concurrency_is_rejected",
			when:   events.Deploy{RevisionID: r1, Command: runCommand, Runtime: events.RuntimeOverrides{MaxConcurrency: ptr(-3)}},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"max_concurrency", "negative"},
		},
		{
			name:   "negative_concurrency_buffer_is_rejected",
			when:   events.Deploy{RevisionID: r1, Command: runCommand, Runtime: events.RuntimeOverrides{ConcurrencyBuffer: ptr(-1)}},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"concurrency_buffer", "negative"},
		},
		{
			name:   "negative_request_timeout_is_rejected",
			when:   events.Deploy{RevisionID: r1, Command: runCommand, Runtime: events.RuntimeOverrides{RequestTimeout: ptr(events.Seconds(-5))}},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"request_timeout", "negative"},
		},
		{
			name:   "zero_max_concurrency_is_rejected",
			when:   events.Deploy{RevisionID: r1, Command: runCommand, Runtime: events.RuntimeOverrides{MaxConcurrency: ptr(0)}},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"max_concurrency"},
		},
		{
			name:   "zero_request_timeout_is_rejected",
			when:   events.Deploy{RevisionID: r1, Command: runCommand, Runtime: events.RuntimeOverrides{RequestTimeout: ptr(events.Seconds(0))}},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"request_timeout"},
		},
		{
			name:   "min_concurrency_above_max_concurrency_is_rejected",
			when:   events.Deploy{RevisionID: r1, Command: runCommand, Runtime: events.RuntimeOverrides{MinConcurrency: ptr(5), MaxConcurrency: ptr(3)}},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"min_concurrency", "max_concurrency"},
		},
		{
			name:   "min_concurrency_above_the_default_max_is_rejected",
			when:   events.Deploy{RevisionID: r1, Command: runCommand, Runtime: events.RuntimeOverrides{MinConcurrency: ptr(11)}},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"min_concurrency"},
		},
		{
			name:   "empty_machine_type_is_rejected",
			when:   events.Deploy{RevisionID: r1, Command: runCommand, Code: events.CodeOverrides{MachineType: ptr("")}},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"machine_type"},
		},
		{
			name:   "zero_max_multiplexing_is_rejected",
			when:   events.Deploy{RevisionID: r1, Command: runCommand, Code: events.CodeOverrides{MaxMultiplexing: ptr(0)}},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"max_multiplexing"},
		},
		{
			name:   "negative_startup_timeout_is_rejected",
			when:   events.Deploy{RevisionID: r1, Command: runCommand, Code: events.CodeOverrides{StartupTimeout: ptr(events.Seconds(-1))}},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"startup_timeout"},
		},
		{
			name:   "empty_annotation_key_is_rejected",
			when:   events.Deploy{RevisionID: r1, Command: runCommand, Annotations: map[string]string{"": "x"}},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"annotation"},
		},
		{
			name:   "unknown_strategy_is_rejected",
			when:   events.Deploy{RevisionID: r1, Command: runCommand, Strategy: "blue-green"},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"blue-green"},
		},
		{
			name:   "deploying_to_a_suspended_app_is_rejected",
			given:  history(live(r1), evs(suspended(r1))),
			when:   events.Deploy{RevisionID: r2, Command: runCommand},
			reject: aggregates.CodeAppSuspended,
			says:   []string{appName, "resume"},
		},
		{
			name:   "deploying_an_existing_revision_id_is_rejected",
			given:  evs(created(r1)),
			when:   events.Deploy{RevisionID: r1, Command: runCommand},
			reject: aggregates.CodeRevisionExists,
			says:   []string{r1},
		},
		{
			name:   "reusing_a_deleted_revision_id_is_rejected",
			given:  history(live(r1), promoted(r1, r2, defaultRuntime), evs(deleted(r1))),
			when:   events.Deploy{RevisionID: r1, Command: runCommand},
			reject: aggregates.CodeRevisionExists,
		},
	}
}

func completeDeploySpecs() []spec {
	return []spec{
		{
			name:  "first_deploy_takes_the_deploys_runtime",
			given: evs(created(r1, withCode(gpuCode), withRuntime(busyRuntime), withMessage("v1"))),
			when:  events.CompleteDeploy{RevisionID: r1},
			then: evs(deployed(r1), events.CurrentRevisionSet{
				From: "", To: r1, Reason: "deploy", Strategy: events.StrategyRolling, Message: "v1",
				Code: gpuCode, Runtime: busyRuntime,
			}),
			after: func(t T, s aggregates.App) {
				equal(t, "current", s.Current, r1)
				equal(t, "runtime", s.Runtime, busyRuntime)
				equal(t, "has runtime", s.HasRuntime, true)
				equal(t, "r1 status", revision(t, s, r1).Status, events.StatusDeployed)
			},
		},
		{
			name:  "later_deploy_keeps_the_current_runtime",
			given: history(live(r1, withRuntime(busyRuntime)), evs(scaled(busyRuntime, quietRuntime), created(r2, withCode(gpuCode)))),
			when:  events.CompleteDeploy{RevisionID: r2},
			then: evs(deployed(r2), events.CurrentRevisionSet{
				From: r1, To: r2, Reason: "deploy", Strategy: events.StrategyRolling,
				Code: gpuCode, Runtime: quietRuntime, Inherited: allInherited(), InheritedFrom: r1,
			}),
			after: func(t T, s aggregates.App) {
				equal(t, "current", s.Current, r2)
				equal(t, "runtime", s.Runtime, quietRuntime)
			},
		},
		{
			name: "reset_scale_deploy_takes_the_deploys_runtime",
			given: history(live(r1, withRuntime(busyRuntime)),
				evs(created(r2, withRuntime(quietRuntime), withResetScale(), withMessage("smaller")))),
			when: events.CompleteDeploy{RevisionID: r2},
			then: evs(deployed(r2), events.CurrentRevisionSet{
				From: r1, To: r2, Reason: "deploy", Strategy: events.StrategyRolling, Message: "smaller",
				Code: events.DefaultCodeParams(), Runtime: quietRuntime,
			}),
			after: func(t T, s aggregates.App) { equal(t, "runtime", s.Runtime, quietRuntime) },
		},
		{
			name: "deploy_after_a_failed_first_deploy_takes_its_own_runtime",
			given: evs(created(r1, withRuntime(quietRuntime)), failed(r1),
				created(r2, withRuntime(busyRuntime))),
			when: events.CompleteDeploy{RevisionID: r2},
			then: evs(deployed(r2), events.CurrentRevisionSet{
				To: r2, Reason: "deploy", Strategy: events.StrategyRolling,
				Code: events.DefaultCodeParams(), Runtime: busyRuntime,
			}),
		},
		{
			// The outsider's sequence: v3 deploying, the operator rolls
			// back to v1, then v3 comes up. The rollback is the later word.
			name: "a_deploy_rolled_back_while_it_deployed_does_not_become_current",
			given: history(live(r1), promoted(r1, r2, defaultRuntime),
				evs(created(r3, withCode(gpuCode)), rolledBack(r2, r1, defaultCode, defaultRuntime))),
			when: events.CompleteDeploy{RevisionID: r3},
			then: evs(events.RevisionDeployed{RevisionID: r3, RolledBackTo: r1}),
			after: func(t T, s aggregates.App) {
				equal(t, "current", s.Current, r1)
				equal(t, "code", s.Code, defaultCode)
				equal(t, "r3 status", revision(t, s, r3).Status, events.StatusDeployed)
			},
		},
		{
			name: "the_last_of_several_set_revs_while_it_deployed_is_recorded",
			given: history(live(r1), promoted(r1, r2, defaultRuntime),
				evs(created(r3), rolledBack(r2, r1, defaultCode, defaultRuntime), rolledBack(r1, r2, defaultCode, defaultRuntime))),
			when:  events.CompleteDeploy{RevisionID: r3},
			then:  evs(events.RevisionDeployed{RevisionID: r3, RolledBackTo: r2}),
			after: func(t T, s aggregates.App) { equal(t, "current", s.Current, r2) },
		},
		{
			name: "a_deploy_requested_after_a_set_rev_becomes_current",
			given: history(live(r1), promoted(r1, r2, defaultRuntime),
				evs(rolledBack(r2, r1, defaultCode, defaultRuntime), created(r3, withCode(gpuCode)))),
			when: events.CompleteDeploy{RevisionID: r3},
			then: evs(deployed(r3), events.CurrentRevisionSet{
				From: r1, To: r3, Reason: "deploy", Strategy: events.StrategyRolling,
				Code: gpuCode, Runtime: defaultRuntime, Inherited: allInherited(), InheritedFrom: r1,
			}),
			after: func(t T, s aggregates.App) { equal(t, "current", s.Current, r3) },
		},
		{
			// Another deploy completing is no operator's word about this
			// one: the later deploy becomes current, as before.
			name: "a_deploy_that_completes_after_another_deploy_still_becomes_current",
			given: history(live(r1), evs(created(r2), created(r3)),
				evs(deployed(r2), events.CurrentRevisionSet{From: r1, To: r2, Reason: "deploy", Strategy: events.StrategyRolling,
					Code: defaultCode, Runtime: defaultRuntime, Inherited: allInherited(), InheritedFrom: r1})),
			when: events.CompleteDeploy{RevisionID: r3},
			then: evs(deployed(r3), events.CurrentRevisionSet{
				From: r2, To: r3, Reason: "deploy", Strategy: events.StrategyRolling,
				Code: defaultCode, Runtime: defaultRuntime, Inherited: allInherited(), InheritedFrom: r2,
			}),
		},
		{
			name: "a_revision_deployed_but_not_made_current_can_be_set_current_later",
			given: history(live(r1), promoted(r1, r2, defaultRuntime),
				evs(created(r3, withCode(gpuCode)), rolledBack(r2, r1, defaultCode, defaultRuntime),
					events.RevisionDeployed{RevisionID: r3, RolledBackTo: r1})),
			when: events.SetRevision{RevisionID: r3},
			then: evs(rolledBack(r1, r3, gpuCode, defaultRuntime)),
		},
		{
			name:   "completing_an_unknown_revision_is_rejected",
			given:  live(r1),
			when:   events.CompleteDeploy{RevisionID: "nope"},
			reject: aggregates.CodeRevisionNotFound,
			says:   []string{"nope"},
		},
		{
			name:   "completing_a_deployed_revision_is_rejected",
			given:  live(r1),
			when:   events.CompleteDeploy{RevisionID: r1},
			reject: aggregates.CodeRevisionNotDeploying,
			says:   []string{r1, "deployed"},
		},
		{
			name:   "completing_a_failed_revision_is_rejected",
			given:  evs(created(r1), failed(r1)),
			when:   events.CompleteDeploy{RevisionID: r1},
			reject: aggregates.CodeRevisionNotDeploying,
			says:   []string{"failed"},
		},
	}
}

func failDeploySpecs() []spec {
	return []spec{
		{
			name:  "failed_deploy_never_moves_the_alias",
			given: history(live(r1, withRuntime(busyRuntime)), evs(created(r2, withRuntime(quietRuntime), withResetScale()))),
			when:  events.FailDeploy{RevisionID: r2, Reason: "exit status 1"},
			then:  evs(events.RevisionFailed{RevisionID: r2, Reason: "exit status 1"}),
			after: func(t T, s aggregates.App) {
				equal(t, "current", s.Current, r1)
				equal(t, "runtime", s.Runtime, busyRuntime)
				equal(t, "r2 status", revision(t, s, r2).Status, events.StatusFailed)
			},
		},
		{
			name:  "failed_first_deploy_leaves_the_app_without_a_current_revision",
			given: evs(created(r1)),
			when:  events.FailDeploy{RevisionID: r1, Reason: "health check timed out"},
			then:  evs(failed(r1)),
			after: func(t T, s aggregates.App) {
				equal(t, "current", s.Current, "")
				equal(t, "has runtime", s.HasRuntime, false)
			},
		},
		{
			name:   "failed_deploy_needs_a_reason",
			given:  evs(created(r1)),
			when:   events.FailDeploy{RevisionID: r1},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"reason"},
		},
		{
			name:   "failing_a_deployed_revision_is_rejected",
			given:  live(r1),
			when:   events.FailDeploy{RevisionID: r1, Reason: "late report"},
			reject: aggregates.CodeRevisionNotDeploying,
		},
		{
			name:   "failing_a_failed_revision_is_rejected",
			given:  evs(created(r1), failed(r1)),
			when:   events.FailDeploy{RevisionID: r1, Reason: "again"},
			reject: aggregates.CodeRevisionNotDeploying,
		},
		{
			name:   "failing_an_unknown_revision_is_rejected",
			when:   events.FailDeploy{RevisionID: "ghost", Reason: "crash"},
			reject: aggregates.CodeRevisionNotFound,
		},
	}
}

// twoRevisions: r1 (cpu code) was deployed first, r2 (gpu code) replaced it
// and is current, then the app was scaled to quietRuntime.
func twoRevisions() []events.Event {
	return history(
		live(r1, withCode(cpuCode), withRuntime(busyRuntime)),
		promoted(r1, r2, busyRuntime, withCode(gpuCode)),
		evs(scaled(busyRuntime, quietRuntime)),
	)
}

func setRevisionSpecs() []spec {
	return []spec{
		{
			name:  "rollback_inherits_runtime_params",
			given: twoRevisions(),
			when:  events.SetRevision{RevisionID: r1},
			then:  evs(rolledBack(r2, r1, cpuCode, quietRuntime)),
			after: func(t T, s aggregates.App) {
				equal(t, "current", s.Current, r1)
				equal(t, "runtime", s.Runtime, quietRuntime)
			},
		},
		{
			name:  "rollback_records_its_strategy_and_message",
			given: twoRevisions(),
			when:  events.SetRevision{RevisionID: r1, Strategy: events.StrategyRecreate, Message: "r2 leaks memory"},
			then: evs(events.CurrentRevisionSet{
				From: r2, To: r1, Reason: "rollback", Strategy: events.StrategyRecreate, Message: "r2 leaks memory",
				Code: cpuCode, Runtime: quietRuntime, Inherited: allInherited(), InheritedFrom: r2,
			}),
		},
		{
			name:  "roll_forward_takes_code_from_the_target",
			given: history(twoRevisions(), evs(rolledBack(r2, r1, cpuCode, quietRuntime))),
			when:  events.SetRevision{RevisionID: r2},
			then:  evs(rolledBack(r1, r2, gpuCode, quietRuntime)),
		},
		{
			name:  "setting_the_current_revision_is_a_noop",
			given: twoRevisions(),
			when:  events.SetRevision{RevisionID: r2},
			noop:  aggregates.CodeAlreadyCurrent,
			says:  []string{r2, "already"},
		},
		{
			// "Stay on v2" during a deploy is not recorded: the answer says
			// the deploy still goes live, and how to keep it from that.
			name:  "setting_the_current_revision_during_a_deploy_says_the_deploy_goes_live",
			given: history(twoRevisions(), evs(created(r3))),
			when:  events.SetRevision{RevisionID: r2},
			noop:  aggregates.CodeAlreadyCurrent,
			says:  []string{r2, "already", "being deployed", "becomes current once it is up"},
		},
		{
			name:   "setting_an_unknown_revision_is_rejected",
			given:  twoRevisions(),
			when:   events.SetRevision{RevisionID: r9},
			reject: aggregates.CodeRevisionNotFound,
			says:   []string{r9},
		},
		{
			name:   "setting_a_deleted_revision_is_rejected",
			given:  history(twoRevisions(), evs(deleted(r1))),
			when:   events.SetRevision{RevisionID: r1},
			reject: aggregates.CodeRevisionDeleted,
			says:   []string{r1, "deleted"},
		},
		{
			name:   "setting_a_failed_revision_is_rejected",
			given:  history(twoRevisions(), evs(created(r3), failed(r3))),
			when:   events.SetRevision{RevisionID: r3},
			reject: aggregates.CodeRevisionNotDeployed,
			says:   []string{r3, "failed"},
		},
		{
			name:   "setting_a_deploying_revision_is_rejected",
			given:  history(twoRevisions(), evs(created(r3))),
			when:   events.SetRevision{RevisionID: r3},
			reject: aggregates.CodeRevisionNotDeployed,
			says:   []string{r3, "deploying"},
		},
		{
			name:   "setting_a_revision_of_a_suspended_app_is_rejected",
			given:  history(twoRevisions(), evs(suspended(r2))),
			when:   events.SetRevision{RevisionID: r1},
			reject: aggregates.CodeAppSuspended,
			says:   []string{"resume"},
		},
		{
			name:   "set_revision_with_an_unknown_strategy_is_rejected",
			given:  twoRevisions(),
			when:   events.SetRevision{RevisionID: r1, Strategy: "canary"},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"canary"},
		},
	}
}

func rolloutSpecs() []spec {
	inProgress := history(live(r1), evs(rolloutRequested(ro1, r1, false)))
	return []spec{
		{
			name:  "rollout_recycles_the_current_revision",
			given: live(r1),
			when:  events.Rollout{RolloutID: ro1},
			then:  evs(rolloutRequested(ro1, r1, false)),
			after: func(t T, s aggregates.App) {
				equal(t, "rollout", s.Rollout, &aggregates.Rollout{ID: ro1, RevisionID: r1, RequestedAt: t0.Add(time.Minute)})
				equal(t, "current", s.Current, r1)
			},
		},
		{
			name:  "force_rollout_is_recorded_as_forced",
			given: live(r1),
			when:  events.Rollout{RolloutID: ro1, Force: true},
			then:  evs(rolloutRequested(ro1, r1, true)),
		},
		{
			name:   "rollout_needs_an_id",
			given:  live(r1),
			when:   events.Rollout{},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"rollout id"},
		},
		{
			name:   "rollout_of_an_app_without_history_is_rejected",
			when:   events.Rollout{RolloutID: ro1},
			reject: aggregates.CodeNoCurrentRevision,
		},
		{
			name:   "rollout_while_the_first_deploy_is_pending_is_rejected",
			given:  evs(created(r1)),
			when:   events.Rollout{RolloutID: ro1},
			reject: aggregates.CodeNoCurrentRevision,
		},
		{
			name:   "rollout_after_a_failed_first_deploy_is_rejected",
			given:  evs(created(r1), failed(r1)),
			when:   events.Rollout{RolloutID: ro1, Force: true},
			reject: aggregates.CodeNoCurrentRevision,
		},
		{
			name:   "rollout_of_a_suspended_app_is_rejected",
			given:  history(live(r1), evs(suspended(r1))),
			when:   events.Rollout{RolloutID: ro1},
			reject: aggregates.CodeAppSuspended,
		},
		{
			name:   "rollout_while_one_is_in_progress_is_rejected",
			given:  inProgress,
			when:   events.Rollout{RolloutID: ro2},
			reject: aggregates.CodeRolloutInProgress,
			says:   []string{ro1, "--force"},
		},
		{
			name:   "rollout_just_before_the_stuck_threshold_is_rejected",
			given:  inProgress,
			now:    t0.Add(aggregates.RolloutStuckAfter - time.Second),
			when:   events.Rollout{RolloutID: ro2},
			reject: aggregates.CodeRolloutInProgress,
		},
		{
			name:  "stuck_rollout_is_superseded",
			given: inProgress,
			now:   t0.Add(aggregates.RolloutStuckAfter),
			when:  events.Rollout{RolloutID: ro2},
			then:  evs(rolloutRequested(ro2, r1, false)),
			after: func(t T, s aggregates.App) {
				equal(t, "rollout", s.Rollout.ID, ro2)
				equal(t, "requested at", s.Rollout.RequestedAt, t0.Add(aggregates.RolloutStuckAfter))
			},
		},
		{
			name:  "force_rollout_supersedes_one_in_progress",
			given: inProgress,
			when:  events.Rollout{RolloutID: ro2, Force: true},
			then:  evs(rolloutRequested(ro2, r1, true)),
		},
		{
			name:   "forced_rollout_in_progress_also_blocks_a_graceful_one",
			given:  history(live(r1), evs(rolloutRequested(ro1, r1, true))),
			when:   events.Rollout{RolloutID: ro2},
			reject: aggregates.CodeRolloutInProgress,
		},
		{
			name:  "rollout_after_the_previous_completed_is_accepted",
			given: history(inProgress, evs(rolloutCompleted(ro1, r1))),
			when:  events.Rollout{RolloutID: ro2},
			then:  evs(rolloutRequested(ro2, r1, false)),
		},
	}
}

func completeRolloutSpecs() []spec {
	return []spec{
		{
			name:  "completing_the_rollout_in_progress_records_what_it_did",
			given: history(live(r1), evs(rolloutRequested(ro1, r1, true))),
			when:  events.CompleteRollout{RolloutID: ro1, Replaced: 3, DroppedRequests: 7},
			then:  evs(events.RolloutCompleted{RolloutID: ro1, RevisionID: r1, Force: true, Replaced: 3, DroppedRequests: 7}),
			after: func(t T, s aggregates.App) {
				if s.Rollout != nil {
					t.Fatalf("rollout still in progress after completion: %+v", *s.Rollout)
				}
			},
		},
		{
			name:   "completing_an_unknown_rollout_is_rejected",
			given:  history(live(r1), evs(rolloutRequested(ro1, r1, false))),
			when:   events.CompleteRollout{RolloutID: ro9},
			reject: aggregates.CodeRolloutNotFound,
			says:   []string{ro9},
		},
		{
			name:   "completing_a_rollout_when_none_is_in_progress_is_rejected",
			given:  live(r1),
			when:   events.CompleteRollout{RolloutID: ro1},
			reject: aggregates.CodeRolloutNotFound,
		},
		{
			name:   "completing_a_rollout_twice_is_rejected",
			given:  history(live(r1), evs(rolloutRequested(ro1, r1, false), rolloutCompleted(ro1, r1))),
			when:   events.CompleteRollout{RolloutID: ro1},
			reject: aggregates.CodeRolloutNotFound,
		},
		{
			name:   "completing_a_superseded_rollout_is_rejected",
			given:  history(live(r1), evs(rolloutRequested(ro1, r1, false), rolloutRequested(ro2, r1, true))),
			when:   events.CompleteRollout{RolloutID: ro1, Replaced: 1},
			reject: aggregates.CodeRolloutNotFound,
		},
		{
			name:   "negative_replaced_count_is_rejected",
			given:  history(live(r1), evs(rolloutRequested(ro1, r1, false))),
			when:   events.CompleteRollout{RolloutID: ro1, Replaced: -1},
			reject: aggregates.CodeInvalidArgument,
		},
		{
			name:   "negative_dropped_requests_count_is_rejected",
			given:  history(live(r1), evs(rolloutRequested(ro1, r1, false))),
			when:   events.CompleteRollout{RolloutID: ro1, DroppedRequests: -2},
			reject: aggregates.CodeInvalidArgument,
		},
	}
}

func failRolloutSpecs() []spec {
	return []spec{
		{
			name:  "failing_the_rollout_in_progress_records_what_it_did_and_why",
			given: history(live(r1), evs(rolloutRequested(ro1, r1, false))),
			when:  events.FailRollout{RolloutID: ro1, Replaced: 1, Reason: "3 replacements in a row did not start"},
			then:  evs(events.RolloutFailed{RolloutID: ro1, RevisionID: r1, Replaced: 1, Reason: "3 replacements in a row did not start"}),
			after: func(t T, s aggregates.App) {
				if s.Rollout != nil {
					t.Fatalf("rollout still in progress after it failed: %+v", *s.Rollout)
				}
			},
		},
		{
			name:  "a_new_rollout_is_accepted_once_the_last_failed",
			given: history(live(r1), evs(rolloutRequested(ro1, r1, false), events.RolloutFailed{RolloutID: ro1, RevisionID: r1, Reason: "x"})),
			when:  events.Rollout{RolloutID: ro2},
			then:  evs(rolloutRequested(ro2, r1, false)),
		},
		{
			name:   "failing_a_rollout_without_a_reason_is_rejected",
			given:  history(live(r1), evs(rolloutRequested(ro1, r1, false))),
			when:   events.FailRollout{RolloutID: ro1, Reason: " "},
			reject: aggregates.CodeInvalidArgument,
		},
		{
			name:   "failing_a_completed_rollout_is_rejected",
			given:  history(live(r1), evs(rolloutRequested(ro1, r1, false), rolloutCompleted(ro1, r1))),
			when:   events.FailRollout{RolloutID: ro1, Reason: "late"},
			reject: aggregates.CodeRolloutNotFound,
		},
		{
			name:   "failing_with_a_negative_count_is_rejected",
			given:  history(live(r1), evs(rolloutRequested(ro1, r1, true))),
			when:   events.FailRollout{RolloutID: ro1, DroppedRequests: -1, Reason: "x"},
			reject: aggregates.CodeInvalidArgument,
		},
	}
}

func deleteRevisionSpecs() []spec {
	r1ThenR2 := history(live(r1), promoted(r1, r2, defaultRuntime))
	// A rollout of r2 is pending when the alias moves back to r1.
	rollingOutR2 := history(r1ThenR2, evs(
		rolloutRequested(ro1, r2, false),
		rolledBack(r2, r1, events.DefaultCodeParams(), defaultRuntime),
	))
	return []spec{
		{
			name:  "deleting_an_old_revision_keeps_it_for_the_audit_log",
			given: r1ThenR2,
			when:  events.DeleteRevision{RevisionID: r1},
			then:  evs(deleted(r1)),
			after: func(t T, s aggregates.App) {
				r := revision(t, s, r1)
				equal(t, "deleted", r.Deleted, true)
				equal(t, "status", r.Status, events.StatusDeployed)
				equal(t, "current", s.Current, r2)
			},
		},
		{
			name:  "deleting_a_failed_revision_is_accepted",
			given: history(r1ThenR2, evs(created(r3), failed(r3))),
			when:  events.DeleteRevision{RevisionID: r3},
			then:  evs(deleted(r3)),
		},
		{
			name:   "deleting_current_revision_is_rejected",
			given:  r1ThenR2,
			when:   events.DeleteRevision{RevisionID: r2},
			reject: aggregates.CodeRevisionIsCurrent,
			says:   []string{r2, "current", "set-rev"},
		},
		{
			name:   "deleting_the_only_revision_is_rejected",
			given:  live(r1),
			when:   events.DeleteRevision{RevisionID: r1},
			reject: aggregates.CodeRevisionIsCurrent,
		},
		{
			name:   "deleting_twice_is_an_error",
			given:  history(r1ThenR2, evs(deleted(r1))),
			when:   events.DeleteRevision{RevisionID: r1},
			reject: aggregates.CodeRevisionAlreadyDeleted,
			says:   []string{r1, "already deleted"},
		},
		{
			name:   "deleting_a_deploying_revision_is_rejected",
			given:  history(r1ThenR2, evs(created(r3))),
			when:   events.DeleteRevision{RevisionID: r3},
			reject: aggregates.CodeRevisionInUse,
			says:   []string{r3, "deployed"},
		},
		{
			name:   "deleting_the_target_of_a_pending_rollout_is_rejected",
			given:  rollingOutR2,
			when:   events.DeleteRevision{RevisionID: r2},
			reject: aggregates.CodeRevisionInUse,
			says:   []string{r2, ro1},
		},
		{
			name:  "deleting_the_target_of_a_completed_rollout_is_accepted",
			given: history(rollingOutR2, evs(rolloutCompleted(ro1, r2))),
			when:  events.DeleteRevision{RevisionID: r2},
			then:  evs(deleted(r2)),
		},
		{
			name:   "deleting_an_unknown_revision_is_rejected",
			given:  r1ThenR2,
			when:   events.DeleteRevision{RevisionID: r7},
			reject: aggregates.CodeRevisionNotFound,
			says:   []string{r7},
		},
	}
}

func scaleSpecs() []spec {
	busy := live(r1, withRuntime(busyRuntime))
	with := func(f func(*events.RuntimeParams)) events.RuntimeParams {
		rt := busyRuntime
		f(&rt)
		return rt
	}
	gpu := defaultCode
	gpu.MachineType, gpu.StartupTimeout = "GPU-A100", 300
	return []spec{
		{
			name:  "scale_may_change_the_current_revisions_code_parameters",
			given: busy,
			when:  events.Scale{Code: events.CodeOverrides{MachineType: ptr("GPU-A100"), StartupTimeout: ptr(events.Seconds(300))}},
			then: evs(events.AppScaled{
				Before: busyRuntime, After: busyRuntime, CodeBefore: defaultCode, CodeAfter: gpu,
				Changed: []string{"machine_type", "startup_timeout"},
			}),
			after: func(t T, s aggregates.App) {
				equal(t, "code", s.Code, gpu)
				equal(t, "revision's own code", s.Revisions[r1].Code, defaultCode)
			},
		},
		{
			name:  "a_scaled_code_parameter_is_reset_by_the_next_deploy",
			given: history(busy, evs(events.AppScaled{Before: busyRuntime, After: busyRuntime, CodeBefore: defaultCode, CodeAfter: gpu, Changed: []string{"machine_type"}}), evs(created(r2))),
			when:  events.CompleteDeploy{RevisionID: r2},
			then: evs(deployed(r2), events.CurrentRevisionSet{
				From: r1, To: r2, Reason: "deploy", Strategy: events.StrategyRolling, Code: defaultCode,
				Runtime: busyRuntime, Inherited: slices.Clone(events.RuntimeParamNames), InheritedFrom: r1,
			}),
			after: func(t T, s aggregates.App) { equal(t, "code", s.Code, defaultCode) },
		},
		{
			name:   "scale_refuses_a_thousand_and_one_runners",
			given:  busy,
			when:   events.Scale{Runtime: events.RuntimeOverrides{MaxConcurrency: ptr(aggregates.MaxCount + 1)}},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"at most 1000"},
		},
		{
			name:   "scale_refuses_a_timeout_past_a_week",
			given:  busy,
			when:   events.Scale{Runtime: events.RuntimeOverrides{RequestTimeout: ptr(aggregates.MaxDuration + 1)}},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"7 days"},
		},
		{
			name:   "scale_refuses_an_invalid_code_parameter",
			given:  busy,
			when:   events.Scale{Code: events.CodeOverrides{MaxMultiplexing: ptr(0)}},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"max_multiplexing"},
		},
		{
			name:  "scale_changes_only_the_given_parameters",
			given: busy,
			when:  events.Scale{Runtime: events.RuntimeOverrides{MinConcurrency: ptr(5)}},
			then: evs(events.AppScaled{
				CodeBefore: defaultCode, CodeAfter: defaultCode,
				Before:  busyRuntime,
				After:   with(func(rt *events.RuntimeParams) { rt.MinConcurrency = 5 }),
				Changed: []string{"min_concurrency"},
			}),
			after: func(t T, s aggregates.App) {
				equal(t, "runtime", s.Runtime, with(func(rt *events.RuntimeParams) { rt.MinConcurrency = 5 }))
				equal(t, "current", s.Current, r1)
			},
		},
		{
			name:  "scale_names_every_changed_parameter_and_only_those",
			given: busy,
			when: events.Scale{Runtime: events.RuntimeOverrides{
				KeepAlive: ptr(events.Seconds(30)), MinConcurrency: ptr(2), MaxConcurrency: ptr(50), RequestTimeout: ptr(events.Seconds(120)),
			}},
			then: evs(events.AppScaled{
				CodeBefore: defaultCode, CodeAfter: defaultCode,
				Before: busyRuntime,
				After: with(func(rt *events.RuntimeParams) {
					rt.KeepAlive, rt.MaxConcurrency, rt.RequestTimeout = 30, 50, 120
				}),
				Changed: []string{"keep_alive", "max_concurrency", "request_timeout"},
			}),
		},
		{
			name:  "scale_applies_on_top_of_the_last_scale",
			given: history(busy, evs(scaled(busyRuntime, quietRuntime))),
			when:  events.Scale{Runtime: events.RuntimeOverrides{ConcurrencyBuffer: ptr(2)}},
			then: evs(events.AppScaled{
				CodeBefore: defaultCode, CodeAfter: defaultCode,
				Before:  quietRuntime,
				After:   events.RuntimeParams{KeepAlive: 10, MaxConcurrency: 3, ConcurrencyBuffer: 2, RequestTimeout: 60},
				Changed: []string{"concurrency_buffer"},
			}),
		},
		{
			name:  "scaling_min_to_zero_is_accepted",
			given: busy,
			when:  events.Scale{Runtime: events.RuntimeOverrides{MinConcurrency: ptr(0)}},
			then: evs(events.AppScaled{
				CodeBefore: defaultCode, CodeAfter: defaultCode,
				Before: busyRuntime, After: with(func(rt *events.RuntimeParams) { rt.MinConcurrency = 0 }),
				Changed: []string{"min_concurrency"},
			}),
		},
		{
			name:  "scaling_to_the_current_values_is_a_noop",
			given: busy,
			when:  events.Scale{Runtime: events.RuntimeOverrides{MinConcurrency: ptr(2), KeepAlive: ptr(events.Seconds(300))}},
			noop:  aggregates.CodeNothingToChange,
		},
		{
			name:   "scale_without_parameters_is_rejected",
			given:  busy,
			when:   events.Scale{},
			reject: aggregates.CodeInvalidArgument,
		},
		{
			name:   "scaling_keep_alive_negative_is_rejected",
			given:  busy,
			when:   events.Scale{Runtime: events.RuntimeOverrides{KeepAlive: ptr(events.Seconds(-1))}},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"keep_alive"},
		},
		{
			name:   "scaling_min_concurrency_negative_is_rejected",
			given:  busy,
			when:   events.Scale{Runtime: events.RuntimeOverrides{MinConcurrency: ptr(-1)}},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"min_concurrency"},
		},
		{
			name:   "scaling_max_concurrency_negative_is_rejected",
			given:  busy,
			when:   events.Scale{Runtime: events.RuntimeOverrides{MaxConcurrency: ptr(-1)}},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"max_concurrency"},
		},
		{
			name:   "scaling_concurrency_buffer_negative_is_rejected",
			given:  busy,
			when:   events.Scale{Runtime: events.RuntimeOverrides{ConcurrencyBuffer: ptr(-4)}},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"concurrency_buffer"},
		},
		{
			name:   "scaling_request_timeout_negative_is_rejected",
			given:  busy,
			when:   events.Scale{Runtime: events.RuntimeOverrides{RequestTimeout: ptr(events.Seconds(-60))}},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"request_timeout"},
		},
		{
			name:   "scaling_min_above_the_current_max_is_rejected",
			given:  busy,
			when:   events.Scale{Runtime: events.RuntimeOverrides{MinConcurrency: ptr(25)}},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"min_concurrency (25)", "max_concurrency (20)"},
		},
		{
			name:   "scaling_max_below_the_current_min_is_rejected",
			given:  busy,
			when:   events.Scale{Runtime: events.RuntimeOverrides{MaxConcurrency: ptr(1)}},
			reject: aggregates.CodeInvalidArgument,
		},
		{
			name:   "scaling_max_to_zero_is_rejected",
			given:  busy,
			when:   events.Scale{Runtime: events.RuntimeOverrides{MinConcurrency: ptr(0), MaxConcurrency: ptr(0)}},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"max_concurrency"},
		},
		{
			name:   "scaling_request_timeout_to_zero_is_rejected",
			given:  busy,
			when:   events.Scale{Runtime: events.RuntimeOverrides{RequestTimeout: ptr(events.Seconds(0))}},
			reject: aggregates.CodeInvalidArgument,
		},
		{
			name:   "scaling_an_app_without_history_is_rejected",
			when:   events.Scale{Runtime: events.RuntimeOverrides{MinConcurrency: ptr(1)}},
			reject: aggregates.CodeAppNotFound,
		},
		{
			name:   "scaling_before_the_first_deploy_completes_is_rejected",
			given:  evs(created(r1)),
			when:   events.Scale{Runtime: events.RuntimeOverrides{MinConcurrency: ptr(1)}},
			reject: aggregates.CodeAppNotFound,
		},
		{
			name:   "scaling_after_a_failed_first_deploy_is_rejected",
			given:  evs(created(r1), failed(r1)),
			when:   events.Scale{Runtime: events.RuntimeOverrides{MinConcurrency: ptr(1)}},
			reject: aggregates.CodeAppNotFound,
		},
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	run(t, secretSpecs())
}

func TestStopRunner(t *testing.T) {
	t.Parallel()
	run(t, stopRunnerSpecs())
}

func stopRunnerSpecs() []spec {
	runnerIs := func(state events.RunnerState) events.Event {
		return events.RunnerStateChanged{RunnerID: runner1, RevisionID: r1, State: state, PID: 4242, Port: 8080}
	}
	stopRequested := func(force, replace bool) events.Event {
		return events.RunnerStopRequested{RunnerID: runner1, RevisionID: r1, Force: force, Replace: replace}
	}
	return []spec{
		{
			name:  "a_live_runner_can_be_stopped_with_a_replacement",
			given: history(live(r1), evs(runnerIs(events.RunnerIdle))),
			when:  events.StopRunner{RunnerID: runner1, Replace: true},
			then:  evs(stopRequested(false, true)),
			after: func(t T, s aggregates.App) {
				equal(t, "stop", *s.Runners[runner1].Stop, aggregates.StopRequest{Replace: true, By: "spec"})
			},
		},
		{
			name:  "a_force_stop_supersedes_a_graceful_one",
			given: history(live(r1), evs(runnerIs(events.RunnerRunning), stopRequested(false, false))),
			when:  events.StopRunner{RunnerID: runner1, Force: true},
			then:  evs(stopRequested(true, false)),
		},
		{
			name:  "a_second_graceful_stop_is_a_noop",
			given: history(live(r1), evs(runnerIs(events.RunnerDraining), stopRequested(false, false))),
			when:  events.StopRunner{RunnerID: runner1},
			noop:  aggregates.CodeAlreadyStopping,
		},
		{
			name:  "a_graceful_stop_after_a_force_one_is_a_noop",
			given: history(live(r1), evs(runnerIs(events.RunnerIdle), stopRequested(true, false))),
			when:  events.StopRunner{RunnerID: runner1},
			noop:  aggregates.CodeAlreadyStopping,
		},
		{
			name:   "a_terminated_runner_cannot_be_stopped",
			given:  history(live(r1), evs(runnerIs(events.RunnerIdle), runnerIs(events.RunnerTerminated))),
			when:   events.StopRunner{RunnerID: runner1, Force: true},
			reject: aggregates.CodeRunnerNotFound,
			says:   []string{runner1},
		},
		{
			name:   "an_unknown_runner_cannot_be_stopped",
			given:  live(r1),
			when:   events.StopRunner{RunnerID: runner1},
			reject: aggregates.CodeRunnerNotFound,
		},
		{
			name:   "a_forced_stop_has_no_replacement",
			given:  history(live(r1), evs(runnerIs(events.RunnerIdle))),
			when:   events.StopRunner{RunnerID: runner1, Force: true, Replace: true},
			reject: aggregates.CodeInvalidArgument,
		},
		{
			name:   "a_runner_id_must_be_a_uuid",
			given:  live(r1),
			when:   events.StopRunner{RunnerID: "runner-1"},
			reject: aggregates.CodeInvalidArgument,
		},
	}
}

func secretSpecs() []spec {
	secretSet := func(name string, version uint64) events.Event { return events.SecretSet{Name: name, Version: version} }
	return []spec{
		{
			name:  "a_secret_is_recorded_by_name_and_version_never_by_value",
			given: live(r1),
			when:  events.SetSecret{Name: "HF_TOKEN", Version: 3},
			then:  evs(secretSet("HF_TOKEN", 3)),
			after: func(t T, s aggregates.App) {
				equal(t, "version", s.Secrets["HF_TOKEN"].Version, uint64(3))
			},
		},
		{
			name: "an_app_may_get_secrets_before_its_first_deploy",
			when: events.SetSecret{Name: "HF_TOKEN", Version: 1},
			then: evs(secretSet("HF_TOKEN", 1)),
		},
		{
			name:  "a_newer_version_replaces_the_secret",
			given: history(live(r1), evs(secretSet("HF_TOKEN", 3))),
			when:  events.SetSecret{Name: "HF_TOKEN", Version: 9},
			then:  evs(secretSet("HF_TOKEN", 9)),
		},
		{
			name:  "the_same_version_again_is_a_noop",
			given: evs(secretSet("HF_TOKEN", 3)),
			when:  events.SetSecret{Name: "HF_TOKEN", Version: 3},
			noop:  aggregates.CodeNothingToChange,
		},
		{
			name:   "an_older_version_is_refused",
			given:  evs(secretSet("HF_TOKEN", 9)),
			when:   events.SetSecret{Name: "HF_TOKEN", Version: 3},
			reject: aggregates.CodeStaleSecretVersion,
			says:   []string{"HF_TOKEN", "9"},
		},
		{
			name:   "a_secret_needs_a_version",
			when:   events.SetSecret{Name: "HF_TOKEN"},
			reject: aggregates.CodeInvalidArgument,
		},
		{
			name:   "a_name_that_is_no_variable_name_is_refused",
			when:   events.SetSecret{Name: "HF-TOKEN", Version: 1},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"HF-TOKEN"},
		},
		{
			name:   "a_variable_revline_sets_cannot_be_a_secret",
			when:   events.SetSecret{Name: "PORT", Version: 1},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"PORT"},
		},
		{
			name:   "revline_variables_cannot_be_secrets",
			when:   events.SetSecret{Name: "REVLINE_RUNNER_ID", Version: 1},
			reject: aggregates.CodeInvalidArgument,
		},
		{
			name:  "unset_removes_the_secret",
			given: evs(secretSet("HF_TOKEN", 3), secretSet("OTHER", 1)),
			when:  events.UnsetSecret{Name: "HF_TOKEN"},
			then:  evs(events.SecretUnset{Name: "HF_TOKEN"}),
			after: func(t T, s aggregates.App) {
				_, kept := s.Secrets["HF_TOKEN"]
				equal(t, "HF_TOKEN kept", kept, false)
				equal(t, "OTHER version", s.Secrets["OTHER"].Version, uint64(1))
			},
		},
		{
			name:   "unsetting_an_unknown_secret_is_refused",
			given:  evs(secretSet("OTHER", 1)),
			when:   events.UnsetSecret{Name: "HF_TOKEN"},
			reject: aggregates.CodeSecretNotFound,
			says:   []string{"HF_TOKEN"},
		},
	}
}

func suspendResumeSpecs() []spec {
	return []spec{
		{
			name:  "suspend_stops_the_current_revision",
			given: live(r1),
			when:  events.Suspend{},
			then:  evs(suspended(r1)),
			after: func(t T, s aggregates.App) {
				equal(t, "suspended", s.Suspended, true)
				equal(t, "current", s.Current, r1)
			},
		},
		{
			name:  "suspending_twice_is_a_noop",
			given: history(live(r1), evs(suspended(r1))),
			when:  events.Suspend{},
			noop:  aggregates.CodeAlreadySuspended,
		},
		{
			name:   "suspending_an_app_without_a_current_revision_is_rejected",
			given:  evs(created(r1), failed(r1)),
			when:   events.Suspend{},
			reject: aggregates.CodeNoCurrentRevision,
		},
		{
			name:   "suspending_during_a_deploy_is_rejected",
			given:  history(live(r1), evs(created(r2))),
			when:   events.Suspend{},
			reject: aggregates.CodeDeployInProgress,
			says:   []string{r2},
		},
		{
			name:  "suspending_after_a_resume_is_accepted",
			given: history(live(r1), evs(suspended(r1), resumed(r1))),
			when:  events.Suspend{},
			then:  evs(suspended(r1)),
		},
		{
			name:  "resume_brings_a_suspended_app_back",
			given: history(live(r1), evs(suspended(r1))),
			when:  events.Resume{},
			then:  evs(resumed(r1)),
			after: func(t T, s aggregates.App) {
				equal(t, "suspended", s.Suspended, false)
				equal(t, "current", s.Current, r1)
			},
		},
		{
			name:  "resuming_a_running_app_is_a_noop",
			given: live(r1),
			when:  events.Resume{},
			noop:  aggregates.CodeNotSuspended,
		},
		{
			name: "resuming_an_app_without_history_is_a_noop",
			when: events.Resume{},
			noop: aggregates.CodeNotSuspended,
		},
	}
}

func reportRunnerSpecs() []spec {
	report := events.ReportRunner{RunnerID: runner1, RevisionID: r1, State: events.RunnerRunning, PID: 4242, Port: 8080}
	return []spec{
		{
			name:  "runner_report_is_recorded",
			given: live(r1),
			when:  report,
			then:  evs(events.RunnerStateChanged{RunnerID: runner1, RevisionID: r1, State: events.RunnerRunning, PID: 4242, Port: 8080}),
			after: func(t T, s aggregates.App) {
				equal(t, "runner state", s.Runners[runner1].State, events.RunnerRunning)
				// Nothing else changes.
				want := aggregates.Fold(appName, historyOf(live(r1)))
				want.Version, want.Runners = s.Version, s.Runners
				equal(t, "state after a runner report", s, want)
			},
		},
		{
			name:  "runner_crash_report_keeps_its_reason",
			given: evs(created(r1)),
			when:  events.ReportRunner{RunnerID: runner2, RevisionID: r1, State: events.RunnerCrashBackoff, Reason: "exit status 2"},
			then:  evs(events.RunnerStateChanged{RunnerID: runner2, RevisionID: r1, State: events.RunnerCrashBackoff, Reason: "exit status 2"}),
		},
		{
			name:  "runners_of_a_deleted_revision_still_report",
			given: history(live(r1), promoted(r1, r2, defaultRuntime), evs(deleted(r1))),
			when:  events.ReportRunner{RunnerID: runner1, RevisionID: r1, State: events.RunnerTerminated},
			then:  evs(events.RunnerStateChanged{RunnerID: runner1, RevisionID: r1, State: events.RunnerTerminated}),
		},
		{
			name:  "a_runner_a_force_rollout_killed_counts_its_dropped_requests_in_the_rollout",
			given: history(live(r1), evs(rolloutRequested(ro1, r1, true))),
			when:  events.ReportRunner{RunnerID: runner1, RevisionID: r1, State: events.RunnerTerminated, RolloutID: ro1, DroppedRequests: 3},
			then:  evs(events.RunnerStateChanged{RunnerID: runner1, RevisionID: r1, State: events.RunnerTerminated, RolloutID: ro1, DroppedRequests: 3}),
			after: func(t T, s aggregates.App) {
				equal(t, "requests the rollout dropped", s.Rollout.Dropped, 3)
			},
		},
		{
			name:   "only_a_terminated_report_counts_dropped_requests",
			given:  history(live(r1), evs(rolloutRequested(ro1, r1, true))),
			when:   events.ReportRunner{RunnerID: runner1, RevisionID: r1, State: events.RunnerDraining, RolloutID: ro1, DroppedRequests: 2},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"terminated report"},
		},
		{
			name:   "a_negative_dropped_count_is_rejected",
			given:  history(live(r1), evs(rolloutRequested(ro1, r1, true))),
			when:   events.ReportRunner{RunnerID: runner1, RevisionID: r1, State: events.RunnerTerminated, RolloutID: ro1, DroppedRequests: -1},
			reject: aggregates.CodeInvalidArgument,
		},
		{
			name:   "runner_report_needs_a_runner_id",
			given:  live(r1),
			when:   events.ReportRunner{RevisionID: r1, State: events.RunnerIdle},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"runner id"},
		},
		{
			name:   "runner_report_with_an_unknown_state_is_rejected",
			given:  live(r1),
			when:   events.ReportRunner{RunnerID: runner1, RevisionID: r1, State: "sleeping"},
			reject: aggregates.CodeInvalidArgument,
			says:   []string{"sleeping"},
		},
		{
			name:   "runner_report_without_a_state_is_rejected",
			given:  live(r1),
			when:   events.ReportRunner{RunnerID: runner1, RevisionID: r1},
			reject: aggregates.CodeInvalidArgument,
		},
		{
			name:   "runner_report_for_an_unknown_revision_is_rejected",
			given:  live(r1),
			when:   events.ReportRunner{RunnerID: runner1, RevisionID: r5, State: events.RunnerIdle},
			reject: aggregates.CodeRevisionNotFound,
		},
	}
}

// bogus is a command the decider does not know.
type bogus struct{}

func (bogus) CommandType() string { return "bogus" }

func unknownCommandSpecs() []spec {
	return []spec{
		{
			name:   "unknown_command_is_rejected",
			given:  live(r1),
			when:   bogus{},
			reject: events.CodeUnknownCommand,
		},
		{
			name:   "pointer_command_is_rejected_as_unknown",
			given:  live(r1),
			when:   &events.Deploy{RevisionID: r2, Command: runCommand},
			reject: events.CodeUnknownCommand,
		},
	}
}

func historyOf(evs []events.Event) []events.Envelope {
	envs := make([]events.Envelope, len(evs))
	for i, ev := range evs {
		envs[i] = envelope(uint64(i+1), t0, ev)
	}
	return envs
}

func TestDeploy(t *testing.T)          { t.Parallel(); run(t, deploySpecs()) }
func TestCompleteDeploy(t *testing.T)  { t.Parallel(); run(t, completeDeploySpecs()) }
func TestFailDeploy(t *testing.T)      { t.Parallel(); run(t, failDeploySpecs()) }
func TestSetRevision(t *testing.T)     { t.Parallel(); run(t, setRevisionSpecs()) }
func TestRollout(t *testing.T)         { t.Parallel(); run(t, rolloutSpecs()) }
func TestCompleteRollout(t *testing.T) { t.Parallel(); run(t, completeRolloutSpecs()) }

func TestFailRollout(t *testing.T)    { t.Parallel(); run(t, failRolloutSpecs()) }
func TestDeleteRevision(t *testing.T) { t.Parallel(); run(t, deleteRevisionSpecs()) }
func TestScale(t *testing.T)          { t.Parallel(); run(t, scaleSpecs()) }
func TestSuspendResume(t *testing.T)  { t.Parallel(); run(t, suspendResumeSpecs()) }
func TestReportRunner(t *testing.T)   { t.Parallel(); run(t, reportRunnerSpecs()) }
func TestUnknownCommand(t *testing.T) { t.Parallel(); run(t, unknownCommandSpecs()) }

// allSpecs is every table above; TestEveryCodeIsSpecified reads it.
func allSpecs() []spec {
	return slices.Concat(deploySpecs(), completeDeploySpecs(), failDeploySpecs(), setRevisionSpecs(),
		rolloutSpecs(), completeRolloutSpecs(), deleteRevisionSpecs(), scaleSpecs(),
		suspendResumeSpecs(), reportRunnerSpecs(), unknownCommandSpecs(), limitSpecs(), revisionNumberSpecs(), secretSpecs(), stopRunnerSpecs(), deleteAppSpecs())
}

// rejectionCodes are the codes of rejections.go; noOpCodes the no-op ones.
var (
	rejectionCodes = []string{
		aggregates.CodeInvalidArgument, aggregates.CodeAppNotFound, aggregates.CodeAppSuspended, aggregates.CodeAppDeleted,
		aggregates.CodeRevisionExists, aggregates.CodeRevisionNotFound, aggregates.CodeRevisionDeleted,
		aggregates.CodeAmbiguousRevision, aggregates.CodeRevisionRefTooShort,
		aggregates.CodeRevisionAlreadyDeleted, aggregates.CodeRevisionNotDeployed, aggregates.CodeRevisionNotDeploying,
		aggregates.CodeRevisionIsCurrent, aggregates.CodeRevisionInUse, aggregates.CodeNoCurrentRevision,
		aggregates.CodeDeployInProgress, aggregates.CodeRolloutInProgress, aggregates.CodeRolloutNotFound,
		aggregates.CodeSecretNotFound, aggregates.CodeStaleSecretVersion, aggregates.CodeRunnerNotFound,
		events.CodeUnknownCommand,
	}
	noOpCodes = []string{
		aggregates.CodeAlreadyCurrent, aggregates.CodeAlreadySuspended, aggregates.CodeNotSuspended,
		aggregates.CodeNothingToChange, aggregates.CodeAlreadyStopping, aggregates.CodeAlreadyDeleted,
	}
)

func TestEveryCodeIsSpecified(t *testing.T) {
	t.Parallel()
	rejects, noops := map[string]bool{}, map[string]bool{}
	names := map[string]bool{}
	for _, s := range allSpecs() {
		if names[s.name] {
			t.Errorf("two specs are named %s", s.name)
		}
		names[s.name] = true
		rejects[s.reject] = true
		noops[s.noop] = true
		if s.reject != "" && s.noop != "" || (s.reject != "" || s.noop != "") && s.then != nil {
			t.Errorf("spec %s expects more than one outcome", s.name)
		}
	}
	for _, code := range rejectionCodes {
		if !rejects[code] {
			t.Errorf("no spec is rejected with %q", code)
		}
	}
	for _, code := range noOpCodes {
		if !noops[code] {
			t.Errorf("no spec is a no-op with %q", code)
		}
	}
}

func TestFoldAndEvolve(t *testing.T) {
	t.Parallel()
	t.Run("folding_no_history_gives_an_empty_app", func(t *testing.T) {
		t.Parallel()
		s := aggregates.Fold(appName, nil)
		equal(t, "state", s, aggregates.App{Name: appName})
		equal(t, "exists", s.Exists(), false)
	})
	t.Run("version_is_the_sequence_of_the_last_event", func(t *testing.T) {
		t.Parallel()
		s := aggregates.Fold(appName, historyOf(history(live(r1), evs(created(r2)))))
		equal(t, "version", s.Version, uint64(4))
		equal(t, "name", s.Name, appName)
		equal(t, "exists", s.Exists(), true)
	})
	t.Run("an_older_sequence_never_lowers_the_version", func(t *testing.T) {
		t.Parallel()
		s := aggregates.Fold(appName, historyOf(live(r1)))
		s = aggregates.Evolve(s, envelope(2, t0, events.RunnerStateChanged{RunnerID: "x", RevisionID: r1, State: events.RunnerIdle}))
		equal(t, "version", s.Version, uint64(3))
	})
	t.Run("events_about_unknown_revisions_change_nothing", func(t *testing.T) {
		t.Parallel()
		base := historyOf(live(r1))
		want := aggregates.Fold(appName, base)
		for i, ev := range evs(deployed("ghost"), failed("ghost"), deleted("ghost")) {
			got := aggregates.Fold(appName, append(historyOf(live(r1)), envelope(uint64(4+i), t0, ev)))
			got.Version = want.Version
			equal(t, ev.EventType()+" of an unknown revision", got, want)
		}
	})
	t.Run("completion_of_another_rollout_keeps_the_one_in_progress", func(t *testing.T) {
		t.Parallel()
		s := aggregates.Fold(appName, historyOf(history(live(r1), evs(
			rolloutRequested(ro2, r1, false), rolloutCompleted(ro1, r1),
		))))
		if s.Rollout == nil || s.Rollout.ID != ro2 {
			t.Fatalf("rollout = %+v, want ro2 still in progress", s.Rollout)
		}
	})
	t.Run("rollback_then_roll_forward_folds_to_the_same_runtime", func(t *testing.T) {
		t.Parallel()
		s := aggregates.Fold(appName, historyOf(history(twoRevisions(), evs(
			rolledBack(r2, r1, cpuCode, quietRuntime), rolledBack(r1, r2, gpuCode, quietRuntime),
		))))
		equal(t, "current", s.Current, r2)
		equal(t, "runtime", s.Runtime, quietRuntime)
	})
}
