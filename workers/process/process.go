//go:build unix

// Package process supervises runners: OS processes started from a shell command
// line, each in its own process group, listening on a loopback port chosen by
// the supervisor.
//
// A runner is the whole process group, not just its shell: Stop and Kill signal
// the group, and a runner is done only when its shell has been reaped and no
// live process remains in the group. Runners must stay in the foreground (like
// Procfile entries); when the shell exits on its own, whatever it left running
// in the group is killed.
//
// Runners do not inherit the supervisor's privileges: a supervisor running as
// root runs them as an unprivileged user (see Config.RunnerUser), each in a
// working directory of its own, with no descriptor of the supervisor's but
// stdin (/dev/null), stdout and stderr (the runner's log file): before each
// start, the supervisor marks every descriptor of its process above stderr
// close-on-exec (pass descriptors to other children with
// exec.Cmd.ExtraFiles). A supervisor that is not root runs runners as its own
// user: they can then read what the supervisor can read, and signal its
// processes.
package process

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	readyPollInterval = 20 * time.Millisecond
	readyDialTimeout  = 250 * time.Millisecond
	drainPollInterval = 20 * time.Millisecond
	// workDirPrefix starts the name of every runner's working directory.
	workDirPrefix = "revline-runner-"
)

var (
	// ErrInvalidSpec is returned (wrapped) by Start when a Spec is malformed.
	ErrInvalidSpec = errors.New("invalid runner spec")
	// ErrRunnerExists is returned (wrapped) by Start when a runner with the same
	// RunnerID is still running under this supervisor.
	ErrRunnerExists = errors.New("runner already running")
)

var runnerIDPattern = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

// reservedEnv lists the variables Start sets itself; Spec.Env may not override them.
var reservedEnv = []string{"PORT", "REVLINE_APP", "REVLINE_REVISION", "REVLINE_RUNNER_ID"}

// Config configures a Supervisor.
type Config struct {
	// StateDir is required. It holds pid files (<StateDir>/pids/<runner_id>.pid)
	// and logs (<StateDir>/logs/<runner_id>.log). Runners cannot read it when
	// they run as another user (see RunnerUser).
	StateDir string
	// Logger is optional and defaults to slog.Default().
	Logger *slog.Logger
	// RunnerUser is the user runners run as when the supervisor runs as root:
	// a user name, a numeric uid (with its primary group from the user
	// database, or the group of the same number if it has no entry there) or
	// "uid:gid". Runners get no supplementary groups. When empty, it is
	// "revline-runner" if that user exists, else "nobody". NewSupervisor
	// refuses a user that is root unless AllowRootRunners is set.
	//
	// A supervisor that is not root cannot switch users: runners then run as
	// the supervisor's own user, and RunnerUser may only name that user. Such
	// runners can read the supervisor's files (its data directory included)
	// and signal its processes; run the supervisor as root, or as a user
	// that owns nothing else, to keep them apart.
	RunnerUser string
	// AllowRootRunners lets a supervisor running as root run runners as root:
	// as RunnerUser if that is root, or, with RunnerUser empty, as the
	// supervisor's own user (root) instead of the default unprivileged user.
	AllowRootRunners bool
	// WorkDir is where each runner gets a fresh working directory
	// (<WorkDir>/revline-runner-<runner id>-<random>, owned by the runner's
	// user, mode 0700, removed when the runner is done). The runner's user
	// must be able to reach it. Default: os.TempDir().
	WorkDir string
}

// Supervisor starts runners and keeps track of them until they have exited.
// Its methods are safe for concurrent use.
type Supervisor struct {
	pidDir  string
	logDir  string
	workDir string
	user    runnerUser
	log     *slog.Logger

	mu    sync.Mutex
	procs map[string]*Process // by runner id, until Done is closed
}

