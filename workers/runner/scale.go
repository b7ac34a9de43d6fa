package runner

import (
	"slices"
	"time"

	"github.com/revline/revline/events"
)

// Why the worker starts or stops a runner, recorded in the runner's
// reports so that the audit log explains every runner.
const (
	reasonDemand         = "demand"
	reasonMinConcurrency = "min_concurrency"
	reasonKeepAlive      = "keep_alive expired"
	reasonMaxConcurrency = "above max_concurrency"
)

// desiredRunners is fal's autoscaling rule: enough runners for the demand
// (requests in flight and waiting) at max_multiplexing requests each, plus
// a buffer of concurrency_buffer runners or concurrency_buffer_perc
// percent of those the demand needs (rounded up), whichever is more,
// within [min_concurrency, max_concurrency].
func desiredRunners(p events.RuntimeParams, multiplexing, demand int) int {
	multiplexing = max(multiplexing, 1)
	needed := (demand + multiplexing - 1) / multiplexing
	buffer := max(p.ConcurrencyBuffer, (needed*p.ConcurrencyBufferPerc+99)/100)
	return min(max(needed+buffer, p.MinConcurrency), p.MaxConcurrency)
}

// scalingDelayLeft is how much longer demand must wait before it starts a
// runner: scaling_delay counts from when requests began to wait without a
// break (queuedSince), so that a burst the runners absorb sooner starts
// none. With nothing waiting (a buffer to refill) there is no delay.
func scalingDelayLeft(p events.RuntimeParams, queuedSince, now time.Time) time.Duration {
	if queuedSince.IsZero() {
		return 0
	}
	return max(queuedSince.Add(p.ScalingDelay.Duration()).Sub(now), 0)
}

// startReason says why a runner beyond have is started to reach desired.
func startReason(p events.RuntimeParams, have int) string {
	if have < p.MinConcurrency {
		return reasonMinConcurrency
	}
	return reasonDemand
}

// scaleDown is the scale-down plan for the runners of the current
// revision: which to stop now and why, and when to look again.
type scaleDown struct {
	stop    []string
	reason  string
	recheck time.Duration // 0: nothing waits for a keep-alive to run out
}

// planScaleDown picks, among runners (oldest first) of which desired are
// needed, those to stop: at once those above max_concurrency, otherwise
// only runners idle for keep_alive (the longest idle first). A runner
// that has requests, or has not been idle that long, stays. While runners
// above min_concurrency remain, recheck says when the next keep-alive could
// run out (a busy runner's at the earliest keep_alive from now).
func planScaleDown(runners []string, desired int, p events.RuntimeParams, idleSince map[string]time.Time, now time.Time) scaleDown {
	if over := len(runners) - p.MaxConcurrency; over > 0 {
		return scaleDown{stop: slices.Clone(runners[len(runners)-over:]), reason: reasonMaxConcurrency}
	}
	keepAlive := p.KeepAlive.Duration()
	var expired []string
	recheck := keepAlive
	for _, id := range runners {
		since, idle := idleSince[id]
		if !idle {
			continue
		}
		if left := since.Add(keepAlive).Sub(now); left > 0 {
			recheck = min(recheck, left)
			continue
		}
		expired = append(expired, id)
	}
	plan := scaleDown{reason: reasonKeepAlive}
	if excess := len(runners) - desired; excess > 0 {
		slices.SortStableFunc(expired, func(x, y string) int { return idleSince[x].Compare(idleSince[y]) })
		plan.stop = expired[:min(excess, len(expired))]
	}
	if len(runners)-len(plan.stop) > p.MinConcurrency {
		plan.recheck = max(recheck, minRecheck)
	}
	return plan
}

// minRecheck bounds how often the worker looks again for keep-alives that
// ran out: with keep_alive 0 and busy runners it would otherwise spin.
const minRecheck = 250 * time.Millisecond

// keepAliveExpiries says when each runner that planScaleDown would stop
// for keep_alive will be stopped if it stays idle: of the runners (oldest
// first) of which desired are needed, the longest idle ones in excess, at
// keep_alive after they became idle. Busy runners and runners within the
// desired count have none. It is the countdown `apps runners` shows
// (fal's "expires in").
func keepAliveExpiries(runners []string, desired int, p events.RuntimeParams, idleSince map[string]time.Time) map[string]time.Time {
	excess := len(runners) - max(desired, p.MinConcurrency)
	if excess <= 0 {
		return nil
	}
	var idle []string
	for _, id := range runners {
		if _, ok := idleSince[id]; ok {
			idle = append(idle, id)
		}
	}
	slices.SortStableFunc(idle, func(x, y string) int { return idleSince[x].Compare(idleSince[y]) })
	out := make(map[string]time.Time, min(excess, len(idle)))
	for _, id := range idle[:min(excess, len(idle))] {
		out[id] = idleSince[id].Add(p.KeepAlive.Duration())
	}
	return out
}
