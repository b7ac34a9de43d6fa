package audit_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/revline/revline/events"
	"github.com/revline/revline/projections/audit"
)

// describe shows a setting as "value <- how #seq by who (origin how #seq by who)".
func describe(s audit.Setting) string {
	out := fmt.Sprintf("%s <- %s #%d by %s", s.Value, s.Source.How, s.Source.Sequence, s.Source.By)
	if s.Origin != nil {
		out += fmt.Sprintf(" (from %s #%d by %s)", s.Origin.How, s.Origin.Sequence, s.Origin.By)
	}
	return out
}

func setting(t *testing.T, c audit.Config, param string) audit.Setting {
	t.Helper()
	for _, s := range c.Params {
		if s.Param == param {
			return s
		}
	}
	t.Fatalf("config has no %s: %+v", param, c.Params)
	return audit.Setting{}
}

func TestProvenanceAfterDeployScaleRollbackChains(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	h.standard()
	c, err := audit.Provenance(h.ctx, h.store, "my-model", audit.Point{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Revision != rev2 || c.Number != 2 || c.Sequence != 16 || len(c.Params) != len(audit.ParamNames) {
		t.Fatalf("config: revision %s v%d at %d, %d params", c.Revision, c.Number, c.Sequence, len(c.Params))
	}
	for param, want := range map[string]string{
		// Code: from v2's deploy request, applied by the roll-forward.
		"machine_type": "GPU-H100 <- roll-forward to v2 #12 by bob (from deploy request of v2 #4 by bob)",
		// Runtime: chosen by carol's scale, kept through both moves since.
		"min_concurrency": "2 <- inherited from v1 on roll-forward to v2 #12 by bob (from scale #10 by carol)",
		"keep_alive":      "300s <- inherited from v1 on roll-forward to v2 #12 by bob (from scale #10 by carol)",
		// Untouched since v1's first deploy, through every move.
		"max_concurrency": "10 <- inherited from v1 on roll-forward to v2 #12 by bob (from deploy request of v1 #1 by alice)",
	} {
		if got := describe(setting(t, c, param)); got != want {
			t.Errorf("%s:\n got %s\nwant %s", param, got, want)
		}
	}

	history, err := c.Blame("min_concurrency")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range history {
		got = append(got, describe(s))
	}
	want := []string{
		"0 <- deploy of v1 #3 by alice (from deploy request of v1 #1 by alice)",
		"0 <- inherited from v1 on deploy of v2 #9 by bob (from deploy request of v1 #1 by alice)",
		"2 <- scale #10 by carol",
		"2 <- inherited from v2 on rollback to v1 #11 by alice (from scale #10 by carol)",
		"2 <- inherited from v1 on roll-forward to v2 #12 by bob (from scale #10 by carol)",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("blame min_concurrency:\n got %q\nwant %q", got, want)
	}
	if rollback := history[3]; rollback.Source.Message != "v2 leaks memory" || !rollback.Source.Time.Equal(t0.Add(7*60e9)) {
		t.Errorf("the rollback's why and when: %+v", rollback.Source)
	}
	if _, err := c.Blame("min-concurrency"); err == nil || !strings.Contains(err.Error(), "min_concurrency") {
		t.Errorf("blame of an unknown parameter: %v", err)
	}
}

// A scale of a code parameter lasts until the next move of the alias,
// which takes the code from its revision again.
func TestProvenanceOfCodeScaledThenRolledBack(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	h.do("web", "alice", events.Deploy{RevisionID: rev1, Command: "run $PORT"})
	h.do("web", "worker:runner", events.CompleteDeploy{RevisionID: rev1})
	h.do("web", "bob", events.Deploy{RevisionID: rev2, Command: "run $PORT", ResetScale: true, Runtime: events.RuntimeOverrides{MinConcurrency: ptr(1)}})
	h.do("web", "worker:runner", events.CompleteDeploy{RevisionID: rev2})
	h.do("web", "carol", events.Scale{Code: events.CodeOverrides{MachineType: ptr("GPU-A100")}})
	scaled, err := audit.Provenance(h.ctx, h.store, "web", audit.Point{})
	if err != nil {
		t.Fatal(err)
	}
	if got := describe(setting(t, scaled, "machine_type")); got != "GPU-A100 <- scale #7 by carol" {
		t.Fatalf("machine_type after a code scale: %s", got)
	}
	if got := describe(setting(t, scaled, "min_concurrency")); got != "1 <- deploy of v2 #6 by bob (from deploy request of v2 #4 by bob)" {
		t.Fatalf("min_concurrency after a --reset-scale deploy: %s", got)
	}
	h.do("web", "alice", events.SetRevision{RevisionID: "v1"})
	back, err := audit.Provenance(h.ctx, h.store, "web", audit.Point{})
	if err != nil {
		t.Fatal(err)
	}
	if got := describe(setting(t, back, "machine_type")); got != "XS <- rollback to v1 #8 by alice (from deploy request of v1 #1 by alice)" {
		t.Fatalf("machine_type after the rollback: %s", got)
	}

	// As of an earlier sequence: before the scale.
	before, err := audit.Provenance(h.ctx, h.store, "web", audit.Point{Sequence: 6})
	if err != nil {
		t.Fatal(err)
	}
	if got := describe(setting(t, before, "machine_type")); before.Sequence != 6 || got != "XS <- deploy of v2 #6 by bob (from deploy request of v2 #4 by bob)" {
		t.Fatalf("machine_type at 6: %s (config at %d)", got, before.Sequence)
	}

	var none *audit.NoHistoryError
	if _, err := audit.Provenance(h.ctx, h.store, "nobody", audit.Point{}); !errors.As(err, &none) {
		t.Fatalf("an app without history: %v", err)
	}
}
