package events

// Event is the payload of one fact in an app's history. EventType returns
// its stable wire name; it must never be derived from the Go type name.
type Event interface {
	EventType() string
}

// Stable event names. They are part of the bus contract (docs/bus.md) and
// the last token(s) of the event's subject.
const (
	TypeRevisionCreated     = "revision.created"
	TypeRevisionDeployed    = "revision.deployed"
	TypeRevisionFailed      = "revision.failed"
	TypeRevisionDeleted     = "revision.deleted"
	TypeCurrentRevisionSet  = "app.current_revision_set"
	TypeAppScaled           = "app.scaled"
	TypeAppSuspended        = "app.suspended"
	TypeAppResumed          = "app.resumed"
	TypeRolloutRequested    = "rollout.requested"
	TypeRolloutCompleted    = "rollout.completed"
	TypeRolloutFailed       = "rollout.failed"
	TypeRunnerStateChanged  = "runner.state_changed"
	TypeSecretSet           = "secret.set"
	TypeSecretUnset         = "secret.unset"
	TypeRunnerStopRequested = "runner.stop_requested"
	TypeAppDeleted          = "app.deleted"
	// Webhook changes: events of the webhooks aggregate
	// (WebhooksAggregate), not of an app.
	TypeWebhookAdded    = "webhook.added"
	TypeWebhookDisabled = "webhook.disabled"
	TypeWebhookEnabled  = "webhook.enabled"
	TypeWebhookRemoved  = "webhook.removed"
)

// RevisionCreated records a deploy request: a new revision in status
// Deploying. Runtime is the scaling the deploy asked for; it takes effect
// when the revision is deployed only if ResetScale is set or the app has
// no runtime parameters yet.
type RevisionCreated struct {
	RevisionID string `msgpack:"revision_id" json:"revision_id"`
	// Number is the revision's per-app number (1, 2, 3, ...), never
	// reused. Events written before numbers existed have none (0): a fold
	// numbers those in creation order (aggregates.RevisionNumber).
	Number      uint64            `msgpack:"number,omitempty" json:"number,omitempty"`
	Command     string            `msgpack:"command" json:"command"`
	Code        CodeParams        `msgpack:"code" json:"code"`
	Runtime     RuntimeParams     `msgpack:"runtime" json:"runtime"`
	ResetScale  bool              `msgpack:"reset_scale" json:"reset_scale"`
	Strategy    Strategy          `msgpack:"strategy" json:"strategy"`
	Message     string            `msgpack:"message" json:"message"`
	Annotations map[string]string `msgpack:"annotations" json:"annotations"`
}

// RevisionDeployed records that a revision's runner came up healthy.
type RevisionDeployed struct {
	RevisionID string `msgpack:"revision_id" json:"revision_id"`
	// RolledBackTo, when set, is the revision a set-rev made current while
	// this one deployed: the deploy did not make this revision current (no
	// app.current_revision_set follows), since the operator's rollback is
	// the later word. Empty (or absent, in events written before the
	// field existed) when the deploy made it current.
	RolledBackTo string `msgpack:"rolled_back_to,omitempty" json:"rolled_back_to,omitempty"`
}

// RevisionFailed records that a revision's deploy failed; the alias did not move.
type RevisionFailed struct {
	RevisionID string `msgpack:"revision_id" json:"revision_id"`
	Reason     string `msgpack:"reason" json:"reason"`
}

// RevisionDeleted records that a revision left the revision list.
type RevisionDeleted struct {
	RevisionID string `msgpack:"revision_id" json:"revision_id"`
}

// CurrentRevisionSet records that the app's alias moved, why, and where
// each effective parameter came from.
type CurrentRevisionSet struct {
	From string `msgpack:"from" json:"from"` // "" on the first deploy
	To   string `msgpack:"to" json:"to"`
	// Reason is ReasonDeploy or ReasonRollback.
	Reason   string   `msgpack:"reason" json:"reason"`
	Strategy Strategy `msgpack:"strategy" json:"strategy"`
	Message  string   `msgpack:"message" json:"message"`
	// Code is taken from the target revision.
	Code CodeParams `msgpack:"code" json:"code"`
	// Runtime is the effective runtime configuration after the move.
	Runtime RuntimeParams `msgpack:"runtime" json:"runtime"`
	// Inherited names the runtime parameters kept from the revision that
	// was active (InheritedFrom); the others came from the target revision.
	Inherited     []string `msgpack:"inherited" json:"inherited"`
	InheritedFrom string   `msgpack:"inherited_from" json:"inherited_from"`
}

