package queryapi

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTailStart(t *testing.T) {
	t.Parallel()
	write := func(text string) (*os.File, int64) {
		path := filepath.Join(t.TempDir(), "x.log")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f, int64(len(text))
	}
	for _, tc := range []struct {
		text string
		n    int
		scan int64
		want int64
	}{
		{"", 5, 100, 0},
		{"a\nb\nc\n", 0, 100, 6},
		{"a\nb\nc\n", 1, 100, 4},
		{"a\nb\nc\n", 2, 100, 2},
		{"a\nb\nc\n", 3, 100, 0},
		{"a\nb\nc\n", 9, 100, 0},
		{"a\nb\nc", 1, 100, 4},
		{"a\nb\nc", 2, 100, 2},
		{"\n\n\n", 2, 100, 1},
		{"\n", 1, 100, 0},
		// The scan stops 4 bytes before the end: "c\n" starts in them.
		{"aaaa\nbbb\nc\n", 5, 4, 9},
		// No line starts in the last 3 bytes: the tail starts there.
		{"aaaa\nbbbbbbbb\n", 5, 3, 11},
	} {
		f, size := write(tc.text)
		got, err := tailStart(t.Context(), f, size, tc.n, tc.scan)
		if err != nil || got != tc.want {
			t.Errorf("tailStart(%q, %d, scan %d) = %d, %v; want %d", tc.text, tc.n, tc.scan, got, err, tc.want)
		}
	}
	// Blocks larger than the scan buffer.
	text := strings.Repeat(strings.Repeat("x", 999)+"\n", 300)
	f, size := write(text)
	if got, err := tailStart(t.Context(), f, size, 200, 1<<30); err != nil || got != 100*1000 {
		t.Errorf("tail 200 of 300 lines of 1000 bytes = %d, %v", got, err)
	}
}

func TestSplitLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		text  string
		atEOF bool
		max   int
		want  []LogLine
		next  int64
	}{
		{"lines", "ab\ncd\n", true, 10, []LogLine{{Offset: 100, Text: "ab"}, {Offset: 103, Text: "cd"}}, 106},
		{"partial at the end", "ab\ncd", true, 10, []LogLine{{Offset: 100, Text: "ab"}, {Offset: 103, Text: "cd", Partial: true}}, 105},
		{"cut before the end", "ab\ncd", false, 10, []LogLine{{Offset: 100, Text: "ab"}}, 103},
		{"long line", "abcdefg\n", true, 3, []LogLine{{Offset: 100, Text: "abc", Partial: true}, {Offset: 103, Text: "def", Partial: true}, {Offset: 106, Text: "g"}}, 108},
		{"line of the max", "abc\n", true, 3, []LogLine{{Offset: 100, Text: "abc"}}, 104},
		{"long line cut before the end", "abcdefg", false, 3, []LogLine{{Offset: 100, Text: "abc", Partial: true}, {Offset: 103, Text: "def", Partial: true}}, 106},
		{"between characters", "aé€\n", true, 3, []LogLine{{Offset: 100, Text: "aé", Partial: true}, {Offset: 103, Text: "€"}}, 107},
		{"empty lines", "\n\n", true, 3, []LogLine{{Offset: 100}, {Offset: 101}}, 102},
	} {
		got, next := splitLines([]byte(tc.text), 100, tc.atEOF, tc.max)
		if !reflect.DeepEqual(got, tc.want) || next != tc.next {
			t.Errorf("%s: %+v next %d; want %+v next %d", tc.name, got, next, tc.want, tc.next)
		}
		for _, l := range got {
			if !utf8.ValidString(l.Text) {
				t.Errorf("%s: piece %q is not UTF-8", tc.name, l.Text)
			}
		}
	}
	// A character longer than the max is cut anyway: no endless loop.
	if got, next := splitLines([]byte("€\n"), 0, true, 1); len(got) != 3 || next != 4 {
		t.Errorf("€ in pieces of 1 byte: %+v, %d", got, next)
	}
}

func TestFitLogPage(t *testing.T) {
	t.Parallel()
	page := LogPage{Lines: []LogLine{{Offset: 0, Text: "aaaa"}, {Offset: 5, Text: "<<<<"}, {Offset: 10, Text: "bb", Partial: true}}, NextOffset: 12, Size: 12}
	whole, err := fitLogPage(page, 1<<10)
	if err != nil || whole.More || len(whole.Lines) != 3 || whole.NextOffset != 12 {
		t.Fatalf("room for all: %+v, %v", whole, err)
	}
	budget := logPageOverhead + len(`{"offset":0,"text":"aaaa"}`) + 1 + len(`{"offset":5,"text":"\u003c\u003c\u003c\u003c"}`)
	cut, err := fitLogPage(page, budget)
	if err != nil || !cut.More || len(cut.Lines) != 1 || cut.NextOffset != 5 {
		t.Fatalf("room for one and a half: %+v, %v", cut, err)
	}
	if _, err := fitLogPage(page, logPageOverhead); err == nil {
		t.Fatal("no room at all: no error")
	}
	if n := maxLineBytes(60 << 10); n < 9<<10 || n > MaxLogLineBytes {
		t.Fatalf("maxLineBytes(60 KiB) = %d", n)
	}
	if n := maxLineBytes(1 << 20); n != MaxLogLineBytes {
		t.Fatalf("maxLineBytes(1 MiB) = %d", n)
	}
}
