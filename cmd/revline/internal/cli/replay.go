package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

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
	var all bool
	cmd.Flags().BoolVar(&all, "all", false, "ask every serve replica (each rebuilds its own model), not the one that answers first; prints each one's report")
	f.runE(cmd, validate, func(ctx context.Context, e env, s *session, _ []string) error {
		if !all {
			report, err := queryapi.AskReplay(ctx, s.nc, s.signer, req)
			return render(e, f, report, err, printReplay)
		}
		answers, err := queryapi.AskReplayAll(ctx, s.nc, s.signer, req, replicaWindow)
		if len(answers) == 0 {
			return err
		}
		if err := render(e, f, answers, nil, printReplicaReplays); err != nil {
			return err
		}
		if err != nil {
			return err
		}
		failed := 0
		for _, a := range answers {
			if a.Report == nil {
				failed++
			}
		}
		if failed > 0 {
			return fmt.Errorf("the replay failed on %d of %d replicas", failed, len(answers))
		}
		return nil
	})
	return cmd
}

// replicaWindow is how long `replay --all` waits, after the first
// replica answered that it started, for the others to.
const replicaWindow = 2 * time.Second

// printReplicaReplays prints each replica's report under its name.
func printReplicaReplays(w io.Writer, answers []queryapi.ReplicaReplay) {
	for _, a := range answers {
		fmt.Fprintf(w, "%s:\n", aggregates.EscapeText(a.Server))
		if a.Report == nil {
			fmt.Fprintf(w, "  failed: %s\n", aggregates.EscapeText(a.Error))
			continue
		}
		var b strings.Builder
		printReplay(&b, *a.Report)
		for _, line := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
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
