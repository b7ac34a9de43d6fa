package cli

import (
	"testing"
	"time"
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
