// Package control holds the operations users perform on apps (deploy,
// set-rev, rollout, delete-rev, scale, suspend, resume, secrets): each sends a
// command on the bus, turns its outcome into a result or an error, and
// where asked waits for the runner worker to finish. The CLI and the HTTP
// API both use it, so they behave the same.
package control

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/projections/queryapi"
)

// CommandExecutor sends a command and waits for its outcome.
type CommandExecutor interface {
	Execute(ctx context.Context, cmd events.CommandEnvelope) (events.Outcome, error)
}

// AppFollower delivers one app's events from a stream sequence on.
type AppFollower interface {
	FollowApp(ctx context.Context, app string, from uint64, fn events.FollowFunc) error
}

// Control performs operations on behalf of one actor.
type Control struct {
	Commands CommandExecutor
	Reader   queryapi.Reader
	Events   AppFollower
	// Secrets, optional, stores secret values for SetSecret and
	// UnsetSecret.
	Secrets SecretWriter
	// Actor is recorded in every event the operations cause.
	Actor string
	// Signer, the one Commands signs with, keys the command ids derived
	// from idempotency keys; nil derives them from the keys alone.
	Signer *events.Signer
	// Progress, optional, is told in one line each what a long wait (a
	// deploy, a rollout) is waiting for, and each step of it: the CLI
	// prints it on a terminal, so that no wait is silent.
	Progress func(line string)
}

// progress reports a step of a wait, if anyone listens.
func (c *Control) progress(format string, args ...any) {
	if c.Progress != nil {
		c.Progress(fmt.Sprintf(format, args...))
	}
}

// stepWords say what a runner reported means for a wait.
var stepWords = map[events.RunnerState]string{
	events.RunnerPending:      "starting",
	events.RunnerSetup:        "starting",
	events.RunnerIdle:         "ready",
	events.RunnerRunning:      "ready",
	events.RunnerDraining:     "draining",
	events.RunnerTerminating:  "stopping",
	events.RunnerTerminated:   "gone",
	events.RunnerCrashBackoff: "crashed",
}

// runnerStep reports a runner's move during a wait: "runner ID: ready",
// "runner ID: draining (rollout ...)".
func (c *Control) runnerStep(ev events.RunnerStateChanged) {
	step := cmp.Or(stepWords[ev.State], string(ev.State))
	if ev.Reason != "" && ev.State != events.RunnerIdle {
		c.progress("runner %s: %s (%s)", ev.RunnerID, step, ev.Reason)
		return
	}
	c.progress("runner %s: %s", ev.RunnerID, step)
}

// commandID returns the command id for an operation: derived from the
// idempotency key when there is one, so that a retry is the same command,
// keyed with the signer's token (events.Signer.IdempotencyID).
func (c *Control) commandID(app, idempotencyKey string) string {
	if idempotencyKey == "" {
		return uuid.Must(uuid.NewV7()).String()
	}
	return c.Signer.IdempotencyID(app, idempotencyKey)
}

// execute sends cmd for app and returns its outcome; a rejected command is
// returned as its *events.Rejection. A deploy without a revision id gets
// RevisionID of its command id.
func (c *Control) execute(ctx context.Context, app string, cmd events.Command, idempotencyKey string) (events.Outcome, error) {
	commandID := c.commandID(app, idempotencyKey)
	if d, ok := cmd.(events.Deploy); ok && d.RevisionID == "" {
		d.RevisionID = events.RevisionIDFor(commandID)
		cmd = d
	}
	env := events.NewCommand(app, cmd, events.Metadata{Actor: c.Actor})
	env.CommandID = commandID
	o, err := c.Commands.Execute(ctx, env)
	if err != nil {
		return o, err
	}
	if err := o.Err(); err != nil {
		return o, err
	}
	return o, nil
}

// resolve returns the revision a reference names: its number (v3 or 3),
// its id or a unique id prefix.
func (c *Control) resolve(ctx context.Context, app, ref string) (projections.RevisionView, error) {
	return c.Reader.Revision(ctx, app, ref, 0)
}

