package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/revline/revline/projections"
	"github.com/revline/revline/projections/audit"
)

// The audit table's columns line up: each header starts where its values
// do, with times as the table prints them.
func TestAuditColumnsLineUp(t *testing.T) {
	t.Parallel()
	for _, showApp := range []bool{false, true} {
		var out bytes.Buffer
		w := auditWriter{out: &out, format: outputTable, showApp: showApp}
		w.header()
		entry := audit.Entry{}
		entry.Sequence, entry.Time, entry.App, entry.Actor, entry.Type = 123456, time.Date(2026, 11, 26, 16, 46, 36, 0, time.UTC), "my-model", "worker:runner", "app.current_revision_set"
		entry.CausationID, entry.CorrelationID, entry.Summary = "01a218c0-aa1a-751b-bfd7-b54ad066e433", "01a218c0-aa1a-751b-bfd7-b54ad066e434", "deployed v1"
		if err := w.one(entry); err != nil {
			t.Fatal(err)
		}
		header, row, _ := strings.Cut(out.String(), "\n")
		for _, col := range []struct{ name, value string }{{"ACTOR", "worker:runner"}, {"TYPE", "app.current_revision_set"}, {"SUMMARY", "deployed v1"}} {
			if h, v := strings.Index(header, col.name), strings.Index(row, col.value); h != v {
				t.Errorf("showApp %v: %s starts at %d, its value at %d:\n%s\n%s", showApp, col.name, h, v, header, row)
			}
		}
	}
}

// An app no deploy has completed for (made by `secrets set`, say) has no
// scaling to show: its row says so rather than 0/0 and 0s.
func TestAppsTableOfAnAppWithoutACurrentRevision(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	tableStyle{now: now}.printApps(&out, []projections.AppView{{Name: "typo", UpdatedAt: now}})
	_, row, _ := strings.Cut(out.String(), "\n")
	if fields := strings.Fields(row); len(fields) < 6 || fields[1] != "-" || fields[4] != "-" || fields[5] != "-" {
		t.Fatalf("row %q; want - for the current revision, MIN/MAX and KEEP ALIVE", row)
	}
}
