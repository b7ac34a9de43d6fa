package aggregates_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
)

// TestDeciderInvariants drives the decider with random command sequences
// (valid and invalid, on a clock that only moves forward), evolves the
// accepted events, and checks after every step the rules the aggregate
// promises to keep whatever it is sent.
func TestDeciderInvariants(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		m := &machine{state: aggregates.App{Name: appName}, now: t0}
		steps := rapid.IntRange(1, 50).Draw(t, "steps")
		for i := range steps {
			// Up to 20 minutes between commands, so that a graceful rollout
			// sometimes outlives aggregates.RolloutStuckAfter.
			m.now = m.now.Add(time.Duration(rapid.IntRange(0, 20*60).Draw(t, "advance_seconds")) * time.Second)
			cmd := m.command(t)
			m.step(t, i, cmd)
		}
	})
}

// machine is the system under test plus what the generator remembers.
type machine struct {
	state   aggregates.App
	history []events.Envelope
	now     time.Time

	revisions []string // every revision id a deploy was asked for, in order
	rollouts  int
	// overtaken holds, by revision id, the target of the last set_revision
	// accepted while that revision was deploying: its completion must
	// leave the alias alone.
	overtaken map[string]string
}

// commandKinds is the mix of commands sent; deploys and their completions
// come more often so that sequences reach interesting states.
var commandKinds = []string{
	"deploy", "deploy", "deploy", "complete_deploy", "complete_deploy", "complete_deploy", "fail_deploy",
	"set_revision", "set_revision", "rollout", "complete_rollout", "delete_revision", "delete_revision",
	"scale", "scale", "suspend", "resume", "report_runner",
}

// rarely is true about one time in n (rapid favours small values, so a
// little more often).
func rarely(t *rapid.T, n int, label string) bool { return rapid.IntRange(1, n).Draw(t, label) == 1 }

func (m *machine) command(t *rapid.T) events.Command {
	kind := rapid.SampledFrom(commandKinds).Draw(t, "command")
	switch kind {
	case "deploy":
		id := revisionUUID(len(m.revisions) + 1)
		if len(m.revisions) > 0 && rarely(t, 10, "reuse_id") {
			id = rapid.SampledFrom(m.revisions).Draw(t, "reused_id")
		} else {
			m.revisions = append(m.revisions, id)
		}
		cmd := events.Deploy{
			RevisionID: id,
			Command:    runCommand,
			Code:       codeOverrides(t),
			Runtime:    runtimeOverrides(t),
			ResetScale: rapid.Bool().Draw(t, "reset_scale"),
			Strategy:   rapid.SampledFrom([]events.Strategy{"", events.StrategyRolling, events.StrategyRecreate}).Draw(t, "strategy"),
			Message:    freeText(t, "message", aggregates.MaxMessageBytes),
		}
		if rarely(t, 10, "no_run_command") {
			cmd.Command = ""
		}
		if rarely(t, 10, "bad_run_command") {
			cmd.Command = freeText(t, "run_command", aggregates.MaxCommandLineBytes)
		}
		if rarely(t, 4, "annotated") {
			cmd.Annotations = map[string]string{
				rapid.SampledFrom([]string{"git_sha", "ci/url", "bad key", ""}).Draw(t, "annotation_key"): freeText(t, "annotation", aggregates.MaxAnnotationValueBytes),
			}
		}
		if rarely(t, 10, "bad_strategy") {
			cmd.Strategy = "canary"
		}
		return cmd
	case "complete_deploy":
		return events.CompleteDeploy{RevisionID: m.deployingOrAny(t)}
	case "fail_deploy":
		return events.FailDeploy{
			RevisionID: m.deployingOrAny(t),
			Reason:     rapid.SampledFrom([]string{"exit status 1", "health check timed out", "exit status 1", "", freeText(t, "reason", aggregates.MaxReasonBytes)}).Draw(t, "reason"),
		}
	case "set_revision":
		return events.SetRevision{
			RevisionID: m.anyRevision(t),
			Strategy:   rapid.SampledFrom([]events.Strategy{"", "", events.StrategyRecreate, "blue-green"}).Draw(t, "strategy"),
			Message:    freeText(t, "message", aggregates.MaxMessageBytes),
		}
	case "rollout":
		m.rollouts++
		id := rolloutUUID(m.rollouts)
		if rarely(t, 20, "no_rollout_id") {
			id = ""
		}
		return events.Rollout{RolloutID: id, Force: rapid.Bool().Draw(t, "force")}
	case "complete_rollout":
		id := "ro-unknown"
		if m.state.Rollout != nil && !rarely(t, 5, "wrong_rollout") {
			id = m.state.Rollout.ID
		} else if m.rollouts > 0 {
			id = rolloutUUID(rapid.IntRange(1, m.rollouts).Draw(t, "old_rollout"))
		}
		return events.CompleteRollout{
			RolloutID:       id,
			Replaced:        count(t, "replaced"),
			DroppedRequests: count(t, "dropped"),
		}
	case "delete_revision":
		return events.DeleteRevision{RevisionID: m.anyRevision(t)}
	case "scale":
		return events.Scale{Runtime: runtimeOverrides(t)}
	case "suspend":
		return events.Suspend{}
	case "resume":
		return events.Resume{}
	case "report_runner":
		return events.ReportRunner{
			RunnerID:   rapid.SampledFrom([]string{runner1, runner2, "", "runner-1"}).Draw(t, "runner_id"),
			RevisionID: m.anyRevision(t),
			State:      rapid.SampledFrom([]events.RunnerState{events.RunnerRunning, events.RunnerDraining, events.RunnerTerminated, "asleep"}).Draw(t, "runner_state"),
			Reason:     freeText(t, "reason", aggregates.MaxReasonBytes),
		}
	}
	t.Fatalf("no generator for command kind %q", kind)
	return nil
}

