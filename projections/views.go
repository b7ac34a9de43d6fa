package projections

import (
	"time"

	"github.com/revline/revline/events"
)

// AppView is one row of `apps list`. Its JSON form is part of the CLI's
// `-o json` contract: name, current_revision, the runtime parameters
// (keep_alive, min_concurrency, ...), revisions, runners, suspended and
// updated_at.
type AppView struct {
	Name string `json:"name"`
	// CurrentRevision is the revision the alias points to, "" before the
	// first successful deploy.
	CurrentRevision string `json:"current_revision"`
	// RuntimeParams are the app's effective runtime parameters (zero
	// before the first successful deploy).
	events.RuntimeParams
	// Revisions counts the revisions that are not deleted.
	Revisions int `json:"revisions"`
	// Runners counts the runners that are not terminated.
	Runners   int  `json:"runners"`
	Suspended bool `json:"suspended"`
	// UpdatedAt is when the app last changed: the time of its last event
	// other than a runner report.
	UpdatedAt time.Time `json:"updated_at"`
	// UpdatedBy is who asked for that change: the event's actor, except
	// for what a worker reports of someone's request (a deploy's outcome
	// is the deployer's doing, a rollout's end its requester's).
	UpdatedBy string `json:"updated_by"`
	// Deleted, set for a deleted app, says who deleted it, when and why.
	// It is not part of the JSON contract: Apps never lists a deleted app.
	Deleted *DeletionView `json:"-"`
}

// DeletionView is an app's deletion (an app.deleted event).
type DeletionView struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	// Sequence is the stream sequence of the event.
	Sequence uint64 `json:"sequence"`
}

// RevisionView is one row of `apps list-rev`. Code and runtime parameters
// are flattened into its JSON form, which is part of the CLI's `-o json`
// contract.
type RevisionView struct {
	// Number is the revision's per-app number (1, 2, 3, ...; v3 for
	// short), never reused.
	Number     uint64 `json:"number"`
	RevisionID string `json:"revision_id"`
	// Status is deploying, deployed or failed; the current revision of a
	// suspended app shows suspended.
	Status  events.RevisionStatus `json:"status"`
	Current bool                  `json:"current"`
	// CreatedAt and CreatedBy are the time and actor of the deploy request.
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	// CodeParams come from the revision's deploy.
	events.CodeParams
	// RuntimeParams are the effective runtime parameters: the app's own for
	// the current revision; for another revision those in effect when it
	// was last current, or, if it never was, those its deploy asked for.
	events.RuntimeParams
	Message     string            `json:"message"`
	Annotations map[string]string `json:"annotations"`
	Command     string            `json:"command"`
	// Runners counts this revision's runners that are not terminated;
	// CrashBackoff those of them waiting to restart after a crash,
	// Restarts their crashes so far, LastCrash the latest one's reason
	// (exit status and back-off): a crash-looping revision shows as such.
	Runners      int    `json:"runners"`
	CrashBackoff int    `json:"crash_backoff"`
	Restarts     int    `json:"restarts"`
	LastCrash    string `json:"last_crash,omitempty"`
	FailReason   string `json:"fail_reason"`
	// RolledBackTo, for a revision deployed but never made current, is the
	// revision a set-rev made current while it deployed.
	RolledBackTo string `json:"rolled_back_to,omitempty"`
	// Deleted is only ever true for a revision asked for by id: deleted
	// revisions leave the list.
	Deleted bool `json:"deleted"`
}

