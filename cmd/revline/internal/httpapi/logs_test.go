package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/revline/revline/cmd/revline/internal/httpapi"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/embedded/embeddedtest"
	"github.com/revline/revline/projections/queryapi"
)

// logStack is a stack whose API reads runner logs from dir, with a
// runner of web (runner) and one of api (other).
type logStack struct {
	*stack
	dir           string
	runner, other string
}

func newLogStack(t *testing.T) logStack {
	t.Helper()
	dir := t.TempDir()
	s := newStack(t, func(c *httpapi.Config) {
		local := c.Reader.(queryapi.Local)
		local.Logs = queryapi.LogDir(dir)
		c.RunnerLogs = local
	})
	ls := logStack{stack: s, dir: dir, runner: uuid.Must(uuid.NewV7()).String(), other: uuid.Must(uuid.NewV7()).String()}
	for app, runner := range map[string]string{"web": ls.runner, "api": ls.other} {
		rev := s.deployed(t, app, nil)
		s.execute(t, app, events.ReportRunner{RunnerID: runner, RevisionID: rev, State: events.RunnerIdle, PID: 100, Port: 8000})
	}
	return ls
}

// write appends text to the log of runner, one of app web's.
func (s logStack) write(t *testing.T, runner, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(s.dir, "web"), 0o750); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(s.dir, "web", runner+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

func TestRunnerLogsOverHTTP(t *testing.T) {
	t.Parallel()
	s := newLogStack(t)
	var b strings.Builder
	for i := range 150 {
		fmt.Fprintf(&b, "line %d \x1b[31m<red>\n", i)
	}
	s.write(t, s.runner, b.String())
	path := "/v1/apps/web/runners/" + s.runner + "/logs"

	page := ok[queryapi.LogPage](t, s.do(t, "GET", path, nil), http.StatusOK)
	if len(page.Lines) != queryapi.DefaultLogTail || page.Lines[0].Text != "line 50 \x1b[31m<red>" || page.More || page.NextOffset != int64(b.Len()) {
		t.Fatalf("default tail: %d lines from %q, more %v, next %d", len(page.Lines), page.Lines[0].Text, page.More, page.NextOffset)
	}
	page = ok[queryapi.LogPage](t, s.do(t, "GET", path+"?tail=2", nil), http.StatusOK)
	if len(page.Lines) != 2 || page.Lines[1].Text != "line 149 \x1b[31m<red>" {
		t.Fatalf("tail 2: %+v", page.Lines)
	}
	// Follow: ask from next_offset.
	s.write(t, s.runner, "appended\n")
	page = ok[queryapi.LogPage](t, s.do(t, "GET", fmt.Sprintf("%s?after_offset=%d", path, page.NextOffset), nil), http.StatusOK)
	if len(page.Lines) != 1 || page.Lines[0].Text != "appended" {
		t.Fatalf("after the offset: %+v", page.Lines)
	}
	// An offset past the end (the log was rotated since) starts over.
	page = ok[queryapi.LogPage](t, s.do(t, "GET", path+"?after_offset=99999999", nil), http.StatusOK)
	if len(page.Lines) == 0 || page.Lines[0].Offset != 0 || !page.Restarted {
		t.Fatalf("after an offset past the end: %d lines, restarted %v; want the log from 0, restarted", len(page.Lines), page.Restarted)
	}
	// The JSON keys are the documented ones.
	var raw map[string]any
	if err := json.Unmarshal(s.do(t, "GET", path+"?tail=1", nil).body, &raw); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(raw), sorted("lines", "next_offset", "more", "size", "terminated"); !slices.Equal(got, want) {
		t.Fatalf("keys %v, want %v", got, want)
	}

	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{
		{"/v1/apps/web/runners/" + uuid.NewString() + "/logs", http.StatusNotFound, "runner_not_found"},
		{"/v1/apps/web/runners/" + s.other + "/logs", http.StatusNotFound, "runner_not_found"},
		{"/v1/apps/nope/runners/" + s.runner + "/logs", http.StatusNotFound, "app_not_found"},
		{"/v1/apps/web/runners/" + url.PathEscape("../../etc/passwd") + "/logs", http.StatusBadRequest, "bad_request"},
		{"/v1/apps/web/runners/..%2F..%2F..%2Fetc%2Fpasswd/logs", http.StatusBadRequest, "bad_request"},
		{"/v1/apps/web/runners/runner-1/logs", http.StatusBadRequest, "bad_request"},
		// Dot segments are cleaned (and redirected) before any route runs.
		{"/v1/apps/web/runners/../../../../etc/passwd/logs", http.StatusNotFound, "not_found"},
		{"/v1/apps/web/runners/%2Fetc%2Fpasswd/logs", http.StatusBadRequest, "bad_request"},
		{path + "?tail=-1", http.StatusBadRequest, "bad_request"},
		{path + "?tail=10001", http.StatusBadRequest, "bad_request"},
		{path + "?tail=many", http.StatusBadRequest, "bad_request"},
		{path + "?after_offset=-1", http.StatusBadRequest, "bad_request"},
		{path + "?min_sequence=x", http.StatusBadRequest, "bad_request"},
		{"/v1/apps/Web/runners/" + s.runner + "/logs", http.StatusBadRequest, "invalid_app_name"},
	} {
		problem(t, s.do(t, "GET", tc.path, nil), tc.status, tc.code)
	}
}

// A tail larger than a page ends with More and a Link to the rest.
func TestRunnerLogsOverHTTPArePaged(t *testing.T) {
	t.Parallel()
	s := newLogStack(t)
	line := strings.Repeat("<", 200) // 1,200 bytes of JSON
	var b strings.Builder
	for range 2000 {
		b.WriteString(line + "\n")
	}
	s.write(t, s.runner, b.String())
	r := s.do(t, "GET", "/v1/apps/web/runners/"+s.runner+"/logs?tail=2000", nil)
	page := ok[queryapi.LogPage](t, r, http.StatusOK)
	if !page.More || len(r.body) > queryapi.DefaultLogPageBytes || len(page.Lines) == 0 {
		t.Fatalf("first page: more %v, %d bytes, %d lines", page.More, len(r.body), len(page.Lines))
	}
	total := len(page.Lines)
	for page.More {
		link := r.header.Get("Link")
		next, ok2 := strings.CutPrefix(link, "<")
		next, _, ok3 := strings.Cut(next, ">")
		if !ok2 || !ok3 || !strings.Contains(next, fmt.Sprintf("after_offset=%d", page.NextOffset)) || strings.Contains(next, "tail=") {
			t.Fatalf("Link %q, want the next page from %d", link, page.NextOffset)
		}
		r = s.do(t, "GET", next, nil)
		page = ok[queryapi.LogPage](t, r, http.StatusOK)
		total += len(page.Lines)
	}
	if total != 2000 || r.header.Get("Link") != "" {
		t.Fatalf("%d lines in all, last Link %q", total, r.header.Get("Link"))
	}
}

// Without runner logs (a replica whose RunnerLogs asks NATS, where no
// server with logs answers), the route says so.
func TestRunnerLogsOverHTTPUnavailable(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.Start(t)
	nc, _ := embeddedtest.Connect(t, srv)
	for name, s := range map[string]*stack{
		"none":   newStack(t),
		"client": newStack(t, func(c *httpapi.Config) { c.RunnerLogs = queryapi.NewClient(nc) }),
	} {
		p := problem(t, s.do(t, "GET", "/v1/apps/web/runners/"+uuid.NewString()+"/logs", nil), http.StatusServiceUnavailable, "runner_logs_unavailable")
		if !strings.Contains(p.Detail, "runs the runners") {
			t.Errorf("%s: detail %q", name, p.Detail)
		}
	}
}
