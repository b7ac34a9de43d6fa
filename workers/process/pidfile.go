//go:build unix

package process

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// maxRecordedProcs bounds the processes a pid file lists.
const maxRecordedProcs = 4096

// procKey identifies a process across pid reuse: its pid and its start time
// (in clock ticks since boot, field 22 of /proc/<pid>/stat).
type procKey struct {
	pid   int
	start uint64
}

// pidRecord is what a pid file holds: everything a later supervisor needs to
// find a runner's processes after the one that started it was killed.
//
// The file is line based. The first line is "<pgid> <runner id>" (the only
// line files of earlier versions have); then, in any order:
//
//	cgroup "<cgroup v2 directory of the runner>"
//	workdir "<working directory of the runner>"
//	proc <pid> <start time>     (one per process seen in the runner's tree)
//
// Unknown lines are ignored.
type pidRecord struct {
	pgid     int
	runnerID string
	cgroup   string
	workDir  string
	procs    []procKey
}

func (r pidRecord) marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d %s\n", r.pgid, r.runnerID)
	if r.cgroup != "" {
		fmt.Fprintf(&b, "cgroup %s\n", strconv.Quote(r.cgroup))
	}
	if r.workDir != "" {
		fmt.Fprintf(&b, "workdir %s\n", strconv.Quote(r.workDir))
	}
	for i, k := range r.procs {
		if i == maxRecordedProcs {
			break
		}
		fmt.Fprintf(&b, "proc %d %d\n", k.pid, k.start)
	}
	return b.Bytes()
}

// parsePidRecord parses a pid file and reports whether it is well formed and
// names runnerID.
func parsePidRecord(b []byte, runnerID string) (pidRecord, bool) {
	first, rest, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(first)
	if len(f) != 2 || f[1] != runnerID {
		return pidRecord{}, false
	}
	pgid, err := strconv.Atoi(f[0])
	// pgid 0 and -1 would make kill(-pgid) hit our own group or every process.
	if err != nil || pgid <= 1 {
		return pidRecord{}, false
	}
	r := pidRecord{pgid: pgid, runnerID: runnerID}
	for line := range strings.SplitSeq(rest, "\n") {
		key, value, _ := strings.Cut(line, " ")
		switch key {
		case "cgroup", "workdir":
			path, err := strconv.Unquote(value)
			if err != nil || !filepath.IsAbs(path) {
				continue
			}
			if key == "cgroup" {
				r.cgroup = path
			} else {
				r.workDir = path
			}
		case "proc":
			pid, start, _ := strings.Cut(value, " ")
			p, err1 := strconv.Atoi(pid)
			s, err2 := strconv.ParseUint(start, 10, 64)
			if err1 == nil && err2 == nil && p > 1 && len(r.procs) < maxRecordedProcs {
				r.procs = append(r.procs, procKey{pid: p, start: s})
			}
		}
	}
	return r, true
}

// readPidFile reads the pid file at path and reports whether it is well
// formed and names runnerID.
func readPidFile(path, runnerID string) (pidRecord, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return pidRecord{}, false
	}
	return parsePidRecord(b, runnerID)
}

// writeFileAtomic writes b to path through a temporary file and a rename, so
// that a crash leaves the old content or the new, never a part.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}
