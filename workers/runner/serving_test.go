//go:build linux

package runner_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revline/revline/events"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/workers/gateway"
)

// load sends requests for app through the gateway from a few clients,
// mixing quick and slow ones, until stopped, and counts what happened.
type load struct {
	sent, failed atomic.Int64
	mu           sync.Mutex
	failures     []string
	byRevision   map[string]int
	stop         context.CancelFunc
	done         sync.WaitGroup
}

func startLoad(t *testing.T, s *stack, app string, clients int) *load {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{stop: cancel, byRevision: map[string]int{}}
	for c := range clients {
		l.done.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				path := "/"
				if (c+i)%2 == 0 {
					path = "/slow?ms=150"
				}
				status, revision, err := gatewayGet(context.WithoutCancel(ctx), s, app, path)
				l.sent.Add(1)
				l.mu.Lock()
				if err != nil || status != http.StatusOK {
					l.failed.Add(1)
					l.failures = append(l.failures, fmt.Sprintf("%s: %d %v", path, status, err))
				}
				l.byRevision[revision]++
				l.mu.Unlock()
			}
		})
	}
	t.Cleanup(func() { l.stop(); l.done.Wait() })
	return l
}

// finish stops the load and returns how many requests failed.
func (l *load) finish(t *testing.T) {
	t.Helper()
	l.stop()
	l.done.Wait()
	if l.failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed: %v", l.failed.Load(), l.sent.Load(), l.failures)
	}
	t.Logf("%d requests, none failed; by revision: %v", l.sent.Load(), l.byRevision)
}

func gatewayGet(ctx context.Context, s *stack, app, path string) (status int, revision string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.gwURL+"/apps/"+app+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return resp.StatusCode, "", err
	}
	return resp.StatusCode, resp.Header.Get(gateway.HeaderRevision), nil
}

func multiplexing(n int) events.Scale {
	return events.Scale{Code: events.CodeOverrides{MaxMultiplexing: &n}}
}

// serving is a stack with a worker and app "web" deployed with one echo
// runner that takes n requests at once.
func serving(t *testing.T, n int) (*stack, *eventLog) {
	t.Helper()
	return servingThrough(t, n, gateway.Config{})
}

// servingThrough is serving with a gateway configured by gwConfig.
func servingThrough(t *testing.T, n int, gwConfig gateway.Config) (*stack, *eventLog) {
	t.Helper()
	s := newStackWithGateway(t, gwConfig)
	log := s.follow(t, "web")
	s.startWorker(t)
	s.deploy(t, log, "web", runnerCommand)
	if n != events.DefaultCodeParams().MaxMultiplexing {
		s.execute(t, "web", multiplexing(n))
	}
	testsupport.Eventually(testContext(t), t, fmt.Sprintf("the gateway knows max_multiplexing %d", n), func() bool {
		route, _ := s.gw.Route("web")
		return route.MaxMultiplexing == n
	})
	return s, log
}

// A graceful rollout and a rolling set-rev under steady load, some of it
// slow, fail no request: whether the runner drains on SIGTERM, dies on it
// or ignores it, it gets SIGTERM only once its last request has ended.
func TestGracefulChangesUnderLoadFailNoRequest(t *testing.T) {
	t.Parallel()
	for _, onSIGTERM := range []string{"graceful", "die", "ignore"} {
		t.Run("sigterm="+onSIGTERM, func(t *testing.T) {
			t.Parallel()
			s := newStack(t)
			log := s.follow(t, "web")
			s.startWorker(t)
			command := "ECHO_RUNNER_SIGTERM=" + onSIGTERM + " exec " + runnerCommand
			first, _ := s.deploy(t, log, "web", command)
			second, _ := s.deploy(t, log, "web", command+" --second")
			s.execute(t, "web", multiplexing(4))

			l := startLoad(t, s, "web", 4)
			ro := s.execute(t, "web", events.Rollout{})
			log.waitFor(t, "rollout.completed", ro.LastSequence, func(env events.Envelope) bool {
				ev, ok := env.Event.(events.RolloutCompleted)
				return ok && ev.RolloutID == ro.RolloutID
			})
			o := s.execute(t, "web", events.SetRevision{RevisionID: first})
			// The first revision takes one request per runner (set-rev takes
			// the code parameters from it): the load gets it several runners.
			log.waitUntil(t, "runners moved to the first revision", onlyRevisionAfter(o.LastSequence, first))
			l.finish(t)
			if l.byRevision[first] == 0 || l.byRevision[second] == 0 {
				t.Fatalf("the load did not span the switch: %v", l.byRevision)
			}
		})
	}
}

