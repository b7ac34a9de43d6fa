package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/revline/revline/cmd/revline/internal/control"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/projections/audit"
	"github.com/revline/revline/projections/queryapi"
)

// appHandler serves a route under /v1/apps/{app}; it returns an error to
// answer with a problem.
type appHandler func(w http.ResponseWriter, r *http.Request, app string) error

// app checks the {app} path value before anything else runs.
func (a *api) app(h appHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		app := r.PathValue("app")
		if err := events.ValidateAppName(app); err != nil {
			a.fail(w, r, err)
			return
		}
		if err := h(w, r, app); err != nil {
			a.fail(w, r, err)
		}
	}
}

func (a *api) listApps(w http.ResponseWriter, r *http.Request) {
	seq, page, err := listParams(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ctx, cancel := requestContext(r, false)
	defer cancel()
	apps, err := a.cfg.Reader.Apps(ctx, page, seq)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writePage(w, r, apps)
}

func (a *api) listRevisions(w http.ResponseWriter, r *http.Request, app string) error {
	p, err := point(r)
	if err != nil {
		return err
	}
	if p != (audit.Point{}) {
		return listAt(a, w, r, func(ctx context.Context, log audit.Log) ([]projections.RevisionView, uint64, error) {
			then, err := audit.RevisionsAt(ctx, log, app, p)
			return then.Revisions, then.Sequence, err
		})
	}
	seq, page, err := listParams(r)
	if err != nil {
		return err
	}
	ctx, cancel := requestContext(r, false)
	defer cancel()
	revs, err := a.cfg.Reader.Revisions(ctx, app, page, seq)
	if err != nil {
		return err
	}
	writePage(w, r, revs)
	return nil
}

func (a *api) getRevision(w http.ResponseWriter, r *http.Request, app string) error {
	seq, err := minSequence(r)
	if err != nil {
		return err
	}
	ctx, cancel := requestContext(r, false)
	defer cancel()
	rev, err := a.cfg.Reader.Revision(ctx, app, r.PathValue("ref"), seq)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rev)
	return nil
}

// diffRevisions answers GET /v1/apps/{app}/diff?a=REV&b=REV: what
// differs from revision a to revision b.
func (a *api) diffRevisions(w http.ResponseWriter, r *http.Request, app string) error {
	refA, refB := r.URL.Query().Get("a"), r.URL.Query().Get("b")
	if refA == "" || refB == "" {
		return badRequest("diff needs two revisions: a and b (a number such as v3, an id or a unique id prefix)")
	}
	seq, err := minSequence(r)
	if err != nil {
		return err
	}
	ctx, cancel := requestContext(r, false)
	defer cancel()
	revA, err := a.cfg.Reader.Revision(ctx, app, refA, seq)
	if err != nil {
		return err
	}
	revB, err := a.cfg.Reader.Revision(ctx, app, refB, seq)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, projections.Diff(app, revA, revB))
	return nil
}

func (a *api) listRunners(w http.ResponseWriter, r *http.Request, app string) error {
	seq, page, err := listParams(r)
	if err != nil {
		return err
	}
	// No state: the live runners. "all": terminated ones too. A state:
	// only the runners in it.
	filter, err := queryapi.ParseRunnerFilter(r.URL.Query().Get("state"))
	if err != nil {
		return badRequest(err.Error())
	}
	p, err := point(r)
	if err != nil {
		return err
	}
	if p != (audit.Point{}) {
		return listAt(a, w, r, func(ctx context.Context, log audit.Log) ([]projections.RunnerView, uint64, error) {
			then, err := audit.RunnersAt(ctx, log, app, p)
			return slices.DeleteFunc(then.Runners, func(r projections.RunnerView) bool { return !filter.Keeps(r) }), then.Sequence, err
		})
	}
	ctx, cancel := requestContext(r, false)
	defer cancel()
	runners, err := a.cfg.Reader.Runners(ctx, app, filter, page, seq)
	if err != nil {
		return err
	}
	writePage(w, r, runners)
	return nil
}

func (a *api) getRollout(w http.ResponseWriter, r *http.Request, app string) error {
	seq, err := minSequence(r)
	if err != nil {
		return err
	}
	ctx, cancel := requestContext(r, false)
	defer cancel()
	ro, err := a.cfg.Reader.Rollout(ctx, app, r.PathValue("id"), seq)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ro)
	return nil
}

