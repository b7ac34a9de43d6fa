package projections

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
)

// RevisionHistory is the read model behind `apps list`, `apps list-rev` and
// `apps runners`: every app's revisions, runners, rollouts and last alias
// move, folded from the event log.
//
// It is fed in stream order by Apply (or by Run, which follows a store) and
// is idempotent: an event at or below Checkpoint is ignored. It is safe for
// concurrent use; queries return copies.
type RevisionHistory struct {
	mu         sync.RWMutex
	checkpoint uint64
	skipped    uint64
	// lastEventID is the id of the event at checkpoint, "" if that one was
	// skipped (Snapshot records it).
	lastEventID string
	// advanced is closed and replaced each time the checkpoint moves, to
	// wake WaitFor.
	advanced chan struct{}
	apps     map[string]*appRecord
	// generation counts the contents the model has had (Replay).
	generation uint64
	// replaying is held by the one Replay of the model that may run.
	replaying sync.Mutex
	// applying is held by Apply and Skip, and by Replay while it switches
	// generations, so that the checkpoint holds still then while queries
	// go on. It is taken before mu.
	applying sync.Mutex
}

type appRecord struct {
	name      string
	current   string
	runtime   events.RuntimeParams
	code      events.CodeParams // effective code of the current revision
	suspended bool
	updatedAt time.Time
	updatedBy string
	revisions map[string]*revisionRecord
	runners   map[string]*RunnerView
	rollouts  map[string]*RolloutView
	// activeRollout is the id of the rollout in progress, "" if none.
	activeRollout string
	lastSwitch    *SwitchView
	// lastNumber is the highest revision number given so far.
	lastNumber uint64
	// deleted is the app's deletion, until a deploy starts it again.
	deleted *DeletionView
}

type revisionRecord struct {
	id          string
	number      uint64
	createdAt   time.Time
	createdBy   string
	status      events.RevisionStatus
	deleted     bool
	command     string
	code        events.CodeParams
	message     string
	annotations map[string]string
	failReason  string
	// rolledBackTo: the revision a set-rev made current while this one
	// deployed (revision.deployed's rolled_back_to).
	rolledBackTo string
	// requested is the runtime the deploy asked for; lastRuntime the one in
	// effect when the revision last stopped being current (valid once
	// wasCurrent; the current revision shows the app's runtime instead).
	requested   events.RuntimeParams
	lastRuntime events.RuntimeParams
	wasCurrent  bool
}

// NewRevisionHistory returns an empty model at checkpoint 0.
func NewRevisionHistory() *RevisionHistory {
	return &RevisionHistory{advanced: make(chan struct{}), apps: map[string]*appRecord{}, generation: 1}
}

// Apply folds one stored event into the model and reports whether it did.
// An event whose Sequence is not above Checkpoint (already applied, or
// never stored: Sequence 0) is ignored. An event the model has no use for
// still advances the checkpoint.
func (m *RevisionHistory) Apply(env events.Envelope) bool {
	m.applying.Lock()
	defer m.applying.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if env.Sequence <= m.checkpoint {
		return false
	}
	m.apply(env)
	m.lastEventID = env.EventID
	m.advance(env.Sequence)
	return true
}

// Skip moves the checkpoint past seq without applying anything, for an
// event that cannot be decoded. It reports false if seq was already behind
// the checkpoint.
func (m *RevisionHistory) Skip(seq uint64) bool {
	m.applying.Lock()
	defer m.applying.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if seq <= m.checkpoint {
		return false
	}
	m.skipped++
	m.lastEventID = ""
	m.advance(seq)
	return true
}

// Handle is the events.FollowFunc that feeds the model: it applies env, or
// skips its sequence when decodeErr is set. It never fails.
func (m *RevisionHistory) Handle(env events.Envelope, decodeErr error) error {
	if decodeErr != nil {
		m.Skip(env.Sequence)
		return nil
	}
	m.Apply(env)
	return nil
}

