package runner

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/revline/revline/events"
)

func params(minC, maxC, buffer int, keepAlive events.Seconds) events.RuntimeParams {
	return events.RuntimeParams{MinConcurrency: minC, MaxConcurrency: maxC, ConcurrencyBuffer: buffer, KeepAlive: keepAlive, RequestTimeout: 60}
}

func TestDesiredRunnersFollowsFalsFormula(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                 string
		p                    events.RuntimeParams
		multiplexing, demand int
		want                 int
	}{
		{"no demand scales to zero", params(0, 10, 0, 60), 1, 0, 0},
		{"no demand keeps min_concurrency", params(2, 10, 0, 60), 1, 0, 2},
		{"one request needs one runner", params(0, 10, 0, 60), 1, 1, 1},
		{"demand is divided by max_multiplexing, rounded up", params(0, 10, 0, 60), 4, 9, 3},
		{"the buffer comes on top", params(0, 10, 2, 60), 4, 9, 5},
		{"the buffer alone keeps runners warm", params(0, 10, 1, 60), 1, 0, 1},
		{"max_concurrency caps", params(0, 3, 1, 60), 1, 50, 3},
		{"max_multiplexing 0 counts as 1", params(0, 10, 0, 60), 0, 2, 2},
		{"a percentage buffer is of the runners the demand needs, rounded up", withPerc(params(0, 20, 0, 60), 50), 1, 5, 8},
		{"the larger buffer wins", withPerc(params(0, 20, 4, 60), 50), 1, 5, 9},
		{"no demand, no percentage buffer", withPerc(params(0, 20, 0, 60), 50), 1, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := desiredRunners(tc.p, tc.multiplexing, tc.demand); got != tc.want {
				t.Fatalf("desiredRunners = %d, want %d", got, tc.want)
			}
		})
	}
}

func withPerc(p events.RuntimeParams, perc int) events.RuntimeParams {
	p.ConcurrencyBufferPerc = perc
	return p
}

// Demand starts a runner only once requests have waited scaling_delay
// without a break; with nothing waiting there is nothing to wait for.
func TestScalingDelayCountsFromWhenRequestsBeganToWait(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	p := params(0, 10, 0, 60)
	p.ScalingDelay = 5
	for _, tc := range []struct {
		name        string
		queuedSince time.Time
		want        time.Duration
	}{
		{"nothing waits", time.Time{}, 0},
		{"waiting for 2s of 5", now.Add(-2 * time.Second), 3 * time.Second},
		{"waited long enough", now.Add(-6 * time.Second), 0},
	} {
		if got := scalingDelayLeft(p, tc.queuedSince, now); got != tc.want {
			t.Errorf("%s: %v left, want %v", tc.name, got, tc.want)
		}
	}
	if got := scalingDelayLeft(params(0, 10, 0, 60), now, now); got != 0 {
		t.Errorf("without scaling_delay: %v left", got)
	}
}

func TestStartReasonNamesMinConcurrencyOrDemand(t *testing.T) {
	t.Parallel()
	if got := startReason(params(2, 10, 0, 60), 1); got != reasonMinConcurrency {
		t.Fatalf("below the minimum: %q", got)
	}
	if got := startReason(params(2, 10, 0, 60), 2); got != reasonDemand {
		t.Fatalf("at the minimum: %q", got)
	}
}

