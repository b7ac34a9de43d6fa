package process

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/revline/revline/events"
)

// DefaultLogMaxBytes is the size at which a runner's log file is rotated
// when Config.LogMaxBytes is zero.
const DefaultLogMaxBytes = 10 << 20

// DefaultEndedLogs is how many ended runners of an app keep their logs
// when Config.EndedLogs is zero.
const DefaultEndedLogs = 5

const (
	// logSuffix ends a runner's log file: <LogDir>/<app>/<runner id>.log.
	logSuffix = ".log"
	// rotatedSuffix is added to a log file's name when it is rotated.
	rotatedSuffix = ".1"
	// newSuffix names the file that replaces a log being rotated.
	newSuffix = ".new"
	// logLineSlack is how far past its limit a log file may grow to end
	// with a whole line.
	logLineSlack = 16 << 10
	// logChunk is how much of a runner's output is copied at a time.
	logChunk = 32 << 10
	// logDrainWait bounds how long a runner that is done waits for its
	// output to be copied: a process that escaped the supervisor may hold
	// the pipe open for good.
	logDrainWait = 2 * time.Second
)

// runnerLog is where a runner's output goes. The runner writes on a pipe
// (its stdout and stderr); the supervisor copies what comes into the
// runner's log file, which the runner never holds, and rotates the file
// once it has max bytes (at the end of the line under way): the file
// becomes <name>.1, replacing the previous one, and a new file starts. A
// runner thus takes at most about twice max on disk, however much it
// writes.
type runnerLog struct {
	path string
	max  int64
	log  *slog.Logger

	mu   sync.Mutex // guards f, size, lineEnded and from
	f    *os.File
	size int64
	// lineEnded says the file ends with a newline (or is empty).
	lineEnded bool
	// from is the offset in f where this run's output starts: the size of
	// the log when the runner started (earlier runs of the runner id wrote
	// before), 0 once the log was rotated.
	from int64

	copied chan struct{} // closed once the pipe is drained and f closed
}

// openRunnerLog opens the log file at path for appending, creating it and
// its directory if needed, and returns it with the pipe the runner is to
// write on. The caller closes w once the runner holds it, and calls copy.
func openRunnerLog(path string, max int64, log *slog.Logger) (l *runnerLog, r, w *os.File, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, nil, nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, nil, err
	}
	r, w, err = os.Pipe()
	if err != nil {
		f.Close()
		return nil, nil, nil, err
	}
	// A file left by an earlier run is taken as ending its last line.
	l = &runnerLog{path: path, max: max, log: log, f: f, size: info.Size(), lineEnded: true, from: info.Size(), copied: make(chan struct{})}
	return l, r, w, nil
}

// copy writes what comes on r to the log until every writer has closed
// the pipe, then closes r and the log file. Output that cannot be written
// (a full disk) is dropped, with one warning, so that the runner is never
// blocked by its log.
func (l *runnerLog) copy(r *os.File) {
	defer close(l.copied)
	defer r.Close()
	buf := make([]byte, logChunk)
	warned := false
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if werr := l.write(buf[:n]); werr != nil && !warned {
				warned = true
				l.log.Warn("runner output dropped: its log cannot be written", "log", l.path, "err", werr)
			}
		}
		if err != nil {
			break // io.EOF: every process of the runner closed its output
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.f.Close(); err != nil {
		l.log.Warn("close runner log", "log", l.path, "err", err)
	}
}

// write appends b to the log. Once the log has max bytes, it is rotated at
// the end of the line under way, so that every file holds whole lines,
// unless that line goes on for more than logLineSlack bytes: it is cut
// there.
func (l *runnerLog) write(b []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(b) > 0 {
		if l.size < l.max {
			n := min(int64(len(b)), l.max-l.size)
			if err := l.append(b[:n]); err != nil {
				return err
			}
			b = b[n:]
			continue
		}
		if !l.lineEnded {
			room := l.max + logLineSlack - l.size
			n := min(int64(len(b)), room)
			if nl := bytes.IndexByte(b[:n], '\n'); nl >= 0 {
				n = int64(nl) + 1
			} else if n < room {
				return l.append(b) // the line goes on in what comes next
			}
			if err := l.append(b[:n]); err != nil {
				return err
			}
			b = b[n:]
		}
		if err := l.rotate(); err != nil {
			return err
		}
	}
	return nil
}

