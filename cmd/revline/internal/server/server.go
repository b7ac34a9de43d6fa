// Package server runs everything `revline serve` starts in one process:
// the embedded NATS server (unless pointed at an existing one), the event
// store and bus streams, the command processor, the revision-history
// projection and its query service, the runner worker with the request
// gateway in front of its runners, and the HTTP API with the dashboard.
package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/cmd/revline/internal/control"
	"github.com/revline/revline/cmd/revline/internal/dashboard"
	"github.com/revline/revline/cmd/revline/internal/httpapi"
	"github.com/revline/revline/cmd/revline/internal/metrics"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/events/embedded"
	"github.com/revline/revline/events/secrets"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/projections/audit"
	"github.com/revline/revline/projections/queryapi"
	"github.com/revline/revline/workers/gateway"
	"github.com/revline/revline/workers/process"
	"github.com/revline/revline/workers/processor"
	"github.com/revline/revline/workers/runner"
	"github.com/revline/revline/workers/webhooks"
)

// Config configures a server.
type Config struct {
	// DataDir holds the embedded NATS server's files and the runners' pid
	// files and logs. Required.
	DataDir string
	// NATSListen is where the embedded NATS server listens; default
	// 127.0.0.1:4222.
	NATSListen string
	// NATSURL points at an existing NATS server or cluster instead; no
	// embedded server starts then.
	NATSURL string
	// NATSOptions connect to NATSURL (credentials, TLS).
	NATSOptions []nats.Option
	// NATSIdentities connects to NATSURL with the identities in
	// <DataDir>/auth, as NATSAuthorization configured the cluster: the
	// server's own, and the query service's, which may publish only to
	// inboxes. Without it, both connect with NATSOptions alone.
	NATSIdentities bool
	// Replicas of the streams; default 1 (use 3 on a cluster).
	Replicas int
	// HTTPAddr is where the HTTP API listens; default 127.0.0.1:8080.
	HTTPAddr string
	// HTTPAllowedHosts are host names the HTTP API answers to besides
	// localhost and IP addresses.
	HTTPAllowedHosts []string
	// HTTPReadTimeout bounds reading a whole request of the HTTP API,
	// headers and body, so that slow senders cannot hold connections;
	// default 30s. Answers (a deploy waiting for its runner) are not
	// bounded by it.
	HTTPReadTimeout time.Duration
	// GatewayAddr is where the request gateway listens (requests to apps:
	// /apps/{app}/...); default 127.0.0.1:8081. A replica with NoRunners
	// runs no gateway.
	GatewayAddr string
	// RunnerUser, when serve runs as root, is the one user every runner
	// runs as (a user name, a uid or uid:gid): runners then share it and
	// can read each other's environment. When empty, each runner runs as a
	// uid of its own from RunnerUIDs (zero: process.DefaultRunnerUIDs).
	// AllowRootRunners lets runners run as root instead. See
	// process.Config.
	RunnerUser       string
	RunnerUIDs       process.UIDRange
	AllowRootRunners bool
	// RunnerLogMaxBytes is the size at which a runner's log file is
	// rotated (zero: process.DefaultLogMaxBytes); RunnerEndedLogs how
	// many of an app's ended runners keep their logs (zero:
	// process.DefaultEndedLogs). See process.Config.
	RunnerLogMaxBytes int64
	RunnerEndedLogs   int
	// NoRunners leaves the runner worker out: this replica processes
	// commands and serves reads, another one runs the runners. Several
	// replicas on one cluster must have at most one running runners.
	NoRunners bool
	// WebhooksAllowPrivate lets webhooks target loopback, link-local and
	// private addresses. WebhookMaxFailures is how many failed attempts
	// in a row disable a webhook (default 10).
	WebhooksAllowPrivate bool
	WebhookMaxFailures   int
	// CommandStreamMaxBytes, if positive, is the byte limit of the command
	// stream instead of commandbus.CommandStreamMaxBytes (1 GiB): tests
	// fill it with less.
	CommandStreamMaxBytes int64
	// StreamCheckInterval is how often the streams' configuration is
	// compared with what serve gave them (see events.StreamGuard);
	// default 30s.
	StreamCheckInterval time.Duration
	// ConsumerSweepInterval is how often the clients' consumers of the
	// event stream that could outlive their token (push or durable ones)
	// are deleted, as they are after each token change (consumerReaper);
	// default 5s.
	ConsumerSweepInterval time.Duration
	// ShutdownGrace is how long runners get to stop on shutdown; default 10s.
	ShutdownGrace time.Duration
	// Version (SemVer) is reported by the query service.
	Version string
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Ready, optional, is called once everything listens, with the
	// addresses actually bound (useful with port 0).
	Ready func(Addresses)
}

