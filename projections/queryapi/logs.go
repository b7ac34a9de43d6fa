package queryapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections"
)

// Runner logs: what a runner wrote to its stdout and stderr, which the
// process supervisor appends to <StateDir>/logs/<app>/<runner id>.log on
// the machine that runs the runners. Only the server that runs the runners
// can read them (see WithRunnerLogs).
//
// A log is read in pages of lines, each line with its byte offset in the
// log: a page ends with NextOffset, from which the next page (or, once
// the end is reached, what the runner writes next) is read. The log
// files carry no time, so lines have none and cannot be selected by time.
//
// The supervisor rotates a log that reaches its size limit: the file
// becomes <runner id>.log.1 and a new, empty one starts. Offsets are those
// of the current file: a read from an offset past its end (the end of
// the file before it was rotated) starts again at 0, Restarted set.

// Limits of runner log queries.
const (
	// DefaultLogTail is how many of the log's last lines a query returns
	// when it gives no tail.
	DefaultLogTail = 100
	// MaxLogTail is the largest tail a query may ask for.
	MaxLogTail = 10000
	// MaxLogLineBytes bounds one LogLine's text: a longer line comes in
	// pieces of at most this many bytes (fewer on a NATS connection with
	// a small max payload), each but the last one Partial.
	MaxLogLineBytes = 16 << 10
	// MaxLogTailScan bounds how far back from the end of a log the start
	// of its last lines is looked for: a tail whose lines take more than
	// this starts at the first line that begins in the last MaxLogTailScan
	// bytes (or in the middle of a line, if none does).
	MaxLogTailScan = 64 << 20
	// DefaultLogPageBytes bounds the JSON encoding of a page of a log
	// query that gives no MaxBytes.
	DefaultLogPageBytes = 1 << 20
)

// Error codes of runner log queries.
const (
	// CodeRunnerNotFound: the app has no runner with this id (the runner
	// of another app is not found either).
	CodeRunnerNotFound = "runner_not_found"
	// CodeRunnerLogsUnavailable: no server that runs runners answers, or
	// this one has no runner logs (a --no-runners replica).
	CodeRunnerLogsUnavailable = "runner_logs_unavailable"
)

// LogLine is one line of a runner's log, or a piece of it.
type LogLine struct {
	// Offset is the byte offset of the line's first byte in the log.
	Offset int64 `json:"offset"`
	// Text is the line without its newline. Bytes that are not UTF-8
	// become U+FFFD in JSON; control characters are there as written.
	Text string `json:"text"`
	// Partial means that the line goes on after Text: in the next
	// LogLine, or, when this is the last line of the log so far, in what
	// the runner writes next. A line longer than MaxLogLineBytes comes in
	// Partial pieces.
	Partial bool `json:"partial,omitempty"`
}

// end returns the offset right after the line (its newline included), on
// the server that read it, where Text holds the bytes as they are.
func (l LogLine) end() int64 {
	n := l.Offset + int64(len(l.Text))
	if !l.Partial {
		n++
	}
	return n
}

// LogPage is one page of a runner's log.
type LogPage struct {
	// Lines in the order of the log; never null.
	Lines []LogLine `json:"lines"`
	// NextOffset is where the page ends: pass it as the next query's
	// AfterOffset to read on.
	NextOffset int64 `json:"next_offset"`
	// More means that the log already holds more after NextOffset (the
	// page was cut to fit): ask again at once. Without it, NextOffset is
	// the end of the log when it was read; ask again later for what the
	// runner writes next.
	More bool `json:"more"`
	// Size is the log's size in bytes when it was read.
	Size int64 `json:"size"`
	// Terminated says the runner had terminated before its log was read:
	// once More is false, its log will not grow.
	Terminated bool `json:"terminated"`
	// Restarted means that the AfterOffset asked for was past the end of
	// the log: the log was rotated since (see above), and the page starts
	// at the start of the new file. What the runner wrote between
	// AfterOffset and the rotation is not in the page.
	Restarted bool `json:"restarted,omitempty"`
}