// DeployOptions are the knobs of Deploy beyond the revision itself.
type DeployOptions struct {
	// IdempotencyKey makes a retried deploy create no second revision.
	IdempotencyKey string
	// Wait blocks until the revision is Deployed or Failed.
	Wait bool
}

// DeployResult is the result of Deploy.
type DeployResult struct {
	RevisionID string `json:"revision_id"`
	// Number is the revision's number; 0 (left out) only if the read model
	// could not tell it in time.
	Number    uint64                `json:"number,omitempty"`
	Status    events.RevisionStatus `json:"status"`
	Reason    string                `json:"reason,omitempty"`
	Sequence  uint64                `json:"sequence"`
	Duplicate bool                  `json:"duplicate,omitempty"`
	// RolledBackTo, with Wait, is the revision a set-rev made current
	// while this one deployed: it is deployed but not current.
	// RolledBackToNumber is that revision's number (0 if the read model
	// could not tell it in time).
	RolledBackTo       string `json:"rolled_back_to,omitempty"`
	RolledBackToNumber uint64 `json:"rolled_back_to_number,omitempty"`
}

// ErrDeployFailed is wrapped by the error Deploy returns for a revision
// that failed to deploy.
var ErrDeployFailed = errors.New("deploy failed")

// ErrDeployNotCurrent is wrapped by the error Deploy returns for a
// revision that deployed but did not become current, because a set-rev
// moved the app while it deployed: the rollback stands, and the revision
// can be made current later with SetRevision.
var ErrDeployNotCurrent = errors.New("deployed, not current")

// Deploy creates a revision and, with opts.Wait, waits for it to settle.
// A failed revision returns its result and an error wrapping
// ErrDeployFailed; one deployed but left behind by a rollback returns its
// result (RolledBackTo set) and an error wrapping ErrDeployNotCurrent.
func (c *Control) Deploy(ctx context.Context, app string, d events.Deploy, opts DeployOptions) (DeployResult, error) {
	o, err := c.execute(ctx, app, d, opts.IdempotencyKey)
	if err != nil {
		return DeployResult{}, err
	}
	res := DeployResult{RevisionID: o.RevisionID, Status: events.StatusDeploying, Sequence: o.LastSequence, Duplicate: o.Duplicate}
	res.Number = c.number(ctx, app, o.RevisionID, o.LastSequence)
	if !opts.Wait {
		return res, nil
	}
	c.progress("revision %s created; waiting for its first runner to listen", revisionLabel(res.Number, res.RevisionID))
	err = c.Events.FollowApp(ctx, app, o.FirstSequence, func(env events.Envelope, decodeErr error) error {
		switch ev := env.Event.(type) {
		case events.RunnerStateChanged:
			if ev.RevisionID == res.RevisionID {
				c.runnerStep(ev)
			}
		case events.RevisionDeployed:
			if ev.RevisionID == res.RevisionID {
				res.Status, res.Sequence = events.StatusDeployed, env.Sequence
				if ev.RolledBackTo != "" {
					// A set-rev while it deployed: no switch follows.
					res.RolledBackTo = ev.RolledBackTo
					return errSettled
				}
			}
		case events.CurrentRevisionSet:
			// A deployed revision becomes current in the same append: its
			// sequence is the one to read the deploy's whole effect at.
			if ev.To == res.RevisionID && res.Status == events.StatusDeployed {
				res.Sequence = env.Sequence
				return errSettled
			}
		case events.RevisionFailed:
			if ev.RevisionID == res.RevisionID {
				res.Status, res.Reason, res.Sequence = events.StatusFailed, ev.Reason, env.Sequence
				return errSettled
			}
		}
		return nil
	})
	if !errors.Is(err, errSettled) {
		return res, fmt.Errorf("waiting for revision %s: %w", res.RevisionID, err)
	}
	if res.Status == events.StatusFailed {
		return res, fmt.Errorf("revision %s: %w: %s", res.RevisionID, ErrDeployFailed, res.Reason)
	}
	if res.RolledBackTo != "" {
		res.RolledBackToNumber = c.number(ctx, app, res.RolledBackTo, res.Sequence)
		return res, fmt.Errorf("revision %s: %w: the app was rolled back to %s while it deployed",
			revisionLabel(res.Number, res.RevisionID), ErrDeployNotCurrent, revisionLabel(res.RolledBackToNumber, res.RolledBackTo))
	}
	return res, nil
}

