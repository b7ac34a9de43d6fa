package httpapi_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/revline/revline/cmd/revline/internal/httpapi"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections/audit"
)

// auditHistory deploys v1 and v2 of web through the API, scales it, rolls
// back to v1 and deploys other.
func auditHistory(t *testing.T, s *stack) {
	t.Helper()
	s.deployed(t, "web", map[string]any{"message": "first"})
	s.deployed(t, "web", nil)
	ok[map[string]any](t, s.do(t, "POST", "/v1/apps/web/scale", map[string]any{"min_concurrency": 2}, s.as(t, "carol")...), http.StatusOK)
	ok[map[string]any](t, s.do(t, "POST", "/v1/apps/web/set-rev", map[string]any{"revision": "v1", "message": "v2 is slow"}, s.as(t, "alice")...), http.StatusOK)
	s.deployed(t, "other", nil)
}

func TestAuditPagesAndFilters(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	auditHistory(t, s)

	page := ok[audit.Page](t, s.do(t, "GET", "/v1/audit?app=web&type=app.*", nil), http.StatusOK)
	var got []string
	for _, e := range page.Entries {
		got = append(got, e.Actor+": "+e.Summary)
	}
	want := []string{
		`worker:runner: deployed v1 (first deploy: runtime params from the deploy): "first"`,
		`worker:runner: deployed v2 (runtime params kept from v1)`,
		`token:carol: scaled min_concurrency 0→2`,
		`token:alice: rolled back to v1 (runtime params kept from v2): "v2 is slow"`,
	}
	if !slices.Equal(got, want) || page.More {
		t.Fatalf("audit of web's app.* events:\n got %q (more %v)\nwant %q", got, page.More, want)
	}

	byActor := ok[audit.Page](t, s.do(t, "GET", "/v1/audit?actor=token:carol", nil), http.StatusOK)
	if len(byActor.Entries) != 1 || byActor.Entries[0].Type != "app.scaled" {
		t.Fatalf("carol's entries: %+v", byActor.Entries)
	}
	byRevision := ok[audit.Page](t, s.do(t, "GET", "/v1/audit?app=web&revision=2&type=revision.*", nil), http.StatusOK)
	if len(byRevision.Entries) != 2 || byRevision.Entries[0].Type != "revision.created" || byRevision.Entries[1].Type != "revision.deployed" {
		t.Fatalf("v2's revision events: %+v", byRevision.Entries)
	}

	// Pages of one entry, following the Link header, give the whole log.
	all := ok[audit.Page](t, s.do(t, "GET", "/v1/audit", nil), http.StatusOK)
	var paged []uint64
	r := s.do(t, "GET", "/v1/audit?limit=1", nil)
	for range len(all.Entries) + 1 {
		p := ok[audit.Page](t, r, http.StatusOK)
		for _, e := range p.Entries {
			paged = append(paged, e.Sequence)
		}
		link := r.header.Get("Link")
		if !p.More {
			if link != "" {
				t.Fatalf("last page has a Link header %q", link)
			}
			break
		}
		next := strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
		if !strings.HasPrefix(next, "/v1/audit?") || !strings.Contains(next, "after=") {
			t.Fatalf("Link = %q", link)
		}
		r = s.do(t, "GET", next, nil)
	}
	var whole []uint64
	for _, e := range all.Entries {
		whole = append(whole, e.Sequence)
	}
	if !slices.Equal(paged, whole) || len(whole) < 10 {
		t.Fatalf("pages of 1 = %v, want %v", paged, whole)
	}
}

