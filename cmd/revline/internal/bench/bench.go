// Package bench measures Revline against the baselines it is built on, in
// the same run, and reports the ratios: the event store and the command
// bus against raw NATS on one embedded server, and the request gateway
// against a bare reverse proxy and direct requests to the same runner.
// `revline bench` runs it; BENCHMARKS.md records its output.
package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/events/embedded"
	"github.com/revline/revline/workers/processor"
)

// Case ids of the NATS cases.
const (
	CaseRawPublish       = "raw_jetstream_publish"
	CaseEventAppend      = "event_append"
	CaseRawRequest       = "raw_nats_request"
	CaseCommandRoundTrip = "command_round_trip"
)

// TargetRoundTripP50Ratio bounds a command round trip's p50 against a raw
// JetStream publish's with the expected-sequence check (issue 11).
const TargetRoundTripP50Ratio = 3

// Config sets the size of a run.
type Config struct {
	// Ops is how many operations each NATS case performs, one at a time.
	Ops int
	// Commands is how many commands (and raw publishes) each throughput
	// case sends, many in flight; default 5 × Ops.
	Commands int
	// Revisions is the size of the large app of the history cases;
	// default ManyRevisions.
	Revisions int
	// StartupEvents is how many events the start-up cases seed (over
	// StartupApps apps); 0 leaves those cases out.
	StartupEvents int
	// HTTP sizes the HTTP cases.
	HTTP HTTPConfig
}

// Report is the result of a run: every case by id, and the ratios.
type Report struct {
	StartedAt time.Time `json:"started_at"`
	Machine   Machine   `json:"machine"`
	Config    struct {
		Ops           int `json:"ops"`
		Commands      int `json:"commands"`
		Revisions     int `json:"revisions"`
		StartupEvents int `json:"startup_events"`
		Requests      int `json:"requests"`
		Concurrency   int `json:"concurrency"`
		Warmup        int `json:"warmup"`
		Rounds        int `json:"rounds"`
	} `json:"config"`
	Cases       map[string]Case       `json:"cases"`
	Comparisons map[string]Comparison `json:"comparisons"`
	// OK is false when a case had failed operations.
	OK bool `json:"ok"`
}

// Machine describes where the run happened.
type Machine struct {
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Go         string `json:"go"`
}

