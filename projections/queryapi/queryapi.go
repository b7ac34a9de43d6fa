// Package queryapi serves the read models over NATS request-reply, so that
// the CLI and clients in any language can read what the server knows, and
// gives the server's HTTP API the same Reader in-process.
//
// Every query may carry min_sequence: the answer then reflects at least
// that stream sequence (the one a command's outcome returned), which is how
// a client reads its own writes.
//
// The lists (apps, revisions, runners) come in pages (Page), each small
// enough for one NATS message; All follows a list to its end. A page token
// names a position in the list, not an offset, so the pages neither skip
// nor repeat an item while the list changes: revisions created after the
// first page are newer, so they are not in later pages; a deleted one is
// simply no longer there.
//
// Runner logs (LogReader, RunnerLogs, LogDir) are read in pages too, by
// byte offset, from the server that runs the runners: the one whose query
// service was given WithRunnerLogs.
package queryapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections"
)

// SubjectPrefix is the prefix of the query subjects.
const SubjectPrefix = "revline.query."

// Query subjects' last tokens.
const (
	EndpointApps      = "apps"
	EndpointRevisions = "revisions"
	EndpointRevision  = "revision"
	EndpointRunners   = "runners"
	EndpointRollout   = "rollout"
	// EndpointRunnerLogs is answered only by the server that runs the
	// runners (see WithRunnerLogs).
	EndpointRunnerLogs = "runner_logs"
	// EndpointVersion answers the server's version (ServerVersion).
	EndpointVersion = "version"
)

// ServerVersion is the answer of EndpointVersion.
type ServerVersion struct {
	Version string `json:"version"`
}

// Error codes of failed queries.
const (
	CodeBadRequest  = "bad_request"
	CodeAppNotFound = "app_not_found"
	// CodeAppDeleted: the revision list of a deleted app; the message
	// says who deleted it and when.
	CodeAppDeleted          = aggregates.CodeAppDeleted
	CodeRevisionNotFound    = "revision_not_found"
	CodeAmbiguousRevision   = aggregates.CodeAmbiguousRevision
	CodeRevisionRefTooShort = aggregates.CodeRevisionRefTooShort
	CodeRolloutNotFound     = "rollout_not_found"
	CodeNotCaughtUp         = "not_caught_up"
	// CodeUnauthenticated: the query is unsigned, or its signature is not
	// a live token's (WithAuthorizer).
	CodeUnauthenticated = events.CodeUnauthenticated
	// CodeForbidden: the query is about an app its token may not view.
	CodeForbidden = events.CodeForbidden
	// CodeReplyTooLarge: the answer does not fit in one NATS message (a
	// single revision larger than the connection's max payload).
	CodeReplyTooLarge = "reply_too_large"
	// CodeInternal: the server failed to answer for a reason of its own.
	CodeInternal = "internal"
)

// Request is the body of every query (JSON). Fields a query does not use
// are ignored.
type Request struct {
	App string `json:"app,omitempty"`
	// Ref names a revision: its number (v3 or 3), its id or a unique id
	// prefix of at least 8 characters.
	Ref       string `json:"ref,omitempty"`
	RolloutID string `json:"rollout_id,omitempty"`
	// All includes terminated runners.
	All bool `json:"all,omitempty"`
	// State keeps only the runners in this runner state.
	State string `json:"state,omitempty"`
	// Limit is the most items a list page may hold: 1 to MaxPageSize, or
	// 0 (or none) for DefaultPageSize.
	Limit int `json:"limit,omitempty"`
	// PageToken is the previous page's next_page_token; none for the
	// first page.
	PageToken string `json:"page_token,omitempty"`
	// MinSequence makes the answer reflect at least this stream sequence.
	MinSequence uint64 `json:"min_sequence,omitempty"`
	// RunnerID names a runner (runner_logs): its full id, a UUID.
	RunnerID string `json:"runner_id,omitempty"`
	// Tail is how many of the log's last lines to return (runner_logs):
	// 0 to MaxLogTail; none for DefaultLogTail.
	Tail *int `json:"tail,omitempty"`
	// AfterOffset reads the log on from this byte offset (runner_logs),
	// instead of its tail.
	AfterOffset *int64 `json:"after_offset,omitempty"`

	// visible, set by the query service for the apps list, keeps the
	// apps the query's sender may view (PageRequest.Visible).
	visible func(app string) bool
}

// page returns the request's page fields.
func (q Request) page() PageRequest {
	return PageRequest{Limit: q.Limit, PageToken: q.PageToken, Visible: q.visible}
}

// Error is a failed query: a stable code and a sentence.
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string { return e.Message }