// Checkpoint returns the stream sequence of the last event applied or skipped.
func (m *RevisionHistory) Checkpoint() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.checkpoint
}

// Skipped returns how many undecodable events were skipped.
func (m *RevisionHistory) Skipped() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.skipped
}

// WaitFor blocks until Checkpoint() >= seq, so that a client reads its own
// write, or until ctx ends; it then returns an error wrapping ctx.Err().
func (m *RevisionHistory) WaitFor(ctx context.Context, seq uint64) error {
	for {
		m.mu.RLock()
		checkpoint, advanced := m.checkpoint, m.advanced
		m.mu.RUnlock()
		if checkpoint >= seq {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("revision history: wait for sequence %d (at %d): %w", seq, checkpoint, ctx.Err())
		case <-advanced:
		}
	}
}

// advance sets the checkpoint and wakes waiters. m.mu must be held.
func (m *RevisionHistory) advance(seq uint64) {
	m.checkpoint = seq
	close(m.advanced)
	m.advanced = make(chan struct{})
}

// apply folds env in. m.mu must be held.
func (m *RevisionHistory) apply(env events.Envelope) {
	if env.Event == nil || events.ValidateAppName(env.App) != nil {
		return // no app's (the webhooks aggregate's, events.WebhooksAggregate)
	}
	app := m.apps[env.App]
	if app == nil {
		app = &appRecord{
			name:      env.App,
			revisions: map[string]*revisionRecord{},
			runners:   map[string]*RunnerView{},
			rollouts:  map[string]*RolloutView{},
		}
		m.apps[env.App] = app
	}
	if _, runnerReport := env.Event.(events.RunnerStateChanged); !runnerReport {
		app.updatedAt = env.OccurredAt
		app.updatedBy = app.requester(env)
	}
	// rev returns the named revision or a throwaway one, so that an event
	// about an unknown revision changes nothing.
	rev := func(id string) *revisionRecord {
		if r, ok := app.revisions[id]; ok {
			return r
		}
		return &revisionRecord{}
	}
	switch ev := env.Event.(type) {
	case events.RevisionCreated:
		if _, exists := app.revisions[ev.RevisionID]; exists || ev.RevisionID == "" {
			return
		}
		number := aggregates.RevisionNumber(ev, app.lastNumber)
		app.lastNumber = max(app.lastNumber, number)
		app.deleted = nil
		app.revisions[ev.RevisionID] = &revisionRecord{
			id: ev.RevisionID, number: number, createdAt: env.OccurredAt, createdBy: env.Actor,
			status: events.StatusDeploying, command: ev.Command, code: ev.Code,
			message: ev.Message, annotations: maps.Clone(ev.Annotations), requested: ev.Runtime,
		}
	case events.RevisionDeployed:
		r := rev(ev.RevisionID)
		r.status, r.rolledBackTo = events.StatusDeployed, ev.RolledBackTo
	case events.RevisionFailed:
		r := rev(ev.RevisionID)
		r.status = events.StatusFailed
		r.failReason = ev.Reason
	case events.RevisionDeleted:
		rev(ev.RevisionID).deleted = true
	case events.CurrentRevisionSet:
		// Made current at last: no longer a revision left behind.
		rev(ev.To).rolledBackTo = ""
		// The outgoing revision keeps the runtime it last ran with.
		rev(app.current).lastRuntime = app.runtime
		app.current = ev.To
		app.runtime = ev.Runtime
		app.code = ev.Code
		rev(ev.To).wasCurrent = true
		app.lastSwitch = &SwitchView{
			From: ev.From, To: ev.To, Reason: ev.Reason, Strategy: ev.Strategy, Message: ev.Message,
			Code: ev.Code, Runtime: ev.Runtime,
			Inherited: append([]string{}, ev.Inherited...), InheritedFrom: ev.InheritedFrom,
			At: env.OccurredAt, By: env.Actor, Sequence: env.Sequence,
		}
	case events.AppScaled:
		app.runtime = ev.After
		app.code = ev.CodeAfterFrom(app.code)
	case events.AppSuspended:
		app.suspended = true
	case events.AppResumed:
		app.suspended = false
	case events.AppDeleted:
		app.remove(env)
	case events.RolloutRequested:
		if prev, ok := app.rollouts[app.activeRollout]; ok && prev.RolloutID != ev.RolloutID {
			prev.Status = RolloutSuperseded
			prev.SupersededBy = ev.RolloutID
		}
		app.activeRollout = ev.RolloutID
		app.rollouts[ev.RolloutID] = &RolloutView{
			RolloutID: ev.RolloutID, RevisionID: ev.RevisionID, Force: ev.Force,
			Status: RolloutActive, RequestedAt: env.OccurredAt, RequestedBy: env.Actor,
		}
	case events.RolloutCompleted:
		app.endRollout(ev, RolloutCompleted, "", env.OccurredAt)
	case events.RolloutFailed:
		ended := events.RolloutCompleted{RolloutID: ev.RolloutID, RevisionID: ev.RevisionID, Force: ev.Force, Replaced: ev.Replaced, DroppedRequests: ev.DroppedRequests}
		app.endRollout(ended, RolloutFailed, ev.Reason, env.OccurredAt)
	case events.RunnerStateChanged:
		r, ok := app.runners[ev.RunnerID]
		if !ok {
			r = &RunnerView{RunnerID: ev.RunnerID, StartedAt: env.OccurredAt}
			app.runners[ev.RunnerID] = r
		}
		r.ApplyReport(ev, env.OccurredAt)
	}
}

