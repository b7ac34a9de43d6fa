package httpapi

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/revline/revline/projections/queryapi"
)

// runnerLogs answers GET /v1/apps/{app}/runners/{runner}/logs: a page of
// the runner's log (queryapi.LogPage, JSON), its last tail lines, or,
// with after_offset, what follows that offset. While the log goes on
// past the page (more), the Link header (rel="next") asks for the rest.
func (a *api) runnerLogs(w http.ResponseWriter, r *http.Request, app string) error {
	if a.cfg.RunnerLogs == nil {
		return &queryapi.Error{Code: queryapi.CodeRunnerLogsUnavailable, Message: "this server has no runner logs: ask the `revline serve` that runs the runners"}
	}
	seq, err := minSequence(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	req := queryapi.LogRequest{Tail: queryapi.DefaultLogTail}
	if q.Has("tail") {
		text := q.Get("tail")
		n, err := strconv.Atoi(text)
		if err != nil || n < 0 || n > queryapi.MaxLogTail {
			return badRequest(fmt.Sprintf("tail %q: want a whole number from 0 to %d (without it, the last %d lines)", text, queryapi.MaxLogTail, queryapi.DefaultLogTail))
		}
		req.Tail = n
	}
	if q.Has("after_offset") {
		text := q.Get("after_offset")
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil || n < 0 {
			return badRequest(fmt.Sprintf("after_offset %q: want a byte offset of the log (a next_offset of an earlier answer, or 0)", text))
		}
		req.AfterOffset = &n
	}
	ctx, cancel := requestContext(r, false)
	defer cancel()
	page, err := a.cfg.RunnerLogs.RunnerLogs(ctx, app, r.PathValue("runner"), req, seq)
	if err != nil {
		return err
	}
	if page.More {
		q.Del("tail")
		q.Set("after_offset", strconv.FormatInt(page.NextOffset, 10))
		w.Header().Set("Link", fmt.Sprintf("<%s?%s>; rel=\"next\"", r.URL.EscapedPath(), q.Encode()))
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}
