//go:build unix

// Package process supervises runners: OS processes started from a shell command
// line, each in its own process group, listening on a loopback port chosen by
// the supervisor.
//
// A runner is its whole process tree, not just its shell: Stop and Kill
// signal every process the runner started, including descendants that left
// its process group or session (setsid, setpgid) or whose parent exited, and a
// runner is done only when its shell has been reaped and none of its
// processes is alive. Runners must stay in the foreground (like Procfile
// entries); when the shell exits on its own, whatever it left running is
// killed.
//
// On Linux the supervisor finds a runner's processes with a cgroup v2 of its
// own when it can create one (the supervisor runs as root, or in a delegated
// cgroup), and otherwise, and in addition, through /proc: the runner's process
// group, the REVLINE_RUNNER_ID variable its processes inherit, parent links,
// and the processes seen in the runner's tree while it ran. The supervisor
// makes its process a child subreaper, so descendants orphaned by their
// parent are reparented to it, not to init; it reaps those of them that
// belong to a runner.
//
// Where a runner has no cgroup, a descendant escapes the supervisor if it
// leaves the runner's tree (its parent exits) with an environment cleared of
// REVLINE_RUNNER_ID before the supervisor has seen it: the supervisor looks
// every 250 ms and when it signals the runner. A runner running as the
// supervisor's user (the supervisor is not root) may also move its processes
// out of a delegated cgroup. A zombie that was never seen as the runner's is
// not reaped. Outside Linux, a runner is its process group only.
//
// Runners do not inherit the supervisor's privileges: a supervisor running as
// root runs each of them as a uid of its own (see Config.RunnerUIDs), or as
// one unprivileged user they share (Config.RunnerUser), each in a working
// directory of its own, with no descriptor of the supervisor's but
// stdin (/dev/null), stdout and stderr (a pipe the supervisor copies into the
// runner's log file, which the runner never holds): before each
// start, the supervisor marks every descriptor of its process above stderr
// close-on-exec (pass descriptors to other children with
// exec.Cmd.ExtraFiles). A supervisor that is not root runs runners as its own
// user: they can then read what the supervisor can read, each other's
// environment included, and signal its processes and each other.
package process

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/revline/revline/events"
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
	// and logs (<StateDir>/logs/<app>/<runner_id>.log). Runners cannot read
	// it when they run as another user (see RunnerUser).
	StateDir string
	// LogMaxBytes bounds a runner's log file: the supervisor copies the
	// runner's output into it and, once it has LogMaxBytes, at the end of
	// the line under way (16 KiB later at most: a longer line is cut),
	// renames it <runner_id>.log.1 (replacing the previous one) and starts
	// a new file, as kubelet rotates container logs. A runner thus takes
	// at most about 2×LogMaxBytes on disk, and its log holds its latest
	// output. Default DefaultLogMaxBytes (10 MiB).
	LogMaxBytes int64
	// EndedLogs is how many of an app's runners that are no longer running
	// keep their logs (those written last); the logs of the others are
	// removed when a runner of the app ends. Default DefaultEndedLogs.
	// RemoveLogs removes them all, for a deleted app.
	EndedLogs int
	// Logger is optional and defaults to slog.Default().
	Logger *slog.Logger
	// RunnerUser, when set, is the one user every runner runs as when the
	// supervisor runs as root: a user name, a numeric uid (with its primary
	// group from the user database, or the group of the same number if it
	// has no entry there) or "uid:gid". Runners get no supplementary groups.
	// Runners that share a user can read each other's environment (their
	// secrets), signal and trace each other: NewSupervisor logs a warning.
	// When empty, each runner runs as a uid of its own (see RunnerUIDs).
	// NewSupervisor refuses a user that is root unless AllowRootRunners is
	// set.
	//
	// A supervisor that is not root cannot switch users: runners then run as
	// the supervisor's own user, all of them, and RunnerUser may only name
	// that user. Such runners can read the supervisor's files (its data
	// directory included), each other's environment, and signal the
	// supervisor's processes and each other; run the supervisor as root to
	// keep them apart.
	RunnerUser string
	// RunnerUIDs is the range a supervisor running as root, with RunnerUser
	// empty and AllowRootRunners unset, allocates runners' uids from: each
	// runner runs as a uid of its own and the group of the same number, with
	// no supplementary groups, so that no runner can read another's
	// environment or files, signal it or trace it. The uid is held until
	// none of the runner's processes is alive. The zero value means
	// DefaultRunnerUIDs. The range must be mapped in the supervisor's user
	// namespace; two supervisors on one machine should be given ranges that
	// do not overlap (each skips the uids of live processes, but two starting
	// runners at the same moment could pick the same one). NewSupervisor
	// refuses a range with RunnerUser or AllowRootRunners, or when the
	// supervisor is not root.
	RunnerUIDs UIDRange
	// AllowRootRunners lets a supervisor running as root run runners as root:
	// as RunnerUser if that is root, or, with RunnerUser empty, as the
	// supervisor's own user (root) instead of uids of their own.
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
	pidDir    string
	logDir    string
	logMax    int64
	endedLogs int
	workDir   string
	user      runnerUser
	log       *slog.Logger
	uidNext   uint64        // offset in user.uids where newIdentity looks first; guarded by mu
	plat      platformState // what the platform needs to find runners' processes

	mu    sync.Mutex
	procs map[string]*Process // by runner id, until Done is closed
}