// numberLookup bounds how long Deploy waits for the read model to tell a
// new revision's number: it is a courtesy, not worth delaying the answer.
const numberLookup = 2 * time.Second

// number returns the number of revision id of app from the read model at
// sequence seq or later, or 0 if it cannot tell within numberLookup.
func (c *Control) number(ctx context.Context, app, id string, seq uint64) uint64 {
	ctx, cancel := context.WithTimeout(ctx, numberLookup)
	defer cancel()
	rev, err := c.Reader.Revision(ctx, app, id, seq)
	if err != nil {
		return 0
	}
	return rev.Number
}

// errSettled stops following once the awaited event arrived.
var errSettled = errors.New("settled")

// SwitchResult is the result of SetRevision.
type SwitchResult struct {
	App        string               `json:"app"`
	RevisionID string               `json:"revision_id"`
	Number     uint64               `json:"number"`
	Status     events.OutcomeStatus `json:"status"`
	Message    string               `json:"message,omitempty"`
	Sequence   uint64               `json:"sequence,omitempty"`
	// ReadyRunners, with AwaitSwitch, is how many runners of the revision
	// serve once every other revision's runner is gone.
	ReadyRunners *int `json:"ready_runners,omitempty"`
}

// runnerPoll is how often the waits for runners look at them.
const runnerPoll = 250 * time.Millisecond

// runnerCensus counts an app's live runners against the revision they
// should run. The runner of a revision being deployed is left out: it is
// the deploy's (revline deploy waits for it), no capacity of the app, and
// a switch or a scale does not wait for a deploy in flight.
type runnerCensus struct {
	ready  int // of the revision, serving (idle or running)
	moving int // of another revision, or starting, backing off or stopping
	total  int
	// waitingOn says what a runner that is moving is doing, for an error.
	waitingOn string
}

func (c *Control) census(ctx context.Context, app, revisionID string, after uint64) (runnerCensus, error) {
	runners, err := queryapi.All(ctx, 0, func(ctx context.Context, p queryapi.PageRequest) (queryapi.Page[projections.RunnerView], error) {
		return c.Reader.Runners(ctx, app, queryapi.RunnerFilter{}, p, after)
	})
	if err != nil {
		return runnerCensus{}, err
	}
	deploying := map[string]bool{} // by revision id, asked once a census
	var n runnerCensus
	for _, r := range runners {
		if r.RevisionID != revisionID {
			d, asked := deploying[r.RevisionID]
			if !asked {
				rev, err := c.Reader.Revision(ctx, app, r.RevisionID, after)
				if err != nil {
					return runnerCensus{}, err
				}
				d = rev.Status == events.StatusDeploying
				deploying[r.RevisionID] = d
			}
			if d {
				continue
			}
		}
		n.total++
		switch {
		case r.RevisionID == revisionID && (r.State == events.RunnerIdle || r.State == events.RunnerRunning):
			n.ready++
		default:
			n.moving++
			n.waitingOn = fmt.Sprintf("runner %s of revision %s is %s", r.RunnerID, r.RevisionID, r.State)
			if r.Reason != "" {
				n.waitingOn += ": " + r.Reason
			}
		}
	}
	return n, nil
}

