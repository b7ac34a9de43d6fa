package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/revline/revline/cmd/revline/internal/cli"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/embedded/embeddedtest"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/projections/queryapi"
)

// listServer is a NATS server with Revline's event stream (the CLI checks
// it is there) and the query service answering from model, which the
// tests fold events into directly.
type listServer struct {
	url   string
	model *projections.RevisionHistory
	seq   uint64
	// maxPayload is the most a NATS message may carry on this server.
	maxPayload int64
}

func newListServer(t *testing.T) *listServer {
	t.Helper()
	srv := embeddedtest.Start(t)
	nc, js := embeddedtest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := events.NewJetStreamStore(ctx, events.JetStreamStoreConfig{JetStream: js, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	s := &listServer{url: srv.ClientURL(), model: projections.NewRevisionHistory(), maxPayload: nc.MaxPayload()}
	svc, err := queryapi.Serve(nc, queryapi.Local{Model: s.model}, cli.Version)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	return s
}

var listT0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func (s *listServer) apply(t *testing.T, app string, ev events.Event, at time.Time) {
	t.Helper()
	s.seq++
	env := events.NewEnvelope(app, ev, events.Metadata{Actor: "ci@build"}, at)
	env.Sequence = s.seq
	if !s.model.Apply(env) {
		t.Fatalf("event %d not applied", s.seq)
	}
}

// revisions creates n revisions of app, one a second; ids do not follow
// the creation order.
func (s *listServer) revisions(t *testing.T, app string, n int) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("rev-%05d", (i*7919)%n)
		s.apply(t, app, events.RevisionCreated{
			RevisionID: id, Command: "python3 -m http.server $PORT", Code: events.DefaultCodeParams(), Runtime: events.DefaultRuntimeParams(),
			Message: "revision " + id,
		}, listT0.Add(time.Duration(i)*time.Second))
	}
}