// onlyRevisionAfter reports, once the log has passed sequence after,
// whether every live runner is an idle runner of revisionID (and there is
// one at least).
func onlyRevisionAfter(after uint64, revisionID string) func([]events.Envelope) bool {
	return func(envs []events.Envelope) bool {
		if len(envs) == 0 || envs[len(envs)-1].Sequence <= after {
			return false
		}
		live := liveRunners(envs)
		return len(live) > 0 && exactlyIdle(len(live), revisionID)(envs)
	}
}

// A force rollout cuts the requests in flight: each of their clients gets
// 502, and the rollout records exactly how many.
func TestForceRolloutRecordsTheRequestsItDropped(t *testing.T) {
	t.Parallel()
	s, log := serving(t, 8)

	const inFlight = 3
	statuses := make(chan int, inFlight)
	var clients sync.WaitGroup
	for range inFlight {
		clients.Go(func() {
			status, _, _ := gatewayGet(testContext(t), s, "web", "/slow?ms=60000")
			statuses <- status
		})
	}
	testsupport.Eventually(testContext(t), t, "3 requests in flight", func() bool {
		n := 0
		for _, c := range s.gw.Load("web").InFlight {
			n += c
		}
		return n == inFlight
	})
	o := s.execute(t, "web", events.Rollout{Force: true})
	done := log.waitFor(t, "rollout.completed", o.LastSequence, func(env events.Envelope) bool {
		ev, ok := env.Event.(events.RolloutCompleted)
		return ok && ev.RolloutID == o.RolloutID
	}).Event.(events.RolloutCompleted)
	clients.Wait()
	close(statuses)
	failed := 0
	for status := range statuses {
		if status == http.StatusBadGateway {
			failed++
		}
	}
	if failed != inFlight || done.DroppedRequests != failed {
		t.Fatalf("%d clients got 502, the rollout recorded %d dropped; want %d", failed, done.DroppedRequests, inFlight)
	}
}

// The runner itself never sees more than max_multiplexing requests at once.
func TestRunnerNeverGetsMoreThanMaxMultiplexing(t *testing.T) {
	t.Parallel()
	s, _ := serving(t, 2)

	var clients sync.WaitGroup
	for range 10 {
		clients.Go(func() {
			if status, _, err := gatewayGet(testContext(t), s, "web", "/slow?ms=100"); status != http.StatusOK {
				t.Errorf("request: %d %v", status, err)
			}
		})
	}
	clients.Wait()
	req, _ := http.NewRequestWithContext(testContext(t), http.MethodGet, s.gwURL+"/apps/web/stats", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "peak=2") {
		t.Fatalf("runner stats %q, want a peak of 2", body)
	}
}

// keepAlive makes the app's idle runners stop after d seconds.
func keepAlive(d events.Seconds) events.Scale {
	return events.Scale{Runtime: events.RuntimeOverrides{KeepAlive: &d}}
}

// liveCount reports whether exactly n runners are alive in the log.
func liveCount(n int) func([]events.Envelope) bool {
	return func(envs []events.Envelope) bool { return len(liveRunners(envs)) == n }
}

// Under load the app gets the runners fal's formula asks for, and once the
// load is gone they stop after keep_alive, down to min_concurrency (0).
func TestScalesUpWithDemandAndDownAfterKeepAlive(t *testing.T) {
	t.Parallel()
	s, log := serving(t, 1)
	s.execute(t, "web", keepAlive(1))

	const clients = 3
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			if status, _, err := gatewayGet(testContext(t), s, "web", "/slow?ms=1500"); status != http.StatusOK {
				t.Errorf("request under load: %d %v", status, err)
			}
		})
	}
	envs := log.waitUntil(t, "3 runners for 3 requests", liveCount(clients))
	started := 0
	for _, env := range envs {
		if ev, ok := runnerEvent(env); ok && ev.State == events.RunnerSetup && ev.Reason == "demand" {
			started++
		}
	}
	if started != clients-1 {
		t.Errorf("%d runners started for demand, want %d:\n%s", started, clients-1, describe(envs))
	}
	wg.Wait()
	envs = log.waitUntil(t, "every runner stopped after keep_alive", liveCount(0))
	stopped := 0
	for _, env := range envs {
		if ev, ok := runnerEvent(env); ok && ev.State == events.RunnerTerminated && strings.Contains(ev.Reason, "keep_alive expired") {
			stopped++
		}
	}
	if stopped != clients {
		t.Errorf("%d runners stopped for keep_alive, want %d:\n%s", stopped, clients, describe(envs))
	}
}

