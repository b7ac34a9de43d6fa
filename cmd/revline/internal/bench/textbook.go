package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
)

// Case ids of the textbook comparison: Revline against what a naive
// event-sourced service does, on apps with a history of TextbookEvents.
const (
	CaseTextbookReload  = "textbook_reload_per_command"
	CaseCommandsHistory = "command_throughput_long_histories"
)

// Sizes and target of the textbook comparison (issue 11).
const (
	// TextbookApps apps of TextbookEvents events each take the commands,
	// one command in flight per app (fewer for a run of fewer than 20 ×
	// TextbookApps ops, so that a small run stays small).
	TextbookApps   = 16
	TextbookEvents = 1000
	// TargetTextbookSpeedup: Revline's throughput should be this many
	// times the textbook handler's.
	TargetTextbookSpeedup = 20
)

// textbook measures Revline's command throughput on TextbookApps apps of
// TextbookEvents events each (runner reports through the bus, one in
// flight per app, after one unmeasured command each), then a textbook handler's on as many apps of the same
// history: for every command it loads the app's whole history from the
// same event store, folds it, decides and appends with the
// expected-sequence check. The handler runs in process, with no bus, no
// signature and no outcome record: every cost it has, Revline has too.
func (h history) textbook(ctx context.Context, r *Report) error {
	inFlight := min(TextbookApps, max(1, h.ops/20))
	seed := func(prefix string) ([]seeded, error) {
		apps := make([]seeded, inFlight)
		for i := range apps {
			s, err := h.seedRevisions(ctx, fmt.Sprintf("%s-%02d", prefix, i), 1)
			if err == nil {
				err = h.seedReports(ctx, &s, TextbookEvents-2) // a deploy is two events
			}
			if err != nil {
				return nil, err
			}
			apps[i] = s
		}
		return apps, nil
	}
	revline, err := seed("history")
	if err != nil {
		return err
	}
	naive, err := seed("textbook")
	if err != nil {
		return err
	}
	viaRevline := func(w, _ int) error {
		o, err := h.client.Execute(ctx, events.NewCommand(revline[w].app, report(revline[w]), events.Metadata{Actor: "bench"}))
		if err == nil && o.Status != events.OutcomeAccepted {
			err = fmt.Errorf("outcome %s: %s", o.Status, o.Message)
		}
		return err
	}
	viaTextbook := func(w, _ int) error { return h.reloadAndDecide(ctx, naive[w].app, report(naive[w])) }
	// One unmeasured command per app first (Revline's cache is then warm,
	// as in the latency cases), then a fifth of --ops each: the textbook
	// handler is slow.
	ops := max(inFlight, h.ops/5)
	what := fmt.Sprintf("%d in flight over %d apps of %d events", inFlight, inFlight, TextbookEvents)
	cases := make([]Case, 2)
	for i, c := range []struct {
		name string
		op   func(w, i int) error
	}{{"Revline commands, " + what, viaRevline}, {"textbook handler (reload the whole history per command), " + what, viaTextbook}} {
		if _, err := measureInFlight("warm-up", inFlight, inFlight, c.op); err != nil {
			return err
		}
		if cases[i], err = measureInFlight(c.name, ops, inFlight, c.op); err != nil {
			return err
		}
	}
	fast, slow := cases[0], cases[1]
	r.Cases[CaseCommandsHistory], r.Cases[CaseTextbookReload] = fast, slow
	r.Comparisons["commands_vs_textbook_reload"] = compare(r.Cases, CaseCommandsHistory, CaseTextbookReload, &Target{MinThroughputRatio: TargetTextbookSpeedup})
	return nil
}

// reloadAndDecide is the textbook handler: load app's whole history, fold
// it, decide cmd, append its events after the last one loaded.
func (h history) reloadAndDecide(ctx context.Context, app string, cmd events.Command) error {
	history, err := h.store.Load(ctx, app, 0)
	if err != nil {
		return err
	}
	evs, err := aggregates.Decide(aggregates.Fold(app, history), cmd, time.Now())
	if err != nil {
		return err
	}
	envs := make([]events.Envelope, len(evs))
	for i, ev := range evs {
		envs[i] = events.NewEnvelope(app, ev, events.Metadata{Actor: "bench"}, time.Now())
	}
	var last uint64
	if len(history) > 0 {
		last = history[len(history)-1].Sequence
	}
	_, err = h.store.Append(ctx, app, last, envs)
	return err
}
