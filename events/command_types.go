package events

import "github.com/google/uuid"

// Command is the payload of a request to change an app. CommandType returns
// its stable wire name, the last token of the command's subject.
type Command interface {
	CommandType() string
}

// Stable command names, part of the bus contract (docs/bus.md).
const (
	CmdDeploy          = "deploy"
	CmdSetRevision     = "set_revision"
	CmdRollout         = "rollout"
	CmdDeleteRevision  = "delete_revision"
	CmdScale           = "scale"
	CmdSuspend         = "suspend"
	CmdResume          = "resume"
	CmdCompleteDeploy  = "complete_deploy"
	CmdFailDeploy      = "fail_deploy"
	CmdCompleteRollout = "complete_rollout"
	CmdFailRollout     = "fail_rollout"
	CmdReportRunner    = "report_runner"
	CmdSetSecret       = "set_secret"
	CmdUnsetSecret     = "unset_secret"
	CmdStopRunner      = "stop_runner"
	CmdDeleteApp       = "delete_app"
)

// Deploy creates a new revision. RevisionID may be left empty: the command
// processor then assigns a UUID v7. Unset code parameters take defaults;
// Runtime is applied only on an app's first deploy or with ResetScale,
// otherwise the app keeps its current runtime parameters.
type Deploy struct {
	RevisionID  string            `msgpack:"revision_id,omitempty" json:"revision_id,omitempty"`
	Command     string            `msgpack:"command" json:"command"`
	Code        CodeOverrides     `msgpack:"code" json:"code"`
	Runtime     RuntimeOverrides  `msgpack:"runtime" json:"runtime"`
	ResetScale  bool              `msgpack:"reset_scale" json:"reset_scale"`
	Strategy    Strategy          `msgpack:"strategy,omitempty" json:"strategy,omitempty"`
	Message     string            `msgpack:"message,omitempty" json:"message,omitempty"`
	Annotations map[string]string `msgpack:"annotations,omitempty" json:"annotations,omitempty"`
}

// revisionNamespace scopes the revision ids derived from command ids.
var revisionNamespace = uuid.MustParse("b3e2f1c4-5d6a-4b7c-8e9f-0a1b2c3d4e5f")

// RevisionIDFor returns the id of the revision a deploy with command id
// commandID creates when it names none: derived from it, so that a retried
// deploy (the same command) names the same revision, and random from its
// first character (a UUID v5), so that an 8-character prefix tells
// revisions apart in practice, unlike UUID v7s made within a minute of
// each other.
func RevisionIDFor(commandID string) string {
	return uuid.NewSHA1(revisionNamespace, []byte(commandID)).String()
}

// SetRevision points the app's alias at an existing Deployed revision
// (a rollback, or a roll-forward).
type SetRevision struct {
	RevisionID string   `msgpack:"revision_id" json:"revision_id"`
	Strategy   Strategy `msgpack:"strategy,omitempty" json:"strategy,omitempty"`
	Message    string   `msgpack:"message,omitempty" json:"message,omitempty"`
}

// Rollout recycles every runner of the current revision. RolloutID may be
// left empty: the command processor assigns one.
type Rollout struct {
	RolloutID string `msgpack:"rollout_id,omitempty" json:"rollout_id,omitempty"`
	Force     bool   `msgpack:"force" json:"force"`
}

// DeleteRevision removes a revision from the revision list.
type DeleteRevision struct {
	RevisionID string `msgpack:"revision_id" json:"revision_id"`
}

// Scale changes the app's runtime-tunable parameters. It may also change
// the code parameters of the current revision, as fal's `apps scale` does:
// those changes last until the next deploy or set-rev, which take the code
// parameters from their revision again.
type Scale struct {
	Runtime RuntimeOverrides `msgpack:"runtime" json:"runtime"`
	Code    CodeOverrides    `msgpack:"code,omitempty" json:"code,omitempty"`
}

// Suspend stops the app's runners and marks its current revision Suspended.
type Suspend struct{}

// Resume brings a suspended app back.
type Resume struct{}

// DeleteApp deletes the app: its runners stop at once, the gateway no
// longer knows it, `apps list` leaves it out and every command but a deploy
// (which starts it again, its revision numbers going on) is refused. Its
// history stays in the log. Reason, optional, says why.
type DeleteApp struct {
	Reason string `msgpack:"reason,omitempty" json:"reason,omitempty"`
}

// SetSecret records that a new value of the app's secret Name was stored
// in the secret store (see package secrets), as its version Version. The
// value itself never travels in a command or an event: the client puts it
// in the store first, then sends this command.
type SetSecret struct {
	Name    string `msgpack:"name" json:"name"`
	Version uint64 `msgpack:"version" json:"version"`
}

