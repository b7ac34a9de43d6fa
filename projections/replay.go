package projections

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/revline/revline/events"
)

// ErrReplayRunning is returned by Replay while another replay of the same
// model runs.
var ErrReplayRunning = errors.New("a replay of the read model is already running")

// ErrBeyondLog is wrapped by Replay's error when the sequence it is asked
// to replay to is past the end of the log.
var ErrBeyondLog = errors.New("past the end of the event log")

// ReplayLog is what Replay reads: the whole log in order, and where it
// ends (*events.JetStreamStore and *events.MemoryStore have both).
type ReplayLog interface {
	events.Follower
	// LastSequence returns the sequence of the log's last event.
	LastSequence(ctx context.Context) (uint64, error)
}

// ReplayOptions says what Replay builds.
type ReplayOptions struct {
	// ToSequence, if not 0, builds a generation of the log up to this
	// stream sequence only, compares the live generation with it and
	// leaves the live one serving: a model of the past switched in would
	// answer every query with the past as if it were now, and the
	// events after ToSequence would never be applied. Time travel
	// (`apps list-rev --at-seq`) is how to read the past.
	ToSequence uint64
}

// ReplayReport is what a replay did.
type ReplayReport struct {
	// Generation is the live model's generation after the replay: the
	// new one if Switched, else the one that kept serving.
	Generation uint64 `json:"generation"`
	// Switched is true when the new generation replaced the live one.
	Switched bool `json:"switched"`
	// ToSequence is the last stream sequence the new generation applied:
	// the live one's position at the switch, or ReplayOptions.ToSequence.
	ToSequence uint64 `json:"to_sequence"`
	// LiveSequence is the live generation's position when it was compared
	// with the new one (equal to ToSequence once Switched).
	LiveSequence uint64 `json:"live_sequence"`
	// EventsRead counts the events the new generation read, Skipped those
	// of them it could not decode.
	EventsRead uint64 `json:"events_read"`
	Skipped    uint64 `json:"skipped"`
	// Seconds is how long the replay took, switch included.
	Seconds float64 `json:"seconds"`
	// Differences is what differs between the live generation and the
	// new one. After a switch it goes from the old live generation to the
	// new one: what a fixed (or broken) fold changed. With ToSequence it
	// goes from the generation at ToSequence to the live one: what
	// changed since then (Added: created since).
	Differences Differences `json:"differences"`
}

// MaxDifferenceDetails bounds Differences.Details.
const MaxDifferenceDetails = 20

// Differences compares two generations of the read model, an old one and
// a new one.
type Differences struct {
	Apps      Changes `json:"apps"`
	Revisions Changes `json:"revisions"`
	Runners   Changes `json:"runners"`
	Rollouts  Changes `json:"rollouts"`
	// Details names the first MaxDifferenceDetails differences, one line
	// each ("app web: revision v3 (01a2...) differs: status, fail_reason").
	Details []string `json:"details"`
}

// Changes counts the items of one kind that differ between generations.
type Changes struct {
	// Added are in the new generation only, Removed in the old one only,
	// Changed in both with different values.
	Added   int `json:"added"`
	Removed int `json:"removed"`
	Changed int `json:"changed"`
}

// None reports whether the generations are the same.
func (d Differences) None() bool {
	var zero Changes
	return d.Apps == zero && d.Revisions == zero && d.Runners == zero && d.Rollouts == zero
}

// Generation returns the number of the model's generation: 1 as built
// from the log by NewRevisionHistory and Run, one more for each replay
// that switched in a new one.
func (m *RevisionHistory) Generation() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.generation
}

// Replay rebuilds live from the log into a new generation and, unless
// opts.ToSequence is set, switches live to it, while live keeps answering
// queries and following the log (Run) all along.
//
// The new generation is built from sequence 1 up to the end of the log as
// it is when Replay starts, then follows the log until it has applied
// what live has; for its last few events live's applying of new ones
// pauses (queries do not), and live takes the new content in one step,
// under its lock, so that a reader sees either the old generation or the
// whole new one, and no event is applied twice or skipped across the
// switch (live's checkpoint does not move). The report counts what
// differed.
//
// It returns ErrReplayRunning while another Replay of live runs, an error
// wrapping ErrBeyondLog when opts.ToSequence is past the log's end, and
// an error wrapping ctx.Err() when ctx ends first (live is then left as
// it was).
func Replay(ctx context.Context, log ReplayLog, live *RevisionHistory, opts ReplayOptions) (ReplayReport, error) {
	if !live.replaying.TryLock() {
		return ReplayReport{}, ErrReplayRunning
	}
	defer live.replaying.Unlock()
	start := time.Now()
	end, err := log.LastSequence(ctx)
	if err != nil {
		return ReplayReport{}, fmt.Errorf("replay: %w", err)
	}
	target := end
	if opts.ToSequence > 0 {
		if opts.ToSequence > end {
			return ReplayReport{}, fmt.Errorf("replay to sequence %d: %w (%d)", opts.ToSequence, ErrBeyondLog, end)
		}
		target = opts.ToSequence
	}
	next := NewRevisionHistory()
	var report ReplayReport
	if err := next.feed(ctx, log, target, &report.EventsRead); err != nil {
		return ReplayReport{}, fmt.Errorf("replay: %w", err)
	}
	if opts.ToSequence > 0 {
		live.mu.RLock()
		old, liveAt, generation := dumpApps(live.apps), live.checkpoint, live.generation
		live.mu.RUnlock()
		report.Generation, report.LiveSequence = generation, liveAt
		report.Differences = compareGenerations(dumpApps(next.apps), old, sides{
			old: fmt.Sprintf("at sequence %d", next.checkpoint), fresh: "in the live model",
		})
	} else {
		if err := next.catchUpAndSwitch(ctx, log, live, &report); err != nil {
			return ReplayReport{}, fmt.Errorf("replay: %w", err)
		}
	}
	report.ToSequence, report.Skipped = next.checkpoint, next.skipped
	report.Seconds = time.Since(start).Seconds()
	return report, nil
}

