//go:build linux

package process_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/revline/revline/workers/process"
)

// escapee describes one way a runner's descendant leaves its process group.
type escapee struct {
	name   string
	clean  bool // with an empty environment: no REVLINE_RUNNER_ID
	daemon bool // after a double fork: its parent exits at once
	// cgroupOnly is true where only a cgroup can follow it: its parent exits
	// (so no parent link leads to it) and it carries no REVLINE_RUNNER_ID,
	// before the supervisor's next look.
	cgroupOnly bool
}

var escapees = []escapee{
	{name: "setsid"},
	{name: "setsid with empty environment", clean: true},
	{name: "double fork and setsid", daemon: true},
	{name: "double fork and setsid with empty environment", clean: true, daemon: true, cgroupOnly: true},
}

// escapingCommand returns the command of a runner that starts, in the
// background, the escapees that mode can follow, then execs the serve
// helper; and how many pids they append to pidsFile.
func escapingCommand(pidsFile, mode string) (string, int) {
	var b strings.Builder
	n := 0
	for _, e := range escapees {
		if e.cgroupOnly && mode != modeCgroup {
			continue
		}
		fmt.Fprintf(&b, "%s & ", escapeCommand(pidsFile, e.clean, e.daemon))
		n++
	}
	b.WriteString(shQuote(helperBin))
	return b.String(), n
}

// waitPids waits until n pids are in pidsFile and returns them.
func waitPids(ctx context.Context, t *testing.T, pidsFile string, n int) []int {
	t.Helper()
	eventually(ctx, t, fmt.Sprintf("%d escaped pids in %s", n, pidsFile), func() bool { return len(readPids(pidsFile)) >= n })
	pids := readPids(pidsFile)
	t.Cleanup(func() {
		if t.Failed() {
			for _, pid := range pids {
				if alive(pid) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	})
	return pids
}

// startTime returns the start time of process pid, or "" if there is none.
func startTime(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	stat := string(b)
	f := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
	return f[19]
}

// TestEscapedDescendantsDieWithRunner: processes that left the runner's
// process group (setsid, a double fork, an empty environment) are killed
// with it, and reaped (they were reparented to the supervisor).
func TestEscapedDescendantsDieWithRunner(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		for _, how := range []string{"stop", "kill", "shell exits"} {
			t.Run(how, func(t *testing.T) {
				t.Parallel()
				ctx := testContext(t)
				stateDir := t.TempDir()
				s := newSupervisorMode(t, stateDir, mode)
				pidsFile := filepath.Join(runnerDir(t), "pids")
				command, n := escapingCommand(pidsFile, mode)
				spec := serveSpec("escape-" + strings.ReplaceAll(how, " ", "-") + "-" + mode)
				spec.Command = command
				p, err := s.Start(spec)
				if err != nil {
					t.Fatal(err)
				}
				if got := process.CgroupOf(p) != ""; got != (mode == modeCgroup) {
					t.Fatalf("runner in a cgroup: %v, want %v", got, mode == modeCgroup)
				}
				if err := p.WaitReady(ctx, 20*time.Second); err != nil {
					t.Fatal(err)
				}
				server := serverPID(t, p.Port())
				pids := waitPids(ctx, t, pidsFile, n)
				if how == "shell exits" && mode == modeProc {
					// Without a cgroup, a process with an empty environment
					// is followed once the supervisor has seen it in the
					// runner's tree, before its parent (the shell) exits.
					pidFile := filepath.Join(stateDir, "pids", spec.RunnerID+".pid")
					eventually(ctx, t, "escaped processes recorded", func() bool { return recorded(pidsFile, n, pidFile, false) })
				}
				starts := make(map[int]string)
				for _, pid := range pids {
					if !alive(pid) {
						t.Fatalf("escaped process %d not running", pid)
					}
					starts[pid] = startTime(pid)
				}

				switch how {
				case "stop":
					forced, err := p.Stop(ctx, 100*time.Millisecond)
					if err != nil || !forced {
						t.Fatalf("Stop = %v, %v; want forced (the escapees ignore SIGTERM)", forced, err)
					}
				case "kill":
					if err := p.Kill(ctx); err != nil {
						t.Fatal(err)
					}
				case "shell exits":
					_ = syscall.Kill(server, syscall.SIGKILL) // the shell exec'd the server
					waitDone(ctx, t, p)
				}
				select {
				case <-p.Done():
				default:
					t.Fatal("runner not done")
				}
				for _, pid := range append(pids, server) {
					if alive(pid) {
						t.Errorf("process %d of the runner still alive after it is done", pid)
					}
				}
				for _, pid := range pids {
					stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
					cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
					eventually(ctx, t, fmt.Sprintf("escaped process %d reaped (self %d): %s %s", pid, os.Getpid(), stat, cg), func() bool {
						return startTime(pid) != starts[pid]
					})
				}
				if dir := process.CgroupOf(p); dir != "" {
					if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("cgroup %s after the runner is done: %v, want it removed", dir, err)
					}
				}
			})
		}
	})
}

