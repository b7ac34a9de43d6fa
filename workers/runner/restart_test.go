//go:build linux

package runner_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/revline/revline/events"
	"github.com/revline/revline/internal/testsupport"
)

// twoIdleRunners runs a crashable worker (see startCrashableWorker) that
// deploys "web" and gives it two idle runners that stay: min_concurrency
// 1, but keep_alive long enough that the second one is not stopped during
// the test (as after a burst of demand). It returns the revision.
func twoIdleRunners(t *testing.T) (s *stack, log *eventLog, crash func(), rev string) {
	t.Helper()
	s = newStack(t)
	log = s.follow(t, "web")
	crash = s.startCrashableWorker(t)
	rev, _ = s.deploy(t, log, "web", runnerCommand)
	two := 2
	s.execute(t, "web", events.Scale{Runtime: events.RuntimeOverrides{MinConcurrency: &two}})
	log.waitUntil(t, "two idle runners", exactlyIdle(2, rev))
	one, long := 1, events.Seconds(600)
	s.execute(t, "web", events.Scale{Runtime: events.RuntimeOverrides{MinConcurrency: &one, KeepAlive: &long}})
	return s, log, crash, rev
}

// backAfterCrash reports whether every runner the log believed alive at
// the crash (envs up to crashed) has been reported terminated, and the
// app has n idle runners of revisionID again.
func backAfterCrash(crashed []events.Envelope, n int, revisionID string) func([]events.Envelope) bool {
	before := liveRunners(crashed)
	return func(envs []events.Envelope) bool {
		live := liveRunners(envs)
		for id := range before {
			if _, alive := live[id]; alive {
				return false
			}
		}
		return exactlyIdle(n, revisionID)(envs)
	}
}

// serving counts the runners of envs that were serving, not being
// stopped.
func servingRunners(envs []events.Envelope) int {
	n := 0
	for _, r := range liveRunners(envs) {
		if r.State != events.RunnerDraining && r.State != events.RunnerTerminating {
			n++
		}
	}
	return n
}

// startedAfter returns the reasons of the runners started after sequence
// after.
func startedAfter(envs []events.Envelope, after uint64) []string {
	var reasons []string
	for _, env := range envs {
		if ev, ok := runnerEvent(env); ok && env.Sequence > after && ev.State == events.RunnerSetup {
			reasons = append(reasons, ev.Reason)
		}
	}
	return reasons
}

// history reads app's whole history from the store.
func (s *stack) history(t *testing.T, app string) []events.Envelope {
	t.Helper()
	envs, err := s.store.Load(testContext(t), app, 0)
	if err != nil {
		t.Fatal(err)
	}
	return envs
}

func rolloutCompleted(id string) func(events.Envelope) bool {
	return func(env events.Envelope) bool {
		ev, ok := env.Event.(events.RolloutCompleted)
		return ok && ev.RolloutID == id
	}
}

