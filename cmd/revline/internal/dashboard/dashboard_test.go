package dashboard_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/revline/revline/events"
)

// revisionRow is what the versions page shows of one revision.
type revisionRow struct {
	ID       string `json:"id"`
	Number   string `json:"number"`
	Current  bool   `json:"current"`
	Status   string `json:"status"`
	Reason   string `json:"reason"`
	Machine  string `json:"machine"`
	Rollback bool   `json:"rollback"`
	Delete   bool   `json:"delete"`
	Hover    string `json:"hover"`
}

const readRevisionRows = `[...document.querySelectorAll('#revisions tbody tr')].map(tr => ({
	id: tr.dataset.revision,
	number: tr.querySelector('th .rev')?.textContent ?? '',
	current: !!tr.querySelector('.badge-current'),
	status: tr.querySelector('td[data-label=Status] .badge')?.textContent ?? '',
	reason: tr.querySelector('td[data-label=Status] .reason')?.textContent ?? '',
	machine: tr.querySelector('td[data-label=Machine]').textContent,
	rollback: !!tr.querySelector('button[data-action=rollback]'),
	delete: !!tr.querySelector('button[data-action=delete]'),
	hover: tr.querySelector('td[data-label=Created] time')?.title ?? '',
}))`

// row returns the row of revision id; the test fails without one.
func row(t *testing.T, rows []revisionRow, id string) revisionRow {
	t.Helper()
	i := slices.IndexFunc(rows, func(r revisionRow) bool { return r.ID == id })
	if i < 0 {
		t.Fatalf("revision %s is not on the page: %+v", id, rows)
	}
	return rows[i]
}

// lastEvent returns app's last event of type typ.
func lastEvent(t *testing.T, envs []events.Envelope, typ string) events.Envelope {
	t.Helper()
	for _, env := range slices.Backward(envs) {
		if env.Type == typ {
			return env
		}
	}
	t.Fatalf("no %s event in the log", typ)
	return events.Envelope{}
}

// confirmed waits until the dialog's action is done and the dialog
// closed; the test fails with the error the dialog shows otherwise.
func confirmed(t *testing.T, ctx context.Context) {
	t.Helper()
	waitFor(t, ctx, "the action ends", `!document.getElementById('confirm').open || !document.getElementById('confirm-error').hidden`)
	if msg := eval[string](t, ctx, `document.getElementById('confirm').open ? document.getElementById('confirm-error').textContent : ''`); msg != "" {
		t.Fatalf("the action failed: %s", msg)
	}
}

// countNotRunner counts the events other than runner reports, which the
// runner worker writes on its own.
func countNotRunner(envs []events.Envelope) int {
	n := 0
	for _, env := range envs {
		if env.Type != events.TypeRunnerStateChanged {
			n++
		}
	}
	return n
}