func TestAuditRefusesBadParameters(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	auditHistory(t, s)
	for _, tt := range []struct {
		query  string
		status int
		code   string
	}{
		{"since=yesterday", http.StatusBadRequest, "bad_request"},
		{"until=-3h", http.StatusBadRequest, "bad_request"},
		{"type=revision.%5B", http.StatusBadRequest, "bad_request"},
		{"after=-1", http.StatusBadRequest, "bad_request"},
		{"limit=0", http.StatusBadRequest, "bad_request"},
		{"limit=1001", http.StatusBadRequest, "bad_request"},
		{"app=a.b", http.StatusBadRequest, "bad_request"},
		{"revision=v1", http.StatusBadRequest, "bad_request"},
		{"app=web&revision=v9", http.StatusNotFound, "revision_not_found"},
		{"app=web&revision=abc", http.StatusBadRequest, "revision_ref_too_short"},
		{"since=1h+ago&until=2h+ago", http.StatusBadRequest, "bad_request"},
	} {
		problem(t, s.do(t, "GET", "/v1/audit?"+tt.query, nil), tt.status, tt.code)
		problem(t, s.do(t, "GET", "/v1/audit/stream?"+tt.query, nil), tt.status, tt.code)
	}
}

// sseReader reads server-sent events from a stream.
type sseReader struct {
	t    *testing.T
	scan *bufio.Scanner
}

// next returns the next event's id and data, skipping comments.
func (r sseReader) next() (string, audit.Entry) {
	r.t.Helper()
	var id string
	for r.scan.Scan() {
		line := r.scan.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			var e audit.Entry
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &e); err != nil {
				r.t.Fatalf("data line %q: %v", line, err)
			}
			return id, e
		}
	}
	r.t.Fatalf("the stream ended: %v", r.scan.Err())
	return "", audit.Entry{}
}

func openStream(t *testing.T, s *stack, query string, headers ...string) sseReader {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), "GET", s.url+"/v1/audit/stream?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.admin)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return sseReader{t: t, scan: bufio.NewScanner(resp.Body)}
}

func TestAuditStreamSendsTheLogThenWhatHappens(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	auditHistory(t, s)
	stream := openStream(t, s, "app=web&type=app.scaled")
	id, first := stream.next()
	if first.Summary != "scaled min_concurrency 0→2" || id == "" {
		t.Fatalf("first event: id %q, %+v", id, first)
	}
	ok[map[string]any](t, s.do(t, "POST", "/v1/apps/other/scale", map[string]any{"max_concurrency": 3}), http.StatusOK)
	ok[map[string]any](t, s.do(t, "POST", "/v1/apps/web/scale", map[string]any{"keep_alive": "5m"}, s.as(t, "dave")...), http.StatusOK)
	id2, second := stream.next()
	if second.Summary != "scaled keep_alive 60s→300s" || second.Actor != "token:dave" || id2 <= id && len(id2) == len(id) {
		t.Fatalf("live event: id %q, %+v", id2, second)
	}

	// A client that reconnects with Last-Event-ID gets what came after.
	resumed := openStream(t, s, "app=web&type=app.scaled", "Last-Event-ID", id)
	if id3, again := resumed.next(); id3 != id2 || again.Summary != second.Summary {
		t.Fatalf("resumed after %s: id %q, %+v; want %s", id, id3, again, id2)
	}
}