// NewSupervisor validates cfg, decides who runners run as and creates the
// state directories.
func NewSupervisor(cfg Config) (*Supervisor, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("new supervisor: Config.StateDir is required")
	}
	u, err := resolveRunnerUser(cfg)
	if err != nil {
		return nil, fmt.Errorf("new supervisor: %w", err)
	}
	s := &Supervisor{
		pidDir:  filepath.Join(cfg.StateDir, "pids"),
		logDir:  filepath.Join(cfg.StateDir, "logs"),
		workDir: cmp.Or(cfg.WorkDir, os.TempDir()),
		user:    u,
		log:     cmp.Or(cfg.Logger, slog.Default()),
		procs:   make(map[string]*Process),
	}
	for _, dir := range []string{s.pidDir, s.logDir} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("new supervisor: %w", err)
		}
	}
	return s, nil
}

// Spec describes one runner to start.
type Spec struct {
	// RunnerID names the runner and its pid and log files; it must match [a-z0-9-]{1,64}.
	RunnerID string
	// App is exported to the runner as REVLINE_APP.
	App string
	// RevisionID is exported to the runner as REVLINE_REVISION.
	RevisionID string
	// Command is run as /bin/sh -c Command.
	Command string
	// Env holds extra KEY=VALUE entries. They may not set PORT, REVLINE_APP,
	// REVLINE_REVISION or REVLINE_RUNNER_ID.
	Env []string
}

func (s Spec) validate() error {
	if !runnerIDPattern.MatchString(s.RunnerID) {
		return fmt.Errorf("%w: runner id %q does not match [a-z0-9-]{1,64}", ErrInvalidSpec, s.RunnerID)
	}
	if strings.TrimSpace(s.Command) == "" {
		return fmt.Errorf("%w: runner %s has an empty command", ErrInvalidSpec, s.RunnerID)
	}
	for _, kv := range s.Env {
		key, _, ok := strings.Cut(kv, "=")
		if !ok || key == "" {
			return fmt.Errorf("%w: runner %s: env entry %q is not KEY=VALUE", ErrInvalidSpec, s.RunnerID, kv)
		}
		if slices.Contains(reservedEnv, key) {
			return fmt.Errorf("%w: runner %s: env entry %q overrides a variable set by the supervisor", ErrInvalidSpec, s.RunnerID, kv)
		}
	}
	return nil
}

// Start launches spec.Command with /bin/sh in a new process group, on a free
// loopback port exported as PORT, as the runner user (see Config.RunnerUser),
// in a fresh working directory, with stdin from /dev/null, stdout and stderr
// appended to the runner's log file and no other descriptor, and records the
// group in a pid file until the runner is done. Call SweepOrphans before starting runners after a restart.
// Errors wrap ErrInvalidSpec or ErrRunnerExists where they apply.
func (s *Supervisor) Start(spec Spec) (*Process, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.procs[spec.RunnerID]; ok {
		return nil, fmt.Errorf("start runner %s: %w", spec.RunnerID, ErrRunnerExists)
	}
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("start runner %s: %w", spec.RunnerID, err)
	}
	logPath := filepath.Join(s.logDir, spec.RunnerID+".log")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("start runner %s: %w", spec.RunnerID, err)
	}
	defer logFile.Close() // once started, the runner holds its own descriptor
	logInfo, err := logFile.Stat()
	if err != nil {
		return nil, fmt.Errorf("start runner %s: %w", spec.RunnerID, err)
	}
	workDir, err := s.makeWorkDir(spec.RunnerID)
	if err != nil {
		return nil, fmt.Errorf("start runner %s: %w", spec.RunnerID, err)
	}

	cmd := exec.Command("/bin/sh", "-c", spec.Command)
	cmd.Env = s.runnerEnv(spec, port, workDir)
	cmd.Dir = workDir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()
	cmd.SysProcAttr.Credential = s.user.credential()
	if err := startCmd(cmd); err != nil {
		_ = os.RemoveAll(workDir)
		return nil, fmt.Errorf("start runner %s: %w", spec.RunnerID, err)
	}

	p := &Process{
		runnerID:  spec.RunnerID,
		pid:       cmd.Process.Pid,
		port:      port,
		startedAt: time.Now(),
		logPath:   logPath,
		logOffset: logInfo.Size(),
		workDir:   workDir,
		done:      make(chan struct{}),
	}
	if err := os.WriteFile(s.pidPath(p.runnerID), fmt.Appendf(nil, "%d %s\n", p.pid, p.runnerID), 0o640); err != nil {
		// Untracked, the group would survive a supervisor crash unnoticed.
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		_ = cmd.Wait()
		_ = os.RemoveAll(workDir)
		return nil, fmt.Errorf("start runner %s: %w", spec.RunnerID, err)
	}
	s.procs[p.runnerID] = p
	go s.reap(p, cmd)
	s.log.Info("runner started", "runner_id", p.runnerID, "pid", p.pid, "port", port, "app", spec.App, "revision", spec.RevisionID, "uid", s.runnerUID())
	return p, nil
}

