package gateway

import (
	"encoding/json"
	"net/http"

	"github.com/revline/revline/events"
)

// The codes of the gateway's problems (docs/bus.md §7, The gateway's
// problems). not_found, app_not_found, app_suspended and
// no_current_revision are the HTTP API's codes too.
const (
	codeNotFound          = "not_found"
	codeAppNotFound       = "app_not_found"
	codeAppSuspended      = "app_suspended"
	codeNoCurrentRevision = "no_current_revision"
	codeAppStarting       = "app_starting"
	codeAppUnavailable    = "app_unavailable"
	codeAppBackingOff     = "app_backing_off"
	codeQueueFull         = "queue_full"
	codeRequestTimeout    = "request_timeout"
	codeRunnerStopped     = "runner_stopped"
	codeRunnerUnreachable = "runner_unreachable"
)

// problem answers with an RFC 9457 problem document, as the HTTP API does,
// with the same type URIs and titles: code is the stable machine-readable
// reason, detail one sentence, instance the request's path (as the client
// sent it).
func problem(w http.ResponseWriter, instance string, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Type     string `json:"type"`
		Title    string `json:"title"`
		Status   int    `json:"status"`
		Detail   string `json:"detail"`
		Code     string `json:"code"`
		Instance string `json:"instance"`
	}{events.ProblemType(code), events.ProblemTitle(code), status, detail, code, instance})
}