// Addresses are the endpoints a running server listens on.
type Addresses struct {
	NATSURL string
	HTTPURL string
	// GatewayURL is "" on a replica without runners.
	GatewayURL string
	// AdminTokenFile holds the bootstrap admin token of the HTTP API
	// (auth.BootstrapFile in the data directory's auth directory), made
	// on the first start; it may be absent when another replica made it.
	AdminTokenFile string
}

func (c *Config) setDefaults() {
	if c.NATSListen == "" {
		c.NATSListen = "127.0.0.1:4222"
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8080"
	}
	if c.HTTPReadTimeout == 0 {
		c.HTTPReadTimeout = 30 * time.Second
	}
	if c.GatewayAddr == "" {
		c.GatewayAddr = "127.0.0.1:8081"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.StreamCheckInterval == 0 {
		c.StreamCheckInterval = 30 * time.Second
	}
	if c.ConsumerSweepInterval == 0 {
		c.ConsumerSweepInterval = 5 * time.Second
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Version == "" {
		c.Version = "0.0.0-unknown" // the query service wants SemVer
	}
	if c.Ready == nil {
		c.Ready = func(Addresses) {}
	}
}

// Validate reports impossible settings.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("serve: a data directory is required (--data-dir)")
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		return fmt.Errorf("serve: replicas must be between 1 and 5, got %d", c.Replicas)
	}
	if c.NATSIdentities && c.NATSURL == "" {
		return errors.New("serve: --nats-identities is for a NATS server of your own (--nats-url); the embedded one always uses them")
	}
	return nil
}

