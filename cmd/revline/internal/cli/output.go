package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"github.com/revline/revline/aggregates"
	"github.com/spf13/cobra"
	"io"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/revline/revline/cmd/revline/internal/control"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/projections/audit"
	"github.com/revline/revline/projections/queryapi"
)

// render prints the result of a command: as JSON with -o json, with table
// otherwise. An error is returned as it is, before anything is printed.
func render[T any](e env, f *clientFlags, v T, err error, table func(io.Writer, T)) error {
	if err != nil {
		return err
	}
	if f.output == outputJSON {
		return printJSON(e.stdout, v)
	}
	table(e.stdout, v)
	return nil
}

// The JSON shapes of -o json, one per resource, documented in README
// ("JSON output") and pinned by TestJSONShapes: app
// (projections.AppView), revision (projections.RevisionView), runner
// (projections.RunnerView), rollout (rolloutOutcome), and the outcome of
// every command that changes something, which names the app and says
// what became of the command (status) and the last event it wrote
// (sequence), with what the command made: control.ChangeResult (scale,
// suspend, resume), control.SwitchResult (set-rev), control.StopResult
// (runners stop, kill), control.SecretResult (secrets set, unset),
// deployOutcome and deleteOutcome.

// deployOutcome is deploy's outcome: the revision it made, whose status
// is the revision's (deploying, deployed, failed).
type deployOutcome struct {
	App string `json:"app"`
	control.DeployResult
}

// rolloutOutcome is a rollout (apps rollout, secrets set --rollout):
// status requested, completed, failed or superseded.
type rolloutOutcome struct {
	App string `json:"app"`
	control.RolloutResult
}

// deleteOutcome is delete-rev's outcome; a delete is never a no-op (the
// server refuses to delete a deleted revision).
type deleteOutcome struct {
	control.DeleteResult
	Status events.OutcomeStatus `json:"status"`
}

func printJSON(w io.Writer, v any) error {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.IsNil() {
		v = []any{} // a list with nothing in it is [], never null
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints a table: the header's cells are tab-separated. Each column
// is as wide as its widest cell, two spaces from the next; the last is not
// padded.
func table(w io.Writer, header string, rows [][]string) {
	paintedTable(w, header, rows, -1, nil)
}

// paintedTable prints a table as table does, with paint applied to the
// cells of column col (not the header's) once they are padded: the escape
// codes of a colour take no room, and the columns stay aligned.
func paintedTable(w io.Writer, header string, rows [][]string, col int, paint func(string) string) {
	lines := append([][]string{strings.Split(header, "\t")}, rows...)
	var widths []int
	for _, cells := range lines {
		for i, cell := range cells[:max(len(cells)-1, 0)] {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	var b strings.Builder
	for n, cells := range lines {
		for i, cell := range cells {
			text := cell
			if paint != nil && n > 0 && i == col {
				text = paint(cell)
			}
			b.WriteString(text)
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell)+2))
			}
		}
		b.WriteByte('\n')
	}
	_, _ = io.WriteString(w, b.String())
}

// when shows a time in the machine's zone, with the zone, so that a
// table pasted elsewhere still says when.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

// revisionPrefix is the first 8 characters of a revision id, a prefix
// commands accept and that tells revisions apart in practice (ids are
// random from their first character); -o json has the whole id.
func revisionPrefix(id string) string { return id[:min(len(id), 8)] }

func secs(s events.Seconds) string { return fmt.Sprintf("%ds", s) }

// revisionName names a revision in a sentence: "v3 (id)", or the id
// alone if its number is not known.
func revisionName(number uint64, id string) string {
	if number == 0 {
		return id
	}
	return fmt.Sprintf("v%d (%s)", number, id)
}

// version shows a revision number as in list-rev: v3.
func version(number uint64) string {
	if number == 0 {
		return "-"
	}
	return fmt.Sprintf("v%d", number)
}