// anyRevision is a known revision id, or now and then an unknown one.
func (m *machine) anyRevision(t *rapid.T) string {
	return rapid.SampledFrom(append(slices.Clone(m.revisions), "r-unknown")).Draw(t, "revision")
}

// deployingOrAny is mostly a revision being deployed, else any id.
func (m *machine) deployingOrAny(t *rapid.T) string {
	var pending []string
	for _, id := range m.revisions {
		if r, ok := m.state.Revisions[id]; ok && r.Status == events.StatusDeploying {
			pending = append(pending, id)
		}
	}
	if len(pending) > 0 && !rarely(t, 5, "other_revision") {
		return rapid.SampledFrom(pending).Draw(t, "deploying")
	}
	return m.anyRevision(t)
}

// freeText is mostly a harmless short text, now and then one at its size
// limit max, one over it, or one holding what a terminal could act on.
func freeText(t *rapid.T, label string, max int) string {
	if !rarely(t, 3, "odd_"+label) {
		return rapid.SampledFrom([]string{"", "v2", "new tokenizer\tfaster", "déploiement 🚀"}).Draw(t, label)
	}
	return rapid.SampledFrom([]string{
		strings.Repeat("é", max/2), strings.Repeat("x", max+1), "red \x1b[31m", "two\nlines", "bad \xff byte", "a\u202eb", "a\u009bb",
	}).Draw(t, label)
}

// count is a non-negative count, now and then -1.
func count(t *rapid.T, label string) int {
	if rarely(t, 10, "negative_"+label) {
		return -1
	}
	return rapid.IntRange(0, 8).Draw(t, label)
}

