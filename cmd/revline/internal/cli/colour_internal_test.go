package cli

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/revline/revline/events"
	"github.com/revline/revline/projections"
)

func TestColourAndProgressDecisions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		terminal bool
		noColor  string
		want     bool
	}{
		{true, "", true},
		{true, "1", false},
		{true, "0", false}, // any value but "" turns colour off
		{false, "", false},
		{false, "1", false},
	} {
		if got := useColour(tc.terminal, tc.noColor); got != tc.want {
			t.Errorf("useColour(terminal %v, NO_COLOR %q) = %v, want %v", tc.terminal, tc.noColor, got, tc.want)
		}
	}
	for _, tc := range []struct {
		output   string
		terminal bool
		want     bool
	}{
		{outputTable, true, true},
		{outputWide, true, true},
		{outputJSON, true, false},
		{outputTable, false, false},
		{outputJSON, false, false},
	} {
		if got := showProgress(tc.output, tc.terminal); got != tc.want {
			t.Errorf("showProgress(-o %s, terminal %v) = %v, want %v", tc.output, tc.terminal, got, tc.want)
		}
	}
}

var sgr = regexp.MustCompile("\x1b\\[[0-9;]*m")

// Coloured tables are the plain ones with the status words coloured: the
// same columns, aligned as without colour.
func TestColouredTablesStayAligned(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC)
	revs := []projections.RevisionView{
		{Number: 12, RevisionID: "c0da738e-b3eb-5a14-a8b9-010f64ee3638", Status: events.StatusFailed, CreatedAt: now.Add(-time.Minute), Message: "broken"},
		{Number: 11, RevisionID: "a6fd1915-6aa1-5fb9-bfdb-373f5d227b2c", Status: events.StatusDeployed, Current: true, CrashBackoff: 1, Message: "crashes"},
		{Number: 9, RevisionID: "404066ce-21b7-575e-b67a-796cdbe658e6", Status: events.StatusDeploying, Message: "→ next"},
	}
	runners := []projections.RunnerView{
		{RunnerID: "r-1", RevisionID: revs[1].RevisionID, State: events.RunnerIdle},
		{RunnerID: "r-22", RevisionID: revs[1].RevisionID, State: events.RunnerDraining},
		{RunnerID: "r-333", RevisionID: revs[1].RevisionID, State: events.RunnerCrashBackoff, Restarts: 3},
		{RunnerID: "r-4444", RevisionID: revs[1].RevisionID, State: events.RunnerTerminated},
	}
	hooks := [][]string{{"3f2a9c0d81be", "active"}, {"a1", "disabled by alice 3m ago: receiver down"}}
	for _, wide := range []bool{false, true} {
		var plain, coloured strings.Builder
		for _, c := range []struct {
			b      *strings.Builder
			colour bool
		}{{&plain, false}, {&coloured, true}} {
			ts := tableStyle{now: now, wide: wide, colour: c.colour}
			ts.printRevisions(c.b, revs)
			ts.printRunners(c.b, runners)
			ts.statusTable(c.b, "ID\tSTATUS", hooks, 1)
		}
		if sgr.MatchString(plain.String()) {
			t.Fatalf("a table without colour has escape codes:\n%q", plain.String())
		}
		if got := sgr.ReplaceAllString(coloured.String(), ""); got != plain.String() {
			t.Fatalf("wide %v: the coloured table without its colours\n%s\ndiffers from the plain one\n%s", wide, got, plain.String())
		}
		for _, want := range []string{
			sgrRed + "failed" + sgrReset, sgrRed + "deployed, crash-looping", sgrYellow + "deploying" + sgrReset,
			sgrGreen + "idle" + sgrReset, sgrYellow + "draining" + sgrReset, sgrRed + "crash_backoff" + sgrReset, sgrFaint + "terminated" + sgrReset,
			sgrGreen + "active" + sgrReset, sgrYellow + "disabled by alice 3m ago: receiver down" + sgrReset,
		} {
			if !strings.Contains(coloured.String(), want) {
				t.Errorf("wide %v: the coloured tables lack %q:\n%q", wide, want, coloured.String())
			}
		}
		if strings.Contains(coloured.String(), "\x1b[32mSTATE") || strings.Contains(coloured.String(), "REVISION"+sgrReset) {
			t.Errorf("a header is coloured:\n%q", coloured.String())
		}
	}
}
