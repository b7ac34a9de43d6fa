package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/cmd/revline/internal/control"
	"github.com/revline/revline/cmd/revline/internal/httpapi"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections/queryapi"
)

// Bounds of an action's request.
const (
	maxActionBytes = 16 << 10
	actionTimeout  = 30 * time.Second
)

// controlFor returns a copy of the shared Control acting for the
// session's token.
func (d *Dashboard) controlFor(r *http.Request) (*control.Control, error) {
	return httpapi.ActingAs(r.Context(), d.cfg.Control)
}

// action runs an action's request: it decodes the JSON body into req,
// and answers with do's message as JSON.
func action[T any](d *Dashboard, w http.ResponseWriter, r *http.Request, do func(ctx context.Context, c *control.Control, req T) (string, error)) error {
	c, err := d.controlFor(r)
	if err != nil {
		return err
	}
	var req T
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxActionBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		return badRequest("the request body is not the JSON this action takes: " + err.Error())
	}
	ctx, cancel := context.WithTimeout(r.Context(), actionTimeout)
	defer cancel()
	msg, err := do(ctx, c, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": msg})
	return nil
}

// rollbackRequest is the body of POST /ui/apps/{app}/rollback.
type rollbackRequest struct {
	Revision string `json:"revision"`
	Reason   string `json:"reason"`
}

func (d *Dashboard) rollback(w http.ResponseWriter, r *http.Request, app string) error {
	return action(d, w, r, func(ctx context.Context, c *control.Control, req rollbackRequest) (string, error) {
		if req.Revision == "" {
			return "", badRequest("rollback needs a revision")
		}
		res, err := c.SetRevision(ctx, app, req.Revision, "", req.Reason)
		if err != nil {
			return "", err
		}
		if res.Status != events.OutcomeAccepted {
			return res.Message, nil
		}
		return fmt.Sprintf("%s now serves revision %s.", app, revision{Number: res.Number, ID: res.RevisionID}), nil
	})
}

// deleteRequest is the body of POST /ui/apps/{app}/delete-revision.
type deleteRequest struct {
	Revision string `json:"revision"`
}

func (d *Dashboard) deleteRevision(w http.ResponseWriter, r *http.Request, app string) error {
	return action(d, w, r, func(ctx context.Context, c *control.Control, req deleteRequest) (string, error) {
		if req.Revision == "" {
			return "", badRequest("delete needs a revision")
		}
		res, err := c.DeleteRevision(ctx, app, req.Revision)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("Deleted revision %s of %s.", revision{Number: res.Number, ID: res.RevisionID}, app), nil
	})
}

// rolloutRequest is the body of POST /ui/apps/{app}/rollout.
type rolloutRequest struct {
	Force bool `json:"force"`
}

// rollout asks for a rollout and answers at once: the runners page
// follows its progress live.
func (d *Dashboard) rollout(w http.ResponseWriter, r *http.Request, app string) error {
	return action(d, w, r, func(ctx context.Context, c *control.Control, req rolloutRequest) (string, error) {
		res, err := c.Rollout(ctx, app, req.Force, false)
		if err != nil {
			return "", err
		}
		kind := "Graceful"
		if req.Force {
			kind = "Force"
		}
		return fmt.Sprintf("%s rollout %s of %s requested.", kind, shortID(res.RolloutID), app), nil
	})
}

// paramChange is one parameter in the rollback preview.
type paramChange struct {
	Name    string
	Now     string
	After   string
	Changed bool
	// Kept is set for a runtime parameter kept from the current revision;
	// the others come from the target revision.
	Kept bool
}

// preview is the rollback dialog's content.
type preview struct {
	App           string
	Target        string
	TargetNumber  uint64
	Current       string
	CurrentNumber uint64
	Params        []paramChange
	// Refusal is the decider's reason when the rollback would be refused.
	Refusal string
}