// runnerUID returns the uid runners run as.
func (s *Supervisor) runnerUID() int {
	if s.user.drop {
		return int(s.user.uid)
	}
	return os.Geteuid()
}

// makeWorkDir creates a runner's working directory, owned by the runner user.
func (s *Supervisor) makeWorkDir(runnerID string) (string, error) {
	dir, err := os.MkdirTemp(s.workDir, workDirPrefix+runnerID+"-")
	if err != nil {
		return "", fmt.Errorf("create working directory: %w", err)
	}
	if s.user.drop {
		if err := os.Chown(dir, int(s.user.uid), int(s.user.gid)); err != nil {
			_ = os.Remove(dir)
			return "", fmt.Errorf("create working directory: %w", err)
		}
	}
	return dir, nil
}

// runnerEnv returns a runner's environment.
func (s *Supervisor) runnerEnv(spec Spec, port int, workDir string) []string {
	env := inheritedEnv()
	if s.user.drop {
		// The supervisor's HOME and name are not the runner's.
		env = slices.DeleteFunc(env, func(kv string) bool {
			name, _, _ := strings.Cut(kv, "=")
			return name == "HOME" || name == "USER" || name == "LOGNAME"
		})
		env = append(env, "HOME="+workDir, "USER="+s.user.name, "LOGNAME="+s.user.name)
	}
	env = append(env,
		"PORT="+strconv.Itoa(port),
		"REVLINE_APP="+spec.App,
		"REVLINE_REVISION="+spec.RevisionID,
		"REVLINE_RUNNER_ID="+spec.RunnerID,
	)
	return append(env, spec.Env...)
}

// freePort returns a loopback TCP port that was free a moment ago. Another
// process may grab it before the runner listens; WaitReady cannot tell.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (s *Supervisor) pidPath(runnerID string) string {
	return filepath.Join(s.pidDir, runnerID+".pid")
}

// reap waits for the runner's shell, then for the rest of its group, and
// retires the runner.
func (s *Supervisor) reap(p *Process, cmd *exec.Cmd) {
	err := cmd.Wait()
	p.mu.Lock()
	if !p.stopping {
		// The shell exited on its own; anything left in its group is a stray.
		// ESRCH, the usual outcome, means there was none.
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	}
	p.mu.Unlock()
	// When stopping, Stop or Kill deliver SIGKILL in the end, so this terminates.
	for groupAlive(p.pid) {
		time.Sleep(drainPollInterval)
	}
	p.mu.Lock()
	p.gone = true
	p.mu.Unlock()
	if err := os.RemoveAll(p.workDir); err != nil {
		s.log.Warn("remove working directory", "runner_id", p.runnerID, "dir", p.workDir, "err", err)
	}

	if rmErr := os.Remove(s.pidPath(p.runnerID)); rmErr != nil {
		s.log.Warn("remove pid file", "runner_id", p.runnerID, "err", rmErr)
	}
	s.mu.Lock()
	if s.procs[p.runnerID] == p {
		delete(s.procs, p.runnerID)
	}
	s.mu.Unlock()
	s.log.Info("runner exited", "runner_id", p.runnerID, "pid", p.pid, "err", err)
	p.exitErr = err
	close(p.done)
}

