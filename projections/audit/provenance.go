package audit

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
)

// ParamNames lists every parameter of an app by wire name: the runtime
// ones, then the code ones.
var ParamNames = append(slices.Clone(events.RuntimeParamNames), "machine_type", "max_multiplexing", "startup_timeout")

// Source is an event that set a parameter.
type Source struct {
	Sequence uint64    `json:"sequence"`
	Type     string    `json:"type"`
	Time     time.Time `json:"time"`
	// By is who asked for it (Entry.By: the deployer for a deploy).
	By string `json:"by"`
	// Message is the why: the deploy's or the set-rev's message.
	Message string `json:"message,omitempty"`
	// How says what the event did to the parameter: "deploy of v3",
	// "scale", "inherited from v2 on rollback to v1".
	How string `json:"how"`
}

// Setting is one parameter's value and where it came from.
type Setting struct {
	Param string `json:"param"`
	// Value is shown as the CLI shows it: durations with their unit (300s).
	Value string `json:"value"`
	// Source is the event that last set the value, keeping it on a
	// deploy or rollback included.
	Source Source `json:"source"`
	// Origin is the event that chose the value (a scale, or a revision's
	// deploy request) when Source only kept it; nil when Source chose it.
	Origin *Source `json:"origin,omitempty"`
}

// Config is an app's effective configuration with the provenance of each
// parameter, as of a point in its history.
type Config struct {
	App string `json:"app"`
	// Revision is the current revision's id and Number its number; "" and
	// 0 before the first deploy.
	Revision string `json:"revision"`
	Number   uint64 `json:"number"`
	// Sequence is the last event of the app this configuration reflects.
	Sequence  uint64 `json:"sequence"`
	Suspended bool   `json:"suspended"`
	// Params are every parameter, in ParamNames order; none (empty)
	// before the first deploy.
	Params []Setting `json:"params"`
	// History holds, for each parameter, every setting it had, oldest
	// first: what `apps blame` shows.
	History map[string][]Setting `json:"-"`
}

// Blame returns the history of one parameter, oldest first, or an error
// naming the parameters there are.
func (c Config) Blame(param string) ([]Setting, error) {
	if !slices.Contains(ParamNames, param) {
		return nil, fmt.Errorf("unknown parameter %q: want one of %v", param, ParamNames)
	}
	return c.History[param], nil
}

// tracker follows the provenance of one app's parameters event by event.
// Its fields are exported for time travel's snapshots (snapshots.go).
type tracker struct {
	Current map[string]Setting
	History map[string][]Setting
	// Created is the deploy request of each revision, the origin of the
	// parameters it brings.
	Created map[string]Source
}

func newTracker() *tracker {
	return &tracker{Current: map[string]Setting{}, History: map[string][]Setting{}, Created: map[string]Source{}}
}

// observe records what env (its app's state before it: before) did to
// the parameters.
func (t *tracker) observe(before aggregates.App, env events.Envelope) {
	src := Source{Sequence: env.Sequence, Type: env.Type, Time: env.OccurredAt, By: requester(before, env)}
	switch ev := env.Event.(type) {
	case events.RevisionCreated:
		src.Message = ev.Message
		src.How = fmt.Sprintf("deploy request of v%d", aggregates.RevisionNumber(ev, before.LastNumber))
		t.Created[ev.RevisionID] = src
	case events.CurrentRevisionSet:
		t.switched(before, ev, src)
	case events.AppScaled:
		src.How = "scale"
		values := paramValues(ev.After, ev.CodeAfterFrom(ev.CodeBefore))
		for _, name := range ev.Changed {
			t.set(Setting{Param: name, Value: values[name], Source: src})
		}
	}
}

// switched records a move of the alias: code from the target revision,
// runtime inherited or taken from the target's deploy.
func (t *tracker) switched(before aggregates.App, ev events.CurrentRevisionSet, src Source) {
	to := revisionName(before, ev.To)
	move := "deploy of " + to
	switch {
	case ev.Reason == "rollback" && isForward(before, ev.From, ev.To):
		move = "roll-forward to " + to
	case ev.Reason == "rollback":
		move = "rollback to " + to
	}
	src.Message = ev.Message
	values := paramValues(ev.Runtime, ev.Code)
	origin, known := t.Created[ev.To]
	for _, name := range ParamNames {
		setting := Setting{Param: name, Value: values[name], Source: src}
		switch {
		case slices.Contains(ev.Inherited, name):
			setting.Source.How = fmt.Sprintf("inherited from %s on %s", revisionName(before, ev.InheritedFrom), move)
			if prev, ok := t.Current[name]; ok {
				setting.Origin = prev.origin()
			}
		default:
			setting.Source.How = move
			if known {
				setting.Origin = &origin
			}
		}
		t.set(setting)
	}
}

// origin is the event that chose s's value.
func (s Setting) origin() *Source {
	if s.Origin != nil {
		return s.Origin
	}
	src := s.Source
	return &src
}

func (t *tracker) set(s Setting) {
	t.Current[s.Param] = s
	t.History[s.Param] = append(t.History[s.Param], s)
}

// Provenance returns app's configuration as it was at p (the zero Point:
// now), with where each parameter came from, folded from the log with
// aggregates.Evolve. An app without events up to p is a *NoHistoryError.
func Provenance(ctx context.Context, log Log, app string, p Point) (Config, error) {
	f, err := foldApp(ctx, log, app, p)
	if err != nil {
		return Config{}, err
	}
	state, t := f.App, f.Tracker
	c := Config{App: app, Revision: state.Current, Sequence: f.Last, Suspended: state.Suspended, Params: []Setting{}, History: t.History}
	if r, ok := state.Revisions[state.Current]; ok {
		c.Number = r.Number
	}
	for _, name := range ParamNames {
		if s, ok := t.Current[name]; ok {
			c.Params = append(c.Params, s)
		}
	}
	return c, nil
}

// NoHistoryError reports an app with no events up to the point asked
// about.
type NoHistoryError struct {
	App string
	At  Point
}

// Error implements the error interface.
func (e *NoHistoryError) Error() string {
	if e.At == (Point{}) {
		return fmt.Sprintf("app %q has no history", e.App)
	}
	return fmt.Sprintf("app %q has no history up to %s", e.App, e.At)
}