// NewSupervisor validates cfg, decides who runners run as and creates the
// state directories. On Linux it makes the calling process a child
// subreaper (see the package documentation): orphaned descendants of its
// other children are then reparented to it as well, and the supervisor
// reaps only those of its runners.
func NewSupervisor(cfg Config) (*Supervisor, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("new supervisor: Config.StateDir is required")
	}
	if cfg.LogMaxBytes < 0 || cfg.EndedLogs < 0 {
		return nil, errors.New("new supervisor: Config.LogMaxBytes and Config.EndedLogs may not be negative")
	}
	u, err := resolveRunnerUser(cfg)
	if err != nil {
		return nil, fmt.Errorf("new supervisor: %w", err)
	}
	s := &Supervisor{
		pidDir:    filepath.Join(cfg.StateDir, "pids"),
		logDir:    filepath.Join(cfg.StateDir, "logs"),
		logMax:    cmp.Or(cfg.LogMaxBytes, DefaultLogMaxBytes),
		endedLogs: cmp.Or(cfg.EndedLogs, DefaultEndedLogs),
		workDir:   cmp.Or(cfg.WorkDir, os.TempDir()),
		user:      u,
		log:       cmp.Or(cfg.Logger, slog.Default()),
		procs:     make(map[string]*Process),
	}
	if u.perRunner {
		s.uidNext = rand.Uint64N(u.uids.size())
	} else if os.Geteuid() == 0 {
		s.log.Warn("runners share one user: a runner can read the environment (secrets included) of every other app's runner, signal it and trace it; leave the runner user unset to give each runner a uid of its own", "uid", u.identity.uidOf())
	}
	for _, dir := range []string{s.pidDir, s.logDir} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("new supervisor: %w", err)
		}
	}
	s.removeUnboundedLogs()
	s.initPlatform()
	return s, nil
}

// Spec describes one runner to start.
type Spec struct {
	// RunnerID names the runner and its pid and log files; it must match
	// [a-z0-9-]{1,64}. The runner's processes are recognised by it (they
	// inherit REVLINE_RUNNER_ID), so it should be unique on the machine, as
	// a UUID is.
	RunnerID string
	// App is required, an app name (events.ValidateAppName): it is exported
	// to the runner as REVLINE_APP and names the directory of its log.
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
	if err := events.ValidateAppName(s.App); err != nil {
		return fmt.Errorf("%w: runner %s: %w", ErrInvalidSpec, s.RunnerID, err)
	}
	if strings.TrimSpace(s.Command) == "" {
		return fmt.Errorf("%w: runner %s has an empty command", ErrInvalidSpec, s.RunnerID)
	}
	for _, kv := range s.Env {
		key, _, ok := strings.Cut(kv, "=")
		// Values may be secrets: errors name keys only.
		if !ok || key == "" {
			return fmt.Errorf("%w: runner %s: an env entry is not KEY=VALUE", ErrInvalidSpec, s.RunnerID)
		}
		if slices.Contains(reservedEnv, key) {
			return fmt.Errorf("%w: runner %s: env entry %s overrides a variable set by the supervisor", ErrInvalidSpec, s.RunnerID, key)
		}
	}
	return nil
}