// UnsetSecret removes the app's secret Name: runners started afterwards
// no longer get it. The client purges the value from the store after the
// command is accepted.
type UnsetSecret struct {
	Name string `msgpack:"name" json:"name"`
}

// StopRunner asks for one runner to stop: gracefully (it gets no new
// request and is stopped once its requests have ended; with Replace, a
// replacement is ready first), or with Force at once, its in-flight
// requests dropped and counted. The autoscaler may start another runner
// afterwards, as a Kubernetes deployment replaces a deleted pod.
type StopRunner struct {
	RunnerID string `msgpack:"runner_id" json:"runner_id"`
	Force    bool   `msgpack:"force,omitempty" json:"force,omitempty"`
	Replace  bool   `msgpack:"replace,omitempty" json:"replace,omitempty"`
}

// CompleteDeploy is sent by a runner worker when a revision's first runner
// is healthy.
type CompleteDeploy struct {
	RevisionID string `msgpack:"revision_id" json:"revision_id"`
}

// FailDeploy is sent by a runner worker when a revision's runner did not
// become healthy.
type FailDeploy struct {
	RevisionID string `msgpack:"revision_id" json:"revision_id"`
	Reason     string `msgpack:"reason" json:"reason"`
}

// CompleteRollout is sent by a runner worker when every runner of a
// rollout has been replaced.
type CompleteRollout struct {
	RolloutID       string `msgpack:"rollout_id" json:"rollout_id"`
	Replaced        int    `msgpack:"replaced" json:"replaced"`
	DroppedRequests int    `msgpack:"dropped_requests" json:"dropped_requests"`
}

// FailRollout is sent by a runner worker when a rollout's replacements
// keep failing to start: the rollout ends, failed, with what it did and
// why.
type FailRollout struct {
	RolloutID       string `msgpack:"rollout_id" json:"rollout_id"`
	Replaced        int    `msgpack:"replaced" json:"replaced"`
	DroppedRequests int    `msgpack:"dropped_requests" json:"dropped_requests"`
	Reason          string `msgpack:"reason" json:"reason"`
}

// ReportRunner is sent by a runner worker when a runner changes state.
type ReportRunner struct {
	RunnerID   string      `msgpack:"runner_id" json:"runner_id"`
	RevisionID string      `msgpack:"revision_id" json:"revision_id"`
	State      RunnerState `msgpack:"state" json:"state"`
	PID        int         `msgpack:"pid" json:"pid"`
	Port       int         `msgpack:"port" json:"port"`
	Reason     string      `msgpack:"reason,omitempty" json:"reason,omitempty"`
	// RolloutID names the force rollout that killed the runner, and
	// DroppedRequests the requests in flight it cut (exact, counted by
	// the gateway): only on the terminated report of a runner a force
	// rollout killed, so that the rollout's count survives a restart of
	// the server.
	RolloutID       string `msgpack:"rollout_id,omitempty" json:"rollout_id,omitempty"`
	DroppedRequests int    `msgpack:"dropped_requests,omitempty" json:"dropped_requests,omitempty"`
}

// CommandType implements Command.
func (Deploy) CommandType() string { return CmdDeploy }

// CommandType implements Command.
func (SetRevision) CommandType() string { return CmdSetRevision }

// CommandType implements Command.
func (Rollout) CommandType() string { return CmdRollout }

// CommandType implements Command.
func (DeleteRevision) CommandType() string { return CmdDeleteRevision }

// CommandType implements Command.
func (Scale) CommandType() string { return CmdScale }

// CommandType implements Command.
func (Suspend) CommandType() string { return CmdSuspend }

// CommandType implements Command.
func (Resume) CommandType() string { return CmdResume }

// CommandType implements Command.
func (CompleteDeploy) CommandType() string { return CmdCompleteDeploy }

// CommandType implements Command.
func (FailDeploy) CommandType() string { return CmdFailDeploy }

// CommandType implements Command.
func (CompleteRollout) CommandType() string { return CmdCompleteRollout }

// CommandType implements Command.
func (FailRollout) CommandType() string { return CmdFailRollout }

// CommandType implements Command.
func (ReportRunner) CommandType() string { return CmdReportRunner }

// CommandType implements Command.
func (SetSecret) CommandType() string { return CmdSetSecret }

// CommandType implements Command.
func (UnsetSecret) CommandType() string { return CmdUnsetSecret }

// CommandType implements Command.
func (StopRunner) CommandType() string { return CmdStopRunner }

// CommandType implements Command.
func (DeleteApp) CommandType() string { return CmdDeleteApp }