// Run serves until ctx ends, then shuts down in order: the HTTP API, the
// runner worker (its runners drained and reported), the command processor
// and projection, and last NATS. It returns the first error that stopped it.
func Run(ctx context.Context, cfg Config) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	release, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer release()
	log := cfg.Logger
	natsURL := cfg.NATSURL
	// users keeps the embedded server's users those of the tokens.
	var users *busUsers
	// The query service answers on a connection of its own, which may
	// publish only to inboxes when it has its own identity.
	queryOptions := cfg.NATSOptions
	if natsURL == "" || cfg.NATSIdentities {
		ids, err := loadIdentities(cfg.DataDir)
		if err != nil {
			return err
		}
		if natsURL == "" {
			// The tokens' users come once their bucket is read.
			natsUsers := embedded.NewUsers(ids.users(nil))
			srv, err := embedded.Start(embedded.Config{
				DataDir: filepath.Join(cfg.DataDir, "nats"), Listen: cfg.NATSListen, Users: natsUsers,
			})
			if err != nil {
				return fmt.Errorf("serve: %w (change it with --nats-listen)", err)
			}
			defer shutdownNATS(srv)
			users = newBusUsers(natsUsers, ids, log.With("component", "nats"))
			defer logRefusals(srv, log.With("component", "nats"), users.token)()
			natsURL = srv.ClientURL()
			log.Info("embedded NATS started: clients connect as their tokens", "url", natsURL, "data_dir", filepath.Join(cfg.DataDir, "nats"))
		}
		if legacy := filepath.Join(cfg.DataDir, authDir, legacyClientSeedFile); fileExists(legacy) {
			log.Warn("the shared client identity is no longer a NATS user: clients connect as their tokens (docs/bus.md §3); delete the file", "file", legacy)
		}
		// Every connection of the server's own uses its identity, and
		// inboxes that clients cannot subscribe to.
		asServer, err := nats.NkeyOptionFromSeed(ids.server.seedPath)
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		asQuery, err := nats.NkeyOptionFromSeed(ids.query.seedPath)
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		queryOptions = append(slices.Clone(cfg.NATSOptions), asQuery, nats.CustomInboxPrefix(serverInboxPrefix))
		cfg.NATSOptions = append(cfg.NATSOptions, asServer, nats.CustomInboxPrefix(serverInboxPrefix))
	}
	nc, err := nats.Connect(natsURL, append([]nats.Option{nats.Name("revline-serve"), logAsyncErrors(log)}, cfg.NATSOptions...)...)
	if err != nil {
		return fmt.Errorf("serve: connect to NATS at %s: %w", redactURL(natsURL), err)
	}
	defer func() { _ = nc.Drain() }()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("serve: jetstream: %w", err)
	}
	setupCtx, cancelSetup := context.WithTimeout(ctx, 30*time.Second)
	defer cancelSetup()
	busStreams := commandbus.StreamConfigs(cfg.Replicas)
	for i := range busStreams {
		if busStreams[i].Name == commandbus.CommandStreamName && cfg.CommandStreamMaxBytes > 0 {
			busStreams[i].MaxBytes = cfg.CommandStreamMaxBytes
		}
	}
	guard := events.NewStreamGuard(js, log, append(slices.Clone(busStreams), events.EventStreamConfig(cfg.Replicas))...)
	drifts, err := guard.Inspect(setupCtx)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	for _, drift := range drifts {
		if !drift.Missing { // a missing stream is a first start
			log.Warn("a stream's configuration differs from what this version of Revline gives it (changed behind its back, or made by an older version); restoring it", "drift", drift.String())
		}
	}
	for _, sc := range busStreams {
		if _, err := events.EnsureStream(setupCtx, js, sc); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	}
	secretStore, err := secrets.Ensure(setupCtx, js, cfg.Replicas)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	hookStore, err := webhooks.Ensure(setupCtx, js, cfg.Replicas, webhooks.Policy{AllowPrivate: cfg.WebhooksAllowPrivate})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	tokens, err := auth.Ensure(setupCtx, js, cfg.Replicas)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	adminTokenFile, made, err := auth.Bootstrap(setupCtx, tokens, filepath.Join(cfg.DataDir, authDir), time.Now())
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if made {
		log.Info("made the HTTP API's first admin token; its value is in the file (mode 0600), and nowhere else", "file", adminTokenFile)
	} else if err := keyBootstrapToken(setupCtx, tokens, adminTokenFile); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	// The server's own components sign their commands with a token of
	// its own, whose commands may name the actor they act for.
	signer, err := auth.ServerSigner(setupCtx, tokens, filepath.Join(cfg.DataDir, authDir), time.Now())
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	// Its webhook changes (the HTTP API's, the worker's) too.
	hookStore.SignWith(signer)
	// Core components stop after the worker, which still reports while it
	// drains its runners.
	coreCtx, stopCore := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCore()
	if users != nil {
		if err := users.start(coreCtx, setupCtx, tokens); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	}
	reaper := &consumerReaper{js: js, hooks: hookStore, log: log.With("component", "consumers")}
	// A token change is answered once the server's users are the tokens'
	// (a revoked token disconnected, so that it can make no consumer
	// again), and once the consumers that could outlive a token are gone.
	tokens.OnChange(func(ctx context.Context, revision uint64) error {
		if users != nil {
			if err := users.waitFor(ctx, revision); err != nil {
				return err
			}
		}
		return reaper.sweep(ctx)
	})
	store, err := events.NewJetStreamStore(setupCtx, events.JetStreamStoreConfig{JetStream: js, Replicas: cfg.Replicas, Logger: log, WriteGate: guard.Err})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	snapshots, err := events.EnsureSnapshotStore(setupCtx, js, cfg.Replicas, log.With("component", "snapshots"))
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	timeTravel, err := audit.EnsureSnapshots(setupCtx, js, audit.SnapshotsConfig{Replicas: cfg.Replicas, Logger: log.With("component", "time-travel")})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}

	// The read model starts from its snapshot, if it has a usable one,
	// and reads only the log after it.
	readModels, err := events.EnsureReadModelStore(setupCtx, js, cfg.Replicas)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	model := projections.NewRevisionHistory()
	restoredAt, ignored, err := model.RestoreFrom(setupCtx, readModels, store)
	switch {
	case err != nil:
		return fmt.Errorf("serve: %w", err)
	case ignored != "":
		log.Warn("ignoring the read model's snapshot; folding the whole log", "reason", ignored)
	case restoredAt > 0:
		log.Info("read model restored from its snapshot", "sequence", restoredAt)
	}
	m, err := metrics.New(model)
	if err != nil {
		return err
	}
	proc, err := processor.New(processor.Config{
		NATSURL: natsURL, NATSOptions: cfg.NATSOptions, JetStream: js, Store: store, Snapshots: snapshots, Verifier: tokens,
		Logger: log.With("component", "processor"), OnOutcome: m.ObserveOutcome,
	})
	if err != nil {
		return err
	}
	bus := commandbus.NewClient(js, commandbus.WithSigner(signer))
	runnerDir := filepath.Join(cfg.DataDir, "runners")
	supervisor, err := process.NewSupervisor(process.Config{
		StateDir: runnerDir, Logger: log.With("component", "runners"),
		RunnerUser: cfg.RunnerUser, RunnerUIDs: cfg.RunnerUIDs, AllowRootRunners: cfg.AllowRootRunners,
		LogMaxBytes: cfg.RunnerLogMaxBytes, EndedLogs: cfg.RunnerEndedLogs,
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	gw, err := gateway.New(gateway.Config{
		Logger: log.With("component", "gateway"), Observe: m.ObserveRequest,
		// The gateway shares the API's host: an app must never see the
		// dashboard's session (it could act as whoever is logged in).
		ControlPlaneCookies: []string{dashboard.SessionCookie},
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	worker, err := runner.New(runner.Config{
		NATSURL: natsURL, NATSOptions: cfg.NATSOptions, JetStream: js, Store: store, Snapshots: snapshots, Commands: bus,
		Supervisor: supervisor, Traffic: gw, Secrets: secretStore, ShutdownGrace: cfg.ShutdownGrace, Logger: log.With("component", "runner-worker"),
	})
	if err != nil {
		return err
	}
	hooks, err := webhooks.New(webhooks.Config{
		JetStream: js, Store: hookStore, AllowPrivate: cfg.WebhooksAllowPrivate, MaxFailures: cfg.WebhookMaxFailures,
		Logger: log.With("component", "webhooks"),
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	reader := queryapi.Local{Model: model, LogEnd: func(ctx context.Context) (uint64, error) {
		return store.LastSequence(ctx)
	}}
	// Runner logs are read where the runners run; a replica without them
	// asks that server over NATS.
	var runnerLogs queryapi.LogReader = queryapi.NewClient(nc, queryapi.SignedBy(signer))
	// Each query is answered about the apps its token may view, and only
	// if signed (the version excepted).
	queryOpts := []queryapi.ServeOption{queryapi.WithLogger(log.With("component", "query")), queryapi.WithAuthorizer(tokens.AuthorizeQuery)}
	if !cfg.NoRunners {
		reader.Live = worker
		// The supervisor's log files: <StateDir>/logs/<app>/<runner id>.log.
		reader.Logs = queryapi.LogDir(filepath.Join(runnerDir, "logs"))
		runnerLogs = reader
		queryOpts = append(queryOpts, queryapi.WithRunnerLogs(reader))
	}
	// Readers must not see a half-rebuilt model after a restart: the
	// server is ready once the projection has caught up with the log.
	eventStream, err := js.Stream(setupCtx, events.EventStreamName)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	logEnd := eventStream.CachedInfo().State.LastSeq
	// A replay rebuilds this server's model; the one live generation
	// keeps serving until the new one is switched in.
	replayer := queryapi.NewReplayer(store, model, log.With("component", "replay"))
	ctl := &control.Control{Commands: bus, Signer: signer, Reader: reader, Events: store, Secrets: secretStore, Actor: "http"}
	dash, err := dashboard.New(dashboard.Config{Control: ctl, Tokens: tokens, Reader: reader, Events: store, Logger: log.With("component", "dashboard")})
	if err != nil {
		return err
	}
	api, err := httpapi.NewHandler(httpapi.Config{
		Control:    ctl,
		Tokens:     tokens,
		Reader:     reader,
		RunnerLogs: runnerLogs,
		Audit:      audit.WithSnapshots(store, timeTravel),
		Webhooks:   hookStore,
		Replay:     replayer,
		Metrics:    m.Handler(),
		Dashboard:  dash,
		Ready: func() error {
			if nc.Status() != nats.CONNECTED {
				return fmt.Errorf("NATS connection is %s", nc.Status())
			}
			if err := guard.Err(); err != nil {
				return err
			}
			if at := model.Checkpoint(); at < logEnd {
				return fmt.Errorf("catching up with the event log (at %d of %d)", at, logEnd)
			}
			return nil
		},
		AllowedHosts: cfg.HTTPAllowedHosts,
		Logger:       log.With("component", "http"),
	})
	if err != nil {
		return err
	}
	listener, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("serve: HTTP listen on %s (change it with --http-addr): %w", cfg.HTTPAddr, err)
	}
	httpServer := &http.Server{
		Handler: api, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: cfg.HTTPReadTimeout,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
	}
	httpServer.RegisterOnShutdown(dash.Close) // open pages' live streams end
	httpServer.RegisterOnShutdown(api.CloseStreams)
	// The gateway has no read or write timeout: uploads, streamed answers
	// and long requests are the runners' business, bounded by each app's
	// request_timeout.
	gatewayServer := &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	var gatewayListener net.Listener
	if !cfg.NoRunners {
		if gatewayListener, err = net.Listen("tcp", cfg.GatewayAddr); err != nil {
			_ = listener.Close()
			return fmt.Errorf("serve: gateway listen on %s (change it with --gateway-addr): %w", cfg.GatewayAddr, err)
		}
	}

	workerCtx, stopWorker := context.WithCancel(ctx)
	defer stopWorker()
	var core, workers sync.WaitGroup
	errs := make(chan error, 8)
	run := func(wg *sync.WaitGroup, name string, f func() error) {
		wg.Go(func() {
			if err := f(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		})
	}
	if users != nil {
		run(&core, "bus users", users.wait)
	}
	run(&core, "projection", func() error { return projections.Run(coreCtx, store, model) })
	run(&core, "command processor", func() error { return proc.Run(coreCtx) })
	core.Go(func() { guard.Run(coreCtx, cfg.StreamCheckInterval) })
	core.Go(func() { reaper.run(coreCtx, cfg.ConsumerSweepInterval) })
	run(&core, "time travel snapshots", func() error { return timeTravel.Warm(coreCtx, store) })
	if !cfg.NoRunners {
		// One writer of the read model's snapshot: the replica that runs
		// the runners (the others restore it too).
		core.Go(func() {
			projections.KeepSnapshots(coreCtx, model, readModels, restoredAt, projections.SnapshotPolicy{}, log.With("component", "read-model"))
		})
	}
	if !cfg.NoRunners {
		run(&workers, "runner worker", func() error { return worker.Run(workerCtx) })
		run(&workers, "gateway", func() error { return gatewayServer.Serve(gatewayListener) })
	}
	run(&workers, "webhooks", func() error { return hooks.Run(workerCtx) })
	run(&workers, "webhook changes", func() error {
		return hookStore.Record(workerCtx, store, tokens, log.With("component", "webhook-changes"))
	})
	run(&workers, "http", func() error { return httpServer.Serve(listener) })

	// shutdown stops everything started above, in order: the HTTP API and
	// the gateway (requests in flight end, within the shutdown grace), the
	// runner worker (its runners drained and reported), then the processor
	// and the projection. Every way out of Run goes through it.
	shutdown := func(cause error) error {
		log.Info("shutting down")
		shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
		defer cancel()
		var servers sync.WaitGroup
		servers.Go(func() { _ = httpServer.Shutdown(shutdownCtx) })
		servers.Go(func() {
			if gatewayServer.Shutdown(shutdownCtx) != nil {
				_ = gatewayServer.Close() // streams still open at the grace's end
			}
		})
		servers.Wait()
		stopWorker()
		workers.Wait()
		stopCore()
		core.Wait()
		log.Info("stopped")
		return cause
	}
	if err := catchUp(ctx, model, logEnd, errs); err != nil {
		return shutdown(err)
	}

	queryConn, err := nats.Connect(natsURL, append([]nats.Option{nats.Name("revline-query"), logAsyncErrors(log)}, queryOptions...)...)
	if err != nil {
		return shutdown(fmt.Errorf("serve: query service: connect to NATS: %w", err))
	}
	defer func() { _ = queryConn.Drain() }()
	query, err := queryapi.Serve(queryConn, reader, cfg.Version, queryOpts...)
	if err != nil {
		return shutdown(fmt.Errorf("serve: %w", err))
	}
	defer func() { _ = query.Stop() }()
	// Token requests (revline tokens) are answered on the server's own
	// connection: only it may read and write the token bucket.
	tokenRequests, err := auth.Serve(nc, tokens, log.With("component", "tokens"))
	if err != nil {
		return shutdown(fmt.Errorf("serve: %w", err))
	}
	defer func() { _ = tokenRequests.Unsubscribe() }()
	// Replay requests (revline replay) too: the server's connection
	// answers them, as it does token requests.
	replayRequests, err := queryapi.ServeReplay(coreCtx, nc, replayer, tokens.AuthorizeAdminRequest, log.With("component", "replay"))
	if err != nil {
		return shutdown(fmt.Errorf("serve: %w", err))
	}
	defer func() { _ = replayRequests.Unsubscribe() }()
	// And those to every replica (revline replay --all), each answering
	// as its host, HTTP address and pid.
	host, _ := os.Hostname()
	replica := fmt.Sprintf("%s http://%s pid %d", host, listener.Addr(), os.Getpid())
	replayAllRequests, err := queryapi.ServeReplayAll(coreCtx, nc, replica, replayer, tokens.AuthorizeAdminRequest, log.With("component", "replay"))
	if err != nil {
		return shutdown(fmt.Errorf("serve: %w", err))
	}
	defer func() { _ = replayAllRequests.Unsubscribe() }()

	warnIfExposed(log, "the HTTP API listens beyond loopback without TLS: bearer tokens and dashboard sessions travel in clear text unless a TLS proxy is in front", listener.Addr().String())
	if cfg.NATSURL == "" {
		warnIfExposed(log, "the embedded NATS server listens beyond loopback without TLS: its clients' traffic travels in clear text", cfg.NATSListen)
	}
	addrs := Addresses{NATSURL: natsURL, HTTPURL: "http://" + listener.Addr().String(), AdminTokenFile: adminTokenFile}
	if gatewayListener != nil {
		addrs.GatewayURL = "http://" + gatewayListener.Addr().String()
	}
	log.Info("revline serving", "nats", redactURL(addrs.NATSURL), "http", addrs.HTTPURL, "gateway", addrs.GatewayURL, "data_dir", cfg.DataDir, "pid", os.Getpid())
	cfg.Ready(addrs)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
		log.Error("stopping after a component failed", "error", runErr)
	}
	return shutdown(runErr)
}

// keyBootstrapToken gives the bootstrap admin token, made before tokens
// had keys, its key, so that the CLI on this machine signs with it: serve
// holds its value in file. A file that is gone, or whose token was
// revoked or replaced, is left alone.
func keyBootstrapToken(ctx context.Context, tokens *auth.Store, file string) error {
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bootstrap token: %w", err)
	}
	if err := tokens.AddPublicKey(ctx, strings.TrimSpace(string(data))); err != nil && !errors.Is(err, auth.ErrUnauthenticated) && !errors.Is(err, auth.ErrNotFound) {
		return fmt.Errorf("bootstrap token: %w", err)
	}
	return nil
}

// fileExists reports whether there is a file at path.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// warnIfExposed logs warning for an address other hosts can reach: both
// authenticate their clients, but without TLS their credentials can be
// read on the way.
func warnIfExposed(log *slog.Logger, warning, addr string) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return
	}
	log.Warn(warning, "address", addr)
}

// redactURL hides the passwords of NATS URLs ("nats://u:p@h:4222,...") so
// they can be logged.
func redactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, part := range parts {
		if u, err := url.Parse(strings.TrimSpace(part)); err == nil && u.User != nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}

// catchUp waits until the projection has applied the log up to end, a
// component fails, or ctx ends.
func catchUp(ctx context.Context, model *projections.RevisionHistory, end uint64, errs <-chan error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	caughtUp := make(chan error, 1)
	go func() { caughtUp <- model.WaitFor(ctx, end) }()
	select {
	case err := <-caughtUp:
		if err != nil {
			return fmt.Errorf("serve: catching up with the event log: %w", err)
		}
		return nil
	case err := <-errs:
		return err
	}
}

func shutdownNATS(srv *server.Server) {
	srv.Shutdown()
	srv.WaitForShutdown()
}

// logAsyncErrors sends a connection's asynchronous errors (a permission
// violation, a slow consumer) to the server's log instead of nats.go's
// default print to stderr. A permission violation on the query service's
// connection is a client that named a subject it may not as a reply.
func logAsyncErrors(log *slog.Logger) nats.Option {
	return nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
		attrs := []any{"connection", nc.Opts.Name, "error", err}
		if sub != nil {
			attrs = append(attrs, "subscription", sub.Subject)
		}
		log.Warn("NATS error", attrs...)
	})
}