// codeOverrides sets each parameter one time in three, now and then to an
// invalid value.
func codeOverrides(t *rapid.T) events.CodeOverrides {
	var o events.CodeOverrides
	if rarely(t, 3, "set_machine_type") {
		o.MachineType = ptr(rapid.SampledFrom([]string{"XS", "GPU-A100", "XS", "GPU-A100", ""}).Draw(t, "machine_type"))
	}
	if rarely(t, 3, "set_max_multiplexing") {
		o.MaxMultiplexing = ptr(rapid.IntRange(1, 8).Draw(t, "max_multiplexing"))
		if rarely(t, 10, "zero_max_multiplexing") {
			*o.MaxMultiplexing = 0
		}
	}
	if rarely(t, 3, "set_startup_timeout") {
		o.StartupTimeout = ptr(events.Seconds(rapid.IntRange(1, 600).Draw(t, "startup_timeout")))
		if rarely(t, 10, "negative_startup_timeout") {
			*o.StartupTimeout = -1
		}
	}
	return o
}

// runtimeOverrides sets each parameter one time in three, now and then to
// zero or a negative value; min and max are drawn so that min > max
// happens too.
func runtimeOverrides(t *rapid.T) events.RuntimeOverrides {
	maybe := func(name string, lo, hi int) *int {
		if !rarely(t, 3, "set_"+name) {
			return nil
		}
		if rarely(t, 8, "negative_"+name) {
			return ptr(rapid.IntRange(-2, 0).Draw(t, name))
		}
		return ptr(rapid.IntRange(lo, hi).Draw(t, name))
	}
	seconds := func(p *int) *events.Seconds {
		if p == nil {
			return nil
		}
		return ptr(events.Seconds(*p))
	}
	return events.RuntimeOverrides{
		KeepAlive:         seconds(maybe("keep_alive", 0, 600)),
		MinConcurrency:    maybe("min_concurrency", 0, 6),
		MaxConcurrency:    maybe("max_concurrency", 1, 12),
		ConcurrencyBuffer: maybe("concurrency_buffer", 0, 4),
		RequestTimeout:    seconds(maybe("request_timeout", 1, 3600)),
	}
}

// step decides cmd, evolves what was accepted, and checks every invariant.
func (m *machine) step(t *rapid.T, i int, cmd events.Command) {
	before := cloneApp(m.state)
	evs, err := aggregates.Decide(m.state, cmd, m.now)
	if !reflect.DeepEqual(before, m.state) {
		t.Fatalf("step %d: Decide(%T) modified its state", i, cmd)
	}
	if err != nil {
		// A rejection changes nothing: no events, a well-formed reason.
		r := asRejection(t, err)
		if len(evs) != 0 {
			t.Fatalf("step %d: %T rejected (%s) but returned events %s", i, cmd, r.Code, dump(evs))
		}
		if slices.Contains(noOpCodes, r.Code) != r.NoOp {
			t.Fatalf("step %d: %T: code %q with NoOp=%t", i, cmd, r.Code, r.NoOp)
		}
		if !slices.Contains(rejectionCodes, r.Code) && !r.NoOp {
			t.Fatalf("step %d: %T: undocumented rejection code %q", i, cmd, r.Code)
		}
		t.Logf("step %d: %T%+v → %s", i, cmd, cmd, r.Code)
		return
	}
	if len(evs) == 0 {
		t.Fatalf("step %d: %T accepted with no events", i, cmd)
	}
	t.Logf("step %d: %T%+v → %s", i, cmd, cmd, dump(evs))
	for _, ev := range evs {
		env := envelope(uint64(len(m.history)+1), m.now, ev)
		m.history = append(m.history, env)
		m.state = aggregates.Evolve(m.state, env)
	}
	checkTransition(t, i, before, m.state, cmd, evs, m.overtaken)
	if c, ok := cmd.(events.SetRevision); ok {
		for id, rev := range before.Revisions {
			if rev.Status == events.StatusDeploying {
				if m.overtaken == nil {
					m.overtaken = map[string]string{}
				}
				m.overtaken[id] = c.RevisionID
			}
		}
	}
	for _, ev := range evs {
		checkEventText(t, i, ev)
	}
	checkInvariants(t, i, m.state)
	if folded := aggregates.Fold(appName, m.history); !reflect.DeepEqual(folded, m.state) {
		t.Fatalf("step %d: folding the history from scratch differs from the evolved state\nfolded  %s\nevolved %s",
			i, dump(folded), dump(m.state))
	}
}

