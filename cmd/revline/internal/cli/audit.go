package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/revline/revline/events"
	"github.com/revline/revline/projections/audit"
	"github.com/spf13/cobra"
)

func auditCommand() *cobra.Command {
	cmd, f := clientCommand("audit [APP]", "Show the event log: who did what, and when",
		"revline audit my-model --since '2h ago' --type 'app.*' --actor alice", 0, 1)
	cmd.Long = "Show the event log: who did what, when, and which command caused it. -o jsonl exports it; --follow streams it."
	f.outputs = append(f.outputs, outputJSONL)
	f.firstArg = events.ValidateAggregateName // an app, or _webhooks
	var (
		since, until, revision string
		types                  globsFlag
		follow                 bool
		limit                  limitFlag
		filter                 audit.Filter
	)
	fs := cmd.Flags()
	fs.StringVar(&since, "since", "", "only events at or after `T`: RFC 3339, or a time before now (2h ago, 30m, 3d)")
	fs.StringVar(&until, "until", "", "only events before `T` (as --since)")
	fs.Var(&types, "type", "only events whose type matches `GLOB` (revision.*, app.scaled); repeatable, or comma-separated")
	// --actor, who you are for the commands that change things, is here
	// who did what: a filter.
	actor := fs.Lookup("actor")
	actor.Usage, actor.DefValue = "only events of this actor (as recorded: alice@laptop, worker:runner)", ""
	fs.StringVar(&revision, "revision", "", "only events about this revision of APP: v3, 3, its id or a unique id prefix")
	fs.BoolVar(&follow, "follow", false, "after the log so far, print new events as they happen, until interrupted")
	limit.register(fs)
	fs.Lookup("limit").Usage = "show only the last `N` events (default: all)"
	fs.Lookup("output").Usage = "output format: table, wide, json, or jsonl (one event a line with its payload: the stable export)"
	validate := func() (err error) {
		now := time.Now()
		if filter.Since, err = optionalTime("--since", since, now); err != nil {
			return err
		}
		if filter.Until, err = optionalTime("--until", until, now); err != nil {
			return err
		}
		filter.Types = types
		if fs.Changed("actor") {
			filter.Actor = f.actor
		}
		if follow && limit.n > 0 {
			return usagef("--limit and --follow do not go together: --follow prints everything from the start")
		}
		return nil
	}
	cmd.AddCommand(verifyCommand())
	cmd.RunE = func(cmd *cobra.Command, pos []string) error {
		e := envOf(cmd)
		if err := f.check(e, pos, validate); err != nil {
			return err
		}
		if len(pos) > 0 {
			filter.App = pos[0]
		}
		switch {
		case f.output == outputJSON && follow:
			return usagef("--follow streams: use -o jsonl (one JSON object a line) or the table")
		case revision != "" && filter.App == "":
			return usagef("--revision needs APP: revision numbers and ids belong to one app")
		}
		if err := filter.Validate(); err != nil {
			return usageError{err.Error()}
		}
		ctx, stop := followContext(e.ctx, follow)
		defer stop()
		ctx, explain, stopRefusable := f.refusable(ctx)
		defer stopRefusable()
		readCtx, cancel := context.WithTimeout(ctx, f.timeout)
		defer cancel()
		s, err := f.connect(readCtx)
		if err != nil {
			return err
		}
		defer s.close()
		return explain(func() error {
			if revision != "" {
				if filter.Revision, err = audit.ResolveRevision(readCtx, s.events, filter.App, revision); err != nil {
					return err
				}
			}
			// The log's times are exact, in table and wide alike: they are
			// compared with other logs, and streamed with --follow.
			format := f.output
			if format == outputWide {
				format = outputTable
			}
			w := auditWriter{out: e.stdout, format: format, showApp: filter.App == ""}
			if follow {
				if w.format == outputTable {
					w.header()
				}
				err := audit.Follow(ctx, s.events, filter, 0, w.one)
				if ctx.Err() != nil && e.ctx.Err() == nil && errors.Is(context.Cause(ctx), context.Canceled) {
					return nil // interrupted, not refused
				}
				return err
			}
			entries, err := readAudit(readCtx, s.events, filter)
			if err != nil {
				return err
			}
			if limit.n > 0 && len(entries) > limit.n {
				entries = entries[len(entries)-limit.n:]
			}
			return w.all(entries)
		}())
	}
	return cmd
}

