package server_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/revline/revline/cmd/revline/internal/server"
	"github.com/revline/revline/internal/testsupport"
)

// serveUntilStopped runs serve with cfg until stop is called, which
// returns once serve has stopped (and fails the test if it stopped with
// an error).
func serveUntilStopped(t *testing.T, cfg server.Config) (addrs server.Addresses, stop func()) {
	t.Helper()
	cfg.NATSListen, cfg.HTTPAddr, cfg.GatewayAddr, cfg.ShutdownGrace = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", 2*time.Second
	ready := make(chan server.Addresses, 1)
	cfg.Ready = func(a server.Addresses) { ready <- a }
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- server.Run(ctx, cfg) }()
	stop = func() {
		cancel()
		if err := <-stopped; err != nil {
			t.Errorf("serve stopped with %v", err)
		}
	}
	select {
	case addrs = <-ready:
		return addrs, stop
	case err := <-stopped:
		t.Fatalf("serve stopped before it was ready: %v", err)
	case <-time.After(time.Minute):
		cancel()
		t.Fatal("serve not ready in time")
	}
	return addrs, stop
}

// serve writes its read model's snapshot when it stops, and the next
// start restores it and reads only the log after it: the revision history
// is the same.
func TestServeStartsFromTheReadModelSnapshot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addrs, stop := serveUntilStopped(t, server.Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	nkey := []string{"--token-file", addrs.AdminTokenFile}
	for range 2 {
		if code, stdout, stderr := revline(t, addrs.NATSURL, append([]string{"deploy", "web", "--command", runnerBin}, nkey...)...); code != 0 {
			t.Fatalf("deploy: exit %d, %s %s", code, stdout, stderr)
		}
	}
	listRev := func(url string) string {
		t.Helper()
		code, stdout, stderr := revline(t, url, append([]string{"apps", "list-rev", "web", "-o", "wide"}, nkey...)...)
		if code != 0 {
			t.Fatalf("list-rev: exit %d, %s %s", code, stdout, stderr)
		}
		return stdout
	}
	before := listRev(addrs.NATSURL)
	stop()

	var logs testsupport.SyncBuffer
	addrs, stop = serveUntilStopped(t, server.Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer stop()
	if !strings.Contains(logs.String(), "read model restored from its snapshot") || strings.Contains(logs.String(), "ignoring the read model's snapshot") {
		t.Errorf("serve's log after a restart:\n%s", logs.String())
	}
	// The runners' columns move with the restart; the revisions do not.
	columns := func(table string) string {
		var rows []string
		for line := range strings.SplitSeq(strings.TrimSpace(table), "\n") {
			f := strings.Fields(line)
			rows = append(rows, strings.Join(f[:min(3, len(f))], " "))
		}
		return strings.Join(rows, "\n")
	}
	if after := listRev(addrs.NATSURL); columns(after) != columns(before) {
		t.Errorf("list-rev after the restart:\n%s\nbefore:\n%s", after, before)
	}
}