// checkTransition checks what an accepted command did to the state.
func checkTransition(t *rapid.T, i int, before, after aggregates.App, cmd events.Command, evs []events.Event, overtaken map[string]string) {
	t.Helper()
	moved := false
	for _, ev := range evs {
		if _, ok := ev.(events.CurrentRevisionSet); ok {
			moved = true
		}
	}
	switch c := cmd.(type) {
	case events.CompleteDeploy:
		rev := before.Revisions[c.RevisionID]
		if rev == nil || rev.Status != events.StatusDeploying {
			t.Fatalf("step %d: completed a deploy of %s, which was not deploying", i, c.RevisionID)
		}
		if to, ok := overtaken[c.RevisionID]; ok {
			// A set-rev while it deployed: the rollback stands.
			if moved || after.Current != before.Current || after.Runtime != before.Runtime ||
				!reflect.DeepEqual(evs, []events.Event{events.RevisionDeployed{RevisionID: c.RevisionID, RolledBackTo: to}}) {
				t.Fatalf("step %d: complete_deploy of %s, overtaken by a set_revision to %s, moved the alias (%q → %q) or said %s",
					i, c.RevisionID, to, before.Current, after.Current, dump(evs))
			}
			break
		}
		if after.Current != c.RevisionID {
			t.Fatalf("step %d: complete_deploy of %s left the alias on %q", i, c.RevisionID, after.Current)
		}
		want := rev.Runtime
		if before.HasRuntime && !rev.ResetScale {
			want = before.Runtime
		}
		if after.Runtime != want {
			t.Fatalf("step %d: runtime after deploying %s = %+v, want %+v", i, c.RevisionID, after.Runtime, want)
		}
	case events.FailDeploy:
		if moved || after.Current != before.Current || after.Runtime != before.Runtime {
			t.Fatalf("step %d: a failed deploy moved the alias (%q → %q) or changed the runtime; events %s",
				i, before.Current, after.Current, dump(evs))
		}
	case events.SetRevision:
		target := before.Revisions[c.RevisionID]
		if target == nil || target.Deleted || target.Status != events.StatusDeployed || before.Suspended {
			t.Fatalf("step %d: set_revision to %s accepted, which is not a deployed revision of a running app", i, c.RevisionID)
		}
		if after.Current != c.RevisionID {
			t.Fatalf("step %d: set_revision to %s left the alias on %q", i, c.RevisionID, after.Current)
		}
		if after.Runtime != before.Runtime {
			t.Fatalf("step %d: set_revision changed the runtime %+v → %+v", i, before.Runtime, after.Runtime)
		}
		set, ok := evs[0].(events.CurrentRevisionSet)
		if len(evs) != 1 || !ok {
			t.Fatalf("step %d: set_revision produced %s", i, dump(evs))
		}
		if set.Code != target.Code {
			t.Fatalf("step %d: set_revision code = %+v, want the target's %+v", i, set.Code, target.Code)
		}
		if set.From != before.Current || set.InheritedFrom != before.Current {
			t.Fatalf("step %d: set_revision from %q recorded From=%q InheritedFrom=%q", i, before.Current, set.From, set.InheritedFrom)
		}
	case events.DeleteRevision:
		if c.RevisionID == before.Current {
			t.Fatalf("step %d: deleted the current revision %s", i, c.RevisionID)
		}
		if r := before.Revisions[c.RevisionID]; r == nil || r.Deleted {
			t.Fatalf("step %d: deleted %s, which was unknown or already deleted", i, c.RevisionID)
		}
	case events.Rollout:
		if before.Current == "" {
			t.Fatalf("step %d: rollout accepted without a current revision", i)
		}
	case events.Scale:
		if after.Runtime == before.Runtime {
			t.Fatalf("step %d: scale accepted without changing anything", i)
		}
	}
	if _, sets := cmd.(events.SetRevision); !sets {
		if _, completes := cmd.(events.CompleteDeploy); !completes && (moved || after.Current != before.Current) {
			t.Fatalf("step %d: %T moved the alias %q → %q", i, cmd, before.Current, after.Current)
		}
	}
}