// RunnerFilter selects the runners a runner list holds.
type RunnerFilter struct {
	// All includes terminated runners; without it, and without State, the
	// list holds the runners that are not terminated.
	All bool
	// State, if set, keeps only the runners in this state (terminated
	// ones too if it is RunnerTerminated).
	State events.RunnerState
}

// Keeps reports whether the filter keeps runner r.
func (f RunnerFilter) Keeps(r projections.RunnerView) bool {
	if f.State != "" {
		return r.State == f.State
	}
	return f.All || !r.Terminated()
}

// RunnerFilterAll is the spelling of RunnerFilter{All: true} for
// ParseRunnerFilter.
const RunnerFilterAll = "all"

// ParseRunnerFilter reads a runner filter as the CLI's --state and the
// HTTP API's state parameter spell it: "" for the runners that are not
// terminated, RunnerFilterAll for every runner, or a runner state.
func ParseRunnerFilter(text string) (RunnerFilter, error) {
	switch text {
	case "":
		return RunnerFilter{}, nil
	case RunnerFilterAll:
		return RunnerFilter{All: true}, nil
	}
	state, err := events.ParseRunnerState(text)
	if err != nil {
		return RunnerFilter{}, fmt.Errorf("%w: want %s or a runner state (pending, setup, idle, running, draining, terminating, terminated, crash_backoff)", err, RunnerFilterAll)
	}
	return RunnerFilter{State: state}, nil
}

// Reader answers queries. Local reads an in-process model; Client asks a
// server over NATS. Errors are *Error where the query itself failed.
//
// Apps, Revisions and Runners return one page of their list: give the
// previous page's NextPageToken to get the next one, or use All.
// Revisions are listed newest first, runners oldest first, apps by name.
type Reader interface {
	Apps(ctx context.Context, page PageRequest, minSequence uint64) (Page[projections.AppView], error)
	Revisions(ctx context.Context, app string, page PageRequest, minSequence uint64) (Page[projections.RevisionView], error)
	Revision(ctx context.Context, app, ref string, minSequence uint64) (projections.RevisionView, error)
	Runners(ctx context.Context, app string, filter RunnerFilter, page PageRequest, minSequence uint64) (Page[projections.RunnerView], error)
	Rollout(ctx context.Context, app, rolloutID string, minSequence uint64) (projections.RolloutView, error)
}

// catchUpTimeout bounds how long a query waits for the model to reach
// MinSequence.
const catchUpTimeout = 10 * time.Second

// Local is a Reader over an in-process model.
type Local struct {
	Model *projections.RevisionHistory
	// Live, optional, adds what the data plane knows now (requests in
	// flight) to the runner views; without it they show the log alone.
	Live LiveState
	// LogEnd, optional, returns the event log's last sequence: a query
	// without a min_sequence then waits for the model to reach it, so
	// that every answer shows every write acknowledged before the query.
	LogEnd func(context.Context) (uint64, error)
	// Logs, optional, reads the runners' log files (RunnerLogs); without
	// it, runner log queries are CodeRunnerLogsUnavailable.
	Logs RunnerLogs
}

// LiveState is the data plane's view of runners: per-request facts that
// are never events.
type LiveState interface {
	// InFlight returns how many requests each runner of app is handling,
	// by runner id.
	InFlight(app string) map[string]int
	// KeepAliveExpiries returns when idle runners of app above the desired
	// count will be stopped for keep_alive if they stay idle, by runner id.
	KeepAliveExpiries(app string) map[string]time.Time
}

// withLiveState merges the requests in flight into runner views (an idle
// runner that has some is running) and the keep-alive countdown of idle
// ones.
func withLiveState(runners []projections.RunnerView, inFlight map[string]int, expiries map[string]time.Time) {
	for i, r := range runners {
		n := inFlight[r.RunnerID]
		runners[i].InFlight = n
		if n > 0 && r.State == events.RunnerIdle {
			runners[i].State = events.RunnerRunning
		}
		if at, ok := expiries[r.RunnerID]; ok && n == 0 && r.State == events.RunnerIdle {
			runners[i].ExpiresAt = &at
		}
	}
}

var _ Reader = Local{}

func (l Local) caughtUp(ctx context.Context, seq uint64) error {
	if seq == 0 && l.LogEnd != nil {
		// No sequence given: answer as of the log's end now, so that a
		// client reads what it wrote a moment ago in another call.
		end, err := l.LogEnd(ctx)
		if err != nil {
			return fmt.Errorf("the event log's end: %w", err)
		}
		seq = end
	}
	if seq == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	defer cancel()
	if err := l.Model.WaitFor(ctx, seq); err != nil {
		return &Error{Code: CodeNotCaughtUp, Message: fmt.Sprintf("the read model has not reached sequence %d yet (at %d)", seq, l.Model.Checkpoint())}
	}
	return nil
}