// Running returns the runners started by s whose Done channel is not yet
// closed, ordered by runner id.
func (s *Supervisor) Running() []*Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.SortedFunc(maps.Values(s.procs), func(a, b *Process) int {
		return strings.Compare(a.runnerID, b.runnerID)
	})
}

// StopAll stops every running runner concurrently, each with Stop(ctx, grace),
// and returns when all have been stopped or ctx has ended. Errors are logged.
func (s *Supervisor) StopAll(ctx context.Context, grace time.Duration) {
	var wg sync.WaitGroup
	for _, p := range s.Running() {
		wg.Go(func() {
			if _, err := p.Stop(ctx, grace); err != nil {
				s.log.Warn("stop runner", "runner_id", p.runnerID, "err", err)
			}
		})
	}
	wg.Wait()
}

// SweepOrphans kills process groups recorded in pid files by a previous run of
// the supervisor, e.g. one that was killed with SIGKILL, and removes those pid
// files. A group is killed (SIGKILL) only if a live member's environment in
// /proc carries REVLINE_RUNNER_ID=<runner id of the pid file>; otherwise the
// file is stale and just removed. Runners started by s are left alone. It
// returns the number of groups killed, without waiting for them to die.
func (s *Supervisor) SweepOrphans() (int, error) {
	entries, err := os.ReadDir(s.pidDir)
	if err != nil {
		return 0, fmt.Errorf("sweep orphans: %w", err)
	}
	killed := 0
	var errs []error
	for _, e := range entries {
		runnerID, ok := strings.CutSuffix(e.Name(), ".pid")
		if !ok || e.IsDir() || s.tracked(runnerID) {
			continue
		}
		path := filepath.Join(s.pidDir, e.Name())
		if pgid, ok := readPidFile(path, runnerID); ok && ownsGroup(pgid, runnerID) {
			err := syscall.Kill(-pgid, syscall.SIGKILL)
			switch {
			case err == nil:
				killed++
				s.log.Info("killed orphaned runner", "runner_id", runnerID, "pgid", pgid)
			case !errors.Is(err, syscall.ESRCH):
				errs = append(errs, fmt.Errorf("sweep orphans: kill runner %s (pgid %d): %w", runnerID, pgid, err))
				continue // keep the pid file for another try
			}
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("sweep orphans: %w", err))
		}
	}
	return killed, errors.Join(errs...)
}

func (s *Supervisor) tracked(runnerID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.procs[runnerID]
	return ok
}

// readPidFile parses a "pgid runner_id" pid file and reports whether it is
// well formed and names runnerID.
func readPidFile(path, runnerID string) (pgid int, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[1] != runnerID {
		return 0, false
	}
	pgid, err = strconv.Atoi(f[0])
	// pgid 0 and -1 would make kill(-pgid) hit our own group or every process.
	return pgid, err == nil && pgid > 1
}

// ownsGroup reports whether a live member of process group pgid has
// REVLINE_RUNNER_ID=runnerID in its environment. Checking the leader alone is
// not enough: when a supervisor dies, Pdeathsig kills the runner's shell (the
// leader), leaving only its children.
func ownsGroup(pgid int, runnerID string) bool {
	pids, err := liveGroupMembers(pgid)
	if err != nil {
		return false // no /proc: cannot tell, so do not kill
	}
	marker := "REVLINE_RUNNER_ID=" + runnerID
	for _, pid := range pids {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err == nil && slices.Contains(strings.Split(string(env), "\x00"), marker) {
			return true
		}
	}
	return false
}