// LogRequest selects the part of a runner's log a query returns.
type LogRequest struct {
	// Tail is how many of the log's last lines to return, 0 to MaxLogTail
	// (0: none, only NextOffset, the end of the log). It is ignored with
	// AfterOffset.
	Tail int
	// AfterOffset, if not nil, reads the log on from this byte offset (a
	// NextOffset given before, or 0 for the start of the log) instead of
	// its tail.
	AfterOffset *int64
	// MaxBytes, if positive, bounds the JSON encoding of the page; else
	// DefaultLogPageBytes does. The query service sets it from its
	// connection's max payload; it is not sent over NATS.
	MaxBytes int
}

// LogReader answers runner log queries: Local over the runner logs of
// this machine, Client by asking the server that runs the runners.
// Errors are *Error where the query itself failed: CodeBadRequest for a
// runner id that is not a UUID or a bad Tail or AfterOffset,
// CodeAppNotFound, CodeRunnerNotFound, CodeRunnerLogsUnavailable.
type LogReader interface {
	RunnerLogs(ctx context.Context, app, runnerID string, req LogRequest, minSequence uint64) (LogPage, error)
}

// LogReadOptions tell RunnerLogs.Read which part of a log to read.
type LogReadOptions struct {
	// Tail is how many of the last lines to read when AfterOffset is
	// negative.
	Tail int
	// AfterOffset, when not negative, is the byte offset to read from;
	// beyond the end of the log (which was rotated since), the read starts
	// at 0 and sets Restarted.
	AfterOffset int64
	// MaxBytes bounds the bytes read: the page then ends at the last line
	// (or piece) that fits, with More set.
	MaxBytes int
	// MaxLineBytes bounds a LogLine's text: longer lines are cut into
	// Partial pieces, on UTF-8 character boundaries where possible.
	MaxLineBytes int
}

// RunnerLogs reads runners' log files. app is a valid app name and
// runnerID has been checked by ParseRunnerID; an implementation must build
// no path from anything else. A log that does not exist (yet, or any more)
// is empty. Read fills every field of LogPage but Terminated.
type RunnerLogs interface {
	Read(ctx context.Context, app, runnerID string, opts LogReadOptions) (LogPage, error)
}

// ParseRunnerID checks that id is a runner id, a UUID in its 36-character
// form (any case), and returns it in lower case. Errors are CodeBadRequest.
func ParseRunnerID(id string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return "", &Error{Code: CodeBadRequest, Message: fmt.Sprintf("runner id %.80q is not a runner id: give the full id (a UUID) that `revline apps runners` shows", id)}
	}
	return u.String(), nil
}

// WithRunnerLogs makes Serve answer runner log queries from l. Give it
// only on the server that runs the runners: replicas share the query
// service's queue group, so a replica that registered the endpoint
// without the logs would answer some queries wrongly. Without a server
// that registered it, a query gets no responders, which Client reports as
// CodeRunnerLogsUnavailable.
func WithRunnerLogs(l LogReader) ServeOption {
	return func(s *service) { s.logs = l }
}

var _ LogReader = Local{}

// RunnerLogs implements LogReader: it checks the runner id and that the
// runner is (or was) one of app's, then reads its log from l.Logs.
func (l Local) RunnerLogs(ctx context.Context, app, runnerID string, req LogRequest, seq uint64) (LogPage, error) {
	id, err := ParseRunnerID(runnerID)
	if err != nil {
		return LogPage{}, err
	}
	if req.Tail < 0 || req.Tail > MaxLogTail {
		return LogPage{}, &Error{Code: CodeBadRequest, Message: fmt.Sprintf("tail %d is out of range: give 0 to %d, or none for %d", req.Tail, MaxLogTail, DefaultLogTail)}
	}
	opts := LogReadOptions{Tail: req.Tail, AfterOffset: -1}
	if req.AfterOffset != nil {
		if *req.AfterOffset < 0 {
			return LogPage{}, &Error{Code: CodeBadRequest, Message: fmt.Sprintf("after_offset %d is negative: give a next_offset of an earlier answer, or 0 for the start of the log", *req.AfterOffset)}
		}
		opts.AfterOffset = *req.AfterOffset
	}
	if err := l.app(ctx, app, seq); err != nil {
		return LogPage{}, err
	}
	var runner projections.RunnerView
	found := false
	for _, r := range l.Model.Runners(app, true) {
		if r.RunnerID == id {
			runner, found = r, true
			break
		}
	}
	if !found {
		return LogPage{}, &Error{Code: CodeRunnerNotFound, Message: fmt.Sprintf("runner %s not found: app %q has no such runner", id, app)}
	}
	if l.Logs == nil {
		return LogPage{}, &Error{Code: CodeRunnerLogsUnavailable, Message: "this server has no runner logs: they are read on the `revline serve` that runs the runners"}
	}
	budget := req.MaxBytes
	if budget <= 0 {
		budget = DefaultLogPageBytes
	}
	opts.MaxBytes = budget
	opts.MaxLineBytes = maxLineBytes(budget)
	page, err := l.Logs.Read(ctx, app, id, opts)
	if err != nil {
		var qerr *Error
		if errors.As(err, &qerr) {
			return LogPage{}, err
		}
		return LogPage{}, fmt.Errorf("read the log of runner %s: %w", id, err)
	}
	// The state was read before the log: a runner terminated then wrote
	// all it will write.
	page.Terminated = runner.Terminated()
	return fitLogPage(page, budget)
}