// awaitRunners takes a census of app's runners against revisionID every
// runnerPoll until done says the runners have settled, and returns the
// last census. ctx is one watchRunners watches: the wait fails at once
// when the runners keep failing, saying how. It fails when ctx ends first,
// saying what it waited for, or with done's error: what it waits for can
// no longer happen.
func (c *Control) awaitRunners(ctx context.Context, app, revisionID string, after uint64, done func(runnerCensus) (bool, error)) (runnerCensus, error) {
	for {
		n, err := c.census(ctx, app, revisionID, after)
		settled := false
		if err == nil {
			settled, err = done(n)
		}
		if failing := failure(ctx); failing != nil {
			return n, failing
		}
		if settled || err != nil {
			return n, err
		}
		select {
		case <-ctx.Done():
			if failing := failure(ctx); failing != nil {
				return n, failing
			}
			why := fmt.Sprintf("%d of %d runner(s) ready", n.ready, n.total)
			if n.waitingOn != "" {
				why += "; " + n.waitingOn
			}
			return n, fmt.Errorf("waiting for the runners of %s (%s): %w", app, why, ctx.Err())
		case <-time.After(runnerPoll):
		}
	}
}

// ErrSwitchOvertaken is wrapped by the error AwaitSwitch returns when the
// app's current revision moves away from the one it waits for (another
// set-rev, or a deploy requested after the switch): its runners will not
// settle on that revision.
var ErrSwitchOvertaken = errors.New("no longer the current revision")

// AwaitSwitch waits, after a switch to revisionID recorded at sequence
// after, until the app's runners have moved: no runner of another
// revision is left and none of revisionID is still starting (pending,
// setup, crash_backoff). It returns how many of revisionID then serve (0
// for an app scaled to zero). It fails when ctx ends first, and with an
// error wrapping ErrSwitchOvertaken as soon as revisionID is no longer the
// app's current revision, and with a *RunnersFailingError as soon as its
// runners have failed FailureLimit times.
func (c *Control) AwaitSwitch(ctx context.Context, app, revisionID string, after uint64) (int, error) {
	c.progress("waiting for the runners of %s to move to revision %s", app, revisionID)
	ctx, stop := c.watchRunners(ctx, app, revisionID, after)
	defer stop()
	n, err := c.awaitRunners(ctx, app, revisionID, after, func(n runnerCensus) (bool, error) {
		if err := c.stillCurrent(ctx, app, revisionID, after); err != nil {
			return false, err
		}
		return n.moving == 0, nil
	})
	return n.ready, err
}

// stillCurrent returns nil while revisionID is app's current revision in
// the read model at sequence after or later, and otherwise an error
// wrapping ErrSwitchOvertaken that names the revision current now.
func (c *Control) stillCurrent(ctx context.Context, app, revisionID string, after uint64) error {
	rev, err := c.Reader.Revision(ctx, app, revisionID, after)
	if err != nil {
		return err
	}
	if rev.Current {
		return nil
	}
	was := revisionLabel(rev.Number, rev.RevisionID)
	revisions, err := queryapi.All(ctx, 0, func(ctx context.Context, p queryapi.PageRequest) (queryapi.Page[projections.RevisionView], error) {
		return c.Reader.Revisions(ctx, app, p, after)
	})
	if err != nil {
		return err
	}
	now := "another revision"
	if i := slices.IndexFunc(revisions, func(r projections.RevisionView) bool { return r.Current }); i >= 0 {
		now = revisionLabel(revisions[i].Number, revisions[i].RevisionID)
	}
	return fmt.Errorf("waiting for the runners of %s to move to %s: %w: %s is current now (a set-rev or a deploy since)", app, was, ErrSwitchOvertaken, now)
}

// AwaitSettled waits, after a change recorded at sequence after (a scale,
// suspend or resume), until the app's runners have settled on it: for a
// suspended app, none is left; otherwise none is starting, backing off or
// stopping, all run the current revision, and at least min_concurrency of
// them serve. It returns how many serve. It fails with a
// *RunnersFailingError as soon as the current revision's runners have
// failed FailureLimit times (a crash loop), and when ctx ends first,
// saying what a runner was still doing.
func (c *Control) AwaitSettled(ctx context.Context, app string, after uint64) (int, error) {
	target, err := c.settleTarget(ctx, app, after)
	if err != nil {
		return 0, err
	}
	c.progress("waiting for the runners of %s to settle", app)
	ctx, stop := c.watchRunners(ctx, app, target.revisionID, after)
	defer stop()
	for {
		n, err := c.awaitRunners(ctx, app, target.revisionID, after, func(n runnerCensus) (bool, error) {
			// A deploy, set-rev, suspend or scale during the wait moves
			// what the runners settle on: the wait follows it.
			now, err := c.settleTarget(ctx, app, after)
			if err != nil {
				return false, err
			}
			if now != target {
				target = now
				return false, errTargetMoved
			}
			if target.suspended {
				return n.total == 0, nil
			}
			return n.moving == 0 && n.ready >= target.floor, nil
		})
		if errors.Is(err, errTargetMoved) {
			continue
		}
		return n.ready, err
	}
}

