//go:build linux

package process_test

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/revline/revline/workers/process"
)

// The test binary doubles as the runner: when envHelper is set, TestMain runs
// the named helper instead of the tests.
const (
	envHelper     = "PROCESS_TEST_HELPER"      // serve, idle, escape or supervise
	envIgnoreTerm = "PROCESS_TEST_IGNORE_TERM" // serve: ignore SIGTERM
	envStateDir   = "PROCESS_TEST_STATE_DIR"   // supervise: the supervisor's StateDir
	envCommand    = "PROCESS_TEST_COMMAND"     // supervise: the runner's command (default: serve)
	envMode       = "PROCESS_TEST_MODE"        // supervise: modeCgroup or modeProc
	envPidsFile   = "PROCESS_TEST_PIDS_FILE"   // escape: where to append its pid; supervise: pids to wait for
	envPidsWant   = "PROCESS_TEST_PIDS_WANT"   // supervise: how many pids to wait for
	envDaemon     = "PROCESS_TEST_DAEMON"      // escape: "1" to double fork first
	envRunnerID   = "PROCESS_TEST_RUNNER_ID"   // supervise: the runner's id (default: orphan)
	envUIDRange   = "PROCESS_TEST_UID_RANGE"   // supervise: the supervisor's RunnerUIDs (default: none set)
)

var (
	// helperBin is the absolute path of the test binary, or of a copy that
	// every user can run when the tests run as root (runners then run as
	// nobody, who cannot reach the build directory).
	helperBin string
	// sharedRoot holds helperBin's copy and the directories runners write to.
	sharedRoot string
)

func TestMain(m *testing.M) {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	helperBin = exe
	switch mode := os.Getenv(envHelper); mode {
	case "":
		// A secret of the supervisor's own environment: runners must not see it.
		os.Setenv("REVLINE_NATS_CREDS", "/secret/revline.creds")
		if err := shareHelper(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		code := m.Run()
		_ = os.RemoveAll(sharedRoot)
		os.Exit(code)
	case "serve":
		serve()
	case "idle":
		waitForTerm()
	case "escape":
		escape()
	case "supervise":
		supervise()
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%s\n", envHelper, mode)
		os.Exit(2)
	}
}

// serve listens on $PORT, greets on stdout and stderr, and answers every
// connection with its pid and environment as KEY=VALUE lines. On SIGTERM it
// exits 0, unless envIgnoreTerm is set.
func serve() {
	if os.Getenv(envIgnoreTerm) != "" {
		signal.Ignore(syscall.SIGTERM)
	} else {
		go waitForTerm()
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", os.Getenv("PORT")))
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(2)
	}
	fmt.Println("serve: hello on stdout")
	fmt.Fprintln(os.Stderr, "serve: hello on stderr")
	for {
		conn, err := ln.Accept()
		if err != nil {
			os.Exit(3)
		}
		fmt.Fprintf(conn, "PID=%d\n", os.Getpid())
		for _, key := range []string{"PORT", "REVLINE_APP", "REVLINE_REVISION", "REVLINE_RUNNER_ID", "EXTRA", "REVLINE_NATS_CREDS"} {
			fmt.Fprintf(conn, "%s=%s\n", key, os.Getenv(key))
		}
		conn.Close()
	}
}

// shareHelper copies the test binary where every user can run it, when the
// tests run as root, and creates sharedRoot.
func shareHelper() error {
	dir, err := os.MkdirTemp("", "revline-process-test-")
	if err != nil {
		return err
	}
	sharedRoot = dir
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return nil
	}
	src, err := os.ReadFile(helperBin)
	if err != nil {
		return err
	}
	bin := filepath.Join(dir, "process.test")
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		return err
	}
	helperBin = bin
	return nil
}

