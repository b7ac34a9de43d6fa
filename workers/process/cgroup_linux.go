package process

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupPrefix starts the name of every runner's cgroup.
const cgroupPrefix = "revline-"

// cgroupBase returns the cgroup v2 directory of this process if the
// supervisor may create cgroups in it, to put each runner in a child cgroup
// of its own: the kernel then keeps every descendant of the runner in it,
// whatever it does (setsid, double fork), and can kill them all at once.
func cgroupBase() (string, error) {
	dir, err := ownCgroupDir()
	if err != nil {
		return "", err
	}
	probe, err := os.MkdirTemp(dir, cgroupPrefix+"probe-")
	if err != nil {
		return "", fmt.Errorf("cgroup %s is not writable: %w", dir, err)
	}
	if err := os.Remove(probe); err != nil {
		return "", fmt.Errorf("remove probe cgroup: %w", err)
	}
	return dir, nil
}

// ownCgroupDir returns the directory of this process's cgroup in the
// cgroup v2 hierarchy.
func ownCgroupDir() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("no cgroup v2: %w", err)
	}
	path := ""
	found := false
	for line := range strings.SplitSeq(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			path, found = p, true
		}
	}
	if !found {
		return "", errors.New("no cgroup v2 hierarchy in /proc/self/cgroup")
	}
	mounts, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("no cgroup v2: %w", err)
	}
	defer mounts.Close()
	sc := bufio.NewScanner(mounts)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		// id parent major:minor root mount-point options [optional...] - type source super-options
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, tf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(tf) < 1 || tf[0] != "cgroup2" {
			continue
		}
		root, mountPoint := unescapeMountField(pf[3]), unescapeMountField(pf[4])
		rel, ok := strings.CutPrefix(path, root)
		if !ok || (rel != "" && root != "/" && !strings.HasPrefix(rel, "/")) {
			continue
		}
		return filepath.Join(mountPoint, rel), nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read mountinfo: %w", err)
	}
	return "", errors.New("cgroup v2 hierarchy not mounted")
}

// unescapeMountField undoes the octal escapes (\040 for a space) of a
// mountinfo field.
func unescapeMountField(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// startInCgroup creates a cgroup for runner runnerID under base and starts
// the command newCmd returns directly in it (clone3 with CLONE_INTO_CGROUP),
// so that not even the runner's first instant escapes it.
func startInCgroup(base, runnerID string, newCmd func() *exec.Cmd) (*exec.Cmd, string, error) {
	dir, err := os.MkdirTemp(base, cgroupPrefix+runnerID+"-")
	if err != nil {
		return nil, "", fmt.Errorf("create cgroup: %w", err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = os.Remove(dir)
		return nil, "", fmt.Errorf("open cgroup: %w", err)
	}
	defer unix.Close(fd)
	cmd := newCmd()
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = fd
	if err := startCmd(cmd); err != nil {
		_ = os.Remove(dir)
		return nil, "", fmt.Errorf("start in cgroup %s: %w", dir, err)
	}
	return cmd, dir, nil
}

// isRunnerCgroup reports whether dir, read from a pid file, can be the
// cgroup of runner runnerID: only such directories are killed and removed.
func isRunnerCgroup(dir, runnerID string) bool {
	if !filepath.IsAbs(dir) || !strings.HasPrefix(filepath.Base(dir), cgroupPrefix+runnerID+"-") {
		return false
	}
	var fs unix.Statfs_t
	return unix.Statfs(dir, &fs) == nil && fs.Type == unix.CGROUP2_SUPER_MAGIC
}

// cgroupProcs lists the live processes in cgroup dir (zombies leave it).
func cgroupProcs(dir string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	for f := range strings.FieldsSeq(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// cgroupKill SIGKILLs every process in cgroup dir at once (Linux 5.14 and
// later; callers also signal the processes one by one).
func cgroupKill(dir string) error {
	return os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
}

// removeCgroup removes cgroup dir, waiting up to wait for its last
// processes to exit.
func removeCgroup(dir string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
		time.Sleep(drainPollInterval)
	}
}
