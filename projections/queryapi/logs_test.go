package queryapi_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/embedded/embeddedtest"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/projections/queryapi"
)

// runnerC is a runner of app api.
const runnerC = "0193f1c2-cccc-7000-8000-00000000000c"

// logFixture serves history, plus runner C of app api, with the runner
// logs of dir; the client asks over a connection of its own.
type logFixture struct {
	dir    string
	local  queryapi.Local
	client *queryapi.Client
}

func newLogFixture(t *testing.T, srv *server.Server) logFixture {
	t.Helper()
	if srv == nil {
		srv = embeddedtest.Start(t)
	}
	model := projections.NewRevisionHistory()
	envs := history()
	c := events.NewEnvelope("api", events.RunnerStateChanged{RunnerID: runnerC, RevisionID: rev1, State: events.RunnerIdle, PID: 102, Port: 40003},
		events.Metadata{Actor: "alice"}, t0.Add(time.Hour))
	c.Sequence = uint64(len(envs) + 1)
	for _, env := range append(envs, c) {
		if !model.Apply(env) {
			t.Fatalf("event %d not applied", env.Sequence)
		}
	}
	dir := t.TempDir()
	local := queryapi.Local{Model: model, Logs: queryapi.LogDir(dir)}
	serverConn, _ := embeddedtest.Connect(t, srv)
	clientConn, _ := embeddedtest.Connect(t, srv)
	svc, err := queryapi.Serve(serverConn, local, "0.1.0", queryapi.WithRunnerLogs(local))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	return logFixture{dir: dir, local: local, client: queryapi.NewClient(clientConn)}
}

// path returns the log file of app's runner.
func (f logFixture) path(app, runner string) string {
	return filepath.Join(f.dir, app, runner+".log")
}

func (f logFixture) write(t *testing.T, app, runner, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(f.dir, app), 0o750); err != nil {
		t.Fatal(err)
	}
	file, err := os.OpenFile(f.path(app, runner), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if _, err := file.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// both asks Local and the client, fails unless they agree, and returns
// the answer.
func (f logFixture) both(t *testing.T, ctx context.Context, app, runner string, req queryapi.LogRequest) queryapi.LogPage {
	t.Helper()
	return sameAnswer(t, fmt.Sprintf("logs of %s %s %+v", app, runner, req),
		func() (queryapi.LogPage, error) { return f.local.RunnerLogs(ctx, app, runner, req, 0) },
		func() (queryapi.LogPage, error) { return f.client.RunnerLogs(ctx, app, runner, req, 0) })
}

func offset(n int64) *int64 { return &n }

func texts(lines []queryapi.LogLine) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Text
	}
	return out
}

