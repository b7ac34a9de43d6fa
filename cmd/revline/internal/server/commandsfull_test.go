package server_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/revline/revline/cmd/revline/internal/server"
	"github.com/revline/revline/cmd/revline/internal/servertest"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/events/embedded/embeddedtest"
)

// Whoever may send commands cannot fill the disk through the command
// stream: it has a byte limit, given in place to a stream an earlier
// version made without one, and which the drift check expects. Once full,
// it refuses new commands, which the CLI reports in one line (exit 1) and
// the HTTP API as 503 commands_full; the server carries on (healthy,
// answering reads, serving the app), and takes commands again once there
// is room.
func TestAFullCommandStreamRefusesCommandsAndTheServerCarriesOn(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := embeddedtest.Start(t)
	_, js := embeddedtest.Connect(t, srv)
	old := commandbus.StreamConfigs(1)[0]
	if old.Name != commandbus.CommandStreamName {
		t.Fatalf("the first bus stream is %s", old.Name)
	}
	old.MaxBytes, old.Discard = 0, jetstream.DiscardOld
	if _, err := js.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}

	const limit = 64 << 10
	addrs := servertest.Serve(t, server.Config{NATSURL: srv.ClientURL(), CommandStreamMaxBytes: limit, StreamCheckInterval: 20 * time.Millisecond})
	stream, err := js.Stream(ctx, commandbus.CommandStreamName)
	if err != nil {
		t.Fatal(err)
	}
	if got := stream.CachedInfo().Config; got.MaxBytes != limit || got.Discard != jetstream.DiscardNew {
		t.Fatalf("command stream max_bytes %d, discard %v; want %d, discard new", got.MaxBytes, got.Discard, limit)
	}
	cli := asClient(t, addrs)
	cli("deploy", "web", "--command", runnerBin)

	// Fill it up to the last few bytes.
	for _, size := range []int{8 << 10, 1 << 10, 64} {
		for i := 0; ; i++ {
			_, err := js.Publish(ctx, "revline.commands.filler.junk", bytes.Repeat([]byte("x"), size))
			if commandbus.IsStreamFull(err) {
				break
			}
			if err != nil || i > limit/size {
				t.Fatalf("filling the command stream with %d bytes a message: %d stored, then %v", size, i, err)
			}
		}
	}

	code, stdout, stderr := revline(t, addrs.NATSURL, "apps", "scale", "web", "--keep-alive", "42", "--token-file", addrs.AdminTokenFile)
	if code != 1 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "the command bus is full") || !strings.Contains(stderr, commandbus.CommandStreamName) {
		t.Fatalf("scale with the command stream full: exit %d, stdout %q, stderr %q; want exit 1 and one line saying the bus is full", code, stdout, stderr)
	}
	var problem struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}
	postJSON(t, addrs, "/v1/apps/web/scale", `{"keep_alive": 42}`, http.StatusServiceUnavailable, &problem)
	if problem.Code != "commands_full" || !strings.Contains(problem.Detail, "try again later") {
		t.Fatalf("scale over HTTP with the command stream full: %+v, want commands_full", problem)
	}

	// The server carries on; its stream checks (every 20 ms, and a deploy
	// took longer) found no drift in the limit it gave.
	healthz := func() int {
		resp, err := http.Get(addrs.HTTPURL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := healthz(); status != http.StatusOK {
		t.Fatalf("healthz with the command stream full: %d", status)
	}
	if out := cli("apps", "list"); !strings.Contains(out, "web") {
		t.Fatalf("apps list with the command stream full: %s", out)
	}
	if status, body := gatewayStatus(t, addrs, "/apps/web/"); status != http.StatusOK {
		t.Fatalf("the gateway with the command stream full: %d %s", status, body)
	}

	// Room made (the fillers purged): commands are taken again.
	if err := stream.Purge(ctx, jetstream.WithPurgeSubject(commandbus.PartitionSubjectPrefix+"*.filler.>")); err != nil {
		t.Fatal(err)
	}
	if out := cli("apps", "scale", "web", "--keep-alive", "42"); !strings.HasPrefix(out, "Scaled web.") {
		t.Fatalf("scale once there is room: %s", out)
	}
	if status := healthz(); status != http.StatusOK {
		t.Fatalf("healthz after the command stream had room again: %d", status)
	}
}