// Start launches spec.Command with /bin/sh in a new process group, on a free
// loopback port exported as PORT, as the runner's user (a uid of its own, see
// Config.RunnerUIDs, or Config.RunnerUser), in a fresh working directory, with stdin from /dev/null, stdout and stderr
// a pipe the supervisor copies into the runner's log file (rotated, see
// Config.LogMaxBytes) and no other descriptor. It records the
// runner in a pid file until the runner is done. Call SweepOrphans before
// starting runners after a restart.
// Errors wrap ErrInvalidSpec, ErrRunnerExists or ErrNoRunnerUID where they
// apply.
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
	runLog, logR, logW, err := openRunnerLog(s.logPath(spec.App, spec.RunnerID), s.logMax, s.log)
	if err != nil {
		return nil, fmt.Errorf("start runner %s: %w", spec.RunnerID, err)
	}
	// Once started, the runner holds its own end of the pipe; until then,
	// a failed start drains nothing.
	defer logW.Close()
	started := false
	defer func() {
		if !started {
			logR.Close()
			runLog.f.Close()
		}
	}()
	ident, err := s.newIdentity()
	if err != nil {
		return nil, fmt.Errorf("start runner %s: %w", spec.RunnerID, err)
	}
	workDir, err := s.makeWorkDir(spec.RunnerID, ident)
	if err != nil {
		return nil, fmt.Errorf("start runner %s: %w", spec.RunnerID, err)
	}

	p := &Process{
		sup:      s,
		runnerID: spec.RunnerID,
		app:      spec.App,
		port:     port,
		log:      runLog,
		workDir:  workDir,
		ident:    ident,
		done:     make(chan struct{}),
	}
	env := runnerEnv(spec, port, workDir, ident)
	newCmd := func() *exec.Cmd {
		cmd := exec.Command("/bin/sh", "-c", spec.Command)
		cmd.Env = env
		cmd.Dir = workDir
		cmd.Stdout, cmd.Stderr = logW, logW
		cmd.SysProcAttr = sysProcAttr()
		cmd.SysProcAttr.Credential = ident.credential()
		return cmd
	}
	cmd, err := s.spawn(p, newCmd)
	if err != nil {
		_ = os.RemoveAll(workDir)
		return nil, fmt.Errorf("start runner %s: %w", spec.RunnerID, err)
	}
	p.pid = cmd.Process.Pid
	p.startedAt = time.Now()
	started = true
	go runLog.copy(logR)
	s.started(p)

	if err := s.writePidFile(p); err != nil {
		// Untracked, the runner would survive a supervisor crash unnoticed.
		p.stopping.Store(true)
		p.killRequested.Store(true)
		s.killTree(p)
		_ = cmd.Wait()
		for s.treeAlive(p) {
			s.killTree(p)
			time.Sleep(drainPollInterval)
		}
		s.release(p)
		return nil, fmt.Errorf("start runner %s: %w", spec.RunnerID, err)
	}
	s.procs[p.runnerID] = p
	s.startTracking()
	go s.reap(p, cmd)
	s.log.Info("runner started", "runner_id", p.runnerID, "pid", p.pid, "port", port, "app", spec.App, "revision", spec.RevisionID, "cgroup", p.cgroup != "", "uid", ident.uidOf())
	return p, nil
}

// makeWorkDir creates a runner's working directory, owned by the runner's
// user and group, mode 0700.
func (s *Supervisor) makeWorkDir(runnerID string, id identity) (string, error) {
	dir, err := os.MkdirTemp(s.workDir, workDirPrefix+runnerID+"-")
	if err != nil {
		return "", fmt.Errorf("create working directory: %w", err)
	}
	if id.drop {
		if err := os.Chown(dir, int(id.uid), int(id.gid)); err != nil {
			_ = os.Remove(dir)
			return "", fmt.Errorf("create working directory: %w", err)
		}
	}
	return dir, nil
}

// isWorkDir reports whether dir can be a runner's working directory made by
// makeWorkDir (a pid file names it; only such directories are removed).
func isWorkDir(dir, runnerID string) bool {
	return filepath.IsAbs(dir) && strings.HasPrefix(filepath.Base(dir), workDirPrefix+runnerID+"-")
}

