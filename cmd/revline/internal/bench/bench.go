// Package bench measures Revline against the raw NATS figures it is built
// on, in the same run on the same embedded server, and reports the ratios.
// `revline bench` runs it; BENCHMARKS.md records its output.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/events/embedded"
	"github.com/revline/revline/workers/processor"
)

// Config sets the size of a run.
type Config struct {
	// Ops is how many operations each case performs.
	Ops int
	Out io.Writer
}

// result is one measured case.
type result struct {
	name    string
	ops     int
	elapsed time.Duration
	lat     []time.Duration
}

func (r result) perSecond() float64 { return float64(r.ops) / r.elapsed.Seconds() }

func (r result) percentile(p float64) time.Duration {
	slices.Sort(r.lat)
	return r.lat[min(len(r.lat)-1, int(float64(len(r.lat))*p))]
}

func measure(name string, ops int, op func(i int) error) (result, error) {
	r := result{name: name, ops: ops, lat: make([]time.Duration, 0, ops)}
	start := time.Now()
	for i := range ops {
		t := time.Now()
		if err := op(i); err != nil {
			return r, fmt.Errorf("%s: %w", name, err)
		}
		r.lat = append(r.lat, time.Since(t))
	}
	r.elapsed = time.Since(start)
	return r, nil
}

// Run starts an embedded server in a temporary directory and measures:
// a raw JetStream publish with the expected-sequence check against a
// Revline event append, and a raw NATS request-reply against a Revline
// command round trip (publish, decide, append, outcome).
func Run(ctx context.Context, cfg Config) error {
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
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if err := commandbus.EnsureStreams(ctx, js, 1); err != nil {
		return err
	}
	store, err := events.NewJetStreamStore(ctx, events.JetStreamStoreConfig{JetStream: js})
	if err != nil {
		return err
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage}); err != nil {
		return err
	}

	payload := make([]byte, 256)
	var rawSeq uint64
	rawAppend, err := measure("raw JetStream publish, expected-sequence check", cfg.Ops, func(int) error {
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
	append1, err := measure("Revline event append (1 event)", cfg.Ops, func(i int) error {
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
	rawRequest, err := measure("raw NATS request-reply", cfg.Ops, func(int) error {
		_, err := nc.Request("raw.echo", payload, 5*time.Second)
		return err
	})
	if err != nil {
		return err
	}

	proc, err := processor.New(processor.Config{NATSURL: srv.ClientURL(), JetStream: js, Store: store})
	if err != nil {
		return err
	}
	procCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- proc.Run(procCtx) }()
	defer func() { stop(); <-done }()
	client := commandbus.NewClient(js)
	seed, err := client.Execute(ctx, events.NewCommand("round-trip", events.Deploy{Command: "true"}, events.Metadata{Actor: "bench"}))
	if err != nil {
		return fmt.Errorf("seed deploy: %w", err)
	}
	if seed.Status != events.OutcomeAccepted {
		return fmt.Errorf("seed deploy %s: %s", seed.Status, seed.Message)
	}
	runnerID := uuid.Must(uuid.NewV7()).String()
	roundTrip, err := measure("Revline command round trip (runner report)", cfg.Ops, func(int) error {
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
	report(cfg.Out, []pair{{rawAppend, append1}, {rawRequest, roundTrip}})
	return nil
}

// pair is a Revline case and the raw NATS case it is compared with.
type pair struct{ raw, revline result }

func report(w io.Writer, pairs []pair) {
	fmt.Fprintf(w, "| case | ops | ops/s | p50 | p99 | Revline / raw throughput |\n|---|---|---|---|---|---|\n")
	for _, p := range pairs {
		for i, r := range []result{p.raw, p.revline} {
			ratio := ""
			if i == 1 {
				ratio = fmt.Sprintf("%.2f", r.perSecond()/p.raw.perSecond())
			}
			fmt.Fprintf(w, "| %s | %d | %.0f | %s | %s | %s |\n", r.name, r.ops, r.perSecond(),
				r.percentile(0.5).Round(time.Microsecond), r.percentile(0.99).Round(time.Microsecond), ratio)
		}
	}
}