func printDeploy(w io.Writer, app string, res control.DeployResult) {
	name := revisionName(res.Number, res.RevisionID)
	switch res.Status {
	case events.StatusDeployed:
		if res.RolledBackTo != "" {
			ref := res.RevisionID
			if res.Number != 0 {
				ref = version(res.Number)
			}
			fmt.Fprintf(w, "Revision %s of %s is deployed, not current: the app was rolled back to %s while it deployed. To make it current: revline apps set-rev %s %s\n",
				name, app, revisionName(res.RolledBackToNumber, res.RolledBackTo), app, ref)
			break
		}
		fmt.Fprintf(w, "Revision %s of %s is deployed and current.\n", name, app)
	case events.StatusFailed:
		fmt.Fprintf(w, "Revision %s of %s failed: %s. The current revision did not change.\n", name, app, res.Reason)
	default:
		fmt.Fprintf(w, "Revision %s of %s is deploying.\n", name, app)
	}
	if res.Duplicate {
		fmt.Fprintln(w, "(This idempotency key was used before: no new revision was created.)")
	}
}

// tableStyle is how a command's tables look: by default they fit 100
// columns and show times relative to now ("3m ago"); with -o wide they
// have every column, whole texts and exact times.
type tableStyle struct {
	now  time.Time
	wide bool
	// colour colours the status words (useColour).
	colour bool
}

// statusTable prints a table whose column col holds status words,
// coloured if the style says so.
func (ts tableStyle) statusTable(w io.Writer, header string, rows [][]string, col int) {
	if !ts.colour {
		table(w, header, rows)
		return
	}
	paintedTable(w, header, rows, col, paintStatus)
}

// at shows a time in a table: how long ago, or with -o wide exactly, as
// JSON has it (RFC 3339, UTC).
func (ts tableStyle) at(t time.Time) string {
	switch {
	case t.IsZero():
		return "-"
	case ts.wide:
		return t.UTC().Format(time.RFC3339)
	}
	return ago(ts.now.Sub(t))
}

// ago says how long before now a time d before now is: "just now",
// "42s ago", "3m ago"; or for a time after now (another machine's clock
// ahead of this one's), "in 3s".
func ago(d time.Duration) string {
	switch {
	case d < -time.Second:
		return "in " + span(-d)
	case d < time.Second:
		return "just now"
	}
	return span(d) + " ago"
}

// span shows a duration as kubectl shows ages, precise while it is short:
// 42s, 5m30s, 47m, 5h12m, 20h, 3d4h, 45d.
func span(d time.Duration) string {
	s := int64(d / time.Second)
	m, h := s/60, s/3600
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", s)
	case d < 10*time.Minute && s%60 != 0:
		return fmt.Sprintf("%dm%ds", m, s%60)
	case d < 3*time.Hour:
		return fmt.Sprintf("%dm", m)
	case d < 8*time.Hour && m%60 != 0:
		return fmt.Sprintf("%dh%dm", h, m%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", h)
	case d < 8*24*time.Hour && h%24 != 0:
		return fmt.Sprintf("%dd%dh", h/24, h%24)
	}
	return fmt.Sprintf("%dd", h/24)
}

// fit shortens a text for a table, unless -o wide.
func (ts tableStyle) fit(text string, width int) string {
	if ts.wide {
		return text
	}
	return aggregates.FitText(text, width)
}

func (ts tableStyle) printApps(w io.Writer, apps []projections.AppView) {
	rows := make([][]string, 0, len(apps))
	for _, a := range apps {
		current := a.CurrentRevision
		scaling, keepAlive := fmt.Sprintf("%d/%d", a.MinConcurrency, a.MaxConcurrency), secs(a.KeepAlive)
		if current == "" {
			// No deploy has completed: the app has no scaling yet (an app
			// made by `secrets set` before its first deploy, say).
			current, scaling, keepAlive = "-", "-", "-"
		} else if a.Suspended {
			current += " (suspended)"
		}
		rows = append(rows, []string{a.Name, current, fmt.Sprint(a.Revisions), fmt.Sprint(a.Runners), scaling, keepAlive, ts.at(a.UpdatedAt)})
	}
	table(w, "APP\tCURRENT REVISION\tREVISIONS\tRUNNERS\tMIN/MAX\tKEEP ALIVE\tUPDATED", rows)
}