func TestRunnerLogsTail(t *testing.T) {
	t.Parallel()
	f := newLogFixture(t, nil)
	ctx := testContext(t)
	var b strings.Builder
	for i := range 250 {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	f.write(t, "web", runnerA, b.String())
	size := int64(b.Len())

	page := f.both(t, ctx, "web", runnerA, queryapi.LogRequest{Tail: queryapi.DefaultLogTail})
	if len(page.Lines) != 100 || page.Lines[0].Text != "line 150" || page.Lines[99].Text != "line 249" {
		t.Fatalf("tail 100: %d lines, %q .. %q", len(page.Lines), page.Lines[0].Text, page.Lines[len(page.Lines)-1].Text)
	}
	if page.NextOffset != size || page.More || page.Size != size || page.Terminated {
		t.Fatalf("tail 100: next %d, more %v, size %d, terminated %v; want next = size = %d", page.NextOffset, page.More, page.Size, page.Terminated, size)
	}
	if want := int64(strings.Index(b.String(), "line 150\n")); page.Lines[0].Offset != want || page.Lines[1].Offset != want+int64(len("line 150\n")) {
		t.Fatalf("offsets %d, %d; want %d and the next line's", page.Lines[0].Offset, page.Lines[1].Offset, want)
	}
	if page := f.both(t, ctx, "web", runnerA, queryapi.LogRequest{Tail: 3}); !reflect.DeepEqual(texts(page.Lines), []string{"line 247", "line 248", "line 249"}) {
		t.Fatalf("tail 3 = %q", texts(page.Lines))
	}
	if page := f.both(t, ctx, "web", runnerA, queryapi.LogRequest{Tail: queryapi.MaxLogTail}); len(page.Lines) != 250 || page.Lines[0].Offset != 0 {
		t.Fatalf("tail over the length: %d lines from %d, want all 250 from 0", len(page.Lines), page.Lines[0].Offset)
	}
	if page := f.both(t, ctx, "web", runnerA, queryapi.LogRequest{Tail: 0}); len(page.Lines) != 0 || page.NextOffset != size || page.More {
		t.Fatalf("tail 0 = %+v, want no line and the end of the log", page)
	}
	if page := f.both(t, ctx, "web", runnerA, queryapi.LogRequest{AfterOffset: offset(0)}); len(page.Lines) != 250 {
		t.Fatalf("from offset 0: %d lines, want 250", len(page.Lines))
	}

	// A last line without its newline is a line too, partial; empty
	// lines count.
	f.write(t, "web", runnerA, "\n\nno newline yet")
	page = f.both(t, ctx, "web", runnerA, queryapi.LogRequest{Tail: 3})
	want := []queryapi.LogLine{{Offset: size, Text: ""}, {Offset: size + 1, Text: ""}, {Offset: size + 2, Text: "no newline yet", Partial: true}}
	if !reflect.DeepEqual(page.Lines, want) || page.NextOffset != size+2+int64(len("no newline yet")) {
		t.Fatalf("tail 3 with a partial line = %+v, want %+v", page, want)
	}

	// The runner is known but has written nothing: an empty log.
	if page := f.both(t, ctx, "api", runnerC, queryapi.LogRequest{Tail: 10}); len(page.Lines) != 0 || page.NextOffset != 0 || page.Size != 0 || page.More {
		t.Fatalf("no log file: %+v", page)
	}
	// A terminated runner says so.
	f.write(t, "web", runnerB, "bye\n")
	if page := f.both(t, ctx, "web", runnerB, queryapi.LogRequest{Tail: 10}); !page.Terminated || len(page.Lines) != 1 {
		t.Fatalf("terminated runner: %+v", page)
	}
	// Runner ids are read in any case.
	if page := f.both(t, ctx, "web", strings.ToUpper(runnerB), queryapi.LogRequest{Tail: 10}); len(page.Lines) != 1 {
		t.Fatalf("upper-case runner id: %+v", page)
	}
}

// Following a log is asking from the last NextOffset: each answer holds
// what was appended since, a line written in two goes in two pieces.
func TestRunnerLogsFollow(t *testing.T) {
	t.Parallel()
	f := newLogFixture(t, nil)
	ctx := testContext(t)
	f.write(t, "web", runnerA, "listening on 127.0.0.1:4242\n")
	page := f.both(t, ctx, "web", runnerA, queryapi.LogRequest{Tail: 10})
	next := page.NextOffset
	if page := f.both(t, ctx, "web", runnerA, queryapi.LogRequest{AfterOffset: offset(next)}); len(page.Lines) != 0 || page.NextOffset != next || page.More {
		t.Fatalf("nothing new: %+v", page)
	}
	f.write(t, "web", runnerA, "GET / 200\nGET /x 404\nhalf a ")
	page = f.both(t, ctx, "web", runnerA, queryapi.LogRequest{AfterOffset: offset(next)})
	want := []queryapi.LogLine{{Offset: next, Text: "GET / 200"}, {Offset: next + 10, Text: "GET /x 404"}, {Offset: next + 21, Text: "half a ", Partial: true}}
	if !reflect.DeepEqual(page.Lines, want) || page.More {
		t.Fatalf("appended: %+v, want %+v", page.Lines, want)
	}
	next = page.NextOffset
	f.write(t, "web", runnerA, "line\n")
	page = f.both(t, ctx, "web", runnerA, queryapi.LogRequest{AfterOffset: offset(next)})
	if want := []queryapi.LogLine{{Offset: next, Text: "line"}}; !reflect.DeepEqual(page.Lines, want) {
		t.Fatalf("the rest of the line: %+v, want %+v", page.Lines, want)
	}
	next = page.NextOffset

	// The log is rotated: a follower's offset is past the end of the new
	// file, and it reads on from the start of that file.
	if err := os.Rename(f.path("web", runnerA), f.path("web", runnerA)+".1"); err != nil {
		t.Fatal(err)
	}
	f.write(t, "web", runnerA, "after the rotation\n")
	page = f.both(t, ctx, "web", runnerA, queryapi.LogRequest{AfterOffset: offset(next)})
	if want := []queryapi.LogLine{{Offset: 0, Text: "after the rotation"}}; !reflect.DeepEqual(page.Lines, want) || !page.Restarted || page.NextOffset != 19 {
		t.Fatalf("after a rotation: %+v, want %+v from the start, restarted", page, want)
	}
	page = f.both(t, ctx, "web", runnerA, queryapi.LogRequest{AfterOffset: offset(page.NextOffset)})
	if len(page.Lines) != 0 || page.Restarted {
		t.Fatalf("read on after the rotation: %+v, want nothing new", page)
	}
	// A log removed (its app deleted) is empty: a follower starts over.
	if err := os.Remove(f.path("web", runnerA)); err != nil {
		t.Fatal(err)
	}
	page = f.both(t, ctx, "web", runnerA, queryapi.LogRequest{AfterOffset: offset(page.NextOffset)})
	if len(page.Lines) != 0 || !page.Restarted || page.NextOffset != 0 {
		t.Fatalf("log removed: %+v, want an empty page from 0, restarted", page)
	}
}

// Nobody reads a file that is not the log of one of the app's runners.
func TestRunnerLogsRefuseWhatIsNotARunnerOfTheApp(t *testing.T) {
	t.Parallel()
	f := newLogFixture(t, nil)
	ctx := testContext(t)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("top secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.write(t, "api", runnerC, "api's runner\n")
	for _, tc := range []struct {
		name, app, runner, code string
	}{
		{"unknown runner", "web", "0193f1c2-cccc-7000-8000-0000000000ff", queryapi.CodeRunnerNotFound},
		{"runner of another app", "web", runnerC, queryapi.CodeRunnerNotFound},
		{"unknown app", "nope", runnerA, queryapi.CodeAppNotFound},
		{"path traversal", "web", "../../etc/passwd", queryapi.CodeBadRequest},
		{"path traversal to a file", "web", "../" + filepath.Base(filepath.Dir(secret)) + "/secret", queryapi.CodeBadRequest},
		{"absolute path", "web", secret, queryapi.CodeBadRequest},
		{"traversal after a UUID", "web", runnerA + "/../../etc/passwd", queryapi.CodeBadRequest},
		{"not a UUID", "web", "runner-1", queryapi.CodeBadRequest},
		{"empty", "web", "", queryapi.CodeBadRequest},
		{"UUID in braces", "web", "{" + runnerA + "}", queryapi.CodeBadRequest},
		{"URN", "web", "urn:uuid:" + runnerA, queryapi.CodeBadRequest},
		{"UUID without hyphens", "web", strings.ReplaceAll(runnerA, "-", ""), queryapi.CodeBadRequest},
		{"NUL", "web", runnerA + "\x00", queryapi.CodeBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for name, r := range map[string]queryapi.LogReader{"local": f.local, "client": f.client} {
				page, err := r.RunnerLogs(ctx, tc.app, tc.runner, queryapi.LogRequest{Tail: 10}, 0)
				wantCode(t, fmt.Sprintf("%s: %s (answer %+v)", name, tc.runner, page), err, tc.code)
			}
		})
	}
	// LogDir checks the id itself too.
	readOpts := queryapi.LogReadOptions{Tail: 10, AfterOffset: -1, MaxBytes: 1 << 20, MaxLineBytes: 1 << 10}
	if _, err := queryapi.LogDir(f.dir).Read(ctx, "web", "../../etc/passwd", readOpts); err == nil {
		t.Fatal("LogDir read ../../etc/passwd")
	}
	// And the app's name.
	f.write(t, "api", runnerC, "api's runner\n")
	if page, err := queryapi.LogDir(filepath.Join(f.dir, "web")).Read(ctx, "../api", runnerC, readOpts); err == nil {
		t.Fatalf("LogDir read the log of app ../api: %+v", page)
	}
	// A symbolic link in a log's place is not followed.
	f.write(t, "web", runnerB, "")
	if err := os.Symlink(secret, f.path("web", runnerA)); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]queryapi.LogReader{"local": f.local, "client": f.client} {
		page, err := r.RunnerLogs(ctx, "web", runnerA, queryapi.LogRequest{Tail: 10}, 0)
		if err == nil || strings.Contains(fmt.Sprint(page), "secret") {
			t.Errorf("%s: a symbolic link to %s was followed: %+v, %v", name, secret, page, err)
		}
	}
}

