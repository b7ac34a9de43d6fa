package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/revline/revline/cmd/revline/internal/cli"
	"github.com/revline/revline/workers/runner/runnertest"
)

// binaries built once for every test: the revline binary (serve runs as a
// real process, so it can be killed with SIGKILL) and the runner it deploys.
var revlineBin, runnerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "revline-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	revlineBin = filepath.Join(dir, "revline")
	if b, err := exec.Command("go", "build", "-o", revlineBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build revline: %v\n%s", err, b)
		os.Exit(1)
	}
	if runnerBin, err = runnertest.BuildEchoRunner(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// serveProcess is `revline serve` running as a child process.
type serveProcess struct {
	dataDir    string
	cmd        *exec.Cmd
	exited     chan error
	natsURL    string
	httpURL    string
	gatewayURL string
	// tokens are the values of the tokens made by name (audit_e2e_test).
	tokens map[string]string
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startServe(t *testing.T, dataDir string, natsPort, httpPort int) *serveProcess {
	t.Helper()
	s := &serveProcess{
		natsURL: fmt.Sprintf("nats://127.0.0.1:%d", natsPort),
		httpURL: fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		exited:  make(chan error, 1),
		dataDir: dataDir,
	}
	gatewayAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s.gatewayURL = "http://" + gatewayAddr
	s.cmd = exec.Command(revlineBin, "serve", "--data-dir", dataDir,
		"--nats-listen", fmt.Sprintf("127.0.0.1:%d", natsPort),
		"--http-addr", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--gateway-addr", gatewayAddr,
		"--shutdown-grace", "5s")
	logFile, err := os.Create(filepath.Join(t.TempDir(), "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait(); logFile.Close() }()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			<-s.exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("serve log:\n%s", b)
		}
	})
	eventually(t, 30*time.Second, "serve answers /healthz", func() bool {
		resp, err := http.Get(s.httpURL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return s
}

func (s *serveProcess) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.exited:
		if sig == syscall.SIGTERM && err != nil {
			t.Fatalf("serve exited with %v after SIGTERM", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not exit")
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for delay := 10 * time.Millisecond; !cond(); delay = min(2*delay, 250*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(delay)
	}
}

type result struct {
	code           int
	stdout, stderr string
}

// revline runs a client command in-process against s.
func (s *serveProcess) revline(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := filepath.Join(s.dataDir, "auth", "admin.token") // made by serve
	code := cli.Main(ctx, append(args, "--nats-url", s.natsURL, "--token-file", admin, "--actor", "e2e"), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

func (s *serveProcess) mustJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	r := s.revline(t, append(args, "-o", "json")...)
	if r.code != 0 {
		t.Fatalf("revline %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("revline %s: %v in %q", strings.Join(args, " "), err, r.stdout)
	}
}

type revisionRow struct {
	RevisionID     string `json:"revision_id"`
	Status         string `json:"status"`
	Current        bool   `json:"current"`
	CreatedAt      string `json:"created_at"`
	MachineType    string `json:"machine_type"`
	KeepAlive      int    `json:"keep_alive"`
	MinConcurrency int    `json:"min_concurrency"`
	Message        string `json:"message"`
}

type runnerRow struct {
	RunnerID   string `json:"runner_id"`
	RevisionID string `json:"revision_id"`
	State      string `json:"state"`
	StartedAt  string `json:"started_at"`
	PID        int    `json:"pid"`
	Port       int    `json:"port"`
}

func (s *serveProcess) runners(t *testing.T, app string) []runnerRow {
	var rows []runnerRow
	s.mustJSON(t, &rows, "apps", "runners", app)
	return rows
}

// waitRunners waits until app has exactly n idle runners, all of revision
// and all answering on their port, and returns the pids of the processes
// serving them (below the shell that started each).
func (s *serveProcess) waitRunners(t *testing.T, app, revision string, n int) ([]runnerRow, []int) {
	t.Helper()
	var rows []runnerRow
	var pids []int
	eventually(t, 60*time.Second, fmt.Sprintf("%d idle runners of %s", n, revision), func() bool {
		rows = s.runners(t, app)
		if len(rows) != n {
			return false
		}
		for _, r := range rows {
			if r.RevisionID != revision || r.State != "idle" {
				return false
			}
		}
		var err error
		pids, err = servingPIDs(rows)
		return err == nil
	})
	return rows, pids
}

// servingPIDs asks each runner which process serves it.
func servingPIDs(rows []runnerRow) ([]int, error) {
	out := make([]int, len(rows))
	for i, r := range rows {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", r.Port))
		if err != nil {
			return nil, err
		}
		var revision, runnerID string
		_, err = fmt.Fscanf(resp.Body, "revision=%s runner=%s pid=%d", &revision, &runnerID, &out[i])
		resp.Body.Close()
		if err != nil || runnerID != r.RunnerID || revision != r.RevisionID {
			return nil, fmt.Errorf("runner %s answered as %s of %s: %v", r.RunnerID, runnerID, revision, err)
		}
	}
	return out, nil
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func waitDead(t *testing.T, pids []int) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("processes %v exited", pids), func() bool {
		return !slices.ContainsFunc(pids, alive)
	})
}

// get returns the body of a GET of the HTTP API's path.
func (s *serveProcess) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(s.httpURL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
	}
	return string(body)
}

// gatewayRequest sends a GET for app through the gateway in the
// background; the channel receives its status (0 if it got none).
func (s *serveProcess) gatewayRequest(t *testing.T, app, path string) <-chan int {
	t.Helper()
	status := make(chan int, 1)
	go func() {
		resp, err := http.Get(s.gatewayURL + "/apps/" + app + path)
		if err != nil {
			status <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	return status
}

// waitInFlight waits until the runners of app, asked directly, are
// handling n requests between them.
func (s *serveProcess) waitInFlight(t *testing.T, app string, n int) {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("%d request(s) in flight", n), func() bool {
		total := 0
		for _, r := range s.runners(t, app) {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/stats", r.Port))
			if err != nil {
				return false
			}
			var inFlight, peak int
			_, err = fmt.Fscanf(resp.Body, "in_flight=%d peak=%d", &inFlight, &peak)
			resp.Body.Close()
			if err != nil {
				return false
			}
			total += inFlight
		}
		return total == n
	})
}

func deploy(t *testing.T, s *serveProcess, app string, extra ...string) (result, map[string]any) {
	t.Helper()
	r := s.revline(t, append([]string{"deploy", app, "--command", runnerBin, "-o", "json"}, extra...)...)
	var out map[string]any
	_ = json.Unmarshal([]byte(r.stdout), &out)
	return r, out
}

// TestBriefScenario runs the product brief's steps through the CLI against
// a real server with real runner processes.
func TestBriefScenario(t *testing.T) {
	dataDir := t.TempDir()
	natsPort, httpPort := freePort(t), freePort(t)
	s := startServe(t, dataDir, natsPort, httpPort)
	const app = "my-model"

	// Deploy two revisions.
	r, v1 := deploy(t, s, app, "--message", "first", "--keep-alive", "120", "--machine-type", "GPU-A100")
	if r.code != 0 || v1["status"] != "deployed" {
		t.Fatalf("deploy v1: exit %d %v %s", r.code, v1, r.stderr)
	}
	rev1 := v1["revision_id"].(string)
	r, v2 := deploy(t, s, app, "--message", "second", "--keep-alive", "999", "--machine-type", "GPU-H100")
	if r.code != 0 || v2["status"] != "deployed" {
		t.Fatalf("deploy v2: exit %d %v %s", r.code, v2, r.stderr)
	}
	rev2 := v2["revision_id"].(string)
	s.waitRunners(t, app, rev2, 1)

	// A failing deploy exits 1 and leaves the current revision current.
	r = s.revline(t, "deploy", app, "--command", "echo boom >&2; exit 3", "-o", "json")
	if r.code != 1 || !strings.Contains(r.stdout, `"failed"`) || !strings.Contains(r.stderr, "status 3") {
		t.Fatalf("failing deploy: exit %d, stdout %s, stderr %s", r.code, r.stdout, r.stderr)
	}

	// list-rev: newest first, v2 current, the failed one listed as failed;
	// v2 kept v1's runtime parameters (no --reset-scale) but its own code.
	var revs []revisionRow
	s.mustJSON(t, &revs, "apps", "list-rev", app)
	if len(revs) != 3 || revs[0].Status != "failed" || revs[1].RevisionID != rev2 || !revs[1].Current || revs[2].RevisionID != rev1 || revs[2].Current {
		t.Fatalf("list-rev = %+v", revs)
	}
	if revs[1].KeepAlive != 120 || revs[1].MachineType != "GPU-H100" {
		t.Fatalf("v2 should keep keep_alive 120 and have machine GPU-H100: %+v", revs[1])
	}
	if table := s.revline(t, "apps", "list-rev", app); table.code != 0 || !strings.Contains(table.stdout, "* current revision") {
		t.Fatalf("list-rev table: %+v", table)
	}

	// Roll back by an 8+ character prefix: runners move to v1.
	r = s.revline(t, "apps", "set-rev", app, rev1[:13])
	if r.code != 0 {
		t.Fatalf("set-rev: %+v", r)
	}
	s.waitRunners(t, app, rev1, 1)
	r = s.revline(t, "apps", "set-rev", app, rev1)
	if r.code != 0 || !strings.Contains(r.stdout, "already the current revision") {
		t.Fatalf("set-rev to current should be a reported no-op: %+v", r)
	}

	// The current revision cannot be deleted; another one can.
	r = s.revline(t, "apps", "delete-rev", app, rev1)
	if r.code != 1 || !strings.Contains(r.stderr, "current revision") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("delete current: %+v", r)
	}
	if r = s.revline(t, "apps", "delete-rev", app, rev2); r.code != 0 {
		t.Fatalf("delete v2: %+v", r)
	}
	s.mustJSON(t, &revs, "apps", "list-rev", app)
	if len(revs) != 2 || slices.ContainsFunc(revs, func(r revisionRow) bool { return r.RevisionID == rev2 }) {
		t.Fatalf("after delete: %+v", revs)
	}

	// Scale to two runners.
	if r = s.revline(t, "apps", "scale", app, "--min-concurrency", "2"); r.code != 0 {
		t.Fatalf("scale: %+v", r)
	}
	_, before := s.waitRunners(t, app, rev1, 2)

	// Graceful rollout with a request in flight through the gateway: the
	// request completes, every runner is replaced, old processes are gone.
	slow := s.gatewayRequest(t, app, "/slow?ms=1500")
	s.waitInFlight(t, app, 1)
	var ro map[string]any
	s.mustJSON(t, &ro, "apps", "rollout", app)
	if ro["status"] != "completed" || ro["replaced"] != float64(2) || ro["dropped_requests"] != float64(0) {
		t.Fatalf("graceful rollout: %v", ro)
	}
	if status := <-slow; status != http.StatusOK {
		t.Fatalf("the request in flight during a graceful rollout got %d", status)
	}
	waitDead(t, before)
	_, afterPIDs := s.waitRunners(t, app, rev1, 2)
	if slices.ContainsFunc(afterPIDs, func(p int) bool { return slices.Contains(before, p) }) {
		t.Fatalf("graceful rollout kept a runner: before %v after %v", before, afterPIDs)
	}

	// Force rollout with a request in flight: it is dropped (502) and
	// counted exactly.
	inflight := s.gatewayRequest(t, app, "/slow?ms=60000")
	s.waitInFlight(t, app, 1)
	s.mustJSON(t, &ro, "apps", "rollout", app, "--force")
	if ro["status"] != "completed" || ro["replaced"] != float64(2) || ro["dropped_requests"] != float64(1) {
		t.Fatalf("force rollout: %v", ro)
	}
	if status := <-inflight; status != http.StatusBadGateway {
		t.Fatalf("the request in flight during a force rollout got %d, want 502", status)
	}
	// Both requests are in the gateway's metrics, with their status.
	metrics := s.get(t, "/metrics")
	for _, series := range []string{`revline_gateway_requests_total{app="my-model",code="200"} 1`, `revline_gateway_requests_total{app="my-model",code="502"} 1`} {
		if !strings.Contains(metrics, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	waitDead(t, afterPIDs)
	_, forced := s.waitRunners(t, app, rev1, 2)

	// A clean stop drains every runner; a restart brings back the same state.
	s.stop(t, syscall.SIGTERM)
	waitDead(t, forced)
	s = startServe(t, dataDir, natsPort, httpPort)
	var revsAfter []revisionRow
	s.mustJSON(t, &revsAfter, "apps", "list-rev", app)
	if len(revsAfter) != len(revs) || revsAfter[1].RevisionID != rev1 || !revsAfter[1].Current {
		t.Fatalf("after restart list-rev = %+v, before %+v", revsAfter, revs)
	}
	_, restarted := s.waitRunners(t, app, rev1, 2)

	// kill -9: the restart leaves no orphan and brings the runners back.
	s.stop(t, syscall.SIGKILL)
	s = startServe(t, dataDir, natsPort, httpPort)
	waitDead(t, restarted)
	s.waitRunners(t, app, rev1, 2)

	// A retried deploy with the same idempotency key creates no second revision.
	r, first := deploy(t, s, app, "--idempotency-key", "build-42")
	if r.code != 0 {
		t.Fatalf("keyed deploy: %+v", r)
	}
	r, again := deploy(t, s, app, "--idempotency-key", "build-42")
	if r.code != 0 || again["revision_id"] != first["revision_id"] || again["duplicate"] != true {
		t.Fatalf("retried keyed deploy = %v, first %v (%s)", again, first, r.stderr)
	}
	s.mustJSON(t, &revs, "apps", "list-rev", app)
	if len(revs) != len(revsAfter)+1 {
		t.Fatalf("a retried deploy created a revision: %+v", revs)
	}
}

// The sequence that showed outcomes changing after a crash: a no-op scale,
// then a scale that changes the app, then kill -9 before JetStream has
// persisted the processor's acknowledgements, so that the last commands
// are delivered again after the restart. The no-op must stay a no-op: it
// must not undo the later scale.
func TestNoOpDoesNotTakeEffectAfterKill9(t *testing.T) {
	dataDir := t.TempDir()
	natsPort, httpPort := freePort(t), freePort(t)
	s := startServe(t, dataDir, natsPort, httpPort)
	const app = "r"
	if r, _ := deploy(t, s, app); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	for _, st := range []struct {
		flag, value string
		wantNoOp    bool
	}{
		{"--min-concurrency", "1", false},
		{"--keep-alive", "101", false},
		{"--min-concurrency", "1", true},
		{"--min-concurrency", "0", false},
	} {
		r := s.revline(t, "apps", "scale", app, st.flag, st.value, "-o", "json")
		if r.code != 0 || strings.Contains(r.stdout, `"noop"`) != st.wantNoOp {
			t.Fatalf("scale %s %s: %+v", st.flag, st.value, r)
		}
	}
	s.stop(t, syscall.SIGKILL)
	s = startServe(t, dataDir, natsPort, httpPort)
	// Commands are processed in order: once this one is answered, every
	// command delivered again after the restart has been too.
	if r := s.revline(t, "apps", "scale", app, "--keep-alive", "102"); r.code != 0 {
		t.Fatalf("scale after the restart: %+v", r)
	}
	var apps []struct {
		MinConcurrency int `json:"min_concurrency"`
		KeepAlive      int `json:"keep_alive"`
	}
	s.mustJSON(t, &apps, "apps", "list")
	if len(apps) != 1 || apps[0].MinConcurrency != 0 || apps[0].KeepAlive != 102 {
		t.Fatalf("after kill -9, apps = %+v; want min_concurrency 0 and keep_alive 102", apps)
	}
}