// deployRequest is the body of POST /v1/apps/{app}/deploy.
type deployRequest struct {
	Command string `json:"command"`
	codeFields
	runtimeFields
	ResetScale     bool              `json:"reset_scale"`
	Strategy       events.Strategy   `json:"strategy"`
	Message        string            `json:"message"`
	Annotations    map[string]string `json:"annotations"`
	IdempotencyKey string            `json:"idempotency_key"`
	// Wait blocks until the revision is deployed or failed.
	Wait bool `json:"wait"`
}

func (d deployRequest) command() events.Deploy {
	return events.Deploy{
		Command:     d.Command,
		Code:        d.codeFields.overrides(),
		Runtime:     d.runtimeFields.overrides(),
		ResetScale:  d.ResetScale,
		Strategy:    d.Strategy,
		Message:     d.Message,
		Annotations: d.Annotations,
	}
}

// deploy answers 202 when the caller does not wait, 201 once the revision
// is deployed, and a 422 deploy_failed problem naming the revision when it
// failed.
func (a *api) deploy(w http.ResponseWriter, r *http.Request, app string) error {
	c, err := a.controlFor(r)
	if err != nil {
		return err
	}
	var req deployRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		return err
	}
	key := req.IdempotencyKey
	if header := r.Header.Get(IdempotencyKeyHeader); header != "" {
		if key != "" && key != header {
			return badRequest(fmt.Sprintf("the %s header and the body's idempotency_key differ; send one of them", IdempotencyKeyHeader))
		}
		key = header
	}
	ctx, cancel := requestContext(r, req.Wait)
	defer cancel()
	res, err := c.Deploy(ctx, app, req.command(), control.DeployOptions{IdempotencyKey: key, Wait: req.Wait})
	if err != nil {
		if res.RevisionID != "" {
			return &deployError{revisionID: res.RevisionID, sequence: res.Sequence, err: err}
		}
		return err
	}
	w.Header().Set("Location", "/v1/apps/"+app+"/revisions/"+url.PathEscape(res.RevisionID))
	status := http.StatusCreated
	if !req.Wait {
		status = http.StatusAccepted
	}
	writeJSON(w, status, res)
	return nil
}

// setRevisionRequest is the body of POST /v1/apps/{app}/set-rev.
type setRevisionRequest struct {
	// Revision is a revision id or a unique prefix of it.
	Revision string          `json:"revision"`
	Strategy events.Strategy `json:"strategy"`
	Message  string          `json:"message"`
}

func (a *api) setRevision(w http.ResponseWriter, r *http.Request, app string) error {
	c, err := a.controlFor(r)
	if err != nil {
		return err
	}
	var req setRevisionRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		return err
	}
	if req.Revision == "" {
		return badRequest("set-rev needs a revision: its id or a unique prefix")
	}
	ctx, cancel := requestContext(r, false)
	defer cancel()
	res, err := c.SetRevision(ctx, app, req.Revision, req.Strategy, req.Message)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// waitField is the optional "wait" of an operation's body: true unless
// set to false, the answer comes once the operation is done (200);
// otherwise once it is requested (202).
type waitField struct {
	Wait *bool `json:"wait"`
}

func (f waitField) waits() bool { return f.Wait == nil || *f.Wait }

// operation decodes the body of a waitable operation into req and answers
// with what run returns: 200 when the caller waited, 202 when not.
func operation[T any, R interface{ waits() bool }](a *api, w http.ResponseWriter, r *http.Request, req R, run func(ctx context.Context, c *control.Control, wait bool) (T, error)) error {
	c, err := a.controlFor(r)
	if err != nil {
		return err
	}
	if err := decodeBody(w, r, req, true); err != nil {
		return err
	}
	wait := req.waits()
	ctx, cancel := requestContext(r, wait)
	defer cancel()
	res, err := run(ctx, c, wait)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if !wait {
		status = http.StatusAccepted
	}
	writeJSON(w, status, res)
	return nil
}

// rolloutRequest is the body of POST /v1/apps/{app}/rollout.
type rolloutRequest struct {
	Force bool `json:"force"`
	waitField
}

// rollout answers 200 once the rollout finished (or was superseded), or
// 202 when the caller does not wait.
func (a *api) rollout(w http.ResponseWriter, r *http.Request, app string) error {
	var req rolloutRequest
	return operation(a, w, r, &req, func(ctx context.Context, c *control.Control, wait bool) (control.RolloutResult, error) {
		return c.Rollout(ctx, app, req.Force, wait)
	})
}

// stopRunnerRequest is the body of POST .../runners/{runner}/stop and
// .../kill.
type stopRunnerRequest struct {
	// Replace starts a replacement runner first (graceful stops only).
	Replace bool `json:"replace"`
	waitField
}