// runCLI runs the CLI against s with a deadline that is only a safety net.
func (s *listServer) runCLI(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := cli.Main(ctx, append(args, "--nats-url", s.url), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func decodeRows[T any](t *testing.T, r result) []T {
	t.Helper()
	if r.code != cli.ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	var rows []T
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("-o json output is not a JSON array: %v", err)
	}
	return rows
}

// The case: `apps list-rev` of an app whose list is far larger
// than the max payload shows every revision, newest first.
func TestListRevShowsTwentyThousandRevisions(t *testing.T) {
	t.Parallel()
	s := newListServer(t)
	s.revisions(t, "big", 20_000)
	var want []string
	for _, r := range s.model.Revisions("big") {
		want = append(want, r.RevisionID)
	}
	if whole, err := json.Marshal(s.model.Revisions("big")); err != nil || int64(len(whole)) <= s.maxPayload {
		t.Fatalf("the list is %d bytes (%v), within the max payload (%d): the test would show nothing", len(whole), err, s.maxPayload)
	}

	revs := decodeRows[projections.RevisionView](t, s.runCLI(t, "apps", "list-rev", "big", "-o", "json"))
	got := make([]string, len(revs))
	for i, r := range revs {
		got[i] = r.RevisionID
	}
	if !slices.Equal(got, want) {
		t.Fatalf("list-rev -o json: %d revisions; want the %d of the model, newest first", len(got), len(want))
	}

	table := s.runCLI(t, "apps", "list-rev", "big", "--limit", "3")
	rows := lines(t, table.stdout)
	if table.code != cli.ExitOK || len(rows) != 1+3+1 { // header, rows, legend
		t.Fatalf("list-rev --limit 3: exit %d, %d lines, stderr %q", table.code, len(rows), table.stderr)
	}
	for i, id := range want[:3] {
		if !strings.Contains(rows[1+i], id) {
			t.Errorf("row %d %q, want revision %s", i, rows[1+i], id)
		}
	}
}

// `apps list` and `apps runners` follow every page too.
func TestListCommandsFollowEveryPage(t *testing.T) {
	t.Parallel()
	s := newListServer(t)
	const apps, runners = queryapi.MaxPageSize + 7, queryapi.MaxPageSize + 3
	for i := range apps {
		s.apply(t, fmt.Sprintf("app-%04d", i), events.RevisionCreated{RevisionID: "r1", Command: "run $PORT"}, listT0)
	}
	for i := range runners {
		state := events.RunnerIdle
		if i%2 == 1 {
			state = events.RunnerTerminated
		}
		s.apply(t, "app-0000", events.RunnerStateChanged{RunnerID: fmt.Sprintf("runner-%04d", i), RevisionID: "r1", State: state, PID: 100 + i, Port: 40000 + i}, listT0.Add(time.Duration(i)*time.Millisecond))
	}

	listed := decodeRows[projections.AppView](t, s.runCLI(t, "apps", "list", "-o", "json"))
	if len(listed) != apps || listed[0].Name != "app-0000" || listed[apps-1].Name != fmt.Sprintf("app-%04d", apps-1) {
		t.Fatalf("apps list: %d apps, want %d by name", len(listed), apps)
	}
	if limited := decodeRows[projections.AppView](t, s.runCLI(t, "apps", "list", "-o", "json", "--limit", "2")); len(limited) != 2 || limited[1].Name != "app-0001" {
		t.Fatalf("apps list --limit 2: %+v", limited)
	}

	// The shell completes an APP with the server's apps, from every page.
	last := fmt.Sprintf("app-%04d", apps-1)
	var tens []string
	for i := range apps {
		if name := fmt.Sprintf("app-%04d", i); strings.HasPrefix(name, "app-001") {
			tens = append(tens, name)
		}
	}
	for prefix, want := range map[string][]string{"app-001": tens, last: {last}, "nope": nil} {
		r := run(t, "__completeNoDesc", "apps", "list-rev", "--nats-url", s.url, prefix)
		if got := lines(t, r.stdout); r.code != cli.ExitOK || !slices.Equal(got[:len(got)-1], want) || got[len(got)-1] != ":4" {
			t.Fatalf("completion of %q: exit %d, %q, want %q then :4", prefix, r.code, got, want)
		}
	}

	for _, tc := range []struct {
		state string
		want  int
	}{
		{"all", runners},
		{"", (runners + 1) / 2},
		{"terminated", runners / 2},
		{"draining", 0},
	} {
		args := []string{"apps", "runners", "app-0000", "-o", "json"}
		if tc.state != "" {
			args = append(args, "--state", tc.state)
		}
		rows := decodeRows[projections.RunnerView](t, s.runCLI(t, args...))
		if len(rows) != tc.want {
			t.Fatalf("runners --state %q: %d, want %d", tc.state, len(rows), tc.want)
		}
		for i, r := range rows {
			if tc.state != "all" && tc.state != "" && string(r.State) != tc.state {
				t.Fatalf("runners --state %q: row %d is %s", tc.state, i, r.State)
			}
			if i > 0 && r.RunnerID <= rows[i-1].RunnerID {
				t.Fatalf("runners --state %q: %s after %s, want oldest first", tc.state, r.RunnerID, rows[i-1].RunnerID)
			}
		}
	}
}

func TestLimitMustBePositive(t *testing.T) {
	t.Parallel()
	for _, limit := range []string{"0", "-3", "many"} {
		r := run(t, "apps", "list-rev", "my-app", "--limit", limit, "--nats-url", unreachable)
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, "positive whole number") {
			t.Errorf("--limit %s: exit %d, stderr %q; want a usage error", limit, r.code, r.stderr)
		}
	}
}

// A revision too large for one NATS message fails the command at once
// with a sentence, instead of leaving it waiting for its timeout.
func TestListRevOfARevisionTooLargeFailsAtOnce(t *testing.T) {
	t.Parallel()
	s := newListServer(t)
	// Larger than the max payload once in JSON, where every quote is
	// escaped. The decider refuses such a command today; the log may hold
	// one from before its limits.
	s.apply(t, "web", events.RevisionCreated{RevisionID: "rev-huge", Command: strings.Repeat(`"`, int(s.maxPayload)/2+1)}, listT0)
	r := s.runCLI(t, "apps", "list-rev", "web")
	if r.code != cli.ExitFailed || !strings.Contains(r.stderr, "rev-huge") || !strings.Contains(r.stderr, "max_payload") {
		t.Fatalf("exit %d, stderr %q; want exit 1 naming the revision and its size", r.code, r.stderr)
	}
}