func (l *runnerLog) append(b []byte) error {
	n, err := l.f.Write(b)
	l.size += int64(n)
	if n > 0 {
		l.lineEnded = b[n-1] == '\n'
	}
	return err
}

// rotate makes the log its .1 file and starts a new one. The log's name
// names a file all along, so that readers never find it missing.
func (l *runnerLog) rotate() error {
	if err := os.Remove(l.path + rotatedSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rotate log: %w", err)
	}
	if err := os.Link(l.path, l.path+rotatedSuffix); err != nil {
		// A file system without hard links: the log is missing for a
		// moment (a reader finds it empty).
		if err := os.Rename(l.path, l.path+rotatedSuffix); err != nil {
			return fmt.Errorf("rotate log: %w", err)
		}
	}
	f, err := os.OpenFile(l.path+newSuffix, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	if err := os.Rename(l.path+newSuffix, l.path); err != nil {
		f.Close()
		return fmt.Errorf("rotate log: %w", err)
	}
	l.f.Close()
	l.f, l.size, l.lineEnded, l.from = f, 0, true, 0
	return nil
}

// runStart returns the offset in the log file where this run's output
// starts.
func (l *runnerLog) runStart() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.from
}

// drained waits until the runner's output is all in its log, or
// logDrainWait has passed.
func (l *runnerLog) drained() {
	timer := time.NewTimer(logDrainWait)
	defer timer.Stop()
	select {
	case <-l.copied:
	case <-timer.C:
		l.log.Warn("runner output still open after the runner is done: a process outside the runner holds it", "log", l.path)
	}
}

// removeUnboundedLogs removes the log files an earlier version wrote
// directly in the logs directory (<runner id>.log, without a size limit):
// their runners ended with that version's supervisor, and no reader looks
// there any more.
func (s *Supervisor) removeUnboundedLogs() {
	entries, err := os.ReadDir(s.logDir)
	if err != nil {
		s.log.Warn("list runner logs", "err", err)
		return
	}
	removed := 0
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), logSuffix)
		if !ok || !e.Type().IsRegular() || !runnerIDPattern.MatchString(id) {
			continue
		}
		if err := os.Remove(filepath.Join(s.logDir, e.Name())); err != nil {
			s.log.Warn("remove a runner log of an earlier version", "log", e.Name(), "err", err)
			continue
		}
		removed++
	}
	if removed > 0 {
		s.log.Info("removed the runner logs of an earlier version, which had no size limit", "count", removed)
	}
}

// logPath returns the log file of runner id of app.
func (s *Supervisor) logPath(app, runnerID string) string {
	return filepath.Join(s.logDir, app, runnerID+logSuffix)
}

// RemoveLogs removes the log files of app's runners that are not running
// under s: call it once the app is deleted. The logs of its running
// runners are left alone (remove them once they are done).
func (s *Supervisor) RemoveLogs(app string) error {
	return s.pruneLogs(app, 0)
}

// pruneLogs removes the log files of app's runners that are not running
// under s, but those of the keep runners whose log was written last. With
// keep 0, the app's log directory goes too once it is empty.
func (s *Supervisor) pruneLogs(app string, keep int) error {
	if err := events.ValidateAppName(app); err != nil {
		return err
	}
	dir := filepath.Join(s.logDir, app)
	// Hold s.mu: a runner starting now creates its log meanwhile.
	s.mu.Lock()
	defer s.mu.Unlock()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("prune logs of %s: %w", app, err)
	}
	type ended struct {
		id      string
		written time.Time
	}
	var logs []ended
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), logSuffix)
		if !ok || !runnerIDPattern.MatchString(id) {
			continue
		}
		if p, running := s.procs[id]; running && p.app == app {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		logs = append(logs, ended{id, info.ModTime()})
	}
	slices.SortFunc(logs, func(a, b ended) int {
		return cmp.Or(b.written.Compare(a.written), strings.Compare(a.id, b.id))
	})
	var errs []error
	for _, l := range logs[min(keep, len(logs)):] {
		path := filepath.Join(dir, l.id+logSuffix)
		for _, p := range []string{path + rotatedSuffix, path + newSuffix, path} {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("prune logs of %s: %w", app, err))
			}
		}
	}
	if keep == 0 {
		_ = os.Remove(dir) // fails while a runner of the app runs
	}
	return errors.Join(errs...)
}