// maxJSONExpansion is the most bytes of JSON one byte of a log line can
// take: a control character or one of <, > and & is written \u00XX.
const maxJSONExpansion = 6

// logPageOverhead bounds a page's JSON encoding besides its lines: the
// field names, four numbers and two booleans.
var logPageOverhead = len(`{"lines":[],"next_offset":,"more":false,"size":,"terminated":false}`) + 3*20

// logLineOverhead bounds a line's JSON encoding besides its text.
var logLineOverhead = len(`{"offset":,"text":"","partial":true},`) + 20

// maxLineBytes returns the longest line piece whose JSON always fits in a
// page of budget bytes.
func maxLineBytes(budget int) int {
	return max(1, min(MaxLogLineBytes, (budget-logPageOverhead-logLineOverhead)/maxJSONExpansion))
}

// fitLogPage cuts page after the last line whose JSON fits in budget
// bytes.
func fitLogPage(page LogPage, budget int) (LogPage, error) {
	if page.Lines == nil {
		page.Lines = []LogLine{}
	}
	size := logPageOverhead
	for i, line := range page.Lines {
		data, err := json.Marshal(line)
		if err != nil {
			return LogPage{}, fmt.Errorf("encode a log line: %w", err)
		}
		size += len(data) + 1
		if size > budget {
			if i == 0 {
				return LogPage{}, &Error{Code: CodeReplyTooLarge, Message: fmt.Sprintf("a log line at offset %d is %d bytes of JSON, more than one reply may hold (%d bytes)", line.Offset, len(data), budget)}
			}
			page.Lines = page.Lines[:i:i]
			page.NextOffset = page.Lines[i-1].end()
			page.More = true
			break
		}
	}
	return page, nil
}

// LogDir is a RunnerLogs over the log files of a process supervisor:
// <LogDir>/<app>/<runner id>.log (the logs directory of
// process.Config.StateDir).
type LogDir string

var _ RunnerLogs = LogDir("")

// logScanBlock is how much of a log is read at a time when looking for
// the start of its tail.
const logScanBlock = 64 << 10

// Read implements RunnerLogs.
func (d LogDir) Read(ctx context.Context, app, runnerID string, opts LogReadOptions) (LogPage, error) {
	id, err := ParseRunnerID(runnerID)
	if err != nil {
		return LogPage{}, err
	}
	if err := events.ValidateAppName(app); err != nil {
		return LogPage{}, &Error{Code: CodeBadRequest, Message: err.Error()}
	}
	f, size, err := openLog(filepath.Join(string(d), app, id+".log"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Not written yet (or by another machine): empty.
	case err != nil:
		return LogPage{}, err
	default:
		defer f.Close()
	}
	start := opts.AfterOffset
	restarted := start > size
	if restarted {
		start = 0 // rotated since: read the new file
	}
	if start < 0 {
		if start, err = tailStart(ctx, f, size, opts.Tail, MaxLogTailScan); err != nil {
			return LogPage{}, err
		}
	}
	page := LogPage{Lines: []LogLine{}, NextOffset: start, Size: size, Restarted: restarted}
	if start == size {
		return page, nil
	}
	buf := make([]byte, min(size-start, int64(max(opts.MaxBytes, 1))))
	if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
		return LogPage{}, fmt.Errorf("read log: %w", err)
	}
	page.Lines, page.NextOffset = splitLines(buf, start, start+int64(len(buf)) == size, max(opts.MaxLineBytes, 1))
	page.More = page.NextOffset < size
	return page, nil
}