// TestReapsReparentedZombies: a descendant whose parent exits is reparented
// to the supervisor (a child subreaper), which reaps it when it dies while
// the runner runs.
func TestReapsReparentedZombies(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		ctx := testContext(t)
		s := newSupervisorMode(t, t.TempDir(), mode)
		pidsFile := filepath.Join(runnerDir(t), "pids")
		spec := serveSpec("reparented-" + mode)
		spec.Command = fmt.Sprintf("sh -c 'sleep 1000 & echo $! > %s'; exec %s", pidsFile, shQuote(helperBin))
		p, err := s.Start(spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WaitReady(ctx, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		orphan := waitPids(ctx, t, pidsFile, 1)[0]
		eventually(ctx, t, "orphan reparented to the supervisor", func() bool { return ppid(orphan) == os.Getpid() })
		start := startTime(orphan)

		if err := syscall.Kill(orphan, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "dead orphan reaped", func() bool { return startTime(orphan) != start })
		select {
		case <-p.Done():
			t.Fatal("runner done after its orphan died")
		default:
		}
	})
}

// ppid returns the parent of process pid, or 0.
func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	stat := string(b)
	f := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
	n, _ := strconv.Atoi(f[1])
	return n
}

// TestSweepFindsEscapedDescendantsAfterCrash kills a supervisor (a helper
// process) with SIGKILL while its runner has escaped descendants: the next
// supervisor's sweep kills them all.
func TestSweepFindsEscapedDescendantsAfterCrash(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		ctx := testContext(t)
		dir := t.TempDir()
		pidsFile := filepath.Join(runnerDir(t), "pids")
		command, n := escapingCommand(pidsFile, mode)
		runnerID := "crashed-" + mode

		cmd, shell, port := startSupervisorHelper(ctx, t, envStateDir+"="+dir, envMode+"="+mode, envRunnerID+"="+runnerID,
			envCommand+"="+command, envPidsFile+"="+pidsFile, envPidsWant+"="+strconv.Itoa(n))
		server := serverPID(t, port)
		pids := waitPids(ctx, t, pidsFile, n)
		pidFile := filepath.Join(dir, "pids", runnerID+".pid")
		rec, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}

		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		eventually(ctx, t, "runner shell killed by Pdeathsig", func() bool { return !alive(shell) })
		for _, pid := range append(pids, server) {
			if !alive(pid) {
				t.Fatalf("process %d died with its supervisor; nothing left to sweep", pid)
			}
		}

		s := newSupervisor(t, dir)
		if got, err := s.SweepOrphans(); err != nil || got != 1 {
			t.Fatalf("SweepOrphans = %d, %v; want 1, nil", got, err)
		}
		for _, pid := range append(pids, server) {
			eventually(ctx, t, fmt.Sprintf("orphaned process %d killed", pid), func() bool { return !alive(pid) })
		}
		if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("pid file after sweep: %v, want it removed", err)
		}
		for line := range strings.SplitSeq(string(rec), "\n") {
			key, value, _ := strings.Cut(line, " ")
			if key != "cgroup" && key != "workdir" {
				continue
			}
			path, err := strconv.Unquote(value)
			if err != nil {
				t.Fatalf("pid file line %q: %v", line, err)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s %s after sweep: %v, want it removed", key, path, err)
			}
		}
		if mode == modeCgroup && !strings.Contains(string(rec), "\ncgroup ") {
			t.Errorf("pid file %q names no cgroup", rec)
		}
	})
}