func TestRunnerLogsRefuseBadRequests(t *testing.T) {
	t.Parallel()
	f := newLogFixture(t, nil)
	ctx := testContext(t)
	for _, tc := range []struct {
		name string
		req  queryapi.LogRequest
	}{
		{"negative tail", queryapi.LogRequest{Tail: -1}},
		{"tail over the maximum", queryapi.LogRequest{Tail: queryapi.MaxLogTail + 1}},
		{"negative offset", queryapi.LogRequest{AfterOffset: offset(-1)}},
	} {
		for name, r := range map[string]queryapi.LogReader{"local": f.local, "client": f.client} {
			_, err := r.RunnerLogs(ctx, "web", runnerA, tc.req, 0)
			wantCode(t, name+": "+tc.name, err, queryapi.CodeBadRequest)
		}
	}
	for _, app := range []string{"", "Web", "a.b", ">"} {
		_, err := f.client.RunnerLogs(ctx, app, runnerA, queryapi.LogRequest{}, 0)
		wantCode(t, "app "+app, err, queryapi.CodeBadRequest)
	}
}

// Without logs, or without a server that serves them, a query says so.
func TestRunnerLogsUnavailable(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	f := newFixture(t) // serves no runner logs: a --no-runners replica
	_, err := f.client.RunnerLogs(ctx, "web", runnerA, queryapi.LogRequest{Tail: 10}, 0)
	if qerr := wantCode(t, "no server with runner logs", err, queryapi.CodeRunnerLogsUnavailable); !strings.Contains(qerr.Message, "--no-runners") {
		t.Errorf("message %q does not explain", qerr.Message)
	}
	_, err = f.local.RunnerLogs(ctx, "web", runnerA, queryapi.LogRequest{Tail: 10}, 0)
	wantCode(t, "Local without Logs", err, queryapi.CodeRunnerLogsUnavailable)
	// Refusals that need no log come first.
	_, err = f.local.RunnerLogs(ctx, "web", runnerC, queryapi.LogRequest{Tail: 10}, 0)
	wantCode(t, "Local without Logs, runner of another app", err, queryapi.CodeRunnerNotFound)
}