func TestProvenanceTimeTravelAndDiff(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	auditHistory(t, s) // web: v1, v2, scale to min 2, rollback to v1

	config := ok[audit.Config](t, s.do(t, "GET", "/v1/apps/web/config", nil), http.StatusOK)
	var minimum audit.Setting
	for _, p := range config.Params {
		if p.Param == "min_concurrency" {
			minimum = p
		}
	}
	if config.Number != 1 || minimum.Value != "2" || minimum.Source.How != "inherited from v2 on rollback to v1" || minimum.Source.Message != "v2 is slow" ||
		minimum.Origin == nil || minimum.Origin.How != "scale" || minimum.Origin.By != "token:carol" {
		t.Fatalf("config: v%d, min_concurrency %+v, origin %+v", config.Number, minimum, minimum.Origin)
	}
	history := ok[[]audit.Setting](t, s.do(t, "GET", "/v1/apps/web/config/min_concurrency/history", nil), http.StatusOK)
	if len(history) != 4 || history[2].Source.How != "scale" {
		t.Fatalf("min_concurrency history: %+v", history)
	}
	problem(t, s.do(t, "GET", "/v1/apps/web/config/min-concurrency/history", nil), http.StatusBadRequest, "bad_request")
	problem(t, s.do(t, "GET", "/v1/apps/nobody/config", nil), http.StatusNotFound, "app_not_found")

	// The revisions when v2 had just been deployed, and the config then.
	before := ok[audit.Config](t, s.do(t, "GET", "/v1/apps/web/config?at_seq=6", nil), http.StatusOK)
	if before.Number != 2 || before.Sequence != 6 {
		t.Fatalf("config at 6: v%d at %d", before.Number, before.Sequence)
	}
	r := s.do(t, "GET", "/v1/apps/web/revisions?at_seq=6", nil)
	then := ok[[]map[string]any](t, r, http.StatusOK)
	if len(then) != 2 || then[0]["number"] != 2.0 || then[0]["current"] != true || then[0]["min_concurrency"] != 0.0 || r.header.Get(httpapi.AsOfSequenceHeader) != "6" {
		t.Fatalf("revisions at 6: %v (as of %s)", then, r.header.Get(httpapi.AsOfSequenceHeader))
	}
	problem(t, s.do(t, "GET", "/v1/apps/web/revisions?at=1h+ago", nil), http.StatusNotFound, "app_not_found")
	problem(t, s.do(t, "GET", "/v1/apps/web/revisions?at=someday", nil), http.StatusBadRequest, "bad_request")
	problem(t, s.do(t, "GET", "/v1/apps/web/revisions?at_seq=6&page_token=x", nil), http.StatusBadRequest, "bad_request")

	// A runner up then terminated: listed as it was at the first report.
	runnerID := "01a20000-0000-7000-a000-000000000001"
	up := s.execute(t, "web", events.ReportRunner{RunnerID: runnerID, RevisionID: before.Revision, State: events.RunnerIdle, PID: 42, Port: 9000})
	s.execute(t, "web", events.ReportRunner{RunnerID: runnerID, RevisionID: before.Revision, State: events.RunnerTerminated})
	live := ok[[]map[string]any](t, s.do(t, "GET", "/v1/apps/web/runners", nil), http.StatusOK)
	atUp := ok[[]map[string]any](t, s.do(t, "GET", fmt.Sprintf("/v1/apps/web/runners?at_seq=%d", up.LastSequence), nil), http.StatusOK)
	if len(live) != 0 || len(atUp) != 1 || atUp[0]["state"] != "idle" || atUp[0]["pid"] != 42.0 {
		t.Fatalf("runners now %v; at %d %v", live, up.LastSequence, atUp)
	}

	diff := ok[map[string]any](t, s.do(t, "GET", "/v1/apps/web/diff?a=v2&b=v1", nil), http.StatusOK)
	changes, _ := diff["changes"].([]any)
	if len(changes) != 1 || changes[0].(map[string]any)["field"] != "message" {
		t.Fatalf("diff v2 v1: %v", diff)
	}
	problem(t, s.do(t, "GET", "/v1/apps/web/diff?a=v2", nil), http.StatusBadRequest, "bad_request")
	problem(t, s.do(t, "GET", "/v1/apps/web/diff?a=v2&b=v9", nil), http.StatusNotFound, "revision_not_found")
}

// A server shutting down ends its event streams (http.Server.Shutdown
// would wait for them otherwise).
func TestCloseStreamsEndsTheAuditStream(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	auditHistory(t, s)
	stream := openStream(t, s, "app=web&type=app.scaled")
	if _, e := stream.next(); e.Type != "app.scaled" {
		t.Fatalf("first event: %+v", e)
	}
	s.handler.CloseStreams()
	for stream.scan.Scan() {
		if line := stream.scan.Text(); strings.HasPrefix(line, "data: ") {
			t.Fatalf("an event after CloseStreams: %s", line)
		}
	}
	if err := stream.scan.Err(); err != nil {
		t.Fatalf("the stream ended with %v, want its end", err)
	}
	// Streams opened afterwards end at once, with no event.
	late := openStream(t, s, "app=web")
	for late.scan.Scan() {
		if line := late.scan.Text(); strings.HasPrefix(line, "data: ") {
			t.Fatalf("an event on a stream opened after CloseStreams: %s", line)
		}
	}
}