// An app scaled to zero starts a runner for the first request, which
// waits for it (a cold start) and succeeds.
func TestScaledToZeroAppStartsARunnerForTheFirstRequest(t *testing.T) {
	t.Parallel()
	s, log := serving(t, 1)
	o := s.execute(t, "web", keepAlive(0))
	log.waitUntil(t, "scaled to zero", func(envs []events.Envelope) bool {
		return envs[len(envs)-1].Sequence > o.LastSequence && liveCount(0)(envs)
	})
	status, revision, err := gatewayGet(testContext(t), s, "web", "/")
	if status != http.StatusOK || revision == "" {
		t.Fatalf("cold start: %d %q %v", status, revision, err)
	}
}

// A request to an app scaled to zero whose runner cannot start gets 503
// with Retry-After once the cold start failed, not after request_timeout
// (an hour); once runners start again, a request wakes the app as before.
func TestARequestToAnAppWhoseRunnersFailGets503Promptly(t *testing.T) {
	t.Parallel()
	command, flag := flaggedRunner(t)
	s := newStack(t)
	log := s.follow(t, "web")
	s.startWorker(t)
	s.deploy(t, log, "web", command)
	o := s.execute(t, "web", keepAlive(0))
	log.waitUntil(t, "scaled to zero", func(envs []events.Envelope) bool {
		return envs[len(envs)-1].Sequence > o.LastSequence && liveCount(0)(envs)
	})
	if route, _ := s.gw.Route("web"); route.RequestTimeout != time.Hour {
		t.Fatalf("request_timeout %s, want the default hour", route.RequestTimeout)
	}
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	status, header, body := gatewayDo(t, s, http.MethodGet, "web", "/", nil)
	if status != http.StatusServiceUnavailable || !strings.Contains(body, `"code":"app_backing_off"`) || header.Get("Retry-After") == "" {
		t.Fatalf("a request whose cold start failed: %d %v %s, want 503 app_backing_off with Retry-After", status, header, body)
	}

	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(testContext(t), t, "a request served once runners start again", func() bool {
		status, _, _ := gatewayGet(testContext(t), s, "web", "/")
		return status == http.StatusOK
	})
}

// gatewayDo sends a request for app through the gateway and returns the
// answer's status, headers and whole body.
func gatewayDo(t *testing.T, s *stack, method, app, path string, body io.Reader) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), method, s.gwURL+"/apps/"+app+path, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, string(got)
}

// A request that finds the app's queue full gets 503 with Retry-After,
// and one that runs past the app's request_timeout gets 504, from a real
// runner behind the real gateway.
func TestAFullQueueAndTimeoutsThroughARealRunner(t *testing.T) {
	t.Parallel()
	s, _ := servingThrough(t, 1, gateway.Config{QueueLimit: 1})
	one := 1
	s.execute(t, "web", events.Scale{Runtime: events.RuntimeOverrides{MaxConcurrency: &one}})

	// One request holds the only runner (max_concurrency 1), one waits in
	// the queue of one: the next is turned away.
	holdCtx, release := context.WithCancel(testContext(t))
	var held sync.WaitGroup
	for range 2 {
		held.Go(func() { _, _, _ = gatewayGet(holdCtx, s, "web", "/slow?ms=60000") })
	}
	testsupport.Eventually(testContext(t), t, "one request runs and one waits", func() bool {
		load, inFlight := s.gw.Load("web"), 0
		for _, n := range load.InFlight {
			inFlight += n
		}
		return inFlight == 1 && load.Queued == 1
	})
	status, header, body := gatewayDo(t, s, http.MethodGet, "web", "/", nil)
	if status != http.StatusServiceUnavailable || header.Get("Retry-After") == "" || !strings.Contains(body, "queue_full") {
		t.Errorf("a request over the queue: %d Retry-After %q %s, want 503 queue_full with Retry-After", status, header.Get("Retry-After"), body)
	}
	release()
	held.Wait()

	timeout := events.Seconds(1)
	s.execute(t, "web", events.Scale{Runtime: events.RuntimeOverrides{RequestTimeout: &timeout}})
	testsupport.Eventually(testContext(t), t, "the gateway knows request_timeout 1s", func() bool {
		route, _ := s.gw.Route("web")
		return route.RequestTimeout == time.Second
	})
	if status, _, body := gatewayDo(t, s, http.MethodGet, "web", "/slow?ms=5000", nil); status != http.StatusGatewayTimeout {
		t.Fatalf("a request past request_timeout: %d %s, want 504", status, body)
	}
}

