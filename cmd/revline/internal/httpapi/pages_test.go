package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/revline/revline/cmd/revline/internal/httpapi"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/projections/queryapi"
)

// foldedModel is a read model the tests fold events into directly,
// without the processor, to build long lists fast.
type foldedModel struct {
	*projections.RevisionHistory
	seq uint64
}

var pagesT0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func (m *foldedModel) apply(t *testing.T, app string, ev events.Event, at time.Time) {
	t.Helper()
	m.seq++
	env := events.NewEnvelope(app, ev, events.Metadata{Actor: "ci@build"}, at)
	env.Sequence = m.seq
	if !m.Apply(env) {
		t.Fatalf("event %d not applied", m.seq)
	}
}

// newPagedStack serves the read routes from a model of its own, filled by
// fill.
func newPagedStack(t *testing.T, fill func(m *foldedModel)) (*stack, *foldedModel) {
	t.Helper()
	m := &foldedModel{RevisionHistory: projections.NewRevisionHistory()}
	fill(m)
	s := newStack(t, func(cfg *httpapi.Config) { cfg.Reader = queryapi.Local{Model: m.RevisionHistory} })
	return s, m
}

var nextLink = regexp.MustCompile(`^<([^>]+)>; rel="next"$`)

// follow GETs path and every next page its Link headers point to, checks
// each page's headers agree, and returns every item in order with the
// number of pages.
func follow[T any](t *testing.T, s *stack, path string) ([]T, int) {
	t.Helper()
	var all []T
	pages := 0
	for path != "" {
		r := s.do(t, "GET", path, nil)
		items := ok[[]T](t, r, http.StatusOK)
		pages++
		all = append(all, items...)
		link, token := r.header.Get("Link"), r.header.Get(httpapi.NextPageTokenHeader)
		if link == "" {
			if token != "" {
				t.Fatalf("page %d: token %q without a Link", pages, token)
			}
			break
		}
		m := nextLink.FindStringSubmatch(link)
		if m == nil {
			t.Fatalf("page %d: Link %q, want <...>; rel=\"next\"", pages, link)
		}
		next, err := url.Parse(m[1])
		if err != nil || next.Query().Get("page_token") != token || token == "" {
			t.Fatalf("page %d: Link %q does not carry the token %q", pages, link, token)
		}
		if len(items) == 0 {
			t.Fatalf("page %d: empty, with a next page", pages)
		}
		path = m[1]
	}
	return all, pages
}

func TestListRevisionsPagesThroughTwentyThousand(t *testing.T) {
	t.Parallel()
	const n = 20_000
	s, m := newPagedStack(t, func(m *foldedModel) {
		for i := range n {
			id := fmt.Sprintf("rev-%05d", (i*7919)%n)
			m.apply(t, "big", events.RevisionCreated{RevisionID: id, Command: "run $PORT", Message: "revision " + id},
				pagesT0.Add(time.Duration(i/3)*time.Second))
		}
	})
	var want []string
	for _, r := range m.Revisions("big") {
		want = append(want, r.RevisionID)
	}

	revs, pages := follow[projections.RevisionView](t, s, fmt.Sprintf("/v1/apps/big/revisions?limit=%d", queryapi.MaxPageSize))
	got := make([]string, len(revs))
	for i, r := range revs {
		got[i] = r.RevisionID
	}
	if !slices.Equal(got, want) {
		t.Fatalf("followed %d revisions; want the model's %d, newest first", len(got), len(want))
	}
	if pages != n/queryapi.MaxPageSize {
		t.Errorf("%d pages, want %d", pages, n/queryapi.MaxPageSize)
	}

	// Without a limit, a page holds the default number; the next link
	// keeps the other parameters.
	r := s.do(t, "GET", fmt.Sprintf("/v1/apps/big/revisions?min_sequence=%d", m.seq), nil)
	if first := ok[[]projections.RevisionView](t, r, http.StatusOK); len(first) != queryapi.DefaultPageSize || first[0].RevisionID != want[0] {
		t.Fatalf("default page: %d revisions starting %s", len(first), first[0].RevisionID)
	}
	if link := r.header.Get("Link"); !strings.Contains(link, fmt.Sprintf("min_sequence=%d", m.seq)) || !strings.HasPrefix(link, "</v1/apps/big/revisions?") {
		t.Errorf("Link %q: want the same path and min_sequence", link)
	}
}