// Apps returns every app but the deleted ones, sorted by name.
func (m *RevisionHistory) Apps() []AppView {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]AppView, 0, len(m.apps))
	for _, app := range m.apps {
		if app.deleted == nil {
			out = append(out, app.view())
		}
	}
	slices.SortFunc(out, func(a, b AppView) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// App returns one app, a deleted one too (Deleted set).
func (m *RevisionHistory) App(name string) (AppView, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	app, ok := m.apps[name]
	if !ok {
		return AppView{}, false
	}
	return app.view(), true
}

// Revisions returns the app's revisions that are not deleted, newest first
// (by number). It returns nil for an unknown app.
func (m *RevisionHistory) Revisions(appName string) []RevisionView {
	m.mu.RLock()
	defer m.mu.RUnlock()
	app, ok := m.apps[appName]
	if !ok {
		return nil
	}
	counts := app.runnerCounts()
	out := make([]RevisionView, 0, len(app.revisions))
	for _, r := range app.revisions {
		if !r.deleted {
			out = append(out, app.revisionView(r, counts))
		}
	}
	slices.SortFunc(out, func(a, b RevisionView) int { return cmp.Compare(b.Number, a.Number) })
	return out
}

// Revision returns one revision by its full id, deleted or not.
func (m *RevisionHistory) Revision(appName, id string) (RevisionView, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	app, ok := m.apps[appName]
	if !ok {
		return RevisionView{}, false
	}
	r, ok := app.revisions[id]
	if !ok {
		return RevisionView{}, false
	}
	return app.revisionView(r, app.runnerCounts()), true
}

// Runners returns the app's runners, oldest first (by first report, then
// by id). Terminated runners are left out unless includeTerminated.
func (m *RevisionHistory) Runners(appName string, includeTerminated bool) []RunnerView {
	m.mu.RLock()
	defer m.mu.RUnlock()
	app, ok := m.apps[appName]
	if !ok {
		return nil
	}
	out := make([]RunnerView, 0, len(app.runners))
	for _, r := range app.runners {
		if includeTerminated || !r.Terminated() {
			out = append(out, *r)
		}
	}
	SortRunners(out)
	return out
}

// SortRunners sorts runners as Runners lists them: oldest first (by first
// report, then by id).
func SortRunners(runners []RunnerView) {
	slices.SortFunc(runners, func(a, b RunnerView) int {
		if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.RunnerID, b.RunnerID)
	})
}