// runnerEnv returns a runner's environment.
func runnerEnv(spec Spec, port int, workDir string, id identity) []string {
	env := inheritedEnv()
	if id.drop {
		// The supervisor's HOME and name are not the runner's.
		env = slices.DeleteFunc(env, func(kv string) bool {
			name, _, _ := strings.Cut(kv, "=")
			return name == "HOME" || name == "USER" || name == "LOGNAME"
		})
		env = append(env, "HOME="+workDir, "USER="+id.name, "LOGNAME="+id.name)
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

// writePidFile records p's pid file from what is known of it now. It does
// nothing once p is gone (its pid file is removed then).
func (s *Supervisor) writePidFile(p *Process) error {
	p.pidFileMu.Lock()
	defer p.pidFileMu.Unlock()
	if p.gone.Load() {
		return nil
	}
	rec := pidRecord{pgid: p.pid, runnerID: p.runnerID, cgroup: p.cgroup, workDir: p.workDir, procs: p.recorded}
	if err := writeFileAtomic(s.pidPath(p.runnerID), rec.marshal()); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	return nil
}

// reap waits for the runner's shell, then for the rest of its processes, and
// retires the runner.
func (s *Supervisor) reap(p *Process, cmd *exec.Cmd) {
	err := cmd.Wait()
	// The shell exited on its own unless Stop or Kill signalled the runner:
	// anything left behind then is a stray, killed at once. When stopping,
	// Stop or Kill deliver SIGKILL in the end, so this terminates.
	strays := !p.stopping.Load()
	for s.treeAlive(p) {
		if strays {
			s.killTree(p)
		} else {
			p.killLeftovers()
		}
		time.Sleep(drainPollInterval)
	}
	p.log.drained()
	p.mu.Lock()
	p.pidFileMu.Lock()
	p.gone.Store(true)
	p.pidFileMu.Unlock()
	p.mu.Unlock()
	s.release(p)

	if rmErr := os.Remove(s.pidPath(p.runnerID)); rmErr != nil {
		s.log.Warn("remove pid file", "runner_id", p.runnerID, "err", rmErr)
	}
	s.mu.Lock()
	if s.procs[p.runnerID] == p {
		delete(s.procs, p.runnerID)
	}
	s.mu.Unlock()
	if err := s.pruneLogs(p.app, s.endedLogs); err != nil {
		s.log.Warn("remove logs of ended runners", "app", p.app, "err", err)
	}
	s.log.Info("runner exited", "runner_id", p.runnerID, "pid", p.pid, "err", err)
	p.exitErr = err
	close(p.done)
}

// release frees what a runner held once none of its processes is alive: its
// cgroup and its working directory.
func (s *Supervisor) release(p *Process) {
	s.forget(p)
	if err := os.RemoveAll(p.workDir); err != nil {
		s.log.Warn("remove working directory", "runner_id", p.runnerID, "dir", p.workDir, "err", err)
	}
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

// SweepOrphans kills the runners recorded in pid files by a previous run of
// the supervisor, e.g. one that was killed with SIGKILL, and removes those pid
// files, the runners' cgroups and their working directories. Runners started
// by s are left alone. It returns the number of runners whose processes it
// signalled, without waiting for them all to die.
//
// A runner's processes are those in its cgroup, those listed in its pid file
// that still run (same pid, same start time), those whose environment in
// /proc carries REVLINE_RUNNER_ID=<runner id of the pid file>, its process
// group if a member carries that variable, and every descendant of these;
// processes of a stale pid file are left alone. Where /proc cannot be read
// (not Linux), nothing is killed and pid files are just removed.
func (s *Supervisor) SweepOrphans() (int, error) {
	entries, err := os.ReadDir(s.pidDir)
	if err != nil {
		return 0, fmt.Errorf("sweep orphans: %w", err)
	}
	var errs []error
	var recs []pidRecord
	var paths []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() {
			continue
		}
		if id, ok := strings.CutSuffix(name, ".pid.tmp"); ok && !s.tracked(id) {
			// A pid file being written when the supervisor died.
			if err := os.Remove(filepath.Join(s.pidDir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("sweep orphans: %w", err))
			}
			continue
		}
		runnerID, ok := strings.CutSuffix(name, ".pid")
		if !ok || s.tracked(runnerID) {
			continue
		}
		path := filepath.Join(s.pidDir, name)
		rec, ok := readPidFile(path, runnerID)
		if !ok {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("sweep orphans: %w", err))
			}
			continue
		}
		recs = append(recs, rec)
		paths = append(paths, path)
	}
	killed := 0
	for i, res := range s.killOrphans(recs) {
		rec := recs[i]
		if res.killed {
			killed++
			s.log.Info("killed orphaned runner", "runner_id", rec.runnerID, "pgid", rec.pgid, "processes", res.count)
		}
		if res.err != nil {
			errs = append(errs, fmt.Errorf("sweep orphans: kill runner %s: %w", rec.runnerID, res.err))
			continue // keep the pid file for another try
		}
		if rec.workDir != "" && isWorkDir(rec.workDir, rec.runnerID) {
			if err := os.RemoveAll(rec.workDir); err != nil {
				errs = append(errs, fmt.Errorf("sweep orphans: %w", err))
			}
		}
		if err := os.Remove(paths[i]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("sweep orphans: %w", err))
		}
	}
	return killed, errors.Join(errs...)
}