func TestListPagesEdgeCases(t *testing.T) {
	t.Parallel()
	s, _ := newPagedStack(t, func(m *foldedModel) {
		for i := range 5 {
			m.apply(t, "web", events.RevisionCreated{RevisionID: fmt.Sprintf("rev-%d", i), Command: "run $PORT"}, pagesT0.Add(time.Duration(i)*time.Minute))
			m.apply(t, fmt.Sprintf("app-%d", i), events.RevisionCreated{RevisionID: "r", Command: "run $PORT"}, pagesT0)
		}
		for i := range 7 {
			state := events.RunnerIdle
			if i >= 4 {
				state = events.RunnerTerminated
			}
			m.apply(t, "web", events.RunnerStateChanged{RunnerID: fmt.Sprintf("runner-%d", i), RevisionID: "rev-0", State: state}, pagesT0.Add(time.Duration(i)*time.Second))
		}
	})

	for _, path := range []string{
		"/v1/apps/web/revisions?limit=0",
		"/v1/apps/web/revisions?limit=-1",
		fmt.Sprintf("/v1/apps/web/revisions?limit=%d", queryapi.MaxPageSize+1),
		"/v1/apps/web/revisions?limit=ten",
		"/v1/apps/web/revisions?limit=",
		"/v1/apps?limit=0",
		"/v1/apps/web/runners?limit=1001",
	} {
		if p := problem(t, s.do(t, "GET", path, nil), http.StatusBadRequest, "bad_request"); !strings.Contains(p.Detail, "limit") {
			t.Errorf("%s: detail %q does not mention the limit", path, p.Detail)
		}
	}
	for _, path := range []string{
		"/v1/apps/web/revisions?page_token=not-a-token",
		"/v1/apps/web/revisions?page_token=%21%21",
		"/v1/apps?page_token=e30", // {}
	} {
		if p := problem(t, s.do(t, "GET", path, nil), http.StatusBadRequest, "bad_request"); !strings.Contains(p.Detail, "page_token") {
			t.Errorf("%s: detail %q does not mention page_token", path, p.Detail)
		}
	}
	// A token of one list is refused by another.
	r := s.do(t, "GET", "/v1/apps/web/runners?limit=1", nil)
	problem(t, s.do(t, "GET", "/v1/apps/web/revisions?page_token="+r.header.Get(httpapi.NextPageTokenHeader), nil), http.StatusBadRequest, "bad_request")

	// The last page has no Link and no token; a limit of the list's
	// length is one page.
	r = s.do(t, "GET", "/v1/apps/web/revisions?limit=5", nil)
	if revs := ok[[]projections.RevisionView](t, r, http.StatusOK); len(revs) != 5 || r.header.Get("Link") != "" || r.header.Get(httpapi.NextPageTokenHeader) != "" {
		t.Fatalf("limit 5 of 5: %d revisions, Link %q, token %q", len(revs), r.header.Get("Link"), r.header.Get(httpapi.NextPageTokenHeader))
	}

	for _, tc := range []struct {
		path  string
		items int
		pages int
	}{
		{"/v1/apps/web/revisions?limit=2", 5, 3},
		{"/v1/apps?limit=2", 6, 3},
		{"/v1/apps/web/runners?limit=3", 4, 2},
		{"/v1/apps/web/runners?limit=3&state=all", 7, 3},
		{"/v1/apps/web/runners?limit=2&state=terminated", 3, 2},
		{"/v1/apps/web/runners?limit=2&state=draining", 0, 1},
	} {
		items, pages := follow[map[string]any](t, s, tc.path)
		if len(items) != tc.items || pages != tc.pages {
			t.Errorf("%s: %d items in %d pages, want %d in %d", tc.path, len(items), pages, tc.items, tc.pages)
		}
		if strings.Contains(tc.path, "state=terminated") {
			for _, it := range items {
				if it["state"] != "terminated" {
					t.Errorf("%s: runner %v", tc.path, it)
				}
			}
		}
	}
}