// A graceful rollout cut short by a crash of the server, while it waits
// for a slow request on the runner it drains, is completed after the
// restart: the worker replaces, for the rollout, each runner that was
// serving, and counts them. The runner it was draining is not brought
// back (no surge runner is kept), the replacements say which lost runner
// they replace, and keep_alive scales the app down as usual.
func TestARolloutCutShortByACrashIsCompletedAfterTheRestart(t *testing.T) {
	t.Parallel()
	s, log, crash, rev := twoIdleRunners(t)

	slow := make(chan int, 1)
	go func() {
		status, _, _ := gatewayGet(testContext(t), s, "web", "/slow?ms=60000")
		slow <- status
	}()
	testsupport.Eventually(testContext(t), t, "a slow request in flight", func() bool {
		return s.gw.Load("web").Demand() == 1
	})
	ro := s.execute(t, "web", events.Rollout{})
	log.waitUntil(t, "the rollout draining the runner with the slow request", func(envs []events.Envelope) bool {
		for id, r := range liveRunners(envs) {
			if r.State == events.RunnerDraining && s.gw.Load("web").InFlight[id] > 0 {
				return true
			}
		}
		return false
	})
	crash()
	<-slow // cut by the crash
	crashed := s.history(t, "web")
	mark := crashed[len(crashed)-1].Sequence
	if n := servingRunners(crashed); n != 2 {
		t.Fatalf("%d runners serving at the crash, want 2:\n%s", n, describe(crashed))
	}

	s.startWorker(t)
	done := log.waitFor(t, "rollout.completed", mark, rolloutCompleted(ro.RolloutID)).Event.(events.RolloutCompleted)
	if done.Replaced != 2 || done.DroppedRequests != 0 {
		t.Errorf("rollout completed %+v after the restart, want the 2 serving runners replaced and no request dropped", done)
	}
	log.waitUntil(t, "two idle runners after the restart", backAfterCrash(crashed, 2, rev))

	// Scaling decides again: the idle runner beyond min_concurrency goes
	// after keep_alive. (Its pass also comes after the restart's.)
	s.execute(t, "web", keepAlive(1))
	envs := log.waitUntil(t, "scaled down to min_concurrency", liveCount(1))
	started := startedAfter(envs, mark)
	if len(started) != 2 {
		t.Fatalf("%d runners started after the restart, want 2 (the one draining at the crash is not brought back):\n%s", len(started), describe(envs))
	}
	for _, reason := range started {
		if !strings.Contains(reason, "rollout "+ro.RolloutID) || !strings.Contains(reason, "lost when the server restarted") {
			t.Errorf("runner started after the restart for %q, want the rollout and the lost runner named", reason)
		}
	}
}

// A rollout the worker had not begun when the server crashed (requested
// while it was down) is completed after the restart with the runners
// replaced for it counted, graceful or force.
func TestARolloutPendingAcrossACrashCountsTheRunnersItReplaced(t *testing.T) {
	t.Parallel()
	for _, force := range []bool{false, true} {
		t.Run(fmt.Sprintf("force=%v", force), func(t *testing.T) {
			t.Parallel()
			s, log, crash, rev := twoIdleRunners(t)
			crash()
			ro := s.execute(t, "web", events.Rollout{Force: force})
			crashed := s.history(t, "web")

			s.startWorker(t)
			done := log.waitFor(t, "rollout.completed", ro.LastSequence, rolloutCompleted(ro.RolloutID)).Event.(events.RolloutCompleted)
			if done.Replaced != 2 || done.DroppedRequests != 0 {
				t.Errorf("rollout completed %+v, want 2 runners replaced, 0 requests dropped", done)
			}
			envs := log.waitUntil(t, "two idle runners after the restart", backAfterCrash(crashed, 2, rev))
			if started := startedAfter(envs, ro.LastSequence); len(started) != 2 || slices.ContainsFunc(started, func(r string) bool { return !strings.Contains(r, "rollout "+ro.RolloutID) }) {
				t.Fatalf("runners started after the restart for %q, want 2 for the rollout:\n%s", started, describe(envs))
			}
		})
	}
}

// After a restart the runners brought back beyond min_concurrency show
// their keep-alive countdown at once, not only after keep_alive stopped
// them.
func TestKeepAliveCountdownRightAfterARestart(t *testing.T) {
	t.Parallel()
	s, log, crash, rev := twoIdleRunners(t)
	crash()
	crashed := s.history(t, "web")

	w, _ := s.runWorker(t, s.client, true)
	envs := log.waitUntil(t, "two idle runners after the restart", backAfterCrash(crashed, 2, rev))
	for _, reason := range startedAfter(envs, crashed[len(crashed)-1].Sequence) {
		if !strings.Contains(reason, "lost when the server restarted") {
			t.Errorf("runner started after the restart for %q, want the lost runner it replaces named", reason)
		}
	}
	testsupport.Eventually(testContext(t), t, "one runner with a keep-alive countdown", func() bool {
		return len(w.KeepAliveExpiries("web")) == 1
	})
}