// RunnerView is one row of `apps runners`. Its JSON form is part of the
// CLI's `-o json` contract.
type RunnerView struct {
	RunnerID   string             `json:"runner_id"`
	RevisionID string             `json:"revision_id"`
	State      events.RunnerState `json:"state"`
	// StartedAt is when the runner was first reported, UpdatedAt when it
	// was last reported.
	StartedAt time.Time `json:"started_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// PID and Port are the last non-zero values reported.
	PID  int `json:"pid"`
	Port int `json:"port"`
	// InFlight is how many requests the runner is handling now, as the
	// gateway sees it: live state, never an event. A runner with requests
	// shows as running rather than idle.
	InFlight int `json:"in_flight"`
	// ExpiresAt, for an idle runner above the count the app needs, is when
	// keep_alive stops it if it stays idle (fal's "expires in"): live
	// state, never an event.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Restarts counts the runner's crashes (each one a crash_backoff, then
	// a restart under the same id); LastCrash is the reason of the last one
	// (its exit status and the back-off), "" if it never crashed.
	Restarts  int    `json:"restarts"`
	LastCrash string `json:"last_crash,omitempty"`
	// Reason is the reason given with the last report (a crash, a drain).
	// It is not part of the JSON contract.
	Reason string `json:"-"`
}

// ApplyReport folds a report of the runner, which occurred at at, into r:
// its state, revision, pid and port (the last non-zero ones), reason and
// crashes. r.RunnerID and r.StartedAt are the caller's to set.
func (r *RunnerView) ApplyReport(ev events.RunnerStateChanged, at time.Time) {
	if ev.RevisionID != "" {
		r.RevisionID = ev.RevisionID
	}
	r.State = ev.State
	if ev.State == events.RunnerCrashBackoff {
		r.Restarts++
		r.LastCrash = ev.Reason
	}
	if ev.PID != 0 {
		r.PID = ev.PID
	}
	if ev.Port != 0 {
		r.Port = ev.Port
	}
	r.Reason = ev.Reason
	r.UpdatedAt = at
}

// Terminated reports whether the runner has stopped for good.
func (r RunnerView) Terminated() bool { return r.State == events.RunnerTerminated }

// RolloutStatus is the progress of one rollout.
type RolloutStatus string

// Rollout statuses.
const (
	// RolloutActive: requested, not completed yet.
	RolloutActive RolloutStatus = "active"
	// RolloutCompleted: the rollout reported its end.
	RolloutCompleted RolloutStatus = "completed"
	// RolloutFailed: the rollout ended without replacing every runner:
	// its replacements kept failing to start (RolloutView.Reason).
	RolloutFailed RolloutStatus = "failed"
	// RolloutSuperseded: a newer rollout was requested before this one
	// completed (a force rollout, or one after the stuck timeout).
	RolloutSuperseded RolloutStatus = "superseded"
)

// RolloutView is one rollout of an app.
type RolloutView struct {
	RolloutID   string        `json:"rollout_id"`
	RevisionID  string        `json:"revision_id"`
	Force       bool          `json:"force"`
	Status      RolloutStatus `json:"status"`
	RequestedAt time.Time     `json:"requested_at"`
	RequestedBy string        `json:"requested_by"`
	// CompletedAt is zero unless Status is completed or failed.
	CompletedAt time.Time `json:"completed_at,omitzero"`
	// Reason is why a failed rollout failed.
	Reason          string `json:"reason,omitempty"`
	Replaced        int    `json:"replaced"`
	DroppedRequests int    `json:"dropped_requests"`
	// SupersededBy is the rollout that replaced this one, if Status is
	// superseded.
	SupersededBy string `json:"superseded_by,omitempty"`
}

// SwitchView is the last move of an app's alias (an
// app.current_revision_set event) with the provenance of its parameters.
type SwitchView struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Reason is "deploy" or "rollback".
	Reason   string               `json:"reason"`
	Strategy events.Strategy      `json:"strategy"`
	Message  string               `json:"message"`
	Code     events.CodeParams    `json:"code"`
	Runtime  events.RuntimeParams `json:"runtime"`
	// Inherited names the runtime parameters kept from InheritedFrom.
	Inherited     []string  `json:"inherited"`
	InheritedFrom string    `json:"inherited_from"`
	At            time.Time `json:"at"`
	By            string    `json:"by"`
	// Sequence is the stream sequence of the event.
	Sequence uint64 `json:"sequence"`
}