// The reasons of a CurrentRevisionSet.
const (
	// ReasonDeploy is a deploy that completed.
	ReasonDeploy = "deploy"
	// ReasonRollback is a set-rev, to an older revision or a newer one.
	ReasonRollback = "rollback"
)

// AppScaled records a change of runtime parameters and, rarely, of the
// current revision's code parameters (until the next deploy or set-rev).
type AppScaled struct {
	Before     RuntimeParams `msgpack:"before" json:"before"`
	After      RuntimeParams `msgpack:"after" json:"after"`
	CodeBefore CodeParams    `msgpack:"code_before" json:"code_before"`
	CodeAfter  CodeParams    `msgpack:"code_after" json:"code_after"`
	// Changed names every parameter that changed, runtime and code.
	Changed []string `msgpack:"changed" json:"changed"`
}

// CodeAfterFrom returns the current revision's code parameters after the
// scale: CodeAfter, or current for an event written before that field
// existed.
func (e AppScaled) CodeAfterFrom(current CodeParams) CodeParams {
	if e.CodeAfter == (CodeParams{}) {
		return current
	}
	return e.CodeAfter
}

// AppSuspended records that the app's runners are to be stopped; its
// current revision shows as Suspended until resumed.
type AppSuspended struct {
	RevisionID string `msgpack:"revision_id" json:"revision_id"`
}

// AppResumed records that a suspended app serves again.
type AppResumed struct {
	RevisionID string `msgpack:"revision_id" json:"revision_id"`
}

// AppDeleted records that the app was deleted: its runners are to stop,
// its revisions leave the revision list and its secrets are forgotten
// (Secrets names them, for the secret store's values to be purged). The
// events before it stay in the log. A later deploy starts the app again.
type AppDeleted struct {
	// RevisionID is the revision that was current ("" if none).
	RevisionID string   `msgpack:"revision_id" json:"revision_id"`
	Reason     string   `msgpack:"reason" json:"reason"`
	Secrets    []string `msgpack:"secrets" json:"secrets"`
}

// WebhookAdded records a webhook added: where its events go (the
// target's scheme and host: a URL's path or query may hold a token, and
// events reach other webhooks) and which events. Never its signing
// secret.
type WebhookAdded struct {
	WebhookID string `msgpack:"webhook_id" json:"webhook_id"`
	Target    string `msgpack:"target" json:"target"`
	// App is the one app whose events it gets ("": every app's).
	App    string   `msgpack:"app" json:"app"`
	Events []string `msgpack:"events" json:"events"`
	// StartSequence is the first event it gets.
	StartSequence uint64 `msgpack:"start_sequence" json:"start_sequence"`
	// By is who the definition names as having added it, and Revision
	// the definition's revision in the webhook bucket (docs/bus.md §12).
	By       string `msgpack:"by" json:"by"`
	Revision uint64 `msgpack:"revision" json:"revision"`
}

// WebhookChanged is what a webhook disabled, enabled or removed records:
// who the definition names as having changed it, why, and the
// definition's revision in the webhook bucket.
type WebhookChanged struct {
	WebhookID string `msgpack:"webhook_id" json:"webhook_id"`
	By        string `msgpack:"by" json:"by"`
	Reason    string `msgpack:"reason" json:"reason"`
	Revision  uint64 `msgpack:"revision" json:"revision"`
}

// WebhookDisabled records a webhook disabled, by hand or by the server
// after failed deliveries (By "worker:webhooks", Reason the failures).
type WebhookDisabled WebhookChanged

// WebhookEnabled records a disabled webhook enabled again.
type WebhookEnabled WebhookChanged

// WebhookRemoved records a webhook removed (its secret purged).
type WebhookRemoved WebhookChanged

// RolloutRequested records a request to recycle every runner of the
// current revision.
type RolloutRequested struct {
	RolloutID  string `msgpack:"rollout_id" json:"rollout_id"`
	RevisionID string `msgpack:"revision_id" json:"revision_id"`
	Force      bool   `msgpack:"force" json:"force"`
}

// RolloutCompleted records the end of a rollout and what it did.
type RolloutCompleted struct {
	RolloutID       string `msgpack:"rollout_id" json:"rollout_id"`
	RevisionID      string `msgpack:"revision_id" json:"revision_id"`
	Force           bool   `msgpack:"force" json:"force"`
	Replaced        int    `msgpack:"replaced" json:"replaced"`
	DroppedRequests int    `msgpack:"dropped_requests" json:"dropped_requests"`
}

