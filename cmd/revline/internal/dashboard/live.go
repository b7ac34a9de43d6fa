package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/cmd/revline/internal/httpapi"
	"github.com/revline/revline/events"
)

// heartbeat is how often a quiet live stream sends a comment, so that a
// dead connection is noticed and proxies keep it open.
const heartbeat = 15 * time.Second

// liveEvent is the data of one server-sent event: which event of which
// app arrived, so that the page can refresh what it shows.
type liveEvent struct {
	Sequence uint64 `json:"sequence"`
	App      string `json:"app"`
	Type     string `json:"type"`
}

// live streams the event log as server-sent events, from the sequence
// after the query's "after" (the sequence the page was rendered at) or,
// when the browser reconnects, after the Last-Event-ID it saw last: a
// dropped connection misses nothing. Without either it starts at the
// log's end. With "app" it streams that app's
// events only. Each event's id is its stream sequence.
func (d *Dashboard) live(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	app := q.Get("app")
	if app != "" {
		err := events.ValidateAppName(app)
		if err == nil {
			err = d.authorize(r, auth.Read, app)
		}
		if err != nil {
			d.fail(w, r, err)
			return
		}
	}
	// A token for some apps hears of those only.
	t, _ := httpapi.TokenFrom(r.Context())
	after, given, err := resumeAfter(r)
	if err == nil && !given {
		after, err = d.cfg.Events.LastSequence(r.Context())
	}
	if err != nil {
		d.fail(w, r, err)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		d.fail(w, r, errors.New("this connection cannot stream"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// retry: how soon the browser reconnects after the stream drops.
	_, _ = fmt.Fprint(w, "retry: 1000\n\n")
	flusher.Flush()

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-d.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	// Events and heartbeats are written by this goroutine only.
	arrived := make(chan liveEvent)
	followErr := make(chan error, 1)
	go func() {
		send := func(env events.Envelope, _ error) error {
			if t.Authorize(auth.Read, env.App) != nil {
				return nil
			}
			select {
			case arrived <- liveEvent{Sequence: env.Sequence, App: env.App, Type: env.Type}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if app != "" {
			followErr <- d.cfg.Events.FollowApp(ctx, app, after+1, send)
		} else {
			followErr <- d.cfg.Events.Follow(ctx, after+1, send)
		}
	}()
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case ev := <-arrived:
			data, _ := json.Marshal(ev) // a struct of strings and numbers
			if _, err := fmt.Fprintf(w, "id: %d\nevent: change\ndata: %s\n\n", ev.Sequence, data); err != nil {
				return
			}
			flusher.Flush()
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			flusher.Flush()
		case err := <-followErr:
			if err != nil && ctx.Err() == nil {
				d.cfg.Logger.Warn("dashboard: live stream stopped", "app", app, "error", err)
			}
			return
		}
	}
}

// resumeAfter returns the sequence a live stream starts after: the
// Last-Event-ID of a reconnecting browser, else the after parameter; given
// is false when the request names neither (the stream then starts at the
// log's end).
func resumeAfter(r *http.Request) (after uint64, given bool, err error) {
	text, what := r.Header.Get("Last-Event-ID"), "Last-Event-ID"
	if text == "" {
		text, what = r.URL.Query().Get("after"), "after"
	}
	if text == "" {
		return 0, false, nil
	}
	seq, err := strconv.ParseUint(text, 10, 64)
	if err != nil {
		return 0, false, badRequest(fmt.Sprintf("%s %q: want a stream sequence", what, text))
	}
	return seq, true, nil
}
