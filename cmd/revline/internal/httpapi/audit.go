package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/revline/revline/projections/audit"
)

// AuditHeartbeat is how often GET /v1/audit/stream sends a comment line
// while nothing happens, so that proxies and clients see the stream alive.
const AuditHeartbeat = 15 * time.Second

// auditQuery reads the audit routes' query parameters: app, since, until,
// type (repeatable, or comma-separated), actor, revision, after and limit.
// A revision reference (v3, an id prefix) is resolved against the app's
// history.
func (a *api) auditQuery(ctx context.Context, r *http.Request) (audit.Query, error) {
	params := r.URL.Query()
	q := audit.Query{Filter: audit.Filter{App: params.Get("app"), Actor: params.Get("actor")}}
	now := time.Now()
	for _, bound := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if text := params.Get(bound.name); text != "" {
			t, err := audit.ParseTime(text, now)
			if err != nil {
				return q, badRequest(fmt.Sprintf("%s: %v", bound.name, err))
			}
			*bound.dst = t
		}
	}
	for _, value := range params["type"] {
		for _, glob := range strings.Split(value, ",") {
			if glob = strings.TrimSpace(glob); glob != "" {
				q.Types = append(q.Types, glob)
			}
		}
	}
	if text := params.Get("after"); text != "" {
		after, err := strconv.ParseUint(text, 10, 64)
		if err != nil {
			return q, badRequest(fmt.Sprintf("after %q: want a stream sequence (a non-negative integer)", text))
		}
		q.After = after
	}
	if text := params.Get("limit"); text != "" {
		n, err := strconv.Atoi(text)
		if err != nil || n < 1 || n > audit.MaxLimit {
			return q, badRequest(fmt.Sprintf("limit %q: want a whole number from 1 to %d (without it, pages hold %d entries)", text, audit.MaxLimit, audit.DefaultLimit))
		}
		q.Limit = n
	}
	ref := params.Get("revision")
	if ref != "" && q.App == "" {
		return q, badRequest("revision needs app: revision numbers and ids belong to one app")
	}
	if err := q.Validate(); err != nil {
		return q, badRequest(err.Error())
	}
	if ref != "" {
		id, err := audit.ResolveRevision(ctx, a.cfg.Audit, q.App, ref)
		if err != nil {
			return q, err
		}
		q.Revision = id
	}
	return q, nil
}

