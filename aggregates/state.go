// Package aggregates holds the App aggregate: a pure decider.
//
// Decide(state, command, now) returns the events a command produces or a
// *events.Rejection explaining why not; Evolve(state, event) folds one event
// into the state. Neither does I/O nor reads the clock, so every rule is
// tested without NATS and a state is rebuilt by folding its history.
package aggregates

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/revline/revline/events"
)

// App is the decision state of one app.
type App struct {
	Name string
	// Version is the stream sequence of the last event folded in; it is
	// the expected version of the next append.
	Version uint64
	// Current is the id of the revision the alias points to ("" before the
	// first successful deploy).
	Current string
	// Strategy is how runners move to the current revision (from the
	// deploy or set-rev that made it current).
	Strategy events.Strategy
	// Code holds the effective code parameters of the current revision:
	// the revision's own, unless a scale changed them since it became current.
	Code events.CodeParams
	// Runtime holds the effective runtime parameters once HasRuntime.
	Runtime    events.RuntimeParams
	HasRuntime bool
	Suspended  bool
	Revisions  map[string]*Revision
	// LastNumber is the highest revision number given so far, deleted
	// revisions included: numbers are never reused.
	LastNumber uint64
	// Rollout is the rollout in progress, if any.
	Rollout *Rollout
	// Secrets are the app's secrets by name: which version of the value
	// in the secret store runners get, never the value.
	Secrets map[string]Secret
	// Runners are the runners the log says are alive (not terminated), by
	// id.
	Runners map[string]*Runner
	// Deleted is set by app.deleted, until a deploy starts the app again;
	// DeletedAt and DeletedBy tell when and by whom.
	Deleted   bool
	DeletedAt time.Time
	DeletedBy string
	// LastHash is the hash of the app's last hashed event ("" before the
	// first one): the next event chains from it (events.Chain).
	LastHash string
}

// Runner is what the decider knows of one live runner.
type Runner struct {
	RevisionID string
	State      events.RunnerState
	// Stop is the stop requested for it, if any.
	Stop *StopRequest
}

// StopRequest is a request to stop one runner (events.StopRunner).
type StopRequest struct {
	Force, Replace bool
	By             string
}

// Secret is what the decider knows of one of an app's secrets.
type Secret struct {
	Version uint64
	SetAt   time.Time
	SetBy   string
}

// Revision is what the decider knows of one revision.
type Revision struct {
	ID string
	// Number is the revision's per-app number (1, 2, 3, ...).
	Number     uint64
	Command    string
	Code       events.CodeParams
	Runtime    events.RuntimeParams // the scaling the deploy asked for
	ResetScale bool
	Strategy   events.Strategy
	Message    string
	Status     events.RevisionStatus
	Deleted    bool
	// RolledBackTo is the revision a set-rev made current while this one
	// was being deployed (the last one, if several): the operator's later
	// word, which the deploy's completion does not undo.
	RolledBackTo string
	CreatedAt    time.Time
	// CreatedBy is the actor of the deploy that created the revision.
	CreatedBy string
}

// Rollout is a rollout in progress.
type Rollout struct {
	ID          string
	RevisionID  string
	Force       bool
	RequestedAt time.Time
	// Dropped counts the requests the force rollout cut so far, from the
	// terminated reports of the runners it killed: what it did before a
	// restart of the server, which the runner worker goes on from.
	Dropped int
}

// RolloutStuckAfter is how long a graceful rollout may run before a new one
// may supersede it. A force rollout always supersedes.
const RolloutStuckAfter = 30 * time.Minute

// Exists reports whether the app has any history.
func (a App) Exists() bool { return len(a.Revisions) > 0 }

// Fold builds the state of app from its history.
func Fold(app string, history []events.Envelope) App {
	state := App{Name: app}
	for _, env := range history {
		state = Evolve(state, env)
	}
	return state
}