// runnerDir returns a directory that runners, whatever their user, can write
// to and the test can read after the runner is gone.
func runnerDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp(sharedRoot, "runner-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// escape plays a runner's descendant that escapes its process group: it
// calls setsid (after a double fork if envDaemon is 1, so that its parent
// exits at once), appends its pid to envPidsFile, ignores SIGTERM and idles.
func escape() {
	if os.Getenv(envDaemon) == "1" {
		cmd := exec.Command(helperBin)
		cmd.Env = append(os.Environ(), envDaemon+"=0")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "escape:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	_, _ = syscall.Setsid()
	signal.Ignore(syscall.SIGTERM)
	f, err := os.OpenFile(os.Getenv(envPidsFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
	if err != nil {
		fmt.Fprintln(os.Stderr, "escape:", err)
		os.Exit(2)
	}
	fmt.Fprintln(f, os.Getpid())
	f.Close()
	for {
		time.Sleep(time.Hour)
	}
}

// escapeCommand returns a shell command that runs the escape helper: with the
// runner's environment or an empty one (clean), double forking or not.
func escapeCommand(pidsFile string, clean, daemon bool) string {
	vars := fmt.Sprintf("%s=escape %s=%s", envHelper, envPidsFile, shQuote(pidsFile))
	if daemon {
		vars += " " + envDaemon + "=1"
	}
	if clean {
		return "env -i " + vars + " " + shQuote(helperBin)
	}
	return "env " + vars + " " + shQuote(helperBin)
}

// supervise plays a supervisor that gets killed: it starts a runner
// envRunnerID ("orphan" by default; runners are recognised by their id, so
// tests running at the same time use different ones) running envCommand (the serve helper by default) in mode envMode, waits
// until it is ready and, if envPidsWant is set, until that many pids are in
// envPidsFile and recorded in the runner's pid file (or the runner has a
// cgroup), prints "<shell pid> <port>", and waits.
func supervise() {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "supervise:", err)
		os.Exit(2)
	}
	stateDir := os.Getenv(envStateDir)
	cfg := process.Config{StateDir: stateDir, Logger: slog.New(slog.DiscardHandler)}
	if r := os.Getenv(envUIDRange); r != "" {
		uids, err := process.ParseUIDRange(r)
		if err != nil {
			fail(err)
		}
		cfg.RunnerUIDs = uids
	}
	s, err := process.NewSupervisor(cfg)
	if err != nil {
		fail(err)
	}
	if os.Getenv(envMode) == modeProc {
		process.DisableCgroups(s)
	}
	command := cmp.Or(os.Getenv(envCommand), shQuote(helperBin))
	runnerID := cmp.Or(os.Getenv(envRunnerID), "orphan")
	p, err := s.Start(process.Spec{App: "web", RunnerID: runnerID, Command: command, Env: []string{envHelper + "=serve"}})
	if err != nil {
		fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx, 20*time.Second); err != nil {
		fail(err)
	}
	if want, _ := strconv.Atoi(os.Getenv(envPidsWant)); want > 0 {
		pidFile := filepath.Join(stateDir, "pids", runnerID+".pid")
		for !recorded(os.Getenv(envPidsFile), want, pidFile, process.CgroupOf(p) != "") {
			select {
			case <-ctx.Done():
				fail(fmt.Errorf("escaped processes not recorded: %w", ctx.Err()))
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	fmt.Println(p.PID(), p.Port())
	waitForTerm()
}

// recorded reports whether pidsFile lists want pids and, unless inCgroup,
// the pid file lists each of them.
func recorded(pidsFile string, want int, pidFile string, inCgroup bool) bool {
	pids := readPids(pidsFile)
	if len(pids) < want {
		return false
	}
	if inCgroup {
		return true
	}
	b, _ := os.ReadFile(pidFile)
	for _, pid := range pids {
		if !strings.Contains(string(b), fmt.Sprintf("\nproc %d ", pid)) {
			return false
		}
	}
	return true
}

// readPids reads the pids an escape helper appended to path.
func readPids(path string) []int {
	b, _ := os.ReadFile(path)
	var pids []int
	for f := range strings.FieldsSeq(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

func waitForTerm() {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	<-term
	os.Exit(0)
}

func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// serveSpec returns a spec that runs the serve helper.
func serveSpec(runnerID string, env ...string) process.Spec {
	return process.Spec{
		App:      "web",
		RunnerID: runnerID,
		Command:  shQuote(helperBin),
		Env:      append([]string{envHelper + "=serve"}, env...),
	}
}

func newSupervisor(t *testing.T, stateDir string) *process.Supervisor {
	t.Helper()
	return newSupervisorConfig(t, process.Config{StateDir: stateDir})
}

// newSupervisorConfig returns a supervisor that stops its runners when the
// test ends, and logs nothing unless cfg has a Logger.
func newSupervisorConfig(t *testing.T, cfg process.Config) *process.Supervisor {
	t.Helper()
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	s, err := process.NewSupervisor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.StopAll(ctx, 0)
	})
	return s
}

// The ways a supervisor finds a runner's processes.
const (
	modeCgroup = "cgroup" // a cgroup per runner, /proc as well
	modeProc   = "proc"   // /proc only
)

// forEachMode runs test as a parallel subtest for each mode; the cgroup one
// is skipped where the supervisor cannot create cgroups.
func forEachMode(t *testing.T, test func(t *testing.T, mode string)) {
	for _, mode := range []string{modeCgroup, modeProc} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			if mode == modeCgroup {
				s, err := process.NewSupervisor(process.Config{StateDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					t.Fatal(err)
				}
				if !process.UsesCgroups(s) {
					t.Skip("no writable cgroup v2 here (not root, or no delegated cgroup): the /proc mode covers this machine")
				}
			}
			test(t, mode)
		})
	}
}

// newSupervisorMode returns a supervisor that works in mode.
func newSupervisorMode(t *testing.T, stateDir, mode string) *process.Supervisor {
	t.Helper()
	s := newSupervisor(t, stateDir)
	if mode == modeProc {
		process.DisableCgroups(s)
	}
	return s
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds, failing the test when ctx ends.
func eventually(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

func waitDone(ctx context.Context, t *testing.T, p *process.Process) {
	t.Helper()
	select {
	case <-p.Done():
	case <-ctx.Done():
		t.Fatalf("runner %s not done: %v", p.RunnerID(), ctx.Err())
	}
}

// alive reports whether pid is a process that is not a zombie. Killed orphans
// may stay zombies for good where init does not reap them; they count as dead.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	stat := string(b)
	f := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
	return f[0] != "Z" && f[0] != "X"
}

// serverPID asks the serve helper on port for its pid.
func serverPID(t *testing.T, port int) int {
	t.Helper()
	return atoi(t, queryServe(t, port)["PID"])
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// queryServe asks the serve helper on port for its pid and environment.
func queryServe(t *testing.T, port int) map[string]string {
	t.Helper()
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		key, value, _ := strings.Cut(sc.Text(), "=")
		vars[key] = value
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return vars
}