// rollbackPreview answers the rollback dialog's content: what SetRevision
// would do now, computed by the aggregate's own decider on the app's
// history, so the dialog shows exactly what Confirm will cause.
func (d *Dashboard) rollbackPreview(w http.ResponseWriter, r *http.Request, app string) error {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	ref := r.URL.Query().Get("revision")
	if ref == "" {
		return badRequest("rollback-preview needs a revision")
	}
	rev, err := d.cfg.Reader.Revision(ctx, app, ref, 0)
	if err != nil {
		return err
	}
	h, err := d.history(ctx, app)
	if err != nil {
		return err
	}
	state := aggregates.Fold(app, h)
	p := preview{App: app, Target: rev.RevisionID, TargetNumber: rev.Number, Current: state.Current}
	if current, ok := state.Revisions[state.Current]; ok {
		p.CurrentNumber = current.Number
	}
	decided, err := aggregates.Decide(state, events.SetRevision{RevisionID: rev.RevisionID}, time.Now())
	var rejection *events.Rejection
	switch {
	case errors.As(err, &rejection):
		p.Refusal = rejection.Message
	case err != nil:
		return err
	}
	for _, ev := range decided {
		if set, ok := ev.(events.CurrentRevisionSet); ok {
			p.Params = paramChanges(state.Code, state.Runtime, set)
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	return d.pages["preview"].ExecuteTemplate(w, "preview", p)
}

// paramChanges lists every parameter before and after set, marking those
// set keeps from the current revision.
func paramChanges(code events.CodeParams, runtime events.RuntimeParams, set events.CurrentRevisionSet) []paramChange {
	now := params(code, runtime)
	after := params(set.Code, set.Runtime)
	changes := make([]paramChange, len(now))
	for i := range now {
		changes[i] = paramChange{
			Name: now[i].Name, Now: now[i].Value, After: after[i].Value,
			Changed: now[i].Value != after[i].Value,
			Kept:    slices.Contains(set.Inherited, now[i].Name),
		}
	}
	return changes
}

// params lists the code parameters, then the runtime ones, by wire name.
func params(c events.CodeParams, r events.RuntimeParams) []events.ParamValue {
	return slices.Concat(c.Values(), r.Values())
}

// badRequestError is a request the dashboard refuses before acting.
type badRequestError struct{ msg string }

// Error implements the error interface.
func (e *badRequestError) Error() string { return e.msg }

func badRequest(msg string) error { return &badRequestError{msg: msg} }

// status returns the HTTP status for err.
func status(err error) int {
	var (
		bad       *badRequestError
		rejection *events.Rejection
		query     *queryapi.Error
		name      *events.InvalidNameError
		tooLarge  *http.MaxBytesError
		forbidden *auth.ForbiddenError
	)
	switch {
	case errors.As(err, &forbidden):
		return http.StatusForbidden
	case errors.As(err, &bad), errors.As(err, &name):
		return http.StatusBadRequest
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.As(err, &rejection):
		return http.StatusConflict
	case errors.As(err, &query):
		switch query.Code {
		case queryapi.CodeAppNotFound, queryapi.CodeRevisionNotFound, queryapi.CodeRolloutNotFound:
			return http.StatusNotFound
		case queryapi.CodeNotCaughtUp:
			return http.StatusServiceUnavailable
		case queryapi.CodeInternal:
			return http.StatusInternalServerError
		}
		return http.StatusBadRequest
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// fail answers err: as JSON to the script's requests (actions and the
// rollback preview), as an error page to a browser's.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := status(err)
	msg := err.Error()
	if code == http.StatusInternalServerError {
		d.cfg.Logger.Error("dashboard: request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	if r.Method != http.MethodGet || r.Header.Get("X-Revline-Dashboard") != "" {
		writeJSON(w, code, map[string]string{"error": msg})
		return
	}
	d.render(w, code, "error", page{Title: http.StatusText(code), Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