// logOpenAttempts is how many times openLog tries a log that is replaced
// while it opens it (rotated, most likely).
const logOpenAttempts = 3

// openLog opens a log file and returns its size. It refuses anything but a
// regular file, so that a symbolic link put in the log's place is not
// followed.
func openLog(path string) (*os.File, int64, error) {
	for range logOpenAttempts - 1 {
		f, size, err := openLogOnce(path)
		if !errors.Is(err, errLogReplaced) {
			return f, size, err
		}
	}
	return openLogOnce(path)
}

// errLogReplaced is returned (wrapped) by openLogOnce when the log was
// replaced between its Lstat and its Open.
var errLogReplaced = errors.New("replaced while it was opened")

func openLogOnce(path string) (*os.File, int64, error) {
	before, err := os.Lstat(path)
	if err != nil {
		return nil, 0, err
	}
	if !before.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("the log %s is not a regular file (%s)", filepath.Base(path), before.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !os.SameFile(before, info) {
		f.Close()
		return nil, 0, fmt.Errorf("the log %s was %w", filepath.Base(path), errLogReplaced)
	}
	return f, info.Size(), nil
}

// tailStart returns the offset of the first of the last n lines of f, of
// size bytes; a last line without its newline counts. It looks back at
// most scan bytes: lines that start before are left out, and if no line
// starts in them, the tail starts scan bytes before the end.
func tailStart(ctx context.Context, f *os.File, size int64, n int, scan int64) (int64, error) {
	if n <= 0 || size == 0 {
		return size, nil
	}
	end := size
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, size-1); err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("read log: %w", err)
	}
	if last[0] == '\n' {
		end-- // the newline that ends the last line starts no line
	}
	limit := max(0, size-scan)
	buf := make([]byte, logScanBlock)
	earliest := int64(-1) // the first line start found
	for pos, count := end, 0; pos > limit; {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		block := buf[:min(int64(len(buf)), pos-limit)]
		from := pos - int64(len(block))
		if _, err := f.ReadAt(block, from); err != nil && !errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("read log: %w", err)
		}
		for i := len(block) - 1; i >= 0; i-- {
			if block[i] == '\n' {
				earliest = from + int64(i) + 1
				if count++; count == n {
					return earliest, nil
				}
			}
		}
		pos = from
	}
	switch {
	case limit == 0:
		return 0, nil // fewer than n lines: the whole log
	case earliest >= 0:
		return earliest, nil
	default:
		return limit, nil // one line longer than the scan: its end
	}
}

// splitLines cuts buf, the bytes of a log from offset start on, into lines
// and pieces of at most maxLine bytes. atEOF says buf ends where the log
// does: a last line without a newline is then returned, Partial; else it
// is left for the next read, unless it is longer than maxLine. It returns
// the lines and the offset after the last one.
func splitLines(buf []byte, start int64, atEOF bool, maxLine int) ([]LogLine, int64) {
	lines := []LogLine{}
	off := 0
	for off < len(buf) {
		rest := buf[off:]
		nl := bytes.IndexByte(rest, '\n')
		length := nl
		if nl < 0 {
			length = len(rest)
		}
		switch {
		case length > maxLine:
			cut := runeCut(rest, maxLine)
			lines = append(lines, LogLine{Offset: start + int64(off), Text: string(rest[:cut]), Partial: true})
			off += cut
		case nl >= 0:
			lines = append(lines, LogLine{Offset: start + int64(off), Text: string(rest[:nl])})
			off += nl + 1
		case atEOF:
			lines = append(lines, LogLine{Offset: start + int64(off), Text: string(rest), Partial: true})
			off = len(buf)
		default:
			return lines, start + int64(off)
		}
	}
	return lines, start + int64(off)
}

// runeCut returns where to cut b, longer than n bytes, into a piece of at
// most n bytes: before the character that would straddle the cut, unless
// that leaves nothing.
func runeCut(b []byte, n int) int {
	for i := n; i > n-utf8.UTFMax && i > 0; i-- {
		if utf8.RuneStart(b[i]) {
			return i
		}
	}
	return n
}
