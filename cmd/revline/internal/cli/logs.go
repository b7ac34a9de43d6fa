package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/projections/queryapi"
	"github.com/spf13/cobra"
)

// followInterval is how long --follow waits, once it has printed all the
// log holds, before it asks for what the runner wrote since.
const followInterval = 500 * time.Millisecond

func runnerLogsCommand() *cobra.Command {
	cmd, f := clientCommand("logs APP RUNNER", "Show a runner's output",
		"revline runners logs my-model 01a214e9-c31c-7d34-bee6-9380ace5896c --tail 20 --follow", 2, 0)
	cmd.Long = "Show a runner's output (stdout and stderr): its last lines, and with --follow what it writes next."
	var follow bool
	tail := tailFlag{n: queryapi.DefaultLogTail}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing what the runner writes until interrupted (Ctrl-C) or the runner terminates")
	cmd.Flags().Var(&tail, "tail", fmt.Sprintf("show the last `N` lines (0 to %d), or all of the log", queryapi.MaxLogTail))
	cmd.RunE = func(cmd *cobra.Command, pos []string) error {
		e := envOf(cmd)
		if err := f.check(e, pos, nil); err != nil {
			return err
		}
		runnerID, err := queryapi.ParseRunnerID(pos[1])
		if err != nil {
			return usageError{err.Error()}
		}
		ctx, stop := followContext(e.ctx, follow)
		defer stop()
		ctx, explain, stopRefusable := f.refusable(ctx)
		defer stopRefusable()
		connectCtx, cancel := context.WithTimeout(ctx, f.timeout)
		s, err := f.connect(connectCtx)
		cancel()
		if err != nil {
			return err
		}
		defer s.close()
		p := &logPrinter{w: e.stdout, json: f.output == outputJSON}
		terminated, err := readLogs(ctx, s.logs, pos[0], runnerID, logOptions{tail: tail, follow: follow, timeout: f.timeout}, p)
		if err == nil && terminated {
			fmt.Fprintf(e.stderr, "Runner %s has terminated.\n", runnerID)
		}
		return explain(err)
	}
	return cmd
}

// tailFlag is --tail: a number of lines, or all of the log.
type tailFlag struct {
	n   int
	all bool
}

func (t *tailFlag) String() string {
	if t.all {
		return "all"
	}
	return strconv.Itoa(t.n)
}

// Type implements pflag.Value: the value's kind in help.
func (t *tailFlag) Type() string { return "N|all" }

func (t *tailFlag) Set(s string) error {
	if s == "all" {
		t.all = true
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > queryapi.MaxLogTail {
		return fmt.Errorf("%q: want a whole number from 0 to %d, or all", s, queryapi.MaxLogTail)
	}
	t.n, t.all = n, false
	return nil
}

// logOptions are the flags of `runners logs`.
type logOptions struct {
	tail   tailFlag
	follow bool
	// timeout bounds each query.
	timeout time.Duration
}

// readLogs prints the runner's log as opts say: its tail, page after page
// up to the end the log had at first, and with follow what comes after,
// every followInterval once it has caught up, until ctx ends (which is
// no error then) or the runner has terminated and all it wrote is
// printed (terminated is then true).
func readLogs(ctx context.Context, r queryapi.LogReader, app, runnerID string, opts logOptions, p *logPrinter) (terminated bool, err error) {
	defer p.finish()
	ask := func(req queryapi.LogRequest) (queryapi.LogPage, error) {
		ctx, cancel := context.WithTimeout(ctx, opts.timeout)
		defer cancel()
		return r.RunnerLogs(ctx, app, runnerID, req, 0)
	}
	req := queryapi.LogRequest{Tail: opts.tail.n}
	if opts.tail.all {
		req.AfterOffset = new(int64)
	}
	page, err := ask(req)
	if err != nil {
		return false, err
	}
	end := page.Size
	for {
		if page.Restarted {
			p.finish() // the line was cut by the rotation of the log
		}
		if err := p.print(page.Lines); err != nil {
			return false, err
		}
		next := page.NextOffset
		switch {
		case page.More && (opts.follow || next < end):
			// The log holds more already: ask at once.
		case !opts.follow:
			return false, nil
		case page.Terminated:
			return true, nil
		default:
			timer := time.NewTimer(followInterval)
			select {
			case <-ctx.Done():
				timer.Stop()
				return false, nil
			case <-timer.C:
			}
		}
		page, err = ask(queryapi.LogRequest{AfterOffset: &next})
		if err != nil {
			if opts.follow && ctx.Err() != nil {
				return false, nil
			}
			return false, err
		}
	}
}

// logPrinter prints log lines: as text, control characters escaped, a
// partial line continued by the next piece as tail -f would; or, with
// json, one JSON object per line (offset, text, partial), the text as it
// is, JSON-escaped.
type logPrinter struct {
	w    io.Writer
	json bool
	// open: the last line printed as text was partial, its newline not
	// printed yet.
	open bool
}

func (p *logPrinter) print(lines []queryapi.LogLine) error {
	for _, line := range lines {
		if p.json {
			enc := json.NewEncoder(p.w)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(line); err != nil {
				return err
			}
			continue
		}
		text := aggregates.EscapeText(line.Text)
		if !line.Partial {
			text += "\n"
		}
		if _, err := io.WriteString(p.w, text); err != nil {
			return err
		}
		p.open = line.Partial
	}
	return nil
}

// finish ends a partial line printed last, so that the output ends with a
// newline.
func (p *logPrinter) finish() {
	if p.open {
		_, _ = io.WriteString(p.w, "\n")
		p.open = false
	}
}

// followContext is the context of a command that may follow (--follow):
// ctx, or with follow, ctx ended by Ctrl-C (SIGINT) or SIGTERM, which end a
// follow and not the command: it exits 0.
func followContext(ctx context.Context, follow bool) (context.Context, context.CancelFunc) {
	if !follow {
		return ctx, func() {}
	}
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}
