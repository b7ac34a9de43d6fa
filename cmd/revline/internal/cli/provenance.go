package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/revline/revline/projections"
	"github.com/revline/revline/projections/audit"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func showCommand() *cobra.Command {
	cmd, f := clientCommand("show APP", "Show an app's effective configuration",
		"revline apps show my-model", 1, 0)
	cmd.Long = "Show an app's effective configuration: each parameter's value and the event that set it (deploy, scale, inherited on rollback), who, when and why."
	var at pointFlags
	at.register(cmd.Flags())
	f.runE(cmd, at.parse, func(ctx context.Context, e env, s *session, pos []string) error {
		config, err := audit.Provenance(ctx, s.history(ctx), pos[0], at.point)
		return render(e, f, config, err, f.style().printConfig)
	})
	return cmd
}

func blameCommand() *cobra.Command {
	cmd, f := clientCommand("blame APP PARAM", "Show the history of one parameter",
		"revline apps blame my-model min_concurrency", 2, 0)
	cmd.Long = "Show the whole history of one parameter of an app: every event that set or kept it, with its value, who, when and why."
	f.runE(cmd, nil, func(ctx context.Context, e env, s *session, pos []string) error {
		config, err := audit.Provenance(ctx, s.history(ctx), pos[0], audit.Point{})
		if err != nil {
			return err
		}
		history, err := config.Blame(pos[1])
		return render(e, f, history, err, f.style().printBlame)
	})
	return cmd
}

// pointFlags are --at and --at-seq: a point of the event log to show an
// app as it was then.
type pointFlags struct {
	at, atSeq string
	point     audit.Point
}

func (p *pointFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&p.at, "at", "", "as it was at `T`: RFC 3339, or a time before now (2h ago, 30m, 3d)")
	fs.StringVar(&p.atSeq, "at-seq", "", "as it was after event `SEQUENCE` of the log (a SEQ of revline audit)")
}

// parse reads the flags into p.point.
func (p *pointFlags) parse() (err error) {
	if p.point.Time, err = optionalTime("--at", p.at, time.Now()); err != nil {
		return err
	}
	if p.atSeq != "" {
		n, err := strconv.ParseUint(p.atSeq, 10, 64)
		if err != nil || n == 0 {
			return usagef("--at-seq %q is not a stream sequence (a whole number from 1)", p.atSeq)
		}
		p.point.Sequence = n
	}
	return nil
}

// set reports whether a point was given.
func (p *pointFlags) set() bool { return p.point != audit.Point{} }

func (ts tableStyle) printConfig(w io.Writer, c audit.Config) {
	current := "no current revision"
	if c.Revision != "" {
		current = "current revision " + revisionName(c.Number, c.Revision)
	}
	suspended := ""
	if c.Suspended {
		suspended = ", suspended"
	}
	fmt.Fprintf(w, "App %s: %s%s (as of event %d).\n", c.App, current, suspended, c.Sequence)
	if len(c.Params) == 0 {
		return
	}
	rows := make([][]string, 0, len(c.Params))
	for _, s := range c.Params {
		rows = append(rows, ts.settingRow(s.Param, s))
	}
	table(w, "PARAM\tVALUE\tSET BY\tWHO\tWHEN\tWHY\tCHOSEN BY", rows)
}

func (ts tableStyle) printBlame(w io.Writer, history []audit.Setting) {
	rows := make([][]string, 0, len(history))
	for _, s := range history {
		rows = append(rows, ts.settingRow(fmt.Sprint(s.Source.Sequence), s))
	}
	table(w, "SEQ\tVALUE\tSET BY\tWHO\tWHEN\tWHY\tCHOSEN BY", rows)
}