// Rollout returns one rollout of the app.
func (m *RevisionHistory) Rollout(appName, id string) (RolloutView, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	app, ok := m.apps[appName]
	if !ok {
		return RolloutView{}, false
	}
	ro, ok := app.rollouts[id]
	if !ok {
		return RolloutView{}, false
	}
	return *ro, true
}

// Rollouts returns the app's rollouts, newest first (by request time, then
// by id).
func (m *RevisionHistory) Rollouts(appName string) []RolloutView {
	m.mu.RLock()
	defer m.mu.RUnlock()
	app, ok := m.apps[appName]
	if !ok {
		return nil
	}
	out := make([]RolloutView, 0, len(app.rollouts))
	for _, ro := range app.rollouts {
		out = append(out, *ro)
	}
	slices.SortFunc(out, func(a, b RolloutView) int {
		if c := b.RequestedAt.Compare(a.RequestedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.RolloutID, a.RolloutID)
	})
	return out
}

// ActiveRollout returns the app's rollout in progress, if any.
func (m *RevisionHistory) ActiveRollout(appName string) (RolloutView, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	app, ok := m.apps[appName]
	if !ok || app.activeRollout == "" {
		return RolloutView{}, false
	}
	return *app.rollouts[app.activeRollout], true
}

// LastSwitch returns the app's last alias move (deploy or rollback) with
// where its parameters came from.
func (m *RevisionHistory) LastSwitch(appName string) (SwitchView, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	app, ok := m.apps[appName]
	if !ok || app.lastSwitch == nil {
		return SwitchView{}, false
	}
	sw := *app.lastSwitch
	sw.Inherited = slices.Clone(sw.Inherited)
	return sw, true
}

// endRollout records the end of a rollout: completed, or failed for
// reason, at at, with what it counted.
func (a *appRecord) endRollout(ev events.RolloutCompleted, status RolloutStatus, reason string, at time.Time) {
	ro, ok := a.rollouts[ev.RolloutID]
	if !ok {
		ro = &RolloutView{RolloutID: ev.RolloutID, RevisionID: ev.RevisionID, Force: ev.Force}
		a.rollouts[ev.RolloutID] = ro
	}
	ro.Status = status
	ro.Reason = reason
	ro.SupersededBy = ""
	ro.CompletedAt = at
	ro.Replaced = ev.Replaced
	ro.DroppedRequests = ev.DroppedRequests
	if a.activeRollout == ev.RolloutID {
		a.activeRollout = ""
	}
}

// rolloutRequester is who requested rollout id, or "" if unknown.
func (a *appRecord) rolloutRequester(id string) string {
	if ro, ok := a.rollouts[id]; ok {
		return ro.RequestedBy
	}
	return ""
}

// requester is who asked for what env records (AppView.UpdatedBy), from
// the app as it was before env.
func (a *appRecord) requester(env events.Envelope) string {
	var by string
	switch ev := env.Event.(type) {
	case events.RevisionDeployed:
		by = a.createdBy(ev.RevisionID)
	case events.RevisionFailed:
		by = a.createdBy(ev.RevisionID)
	case events.CurrentRevisionSet:
		if ev.Reason == "deploy" {
			by = a.createdBy(ev.To)
		}
	case events.RolloutCompleted:
		by = a.rolloutRequester(ev.RolloutID)
	case events.RolloutFailed:
		by = a.rolloutRequester(ev.RolloutID)
	}
	if by == "" {
		return env.Actor
	}
	return by
}

// createdBy is who asked for revision id, "" if the app has no such
// revision.
func (a *appRecord) createdBy(id string) string {
	if r, ok := a.revisions[id]; ok {
		return r.createdBy
	}
	return ""
}

