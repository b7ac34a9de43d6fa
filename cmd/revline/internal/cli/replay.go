package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/projections/queryapi"
	"github.com/spf13/cobra"
)

// replayCommand is `revline replay`: the server rebuilds its read model
// from the log (queryapi.ServeReplay) and says what differed.
func replayCommand() *cobra.Command {
	cmd, f := clientCommand("replay", "Rebuild the read model from the event log", "revline replay -o json", 0, 0)
	cmd.Long = "Rebuild the server's read model from the event log into a new generation and switch to it atomically; print what differed. --to-seq builds the model as of that event and compares it with the live one, without switching."
	var toSeq string
	var req queryapi.ReplayRequest
	cmd.Flags().StringVar(&toSeq, "to-seq", "", "build the model up to event `SEQUENCE` only (a SEQ of revline audit) and compare it with the live one; the live one keeps serving")
	validate := func() error {
		if toSeq == "" {
			return nil
		}
		n, err := strconv.ParseUint(toSeq, 10, 64)
		if err != nil || n == 0 {
			return usagef("--to-seq %q is not a stream sequence (a whole number from 1)", toSeq)
		}
		req.ToSequence = n
		return nil
	}
	f.runE(cmd, validate, func(ctx context.Context, e env, s *session, _ []string) error {
		report, err := queryapi.AskReplay(ctx, s.nc, s.signer, req)
		return render(e, f, report, err, printReplay)
	})
	return cmd
}

func printReplay(w io.Writer, r projections.ReplayReport) {
	rate := 0.0
	if r.Seconds > 0 {
		rate = float64(r.EventsRead) / r.Seconds
	}
	read := fmt.Sprintf("%d events in %.2fs (%.0f events/s)", r.EventsRead, r.Seconds, rate)
	if r.Switched {
		fmt.Fprintf(w, "Replayed %s into generation %d, switched in at sequence %d.\n", read, r.Generation, r.ToSequence)
		fmt.Fprint(w, "Differences from the previous generation:")
	} else {
		fmt.Fprintf(w, "Built the read model as of sequence %d from %s; not switched: generation %d (at sequence %d) keeps serving.\n", r.ToSequence, read, r.Generation, r.LiveSequence)
		fmt.Fprintf(w, "Changes from sequence %d to the live model:", r.ToSequence)
	}
	if r.Skipped > 0 {
		defer fmt.Fprintf(w, "%d undecodable events were skipped, as the live model skips them (revline audit shows them).\n", r.Skipped)
	}
	d := r.Differences
	if d.None() {
		fmt.Fprintln(w, " none.")
		return
	}
	fmt.Fprintln(w)
	rows := [][]string{}
	for _, kind := range []struct {
		name string
		c    projections.Changes
	}{{"apps", d.Apps}, {"revisions", d.Revisions}, {"runners", d.Runners}, {"rollouts", d.Rollouts}} {
		rows = append(rows, []string{kind.name, strconv.Itoa(kind.c.Added), strconv.Itoa(kind.c.Removed), strconv.Itoa(kind.c.Changed)})
	}
	table(w, "\tADDED\tREMOVED\tCHANGED", rows)
	for _, line := range d.Details {
		fmt.Fprintf(w, "  %s\n", aggregates.EscapeText(line))
	}
}
