// Package embedded runs an in-process NATS server with JetStream, for
// `revline serve` without --nats-url and for tests.
package embedded

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// MaxPayload is the largest message a client may publish to the embedded
// server: 1 MiB, the NATS default, so that the embedded server accepts what
// a cluster with default settings accepts and no more. Nothing needs more:
// the largest valid command is far smaller (the command stream refuses
// anything over commandbus.MaxCommandMsgSize), events are bounded by the
// commands they come from, and query answers are cut into pages that fit
// the connection's max payload.
const MaxPayload = 1 << 20

// Config configures an embedded server.
type Config struct {
	// DataDir holds JetStream's files. Required.
	DataDir string
	// Listen is host:port for client connections. Default 127.0.0.1:4222;
	// port 0 picks a free port.
	Listen string
	// ReadyTimeout bounds the wait for the server to accept connections.
	// Default 10s.
	ReadyTimeout time.Duration
	// Users, when set, are the only identities the server accepts (nkey
	// users, each with its permissions; nil permissions allow everything),
	// which may change while it runs: an anonymous connection is refused.
	Users *Users
}

// Start starts a NATS server with JetStream enabled and waits until it
// accepts connections. Stop it with Shutdown and WaitForShutdown.
func Start(cfg Config) (*server.Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("embedded nats: DataDir is required")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:4222"
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	host, portText, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("embedded nats: listen port %q is not a port number", portText)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	} else if ln, err := net.Listen("tcp", cfg.Listen); err != nil {
		// The server would only log this and never become ready: say it now.
		return nil, fmt.Errorf("embedded nats: listen on %s: %w", cfg.Listen, err)
	} else {
		_ = ln.Close()
	}
	opts := &server.Options{
		ServerName: "revline-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.DataDir,
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: MaxPayload,
	}
	if cfg.Users != nil {
		opts.CustomClientAuthentication = cfg.Users
		opts.AlwaysEnableNonce = true // the users sign it
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if cfg.Users != nil {
		cfg.Users.bind(srv)
	}
	go srv.Start()
	if !srv.ReadyForConnections(cfg.ReadyTimeout) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready on %s after %s", cfg.Listen, cfg.ReadyTimeout)
	}
	return srv, nil
}