// stopRunner serves POST .../runners/{runner}/stop, and .../kill with
// force: 200 once the runner's end is in the log, 202 when the caller does
// not wait.
func (a *api) stopRunner(force bool) func(http.ResponseWriter, *http.Request, string) error {
	return func(w http.ResponseWriter, r *http.Request, app string) error {
		var req stopRunnerRequest
		return operation(a, w, r, &req, func(ctx context.Context, c *control.Control, wait bool) (control.StopResult, error) {
			return c.StopRunner(ctx, app, r.PathValue("runner"), force, req.Replace, wait)
		})
	}
}

func (a *api) deleteRevision(w http.ResponseWriter, r *http.Request, app string) error {
	c, err := a.controlFor(r)
	if err != nil {
		return err
	}
	ctx, cancel := requestContext(r, false)
	defer cancel()
	res, err := c.DeleteRevision(ctx, app, r.PathValue("ref"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// deleteApp deletes the app; its optional body gives the reason.
func (a *api) deleteApp(w http.ResponseWriter, r *http.Request, app string) error {
	var req struct {
		Reason string `json:"reason"`
	}
	if err := decodeBody(w, r, &req, true); err != nil {
		return err
	}
	c, err := a.controlFor(r)
	if err != nil {
		return err
	}
	ctx, cancel := requestContext(r, false)
	defer cancel()
	res, err := c.DeleteApp(ctx, app, req.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (a *api) scale(w http.ResponseWriter, r *http.Request, app string) error {
	var req struct {
		runtimeFields
		codeFields
		settleField
	}
	if err := decodeBody(w, r, &req, false); err != nil {
		return err
	}
	return a.change(w, r, app, req.settleField, func(ctx context.Context, c *control.Control) (control.ChangeResult, error) {
		return c.Scale(ctx, app, events.Scale{Runtime: req.runtimeFields.overrides(), Code: req.codeFields.overrides()})
	})
}

func (a *api) suspend(w http.ResponseWriter, r *http.Request, app string) error {
	return a.bodylessChange(w, r, app, (*control.Control).Suspend)
}

func (a *api) resume(w http.ResponseWriter, r *http.Request, app string) error {
	return a.bodylessChange(w, r, app, (*control.Control).Resume)
}

// settleField is the optional "wait" of a scale, suspend or resume: when
// true, the answer comes once the app's runners have settled on the
// change (control.AwaitSettled), with ready_runners; by default at once.
type settleField struct {
	Wait bool `json:"wait"`
}

// bodylessChange runs suspend or resume, whose body is optional and holds
// at most "wait".
func (a *api) bodylessChange(w http.ResponseWriter, r *http.Request, app string, op func(*control.Control, context.Context, string) (control.ChangeResult, error)) error {
	var req settleField
	if err := decodeBody(w, r, &req, true); err != nil {
		return err
	}
	return a.change(w, r, app, req, func(ctx context.Context, c *control.Control) (control.ChangeResult, error) {
		return op(c, ctx, app)
	})
}

// change runs a scale, suspend or resume and, if asked, waits for the
// runners to settle on it.
func (a *api) change(w http.ResponseWriter, r *http.Request, app string, settle settleField, op func(context.Context, *control.Control) (control.ChangeResult, error)) error {
	c, err := a.controlFor(r)
	if err != nil {
		return err
	}
	ctx, cancel := requestContext(r, settle.Wait)
	defer cancel()
	res, err := op(ctx, c)
	if err != nil {
		return err
	}
	if settle.Wait {
		ready, err := c.AwaitSettled(ctx, app, res.Sequence)
		if err != nil {
			return err
		}
		res.ReadyRunners = &ready
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// writePage answers with a list page: its items as a JSON array (empty,
// never null) and, if the list goes on, the link to the next page in the
// Link header (RFC 8288, rel="next") and its token in NextPageTokenHeader.
func writePage[T any](w http.ResponseWriter, r *http.Request, page queryapi.Page[T]) {
	if page.NextPageToken != "" {
		q := r.URL.Query()
		q.Set("page_token", page.NextPageToken)
		w.Header().Set("Link", fmt.Sprintf("<%s?%s>; rel=\"next\"", r.URL.EscapedPath(), q.Encode()))
		w.Header().Set(NextPageTokenHeader, page.NextPageToken)
	}
	items := page.Items
	if items == nil {
		items = []T{}
	}
	writeJSON(w, http.StatusOK, items)
}