// catchUpAndSwitch makes m (a new generation, used by nobody else) apply
// what live has, then gives live m's content. m's content belongs to live
// afterwards; m keeps only its checkpoint and counts.
//
// It first catches up while live moves on, then holds live's applying
// still (Apply and Skip wait; queries do not) to apply the few events
// live took meanwhile, compare and switch: so the switch happens at one
// checkpoint whatever the rate of new events.
func (m *RevisionHistory) catchUpAndSwitch(ctx context.Context, log events.Follower, live *RevisionHistory, report *ReplayReport) error {
	// Live may not have applied the log's end as it was at the start.
	if err := live.WaitFor(ctx, m.checkpoint); err != nil {
		return err
	}
	if err := m.feed(ctx, log, live.Checkpoint(), &report.EventsRead); err != nil {
		return err
	}
	fresh, old, err := m.switchTo(ctx, log, live, &report.EventsRead)
	if err != nil {
		return err
	}
	report.Generation, report.Switched, report.LiveSequence = live.Generation(), true, m.checkpoint
	// The old content is nobody's now: comparing it holds nothing up.
	report.Differences = compareGenerations(dumpApps(old), fresh, sides{old: "in the old generation", fresh: "in the new generation"})
	return nil
}

// switchLimit bounds the catch-up that holds the live model's new events
// back before a switch.
const switchLimit = 10 * time.Second

// switchTo holds live's applying still while m applies the events live
// took since m last caught up, then switches live to m's content. It
// returns what m's content showed at the switch and live's old content.
func (m *RevisionHistory) switchTo(ctx context.Context, log events.Follower, live *RevisionHistory, read *uint64) (map[string]appDump, map[string]*appRecord, error) {
	live.applying.Lock()
	defer live.applying.Unlock()
	// Live's checkpoint holds still now, at or past m's. New events wait
	// for this last catch-up: it gets switchLimit, not the replay's whole
	// time, and on a slow or unreachable NATS the switch is given up (the
	// live generation goes on as it was).
	ctx, cancel := context.WithTimeout(ctx, switchLimit)
	defer cancel()
	if err := m.feed(ctx, log, live.Checkpoint(), read); err != nil {
		return nil, nil, fmt.Errorf("replay: the last catch-up before the switch: %w", err)
	}
	fresh := dumpApps(m.apps) // before live owns (and changes) m's content
	return fresh, live.adopt(m), nil
}

// adopt switches m to next's content, at m's checkpoint, which next has
// reached (m.applying is held), and returns m's old content, which nothing
// refers to any more.
func (m *RevisionHistory) adopt(next *RevisionHistory) map[string]*appRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.apps
	m.apps, m.skipped = next.apps, next.skipped
	m.generation++
	return old
}

// errCaughtUp stops feed's Follow once the target sequence is reached.
var errCaughtUp = errors.New("caught up")

// feed follows log from m's checkpoint until m has applied stream
// sequence upTo, which must already be stored (it waits for it
// otherwise), counting the events it reads in *read. Events after upTo
// that the follower delivers in the same batch are not applied. It
// returns an error wrapping ctx.Err() once ctx ends.
func (m *RevisionHistory) feed(ctx context.Context, log events.Follower, upTo uint64, read *uint64) error {
	if m.Checkpoint() >= upTo {
		return nil
	}
	err := log.Follow(ctx, m.Checkpoint()+1, func(env events.Envelope, decodeErr error) error {
		if env.Sequence > upTo {
			return errCaughtUp
		}
		*read++
		_ = m.Handle(env, decodeErr)
		if m.Checkpoint() >= upTo {
			return errCaughtUp
		}
		return nil
	})
	if err == nil {
		err = errors.New("the log ended early")
	}
	if !errors.Is(err, errCaughtUp) {
		return fmt.Errorf("revision history: read the log up to sequence %d (reached %d): %w", upTo, m.Checkpoint(), err)
	}
	return nil
}

