package aggregates

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/revline/revline/events"
)

// Decide returns the events cmd produces on state at time now, or a
// *events.Rejection (NoOp set when the command asks for what is already
// true). It does not modify state.
func Decide(state App, cmd events.Command, now time.Time) ([]events.Event, error) {
	switch cmd.(type) {
	case events.Deploy, events.ReportRunner, events.DeleteApp:
		// A deploy starts a deleted app again; its runners are still
		// reported while they stop.
	default:
		if state.Deleted {
			return nil, reject(CodeAppDeleted, "app %q was deleted by %s at %s; deploy to start it again", state.Name, state.DeletedBy, state.DeletedAt.UTC().Format(time.RFC3339))
		}
	}
	switch c := cmd.(type) {
	case events.Deploy:
		return decideDeploy(state, c)
	case events.CompleteDeploy:
		return decideCompleteDeploy(state, c)
	case events.FailDeploy:
		return decideFailDeploy(state, c)
	case events.SetRevision:
		return decideSetRevision(state, c)
	case events.Rollout:
		return decideRollout(state, c, now)
	case events.CompleteRollout:
		return decideCompleteRollout(state, c)
	case events.FailRollout:
		return decideFailRollout(state, c)
	case events.DeleteRevision:
		return decideDeleteRevision(state, c)
	case events.Scale:
		return decideScale(state, c)
	case events.Suspend:
		return decideSuspend(state)
	case events.Resume:
		return decideResume(state)
	case events.ReportRunner:
		return decideReportRunner(state, c)
	case events.SetSecret:
		return decideSetSecret(state, c)
	case events.UnsetSecret:
		return decideUnsetSecret(state, c)
	case events.StopRunner:
		return decideStopRunner(state, c)
	case events.DeleteApp:
		return decideDeleteApp(state, c, now)
	}
	return nil, reject(events.CodeUnknownCommand, "unknown command %T", cmd)
}

func decideDeploy(state App, c events.Deploy) ([]events.Event, error) {
	switch {
	case state.Suspended:
		return nil, reject(CodeAppSuspended, "app %q is suspended; resume it before deploying", state.Name)
	case c.RevisionID == "":
		return nil, invalid("deploy needs a revision id")
	}
	if err := checkUUID("revision_id", c.RevisionID); err != nil {
		return nil, err
	}
	if err := checkCommandLine(c.Command); err != nil {
		return nil, err
	}
	if _, exists := state.Revisions[c.RevisionID]; exists {
		return nil, reject(CodeRevisionExists, "revision %s already exists", showID(c.RevisionID))
	}
	strategy, err := parseStrategy(c.Strategy)
	if err != nil {
		return nil, err
	}
	if err := validateCode(c.Code); err != nil {
		return nil, err
	}
	if err := validateRuntime(c.Runtime.Apply(events.DefaultRuntimeParams()), c.Runtime); err != nil {
		return nil, err
	}
	if err := checkText("message", c.Message, MaxMessageBytes); err != nil {
		return nil, err
	}
	if err := checkAnnotations(c.Annotations); err != nil {
		return nil, err
	}
	return []events.Event{events.RevisionCreated{
		RevisionID:  c.RevisionID,
		Number:      state.LastNumber + 1,
		Command:     c.Command,
		Code:        c.Code.Apply(events.DefaultCodeParams()),
		Runtime:     c.Runtime.Apply(events.DefaultRuntimeParams()),
		ResetScale:  c.ResetScale,
		Strategy:    strategy,
		Message:     c.Message,
		Annotations: c.Annotations,
	}}, nil
}

// parseStrategy reads a command's strategy ("" is rolling).
func parseStrategy(s events.Strategy) (events.Strategy, error) {
	strategy, err := events.ParseStrategy(string(s))
	if err != nil {
		return "", invalid("unknown strategy %s: want rolling or recreate", quote(string(s)))
	}
	return strategy, nil
}

func validateCode(o events.CodeOverrides) error {
	switch {
	case o.MaxMultiplexing != nil && *o.MaxMultiplexing > MaxCount:
		return invalid("max_multiplexing must be at most %d, got %d", MaxCount, *o.MaxMultiplexing)
	case o.StartupTimeout != nil && *o.StartupTimeout > MaxDuration:
		return invalid("startup_timeout must be at most %ds (7 days), got %ds", MaxDuration, *o.StartupTimeout)
	case o.MachineType != nil && *o.MachineType == "":
		return invalid("machine_type must not be empty")
	case o.MaxMultiplexing != nil && *o.MaxMultiplexing < 1:
		return invalid("max_multiplexing must be at least 1, got %d", *o.MaxMultiplexing)
	case o.StartupTimeout != nil && *o.StartupTimeout < 1:
		return invalid("startup_timeout must be at least 1s, got %ds", *o.StartupTimeout)
	case o.MachineType != nil:
		return checkMachineType(*o.MachineType)
	}
	return nil
}

