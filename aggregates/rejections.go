package aggregates

import (
	"fmt"

	"github.com/revline/revline/events"
)

// Rejection codes. They are stable: clients branch on them (docs/bus.md).
const (
	CodeInvalidArgument        = "invalid_argument"
	CodeAppNotFound            = "app_not_found"
	CodeAppSuspended           = "app_suspended"
	CodeAppDeleted             = "app_deleted"
	CodeRevisionExists         = "revision_exists"
	CodeRevisionNotFound       = "revision_not_found"
	CodeAmbiguousRevision      = "ambiguous_revision"
	CodeRevisionRefTooShort    = "revision_ref_too_short"
	CodeRevisionDeleted        = "revision_deleted"
	CodeRevisionAlreadyDeleted = "revision_already_deleted"
	CodeRevisionNotDeployed    = "revision_not_deployed"
	CodeRevisionNotDeploying   = "revision_not_deploying"
	CodeRevisionIsCurrent      = "revision_is_current"
	CodeRevisionInUse          = "revision_in_use"
	CodeNoCurrentRevision      = "no_current_revision"
	CodeDeployInProgress       = "deploy_in_progress"
	CodeRolloutInProgress      = "rollout_in_progress"
	CodeRolloutNotFound        = "rollout_not_found"
	CodeSecretNotFound         = "secret_not_found"
	CodeStaleSecretVersion     = "stale_secret_version"
	CodeRunnerNotFound         = "runner_not_found"

	// No-op codes: the command asked for what is already true.
	CodeAlreadyCurrent   = "already_current"
	CodeAlreadySuspended = "already_suspended"
	CodeNotSuspended     = "not_suspended"
	CodeNothingToChange  = "nothing_to_change"
	CodeAlreadyStopping  = "already_stopping"
	CodeAlreadyDeleted   = "already_deleted"
)

func reject(code, format string, args ...any) error {
	return &events.Rejection{Code: code, Message: fmt.Sprintf(format, args...)}
}

func noop(code, format string, args ...any) error {
	return &events.Rejection{Code: code, Message: fmt.Sprintf(format, args...), NoOp: true}
}

func invalid(format string, args ...any) error {
	return reject(CodeInvalidArgument, format, args...)
}
