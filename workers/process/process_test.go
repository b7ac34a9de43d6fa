//go:build linux

package process_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/revline/revline/workers/process"
)

func TestNewSupervisorRequiresStateDir(t *testing.T) {
	t.Parallel()
	if _, err := process.NewSupervisor(process.Config{}); err == nil {
		t.Fatal("NewSupervisor without StateDir: want error")
	}
}

func TestStartReadyStop(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir := t.TempDir()
	s := newSupervisor(t, dir)

	spec := serveSpec("web-1", "EXTRA=extra value")
	spec.App, spec.RevisionID = "shop", "rev-42"
	p, err := s.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitReady(ctx, 20*time.Second); err != nil {
		t.Fatal(err)
	}

	if p.RunnerID() != "web-1" || p.StartedAt().IsZero() || p.LogPath() != filepath.Join(dir, "logs", "shop", "web-1.log") {
		t.Errorf("RunnerID, StartedAt, LogPath = %q, %v, %q", p.RunnerID(), p.StartedAt(), p.LogPath())
	}
	if got := s.Running(); len(got) != 1 || got[0] != p {
		t.Errorf("Running() = %v, want [p]", got)
	}
	env := queryServe(t, p.Port())
	for key, want := range map[string]string{
		"PORT":              strconv.Itoa(p.Port()),
		"REVLINE_APP":       "shop",
		"REVLINE_REVISION":  "rev-42",
		"REVLINE_RUNNER_ID": "web-1",
		"EXTRA":             "extra value",
		// The supervisor's own secrets stay out of runners.
		"REVLINE_NATS_CREDS": "",
	} {
		if env[key] != want {
			t.Errorf("runner sees %s=%q, want %q", key, env[key], want)
		}
	}
	if want := net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port())); p.Addr() != want {
		t.Errorf("Addr() = %q, want %q", p.Addr(), want)
	}
	pidFile := filepath.Join(dir, "pids", "web-1.pid")
	if b, err := os.ReadFile(pidFile); err != nil || !strings.HasPrefix(string(b), fmt.Sprintf("%d web-1\n", p.PID())) {
		t.Errorf("pid file = %q, %v", b, err)
	}
	if info, err := os.Stat(p.WorkDir()); err != nil || !info.IsDir() || strings.HasPrefix(p.WorkDir(), dir) {
		t.Errorf("working directory %q: %v; want a directory outside the state directory", p.WorkDir(), err)
	}
	server := atoi(t, env["PID"])

	forced, err := p.Stop(ctx, 20*time.Second)
	if err != nil || forced {
		t.Fatalf("Stop = %v, %v; want graceful", forced, err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if alive(server) {
		t.Errorf("server %d still alive after Stop", server)
	}
	if b, err := os.ReadFile(p.LogPath()); err != nil || !strings.Contains(string(b), "serve: hello on stdout\nserve: hello on stderr\n") {
		t.Errorf("log = %q, %v; want the server's stdout and stderr", b, err)
	}
	if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file after Stop: %v, want it removed", err)
	}
	if _, err := os.Stat(p.WorkDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("working directory after Stop: %v, want it removed", err)
	}
	if got := s.Running(); len(got) != 0 {
		t.Errorf("Running() after Stop = %v, want none", got)
	}

	// Stopping or killing an exited runner is a no-op.
	if forced, err := p.Stop(ctx, time.Second); forced || err != nil {
		t.Errorf("second Stop = %v, %v; want false, nil", forced, err)
	}
	if err := p.Kill(ctx); err != nil {
		t.Errorf("Kill after Stop: %v", err)
	}
}