// validateRuntime checks the effective parameters p; o says which ones the
// caller set, so that the message names what they typed.
func validateRuntime(p events.RuntimeParams, o events.RuntimeOverrides) error {
	negative := func(name string, set bool, v int64) error {
		if set && v < 0 {
			return invalid("%s must not be negative, got %d", name, v)
		}
		return nil
	}
	for _, err := range []error{
		negative("keep_alive", o.KeepAlive != nil, int64(p.KeepAlive)),
		negative("min_concurrency", o.MinConcurrency != nil, int64(p.MinConcurrency)),
		negative("max_concurrency", o.MaxConcurrency != nil, int64(p.MaxConcurrency)),
		negative("concurrency_buffer", o.ConcurrencyBuffer != nil, int64(p.ConcurrencyBuffer)),
		negative("concurrency_buffer_perc", o.ConcurrencyBufferPerc != nil, int64(p.ConcurrencyBufferPerc)),
		negative("scaling_delay", o.ScalingDelay != nil, int64(p.ScalingDelay)),
		negative("request_timeout", o.RequestTimeout != nil, int64(p.RequestTimeout)),
	} {
		if err != nil {
			return err
		}
	}
	switch {
	case p.MaxConcurrency > MaxCount || p.ConcurrencyBuffer > MaxCount || p.ConcurrencyBufferPerc > MaxCount:
		return invalid("max_concurrency, concurrency_buffer and concurrency_buffer_perc must be at most %d", MaxCount)
	case p.KeepAlive > MaxDuration || p.RequestTimeout > MaxDuration || p.ScalingDelay > MaxDuration:
		return invalid("keep_alive, scaling_delay and request_timeout must be at most %ds (7 days)", MaxDuration)
	case p.MaxConcurrency < 1:
		return invalid("max_concurrency must be at least 1, got %d", p.MaxConcurrency)
	case p.MinConcurrency > p.MaxConcurrency:
		return invalid("min_concurrency (%d) must not exceed max_concurrency (%d)", p.MinConcurrency, p.MaxConcurrency)
	case p.RequestTimeout < 1:
		return invalid("request_timeout must be at least 1s, got %ds", p.RequestTimeout)
	}
	return nil
}

// deploying returns the revision id must name, if it is being deployed.
func deploying(state App, id string) (*Revision, error) {
	rev, ok := state.Revisions[id]
	if !ok {
		return nil, reject(CodeRevisionNotFound, "app %q has no revision %s", state.Name, showID(id))
	}
	if rev.Status != events.StatusDeploying {
		return nil, reject(CodeRevisionNotDeploying, "revision %s is %s, not deploying", showID(id), rev.Status)
	}
	return rev, nil
}

func decideCompleteDeploy(state App, c events.CompleteDeploy) ([]events.Event, error) {
	rev, err := deploying(state, c.RevisionID)
	if err != nil {
		return nil, err
	}
	if rev.RolledBackTo != "" {
		// A set-rev while it deployed is the operator's later word: the
		// revision is up, and stays available to set-rev, but the alias
		// stays where the rollback put it.
		return []events.Event{events.RevisionDeployed{RevisionID: rev.ID, RolledBackTo: rev.RolledBackTo}}, nil
	}
	set := events.CurrentRevisionSet{
		From: state.Current, To: rev.ID, Reason: events.ReasonDeploy, Strategy: rev.Strategy,
		Message: rev.Message, Code: rev.Code,
	}
	if state.HasRuntime && !rev.ResetScale {
		set.Runtime = state.Runtime
		set.Inherited = slices.Clone(events.RuntimeParamNames)
		set.InheritedFrom = state.Current
	} else {
		set.Runtime = rev.Runtime
	}
	return []events.Event{events.RevisionDeployed{RevisionID: rev.ID}, set}, nil
}

func decideFailDeploy(state App, c events.FailDeploy) ([]events.Event, error) {
	if strings.TrimSpace(c.Reason) == "" {
		return nil, invalid("a failed deploy needs a reason")
	}
	if err := checkText("reason", c.Reason, MaxReasonBytes); err != nil {
		return nil, err
	}
	if _, err := deploying(state, c.RevisionID); err != nil {
		return nil, err
	}
	return []events.Event{events.RevisionFailed(c)}, nil
}

