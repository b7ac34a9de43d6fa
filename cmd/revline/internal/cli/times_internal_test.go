package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/revline/revline/events"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/projections/audit"
)

func TestTimesInTablesAreRelativeExceptWide(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 15, 0, 0, 0, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		before time.Duration
		want   string
	}{
		{0, "just now"},
		{-500 * time.Millisecond, "just now"},
		{-3 * time.Second, "in 3s"},
		{42 * time.Second, "42s ago"},
		{5*time.Minute + 30*time.Second, "5m30s ago"},
		{5 * time.Minute, "5m ago"},
		{47*time.Minute + 59*time.Second, "47m ago"},
		{2*time.Hour + 59*time.Minute, "179m ago"},
		{5*time.Hour + 12*time.Minute, "5h12m ago"},
		{20*time.Hour + 12*time.Minute, "20h ago"},
		{76 * time.Hour, "3d4h ago"},
		{45 * 24 * time.Hour, "45d ago"},
	} {
		if got := (tableStyle{now: now}).at(now.Add(-tc.before)); got != tc.want {
			t.Errorf("%v before now: %q, want %q", tc.before, got, tc.want)
		}
	}
	wide := tableStyle{now: now, wide: true}
	if got := wide.at(now.Add(-time.Hour)); got != "2026-11-26T13:00:00Z" {
		t.Errorf("-o wide: %q, want RFC 3339 in UTC", got)
	}
	for _, ts := range []tableStyle{{now: now}, wide} {
		if got := ts.at(time.Time{}); got != "-" {
			t.Errorf("no time: %q, want -", got)
		}
	}
}

// Time travel's runner table counts uptimes as of the point it travelled
// to, not as of now: a runner up for 90 s then is not up for an hour.
func TestRunnersThenCountUptimeAsOfThen(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	started := now.Add(-time.Hour)
	runners := []projections.RunnerView{{RunnerID: "r1", RevisionID: "0193f1ee-5e6a", State: events.RunnerRunning, StartedAt: started, UpdatedAt: started}}
	then := audit.Runners{App: "web", Sequence: 7, Time: started.Add(30 * time.Second)}
	for _, tc := range []struct {
		name  string
		point audit.Point
		want  string
	}{
		{"at a sequence", audit.Point{Sequence: 7}, "30s"},
		{"at a time", audit.Point{Time: started.Add(90 * time.Second)}, "1m30s"},
	} {
		var out strings.Builder
		tableStyle{now: now}.printRunnersThen(&out, then, tc.point, runners)
		fields := strings.Fields(strings.Split(out.String(), "\n")[2])
		if len(fields) < 5 || fields[4] != tc.want {
			t.Errorf("%s: uptime %q, want %s:\n%s", tc.name, fields, tc.want, out.String())
		}
		if !strings.Contains(out.String(), "as of event 7") {
			t.Errorf("%s: no point in the heading:\n%s", tc.name, out.String())
		}
	}
}
