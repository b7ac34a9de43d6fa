// Package queryapi serves the read models over NATS request-reply, so that
// the CLI and clients in any language can read what the server knows, and
// gives the server's HTTP API the same Reader in-process.
//
// Every query may carry min_sequence: the answer then reflects at least
// that stream sequence (the one a command's outcome returned), which is how
// a client reads its own writes.
package queryapi

import (
	"context"
	"errors"
	"fmt"
	"time"

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
)

// Error codes of failed queries.
const (
	CodeBadRequest          = "bad_request"
	CodeAppNotFound         = "app_not_found"
	CodeRevisionNotFound    = "revision_not_found"
	CodeAmbiguousRevision   = "ambiguous_revision"
	CodeRevisionRefTooShort = "revision_ref_too_short"
	CodeRolloutNotFound     = "rollout_not_found"
	CodeNotCaughtUp         = "not_caught_up"
)

// Request is the body of every query (JSON). Fields a query does not use
// are ignored.
type Request struct {
	App string `json:"app,omitempty"`
	// Ref names a revision: its id or a unique prefix of at least 8 characters.
	Ref       string `json:"ref,omitempty"`
	RolloutID string `json:"rollout_id,omitempty"`
	// All includes terminated runners.
	All bool `json:"all,omitempty"`
	// MinSequence makes the answer reflect at least this stream sequence.
	MinSequence uint64 `json:"min_sequence,omitempty"`
}

// Error is a failed query: a stable code and a sentence.
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string { return e.Message }

// Reader answers queries. Local reads an in-process model; Client asks a
// server over NATS. Errors are *Error where the query itself failed.
type Reader interface {
	Apps(ctx context.Context, minSequence uint64) ([]projections.AppView, error)
	Revisions(ctx context.Context, app string, minSequence uint64) ([]projections.RevisionView, error)
	Revision(ctx context.Context, app, ref string, minSequence uint64) (projections.RevisionView, error)
	Runners(ctx context.Context, app string, all bool, minSequence uint64) ([]projections.RunnerView, error)
	Rollout(ctx context.Context, app, rolloutID string, minSequence uint64) (projections.RolloutView, error)
}

// catchUpTimeout bounds how long a query waits for the model to reach
// MinSequence.
const catchUpTimeout = 10 * time.Second

// Local is a Reader over an in-process model.
type Local struct {
	Model *projections.RevisionHistory
}

var _ Reader = Local{}

func (l Local) caughtUp(ctx context.Context, seq uint64) error {
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
func (l Local) Apps(ctx context.Context, seq uint64) ([]projections.AppView, error) {
	if err := l.caughtUp(ctx, seq); err != nil {
		return nil, err
	}
	return l.Model.Apps(), nil
}

// Revisions implements Reader.
func (l Local) Revisions(ctx context.Context, app string, seq uint64) ([]projections.RevisionView, error) {
	if err := l.app(ctx, app, seq); err != nil {
		return nil, err
	}
	return l.Model.Revisions(app), nil
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
	case errors.Is(err, projections.ErrAmbiguousRevision):
		code = CodeAmbiguousRevision
	case errors.Is(err, projections.ErrRevisionRefTooShort):
		code = CodeRevisionRefTooShort
	case errors.Is(err, projections.ErrAppNotFound):
		code = CodeAppNotFound
	}
	return &Error{Code: code, Message: err.Error()}
}

// Runners implements Reader.
func (l Local) Runners(ctx context.Context, app string, all bool, seq uint64) ([]projections.RunnerView, error) {
	if err := l.app(ctx, app, seq); err != nil {
		return nil, err
	}
	return l.Model.Runners(app, all), nil
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