// existing returns the revision ref names (see ResolveRevisionRef) if it
// exists and is not deleted.
func existing(state App, ref string) (*Revision, error) {
	rev, err := state.resolve(ref)
	if err != nil {
		return nil, err
	}
	if rev.Deleted {
		return nil, reject(CodeRevisionDeleted, "revision %s was deleted", rev.show())
	}
	return rev, nil
}

func decideSetRevision(state App, c events.SetRevision) ([]events.Event, error) {
	strategy, err := parseStrategy(c.Strategy)
	if err != nil {
		return nil, err
	}
	if err := checkText("message", c.Message, MaxMessageBytes); err != nil {
		return nil, err
	}
	if state.Suspended {
		return nil, reject(CodeAppSuspended, "app %q is suspended; resume it before switching revisions", state.Name)
	}
	target, err := existing(state, c.RevisionID)
	if err != nil {
		return nil, err
	}
	if target.ID == state.Current {
		msg := fmt.Sprintf("revision %s is already the current revision of %q", target.show(), state.Name)
		if deploying := state.deploying(); len(deploying) > 0 {
			// Saying so matters: "stay on v2" is not recorded, and the
			// deploy goes live when it is up.
			msg += fmt.Sprintf("; v%d, being deployed, becomes current once it is up", deploying[0].Number)
		}
		return nil, noop(CodeAlreadyCurrent, "%s", msg)
	}
	if target.Status != events.StatusDeployed {
		return nil, reject(CodeRevisionNotDeployed, "revision %s is %s; only a deployed revision can become current", target.show(), target.Status)
	}
	return []events.Event{events.CurrentRevisionSet{
		From: state.Current, To: target.ID, Reason: events.ReasonRollback, Strategy: strategy, Message: c.Message,
		Code:          target.Code,
		Runtime:       state.Runtime,
		Inherited:     slices.Clone(events.RuntimeParamNames),
		InheritedFrom: state.Current,
	}}, nil
}

func decideRollout(state App, c events.Rollout, now time.Time) ([]events.Event, error) {
	if c.RolloutID == "" {
		return nil, invalid("rollout needs a rollout id")
	}
	if err := checkUUID("rollout_id", c.RolloutID); err != nil {
		return nil, err
	}
	switch {
	case state.Current == "":
		return nil, reject(CodeNoCurrentRevision, "app %q has no current revision to roll out", state.Name)
	case state.Suspended:
		return nil, reject(CodeAppSuspended, "app %q is suspended; resume it before a rollout", state.Name)
	case state.Rollout != nil && !c.Force && now.Sub(state.Rollout.RequestedAt) < RolloutStuckAfter:
		return nil, reject(CodeRolloutInProgress, "rollout %s of app %q is still in progress; wait for it or use --force", showID(state.Rollout.ID), state.Name)
	}
	return []events.Event{events.RolloutRequested{RolloutID: c.RolloutID, RevisionID: state.Current, Force: c.Force}}, nil
}

func decideCompleteRollout(state App, c events.CompleteRollout) ([]events.Event, error) {
	ro, err := endingRollout(state, c.RolloutID, c.Replaced, c.DroppedRequests)
	if err != nil {
		return nil, err
	}
	return []events.Event{events.RolloutCompleted{
		RolloutID: c.RolloutID, RevisionID: ro.RevisionID, Force: ro.Force,
		Replaced: c.Replaced, DroppedRequests: c.DroppedRequests,
	}}, nil
}

// decideFailRollout ends the rollout in progress, failed, with the reason
// its replacements did not come up.
func decideFailRollout(state App, c events.FailRollout) ([]events.Event, error) {
	ro, err := endingRollout(state, c.RolloutID, c.Replaced, c.DroppedRequests)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(c.Reason) == "" {
		return nil, invalid("a failed rollout needs a reason")
	}
	if err := checkText("reason", c.Reason, MaxReasonBytes); err != nil {
		return nil, err
	}
	return []events.Event{events.RolloutFailed{
		RolloutID: c.RolloutID, RevisionID: ro.RevisionID, Force: ro.Force,
		Replaced: c.Replaced, DroppedRequests: c.DroppedRequests, Reason: c.Reason,
	}}, nil
}