func TestPlanScaleDown(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	for _, tc := range []struct {
		name        string
		runners     []string
		desired     int
		p           events.RuntimeParams
		idleSince   map[string]time.Time
		wantStop    []string
		wantReason  string
		wantRecheck time.Duration
	}{
		{
			name: "runners the demand needs stay, and are looked at again", runners: []string{"a", "b"}, desired: 2, p: params(0, 10, 0, 60),
			idleSince: map[string]time.Time{"a": ago(time.Hour)}, wantReason: reasonKeepAlive, wantRecheck: 60 * time.Second,
		},
		{
			name: "runners at min_concurrency are not looked at", runners: []string{"a"}, desired: 1, p: params(1, 10, 0, 60),
			idleSince: map[string]time.Time{"a": ago(time.Hour)},
		},
		{
			name: "an idle runner past keep_alive stops", runners: []string{"a", "b"}, desired: 1, p: params(0, 10, 0, 60),
			idleSince: map[string]time.Time{"a": ago(61 * time.Second), "b": ago(61 * time.Second)}, wantStop: []string{"a"}, wantReason: reasonKeepAlive,
			wantRecheck: 60 * time.Second,
		},
		{
			name: "the longest idle goes first", runners: []string{"a", "b", "c"}, desired: 1, p: params(0, 10, 0, 60),
			idleSince: map[string]time.Time{"a": ago(70 * time.Second), "b": ago(5 * time.Minute), "c": ago(2 * time.Minute)},
			wantStop:  []string{"b", "c"}, wantReason: reasonKeepAlive, wantRecheck: 60 * time.Second,
		},
		{
			name: "a runner idle for less than keep_alive stays, and is looked at when it runs out", runners: []string{"a"}, desired: 0, p: params(0, 10, 0, 60),
			idleSince: map[string]time.Time{"a": ago(45 * time.Second)}, wantReason: reasonKeepAlive, wantRecheck: 15 * time.Second,
		},
		{
			name: "a busy runner stays; it could be idle for keep_alive at the earliest", runners: []string{"a"}, desired: 0, p: params(0, 10, 0, 60),
			idleSince: map[string]time.Time{}, wantReason: reasonKeepAlive, wantRecheck: 60 * time.Second,
		},
		{
			name: "one expired and one waiting: stop one, look again later", runners: []string{"a", "b"}, desired: 0, p: params(0, 10, 0, 60),
			idleSince: map[string]time.Time{"a": ago(2 * time.Minute), "b": ago(50 * time.Second)},
			wantStop:  []string{"a"}, wantReason: reasonKeepAlive, wantRecheck: 10 * time.Second,
		},
		{
			name: "keep_alive 0 with a busy runner is looked at again, but not at once", runners: []string{"a", "b"}, desired: 1, p: params(0, 10, 0, 0),
			idleSince: map[string]time.Time{"b": ago(0)}, wantStop: []string{"b"}, wantReason: reasonKeepAlive, wantRecheck: minRecheck,
		},
		{
			name: "above max_concurrency, the newest stop at once, busy or not", runners: []string{"a", "b", "c", "d"}, desired: 2, p: params(0, 2, 0, 60),
			idleSince: map[string]time.Time{}, wantStop: []string{"c", "d"}, wantReason: reasonMaxConcurrency,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := planScaleDown(tc.runners, tc.desired, tc.p, tc.idleSince, now)
			if !slices.Equal(got.stop, tc.wantStop) || got.recheck != tc.wantRecheck || (got.reason != tc.wantReason && (len(got.stop) > 0 || got.recheck > 0)) {
				t.Fatalf("plan = %+v, want stop %v (%s), recheck %v", got, tc.wantStop, tc.wantReason, tc.wantRecheck)
			}
		})
	}
}

// The countdown `apps runners` shows is the scale-down plan's: once the
// last countdown has run out (the runners still idle), planScaleDown stops
// exactly the runners that had one.
func TestKeepAliveExpiriesAreWhenPlanScaleDownStops(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	for _, tc := range []struct {
		name      string
		runners   []string
		desired   int
		p         events.RuntimeParams
		idleSince map[string]time.Time
		want      map[string]time.Time
	}{
		{
			name: "the longest idle runner above the demand counts down", runners: []string{"a", "b", "c"}, desired: 2, p: params(0, 10, 0, 60),
			idleSince: map[string]time.Time{"a": ago(10 * time.Second), "b": ago(30 * time.Second)},
			want:      map[string]time.Time{"b": now.Add(30 * time.Second)},
		},
		{
			name: "idle runners within min_concurrency do not count down", runners: []string{"a", "b"}, desired: 0, p: params(2, 10, 0, 60),
			idleSince: map[string]time.Time{"a": ago(time.Second), "b": ago(time.Second)},
		},
		{
			name: "busy runners in excess do not count down; idle ones do", runners: []string{"a", "b", "c"}, desired: 0, p: params(0, 10, 0, 60),
			idleSince: map[string]time.Time{"c": ago(5 * time.Second)},
			want:      map[string]time.Time{"c": now.Add(55 * time.Second)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := keepAliveExpiries(tc.runners, tc.desired, tc.p, tc.idleSince)
			if len(got) != len(tc.want) {
				t.Fatalf("expiries %v, want %v", got, tc.want)
			}
			var last time.Time
			for id, at := range tc.want {
				if !got[id].Equal(at) {
					t.Errorf("runner %s expires %v, want %v", id, got[id], at)
				}
				if at.After(last) {
					last = at
				}
			}
			if len(got) == 0 {
				return
			}
			plan := planScaleDown(tc.runners, tc.desired, tc.p, tc.idleSince, last)
			slices.Sort(plan.stop)
			if want := slices.Sorted(maps.Keys(got)); !slices.Equal(plan.stop, want) {
				t.Errorf("at %v planScaleDown stops %v, the countdown said %v", last, plan.stop, want)
			}
		})
	}
}