// A 50 MB upload reaches the runner while the client is still sending it,
// and a chunked answer reaches the client chunk by chunk: the gateway
// buffers neither whole.
func TestBodiesStreamThroughTheGatewayToARealRunner(t *testing.T) {
	t.Parallel()
	s, _ := serving(t, 4)
	uploaded := func() int64 {
		_, _, stats := gatewayDo(t, s, http.MethodGet, "web", "/stats", nil)
		var inFlight, peak int
		var n int64
		if _, err := fmt.Sscanf(stats, "in_flight=%d peak=%d uploaded=%d", &inFlight, &peak, &n); err != nil {
			t.Fatalf("runner stats %q: %v", stats, err)
		}
		return n
	}

	const size, first = 50 << 20, 1 << 20
	body, sender := io.Pipe()
	answer := make(chan string, 1)
	go func() {
		status, _, got := gatewayDo(t, s, http.MethodPost, "web", "/upload", body)
		answer <- fmt.Sprintf("%d %s", status, strings.TrimSpace(got))
	}()
	chunk := make([]byte, 64<<10)
	write := func(n int) {
		for ; n > 0; n -= len(chunk) {
			if _, err := sender.Write(chunk[:min(n, len(chunk))]); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(first)
	testsupport.Eventually(testContext(t), t, "the runner reads the upload's first megabyte before the rest is sent", func() bool {
		return uploaded() >= first
	})
	write(size - first)
	_ = sender.Close()
	if got, want := <-answer, fmt.Sprintf("200 received=%d", size); got != want {
		t.Fatalf("upload: %s, want %s", got, want)
	}

	// Each chunk after the first is written only once the client, having
	// read the one before, asks for it: a gateway that waited for the
	// whole answer would wait forever.
	req, _ := http.NewRequestWithContext(testContext(t), http.MethodGet, s.gwURL+"/apps/web/stream?n=3&gated=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewReader(resp.Body)
	for i := range 3 {
		if i > 0 {
			if status, _, body := gatewayDo(t, s, http.MethodPost, "web", "/release", nil); status != http.StatusOK {
				t.Fatalf("release chunk %d: %d %s", i, status, body)
			}
		}
		if line, err := lines.ReadString('\n'); err != nil || line != fmt.Sprintf("chunk %d\n", i) {
			t.Fatalf("chunk %d: %q %v", i, line, err)
		}
	}
}

// A secret reaches the runners started after it is set, as an environment
// variable holding the very version the log names; running runners keep
// what they started with until a rollout. A secret whose value is gone
// from the store keeps new runners from starting, with a reason that names
// the secret and not its value.
func TestSecretsReachNewRunnersAsEnvironment(t *testing.T) {
	t.Parallel()
	s, log := serving(t, 4)
	ctx := testContext(t)
	env := func(name string) string {
		_, _, body := gatewayDo(t, s, http.MethodGet, "web", "/env?name="+name, nil)
		return body
	}
	setSecret := func(value string) {
		version, err := s.secrets.Put(ctx, "web", "HF_TOKEN", []byte(value))
		if err != nil {
			t.Fatal(err)
		}
		s.execute(t, "web", events.SetSecret{Name: "HF_TOKEN", Version: version})
	}

	setSecret("hf_first-value")
	if got := env("HF_TOKEN"); got != "" {
		t.Fatalf("a runner started before the secret sees %q", got)
	}
	s.execute(t, "web", events.Rollout{})
	log.waitUntil(t, "the rollout completed", func(envs []events.Envelope) bool {
		_, ok := envs[len(envs)-1].Event.(events.RolloutCompleted)
		return ok
	})
	if got := env("HF_TOKEN"); got != "hf_first-value" {
		t.Fatalf("after a rollout the runner sees HF_TOKEN=%q", got)
	}

	// A value put in the store without the command that names it is not
	// what the log says: a runner does not start on it, and the deploy
	// that needed one fails with a reason naming the secret.
	if _, err := s.secrets.Put(ctx, "web", "HF_TOKEN", []byte("hf_unrecorded")); err != nil {
		t.Fatal(err)
	}
	o := s.execute(t, "web", events.Deploy{Command: runnerCommand + " v2"})
	envs := log.waitUntil(t, "the deploy failed on the unrecorded value", func(envs []events.Envelope) bool {
		ev, ok := envs[len(envs)-1].Event.(events.RevisionFailed)
		return ok && ev.RevisionID == o.RevisionID && strings.Contains(ev.Reason, "HF_TOKEN")
	})
	for _, e := range envs {
		if strings.Contains(fmt.Sprintf("%+v", e.Event), "hf_") {
			t.Fatalf("an event quotes the secret's value: %+v", e.Event)
		}
	}
}

// runnerEnd returns the reason the runner's end was reported with, once it
// is in the log.
func runnerEnd(runnerID string) func([]events.Envelope) bool {
	return func(envs []events.Envelope) bool {
		ev, ok := runnerEvent(envs[len(envs)-1])
		return ok && ev.RunnerID == runnerID && ev.State == events.RunnerTerminated
	}
}

// A killed runner's requests in flight fail (502) and are counted in its
// end; a runner stopped with a replacement lets its request finish, and
// its replacement is ready before it starts to drain.
func TestStopAndKillOneRunner(t *testing.T) {
	t.Parallel()
	s, log := serving(t, 4)
	initial := idleRunners(log.snapshot())[0]
	first, revision := initial.RunnerID, initial.RevisionID
	one := 1
	s.execute(t, "web", events.Scale{Runtime: events.RuntimeOverrides{MinConcurrency: &one}})

	inFlight := make(chan int, 1)
	go func() {
		status, _, _ := gatewayGet(testContext(t), s, "web", "/slow?ms=60000")
		inFlight <- status
	}()
	testsupport.Eventually(testContext(t), t, "the request reached the runner", func() bool { return s.gw.Load("web").InFlight[first] == 1 })
	s.execute(t, "web", events.StopRunner{RunnerID: first, Force: true})
	envs := log.waitUntil(t, "the killed runner's end", runnerEnd(first))
	if ev, _ := runnerEvent(envs[len(envs)-1]); !strings.Contains(ev.Reason, "kill requested by alice; 1 in-flight request(s) dropped") {
		t.Errorf("killed runner's end: %q", ev.Reason)
	}
	if status := <-inFlight; status != http.StatusBadGateway {
		t.Errorf("the request on the killed runner got %d, want 502", status)
	}

	// min_concurrency keeps one runner up: another one starts.
	envs = log.waitUntil(t, "a runner is back", exactlyIdle(1, revision))
	second := idleRunners(envs)[0].RunnerID
	go func() {
		status, _, _ := gatewayGet(testContext(t), s, "web", "/slow?ms=1500")
		inFlight <- status
	}()
	testsupport.Eventually(testContext(t), t, "the request reached the runner", func() bool { return s.gw.Load("web").InFlight[second] == 1 })
	s.execute(t, "web", events.StopRunner{RunnerID: second, Replace: true})
	envs = log.waitUntil(t, "the stopped runner's end", runnerEnd(second))
	if status := <-inFlight; status != http.StatusOK {
		t.Errorf("the request on the runner stopped gracefully got %d, want 200", status)
	}
	// The replacement (started "replacing runner <id>") is idle before the
	// stopped runner drains.
	var replacement string
	var replacementIdle, drained uint64
	for _, env := range envs {
		ev, ok := runnerEvent(env)
		switch {
		case !ok:
		case ev.State == events.RunnerSetup && ev.Reason == "replacing runner "+second:
			replacement = ev.RunnerID
		case ev.RunnerID == replacement && ev.State == events.RunnerIdle && replacementIdle == 0:
			replacementIdle = env.Sequence
		case ev.RunnerID == second && ev.State == events.RunnerDraining:
			drained = env.Sequence
			if ev.Reason != "stop requested by alice" {
				t.Errorf("draining reason %q", ev.Reason)
			}
		}
	}
	if replacementIdle == 0 || drained == 0 || replacementIdle > drained {
		t.Fatalf("want the replacement idle before the stopped runner drains:\n%s", describe(envs))
	}
}

// With scaling_delay, a short burst that the running runner absorbs
// starts no runner: requests wait in the queue instead.
func TestScalingDelayLetsAShortBurstWait(t *testing.T) {
	t.Parallel()
	s, log := serving(t, 1)
	delay := events.Seconds(30)
	o := s.execute(t, "web", events.Scale{Runtime: events.RuntimeOverrides{ScalingDelay: &delay}})
	var burst sync.WaitGroup
	for range 3 {
		burst.Go(func() {
			if status, _, err := gatewayGet(testContext(t), s, "web", "/slow?ms=300"); status != http.StatusOK {
				t.Errorf("request in the burst: %d %v", status, err)
			}
		})
	}
	burst.Wait()
	for _, env := range log.snapshot() {
		if ev, ok := runnerEvent(env); ok && env.Sequence > o.LastSequence && ev.State == events.RunnerSetup {
			t.Fatalf("a runner started for a burst shorter than scaling_delay:\n%s", describe(log.snapshot()))
		}
	}
}