// endingRollout returns the rollout in progress that a report of its end
// names, with what it counted, or the rejection.
func endingRollout(state App, rolloutID string, replaced, dropped int) (*Rollout, error) {
	if state.Rollout == nil || state.Rollout.ID != rolloutID {
		return nil, reject(CodeRolloutNotFound, "app %q has no rollout %s in progress", state.Name, showID(rolloutID))
	}
	if replaced < 0 || dropped < 0 {
		return nil, invalid("replaced and dropped_requests must not be negative")
	}
	return state.Rollout, nil
}

func decideDeleteRevision(state App, c events.DeleteRevision) ([]events.Event, error) {
	rev, err := state.resolve(c.RevisionID)
	if err != nil {
		return nil, err
	}
	switch {
	case rev.Deleted:
		return nil, reject(CodeRevisionAlreadyDeleted, "revision %s was already deleted", rev.show())
	case rev.ID == state.Current:
		return nil, reject(CodeRevisionIsCurrent, "revision %s is the current revision of %q; switch to another revision (set-rev) before deleting it", rev.show(), state.Name)
	case rev.Status == events.StatusDeploying:
		return nil, reject(CodeRevisionInUse, "revision %s is being deployed; wait for the deploy to finish", rev.show())
	case state.Rollout != nil && state.Rollout.RevisionID == rev.ID:
		return nil, reject(CodeRevisionInUse, "revision %s is being rolled out (rollout %s)", rev.show(), showID(state.Rollout.ID))
	}
	return []events.Event{events.RevisionDeleted{RevisionID: rev.ID}}, nil
}

func decideScale(state App, c events.Scale) ([]events.Event, error) {
	if !state.HasRuntime {
		return nil, reject(CodeAppNotFound, "app %q has no deployed revision to scale", state.Name)
	}
	if c.Runtime.IsZero() && c.Code.IsZero() {
		return nil, invalid("scale needs at least one parameter to change")
	}
	after := c.Runtime.Apply(state.Runtime)
	if err := validateRuntime(after, c.Runtime); err != nil {
		return nil, err
	}
	if err := validateCode(c.Code); err != nil {
		return nil, err
	}
	codeAfter := c.Code.Apply(state.Code)
	changed := append(events.ChangedRuntimeParams(state.Runtime, after), events.ChangedCodeParams(state.Code, codeAfter)...)
	if len(changed) == 0 {
		return nil, noop(CodeNothingToChange, "app %q already has these parameters", state.Name)
	}
	return []events.Event{events.AppScaled{Before: state.Runtime, After: after, CodeBefore: state.Code, CodeAfter: codeAfter, Changed: changed}}, nil
}

func decideSuspend(state App) ([]events.Event, error) {
	switch {
	case state.Current == "":
		return nil, reject(CodeNoCurrentRevision, "app %q has no current revision to suspend", state.Name)
	case state.Suspended:
		return nil, noop(CodeAlreadySuspended, "app %q is already suspended", state.Name)
	}
	if deploying := state.deploying(); len(deploying) > 0 {
		return nil, reject(CodeDeployInProgress, "revision %s of %q is being deployed; wait for it before suspending", deploying[0].show(), state.Name)
	}
	return []events.Event{events.AppSuspended{RevisionID: state.Current}}, nil
}

func decideResume(state App) ([]events.Event, error) {
	if !state.Suspended {
		return nil, noop(CodeNotSuspended, "app %q is not suspended", state.Name)
	}
	return []events.Event{events.AppResumed{RevisionID: state.Current}}, nil
}

func decideReportRunner(state App, c events.ReportRunner) ([]events.Event, error) {
	if c.RunnerID == "" {
		return nil, invalid("runner report needs a runner id")
	}
	if err := checkUUID("runner_id", c.RunnerID); err != nil {
		return nil, err
	}
	if _, err := events.ParseRunnerState(string(c.State)); err != nil {
		return nil, invalid("unknown runner state %s", quote(string(c.State)))
	}
	switch {
	case c.PID < 0 || c.PID > MaxRunnerPID:
		return nil, invalid("pid must be 0 to %d, got %d", MaxRunnerPID, c.PID)
	case c.Port < 0 || c.Port > MaxPort:
		return nil, invalid("port must be 0 to %d, got %d", MaxPort, c.Port)
	case c.DroppedRequests < 0:
		return nil, invalid("dropped_requests must not be negative, got %d", c.DroppedRequests)
	case (c.RolloutID != "" || c.DroppedRequests != 0) && c.State != events.RunnerTerminated:
		return nil, invalid("rollout_id and dropped_requests go only on the terminated report of a runner a force rollout killed, not on a %s one", c.State)
	}
	if c.RolloutID != "" {
		if err := checkUUID("rollout_id", c.RolloutID); err != nil {
			return nil, err
		}
	}
	if err := checkText("reason", c.Reason, MaxReasonBytes); err != nil {
		return nil, err
	}
	if _, ok := state.Revisions[c.RevisionID]; !ok {
		return nil, reject(CodeRevisionNotFound, "app %q has no revision %s", state.Name, showID(c.RevisionID))
	}
	return []events.Event{events.RunnerStateChanged(c)}, nil
}

