package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revline/revline/events"
	"github.com/revline/revline/events/embedded/embeddedtest"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/projections/queryapi"
)

const (
	liveRunner = "0193f1c2-cccc-7000-8000-00000000000a"
	deadRunner = "0193f1c2-cccc-7000-8000-00000000000b"
)

// logServer serves the runner logs of a temporary directory over an
// in-process NATS server, for app web with a live and a terminated
// runner, and returns a client and the directory.
func logServer(t *testing.T) (*queryapi.Client, string) {
	t.Helper()
	model := projections.NewRevisionHistory()
	for i, ev := range []events.Event{
		events.RunnerStateChanged{RunnerID: liveRunner, RevisionID: "rev", State: events.RunnerIdle, PID: 1, Port: 2},
		events.RunnerStateChanged{RunnerID: deadRunner, RevisionID: "rev", State: events.RunnerTerminated, PID: 3, Port: 4},
	} {
		env := events.NewEnvelope("web", ev, events.Metadata{Actor: "test"}, time.Now())
		env.Sequence = uint64(i + 1)
		if !model.Apply(env) {
			t.Fatal("event not applied")
		}
	}
	dir := t.TempDir()
	local := queryapi.Local{Model: model, Logs: queryapi.LogDir(dir)}
	srv := embeddedtest.Start(t)
	serverConn, _ := embeddedtest.Connect(t, srv)
	clientConn, _ := embeddedtest.Connect(t, srv)
	svc, err := queryapi.Serve(serverConn, local, "0.1.0", queryapi.WithRunnerLogs(local))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	return queryapi.NewClient(clientConn), dir
}

// appendLog appends text to the log of runner, one of app web's.
func appendLog(t *testing.T, dir, runner, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "web"), 0o750); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "web", runner+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

func opts(tail int, follow bool) logOptions {
	return logOptions{tail: tailFlag{n: tail}, follow: follow, timeout: 10 * time.Second}
}

func TestLogLinesAreEscapedAsTextAndExactAsJSON(t *testing.T) {
	t.Parallel()
	client, dir := logServer(t)
	ctx := t.Context()
	line := "\x1b[2J\x1b]0;pwned\x07 tab\there \r carriage \u202e bidi \u0085 next-line é € <&>"
	appendLog(t, dir, liveRunner, "first\n"+line+"\n")

	var text bytes.Buffer
	if _, err := readLogs(ctx, client, "web", liveRunner, opts(1, false), &logPrinter{w: &text}); err != nil {
		t.Fatal(err)
	}
	want := `\x1b[2J\x1b]0;pwned\x07 tab` + "\t" + `here \x0d carriage \u202e bidi \x85 next-line é € <&>` + "\n"
	if text.String() != want {
		t.Fatalf("text output\n %q\nwant\n %q", text.String(), want)
	}
	for _, b := range text.Bytes() {
		if b < 0x20 && b != '\t' && b != '\n' {
			t.Fatalf("a raw control byte %#x reached the output %q", b, text.String())
		}
	}

	var out bytes.Buffer
	if _, err := readLogs(ctx, client, "web", liveRunner, opts(10, false), &logPrinter{w: &out, json: true}); err != nil {
		t.Fatal(err)
	}
	printed := out.String()
	var got []queryapi.LogLine
	dec := json.NewDecoder(&out)
	for dec.More() {
		var l queryapi.LogLine
		if err := dec.Decode(&l); err != nil {
			t.Fatal(err)
		}
		got = append(got, l)
	}
	if len(got) != 2 || got[0] != (queryapi.LogLine{Offset: 0, Text: "first"}) || got[1] != (queryapi.LogLine{Offset: 6, Text: line}) {
		t.Fatalf("JSON lines = %+v", got)
	}
	if strings.Count(printed, "\n") != 2 || strings.ContainsRune(printed, '\x1b') {
		t.Fatalf("JSON output %q: want one object per line, control characters escaped", printed)
	}
}

