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
	"github.com/revline/revline/projections/audit"
	"github.com/revline/revline/projections/queryapi"
)

// ProblemTypeBase prefixes a problem's code to make its type URI.
const ProblemTypeBase = "https://revline.dev/problems/"

// ProblemContentType is the media type of error responses (RFC 9457).
const ProblemContentType = "application/problem+json"

// Codes the API adds to those of the aggregate and the query API.
const (
	codeBadRequest       = queryapi.CodeBadRequest
	codeInvalidAppName   = events.CodeInvalidAppName
	codeDeployFailed     = "deploy_failed"
	codeTimeout          = "timeout"
	codeCanceled         = "canceled"
	codeInternal         = "internal"
	codeNotReady         = "not_ready"
	codeNotFound         = "not_found"
	codeMethodNotAllowed = "method_not_allowed"
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

func newProblem(status int, code, detail string) Problem {
	return Problem{Type: ProblemTypeBase + code, Title: title(code), Status: status, Detail: oneLine(detail), Code: code}
}

// title turns "revision_is_current" into "Revision is current".
func title(code string) string {
	t := strings.ReplaceAll(code, "_", " ")
	if t == "" {
		return t
	}
	return strings.ToUpper(t[:1]) + t[1:]
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
	)
	switch {
	case errors.As(err, &invalidName):
		return newProblem(http.StatusBadRequest, codeInvalidAppName, err.Error()), false
	case errors.As(err, &tooLarge):
		return newProblem(http.StatusRequestEntityTooLarge, codeBadRequest, err.Error()), false
	case errors.As(err, &bad):
		return newProblem(http.StatusBadRequest, codeBadRequest, bad.msg), false
	case errors.As(err, &rej):
		return newProblem(statusForCode(rej.Code, http.StatusConflict), rej.Code, rej.Message), false
	case errors.As(err, &queryErr):
		return newProblem(statusForCode(queryErr.Code, http.StatusInternalServerError), queryErr.Code, queryErr.Message), false
	case errors.As(err, &noHistory):
		return newProblem(http.StatusNotFound, aggregates.CodeAppNotFound, err.Error()), false
	case errors.Is(err, aggregates.ErrRevisionNotFound):
		return newProblem(http.StatusNotFound, aggregates.CodeRevisionNotFound, err.Error()), false
	case errors.Is(err, aggregates.ErrAmbiguousRevision):
		return newProblem(http.StatusBadRequest, aggregates.CodeAmbiguousRevision, err.Error()), false
	case errors.Is(err, aggregates.ErrRevisionRefTooShort):
		return newProblem(http.StatusBadRequest, aggregates.CodeRevisionRefTooShort, err.Error()), false
	case errors.Is(err, control.ErrDeployFailed):
		return newProblem(http.StatusUnprocessableEntity, codeDeployFailed, err.Error()), false
	case errors.Is(err, context.DeadlineExceeded):
		return newProblem(http.StatusGatewayTimeout, codeTimeout, "the request did not finish in time: "+err.Error()), false
	case errors.Is(err, context.Canceled):
		return newProblem(http.StatusServiceUnavailable, codeCanceled, "the request was canceled"), false
	}
	return newProblem(http.StatusInternalServerError, codeInternal, "internal error; the server log has the details"), true
}

// statusForCode maps a stable code to its HTTP status; def is for codes
// the table does not know.
func statusForCode(code string, def int) int {
	switch code {
	case aggregates.CodeInvalidArgument, queryapi.CodeBadRequest, events.CodeInvalidAppName,
		events.CodeMalformedCommand, events.CodeUnknownCommand, events.CodeMissingCommandID,
		queryapi.CodeAmbiguousRevision, queryapi.CodeRevisionRefTooShort:
		return http.StatusBadRequest
	case queryapi.CodeReplayRunning:
		return http.StatusConflict
	case queryapi.CodeBeyondLog:
		return http.StatusBadRequest
	case queryapi.CodeNotCaughtUp, queryapi.CodeRunnerLogsUnavailable:
		return http.StatusServiceUnavailable
	case events.CodeInternalError, events.CodeAppHistoryUnreadable:
		return http.StatusInternalServerError
	}
	if strings.HasSuffix(code, "_not_found") {
		return http.StatusNotFound
	}
	return def
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