// Case is one measured case.
type Case struct {
	Name string `json:"name"`
	// Ops counts the measured operations (requests for the HTTP cases).
	Ops int `json:"ops"`
	// Concurrency is how many clients ran them at once.
	Concurrency int `json:"concurrency"`
	// Errors counts the operations that failed; they have no latency.
	Errors         int     `json:"errors"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	OpsPerSecond   float64 `json:"ops_per_second"`
	// Latencies in microseconds.
	P50Micros float64 `json:"p50_us"`
	P99Micros float64 `json:"p99_us"`

	elapsed time.Duration
}

func (c *Case) finish(lat []time.Duration) {
	c.ElapsedSeconds = round(c.elapsed.Seconds(), 6)
	if c.elapsed > 0 {
		c.OpsPerSecond = round(float64(c.Ops-c.Errors)/c.elapsed.Seconds(), 1)
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		at := func(p float64) float64 {
			return round(float64(lat[min(len(lat)-1, int(float64(len(lat))*p))])/float64(time.Microsecond), 1)
		}
		c.P50Micros, c.P99Micros = at(0.50), at(0.99)
	}
}

// Comparison is a case measured against its baseline: ratios above 1 mean
// more (throughput) or longer (latency) than the baseline.
type Comparison struct {
	Case            string  `json:"case"`
	Baseline        string  `json:"baseline"`
	ThroughputRatio float64 `json:"throughput_ratio"`
	P50Ratio        float64 `json:"p50_ratio"`
	P99Ratio        float64 `json:"p99_ratio"`
	Target          *Target `json:"target,omitempty"`
}

// Target is what a comparison should achieve. A zero MaxP50Ratio bounds
// nothing.
type Target struct {
	MaxP50Ratio        float64 `json:"max_p50_ratio"`
	MinThroughputRatio float64 `json:"min_throughput_ratio"`
	Met                bool    `json:"met"`
}

func compare(cases map[string]Case, c, baseline string, target *Target) Comparison {
	x, b := cases[c], cases[baseline]
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return round(a/b, 3)
	}
	out := Comparison{
		Case: c, Baseline: baseline,
		ThroughputRatio: ratio(x.OpsPerSecond, b.OpsPerSecond),
		P50Ratio:        ratio(x.P50Micros, b.P50Micros),
		P99Ratio:        ratio(x.P99Micros, b.P99Micros),
		Target:          target,
	}
	if target != nil {
		t := *target
		t.Met = (t.MaxP50Ratio == 0 || out.P50Ratio <= t.MaxP50Ratio) && out.ThroughputRatio >= t.MinThroughputRatio
		out.Target = &t
	}
	return out
}

// Run measures every case: first the NATS ones on an embedded server in a
// temporary directory, then (with the server stopped) the HTTP ones. A
// failed operation stops a NATS case and the run; failed HTTP requests
// are counted, and reported with the error after the whole run.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Ops < 1 {
		return nil, fmt.Errorf("bench: ops must be at least 1, got %d", cfg.Ops)
	}
	if cfg.Commands == 0 {
		cfg.Commands = 5 * cfg.Ops
	}
	if cfg.Revisions == 0 {
		cfg.Revisions = ManyRevisions
	}
	if cfg.Revisions < 1 || cfg.StartupEvents < 0 {
		return nil, fmt.Errorf("bench: revisions must be at least 1 and startup events at least 0, got %d and %d", cfg.Revisions, cfg.StartupEvents)
	}
	if err := cfg.HTTP.setDefaults(); err != nil {
		return nil, err
	}
	r := &Report{
		StartedAt: time.Now().UTC().Truncate(time.Second),
		Machine: Machine{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, CPUs: runtime.NumCPU(),
			GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version()},
		Cases: map[string]Case{}, Comparisons: map[string]Comparison{},
	}
	r.Config.Ops, r.Config.Commands, r.Config.Requests, r.Config.Concurrency = cfg.Ops, cfg.Commands, cfg.HTTP.Requests, cfg.HTTP.Concurrency
	r.Config.Warmup, r.Config.Rounds, r.Config.StartupEvents = cfg.HTTP.Warmup, cfg.HTTP.Rounds, cfg.StartupEvents
	r.Config.Revisions = cfg.Revisions
	if err := runNATS(ctx, cfg, r); err != nil {
		return nil, err
	}
	cases, comparisons, httpErr := RunHTTP(ctx, cfg.HTTP)
	if cases == nil {
		return nil, httpErr
	}
	for id, c := range cases {
		r.Cases[id] = c
	}
	for id, c := range comparisons {
		r.Comparisons[id] = c
	}
	r.OK = httpErr == nil
	return r, httpErr
}

// round keeps the JSON readable: digits beyond these are noise.
func round(x float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(x*p) / p
}

func measure(name string, ops int, op func(i int) error) (Case, error) {
	c := Case{Name: name, Ops: ops, Concurrency: 1}
	lat := make([]time.Duration, 0, ops)
	start := time.Now()
	for i := range ops {
		t := time.Now()
		if err := op(i); err != nil {
			return c, fmt.Errorf("%s: %w", name, err)
		}
		lat = append(lat, time.Since(t))
	}
	c.elapsed = time.Since(start)
	c.finish(lat)
	return c, nil
}

// runNATS starts an embedded server in a temporary directory and measures
// a raw JetStream publish with the expected-sequence check against a
// Revline event append, a raw NATS request-reply against a Revline
// command round trip (publish, decide, append, outcome), commands many in
// flight, over many apps and on one, against as many raw publishes with
// the expected-sequence check in flight, and the history cases
// (runHistory).
func runNATS(ctx context.Context, cfg Config, r *Report) error {
	ops := cfg.Ops
	dir, err := os.MkdirTemp("", "revline-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := embedded.Start(embedded.Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	nc, js, err := connect(srv.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := commandbus.EnsureStreams(ctx, js, 1); err != nil {
		return err
	}
	store, err := events.NewJetStreamStore(ctx, events.JetStreamStoreConfig{JetStream: js})
	if err != nil {
		return err
	}
	snapshots, err := events.EnsureSnapshotStore(ctx, js, 1, nil)
	if err != nil {
		return err
	}
	// Commands are signed and verified as serve's are: the round trips
	// include the signature and the token lookup.
	tokens, err := auth.Ensure(ctx, js, 1)
	if err != nil {
		return err
	}
	signer, err := auth.ServerSigner(ctx, tokens, filepath.Join(dir, "auth"), time.Now())
	if err != nil {
		return err
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage}); err != nil {
		return err
	}

	payload := make([]byte, 256)
	var rawSeq uint64
	rawAppend, err := measure("raw JetStream publish, expected-sequence check", ops, func(int) error {
		ack, err := js.Publish(ctx, "raw.app", payload, jetstream.WithExpectLastSequencePerSubject(rawSeq))
		if err == nil {
			rawSeq = ack.Sequence
		}
		return err
	})
	if err != nil {
		return err
	}
	var version uint64
	append1, err := measure("Revline event append (1 event)", ops, func(i int) error {
		env := events.NewEnvelope("bench", events.AppScaled{Changed: []string{"keep_alive"}}, events.Metadata{Actor: "bench", CausationID: uuid.NewString()}, time.Now())
		res, err := store.Append(ctx, "bench", version, []events.Envelope{env})
		version = res.LastSequence
		return err
	})
	if err != nil {
		return err
	}

	sub, err := nc.Subscribe("raw.echo", func(m *nats.Msg) { _ = m.Respond(m.Data) })
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	rawRequest, err := measure("raw NATS request-reply", ops, func(int) error {
		_, err := nc.Request("raw.echo", payload, 5*time.Second)
		return err
	})
	if err != nil {
		return err
	}

	proc, err := processor.New(processor.Config{NATSURL: srv.ClientURL(), JetStream: js, Store: store, Snapshots: snapshots, Verifier: tokens})
	if err != nil {
		return err
	}
	procCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- proc.Run(procCtx) }()
	defer func() { stop(); <-done }()
	client := commandbus.NewClient(js, commandbus.WithSigner(signer))
	seed, err := client.Execute(ctx, events.NewCommand("round-trip", events.Deploy{Command: "true"}, events.Metadata{Actor: "bench"}))
	if err != nil {
		return fmt.Errorf("seed deploy: %w", err)
	}
	if seed.Status != events.OutcomeAccepted {
		return fmt.Errorf("seed deploy %s: %s", seed.Status, seed.Message)
	}
	runnerID := uuid.Must(uuid.NewV7()).String()
	roundTrip, err := measure("Revline command round trip (runner report)", ops, func(int) error {
		report := events.ReportRunner{RunnerID: runnerID, RevisionID: seed.RevisionID, State: events.RunnerIdle}
		o, err := client.Execute(ctx, events.NewCommand("round-trip", report, events.Metadata{Actor: "bench"}))
		if err == nil && o.Status != events.OutcomeAccepted {
			err = fmt.Errorf("outcome %s: %s", o.Status, o.Message)
		}
		return err
	})
	if err != nil {
		return err
	}
	r.Cases[CaseRawPublish], r.Cases[CaseEventAppend] = rawAppend, append1
	r.Cases[CaseRawRequest], r.Cases[CaseCommandRoundTrip] = rawRequest, roundTrip
	r.Comparisons["event_append_vs_raw_publish"] = compare(r.Cases, CaseEventAppend, CaseRawPublish, nil)
	r.Comparisons["command_round_trip_vs_raw_request"] = compare(r.Cases, CaseCommandRoundTrip, CaseRawRequest, nil)
	r.Comparisons["command_round_trip_vs_raw_publish"] = compare(r.Cases, CaseCommandRoundTrip, CaseRawPublish, &Target{MaxP50Ratio: TargetRoundTripP50Ratio})
	if err := runThroughput(ctx, srv.ClientURL(), js, signer, cfg.Commands, payload, r); err != nil {
		return err
	}
	h := history{url: srv.ClientURL(), js: js, store: store, snapshots: snapshots, verifier: tokens, client: client, ops: ops, revisions: cfg.Revisions}
	return runHistory(ctx, h, cfg.StartupEvents, r)
}

// runThroughput measures the throughput cases; the clients have a
// connection of their own, as they would.
func runThroughput(ctx context.Context, url string, js jetstream.JetStream, signer *events.Signer, commands int, payload []byte, r *Report) error {
	cnc, cjs, err := connect(url)
	if err != nil {
		return err
	}
	defer cnc.Close()
	client := commandbus.NewClient(cjs, commandbus.WithSigner(signer))
	apps := min(ManyApps, commands)
	rawMany, err := rawManySubjects(ctx, js, commands, ManyAppsInFlight, apps, payload)
	if err != nil {
		return err
	}
	manyApps, err := commandThroughput(ctx, client, fmt.Sprintf("Revline commands, %d in flight over %d apps", min(ManyAppsInFlight, commands), apps), "many", commands, ManyAppsInFlight, apps)
	if err != nil {
		return err
	}
	rawOne, err := rawOneSubject(ctx, cnc, commands, OneAppInFlight, payload)
	if err != nil {
		return err
	}
	oneApp, err := commandThroughput(ctx, client, fmt.Sprintf("Revline commands, %d in flight on one app", min(OneAppInFlight, commands)), "one", commands, OneAppInFlight, 1)
	if err != nil {
		return err
	}
	r.Cases[CaseRawManySubjects], r.Cases[CaseCommandsManyApps] = rawMany, manyApps
	r.Cases[CaseRawOneSubject], r.Cases[CaseCommandsOneApp] = rawOne, oneApp
	r.Comparisons["commands_many_apps_vs_raw_publish"] = compare(r.Cases, CaseCommandsManyApps, CaseRawManySubjects, &Target{MinThroughputRatio: TargetManyAppsThroughputRatio})
	r.Comparisons["commands_one_app_vs_raw_async_publish"] = compare(r.Cases, CaseCommandsOneApp, CaseRawOneSubject, nil)
	return nil
}

// connect opens a connection to url; the caller closes it.
func connect(url string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}