// errTargetMoved restarts AwaitSettled's wait on the app's new state.
var errTargetMoved = errors.New("the app changed during the wait")

// settleTarget is what an app's runners settle on: its current revision,
// whether it is suspended, and how many runners must serve.
type settleTarget struct {
	revisionID string
	suspended  bool
	floor      int
}

func (c *Control) settleTarget(ctx context.Context, app string, after uint64) (settleTarget, error) {
	revisions, err := queryapi.All(ctx, 0, func(ctx context.Context, p queryapi.PageRequest) (queryapi.Page[projections.RevisionView], error) {
		return c.Reader.Revisions(ctx, app, p, after)
	})
	if err != nil {
		return settleTarget{}, err
	}
	i := slices.IndexFunc(revisions, func(r projections.RevisionView) bool { return r.Current })
	if i < 0 {
		return settleTarget{}, fmt.Errorf("app %s has no current revision: nothing to wait for", app)
	}
	current := revisions[i]
	floor := current.RuntimeParams.MinConcurrency
	if limit := current.RuntimeParams.MaxConcurrency; limit > 0 {
		floor = min(floor, limit)
	}
	return settleTarget{revisionID: current.RevisionID, suspended: current.Status == events.StatusSuspended, floor: floor}, nil
}

// SetRevision makes ref the app's current revision (a rollback, or a
// roll-forward). Asking for the current revision is a no-op, reported in
// the result's Status and Message.
func (c *Control) SetRevision(ctx context.Context, app, ref string, strategy events.Strategy, message string) (SwitchResult, error) {
	rev, err := c.resolve(ctx, app, ref)
	if err != nil {
		return SwitchResult{}, err
	}
	o, err := c.execute(ctx, app, events.SetRevision{RevisionID: rev.RevisionID, Strategy: strategy, Message: message}, "")
	if err != nil {
		return SwitchResult{}, err
	}
	return SwitchResult{App: app, RevisionID: rev.RevisionID, Number: rev.Number, Status: o.Status, Message: o.Message, Sequence: o.LastSequence}, nil
}

// RolloutResult is the result of Rollout.
type RolloutResult struct {
	RolloutID       string `json:"rollout_id"`
	Force           bool   `json:"force"`
	Status          string `json:"status"` // requested, completed, failed, superseded
	Replaced        int    `json:"replaced"`
	DroppedRequests int    `json:"dropped_requests"`
	// Reason is why a failed rollout failed.
	Reason   string `json:"reason,omitempty"`
	Sequence uint64 `json:"sequence"`
}

// Rollout recycles every runner of the current revision and, with wait,
// waits until the runner worker reports it complete.
func (c *Control) Rollout(ctx context.Context, app string, force, wait bool) (RolloutResult, error) {
	o, err := c.execute(ctx, app, events.Rollout{Force: force}, "")
	if err != nil {
		return RolloutResult{}, err
	}
	res := RolloutResult{RolloutID: o.RolloutID, Force: force, Status: "requested", Sequence: o.LastSequence}
	if !wait {
		return res, nil
	}
	c.progress("rollout %s requested; replacing the runners", res.RolloutID)
	return c.AwaitRollout(ctx, app, res)
}

