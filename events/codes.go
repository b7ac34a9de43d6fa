package events

import (
	"net/http"
	"strings"
)

// CodeKind says what a stable code answers, and so how the CLI exits on it.
type CodeKind string

// The kinds of codes.
const (
	// KindRejected is a command the server refused: nothing changed.
	KindRejected CodeKind = "rejected"
	// KindNoOp is a command that asked for what was already true.
	KindNoOp CodeKind = "noop"
	// KindError is a query or HTTP request that failed.
	KindError CodeKind = "error"
	// KindGateway is a request to an app that the gateway could not
	// serve: no command or query answers it, so no CLI exits on it.
	KindGateway CodeKind = "gateway"
)

// CodeSpec is one entry of the catalogue of stable codes: every code a
// command outcome, a query error or an HTTP problem can carry.
type CodeSpec struct {
	Code string
	Kind CodeKind
	// HTTPStatus is the status of an HTTP answer with this code (200 for a
	// no-op, which is a success).
	HTTPStatus int
}

// ExitCode is the CLI's exit status for an answer with this code: 0 for a
// no-op, 1 for everything else (2, a usage error, never reaches a server).
func (s CodeSpec) ExitCode() int {
	if s.Kind == KindNoOp {
		return 0
	}
	return 1
}

// catalogue is the one list of stable codes, in the order docs/bus.md §7
// gives command codes, then query and HTTP codes. The decider, the
// processor, the query service and the HTTP API declare their codes as
// constants next to the rules that give them; a test checks that every such
// constant is here, and that docs/bus.md and the OpenAPI document agree
// with this table.
var catalogue = []CodeSpec{
	// Refused before the rules (the processor).
	{CodeMissingCommandID, KindRejected, http.StatusBadRequest},
	{CodeMalformedCommand, KindRejected, http.StatusBadRequest},
	{CodeInvalidAppName, KindRejected, http.StatusBadRequest},
	{CodeUnknownCommand, KindRejected, http.StatusBadRequest},
	{CodeUnauthenticated, KindRejected, http.StatusUnauthorized},
	{CodeForbidden, KindRejected, http.StatusForbidden},
	{CodeIdempotencyKeyReused, KindRejected, http.StatusConflict},
	{CodeInternalError, KindRejected, http.StatusInternalServerError},
	{CodeAppHistoryUnreadable, KindRejected, http.StatusInternalServerError},

	// Refused by the rules (aggregates).
	{"invalid_argument", KindRejected, http.StatusBadRequest},
	{"app_not_found", KindRejected, http.StatusNotFound},
	{"app_suspended", KindRejected, http.StatusConflict},
	{"app_deleted", KindRejected, http.StatusConflict},
	{"revision_exists", KindRejected, http.StatusConflict},
	{"revision_not_found", KindRejected, http.StatusNotFound},
	{"ambiguous_revision", KindRejected, http.StatusBadRequest},
	{"revision_ref_too_short", KindRejected, http.StatusBadRequest},
	{"revision_deleted", KindRejected, http.StatusConflict},
	{"revision_already_deleted", KindRejected, http.StatusConflict},
	{"revision_not_deployed", KindRejected, http.StatusConflict},
	{"revision_not_deploying", KindRejected, http.StatusConflict},
	{"revision_is_current", KindRejected, http.StatusConflict},
	{"revision_in_use", KindRejected, http.StatusConflict},
	{"no_current_revision", KindRejected, http.StatusConflict},
	{"deploy_in_progress", KindRejected, http.StatusConflict},
	{"rollout_in_progress", KindRejected, http.StatusConflict},
	{"rollout_not_found", KindRejected, http.StatusNotFound},
	{"runner_not_found", KindRejected, http.StatusNotFound},
	{"secret_not_found", KindRejected, http.StatusNotFound},
	{"stale_secret_version", KindRejected, http.StatusConflict},

	// Already true (aggregates).
	{"already_current", KindNoOp, http.StatusOK},
	{"already_suspended", KindNoOp, http.StatusOK},
	{"not_suspended", KindNoOp, http.StatusOK},
	{"already_stopping", KindNoOp, http.StatusOK},
	{"nothing_to_change", KindNoOp, http.StatusOK},
	{"already_deleted", KindNoOp, http.StatusOK},

	// Queries (projections/queryapi), besides the not-found codes above.
	{"bad_request", KindError, http.StatusBadRequest},
	{"not_caught_up", KindError, http.StatusServiceUnavailable},
	{"runner_logs_unavailable", KindError, http.StatusServiceUnavailable},
	{"reply_too_large", KindError, http.StatusInternalServerError},
	{"replay_running", KindError, http.StatusConflict},
	{"beyond_log", KindError, http.StatusBadRequest},
	{"internal", KindError, http.StatusInternalServerError},

	// The HTTP API.
	{"not_found", KindError, http.StatusNotFound},
	{"webhook_not_found", KindError, http.StatusNotFound},
	{"method_not_allowed", KindError, http.StatusMethodNotAllowed},
	{"unsupported_media_type", KindError, http.StatusUnsupportedMediaType},
	{"request_too_large", KindError, http.StatusRequestEntityTooLarge},
	{"deploy_failed", KindError, http.StatusUnprocessableEntity},
	{"deploy_not_current", KindError, http.StatusConflict},
	{"runners_failing", KindError, http.StatusUnprocessableEntity},
	{"not_ready", KindError, http.StatusServiceUnavailable},
	{"timeout", KindError, http.StatusGatewayTimeout},
	{"canceled", KindError, http.StatusServiceUnavailable},

	// The gateway (workers/gateway), besides not_found, app_not_found,
	// app_suspended and no_current_revision above, which it answers too
	// (the last two with 503: the app cannot serve the request).
	{"app_starting", KindGateway, http.StatusServiceUnavailable},
	{"app_unavailable", KindGateway, http.StatusServiceUnavailable},
	{"app_backing_off", KindGateway, http.StatusServiceUnavailable},
	{"queue_full", KindGateway, http.StatusServiceUnavailable},
	{"request_timeout", KindGateway, http.StatusGatewayTimeout},
	{"runner_stopped", KindGateway, http.StatusBadGateway},
	{"runner_unreachable", KindGateway, http.StatusBadGateway},
}

// ProblemTypeBase prefixes a code to make the type URI of an RFC 9457
// problem document with that code, from the HTTP API and the gateway
// alike.
const ProblemTypeBase = "https://revline.dev/problems/"

// ProblemType returns the type URI of a problem with code.
func ProblemType(code string) string { return ProblemTypeBase + code }

// ProblemTitle returns the short, fixed title of a problem with code:
// "revision_is_current" gives "Revision is current".
func ProblemTitle(code string) string {
	t := strings.ReplaceAll(code, "_", " ")
	if t == "" {
		return t
	}
	return strings.ToUpper(t[:1]) + t[1:]
}

var codeIndex = func() map[string]CodeSpec {
	m := make(map[string]CodeSpec, len(catalogue))
	for _, s := range catalogue {
		m[s.Code] = s
	}
	return m
}()

// LookupCode returns the catalogue's entry for code.
func LookupCode(code string) (CodeSpec, bool) {
	s, ok := codeIndex[code]
	return s, ok
}

// Catalogue returns every stable code, in the order of docs/bus.md.
func Catalogue() []CodeSpec {
	out := make([]CodeSpec, len(catalogue))
	copy(out, catalogue)
	return out
}