// decideSetSecret records a new version of a secret. An app may get
// secrets before its first deploy, so that its first runner starts with
// them.
func decideSetSecret(state App, c events.SetSecret) ([]events.Event, error) {
	if err := events.ValidateSecretName(c.Name); err != nil {
		return nil, invalid("%s", err.Error())
	}
	current, exists := state.Secrets[c.Name]
	switch {
	case c.Version == 0:
		return nil, invalid("secret %s needs the version the secret store gave its value", c.Name)
	case exists && current.Version == c.Version:
		return nil, noop(CodeNothingToChange, "secret %s is already at version %d", c.Name, c.Version)
	case exists && c.Version < current.Version:
		return nil, reject(CodeStaleSecretVersion, "secret %s is at version %d, newer than %d", c.Name, current.Version, c.Version)
	case !exists && len(state.Secrets) >= MaxSecrets:
		return nil, invalid("app %q has %d secrets, the limit", state.Name, MaxSecrets)
	}
	return []events.Event{events.SecretSet(c)}, nil
}

// decideUnsetSecret removes a secret.
func decideUnsetSecret(state App, c events.UnsetSecret) ([]events.Event, error) {
	if err := events.ValidateSecretName(c.Name); err != nil {
		return nil, invalid("%s", err.Error())
	}
	if _, exists := state.Secrets[c.Name]; !exists {
		return nil, reject(CodeSecretNotFound, "app %q has no secret %s", state.Name, c.Name)
	}
	return []events.Event{events.SecretUnset(c)}, nil
}

// decideStopRunner asks for one live runner to stop. A force stop
// supersedes a graceful one; asking again for what is already asked is a
// no-op.
func decideStopRunner(state App, c events.StopRunner) ([]events.Event, error) {
	if err := checkUUID("runner_id", c.RunnerID); err != nil {
		return nil, err
	}
	if c.Force && c.Replace {
		return nil, invalid("a forced stop has no replacement to wait for: use replace with a graceful stop")
	}
	r, ok := state.Runners[c.RunnerID]
	switch {
	case !ok:
		return nil, reject(CodeRunnerNotFound, "app %q has no live runner %s", state.Name, c.RunnerID)
	case r.Stop != nil && (r.Stop.Force || !c.Force):
		return nil, noop(CodeAlreadyStopping, "runner %s is already being stopped", c.RunnerID)
	}
	return []events.Event{events.RunnerStopRequested{RunnerID: c.RunnerID, RevisionID: r.RevisionID, Force: c.Force, Replace: c.Replace}}, nil
}

// decideDeleteApp deletes the app unless a deploy or a rollout is under
// way (a rollout older than RolloutStuckAfter is not waited for). The
// secrets it forgets are named in the event, for their values to be
// purged.
func decideDeleteApp(state App, c events.DeleteApp, now time.Time) ([]events.Event, error) {
	if err := checkText("reason", c.Reason, MaxReasonBytes); err != nil {
		return nil, err
	}
	switch {
	case state.Version == 0:
		return nil, reject(CodeAppNotFound, "app %q not found", state.Name)
	case state.Deleted:
		return nil, noop(CodeAlreadyDeleted, "app %q was already deleted by %s at %s", state.Name, state.DeletedBy, state.DeletedAt.UTC().Format(time.RFC3339))
	case state.Rollout != nil && now.Sub(state.Rollout.RequestedAt) < RolloutStuckAfter:
		return nil, reject(CodeRolloutInProgress, "rollout %s of app %q is in progress; wait for it before deleting the app", showID(state.Rollout.ID), state.Name)
	}
	if deploying := state.deploying(); len(deploying) > 0 {
		return nil, reject(CodeDeployInProgress, "revision %s of %q is being deployed; wait for it before deleting the app", deploying[0].show(), state.Name)
	}
	secrets := slices.Sorted(maps.Keys(state.Secrets))
	return []events.Event{events.AppDeleted{RevisionID: state.Current, Reason: c.Reason, Secrets: secrets}}, nil
}
