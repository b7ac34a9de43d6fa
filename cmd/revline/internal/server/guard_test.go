package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/revline/revline/cmd/revline/internal/server"
	"github.com/revline/revline/cmd/revline/internal/servertest"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/events/embedded/embeddedtest"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/workers/processor"
)

// An operator (or a leaked admin credential) edits the event stream so
// that it would discard history: serve reports it on /healthz and writes
// nothing while the log is untrusted, and the command sent meanwhile is
// not lost: it takes effect once the configuration is restored.
func TestServeStopsWritingWhileTheLogDrifted(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.Start(t)
	_, js := embeddedtest.Connect(t, srv)
	addrs := servertest.Serve(t, server.Config{NATSURL: srv.ClientURL(), StreamCheckInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if code, stdout, stderr := revline(t, addrs.NATSURL, "deploy", "web", "--command", runnerBin, "--token-file", addrs.AdminTokenFile); code != 0 {
		t.Fatalf("deploy: exit %d, %s %s", code, stdout, stderr)
	}
	healthz := func() (int, string) {
		resp, err := http.Get(addrs.HTTPURL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	eventStream, err := js.Stream(ctx, events.EventStreamName)
	if err != nil {
		t.Fatal(err)
	}
	lastSeq := func() uint64 {
		info, err := eventStream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq
	}
	tampered := events.EventStreamConfig(1)
	tampered.Discard, tampered.MaxMsgs = jetstream.DiscardOld, 1
	if _, err := js.UpdateStream(ctx, tampered); err != nil {
		t.Fatal(err)
	}
	var body string
	testsupport.Eventually(ctx, t, "healthz reports the drift", func() bool {
		var code int
		code, body = healthz()
		return code == http.StatusServiceUnavailable && strings.Contains(body, "max_msgs")
	})
	if !strings.Contains(body, events.EventStreamName) {
		t.Errorf("healthz does not name the stream: %s", body)
	}
	// From here on nothing may be written (a runner's report included).
	before := lastSeq()

	scaled := make(chan string, 1)
	go func() {
		code, stdout, stderr := revline(t, addrs.NATSURL, "apps", "scale", "web", "--keep-alive", "42", "--token-file", addrs.AdminTokenFile)
		scaled <- fmt.Sprintf("exit %d: %s %s", code, stdout, stderr)
	}()
	// The processor tried the command, failed to append, and will try
	// again: nothing reached the log meanwhile.
	testsupport.Eventually(ctx, t, "the processor retries the command", func() bool {
		for n := range commandbus.Partitions {
			consumer, err := js.Consumer(ctx, commandbus.CommandStreamName, processor.PartitionConsumerName(n))
			if err != nil {
				continue
			}
			if info, err := consumer.Info(ctx); err == nil && info.NumRedelivered > 0 {
				return true
			}
		}
		return false
	})
	if after := lastSeq(); after != before {
		t.Fatalf("the event log grew from %d to %d while its configuration had drifted", before, after)
	}

	if _, err := js.UpdateStream(ctx, events.EventStreamConfig(1)); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-scaled:
		if !strings.HasPrefix(got, "exit 0:") {
			t.Fatalf("scale after restoring: %s", got)
		}
	case <-ctx.Done():
		t.Fatal("the command sent while the log had drifted never took effect")
	}
	if code, body := healthz(); code != http.StatusOK {
		t.Errorf("healthz after restoring: %d %s", code, body)
	}
	if lastSeq() <= before {
		t.Error("the scale's event is not in the log")
	}
}

// A stream edited while serve was down is restored at start-up (and the
// drift logged): an operator's restart is the way back to a trusted log.
func TestServeRestoresADriftedStreamAtStartUp(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.Start(t)
	_, js := embeddedtest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tampered := events.EventStreamConfig(1)
	tampered.DenyDelete, tampered.DenyPurge = false, false
	if _, err := js.CreateStream(ctx, tampered); err != nil {
		t.Fatal(err)
	}
	addrs := servertest.Serve(t, server.Config{NATSURL: srv.ClientURL()})
	stream, err := js.Stream(ctx, events.EventStreamName)
	if err != nil {
		t.Fatal(err)
	}
	if drift := events.ConfigDrift(events.EventStreamConfig(1), stream.CachedInfo().Config); len(drift) != 0 {
		t.Errorf("the event stream still drifts after start-up: %v", drift)
	}
	resp, err := http.Get(addrs.HTTPURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz after start-up: %d", resp.StatusCode)
	}
}