// Evolve returns state with env applied. It updates state's revision map
// in place: the caller gives up the state it passes in.
func Evolve(state App, env events.Envelope) App {
	if state.Revisions == nil {
		state.Revisions = map[string]*Revision{}
	}
	state.Name = env.App
	if env.Sequence > state.Version {
		state.Version = env.Sequence
	}
	if env.Hash != "" && env.Event != nil {
		// A message that is no event, or an event without a hash (written
		// before events were hashed, or by someone else) is no link of the
		// chain: the next event chains from the last one that is, and
		// `revline audit verify` reports the gap.
		state.LastHash = env.Hash
	}
	rev := func(id string) *Revision {
		if r, ok := state.Revisions[id]; ok {
			return r
		}
		return &Revision{} // an unknown id changes nothing
	}
	switch ev := env.Event.(type) {
	case events.RevisionCreated:
		if _, exists := state.Revisions[ev.RevisionID]; exists || ev.RevisionID == "" {
			// The decider never makes one (revision_exists): a second
			// revision.created of an id is skipped, by this fold and the
			// read model's alike, so that what runs is what list-rev shows.
			break
		}
		number := RevisionNumber(ev, state.LastNumber)
		state.Deleted, state.DeletedAt, state.DeletedBy = false, time.Time{}, ""
		state.LastNumber = max(state.LastNumber, number)
		state.Revisions[ev.RevisionID] = &Revision{
			ID: ev.RevisionID, Number: number, Command: ev.Command, Code: ev.Code, Runtime: ev.Runtime,
			ResetScale: ev.ResetScale, Strategy: ev.Strategy, Message: ev.Message,
			Status: events.StatusDeploying, CreatedAt: env.OccurredAt, CreatedBy: env.Actor,
		}
	case events.RevisionDeployed:
		rev(ev.RevisionID).Status = events.StatusDeployed
	case events.RevisionFailed:
		rev(ev.RevisionID).Status = events.StatusFailed
	case events.RevisionDeleted:
		rev(ev.RevisionID).Deleted = true
	case events.CurrentRevisionSet:
		if ev.Reason == events.ReasonRollback {
			for _, r := range state.Revisions {
				if r.Status == events.StatusDeploying {
					r.RolledBackTo = ev.To
				}
			}
		}
		state.Current = ev.To
		state.Strategy = ev.Strategy
		state.Code = ev.Code
		state.Runtime = ev.Runtime
		state.HasRuntime = true
	case events.AppScaled:
		state.Runtime = ev.After
		state.Code = ev.CodeAfterFrom(state.Code)
	case events.AppSuspended:
		state.Suspended = true
	case events.AppResumed:
		state.Suspended = false
	case events.AppDeleted:
		state = deleted(state, env)
	case events.RolloutRequested:
		state.Rollout = &Rollout{ID: ev.RolloutID, RevisionID: ev.RevisionID, Force: ev.Force, RequestedAt: env.OccurredAt}
	case events.RolloutCompleted:
		if state.Rollout != nil && state.Rollout.ID == ev.RolloutID {
			state.Rollout = nil
		}
	case events.RolloutFailed:
		if state.Rollout != nil && state.Rollout.ID == ev.RolloutID {
			state.Rollout = nil
		}
	case events.RunnerStateChanged:
		if ev.State == events.RunnerTerminated {
			delete(state.Runners, ev.RunnerID)
			if ro := state.Rollout; ro != nil && ev.RolloutID == ro.ID {
				counted := *ro
				counted.Dropped += ev.DroppedRequests
				state.Rollout = &counted
			}
			break
		}
		if state.Runners == nil {
			state.Runners = map[string]*Runner{}
		}
		r, ok := state.Runners[ev.RunnerID]
		if !ok {
			r = &Runner{}
			state.Runners[ev.RunnerID] = r
		}
		r.RevisionID, r.State = ev.RevisionID, ev.State
	case events.RunnerStopRequested:
		if r, ok := state.Runners[ev.RunnerID]; ok {
			r.Stop = &StopRequest{Force: ev.Force, Replace: ev.Replace, By: env.Actor}
		}
	case events.SecretSet:
		secrets := maps.Clone(state.Secrets)
		if secrets == nil {
			secrets = map[string]Secret{}
		}
		secrets[ev.Name] = Secret{Version: ev.Version, SetAt: env.OccurredAt, SetBy: env.Actor}
		state.Secrets = secrets
	case events.SecretUnset:
		secrets := maps.Clone(state.Secrets)
		delete(secrets, ev.Name)
		state.Secrets = secrets
	}
	return state
}

// deleted returns state after the app's deletion: no current revision (so
// that its runners stop, as a suspended app's do), no revision in the list,
// no secret and no rollout. The revision count goes on (LastNumber) and the
// runners stay until they are reported terminated.
func deleted(state App, env events.Envelope) App {
	for _, r := range state.Revisions {
		r.Deleted = true
	}
	state.Current, state.Strategy, state.HasRuntime, state.Suspended = "", "", false, false
	state.Rollout, state.Secrets = nil, nil
	state.Deleted, state.DeletedAt, state.DeletedBy = true, env.OccurredAt, env.Actor
	return state
}

// show names the revision in a message: its number and its id.
// deploying lists the app's revisions being deployed, by number.
func (a App) deploying() []*Revision {
	var out []*Revision
	for _, rev := range a.Revisions {
		if rev.Status == events.StatusDeploying {
			out = append(out, rev)
		}
	}
	slices.SortFunc(out, func(x, y *Revision) int { return cmp.Compare(x.Number, y.Number) })
	return out
}

func (r *Revision) show() string {
	if r.Number == 0 {
		return showID(r.ID)
	}
	return fmt.Sprintf("v%d (%s)", r.Number, showID(r.ID))
}