func TestStopForcesRunnerIgnoringSIGTERM(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := newSupervisor(t, t.TempDir())
	p, err := s.Start(serveSpec("stubborn", envIgnoreTerm+"=1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitReady(ctx, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	server := serverPID(t, p.Port())

	forced, err := p.Stop(ctx, 100*time.Millisecond)
	if err != nil || !forced {
		t.Fatalf("Stop = %v, %v; want forced", forced, err)
	}
	if alive(server) {
		t.Errorf("server %d still alive after forced Stop", server)
	}
}

func TestKillKillsGrandchildren(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := newSupervisor(t, t.TempDir())
	spec := serveSpec("nested")
	spec.Command = shQuote(helperBin) + " & wait" // the shell certainly forks the server
	p, err := s.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitReady(ctx, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	server := serverPID(t, p.Port())
	if server == p.PID() {
		t.Fatalf("server pid %d is the shell's; want a grandchild", server)
	}

	if err := p.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if alive(server) {
		t.Errorf("grandchild %d still alive after Kill", server)
	}
	if p.ExitErr() == nil {
		t.Error("ExitErr() = nil after Kill, want the shell's signal")
	}
}

func TestShellExitKillsStragglers(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := newSupervisor(t, t.TempDir())
	bgPidFile := filepath.Join(runnerDir(t), "background.pid")
	spec := serveSpec("daemonizer")
	spec.Command = fmt.Sprintf("%s & echo $! > %s", shQuote(helperBin), shQuote(bgPidFile))
	p, err := s.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	waitDone(ctx, t, p)
	if err := p.ExitErr(); err != nil {
		t.Errorf("ExitErr() = %v, want nil", err)
	}
	b, err := os.ReadFile(bgPidFile)
	if err != nil {
		t.Fatal(err)
	}
	if bg := atoi(t, string(b)); alive(bg) {
		t.Errorf("background process %d outlived its shell", bg)
	}
}

func TestWaitReadyRunnerExits(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := newSupervisor(t, t.TempDir())
	p, err := s.Start(process.Spec{App: "web", RunnerID: "crash", Command: "echo boom >&2; exit 1"})
	if err != nil {
		t.Fatal(err)
	}

	err = p.WaitReady(ctx, 20*time.Second)
	var notReady *process.NotReadyError
	if !errors.As(err, &notReady) || !notReady.Exited {
		t.Fatalf("WaitReady = %#v, want NotReadyError with Exited", err)
	}
	if want := fmt.Sprintf("runner exited with status 1 before listening on port %d; last output: boom", p.Port()); err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Errorf("WaitReady error does not wrap exit status 1: %v", err)
	}
	if !errors.As(p.ExitErr(), &exitErr) || exitErr.ExitCode() != 1 {
		t.Errorf("ExitErr() = %v, want exit status 1", p.ExitErr())
	}
	if b, err := os.ReadFile(p.LogPath()); err != nil || !strings.Contains(string(b), "boom") {
		t.Errorf("log = %q, %v; want it to contain stderr", b, err)
	}
}

func TestWaitReadyNeverListening(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := newSupervisor(t, t.TempDir())
	p, err := s.Start(process.Spec{App: "web", RunnerID: "mute", Command: shQuote(helperBin), Env: []string{envHelper + "=idle"}})
	if err != nil {
		t.Fatal(err)
	}

	err = p.WaitReady(ctx, 300*time.Millisecond)
	var notReady *process.NotReadyError
	if !errors.As(err, &notReady) || notReady.Exited || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitReady = %#v, want timeout NotReadyError", err)
	}
	if want := fmt.Sprintf("runner not listening on port %d after 300ms", p.Port()); err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.WaitReady(canceled, time.Minute); !errors.As(err, &notReady) || !errors.Is(err, context.Canceled) {
		t.Errorf("WaitReady with canceled ctx = %v, want NotReadyError wrapping context.Canceled", err)
	}
	select {
	case <-p.Done():
		t.Fatal("runner exited while waiting")
	default:
	}
}

func TestLogFileAppends(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := newSupervisor(t, t.TempDir())
	var logPath string
	for _, cmd := range []string{"echo first-out; echo first-err >&2", "echo second-out"} {
		p, err := s.Start(process.Spec{App: "web", RunnerID: "chatty", Command: cmd})
		if err != nil {
			t.Fatal(err)
		}
		waitDone(ctx, t, p)
		if err := p.ExitErr(); err != nil {
			t.Fatalf("ExitErr() = %v", err)
		}
		logPath = p.LogPath()
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "first-out\nfirst-err\nsecond-out\n"; got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
}

func TestStartRejectsInvalidSpec(t *testing.T) {
	t.Parallel()
	s := newSupervisor(t, t.TempDir())
	for name, spec := range map[string]process.Spec{
		"empty id":       {App: "web", RunnerID: "", Command: "true"},
		"upper case":     {App: "web", RunnerID: "Web", Command: "true"},
		"underscore":     {App: "web", RunnerID: "web_1", Command: "true"},
		"path traversal": {App: "web", RunnerID: "../x", Command: "true"},
		"too long":       {App: "web", RunnerID: strings.Repeat("a", 65), Command: "true"},
		"trailing NL":    {App: "web", RunnerID: "web\n", Command: "true"},
		"empty command":  {App: "web", RunnerID: "web", Command: " "},
		"env without =":  {App: "web", RunnerID: "web", Command: "true", Env: []string{"FOO"}},
		"env sets PORT":  {App: "web", RunnerID: "web", Command: "true", Env: []string{"PORT=1"}},
		"env sets id":    {App: "web", RunnerID: "web", Command: "true", Env: []string{"REVLINE_RUNNER_ID=x"}},
		"no app":         {RunnerID: "web", Command: "true"},
		"app as a path":  {App: "../web", RunnerID: "web", Command: "true"},
	} {
		if _, err := s.Start(spec); !errors.Is(err, process.ErrInvalidSpec) {
			t.Errorf("%s: Start = %v, want ErrInvalidSpec", name, err)
		}
	}
	if _, err := s.Start(process.Spec{App: "web", RunnerID: strings.Repeat("a", 64), Command: "true"}); err != nil {
		t.Errorf("64-char runner id: %v", err)
	}
}

func TestStartRejectsDuplicateRunner(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := newSupervisor(t, t.TempDir())
	p, err := s.Start(process.Spec{App: "web", RunnerID: "dup", Command: shQuote(helperBin), Env: []string{envHelper + "=idle"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(process.Spec{App: "web", RunnerID: "dup", Command: "true"}); !errors.Is(err, process.ErrRunnerExists) {
		t.Errorf("second Start = %v, want ErrRunnerExists", err)
	}
	if err := p.Kill(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestStopAll(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := newSupervisor(t, t.TempDir())
	var procs []*process.Process
	for _, id := range []string{"a", "b"} {
		p, err := s.Start(serveSpec(id))
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	s.StopAll(ctx, 20*time.Second)
	for _, p := range procs {
		select {
		case <-p.Done():
		default:
			t.Errorf("runner %s not done after StopAll", p.RunnerID())
		}
	}
	if got := s.Running(); len(got) != 0 {
		t.Errorf("Running() after StopAll = %v", got)
	}
}

// child is a process group started by the test itself, standing in for a
// runner left behind by a previous supervisor.
type child struct {
	pid  int
	done chan struct{}
	err  error // set before done is closed
}

func startIdleGroup(t *testing.T, env ...string) *child {
	t.Helper()
	cmd := exec.Command(helperBin)
	cmd.Env = append(append(os.Environ(), envHelper+"=idle"), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
	})
	return c
}

func writePidFile(t *testing.T, stateDir, runnerID, content string) {
	t.Helper()
	dir := filepath.Join(stateDir, "pids")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, runnerID+".pid"), []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestSweepOrphans(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir := t.TempDir()
	ghost := startIdleGroup(t, "REVLINE_RUNNER_ID=ghost")
	stranger := startIdleGroup(t, "REVLINE_RUNNER_ID=someone-else")
	writePidFile(t, dir, "ghost", fmt.Sprintf("%d ghost\n", ghost.pid))
	writePidFile(t, dir, "stranger", fmt.Sprintf("%d stranger\n", stranger.pid))
	writePidFile(t, dir, "junk", "not a pid file")

	s := newSupervisor(t, dir)
	live, err := s.Start(process.Spec{App: "web", RunnerID: "live", Command: shQuote(helperBin), Env: []string{envHelper + "=idle"}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.SweepOrphans()
	if err != nil || n != 1 {
		t.Fatalf("SweepOrphans = %d, %v; want 1, nil", n, err)
	}

	select {
	case <-ghost.done:
	case <-ctx.Done():
		t.Fatal("orphan not killed")
	}
	var exitErr *exec.ExitError
	if !errors.As(ghost.err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("orphan exited with %v, want SIGKILL", ghost.err)
	}
	if !alive(stranger.pid) {
		t.Error("process not ours was killed")
	}
	select {
	case <-live.Done():
		t.Error("sweep killed a runner of the current supervisor")
	default:
	}
	entries, err := os.ReadDir(filepath.Join(dir, "pids"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "live.pid" {
		t.Errorf("pid files after sweep = %v, want only live.pid", entries)
	}
}

// startSupervisorHelper starts a supervisor in a helper process, with env
// added to its environment, and returns it with its runner's shell pid and
// port once the runner runs.
func startSupervisorHelper(ctx context.Context, t *testing.T, env ...string) (cmd *exec.Cmd, shell, port int) {
	t.Helper()
	cmd = exec.CommandContext(ctx, helperBin)
	cmd.Env = append(append(os.Environ(), envHelper+"=supervise"), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fscan(out, &shell, &port); err != nil {
		t.Fatalf("read from supervisor helper: %v", err)
	}
	return cmd, shell, port
}

// TestSweepOrphansAfterSupervisorCrash kills a supervisor (a helper process)
// with SIGKILL: Pdeathsig takes its runner's shell down, the shell's child
// survives, and the next supervisor's sweep kills it.
func TestSweepOrphansAfterSupervisorCrash(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir := t.TempDir()

	cmd, shell, port := startSupervisorHelper(ctx, t, envStateDir+"="+dir)
	t.Cleanup(func() {
		if t.Failed() {
			_ = syscall.Kill(-shell, syscall.SIGKILL)
		}
	})
	server := serverPID(t, port)

	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	eventually(ctx, t, "runner shell killed by Pdeathsig", func() bool { return !alive(shell) })
	if !alive(server) {
		t.Fatal("server died with its supervisor; nothing left to sweep")
	}

	s := newSupervisor(t, dir)
	n, err := s.SweepOrphans()
	if err != nil || n != 1 {
		t.Fatalf("SweepOrphans = %d, %v; want 1, nil", n, err)
	}
	eventually(ctx, t, "orphaned server killed", func() bool { return !alive(server) })
	if _, err := os.Stat(filepath.Join(dir, "pids", "orphan.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file after sweep: %v, want it removed", err)
	}
}

// TestWaitReadyQuotesLastOutput: a runner that fails before it listens
// explains itself: the reason ends with its last output, on one line, and
// only with the output of this run.
func TestWaitReadyQuotesLastOutput(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := newSupervisor(t, t.TempDir())
	// An earlier run of the same runner id wrote to the same log.
	first, err := s.Start(process.Spec{App: "web", RunnerID: "traceback", Command: "echo output of an earlier run"})
	if err != nil {
		t.Fatal(err)
	}
	waitDone(ctx, t, first)

	traceback := `printf 'Starting app\n\033[1mTraceback (most recent call last):\033[0m\n  File "<string>", line 1, in <module>\n\nZeroDivisionError: division by zero\n' >&2; exit 1`
	p, err := s.Start(process.Spec{App: "web", RunnerID: "traceback", Command: traceback})
	if err != nil {
		t.Fatal(err)
	}
	err = p.WaitReady(ctx, 20*time.Second)
	var notReady *process.NotReadyError
	if !errors.As(err, &notReady) || !notReady.Exited {
		t.Fatalf("WaitReady = %v, want NotReadyError with Exited", err)
	}
	want := fmt.Sprintf(`runner exited with status 1 before listening on port %d; last output: Starting app | \x1b[1mTraceback (most recent call last):\x1b[0m | File "<string>", line 1, in <module> | ZeroDivisionError: division by zero`, p.Port())
	if notReady.Reason != want || err.Error() != want {
		t.Errorf("reason = %q\nwant       %q", notReady.Reason, want)
	}

	// A runner that times out quotes its output too.
	p, err = s.Start(process.Spec{App: "web", RunnerID: "slow", Command: "echo loading model...; exec " + shQuote(helperBin), Env: []string{envHelper + "=idle"}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "runner output", func() bool {
		b, _ := os.ReadFile(p.LogPath())
		return len(b) > 0
	})
	err = p.WaitReady(ctx, 50*time.Millisecond)
	if want := fmt.Sprintf("runner not listening on port %d after 50ms; last output: loading model...", p.Port()); err == nil || err.Error() != want {
		t.Errorf("WaitReady = %v, want %q", err, want)
	}
}
