package process

import (
	"fmt"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// checkReason fails the test unless reason is text the decider accepts as a
// reason: at most 4 KiB of valid UTF-8 on one line, without control
// characters (tab aside), line separators or bidirectional formatting.
func checkReason(t *testing.T, reason string) {
	t.Helper()
	if len(reason) > 4096 || !utf8.ValidString(reason) {
		t.Fatalf("reason of %d bytes, valid UTF-8 %v: %q", len(reason), utf8.ValidString(reason), reason)
	}
	for _, r := range reason {
		if r != '\t' && (unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || ('\u202a' <= r && r <= '\u202e') || ('\u2066' <= r && r <= '\u2069')) {
			t.Fatalf("reason holds %U: %q", r, reason)
		}
	}
}

func TestFormatOutput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		out  string
		cut  bool
		want string
	}{
		{"empty", "", false, ""},
		{"blank lines", "\n  \n\t\n", false, ""},
		{"traceback",
			"Traceback (most recent call last):\n  File \"<string>\", line 1, in <module>\nZeroDivisionError: division by zero\n", false,
			`Traceback (most recent call last): | File "<string>", line 1, in <module> | ZeroDivisionError: division by zero`},
		{"no final newline, CRLF, blank lines", "a\r\n\r\n  b  ", false, "a | b"},
		{"control characters", "\x1b[31mred\x1b[0m\tok\x00\x7f\u0085.", false, `\x1b[31mred\x1b[0m` + "\tok" + `\x00\x7f\x85.`},
		{"invalid UTF-8", "caf\xe9 \xff", false, `caf\xe9 \xff`},
		{"bidi and separators", "abc\u202edef\u2028ghi\u2066", false, `abc\u202edef\u2028ghi\u2066`},
		{"unicode kept", "naïve — ✓ 日本", false, "naïve — ✓ 日本"},
		{"cut drops the partial first line", "tial line\nwhole line\n", true, "whole line"},
		{"cut keeps a lone line", "partial line", true, "partial line"},
		{"last 20 lines", numbered(1, 30), false, strings.Join(strings.Split(strings.TrimSpace(numbered(11, 30)), "\n"), " | ")},
	} {
		got := formatOutput([]byte(tc.out), tc.cut)
		if got != tc.want {
			t.Errorf("%s: formatOutput(%q) = %q, want %q", tc.name, tc.out, got, tc.want)
		}
		checkReason(t, got)
	}
}

func numbered(from, to int) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	return b.String()
}

func TestFormatOutputBounded(t *testing.T) {
	t.Parallel()
	// Long lines: the newest that fit in outputBytes.
	long := strings.Repeat("x", 1020)
	got := formatOutput([]byte("old\n"+long+"1\n"+long+"2\n"), false)
	if want := long + "1" + outputSeparator + long + "2"; got != want {
		t.Errorf("long lines: got %d bytes %q..., want the last two", len(got), got[:min(len(got), 20)])
	}
	// One line longer than the bound: its end.
	huge := strings.Repeat("é", 3000) + "END"
	got = formatOutput([]byte(huge), false)
	if len(got) > outputBytes || !strings.HasSuffix(got, "END") || !strings.HasPrefix(got, "…") {
		t.Errorf("huge line: got %d bytes, want at most %d ending with END", len(got), outputBytes)
	}
	checkReason(t, got)
	// Escapes that make the text four times longer stay bounded too.
	binary := strings.Repeat("\x01\x02\x03\n", 500)
	got = formatOutput([]byte(binary), false)
	if len(got) > outputBytes {
		t.Errorf("escaped output: %d bytes, want at most %d", len(got), outputBytes)
	}
	checkReason(t, "runner exited with status 1 before listening on port 65535; last output: "+got)
}