// orphanResult is what killOrphans did about one pid file.
type orphanResult struct {
	killed bool  // some process was signalled
	count  int   // how many
	err    error // the pid file should be kept for another try
}

func (s *Supervisor) tracked(runnerID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.procs[runnerID]
	return ok
}

// Process is a runner started by a Supervisor.
type Process struct {
	sup       *Supervisor
	runnerID  string
	pid       int // also the process group id
	port      int
	startedAt time.Time
	app       string
	log       *runnerLog
	workDir   string   // the runner's working directory
	cgroup    string   // the runner's cgroup directory, or ""
	ident     identity // who the runner runs as; a uid of its own is held until done
	done      chan struct{}
	exitErr   error // written before done is closed

	stopping      atomic.Bool // Stop or Kill signalled the runner: stragglers are theirs to kill
	killRequested atomic.Bool // SIGKILL was sent: kill whatever of the runner still runs

	mu sync.Mutex // serialises signals with the runner becoming gone
	// gone is set once none of the runner's processes is alive: its process
	// group id may be reused, never signal it again.
	gone atomic.Bool

	pidFileMu sync.Mutex // guards recorded and writing the pid file
	recorded  []procKey  // processes listed in the pid file
}

// RunnerID returns the runner's id.
func (p *Process) RunnerID() string { return p.runnerID }

// PID returns the pid of the runner's shell, which is also its process group id.
func (p *Process) PID() int { return p.pid }

// UID returns the uid the runner runs as.
func (p *Process) UID() int { return p.ident.uidOf() }

// Port returns the port the runner was told to listen on (PORT).
func (p *Process) Port() int { return p.port }

// Addr returns the address at which the runner accepts connections once it
// is ready, as host:port. Today that is the loopback address and Port.
func (p *Process) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port))
}

// StartedAt returns when the runner was started.
func (p *Process) StartedAt() time.Time { return p.startedAt }

// LogPath returns the file the runner's stdout and stderr are appended to
// (see Config.LogMaxBytes for its rotation).
func (p *Process) LogPath() string { return p.log.path }

// WorkDir returns the runner's working directory, removed once it is done.
func (p *Process) WorkDir() string { return p.workDir }

// Done returns a channel that is closed once the runner has exited: its shell
// has been reaped and none of its processes is alive.
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
		if out := lastOutput(p.log.path, p.log.runStart()); out != "" {
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

// Stop sends SIGTERM to the runner's processes and, if the runner is not done
// within grace, SIGKILL; forced reports whether SIGKILL was sent. It then
// waits for the runner to be done, bounded by ctx; if ctx ends during the
// grace period, the runner is killed at once. Stop is safe to call on a
// runner that has already exited, and returns (false, nil) then.
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

// Kill sends SIGKILL to the runner's processes and waits for the runner to
// be done, bounded by ctx. It is safe to call on a runner that has exited.
func (p *Process) Kill(ctx context.Context) error {
	if _, err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	return p.wait(ctx)
}

// killLeftovers kills what still runs of a runner that SIGKILL was
// requested for. It holds p.mu, like signal, so that signal's own kill
// comes first and reports truly whether SIGKILL found a process (Stop's
// forced); without it, this loop could kill the runner first, between
// signal's request and its kill, and a stop that needed SIGKILL would be
// reported as not forced.
func (p *Process) killLeftovers() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.killRequested.Load() {
		p.sup.killTree(p)
	}
}

// signal marks the runner as stopping and sends sig to its processes, unless
// the runner is gone. It reports whether the signal was delivered.
func (p *Process) signal(sig syscall.Signal) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone.Load() {
		return false, nil
	}
	p.stopping.Store(true)
	if sig == syscall.SIGKILL {
		p.killRequested.Store(true)
		return p.sup.killTree(p), nil
	}
	delivered, err := p.sup.signalTree(p, sig)
	if err != nil {
		return delivered, fmt.Errorf("signal runner %s (pgid %d): %w", p.runnerID, p.pid, err)
	}
	return delivered, nil
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

// closeOnExecListed marks close-on-exec every descriptor above 2 that dir
// (/proc/self/fd or /dev/fd) lists.
func closeOnExecListed(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	for _, name := range names {
		if fd, err := strconv.Atoi(name); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}
