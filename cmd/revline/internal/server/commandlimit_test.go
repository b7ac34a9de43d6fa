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
// version made without one, and which the drift check expects. Past it,
// the oldest commands go: a flood of twice the limit leaves the stream
// within it, and the server carries on (healthy, deciding commands,
// answering reads, serving the app).
func TestTheCommandStreamKeepsItsByteLimitAndTheServerCarriesOn(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := embeddedtest.Start(t)
	_, js := embeddedtest.Connect(t, srv)
	old := commandbus.StreamConfigs(1)[0]
	if old.Name != commandbus.CommandStreamName {
		t.Fatalf("the first bus stream is %s", old.Name)
	}
	old.MaxBytes, old.Discard = 0, jetstream.DiscardNew
	if _, err := js.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}

	const limit = 64 << 10
	addrs := servertest.Serve(t, server.Config{NATSURL: srv.ClientURL(), CommandStreamMaxBytes: limit, StreamCheckInterval: 20 * time.Millisecond})
	stream, err := js.Stream(ctx, commandbus.CommandStreamName)
	if err != nil {
		t.Fatal(err)
	}
	if got := stream.CachedInfo().Config; got.MaxBytes != limit || got.Discard != jetstream.DiscardOld {
		t.Fatalf("command stream max_bytes %d, discard %v; want %d, discard old", got.MaxBytes, got.Discard, limit)
	}
	cli := asClient(t, addrs)
	cli("deploy", "web", "--command", runnerBin)

	// A flood of twice the limit: every message is taken, the oldest go.
	for i := range 2 * limit / (8 << 10) {
		if _, err := js.Publish(ctx, "revline.commands.filler.junk", bytes.Repeat([]byte("x"), 8<<10)); err != nil {
			t.Fatalf("filler %d: %v", i, err)
		}
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Bytes > limit || info.State.FirstSeq < 2 {
		t.Fatalf("after the flood the command stream holds %d bytes from sequence %d; want at most %d, its oldest gone", info.State.Bytes, info.State.FirstSeq, limit)
	}

	// The server carries on; its stream checks (every 20 ms, and the
	// flood took longer) found no drift in the limit it gave.
	if out := cli("apps", "scale", "web", "--keep-alive", "42"); !strings.HasPrefix(out, "Scaled web.") {
		t.Fatalf("scale after the flood: %s", out)
	}
	resp, err := http.Get(addrs.HTTPURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz after the flood: %d", resp.StatusCode)
	}
	if out := cli("apps", "list"); !strings.Contains(out, "web") {
		t.Fatalf("apps list after the flood: %s", out)
	}
	if status, body := gatewayStatus(t, addrs, "/apps/web/"); status != http.StatusOK {
		t.Fatalf("the gateway after the flood: %d %s", status, body)
	}
}
