package audit

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections"
)

// Point is a point in the log: the events up to a stream sequence, or up
// to a time, or both (whichever comes first). Its zero value is the end of
// the log.
type Point struct {
	// Sequence, if not 0, keeps the events at or below it.
	Sequence uint64
	// Time, if not zero, keeps the events that occurred at or before it,
	// stopping at the first that occurred after it.
	Time time.Time
}

// String says where p is, for messages.
func (p Point) String() string {
	switch {
	case p.Sequence != 0 && !p.Time.IsZero():
		return fmt.Sprintf("event %d or %s, whichever is first", p.Sequence, p.Time.Format(time.RFC3339))
	case p.Sequence != 0:
		return fmt.Sprintf("event %d", p.Sequence)
	case !p.Time.IsZero():
		return p.Time.Format(time.RFC3339)
	}
	return "now"
}

// Revisions is an app's revision list as it was at a point of the log.
type Revisions struct {
	App string `json:"app"`
	// Sequence and Time are those of the app's last event up to the point.
	Sequence  uint64                     `json:"sequence"`
	Time      time.Time                  `json:"time"`
	Revisions []projections.RevisionView `json:"revisions"`
}

// listing gathers, beside the fold, what a revision list shows that the
// decider does not keep: annotations, fail reasons, the runtime a revision
// last ran with, and the runners.
// Its fields are exported for time travel's snapshots (snapshots.go).
type listing struct {
	Annotations map[string]map[string]string
	FailReasons map[string]string
	// RolledBackTo: revisions deployed but left behind by a set-rev, until
	// made current.
	RolledBackTo map[string]string
	LastRuntime  map[string]events.RuntimeParams
	Runners      map[string]*projections.RunnerView
}

func newListing() *listing {
	return &listing{
		Annotations: map[string]map[string]string{}, FailReasons: map[string]string{}, RolledBackTo: map[string]string{},
		LastRuntime: map[string]events.RuntimeParams{}, Runners: map[string]*projections.RunnerView{},
	}
}

func (l *listing) observe(before aggregates.App, env events.Envelope) {
	switch ev := env.Event.(type) {
	case events.RevisionCreated:
		l.Annotations[ev.RevisionID] = ev.Annotations
	case events.RevisionFailed:
		l.FailReasons[ev.RevisionID] = ev.Reason
	case events.RevisionDeployed:
		if ev.RolledBackTo != "" {
			l.RolledBackTo[ev.RevisionID] = ev.RolledBackTo
		}
	case events.CurrentRevisionSet:
		delete(l.RolledBackTo, ev.To)
		if before.Current != "" {
			l.LastRuntime[before.Current] = before.Runtime
		}
	case events.RunnerStateChanged:
		r, ok := l.Runners[ev.RunnerID]
		if !ok {
			r = &projections.RunnerView{RunnerID: ev.RunnerID, StartedAt: env.OccurredAt}
			l.Runners[ev.RunnerID] = r
		}
		r.ApplyReport(ev, env.OccurredAt)
	}
}

// RevisionsAt returns app's revision list (what `apps list-rev` showed)
// as it was at p, folded from the log with aggregates.Evolve: newest
// first, deleted revisions left out, the current one with the app's
// effective parameters then. Runner counts come from the runners'
// reports; the live state (requests in flight) of that time is not in the
// log. An app without events up to p is a *NoHistoryError.
func RevisionsAt(ctx context.Context, log Log, app string, p Point) (Revisions, error) {
	f, err := foldApp(ctx, log, app, p)
	if err != nil {
		return Revisions{}, err
	}
	state, l := f.App, f.Listing
	counts := projections.CountRunners(maps.Values(l.Runners))
	out := Revisions{App: app, Sequence: f.Last, Time: f.LastAt, Revisions: []projections.RevisionView{}}
	for _, r := range state.Revisions {
		if r.Deleted {
			continue
		}
		v := projections.RevisionView{
			Number: r.Number, RevisionID: r.ID, Status: r.Status, Current: r.ID == state.Current,
			CreatedAt: r.CreatedAt, CreatedBy: r.CreatedBy, CodeParams: r.Code, RuntimeParams: r.Runtime,
			Message: r.Message, Annotations: map[string]string{}, Command: r.Command,
			FailReason: l.FailReasons[r.ID], RolledBackTo: l.RolledBackTo[r.ID],
		}
		v.SetRunners(counts[r.ID])
		maps.Copy(v.Annotations, l.Annotations[r.ID])
		if rt, ok := l.LastRuntime[r.ID]; ok {
			v.RuntimeParams = rt
		}
		if v.Current {
			v.CodeParams, v.RuntimeParams = state.Code, state.Runtime
			if state.Suspended {
				v.Status = events.StatusSuspended
			}
		}
		out.Revisions = append(out.Revisions, v)
	}
	slices.SortFunc(out.Revisions, func(a, b projections.RevisionView) int { return cmp.Compare(b.Number, a.Number) })
	return out, nil
}

// Runners is an app's runners as they were at a point of the log.
type Runners struct {
	App string `json:"app"`
	// Sequence and Time are those of the app's last event up to the point.
	Sequence uint64                   `json:"sequence"`
	Time     time.Time                `json:"time"`
	Runners  []projections.RunnerView `json:"runners"`
}

// RunnersAt returns every runner app had reported up to p, terminated
// ones too, as `apps runners` listed them then (oldest first): folded from
// the runners' reports in the log. Requests in flight are live state,
// never in the log, so InFlight is 0. An app without events up to p is a
// *NoHistoryError.
func RunnersAt(ctx context.Context, log Log, app string, p Point) (Runners, error) {
	f, err := foldApp(ctx, log, app, p)
	if err != nil {
		return Runners{}, err
	}
	l := f.Listing
	out := Runners{App: app, Sequence: f.Last, Time: f.LastAt, Runners: make([]projections.RunnerView, 0, len(l.Runners))}
	for _, r := range l.Runners {
		out.Runners = append(out.Runners, *r)
	}
	projections.SortRunners(out.Runners)
	return out, nil
}

// CurrentAt returns app's current revision as it was at p, as
// RevisionsAt lists it, with the sequence of the app's last event up to
// p. It is an error if the app had no current revision then.
func CurrentAt(ctx context.Context, log Log, app string, p Point) (projections.RevisionView, uint64, error) {
	then, err := RevisionsAt(ctx, log, app, p)
	if err != nil {
		return projections.RevisionView{}, 0, err
	}
	for _, r := range then.Revisions {
		if r.Current {
			return r, then.Sequence, nil
		}
	}
	return projections.RevisionView{}, 0, fmt.Errorf("app %q had no current revision at %s", app, p)
}