func historyCommand() *cobra.Command {
	cmd, f := clientCommand("history APP", "Show an app's releases, newest first",
		"revline apps history my-model --limit 10", 1, 0)
	cmd.Long = "Show an app's releases, newest first: deploys, rollbacks, scaling, deletes, with who and when."
	var limit limitFlag
	limit.register(cmd.Flags())
	f.runE(cmd, nil, func(ctx context.Context, e env, s *session, pos []string) error {
		entries, err := readAudit(ctx, s.events, audit.Filter{App: pos[0], Types: audit.HistoryTypes})
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			return fmt.Errorf("app %q has no history", pos[0])
		}
		slices.Reverse(entries)
		if limit.n > 0 && len(entries) > limit.n {
			entries = entries[:limit.n]
		}
		return render(e, f, entries, nil, f.style().printHistory)
	})
	return cmd
}

// readAudit reads every entry filter keeps, as the log is now.
func readAudit(ctx context.Context, log audit.Log, filter audit.Filter) ([]audit.Entry, error) {
	var out []audit.Entry
	_, err := audit.Each(ctx, log, filter, 0, func(e audit.Entry) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// auditWriter prints audit entries as a table, a JSON array, or JSON lines
// (the stable export: one audit.Record a line).
type auditWriter struct {
	out    io.Writer
	format string
	// showApp adds the APP column (an audit of every app).
	showApp bool
}

func (w auditWriter) all(entries []audit.Entry) error {
	switch w.format {
	case outputJSON:
		if entries == nil {
			entries = []audit.Entry{}
		}
		return printJSON(w.out, entries)
	case outputTable:
		w.header()
	}
	for _, entry := range entries {
		if err := w.one(entry); err != nil {
			return err
		}
	}
	return nil
}

// auditColumns lays out the table's columns; it streams with --follow, so
// widths are fixed rather than fitted to the rows.
func (w auditWriter) columns(seq, at, app, actor, typ, command, correlation, summary string) string {
	line := fmt.Sprintf("%-6s  %-23s  ", seq, at) // "2006-01-02 15:04:05 UTC"
	if w.showApp {
		line += fmt.Sprintf("%-16s  ", app)
	}
	return line + fmt.Sprintf("%-14s  %-24s  %-8s  %-11s  %s\n", actor, typ, command, correlation, summary)
}

func (w auditWriter) header() {
	fmt.Fprint(w.out, w.columns("SEQ", "TIME", "APP", "ACTOR", "TYPE", "COMMAND", "CORRELATION", "SUMMARY"))
}

func (w auditWriter) one(entry audit.Entry) error {
	if w.format == outputJSONL {
		data, err := json.Marshal(entry.Record)
		if err != nil {
			return fmt.Errorf("encode event %d: %w", entry.Sequence, err)
		}
		_, err = fmt.Fprintf(w.out, "%s\n", data)
		return err
	}
	_, err := fmt.Fprint(w.out, w.columns(fmt.Sprint(entry.Sequence), when(entry.Time), entry.App, entry.Actor, entry.Type,
		shortID(entry.CausationID), shortID(entry.CorrelationID), entry.Summary))
	return err
}

func (ts tableStyle) printHistory(w io.Writer, entries []audit.Entry) {
	rows := make([][]string, 0, len(entries))
	for _, e := range entries {
		current := e.Current
		if current == "" {
			current = "-"
		}
		rows = append(rows, []string{current, ts.at(e.Time), e.By, e.Summary})
	}
	table(w, "CURRENT\tWHEN\tBY\tCHANGE", rows)
}

// shortID is an id's last 8 characters, "-" for none: the random part of
// a UUID v7, whose first characters are shared by ids made within a
// minute. -o json and jsonl give the whole id.
func shortID(id string) string {
	switch {
	case id == "":
		return "-"
	case len(id) > 8:
		return id[len(id)-8:]
	}
	return id
}

// optionalTime reads a --since or --until value; "" is no bound.
func optionalTime(flagName, text string, now time.Time) (time.Time, error) {
	if text == "" {
		return time.Time{}, nil
	}
	t, err := audit.ParseTime(text, now)
	if err != nil {
		return time.Time{}, usagef("%s: %v", flagName, err)
	}
	return t, nil
}

// globsFlag collects --type patterns, repeated or comma-separated.
type globsFlag []string

func (g *globsFlag) String() string { return strings.Join(*g, ",") }

// Type implements pflag.Value: the value's kind in help.
func (g *globsFlag) Type() string { return "GLOB" }

func (g *globsFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*g = append(*g, p)
		}
	}
	return nil
}