// settingRow is a setting's row of show and blame, after its first cell.
func (ts tableStyle) settingRow(first string, s audit.Setting) []string {
	why := "-"
	if s.Source.Message != "" {
		why = strconv.Quote(s.Source.Message)
	}
	chosen := "-"
	if s.Origin != nil {
		chosen = fmt.Sprintf("%s (#%d, %s, %s)", s.Origin.How, s.Origin.Sequence, s.Origin.By, ts.at(s.Origin.Time))
	}
	return []string{first, s.Value, fmt.Sprintf("%s (#%d)", s.Source.How, s.Source.Sequence), s.Source.By, ts.at(s.Source.Time), why, chosen}
}

func diffCommand() *cobra.Command {
	cmd, f := clientCommand("diff APP [REV_A REV_B]", "Show what differs between two revisions",
		"revline apps diff my-model v3 v5\nrevline apps diff my-model --at '2h ago' --at now", 1, 2)
	cmd.Long = "Show what differs between two revisions, or between the current revisions at two times: command, code and runtime parameters, message, annotations."
	var times timesFlag
	cmd.Flags().Var(&times, "at", "instead of REV_A REV_B, the current revisions at two times `T` (--at T1 --at T2): RFC 3339, a time before now (2h ago), or now")
	cmd.RunE = func(cmd *cobra.Command, pos []string) error {
		e := envOf(cmd)
		if err := f.check(e, pos, nil); err != nil {
			return err
		}
		switch {
		case len(pos) == 3 && len(times) == 0, len(pos) == 1 && len(times) == 2:
		default:
			return usagef("give two revisions (REV_A REV_B) or two times (--at T1 --at T2)")
		}
		return f.run(e.ctx, func(ctx context.Context, s *session) (err error) {
			var a, b projections.RevisionView
			if len(times) == 2 {
				if a, _, err = audit.CurrentAt(ctx, s.history(ctx), pos[0], audit.Point{Time: times[0]}); err != nil {
					return err
				}
				if b, _, err = audit.CurrentAt(ctx, s.history(ctx), pos[0], audit.Point{Time: times[1]}); err != nil {
					return err
				}
			} else {
				if a, err = s.reader.Revision(ctx, pos[0], pos[1], 0); err != nil {
					return err
				}
				if b, err = s.reader.Revision(ctx, pos[0], pos[2], 0); err != nil {
					return err
				}
			}
			return render(e, f, projections.Diff(pos[0], a, b), nil, printDiff)
		})
	}
	return cmd
}

// timesFlag collects repeated --at times (audit.ParseTime).
type timesFlag []time.Time

func (t *timesFlag) String() string { return fmt.Sprint([]time.Time(*t)) }

// Type implements pflag.Value: the value's kind in help.
func (t *timesFlag) Type() string { return "T" }

func (t *timesFlag) Set(s string) error {
	at, err := audit.ParseTime(s, time.Now())
	if err != nil {
		return err
	}
	*t = append(*t, at)
	return nil
}

func printDiff(w io.Writer, d projections.RevisionDiff) {
	a, b := version(d.A.Number), version(d.B.Number)
	if len(d.Changes) == 0 {
		fmt.Fprintf(w, "Revisions %s and %s of %s do not differ.\n", a, b, d.App)
		return
	}
	rows := make([][]string, 0, len(d.Changes))
	for _, c := range d.Changes {
		rows = append(rows, []string{c.Field, shown(c.A), shown(c.B)})
	}
	table(w, "FIELD\t"+strings.ToUpper(a)+"\t"+strings.ToUpper(b), rows)
}

// shown is a value in a diff, "-" for none.
func shown(v string) string {
	if v == "" {
		return "-"
	}
	return v
}

// history is the event log with the time travel snapshots the server
// wrote, to fold from the newest one at or before the point asked about.
// Without them (an older server, a client not allowed to read them) the
// fold starts from the app's first event: slower, the same answer.
func (s *session) history(ctx context.Context) audit.Log {
	snaps, err := audit.OpenSnapshots(ctx, s.js, slog.New(slog.DiscardHandler))
	if err != nil {
		return s.events
	}
	return audit.WithSnapshots(s.events, snaps)
}
