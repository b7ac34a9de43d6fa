//go:build linux

package runner_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/revline/revline/events"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/workers/runner/runnertest"
)

// twoIdleRunners runs a crashable worker (see startCrashableWorker) that
// deploys "web" and gives it two idle runners that stay: min_concurrency
// 1, but keep_alive long enough that the second one is not stopped during
// the test (as after a burst of demand). It returns the revision.
func twoIdleRunners(t *testing.T, command string) (s *stack, log *eventLog, crash func(), rev string) {
	t.Helper()
	s = newStack(t)
	log = s.follow(t, "web")
	crash = s.startCrashableWorker(t)
	rev, _ = s.deploy(t, log, "web", command)
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
	s, log, crash, rev := twoIdleRunners(t, runnerCommand)

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
	if n := servingRunners(crashed); n != 2 || len(liveRunners(crashed)) != 3 {
		t.Fatalf("%d runners serving at the crash, want 2 and the one draining:\n%s", n, describe(crashed))
	}

	s.startWorker(t)
	completedAfterCrash(t, s, log, crashed, ro.RolloutID, rev)
}

// completedAfterCrash checks, once a worker runs again after the crash
// that left the log at crashed, that the rollout is completed with the two
// runners that were serving replaced for it, that no third runner comes
// back, and that keep_alive then scales the app down as usual.
func completedAfterCrash(t *testing.T, s *stack, log *eventLog, crashed []events.Envelope, rolloutID, rev string) {
	t.Helper()
	mark := crashed[len(crashed)-1].Sequence
	done := log.waitFor(t, "rollout.completed", mark, rolloutCompleted(rolloutID)).Event.(events.RolloutCompleted)
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
		t.Fatalf("%d runners started after the restart, want 2 (no surge runner is brought back):\n%s", len(started), describe(envs))
	}
	for _, reason := range started {
		if !strings.Contains(reason, "rollout "+rolloutID) || !strings.Contains(reason, "lost when the server restarted") {
			t.Errorf("runner started after the restart for %q, want the rollout and the lost runner named", reason)
		}
	}
}

// gatedIdleRunners is twoIdleRunners whose runners started from now on
// do not listen until the test opens gate.
func gatedIdleRunners(t *testing.T) (s *stack, log *eventLog, crash func(), rev string, gate runnertest.Gate) {
	t.Helper()
	gate = runnertest.NewGate(t)
	gate.Open(t)
	s, log, crash, rev = twoIdleRunners(t, gate.Command(runnerCommand))
	gate.Close(t)
	return s, log, crash, rev, gate
}

// A crash while a graceful rollout starts a replacement (in setup, next
// to the runner it replaces, which still serves) brings back two runners,
// not three: the replacement was no capacity of the app.
func TestACrashWhileARolloutStartsAReplacementBringsBackNoSurge(t *testing.T) {
	t.Parallel()
	s, log, crash, rev, gate := gatedIdleRunners(t)
	ro := s.execute(t, "web", events.Rollout{})
	log.waitUntil(t, "the rollout's first replacement in setup", func(envs []events.Envelope) bool {
		for _, r := range liveRunners(envs) {
			if r.State == events.RunnerSetup && r.Reason == "rollout "+ro.RolloutID {
				return true
			}
		}
		return false
	})
	crash()
	crashed := s.history(t, "web")
	if n := len(liveRunners(crashed)); n != 3 {
		t.Fatalf("%d runners alive at the crash, want the 2 serving and the replacement starting:\n%s", n, describe(crashed))
	}
	gate.Open(t)
	s.startWorker(t)
	completedAfterCrash(t, s, log, crashed, ro.RolloutID, rev)
}

// A force rollout cut short by a crash of the server after it killed a
// runner (cutting its request) and while the replacement starts counts,
// once completed after the restart, the request it dropped before the
// crash: the log has it. The requests in flight on the other runner when
// the server died failed with the server, not the rollout: nothing
// counted them, and they are not counted.
func TestAForceRolloutCutShortByACrashCountsTheRequestsItDroppedBefore(t *testing.T) {
	t.Parallel()
	s, log, crash, _, gate := gatedIdleRunners(t)
	slow := make(chan int, 2)
	for range 2 {
		go func() {
			status, _, _ := gatewayGet(testContext(t), s, "web", "/slow?ms=60000")
			slow <- status
		}()
	}
	testsupport.Eventually(testContext(t), t, "a slow request on each runner", func() bool {
		return s.gw.Load("web").Demand() == 2 && len(s.gw.Load("web").IdleSince) == 0
	})
	ro := s.execute(t, "web", events.Rollout{Force: true})
	log.waitUntil(t, "one runner killed and its replacement starting", func(envs []events.Envelope) bool {
		killed, starting := false, false
		for _, env := range envs {
			if ev, ok := runnerEvent(env); ok && env.Sequence > ro.LastSequence {
				killed = killed || ev.State == events.RunnerTerminated && strings.Contains(ev.Reason, "1 in-flight request(s) dropped")
				starting = starting || ev.State == events.RunnerSetup && ev.Reason == "rollout "+ro.RolloutID
			}
		}
		return killed && starting
	})
	if status := <-slow; status != http.StatusBadGateway {
		t.Fatalf("the request on the killed runner got %d, want 502", status)
	}
	crash()
	<-slow // cut by the crash
	crashed := s.history(t, "web")

	gate.Open(t)
	s.startWorker(t)
	done := log.waitFor(t, "rollout.completed", crashed[len(crashed)-1].Sequence, rolloutCompleted(ro.RolloutID)).Event.(events.RolloutCompleted)
	if done.DroppedRequests != 1 || done.Replaced != 2 {
		t.Fatalf("rollout completed %+v after the restart, want the 1 request dropped before the crash and 2 runners replaced (the old one left and the replacement lost in the crash)", done)
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
			s, log, crash, rev := twoIdleRunners(t, runnerCommand)
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
	s, log, crash, rev := twoIdleRunners(t, runnerCommand)
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
