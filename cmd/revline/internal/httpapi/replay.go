package httpapi

import (
	"context"
	"net/http"

	"github.com/revline/revline/projections/queryapi"
)

// replay serves POST /v1/replay: the server's read model rebuilt from the
// log into a new generation and switched to (or, with to_sequence, built
// to that point and compared only). The body is optional.
func (a *api) replay(w http.ResponseWriter, r *http.Request) {
	var req queryapi.ReplayRequest
	if err := decodeBody(w, r, &req, true); err != nil {
		a.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryapi.ReplayTimeout)
	defer cancel()
	t, _ := TokenFrom(ctx)
	a.cfg.Logger.Info("replay requested over HTTP", "token", t.Name, "to_sequence", req.ToSequence)
	report, err := a.cfg.Replay(ctx, req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, report)
}