func (l Local) app(ctx context.Context, app string, seq uint64) error {
	if err := l.caughtUp(ctx, seq); err != nil {
		return err
	}
	if _, ok := l.Model.App(app); !ok {
		return &Error{Code: CodeAppNotFound, Message: fmt.Sprintf("app %q not found", app)}
	}
	return nil
}

// Apps implements Reader.
func (l Local) Apps(ctx context.Context, req PageRequest, seq uint64) (Page[projections.AppView], error) {
	c, err := appsOrder.cursor("", req)
	if err != nil {
		return Page[projections.AppView]{}, err
	}
	if err := l.caughtUp(ctx, c.minSequence(seq)); err != nil {
		return Page[projections.AppView]{}, err
	}
	// The checkpoint is read first: the list reflects at least it.
	at := l.Model.Checkpoint()
	apps := l.Model.Apps()
	if req.Visible != nil {
		apps = slices.DeleteFunc(slices.Clone(apps), func(a projections.AppView) bool { return !req.Visible(a.Name) })
	}
	return appsOrder.page("", apps, c, at)
}

// Revisions implements Reader.
func (l Local) Revisions(ctx context.Context, app string, req PageRequest, seq uint64) (Page[projections.RevisionView], error) {
	c, err := revisionsOrder.cursor(app, req)
	if err != nil {
		return Page[projections.RevisionView]{}, err
	}
	if err := l.app(ctx, app, c.minSequence(seq)); err != nil {
		return Page[projections.RevisionView]{}, err
	}
	if view, _ := l.Model.App(app); view.Deleted != nil {
		d := view.Deleted
		msg := fmt.Sprintf("app %q was deleted by %s at %s", app, d.By, d.At.UTC().Format(time.RFC3339))
		if d.Reason != "" {
			msg += ": " + d.Reason
		}
		return Page[projections.RevisionView]{}, &Error{Code: CodeAppDeleted, Message: msg + "; its history stays (apps history, audit), and a deploy starts it again"}
	}
	at := l.Model.Checkpoint()
	return revisionsOrder.page(app, l.Model.Revisions(app), c, at)
}

// Revision implements Reader.
func (l Local) Revision(ctx context.Context, app, ref string, seq uint64) (projections.RevisionView, error) {
	if err := l.app(ctx, app, seq); err != nil {
		return projections.RevisionView{}, err
	}
	id, err := l.Model.ResolveRevision(app, ref)
	if err != nil {
		return projections.RevisionView{}, resolveError(err)
	}
	rev, _ := l.Model.Revision(app, id)
	return rev, nil
}

func resolveError(err error) error {
	code := CodeRevisionNotFound
	switch {
	case errors.Is(err, aggregates.ErrAmbiguousRevision):
		code = CodeAmbiguousRevision
	case errors.Is(err, aggregates.ErrRevisionRefTooShort):
		code = CodeRevisionRefTooShort
	case errors.Is(err, projections.ErrAppNotFound):
		code = CodeAppNotFound
	}
	return &Error{Code: code, Message: err.Error()}
}

// Runners implements Reader.
func (l Local) Runners(ctx context.Context, app string, filter RunnerFilter, req PageRequest, seq uint64) (Page[projections.RunnerView], error) {
	if filter.State != "" {
		if _, err := events.ParseRunnerState(string(filter.State)); err != nil {
			return Page[projections.RunnerView]{}, &Error{Code: CodeBadRequest, Message: err.Error()}
		}
	}
	c, err := runnersOrder.cursor(app, req)
	if err != nil {
		return Page[projections.RunnerView]{}, err
	}
	if err := l.app(ctx, app, c.minSequence(seq)); err != nil {
		return Page[projections.RunnerView]{}, err
	}
	at := l.Model.Checkpoint()
	runners := l.Model.Runners(app, filter.All || filter.State == events.RunnerTerminated)
	if l.Live != nil {
		withLiveState(runners, l.Live.InFlight(app), l.Live.KeepAliveExpiries(app))
	}
	runners = slices.DeleteFunc(runners, func(r projections.RunnerView) bool { return !filter.Keeps(r) })
	return runnersOrder.page(app, runners, c, at)
}

// Rollout implements Reader.
func (l Local) Rollout(ctx context.Context, app, id string, seq uint64) (projections.RolloutView, error) {
	if err := l.app(ctx, app, seq); err != nil {
		return projections.RolloutView{}, err
	}
	ro, ok := l.Model.Rollout(app, id)
	if !ok {
		return projections.RolloutView{}, &Error{Code: CodeRolloutNotFound, Message: fmt.Sprintf("app %q has no rollout %s", app, id)}
	}
	return ro, nil
}