// A log larger than a message, with a line larger than a message, is
// read in pages that each fit, and the pages put together are the log.
// Control characters and <, > and & (which JSON writes \u00XX, six bytes
// for one) come back as they were written.
func TestRunnerLogsAreReadInPagesThatFitTheMaxPayload(t *testing.T) {
	t.Parallel()
	const maxPayload = 64 << 10
	f := newLogFixture(t, startServerWithMaxPayload(t, maxPayload))
	ctx := testContext(t)
	var b strings.Builder
	b.WriteString(strings.Repeat("\x1b[31m<red>&\x07", 30000) + "\n") // 330 KB of JSON-expanded bytes on one line
	for i := range 20000 {
		fmt.Fprintf(&b, "%05d héllo wörld \t\r\x00 <&>\n", i)
	}
	b.WriteString(strings.Repeat("€", 40000)) // a long unterminated line of 3-byte characters
	f.write(t, "web", runnerA, b.String())
	log := b.String()

	var (
		got   strings.Builder
		pages int
		next  = int64(0)
	)
	for {
		page, err := f.client.RunnerLogs(ctx, "web", runnerA, queryapi.LogRequest{AfterOffset: offset(next)}, 0)
		if err != nil {
			t.Fatalf("page %d from %d: %v", pages, next, err)
		}
		pages++
		for _, line := range page.Lines {
			if int64(got.Len()) != line.Offset {
				t.Fatalf("page %d: a line at %d after %d bytes", pages, line.Offset, got.Len())
			}
			if len(line.Text) > queryapi.MaxLogLineBytes {
				t.Fatalf("a piece of %d bytes", len(line.Text))
			}
			got.WriteString(line.Text)
			if !line.Partial {
				got.WriteByte('\n')
			}
		}
		if !page.More {
			break
		}
		if page.NextOffset <= next {
			t.Fatalf("page %d does not move on from %d", pages, next)
		}
		next = page.NextOffset
	}
	if got.String() != log {
		t.Fatalf("the pages put together differ from the log (%d bytes, want %d)", got.Len(), len(log))
	}
	t.Logf("%d pages for %d bytes", pages, len(log))
	if pages < len(log)/maxPayload {
		t.Fatalf("%d pages for %d bytes over a %d-byte max payload", pages, len(log), maxPayload)
	}

	// A tail larger than a message comes in pages as well: the first is
	// its start, with More.
	page, err := f.client.RunnerLogs(ctx, "web", runnerA, queryapi.LogRequest{Tail: queryapi.MaxLogTail}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !page.More || len(page.Lines) == 0 || page.Lines[0].Text != fmt.Sprintf("%05d héllo wörld \t\r\x00 <&>", 20000-queryapi.MaxLogTail+1) {
		t.Fatalf("tail %d: more %v, first line %+v", queryapi.MaxLogTail, page.More, page.Lines[:min(1, len(page.Lines))])
	}
	// Pieces of a long line are cut between characters.
	page, err = f.client.RunnerLogs(ctx, "web", runnerA, queryapi.LogRequest{Tail: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range page.Lines {
		if strings.Trim(line.Text, "€") != "" {
			t.Fatalf("a piece of the € line holds %q", line.Text[:min(len(line.Text), 20)])
		}
	}
}

// The query service answers runner logs on the replica that was given
// them only: another one registers no endpoint, so queries go to the
// first one.
func TestOnlyTheServerWithLogsAnswersRunnerLogs(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.Start(t)
	f := newLogFixture(t, srv)
	f.write(t, "web", runnerA, "from the server with logs\n")
	// A replica without logs, on the same NATS.
	replicaConn, _ := embeddedtest.Connect(t, srv)
	svc, err := queryapi.Serve(replicaConn, queryapi.Local{Model: f.local.Model}, "0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	ctx := testContext(t)
	for i := range 20 {
		page, err := f.client.RunnerLogs(ctx, "web", runnerA, queryapi.LogRequest{Tail: 1}, 0)
		if err != nil || len(page.Lines) != 1 {
			t.Fatalf("query %d: %+v, %v", i, page, err)
		}
	}
}

// The raw subject takes the documented JSON.
func TestRunnerLogsOverRawNATS(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.Start(t)
	f := newLogFixture(t, srv)
	f.write(t, "web", runnerA, "a\nb\nc\n")
	nc, _ := embeddedtest.Connect(t, srv)
	for body, want := range map[string]string{
		`{"app":"web","runner_id":"` + runnerA + `"}`:                     `{"lines":[{"offset":0,"text":"a"},{"offset":2,"text":"b"},{"offset":4,"text":"c"}],"next_offset":6,"more":false,"size":6,"terminated":false}`,
		`{"app":"web","runner_id":"` + runnerA + `","tail":1}`:            `{"lines":[{"offset":4,"text":"c"}],"next_offset":6,"more":false,"size":6,"terminated":false}`,
		`{"app":"web","runner_id":"` + runnerA + `","after_offset":2}`:    `{"lines":[{"offset":2,"text":"b"},{"offset":4,"text":"c"}],"next_offset":6,"more":false,"size":6,"terminated":false}`,
		`{"app":"web","runner_id":"` + runnerA + `","tail":0}`:            `{"lines":[],"next_offset":6,"more":false,"size":6,"terminated":false}`,
		`{"app":"web","runner_id":"` + runnerA + `","after_offset":6}`:    `{"lines":[],"next_offset":6,"more":false,"size":6,"terminated":false}`,
		`{"app":"web","runner_id":"` + runnerA + `","tail":1,"all":true}`: `{"lines":[{"offset":4,"text":"c"}],"next_offset":6,"more":false,"size":6,"terminated":false}`,
	} {
		msg, err := nc.RequestWithContext(testContext(t), queryapi.SubjectPrefix+queryapi.EndpointRunnerLogs, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if string(msg.Data) != want {
			t.Errorf("%s:\n got %s (headers %v)\nwant %s", body, msg.Data, msg.Header, want)
		}
	}
}
