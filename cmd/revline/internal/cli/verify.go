package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections/audit"
	"github.com/spf13/cobra"
)

func verifyCommand() *cobra.Command {
	cmd, f := clientCommand("verify [APP]", "Check the hash chain of each app's events",
		"revline audit verify my-model -o json", 0, 1)
	cmd.Long = "Check the hash chain of each app's events: exits 1 if a link is broken (an event inserted, removed or changed)."
	f.runE(cmd, nil, func(ctx context.Context, e env, s *session, pos []string) error {
		app := ""
		if len(pos) > 0 {
			app = pos[0]
		}
		reports, err := audit.VerifyChains(ctx, s.events, app)
		if err != nil {
			return err
		}
		if app != "" && len(reports) == 0 {
			return fmt.Errorf("app %q has no events", app)
		}
		if err := render(e, f, reports, nil, printChains); err != nil {
			return err
		}
		broken := 0
		for _, r := range reports {
			if !r.OK {
				broken++
			}
		}
		if broken > 0 {
			return fmt.Errorf("%d of %d chains broken", broken, len(reports))
		}
		return nil
	})
	var file string
	cmd.Flags().StringVar(&file, "file", "", "check an export in `FILE` (- for stdin) offline instead of the live log: of the whole log (revline audit -o jsonl), or with APP of that app (revline audit APP -o jsonl); complete, in order, every payload and hash as stored")
	live := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, pos []string) error {
		if file == "" {
			return live(cmd, pos)
		}
		e := envOf(cmd)
		if err := f.check(e, pos, nil); err != nil {
			return err
		}
		app := ""
		if len(pos) > 0 {
			app = pos[0]
		}
		return verifyExport(e, f, file, app)
	}
	return cmd
}

// verifyExport checks the export in file (- for stdin) of the whole log
// (app "") or of app with audit.CheckExport: the first problem is the
// error (exit 1), else the summary is printed.
func verifyExport(e env, f *clientFlags, file, app string) error {
	in := e.stdin
	if file != "-" {
		opened, err := os.Open(file)
		if err != nil {
			return err
		}
		defer opened.Close()
		in = opened
	}
	sum, err := audit.CheckExport(in, events.NewRegistry(), app)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return render(e, f, sum, nil, func(w io.Writer, sum audit.ExportSummary) {
		fmt.Fprintf(w, "%s: OK, %s (sequences %d to %d), complete and unchanged as far as it goes; compare each chain's last hash with `revline audit verify`:\n",
			file, eventCount(sum.Records), sum.First, sum.Last)
		printChains(w, sum.Chains)
	})
}

// printChains prints one line per app, and under it what else was found.
func printChains(w io.Writer, reports []audit.ChainReport) {
	for _, r := range reports {
		app := aggregates.EscapeText(r.App)
		switch {
		case r.Broken != nil:
			b := r.Broken
			fmt.Fprintf(w, "%s: BROKEN at sequence %d (%s): expected %s, found %s\n", app, b.Sequence, b.Reason, aggregates.EscapeText(b.Expected), orNone(aggregates.EscapeText(b.Found)))
		case r.Events == 0:
			fmt.Fprintf(w, "%s: no hashed events\n", app)
		default:
			fmt.Fprintf(w, "%s: OK, %s from sequence %d, last hash %s (sequence %d)\n", app, eventCount(r.Events), r.Start, r.LastHash, r.LastSequence)
		}
		if r.Unhashed > 0 {
			fmt.Fprintf(w, "  %s written before events were hashed: not part of the chain\n", eventCount(r.Unhashed))
		}
		if len(r.Junk) > 0 {
			seqs := make([]string, len(r.Junk))
			for i, s := range r.Junk {
				seqs[i] = fmt.Sprint(s)
			}
			fmt.Fprintf(w, "  not events (skipped by every reader) at sequence %s\n", strings.Join(seqs, ", "))
		}
		for _, u := range r.Undecodable {
			fmt.Fprintf(w, "  undecodable event at sequence %d: %s\n", u.Sequence, aggregates.EscapeText(u.Error))
		}
	}
}

// eventCount says how many events: "1 event", "3 events".
func eventCount(n int) string {
	if n == 1 {
		return "1 event"
	}
	return fmt.Sprintf("%d events", n)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