// RolloutFailed records that a rollout ended without replacing every
// runner: its replacements kept failing to start. A graceful rollout
// leaves the runners it had not replaced serving; Replaced and
// DroppedRequests count what it did before it gave up.
type RolloutFailed struct {
	RolloutID       string `msgpack:"rollout_id" json:"rollout_id"`
	RevisionID      string `msgpack:"revision_id" json:"revision_id"`
	Force           bool   `msgpack:"force" json:"force"`
	Replaced        int    `msgpack:"replaced" json:"replaced"`
	DroppedRequests int    `msgpack:"dropped_requests" json:"dropped_requests"`
	Reason          string `msgpack:"reason" json:"reason"`
}

// RunnerStopRequested records a request to stop one runner (see
// StopRunner); the runner worker carries it out and reports the runner
// terminated, with what it cut.
type RunnerStopRequested struct {
	RunnerID   string `msgpack:"runner_id" json:"runner_id"`
	RevisionID string `msgpack:"revision_id" json:"revision_id"`
	Force      bool   `msgpack:"force" json:"force"`
	Replace    bool   `msgpack:"replace" json:"replace"`
}

// SecretSet records that the app's secret Name has a new value, stored in
// the secret store as version Version. Never the value.
type SecretSet struct {
	Name    string `msgpack:"name" json:"name"`
	Version uint64 `msgpack:"version" json:"version"`
}

// SecretUnset records that the app's secret Name was removed.
type SecretUnset struct {
	Name string `msgpack:"name" json:"name"`
}

// RunnerStateChanged records a runner's move to a new state.
type RunnerStateChanged struct {
	RunnerID   string      `msgpack:"runner_id" json:"runner_id"`
	RevisionID string      `msgpack:"revision_id" json:"revision_id"`
	State      RunnerState `msgpack:"state" json:"state"`
	PID        int         `msgpack:"pid" json:"pid"`
	Port       int         `msgpack:"port" json:"port"`
	Reason     string      `msgpack:"reason" json:"reason"`
	// RolloutID and DroppedRequests: see ReportRunner. Absent (empty, 0)
	// but on the terminated report of a runner a force rollout killed.
	RolloutID       string `msgpack:"rollout_id,omitempty" json:"rollout_id,omitempty"`
	DroppedRequests int    `msgpack:"dropped_requests,omitempty" json:"dropped_requests,omitempty"`
}

// EventType implements Event.
func (RevisionCreated) EventType() string { return TypeRevisionCreated }

// EventType implements Event.
func (RevisionDeployed) EventType() string { return TypeRevisionDeployed }

// EventType implements Event.
func (RevisionFailed) EventType() string { return TypeRevisionFailed }

// EventType implements Event.
func (RevisionDeleted) EventType() string { return TypeRevisionDeleted }

// EventType implements Event.
func (CurrentRevisionSet) EventType() string { return TypeCurrentRevisionSet }

// EventType implements Event.
func (AppScaled) EventType() string { return TypeAppScaled }

// EventType implements Event.
func (AppSuspended) EventType() string { return TypeAppSuspended }

// EventType implements Event.
func (AppResumed) EventType() string { return TypeAppResumed }

// EventType implements Event.
func (RolloutRequested) EventType() string { return TypeRolloutRequested }

// EventType implements Event.
func (RolloutCompleted) EventType() string { return TypeRolloutCompleted }

// EventType implements Event.
func (RolloutFailed) EventType() string { return TypeRolloutFailed }

// EventType implements Event.
func (RunnerStateChanged) EventType() string { return TypeRunnerStateChanged }

// EventType implements Event.
func (SecretSet) EventType() string { return TypeSecretSet }

// EventType implements Event.
func (SecretUnset) EventType() string { return TypeSecretUnset }

// EventType implements Event.
func (RunnerStopRequested) EventType() string { return TypeRunnerStopRequested }

// EventType implements Event.
func (AppDeleted) EventType() string { return TypeAppDeleted }

// EventType implements Event.
func (WebhookAdded) EventType() string { return TypeWebhookAdded }

// EventType implements Event.
func (WebhookDisabled) EventType() string { return TypeWebhookDisabled }

// EventType implements Event.
func (WebhookEnabled) EventType() string { return TypeWebhookEnabled }

// EventType implements Event.
func (WebhookRemoved) EventType() string { return TypeWebhookRemoved }
