// Package servertest runs `revline serve` (server.Run) inside a test, for
// the tests of every package that needs a whole server. Only tests import
// it: it is never linked into the revline binary.
package servertest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/revline/revline/cmd/revline/internal/server"
)

// readyTimeout bounds how long a server may take to listen.
const readyTimeout = 60 * time.Second

// Serve runs server.Run with cfg until the test ends, then stops it and
// fails the test if it stopped with an error. It returns the addresses
// the server listens on once it is ready; the test fails if the server
// stops first or is not ready within a minute.
//
// Settings cfg leaves empty get test values: a data directory in
// t.TempDir(), loopback addresses on port 0 for the HTTP API, the gateway
// and (without NATSURL) the embedded NATS server, a shutdown grace of 2 s
// and a logger that discards. Ready is Serve's own.
func Serve(t testing.TB, cfg server.Config) server.Addresses {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.NATSListen == "" && cfg.NATSURL == "" {
		cfg.NATSListen = "127.0.0.1:0"
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	if cfg.GatewayAddr == "" {
		cfg.GatewayAddr = "127.0.0.1:0"
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ready := make(chan server.Addresses, 1)
	cfg.Ready = func(a server.Addresses) { ready <- a }

	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		runErr = server.Run(ctx, cfg)
	}()
	t.Cleanup(func() {
		cancel()
		<-stopped
		if runErr != nil {
			t.Errorf("server stopped with %v", runErr)
		}
	})
	select {
	case a := <-ready:
		return a
	case <-stopped:
		t.Fatal("server stopped before it was ready")
	case <-time.After(readyTimeout):
		t.Fatal("server not ready in time")
	}
	return server.Addresses{}
}