// printRevisions prints revisions; -o wide adds the parameters a
// revision's runners run with besides their machine type.
func (ts tableStyle) printRevisions(w io.Writer, revs []projections.RevisionView) {
	header := "\tVERSION\tREVISION\tSTATUS\tCREATED\tMACHINE\tRUNNERS\tMESSAGE"
	if ts.wide {
		header = "\tVERSION\tREVISION\tSTATUS\tCREATED\tMACHINE\tMIN/MAX\tMULTIPLEX\tKEEP ALIVE\tREQ TIMEOUT\tSTARTUP TIMEOUT\tRUNNERS\tMESSAGE"
	}
	rows := make([][]string, 0, len(revs))
	for _, r := range revs {
		mark := ""
		if r.Current {
			mark = "*"
		}
		status := string(r.Status)
		switch {
		case r.CrashBackoff > 0 && ts.wide:
			status += fmt.Sprintf(", crash-looping (%d restarts)", r.Restarts)
		case r.CrashBackoff > 0:
			status += ", crash-looping"
		case r.RolledBackTo != "":
			// Deployed while a rollback happened: it never went live.
			status += ", never live"
		}
		row := []string{mark, version(r.Number), revisionPrefix(r.RevisionID), status, ts.at(r.CreatedAt), r.MachineType}
		if ts.wide {
			row = append(row, fmt.Sprintf("%d/%d", r.MinConcurrency, r.MaxConcurrency), fmt.Sprint(r.MaxMultiplexing),
				secs(r.KeepAlive), secs(r.RequestTimeout), secs(r.StartupTimeout))
		}
		rows = append(rows, append(row, fmt.Sprint(r.Runners), ts.fit(r.Message, 22)))
	}
	ts.statusTable(w, header, rows, 3)
	if len(revs) > 0 {
		fmt.Fprintln(w, "* current revision")
	}
}

func printRollout(w io.Writer, res rolloutOutcome) {
	app := res.App
	kind := "Graceful"
	if res.Force {
		kind = "Force"
	}
	switch res.Status {
	case "completed":
		fmt.Fprintf(w, "%s rollout %s of %s complete: %d runner(s) replaced", kind, res.RolloutID, app, res.Replaced)
		if res.Force {
			fmt.Fprintf(w, ", %d in-flight request(s) dropped", res.DroppedRequests)
		}
		fmt.Fprintln(w, ".")
	case "failed":
		fmt.Fprintf(w, "%s rollout %s of %s failed: %s; %d runner(s) replaced", kind, res.RolloutID, app, res.Reason, res.Replaced)
		if res.Force {
			fmt.Fprintf(w, ", %d in-flight request(s) dropped", res.DroppedRequests)
		}
		fmt.Fprintln(w, ".")
		if !res.Force {
			fmt.Fprintln(w, "It stopped none of the runners it did not replace: see `revline apps runners`.")
		}
	case "superseded":
		fmt.Fprintf(w, "%s rollout %s of %s was superseded by a newer rollout.\n", kind, res.RolloutID, app)
	default:
		fmt.Fprintf(w, "%s rollout %s of %s requested.\n", kind, res.RolloutID, app)
	}
}

// printRunners prints runners; -o wide adds their keep-alive countdown,
// last crash, process id and port.
func (ts tableStyle) printRunners(w io.Writer, runners []projections.RunnerView) {
	header := "RUNNER\tREVISION\tSTATE\tIN FLIGHT\tUPTIME\tRESTARTS\tUPDATED"
	if ts.wide {
		header = "RUNNER\tREVISION\tSTATE\tIN FLIGHT\tUPTIME\tRESTARTS\tUPDATED\tEXPIRES IN\tLAST CRASH\tPID\tPORT"
	}
	rows := make([][]string, 0, len(runners))
	for _, r := range runners {
		row := []string{r.RunnerID, revisionPrefix(r.RevisionID), string(r.State), fmt.Sprint(r.InFlight), ts.uptime(r), fmt.Sprint(r.Restarts), ts.at(r.UpdatedAt)}
		if ts.wide {
			row = append(row, ts.expiresIn(r.ExpiresAt), cmp.Or(r.LastCrash, "-"), fmt.Sprint(r.PID), fmt.Sprint(r.Port))
		}
		rows = append(rows, row)
	}
	ts.statusTable(w, header, rows, 2)
}

