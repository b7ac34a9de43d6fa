package process_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/revline/revline/workers/process"
)

// A runner that writes far more than its log's limit leaves at most two
// files of the limit on disk, the previous and the current one, which hold
// its latest output, each starting with a line.
func TestLogRotatesAtItsLimit(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	const limit = 64 << 10
	s := newSupervisorConfig(t, process.Config{StateDir: t.TempDir(), LogMaxBytes: limit})
	// About 590 KB: 1 to 100000, one a line.
	p, err := s.Start(process.Spec{App: "web", RunnerID: testRunnerID(t), Command: "seq 1 100000"})
	if err != nil {
		t.Fatal(err)
	}
	waitDone(ctx, t, p)

	current, err := os.ReadFile(p.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	previous, err := os.ReadFile(p.LogPath() + ".1")
	if err != nil {
		t.Fatal(err)
	}
	if len(current) > limit || len(previous) > limit+len("100000\n") {
		t.Fatalf("log sizes %d (current) and %d (previous), want at most %d each and the end of a line", len(current), len(previous), limit)
	}
	entries, err := os.ReadDir(filepath.Dir(p.LogPath()))
	if err != nil || len(entries) != 2 {
		t.Fatalf("log directory holds %v (%v), want the log and its .1", entries, err)
	}
	// Together they are the end of the output, in order.
	numbers := strings.Fields(string(previous) + string(current))
	if !strings.HasSuffix(string(current), "\n100000\n") || !strings.HasPrefix(string(previous), numbers[0]+"\n") {
		t.Fatalf("current log ends %q, want the last line", current[max(0, len(current)-20):])
	}
	first, err := strconv.Atoi(numbers[0])
	if err != nil {
		t.Fatalf("the previous log starts in the middle of a line: %q", previous[:20])
	}
	for i, n := range numbers {
		if n != strconv.Itoa(first+i) {
			t.Fatalf("line %d of the two logs is %q, want %d: output lost or reordered", i, n, first+i)
		}
	}
}

// A line longer than the limit is cut, so that no file outgrows it by
// more than 16 KiB.
func TestLogCutsALineLongerThanItsLimit(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	const limit = 16 << 10
	s := newSupervisorConfig(t, process.Config{StateDir: t.TempDir(), LogMaxBytes: limit})
	p, err := s.Start(process.Spec{App: "web", RunnerID: testRunnerID(t), Command: "head -c 100000 /dev/zero | tr '\\0' x; echo; echo done"})
	if err != nil {
		t.Fatal(err)
	}
	waitDone(ctx, t, p)
	for _, path := range []string{p.LogPath(), p.LogPath() + ".1"} {
		if info, err := os.Stat(path); err != nil || info.Size() > limit+16<<10 {
			t.Errorf("%s: %v; want at most %d bytes", filepath.Base(path), err, limit+16<<10)
		}
	}
	if b, err := os.ReadFile(p.LogPath()); err != nil || !strings.HasSuffix(string(b), "x\ndone\n") {
		t.Errorf("current log ends %q (%v), want the end of the long line and the last one", b[max(0, len(b)-20):], err)
	}
}

// Of an app's runners that ended, only the last EndedLogs keep their logs;
// running runners and other apps keep theirs; RemoveLogs, for a deleted
// app, removes all but those of its running runners.
func TestEndedRunnersLogsArePruned(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir := t.TempDir()
	s := newSupervisorConfig(t, process.Config{StateDir: dir, LogMaxBytes: 1 << 10, EndedLogs: 3})
	// Runner ids are unique on the machine: another test's supervisor
	// would take a runner of the same id for one of its own.
	prefix := "pruned-"
	logOf := func(app, id string) string { return filepath.Join(dir, "logs", app, prefix+id+".log") }
	exists := func(path string) bool {
		_, err := os.Stat(path)
		return err == nil
	}

	live, err := s.Start(process.Spec{App: "web", RunnerID: prefix + "live", Command: "seq 1 1000; exec " + shQuote(helperBin), Env: []string{envHelper + "=idle"}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "the live runner's rotated log", func() bool { return exists(live.LogPath() + ".1") })
	other, err := s.Start(process.Spec{App: "other", RunnerID: prefix + "r1", Command: "echo other"})
	if err != nil {
		t.Fatal(err)
	}
	waitDone(ctx, t, other)
	run := func(id string) {
		t.Helper()
		p, err := s.Start(process.Spec{App: "web", RunnerID: prefix + id, Command: "seq 1 1000"})
		if err != nil {
			t.Fatal(err)
		}
		waitDone(ctx, t, p)
	}
	for i, id := range []string{"r1", "r2", "r3"} {
		run(id)
		// Their order, clearer than the clock's ticks: r1 is the oldest.
		at := time.Now().Add(time.Duration(i-3) * time.Hour)
		if err := os.Chtimes(logOf("web", id), at, at); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"r1", "r2", "r3"} {
		if !exists(logOf("web", id)) {
			t.Fatalf("log of %s removed with only 3 ended runners", id)
		}
	}
	run("r4")
	for id, want := range map[string]bool{"r1": false, "r2": true, "r3": true, "r4": true} {
		if exists(logOf("web", id)) != want || exists(logOf("web", id)+".1") != want {
			t.Errorf("log of %s and its .1 exist: %v, %v; want %v", id, exists(logOf("web", id)), exists(logOf("web", id)+".1"), want)
		}
	}
	if !exists(live.LogPath()) || !exists(logOf("other", "r1")) {
		t.Fatal("the log of a running runner, or of another app's runner, was removed")
	}

	if err := s.RemoveLogs("web"); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "logs", "web"))
	if err != nil || len(entries) != 2 || !exists(live.LogPath()) || !exists(live.LogPath()+".1") {
		t.Fatalf("after RemoveLogs the app's log directory holds %v (%v), want only the running runner's log and its .1", entries, err)
	}
	if _, err := live.Stop(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveLogs("web"); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(dir, "logs", "web")) || !exists(logOf("other", "r1")) {
		t.Error("RemoveLogs left the deleted app's log directory, or removed another app's logs")
	}
	if err := s.RemoveLogs("../other"); err == nil {
		t.Error("RemoveLogs of a path: no error")
	}
}

// The logs an earlier version wrote without a size limit, directly in the
// logs directory, are removed when a supervisor starts; nothing else is.
func TestUnboundedLogsOfAnEarlierVersionAreRemoved(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(filepath.Join(logs, "web"), 0o750); err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{ // path under logs → kept
		"01a219bd-464b-744a-bdb6-c3c0c5793468.log": false,
		"notes.txt": true,
		"web/01a219bd-464b-744a-bdb6-c3c0c5793468.log": true,
	}
	for name := range files {
		if err := os.WriteFile(filepath.Join(logs, name), []byte("output\n"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	newSupervisor(t, dir)
	for name, kept := range files {
		if _, err := os.Stat(filepath.Join(logs, name)); (err == nil) != kept {
			t.Errorf("%s: %v, want kept %v", name, err, kept)
		}
	}
}