// AwaitRollout waits until rollout res.RolloutID of app, requested at or
// before event res.Sequence and not ended by then, ends or a newer
// rollout supersedes it, following the app's events after res.Sequence
// (and reporting the runners' steps to Progress meanwhile). It returns res
// with the end: status completed (with the runners replaced and requests
// dropped), failed (its replacements kept failing to start: with what it
// did, and the reason) or superseded, and the sequence of the event that
// said so. Runners that fail do not end the wait: the runner worker
// decides when the rollout has failed.
func (c *Control) AwaitRollout(ctx context.Context, app string, res RolloutResult) (RolloutResult, error) {
	err := c.Events.FollowApp(ctx, app, res.Sequence+1, func(env events.Envelope, decodeErr error) error {
		switch ev := env.Event.(type) {
		case events.RunnerStateChanged:
			c.runnerStep(ev)
		case events.RolloutCompleted:
			if ev.RolloutID == res.RolloutID {
				res.Status, res.Replaced, res.DroppedRequests, res.Sequence = "completed", ev.Replaced, ev.DroppedRequests, env.Sequence
				return errSettled
			}
		case events.RolloutFailed:
			if ev.RolloutID == res.RolloutID {
				res.Status, res.Replaced, res.DroppedRequests, res.Reason, res.Sequence = "failed", ev.Replaced, ev.DroppedRequests, ev.Reason, env.Sequence
				return errSettled
			}
		case events.RolloutRequested:
			res.Status, res.Sequence = "superseded", env.Sequence
			return errSettled
		}
		return nil
	})
	if !errors.Is(err, errSettled) {
		return res, fmt.Errorf("waiting for rollout %s: %w", res.RolloutID, err)
	}
	return res, nil
}

// DeleteResult is the result of DeleteRevision.
type DeleteResult struct {
	App        string `json:"app"`
	RevisionID string `json:"revision_id"`
	Number     uint64 `json:"number"`
	Sequence   uint64 `json:"sequence"`
}

// DeleteRevision removes a revision from the revision list (never from the
// audit log).
func (c *Control) DeleteRevision(ctx context.Context, app, ref string) (DeleteResult, error) {
	rev, err := c.resolve(ctx, app, ref)
	if err != nil {
		return DeleteResult{}, err
	}
	o, err := c.execute(ctx, app, events.DeleteRevision{RevisionID: rev.RevisionID}, "")
	if err != nil {
		return DeleteResult{}, err
	}
	return DeleteResult{App: app, RevisionID: rev.RevisionID, Number: rev.Number, Sequence: o.LastSequence}, nil
}

// ChangeResult is the result of Scale, Suspend and Resume.
type ChangeResult struct {
	App      string               `json:"app"`
	Status   events.OutcomeStatus `json:"status"`
	Message  string               `json:"message,omitempty"`
	Sequence uint64               `json:"sequence,omitempty"`
	// ReadyRunners, with AwaitSettled, is how many runners serve once the
	// change has settled.
	ReadyRunners *int `json:"ready_runners,omitempty"`
}

// Scale changes the app's runtime parameters, and the code parameters of
// its current revision until the next deploy or set-rev.
func (c *Control) Scale(ctx context.Context, app string, scale events.Scale) (ChangeResult, error) {
	return c.change(ctx, app, scale)
}

// Suspend stops the app's runners until Resume.
func (c *Control) Suspend(ctx context.Context, app string) (ChangeResult, error) {
	return c.change(ctx, app, events.Suspend{})
}

// Resume brings a suspended app back.
func (c *Control) Resume(ctx context.Context, app string) (ChangeResult, error) {
	return c.change(ctx, app, events.Resume{})
}

func (c *Control) change(ctx context.Context, app string, cmd events.Command) (ChangeResult, error) {
	o, err := c.execute(ctx, app, cmd, "")
	if err != nil {
		return ChangeResult{}, err
	}
	return ChangeResult{App: app, Status: o.Status, Message: o.Message, Sequence: o.LastSequence}, nil
}

// revisionLabel names a revision in a progress line: "v3", or its id when
// the number is not known.
func revisionLabel(number uint64, id string) string {
	if number == 0 {
		return id
	}
	return fmt.Sprintf("v%d", number)
}