// groupAlive reports whether process group pgid has a member that is not a
// zombie. Zombies do not count: orphans are reparented to init, and an init
// that does not reap (common in containers) would keep them around forever.
func groupAlive(pgid int) bool {
	pids, err := liveGroupMembers(pgid)
	if err != nil {
		return syscall.Kill(-pgid, 0) == nil // no /proc: zombies count as alive
	}
	return len(pids) > 0
}

// liveGroupMembers lists the non-zombie processes in process group pgid, as
// found in /proc.
func liveGroupMembers(pgid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// "pid (comm) state ppid pgrp ...", where comm may contain spaces and parentheses.
		stat := string(b)
		i := strings.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(stat[i+1:])
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, err := strconv.Atoi(f[2]); err == nil && g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// Process is a runner started by a Supervisor.
type Process struct {
	runnerID  string
	pid       int // also the process group id
	port      int
	startedAt time.Time
	logPath   string
	logOffset int64  // size of the log file before the runner started
	workDir   string // the runner's working directory
	done      chan struct{}
	exitErr   error // written before done is closed

	mu       sync.Mutex
	stopping bool // Stop or Kill signalled the group: stragglers are theirs to kill
	gone     bool // the group is empty: its id may be reused, never signal it again
}

// RunnerID returns the runner's id.
func (p *Process) RunnerID() string { return p.runnerID }

// PID returns the pid of the runner's shell, which is also its process group id.
func (p *Process) PID() int { return p.pid }

// Port returns the port the runner was told to listen on (PORT).
func (p *Process) Port() int { return p.port }

// Addr returns the address at which the runner accepts connections once it
// is ready, as host:port. Today that is the loopback address and Port.
func (p *Process) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port))
}

// StartedAt returns when the runner was started.
func (p *Process) StartedAt() time.Time { return p.startedAt }

// LogPath returns the file the runner's stdout and stderr are appended to.
func (p *Process) LogPath() string { return p.logPath }

// WorkDir returns the runner's working directory, removed once it is done.
func (p *Process) WorkDir() string { return p.workDir }

// Done returns a channel that is closed once the runner has exited: its shell
// has been reaped and no live process remains in its group.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitErr returns how the runner's shell exited once Done is closed: nil for
// status 0, typically an *exec.ExitError otherwise. It is nil while running.
func (p *Process) ExitErr() error {
	select {
	case <-p.done:
		return p.exitErr
	default:
		return nil
	}
}

// NotReadyError is returned by WaitReady when a runner did not start accepting
// connections.
type NotReadyError struct {
	// RunnerID is the runner's id.
	RunnerID string
	// Port is the port the runner was expected to listen on.
	Port int
	// Exited is true if the runner exited before listening; otherwise the wait
	// timed out or its context ended.
	Exited bool
	// Reason is a one-line human explanation, such as "runner exited with
	// status 1 before listening on port 43121; last output: Traceback (most
	// recent call last): | ... | ZeroDivisionError: division by zero"; Error
	// returns it. When the runner exited or timed out, it ends with the last
	// lines the runner wrote (at most 20 lines and 2 KiB), joined by " | ",
	// control characters escaped: it holds no line break and fits in 4 KiB.
	Reason string
	// Err is the runner's exit error (nil for status 0), or
	// context.DeadlineExceeded on timeout, or the context's error.
	Err error
}

// Error returns e.Reason.
func (e *NotReadyError) Error() string { return e.Reason }

// Unwrap returns e.Err.
func (e *NotReadyError) Unwrap() error { return e.Err }