// checkEventText checks that the free text an accepted event records keeps
// to the limits: within its size, valid UTF-8, nothing a terminal could act
// on but tab.
func checkEventText(t *rapid.T, i int, ev events.Event) {
	t.Helper()
	check := func(field, s string, max int) {
		if len(s) > max || !printable(strings.ReplaceAll(s, "\t", " ")) {
			t.Fatalf("step %d: %s recorded %s %.80q (%d bytes), beyond the limits", i, ev.EventType(), field, s, len(s))
		}
	}
	switch ev := ev.(type) {
	case events.RevisionCreated:
		check("command", ev.Command, aggregates.MaxCommandLineBytes)
		check("message", ev.Message, aggregates.MaxMessageBytes)
		if len(ev.Annotations) > aggregates.MaxAnnotations {
			t.Fatalf("step %d: %d annotations recorded", i, len(ev.Annotations))
		}
		for k, v := range ev.Annotations {
			check("annotation key", k, aggregates.MaxAnnotationKeyBytes)
			check("annotation value", v, aggregates.MaxAnnotationValueBytes)
		}
	case events.CurrentRevisionSet:
		check("message", ev.Message, aggregates.MaxMessageBytes)
	case events.RevisionFailed:
		check("reason", ev.Reason, aggregates.MaxReasonBytes)
	case events.RunnerStateChanged:
		check("reason", ev.Reason, aggregates.MaxReasonBytes)
	}
}

// checkInvariants checks what must hold of every state.
func checkInvariants(t *rapid.T, i int, s aggregates.App) {
	t.Helper()
	// At most one current revision: the alias names one revision or none,
	// and the one it names is live.
	if s.Current != "" {
		cur, ok := s.Revisions[s.Current]
		switch {
		case !ok:
			t.Fatalf("step %d: current revision %s does not exist", i, s.Current)
		case cur.Deleted:
			t.Fatalf("step %d: current revision %s is deleted", i, s.Current)
		case cur.Status != events.StatusDeployed:
			t.Fatalf("step %d: current revision %s is %s", i, s.Current, cur.Status)
		}
	}
	if s.HasRuntime != (s.Current != "") {
		t.Fatalf("step %d: HasRuntime=%t with current %q", i, s.HasRuntime, s.Current)
	}
	if rt := s.Runtime; s.HasRuntime && (rt.KeepAlive < 0 || rt.MinConcurrency < 0 || rt.MaxConcurrency < 1 ||
		rt.MinConcurrency > rt.MaxConcurrency || rt.ConcurrencyBuffer < 0 || rt.RequestTimeout < 1) {
		t.Fatalf("step %d: invalid effective runtime %+v", i, rt)
	}
	if s.Suspended && s.Current == "" {
		t.Fatalf("step %d: suspended app without a current revision", i)
	}
	for id, r := range s.Revisions {
		if r.ID != id {
			t.Fatalf("step %d: revision keyed %s has id %s", i, id, r.ID)
		}
		if r.Deleted && r.Status == events.StatusDeploying {
			t.Fatalf("step %d: revision %s was deleted while deploying", i, id)
		}
		if s.Suspended && r.Status == events.StatusDeploying {
			t.Fatalf("step %d: revision %s is deploying while the app is suspended", i, id)
		}
	}
	if ro := s.Rollout; ro != nil {
		if r, ok := s.Revisions[ro.RevisionID]; !ok || r.Deleted {
			t.Fatalf("step %d: rollout %s targets missing or deleted revision %s", i, ro.ID, ro.RevisionID)
		}
	}
}