func TestFollowPrintsWhatTheRunnerWritesNext(t *testing.T) {
	t.Parallel()
	client, dir := logServer(t)
	appendLog(t, dir, liveRunner, "old 1\nold 2\n")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out testsupport.SyncBuffer
	done := make(chan error, 1)
	counter := &countingReader{LogReader: client}
	go func() {
		_, err := readLogs(ctx, counter, "web", liveRunner, opts(1, true), &logPrinter{w: &out})
		done <- err
	}()
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for out.String() != want {
			if time.Now().After(deadline) {
				t.Fatalf("output %q, want %q", out.String(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("old 2\n")
	// No busy loop: about one query per followInterval while nothing comes.
	before := counter.n.Load()
	time.Sleep(4 * followInterval)
	if n := counter.n.Load() - before; n < 2 || n > 6 {
		t.Fatalf("%d queries in %s of following an idle log", n, 4*followInterval)
	}
	appendLog(t, dir, liveRunner, "new 1\nnew 2\nhalf ")
	waitFor("old 2\nnew 1\nnew 2\nhalf ")
	appendLog(t, dir, liveRunner, "a line\n")
	waitFor("old 2\nnew 1\nnew 2\nhalf a line\n")
	appendLog(t, dir, liveRunner, "unfinished")
	waitFor("old 2\nnew 1\nnew 2\nhalf a line\nunfinished")
	// The log is rotated: the follower goes on with the new file, the
	// partial line of the old one ended.
	logPath := filepath.Join(dir, "web", liveRunner+".log")
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	appendLog(t, dir, liveRunner, "rotated\n")
	waitFor("old 2\nnew 1\nnew 2\nhalf a line\nunfinished\nrotated\n")
	appendLog(t, dir, liveRunner, "after\n")
	waitFor("old 2\nnew 1\nnew 2\nhalf a line\nunfinished\nrotated\nafter\n")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("follow ended with %v, want nil once its context ends", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not stop with its context")
	}
	if got := out.String(); got != "old 2\nnew 1\nnew 2\nhalf a line\nunfinished\nrotated\nafter\n" {
		t.Fatalf("output %q: want nothing more", got)
	}
}

// countingReader counts the queries it passes on.
type countingReader struct {
	queryapi.LogReader
	n atomic.Int64
}

func (c *countingReader) RunnerLogs(ctx context.Context, app, runnerID string, req queryapi.LogRequest, seq uint64) (queryapi.LogPage, error) {
	c.n.Add(1)
	return c.LogReader.RunnerLogs(ctx, app, runnerID, req, seq)
}

func TestFollowEndsWhenTheRunnerHasTerminated(t *testing.T) {
	t.Parallel()
	client, dir := logServer(t)
	appendLog(t, dir, deadRunner, "exit status 1\n")
	var out bytes.Buffer
	terminated, err := readLogs(t.Context(), client, "web", deadRunner, opts(10, true), &logPrinter{w: &out})
	if err != nil || !terminated || out.String() != "exit status 1\n" {
		t.Fatalf("terminated %v, err %v, output %q", terminated, err, out.String())
	}
}

func TestReadLogsReportsQueryErrors(t *testing.T) {
	t.Parallel()
	client, _ := logServer(t)
	for _, follow := range []bool{false, true} {
		_, err := readLogs(t.Context(), client, "web", "0193f1c2-cccc-7000-8000-0000000000ff", opts(10, follow), &logPrinter{w: &bytes.Buffer{}})
		var qerr *queryapi.Error
		if !errors.As(err, &qerr) || qerr.Code != queryapi.CodeRunnerNotFound {
			t.Fatalf("follow %v: err = %v, want runner_not_found", follow, err)
		}
	}
}

// A whole log larger than a page comes in pages, without --follow too.
func TestAllOfALogLargerThanAPage(t *testing.T) {
	t.Parallel()
	client, dir := logServer(t)
	var b strings.Builder
	for range 5000 {
		b.WriteString(strings.Repeat("x", 499) + "\n")
	}
	appendLog(t, dir, liveRunner, b.String())
	var out bytes.Buffer
	o := opts(0, false)
	o.tail.all = true
	if _, err := readLogs(t.Context(), client, "web", liveRunner, o, &logPrinter{w: &out}); err != nil {
		t.Fatal(err)
	}
	if out.String() != b.String() {
		t.Fatalf("printed %d bytes of the %d-byte log", out.Len(), b.Len())
	}
}