// WaitReady blocks until something accepts TCP connections on Addr, the
// runner exits, timeout elapses or ctx ends. Failures are reported as
// *NotReadyError.
func (p *Process) WaitReady(ctx context.Context, timeout time.Duration) error {
	waitCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dialer := net.Dialer{Timeout: readyDialTimeout}
	tick := time.NewTicker(readyPollInterval)
	defer tick.Stop()
	for {
		if conn, err := dialer.DialContext(waitCtx, "tcp", p.Addr()); err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-p.done:
			return p.notReady(true, fmt.Sprintf("runner %s before listening on port %d", describeExit(p.exitErr), p.port), p.exitErr)
		case <-waitCtx.Done():
			if err := ctx.Err(); err != nil {
				return p.notReady(false, fmt.Sprintf("stopped waiting for runner to listen on port %d: %v", p.port, err), err)
			}
			return p.notReady(false, fmt.Sprintf("runner not listening on port %d after %s", p.port, humanDuration(timeout)), context.DeadlineExceeded)
		case <-tick.C:
		}
	}
}

// notReady builds a NotReadyError; unless the wait was cut short by its
// context, the reason quotes the runner's last output.
func (p *Process) notReady(exited bool, reason string, err error) *NotReadyError {
	if exited || errors.Is(err, context.DeadlineExceeded) {
		if out := lastOutput(p.logPath, p.logOffset); out != "" {
			reason += "; last output: " + out
		}
	}
	return &NotReadyError{RunnerID: p.runnerID, Port: p.port, Exited: exited, Reason: reason, Err: err}
}

// describeExit completes "runner ..." for the shell's exit error.
func describeExit(err error) string {
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return "exited with status 0"
	case errors.As(err, &exitErr) && exitErr.ExitCode() >= 0:
		return fmt.Sprintf("exited with status %d", exitErr.ExitCode())
	default:
		return fmt.Sprintf("exited (%v)", err) // e.g. "exited (signal: killed)"
	}
}

// humanDuration formats d as people write it: "60s" rather than "1m0s".
func humanDuration(d time.Duration) string {
	if d >= time.Second {
		return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
	}
	return d.String()
}

// Stop sends SIGTERM to the runner's process group and, if the runner is not
// done within grace, SIGKILL; forced reports whether SIGKILL was sent. It then
// waits for the runner to be done, bounded by ctx; if ctx ends during the
// grace period, the group is killed at once. Stop is safe to call on a runner
// that has already exited, and returns (false, nil) then.
func (p *Process) Stop(ctx context.Context, grace time.Duration) (forced bool, err error) {
	if _, err := p.signal(syscall.SIGTERM); err != nil {
		return false, err
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
		return false, nil
	case <-timer.C:
	case <-ctx.Done():
	}
	forced, err = p.signal(syscall.SIGKILL)
	if err != nil {
		return forced, err
	}
	return forced, p.wait(ctx)
}

// Kill sends SIGKILL to the runner's process group and waits for the runner to
// be done, bounded by ctx. It is safe to call on a runner that has exited.
func (p *Process) Kill(ctx context.Context) error {
	if _, err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	return p.wait(ctx)
}

// signal marks the runner as stopping and sends sig to its process group,
// unless the group is gone. It reports whether the signal was delivered.
func (p *Process) signal(sig syscall.Signal) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone {
		return false, nil
	}
	p.stopping = true
	switch err := syscall.Kill(-p.pid, sig); {
	case errors.Is(err, syscall.ESRCH):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("signal runner %s (pgid %d): %w", p.runnerID, p.pid, err)
	}
	return true, nil
}

func (p *Process) wait(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for runner %s to exit: %w", p.runnerID, ctx.Err())
	}
}

// inheritedVars are the variables of the server's own environment a runner
// gets. Everything else (NATS credentials, cloud keys of the host running
// serve) stays out of user code; a runner's settings come with its Spec.
var inheritedVars = []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "TZ", "TMPDIR", "TERM"}

func inheritedEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if slices.Contains(inheritedVars, name) || strings.HasPrefix(name, "LC_") {
			env = append(env, kv)
		}
	}
	return env
}
