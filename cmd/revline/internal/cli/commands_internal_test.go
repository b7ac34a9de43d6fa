package cli

import (
	"bytes"
	"cmp"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Every command, cobra's help and completion included, has a summary
// that is a short phrase, as kubectl's are (the long explanation is its
// Long), and an example that runs it, and shows both in its --help.
func TestEveryCommandHasASummaryAndAnExample(t *testing.T) {
	t.Parallel()
	var all []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden {
			return
		}
		all = append(all, c)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	root, _ := newRoot(io.Discard, io.Discard)
	walk(root)
	if len(all) < 40 {
		t.Fatalf("walked %d commands; the tree has more", len(all))
	}
	for _, c := range all {
		path := c.CommandPath()
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			if strings.TrimSpace(c.Short) == "" {
				t.Errorf("%s has no Short", path)
			}
			if len(c.Short) > 50 || strings.HasSuffix(c.Short, ".") || strings.Contains(c.Short, "\n") {
				t.Errorf("%s: Short %q is not a short phrase (at most 50 characters, no full stop); the rest goes in Long", path, c.Short)
			}
			if !strings.Contains(c.Example, path) {
				t.Errorf("%s: example %q does not run it", path, c.Example)
			}
			var stdout, stderr bytes.Buffer
			args := append(strings.Fields(path)[1:], "--help")
			if code := Main(t.Context(), args, &stdout, &stderr); code != ExitOK || stderr.Len() != 0 {
				t.Fatalf("%s --help: exit %d, stderr %q", path, code, stderr.String())
			}
			if !strings.Contains(stdout.String(), "Examples:\n"+c.Example) || !strings.Contains(stdout.String(), cmp.Or(c.Long, c.Short)) {
				t.Errorf("%s --help lacks its summary or example:\n%s", path, stdout.String())
			}
		})
	}
}