// printRunnersThen prints runners as time travel found them at p: their
// uptimes and ages as of then (p's time, or the app's last event up to
// p), not as of now, when a runner running then may long have stopped.
func (ts tableStyle) printRunnersThen(w io.Writer, then audit.Runners, p audit.Point, runners []projections.RunnerView) {
	ts.now = then.Time
	if !p.Time.IsZero() {
		ts.now = p.Time
	}
	fmt.Fprintf(w, "Runners of %s as of event %d (%s); uptimes and ages as of then:\n", then.App, then.Sequence, when(then.Time))
	ts.printRunners(w, runners)
}

// uptime is how long a live runner has run, "-" for a terminated one.
func (ts tableStyle) uptime(r projections.RunnerView) string {
	if r.Terminated() || r.StartedAt.IsZero() {
		return "-"
	}
	return span(max(ts.now.Sub(r.StartedAt), 0))
}

// expiresIn is an idle runner's keep-alive countdown, "-" for none.
func (ts tableStyle) expiresIn(at *time.Time) string {
	if at == nil {
		return "-"
	}
	return span(max(at.Sub(ts.now), 0))
}

// waitFlags registers --no-wait, with usage, on a command that waits by
// default until its change is live, and --wait, hidden: it was how to
// wait before waiting became the default, and scripts still give it.
// The function returned says whether to wait.
func waitFlags(cmd *cobra.Command, usage string) func() bool {
	noWait := cmd.Flags().Bool("no-wait", false, usage)
	wait := cmd.Flags().Bool("wait", true, "wait until the change is live (the default; --no-wait does not)")
	_ = cmd.Flags().MarkHidden("wait")
	return func() bool { return *wait && !*noWait }
}

// settleFlags registers --no-wait (and --wait, hidden) on a scale,
// suspend or resume.
func settleFlags(cmd *cobra.Command) func() bool {
	return waitFlags(cmd, fmt.Sprintf("return once the change is recorded, without waiting for the runners to settle (as many ready as min_concurrency asks, or none when suspended; runners failing %d times end the wait early, exit 1)", control.FailureLimit))
}

// printRolloutEnd prints a rollout as it ended, or as requested: one that
// failed, or that a newer rollout superseded, did not do what was asked
// (exit 1).
func printRolloutEnd(e env, f *clientFlags, app string, res control.RolloutResult) error {
	if err := render(e, f, rolloutOutcome{app, res}, nil, printRollout); err != nil {
		return err
	}
	if res.Status == "failed" || res.Status == "superseded" {
		return errReported
	}
	return nil
}

// printChange reports a scale, suspend or resume, with the app as it is
// now, after waiting for the runners to settle when asked (a no-op has
// nothing to wait for).
func printChange(ctx context.Context, e env, s *session, f *clientFlags, res control.ChangeResult, verb string, wait bool) error {
	if wait && res.Status == events.OutcomeAccepted {
		ready, err := s.control.AwaitSettled(ctx, res.App, res.Sequence)
		if err != nil {
			return err
		}
		res.ReadyRunners = &ready
	}
	if f.output == outputJSON {
		return printJSON(e.stdout, res)
	}
	if res.ReadyRunners != nil {
		defer fmt.Fprintf(e.stdout, "Runners settled: %d ready.\n", *res.ReadyRunners)
	}
	if res.Status == events.OutcomeNoOp {
		fmt.Fprintf(e.stdout, "Nothing to do: %s\n", res.Message)
		return nil
	}
	fmt.Fprintf(e.stdout, "%s %s.\n", verb, res.App)
	apps, err := queryapi.All(ctx, 0, func(ctx context.Context, p queryapi.PageRequest) (queryapi.Page[projections.AppView], error) {
		return s.reader.Apps(ctx, p, res.Sequence)
	})
	if err != nil {
		return err
	}
	for _, a := range apps {
		if a.Name == res.App {
			f.style().printApps(e.stdout, []projections.AppView{a})
		}
	}
	return nil
}