// remove folds the app's deletion in: no current revision, no revision
// in the list, no rollout in progress. Its runners stay until reported
// terminated; what a deploy then makes starts from the next number.
func (a *appRecord) remove(env events.Envelope) {
	ev := env.Event.(events.AppDeleted)
	if r, ok := a.revisions[a.current]; ok {
		r.lastRuntime = a.runtime
	}
	for _, r := range a.revisions {
		r.deleted = true
	}
	if ro, ok := a.rollouts[a.activeRollout]; ok && ro.Status == RolloutActive {
		ro.Status = RolloutSuperseded
	}
	a.current, a.suspended, a.activeRollout = "", false, ""
	a.runtime, a.code = events.RuntimeParams{}, events.CodeParams{}
	a.deleted = &DeletionView{At: env.OccurredAt, By: env.Actor, Reason: ev.Reason, Sequence: env.Sequence}
}

func (a *appRecord) view() AppView {
	v := AppView{
		Name: a.name, CurrentRevision: a.current, RuntimeParams: a.runtime,
		Suspended: a.suspended, UpdatedAt: a.updatedAt, UpdatedBy: a.updatedBy,
	}
	if a.deleted != nil {
		deleted := *a.deleted
		v.Deleted = &deleted
	}
	for _, r := range a.revisions {
		if !r.deleted {
			v.Revisions++
		}
	}
	for _, r := range a.runners {
		if !r.Terminated() {
			v.Runners++
		}
	}
	return v
}

// RevisionRunners is what a revision's live runners say of it: how many
// there are, how many wait to restart after a crash, their crashes so far
// and the latest one's reason.
type RevisionRunners struct {
	Live, CrashBackoff, Restarts int
	LastCrash                    string
	lastCrashAt                  time.Time
}

// CountRunners sums up runners (terminated ones left out) by revision.
func CountRunners(runners iter.Seq[*RunnerView]) map[string]RevisionRunners {
	counts := map[string]RevisionRunners{}
	for r := range runners {
		if r.Terminated() {
			continue
		}
		c := counts[r.RevisionID]
		c.Live++
		c.Restarts += r.Restarts
		if r.State == events.RunnerCrashBackoff {
			c.CrashBackoff++
		}
		if r.LastCrash != "" && !r.UpdatedAt.Before(c.lastCrashAt) {
			c.LastCrash, c.lastCrashAt = r.LastCrash, r.UpdatedAt
		}
		counts[r.RevisionID] = c
	}
	return counts
}

// SetRunners fills in what the revision's live runners say of it.
func (v *RevisionView) SetRunners(c RevisionRunners) {
	v.Runners, v.CrashBackoff, v.Restarts, v.LastCrash = c.Live, c.CrashBackoff, c.Restarts, c.LastCrash
}

// runnerCounts sums up the live runners of each revision.
func (a *appRecord) runnerCounts() map[string]RevisionRunners {
	return CountRunners(maps.Values(a.runners))
}

func (a *appRecord) revisionView(r *revisionRecord, runnerCounts map[string]RevisionRunners) RevisionView {
	current := r.id == a.current
	v := RevisionView{
		Number: r.number, RevisionID: r.id, Status: r.status, Current: current,
		CreatedAt: r.createdAt, CreatedBy: r.createdBy,
		CodeParams: r.code, RuntimeParams: r.requested,
		Message: r.message, Annotations: map[string]string{}, Command: r.command,
		FailReason: r.failReason, RolledBackTo: r.rolledBackTo, Deleted: r.deleted,
	}
	v.SetRunners(runnerCounts[r.id])
	maps.Copy(v.Annotations, r.annotations)
	switch {
	case current:
		v.RuntimeParams = a.runtime
		v.CodeParams = a.code
		if a.suspended {
			v.Status = events.StatusSuspended
		}
	case r.wasCurrent:
		v.RuntimeParams = r.lastRuntime
	}
	return v
}