// auditPage answers GET /v1/audit: a page of the event log, oldest first.
func (a *api) auditPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := requestContext(r, false)
	defer cancel()
	q, err := a.auditQuery(ctx, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	page, err := audit.Read(ctx, a.cfg.Audit, q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if page.More {
		params := r.URL.Query()
		params.Set("after", strconv.FormatUint(page.Sequence, 10))
		w.Header().Set("Link", fmt.Sprintf("<%s?%s>; rel=\"next\"", r.URL.EscapedPath(), params.Encode()))
	}
	writeJSON(w, http.StatusOK, page)
}

// auditStream answers GET /v1/audit/stream: the entries the filters keep,
// from after (or the Last-Event-ID a reconnecting client sends) on, then
// each new one as it is appended, as server-sent events whose id is the
// entry's sequence, until the client goes away or CloseStreams.
func (a *api) auditStream(w http.ResponseWriter, r *http.Request) {
	resolveCtx, cancel := requestContext(r, false)
	q, err := a.auditQuery(resolveCtx, r)
	cancel()
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		seq, err := strconv.ParseUint(last, 10, 64)
		if err != nil {
			a.fail(w, r, badRequest(fmt.Sprintf("Last-Event-ID %q: want the sequence of the last event received", last)))
			return
		}
		q.After = max(q.After, seq)
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		a.fail(w, r, fmt.Errorf("audit stream: the response writer cannot flush"))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()

	select {
	case <-a.closing:
		return // the server is shutting down
	default:
	}
	ctx, stop := context.WithCancel(r.Context())
	defer stop()
	entries := make(chan audit.Entry)
	followed := make(chan error, 1)
	go func() {
		followed <- audit.Follow(ctx, a.cfg.Audit, q.Filter, q.After, func(e audit.Entry) error {
			select {
			case entries <- e:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	heartbeat := time.NewTicker(AuditHeartbeat)
	defer heartbeat.Stop()
	for {
		var err error
		select {
		case e := <-entries:
			err = writeEvent(w, strconv.FormatUint(e.Sequence, 10), e)
		case <-heartbeat.C:
			_, err = fmt.Fprint(w, ": keep-alive\n\n")
		case ferr := <-followed:
			if ctx.Err() == nil {
				a.cfg.Logger.Warn("audit stream ended", "error", ferr)
				data, _ := json.Marshal(map[string]string{"error": "the event log cannot be followed: " + ferr.Error()})
				_, _ = fmt.Fprintf(w, "event: error\ndata: %s\n\n", data)
				flusher.Flush()
			}
			return
		case <-ctx.Done():
			return
		case <-a.closing:
			return // the server is shutting down
		}
		if err != nil {
			return // the client went away
		}
		flusher.Flush()
	}
}

// writeEvent writes one server-sent event: its id, and v as JSON on one
// data line.
func writeEvent(w http.ResponseWriter, id string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "id: %s\ndata: %s\n\n", id, data)
	return err
}

// point reads the at (a time: RFC 3339 or "2h ago") and at_seq (a stream
// sequence) query parameters; neither is the zero Point, now.
func point(r *http.Request) (audit.Point, error) {
	var p audit.Point
	params := r.URL.Query()
	if text := params.Get("at"); text != "" {
		t, err := audit.ParseTime(text, time.Now())
		if err != nil {
			return p, badRequest("at: " + err.Error())
		}
		p.Time = t
	}
	if text := params.Get("at_seq"); text != "" {
		seq, err := strconv.ParseUint(text, 10, 64)
		if err != nil || seq == 0 {
			return p, badRequest(fmt.Sprintf("at_seq %q: want a stream sequence (a whole number from 1)", text))
		}
		p.Sequence = seq
	}
	return p, nil
}

// listAt answers a list route (revisions, runners) asked with at or
// at_seq: the whole list as it was then, folded from the event log by
// read, which returns it and the sequence of the app's last event up to
// that point.
func listAt[T any](a *api, w http.ResponseWriter, r *http.Request, read func(ctx context.Context, log audit.Log) ([]T, uint64, error)) error {
	if a.cfg.Audit == nil {
		return badRequest("this server does not read the event log: at and at_seq are not served")
	}
	if r.URL.Query().Has("page_token") {
		return badRequest("page_token does not go with at or at_seq: a list as it was comes whole")
	}
	ctx, cancel := requestContext(r, false)
	defer cancel()
	items, seq, err := read(ctx, a.cfg.Audit)
	if err != nil {
		return err
	}
	w.Header().Set(AsOfSequenceHeader, strconv.FormatUint(seq, 10))
	writeJSON(w, http.StatusOK, items)
	return nil
}

// appConfig answers GET /v1/apps/{app}/config: the effective
// configuration with the provenance of each parameter, now or at a point.
func (a *api) appConfig(w http.ResponseWriter, r *http.Request, app string) error {
	p, err := point(r)
	if err != nil {
		return err
	}
	ctx, cancel := requestContext(r, false)
	defer cancel()
	config, err := audit.Provenance(ctx, a.cfg.Audit, app, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, config)
	return nil
}

// paramHistory answers GET /v1/apps/{app}/config/{param}/history: every
// event that set or kept one parameter, oldest first.
func (a *api) paramHistory(w http.ResponseWriter, r *http.Request, app string) error {
	ctx, cancel := requestContext(r, false)
	defer cancel()
	config, err := audit.Provenance(ctx, a.cfg.Audit, app, audit.Point{})
	if err != nil {
		return err
	}
	history, err := config.Blame(r.PathValue("param"))
	if err != nil {
		return badRequest(err.Error())
	}
	writeJSON(w, http.StatusOK, history)
	return nil
}
