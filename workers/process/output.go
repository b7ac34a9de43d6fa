package process

import (
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/revline/revline/aggregates"
)

const (
	// outputLines and outputBytes bound the runner output quoted in a
	// NotReadyError: the last lines, at most this many and this long once
	// escaped, so that a reason stays well under the 4 KiB the decider
	// accepts.
	outputLines = 20
	outputBytes = 2048
	// outputReadBytes is how much of the end of a log file is read to find them.
	outputReadBytes = 2 * outputBytes
	// outputSeparator joins the quoted lines: a reason is one line.
	outputSeparator = " | "
)

// lastOutput returns the last lines the runner wrote to its log file after
// byte offset from (the log's size when the runner started: earlier runs of
// the same runner id wrote the rest), as one line: each line trimmed and
// escaped, empty lines left out, joined by " | ". It returns "" when there is
// no output or the log cannot be read.
func lastOutput(path string, from int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || info.Size() <= from {
		return ""
	}
	start := max(from, info.Size()-outputReadBytes)
	b := make([]byte, info.Size()-start)
	n, err := f.ReadAt(b, start)
	if err != nil && err != io.EOF {
		return ""
	}
	return formatOutput(b[:n], start > from)
}

// formatOutput turns the end of a log into one line (see lastOutput). When
// cut is true, b starts in the middle of the log and its first line, likely
// partial, is dropped if another line follows.
func formatOutput(b []byte, cut bool) string {
	text := string(b)
	if cut {
		if i := strings.IndexByte(text, '\n'); i >= 0 && strings.TrimSpace(text[i+1:]) != "" {
			text = text[i+1:]
		}
	}
	var lines []string
	for line := range strings.SplitSeq(text, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, aggregates.EscapeText(line))
		}
	}
	lines = lines[max(0, len(lines)-outputLines):]

	// Keep the newest lines that fit in outputBytes.
	size, first := 0, len(lines)
	for first > 0 {
		add := len(lines[first-1])
		if first < len(lines) {
			add += len(outputSeparator)
		}
		if size+add > outputBytes {
			break
		}
		size += add
		first--
	}
	if first == len(lines) && len(lines) > 0 {
		// The last line alone is too long: keep its end.
		return "…" + tailOf(lines[len(lines)-1], outputBytes-len("…"))
	}
	return strings.Join(lines[first:], outputSeparator)
}

// tailOf returns the last n bytes of s or fewer, starting on a rune boundary.
func tailOf(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := len(s) - n
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	return s[i:]
}