// appDump is everything the model knows of one app, as its views show it.
type appDump struct {
	app       AppView
	revisions map[string]RevisionView // every revision, deleted ones too
	runners   map[string]RunnerView   // terminated ones too
	rollouts  map[string]RolloutView
	// lastSwitch is the app's last alias move, if any.
	lastSwitch *SwitchView
}

// dumpApps returns every app's views. The caller holds the lock that
// guards apps, or nothing else refers to them.
func dumpApps(apps map[string]*appRecord) map[string]appDump {
	out := make(map[string]appDump, len(apps))
	for name, a := range apps {
		counts := a.runnerCounts()
		d := appDump{
			app: a.view(), revisions: make(map[string]RevisionView, len(a.revisions)),
			runners: make(map[string]RunnerView, len(a.runners)), rollouts: make(map[string]RolloutView, len(a.rollouts)),
		}
		for id, r := range a.revisions {
			d.revisions[id] = a.revisionView(r, counts)
		}
		for id, r := range a.runners {
			d.runners[id] = *r
		}
		for id, ro := range a.rollouts {
			d.rollouts[id] = *ro
		}
		if a.lastSwitch != nil {
			sw := *a.lastSwitch
			d.lastSwitch = &sw
		}
		out[name] = d
	}
	return out
}

// sides name the two generations compared, for Details ("only in the
// new generation").
type sides struct{ old, fresh string }

// compareGenerations lists what differs from the old generation's apps to
// the new one's.
func compareGenerations(old, fresh map[string]appDump, sides sides) Differences {
	d := Differences{Details: []string{}}
	detail := func(format string, args ...any) {
		if len(d.Details) < MaxDifferenceDetails {
			d.Details = append(d.Details, fmt.Sprintf(format, args...))
		}
	}
	names := slices.Sorted(maps.Keys(old))
	for name := range fresh {
		if _, ok := old[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		o, inOld := old[name]
		n, inNew := fresh[name]
		revisionName := func(id string) string {
			number := n.revisions[id].Number
			if r, ok := o.revisions[id]; ok {
				number = r.Number
			}
			return fmt.Sprintf("revision v%d (%s)", number, id)
		}
		changed := 0
		changed += compareItems(&d.Revisions, o.revisions, n.revisions, sides, func(id, what string) { detail("app %s: %s %s", name, revisionName(id), what) })
		changed += compareItems(&d.Runners, o.runners, n.runners, sides, func(id, what string) { detail("app %s: runner %s %s", name, id, what) })
		changed += compareItems(&d.Rollouts, o.rollouts, n.rollouts, sides, func(id, what string) { detail("app %s: rollout %s %s", name, id, what) })
		switch {
		case !inOld:
			d.Apps.Added++
			detail("app %s: only %s", name, sides.fresh)
		case !inNew:
			d.Apps.Removed++
			detail("app %s: only %s", name, sides.old)
		default:
			fields := changedFields(o.app, n.app)
			if !reflect.DeepEqual(o.lastSwitch, n.lastSwitch) {
				fields = append(fields, "last_switch")
			}
			if len(fields) > 0 {
				detail("app %s differs: %s", name, strings.Join(fields, ", "))
			}
			if len(fields) > 0 || changed > 0 {
				d.Apps.Changed++
			}
		}
	}
	return d
}

// compareItems counts into c the items (by id) that differ from old to
// fresh, reports each to detail in id order, and returns how many there
// were.
func compareItems[V any](c *Changes, old, fresh map[string]V, sides sides, detail func(id, what string)) int {
	ids := slices.Sorted(maps.Keys(old))
	for id := range fresh {
		if _, ok := old[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	n := 0
	for _, id := range ids {
		o, inOld := old[id]
		f, inNew := fresh[id]
		switch {
		case !inOld:
			c.Added++
			detail(id, "only "+sides.fresh)
		case !inNew:
			c.Removed++
			detail(id, "only "+sides.old)
		default:
			fields := changedFields(o, f)
			if len(fields) == 0 {
				continue
			}
			c.Changed++
			detail(id, "differs: "+strings.Join(fields, ", "))
		}
		n++
	}
	return n
}

// changedFields names (by their JSON names, embedded structs' fields
// flattened) the fields of two values of one struct type that differ.
func changedFields(a, b any) []string {
	var out []string
	var walk func(va, vb reflect.Value)
	walk = func(va, vb reflect.Value) {
		for i := range va.NumField() {
			field := va.Type().Field(i)
			if !field.IsExported() {
				continue
			}
			if field.Anonymous && field.Type.Kind() == reflect.Struct {
				walk(va.Field(i), vb.Field(i))
				continue
			}
			if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
				name, _, _ := strings.Cut(field.Tag.Get("json"), ",")
				if name == "" || name == "-" {
					name = strings.ToLower(field.Name)
				}
				out = append(out, name)
			}
		}
	}
	walk(reflect.ValueOf(a), reflect.ValueOf(b))
	return out
}
