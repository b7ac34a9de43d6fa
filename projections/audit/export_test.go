package audit_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/revline/revline/events"
	"github.com/revline/revline/projections/audit"
)

// export writes the log (filter's events) as `revline audit -o jsonl`
// does, a line a record.
func export(t *testing.T, h *history, filter audit.Filter) []string {
	t.Helper()
	var lines []string
	if _, err := audit.Each(h.ctx, h.store, filter, 0, func(e audit.Entry) error {
		data, err := json.Marshal(e.Record)
		lines = append(lines, string(data))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return lines
}

func checkExport(lines []string, app string) (audit.ExportSummary, error) {
	return audit.CheckExport(strings.NewReader(strings.Join(lines, "\n")+"\n"), events.NewRegistry(), app)
}

// An export of the log checks out offline, whole or of one app; a
// changed, missing, repeated or moved line, or an export that does not
// start at its apps' first events, is reported with its line.
func TestCheckExport(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	h.standard()
	h.do("other", "bob", events.Deploy{RevisionID: rev1, Command: "run $PORT"})
	h.do("my-model", "carol", events.Scale{Runtime: events.RuntimeOverrides{MinConcurrency: ptr(3)}})
	whole := export(t, h, audit.Filter{})
	sum, err := checkExport(whole, "")
	if err != nil {
		t.Fatal(err)
	}
	if sum.Records != len(whole) || sum.First != 1 || len(sum.Chains) != 2 || !sum.Chains[0].OK || !sum.Chains[1].OK {
		t.Fatalf("whole export: %+v", sum)
	}
	oneApp := export(t, h, audit.Filter{App: "my-model"})
	if sum, err := checkExport(oneApp, "my-model"); err != nil || len(sum.Chains) != 1 || sum.Records != len(oneApp) {
		t.Fatalf("my-model's export: %+v, %v", sum, err)
	}

	edit := func(lines []string, i int, from, to string) []string {
		out := append([]string(nil), lines...)
		if !strings.Contains(out[i], from) {
			t.Fatalf("line %d has no %q: %s", i+1, from, out[i])
		}
		out[i] = strings.Replace(out[i], from, to, 1)
		return out
	}
	without := func(lines []string, i int) []string {
		return append(append([]string(nil), lines[:i]...), lines[i+1:]...)
	}
	for _, tc := range []struct {
		name  string
		lines []string
		app   string
		line  int
		want  string
	}{
		{"payload changed", edit(whole, 0, `"message":"first"`, `"message":"FIRST"`), "", 1, "payload differs"},
		{"actor changed", edit(whole, 1, `"actor":"worker:runner"`, `"actor":"mallory"`), "", 2, "does not match its hash"},
		{"line missing", without(whole, 2), "", 3, "missing"},
		{"line missing in one app's export", without(oneApp, 2), "my-model", 3, "does not chain"},
		{"another app in one app's export", whole, "other", 1, "an event of \"my-model\""},
		{"line repeated", append(whole[:3:3], whole[2:]...), "", 4, "must increase"},
		{"export cut at the start", oneApp[1:], "my-model", 1, "misses the app's earlier events"},
		{"not a record", append([]string{"{"}, whole...), "", 1, "not a record"},
	} {
		_, err := checkExport(tc.lines, tc.app)
		var bad *audit.ExportError
		if !errors.As(err, &bad) || bad.Line != tc.line || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want line %d: %s", tc.name, err, tc.line, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: the error is not one line: %q", tc.name, err)
		}
	}
	if _, err := audit.CheckExport(bytes.NewReader(nil), events.NewRegistry(), ""); err == nil {
		t.Error("an empty export checked out")
	}
}