// TestVersionsRollbackAndDelete walks the versions page: badges and the
// Current marker, the rollback dialog's parameter split, Cancel and
// Escape changing nothing, Confirm switching (as the logged-in token,
// in the event log), and delete refused on the current revision but done
// on another.
func TestVersionsRollbackAndDelete(t *testing.T) {
	t.Parallel()
	s := serve(t)
	ctx := tab(t, s)
	rev1, _ := s.deploy("web", runnerBin, "--message", "first")
	rev2, _ := s.deploy("web", runnerBin, "--machine-type", "GPU-H100", "--message", "second")
	if code, stdout, stderr := s.revline("apps", "scale", "web", "--keep-alive", "5m", "--max-concurrency", "7"); code != 0 {
		t.Fatalf("scale: exit %d, %s %s", code, stdout, stderr)
	}

	do(t, ctx, "open the versions page", chromedp.Navigate(s.addrs.HTTPURL+"/ui/apps/web"))
	waitFor(t, ctx, "both revisions are listed", `document.querySelectorAll('#revisions tbody tr').length === 2`)
	rows := eval[[]revisionRow](t, ctx, readRevisionRows)
	if rows[0].ID != rev2 || rows[1].ID != rev1 {
		t.Fatalf("revisions are not newest first: %+v", rows)
	}
	if rows[0].Number != "v2" || rows[1].Number != "v1" {
		t.Errorf("revisions are numbered %q and %q; want the numbers their deploys recorded, v2 and v1", rows[0].Number, rows[1].Number)
	}
	if r := row(t, rows, rev2); !r.Current || r.Status != "Deployed" || r.Machine != "GPU-H100" || r.Rollback || r.Delete {
		t.Errorf("current revision shows %+v; want Current, Deployed, GPU-H100, no Rollback nor Delete", r)
	}
	if r := row(t, rows, rev1); r.Current || r.Status != "Deployed" || r.Machine != "XS" || !r.Rollback || !r.Delete {
		t.Errorf("older revision shows %+v; want Deployed, XS, Rollback and Delete", r)
	}
	if !strings.HasSuffix(rows[0].Hover, "UTC") {
		t.Errorf("creation time has hover text %q; want the exact time", rows[0].Hover)
	}

	rollback := fmt.Sprintf(`button[data-action=rollback][data-revision=%q]`, rev1)
	openRollback := func() {
		t.Helper()
		click(t, ctx, rollback)
		waitFor(t, ctx, "the rollback dialog shows the parameters", `document.getElementById('confirm').open && !!document.querySelector('#preview-params')`)
	}
	openRollback()
	if id := eval[string](t, ctx, `document.activeElement.id`); id != "confirm-reason" {
		t.Errorf("focus in the rollback dialog is on %q; want the reason field", id)
	}
	if text := eval[string](t, ctx, `document.getElementById('confirm').textContent.replace(/\s+/g, ' ')`); !strings.Contains(text, fmt.Sprintf("from v2 %s to v1 %s.", rev2[:13], rev1[:13])) {
		t.Errorf("the rollback dialog says %q; want it to name both revisions by number and short id", text)
	}
	type param struct{ Now, After, Source string }
	params := eval[map[string]param](t, ctx, `Object.fromEntries([...document.querySelectorAll('#preview-params tbody tr')].map(tr =>
		[tr.dataset.param, {Now: tr.cells[1].textContent, After: tr.cells[2].textContent.replace(/\s*\(changes\)/, ''), Source: tr.dataset.source}]))`)
	for name, want := range map[string]param{
		"machine_type":    {"GPU-H100", "XS", "target"},
		"keep_alive":      {"300s", "300s", "current"},
		"max_concurrency": {"7", "7", "current"},
		"request_timeout": {"3600s", "3600s", "current"},
	} {
		if got := params[name]; got != want {
			t.Errorf("rollback dialog, %s: %+v, want %+v", name, got, want)
		}
	}

	before := countNotRunner(s.history("web"))
	click(t, ctx, "#confirm-cancel")
	waitFor(t, ctx, "the dialog closes", `!document.getElementById('confirm').open`)
	// The focus goes back in the dialog's close event, a task after.
	waitFor(t, ctx, "closing the dialog gives the focus back to the Rollback button", fmt.Sprintf(`document.activeElement === document.querySelector(%q)`, rollback))
	openRollback()
	do(t, ctx, "press Escape", chromedp.KeyEvent(kb.Escape))
	waitFor(t, ctx, "Escape closes the dialog", `!document.getElementById('confirm').open`)
	if after := countNotRunner(s.history("web")); after != before {
		t.Fatalf("Cancel and Escape changed the log: %d events, then %d", before, after)
	}

	openRollback()
	// Closed and opened again at once, as a quick user may: the first
	// close's event arrives after the second open and must not undo it.
	eval[bool](t, ctx, fmt.Sprintf(`document.getElementById('confirm').close(); document.querySelector(%q).focus(); document.querySelector(%q).click(); true`, rollback, rollback))
	waitFor(t, ctx, "the reopened dialog shows the parameters", `document.getElementById('confirm').open && !!document.querySelector('#preview-params')`)
	do(t, ctx, "type a reason", chromedp.SendKeys(chromedp.ID("confirm-reason"), "latency regression"))
	click(t, ctx, "#confirm-ok")
	confirmed(t, ctx)
	waitFor(t, ctx, "the rolled-back revision is current", fmt.Sprintf(`!!document.querySelector('#revisions tr[data-revision=%q] .badge-current')`, rev1))
	set := lastEvent(t, s.history("web"), events.TypeCurrentRevisionSet)
	ev := set.Event.(events.CurrentRevisionSet)
	if set.Actor != "token:admin" || ev.To != rev1 || ev.Reason != "rollback" || ev.Message != "latency regression" ||
		ev.Code.MachineType != "XS" || ev.Runtime.KeepAlive != 300 || ev.Runtime.MaxConcurrency != 7 {
		t.Errorf("the rollback appended %+v by %q", ev, set.Actor)
	}

	rows = eval[[]revisionRow](t, ctx, readRevisionRows)
	if r := row(t, rows, rev1); r.Delete || r.Rollback {
		t.Errorf("the new current revision offers Delete or Rollback: %+v", r)
	}
	// Sent anyway, a delete of the current revision is refused by the
	// decider, with its reason.
	refused := eval[string](t, ctx, fmt.Sprintf(`fetch('/ui/apps/web/delete-revision', {method: 'POST', headers: {'Content-Type': 'application/json'},
		body: JSON.stringify({revision: %q})}).then(async r => r.status + ' ' + (await r.json()).error)`, rev1))
	if !strings.HasPrefix(refused, "409 ") || !strings.Contains(refused, "current revision") {
		t.Errorf("delete of the current revision answered %q; want 409 saying it is current", refused)
	}

	click(t, ctx, fmt.Sprintf(`button[data-action=delete][data-revision=%q]`, rev2))
	waitFor(t, ctx, "the delete dialog opens", `document.getElementById('confirm').open`)
	if id := eval[string](t, ctx, `document.activeElement.id`); id != "confirm-cancel" {
		t.Errorf("focus in the delete dialog is on %q; want Cancel", id)
	}
	click(t, ctx, "#confirm-ok")
	confirmed(t, ctx)
	waitFor(t, ctx, "the deleted revision leaves the list", fmt.Sprintf(`!document.querySelector('#revisions tr[data-revision=%q]')`, rev2))
	del := lastEvent(t, s.history("web"), events.TypeRevisionDeleted)
	if del.Actor != "token:admin" || del.Event.(events.RevisionDeleted).RevisionID != rev2 {
		t.Errorf("the delete appended %+v by %q", del.Event, del.Actor)
	}

	do(t, ctx, "open the history", chromedp.Navigate(s.addrs.HTTPURL+"/ui/apps/web/history"))
	// In the words of `revline audit` (audit.Summary).
	waitFor(t, ctx, "the history shows the rollback by the admin token", `[...document.querySelectorAll('#history li[data-type="app.current_revision_set"]')].some(li =>
		li.querySelector('.actor').textContent === 'token:admin' && li.querySelector('.what').textContent === 'rolled back to v1 (runtime params kept from v2): "latency regression"')`)
	waitFor(t, ctx, "the history shows the CLI's deploys by alice", `[...document.querySelectorAll('#history li[data-type="revision.created"]')].filter(li =>
		li.querySelector('.actor').textContent === 'token:alice').length === 2`)
}
