package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/revline/revline/cmd/revline/internal/cli"
	"github.com/revline/revline/events"
	"github.com/revline/revline/internal/testsupport"
)

// Status words are coloured on a terminal, unless NO_COLOR is set; piped
// output (a buffer here) never has escape codes. NO_COLOR is set and unset
// here, so the test does not run in parallel.
func TestTablesAreColouredOnlyOnATerminal(t *testing.T) {
	s := newListServer(t)
	// Long ago: the relative times ("9461d ago") are the same in each run
	// but at the turn of a day.
	long := time.Date(2000, 1, 1, 12, 0, 0, 0, time.UTC)
	for i, state := range []events.RunnerState{events.RunnerIdle, events.RunnerDraining, events.RunnerCrashBackoff} {
		s.apply(t, "web", events.RunnerStateChanged{RunnerID: fmt.Sprintf("runner-%d", i), RevisionID: "r1", State: state}, long)
	}
	args := []string{"apps", "runners", "web", "--nats-url", s.url}
	onTerminal := func() (int, string) {
		t.Helper()
		pts, written := testsupport.Terminal(t)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		var stderr bytes.Buffer
		code := cli.Main(ctx, args, pts, &stderr)
		return code, written() + stderr.String()
	}

	t.Setenv("NO_COLOR", "")
	piped := s.runCLI(t, "apps", "runners", "web")
	if piped.code != cli.ExitOK || strings.Contains(piped.stdout+piped.stderr, "\x1b") || !strings.Contains(piped.stdout, "crash_backoff") {
		t.Fatalf("piped: exit %d, stdout %q, stderr %q; want the table without escape codes", piped.code, piped.stdout, piped.stderr)
	}
	code, out := onTerminal()
	if code != cli.ExitOK || !strings.Contains(out, "\x1b[32midle\x1b[0m") || !strings.Contains(out, "\x1b[31mcrash_backoff\x1b[0m") {
		t.Fatalf("on a terminal: exit %d, output %q; want the states coloured", code, out)
	}
	if plain := strings.NewReplacer("\x1b[32m", "", "\x1b[33m", "", "\x1b[31m", "", "\x1b[0m", "").Replace(out); plain != piped.stdout {
		t.Fatalf("on a terminal, without its colours:\n%s\npiped:\n%s", plain, piped.stdout)
	}
	t.Setenv("NO_COLOR", "1")
	if code, out := onTerminal(); code != cli.ExitOK || strings.Contains(out, "\x1b") || out != piped.stdout {
		t.Fatalf("on a terminal with NO_COLOR: exit %d, output %q; want the piped output", code, out)
	}
}
