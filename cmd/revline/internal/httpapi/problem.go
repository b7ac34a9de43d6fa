package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/cmd/revline/internal/control"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/projections/audit"
	"github.com/revline/revline/projections/queryapi"
	"github.com/revline/revline/workers/webhooks"
)

// ProblemTypeBase prefixes a problem's code to make its type URI (the
// gateway's problems use the same).
const ProblemTypeBase = events.ProblemTypeBase

// ProblemContentType is the media type of error responses (RFC 9457).
const ProblemContentType = "application/problem+json"

// Codes the API adds to those of the aggregate and the query API.
const (
	codeBadRequest       = queryapi.CodeBadRequest
	codeInvalidAppName   = events.CodeInvalidAppName
	codeDeployFailed     = "deploy_failed"
	codeDeployNotCurrent = "deploy_not_current"
	codeRunnersFailing   = "runners_failing"
	codeTimeout          = "timeout"
	codeCanceled         = "canceled"
	codeInternal         = "internal"
	codeNotReady         = "not_ready"
	codeNotFound         = "not_found"
	codeMethodNotAllowed = "method_not_allowed"
	codeRequestTooLarge  = "request_too_large"
)

// Problem is an error response: an RFC 9457 problem document with the
// stable code clients branch on.
type Problem struct {
	// Type is ProblemTypeBase followed by Code.
	Type string `json:"type"`
	// Title is a short, fixed summary of the code.
	Title  string `json:"title"`
	Status int    `json:"status"`
	// Detail is one line saying what went wrong this time, and why.
	Detail string `json:"detail"`
	// Code is the stable machine-readable code, the same the CLI reports.
	Code string `json:"code"`
	// Instance is the request path.
	Instance string `json:"instance,omitempty"`
	// RevisionID names the revision a failed or timed-out deploy created.
	RevisionID string `json:"revision_id,omitempty"`
	// Sequence is the stream sequence of the deploy's last event; pass it
	// as min_sequence to read the failed revision back.
	Sequence uint64 `json:"sequence,omitempty"`
}

// newProblem makes the problem for code, with the HTTP status the
// catalogue of codes gives it (events.LookupCode).
func newProblem(code, detail string) Problem {
	return Problem{Type: events.ProblemType(code), Title: events.ProblemTitle(code), Status: statusForCode(code), Detail: oneLine(detail), Code: code}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// badRequestError is a request the API refuses before doing anything.
type badRequestError struct{ msg string }

// Error implements the error interface.
func (e *badRequestError) Error() string { return e.msg }

func badRequest(msg string) error { return &badRequestError{msg: msg} }

// deployError is an error of a deploy that created a revision.
type deployError struct {
	revisionID string
	sequence   uint64
	err        error
}

// Error implements the error interface.
func (e *deployError) Error() string { return e.err.Error() }

// Unwrap returns the underlying error, for errors.Is and errors.As.
func (e *deployError) Unwrap() error { return e.err }

// problemFor turns err into a problem, and reports whether the problem
// hides an internal error that should be logged.
func problemFor(err error) (Problem, bool) {
	p, internal := classify(err)
	var de *deployError
	if errors.As(err, &de) {
		p.RevisionID, p.Sequence = de.revisionID, de.sequence
	}
	return p, internal
}

func classify(err error) (Problem, bool) {
	var (
		invalidName *events.InvalidNameError
		bad         *badRequestError
		tooLarge    *http.MaxBytesError
		rej         *events.Rejection
		queryErr    *queryapi.Error
		noHistory   *audit.NoHistoryError
		badWebhook  *webhooks.InvalidError
	)
	switch {
	case errors.As(err, &invalidName):
		return newProblem(codeInvalidAppName, err.Error()), false
	case errors.As(err, &tooLarge), errors.Is(err, commandbus.ErrCommandTooLarge):
		return newProblem(codeRequestTooLarge, err.Error()), false
	case errors.As(err, &bad):
		return newProblem(codeBadRequest, bad.msg), false
	case errors.As(err, &rej):
		return newProblem(rej.Code, rej.Message), false
	case errors.As(err, &queryErr):
		return newProblem(queryErr.Code, queryErr.Message), false
	case errors.As(err, &noHistory):
		return newProblem(aggregates.CodeAppNotFound, err.Error()), false
	case errors.As(err, &badWebhook):
		return newProblem(aggregates.CodeInvalidArgument, err.Error()), false
	case errors.Is(err, webhooks.ErrNotFound):
		return newProblem(codeWebhookNotFound, err.Error()), false
	case errors.Is(err, aggregates.ErrRevisionNotFound):
		return newProblem(aggregates.CodeRevisionNotFound, err.Error()), false
	case errors.Is(err, aggregates.ErrAmbiguousRevision):
		return newProblem(aggregates.CodeAmbiguousRevision, err.Error()), false
	case errors.Is(err, aggregates.ErrRevisionRefTooShort):
		return newProblem(aggregates.CodeRevisionRefTooShort, err.Error()), false
	case errors.Is(err, control.ErrDeployFailed):
		return newProblem(codeDeployFailed, err.Error()), false
	case errors.Is(err, control.ErrDeployNotCurrent):
		return newProblem(codeDeployNotCurrent, err.Error()), false
	case errors.Is(err, control.ErrRunnersFailing):
		return newProblem(codeRunnersFailing, err.Error()), false
	case errors.Is(err, context.DeadlineExceeded):
		return newProblem(codeTimeout, "the request did not finish in time: "+err.Error()), false
	case errors.Is(err, context.Canceled):
		return newProblem(codeCanceled, "the request was canceled"), false
	}
	return newProblem(codeInternal, "internal error; the server log has the details"), true
}

// statusForCode is the HTTP status of code in the catalogue; a code the
// catalogue lacks (a test keeps that from happening) is a 500.
func statusForCode(code string) int {
	if spec, ok := events.LookupCode(code); ok {
		return spec.HTTPStatus
	}
	return http.StatusInternalServerError
}

// fail answers r with the problem err amounts to.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	p, internal := problemFor(err)
	switch {
	case internal:
		a.cfg.Logger.Error("http request failed", "method", r.Method, "path", r.URL.Path, "status", p.Status, "error", err)
	case p.Status >= http.StatusInternalServerError:
		a.cfg.Logger.Warn("http request failed", "method", r.Method, "path", r.URL.Path, "status", p.Status, "code", p.Code, "error", err)
	}
	a.writeProblem(w, r, p)
}

func (a *api) writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	p.Instance = r.URL.Path
	body, err := json.Marshal(p)
	if err != nil { // a Problem has only strings and an int
		a.cfg.Logger.Error("encode problem", "error", err)
		return
	}
	w.Header().Set("Content-Type", ProblemContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
}
