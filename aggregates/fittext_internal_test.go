package aggregates

import (
	"testing"

	"pgregory.net/rapid"
)

// Whatever a runner prints, FitText makes text the decider accepts, and
// leaves text that already fits as it is.
func TestFitTextAlwaysFits(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		var s string
		switch rapid.IntRange(0, 2).Draw(t, "kind") {
		case 0:
			s = rapid.String().Draw(t, "text")
		case 1:
			s = rapid.StringMatching("[a-zé\n\r\t\x1b\u2028\u202e]{0,60}").Draw(t, "text")
		default:
			s = string(rapid.SliceOf(rapid.Byte()).Draw(t, "bytes"))
		}
		max := rapid.IntRange(0, 80).Draw(t, "max")
		got := FitText(s, max)
		if err := checkText("reason", got, max); err != nil {
			t.Fatalf("FitText(%q, %d) = %q, refused: %v", s, max, got, err)
		}
		if checkText("reason", s, max) == nil && got != s {
			t.Fatalf("FitText changed acceptable text %q to %q", s, got)
		}
	})
}

func TestFitTextExamples(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"Traceback:\n  File x\nValueError: no\n", 100, "Traceback: |   File x | ValueError: no | "},
		{"\x1b[31mred\x1b[0m", 100, " [31mred [0m"},
		{"abcdefgh", 6, "abc…"},
		{"ééé", 5, "é…"},
		{"abc", 2, "ab"},
	} {
		if got := FitText(tc.in, tc.max); got != tc.want {
			t.Errorf("FitText(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}
