package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
)

// Case ids of the throughput cases: many commands in flight, against raw
// publishes with the expected-sequence check, as many in flight.
const (
	CaseRawManySubjects  = "raw_jetstream_publish_many_subjects"
	CaseCommandsManyApps = "command_throughput_many_apps"
	CaseRawOneSubject    = "raw_jetstream_async_publish_one_subject"
	CaseCommandsOneApp   = "command_throughput_one_app"
)

// Sizes of the throughput cases.
const (
	// ManyAppsInFlight commands are in flight at any time, over ManyApps
	// apps, one command in flight per app.
	ManyAppsInFlight = 256
	ManyApps         = 1000
	// OneAppInFlight commands are in flight at any time, all for one app.
	OneAppInFlight = 64
	// TargetManyAppsThroughputRatio is the throughput over many apps that
	// Revline should reach, as a share of raw publishes with the
	// expected-sequence check (a command is three stored writes: the
	// command, its events, its outcome).
	TargetManyAppsThroughputRatio = 0.25
)

// measureInFlight runs ops operations with workers of them in flight at
// once: worker w runs op(w, i) for i = w, w+workers, w+2*workers, ...
// below ops, one at a time. The first error stops the case.
func measureInFlight(name string, ops, workers int, op func(worker, i int) error) (Case, error) {
	workers = min(workers, ops)
	c := Case{Name: name, Ops: ops, Concurrency: workers}
	var failed atomic.Bool
	lats := make([][]time.Duration, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for i := w; i < ops && !failed.Load(); i += workers {
				t := time.Now()
				if err := op(w, i); err != nil {
					errs[w] = err
					failed.Store(true)
					return
				}
				lats[w] = append(lats[w], time.Since(t))
			}
		})
	}
	wg.Wait()
	c.elapsed = time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("%s: %w", name, err)
	}
	var lat []time.Duration
	for _, l := range lats {
		lat = append(lat, l...)
	}
	c.finish(lat)
	return c, nil
}

// rawManySubjects publishes ops messages to subjects rawmany.<0..apps-1>
// of stream RAW_MANY with inFlight publishes in flight: each publisher
// owns some subjects and takes turns between them, each publish checking
// its subject's last sequence, as an event append does.
func rawManySubjects(ctx context.Context, js jetstream.JetStream, ops, inFlight, apps int, payload []byte) (Case, error) {
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW_MANY", Subjects: []string{"rawmany.>"}, Storage: jetstream.FileStorage}); err != nil {
		return Case{}, err
	}
	last := make([]uint64, apps) // each entry is written by one worker only
	name := fmt.Sprintf("raw JetStream publish, expected-sequence check, %d in flight over %d subjects", min(inFlight, ops), apps)
	return measureInFlight(name, ops, inFlight, func(w, i int) error {
		s := owned(w, i, inFlight, apps)
		ack, err := js.Publish(ctx, fmt.Sprintf("rawmany.%d", s), payload, jetstream.WithExpectLastSequencePerSubject(last[s]))
		if err == nil {
			last[s] = ack.Sequence
		}
		return err
	})
}

// owned returns the subject (or app) that worker w of workers uses for
// its operation i (see measureInFlight): worker w owns w, w+workers,
// w+2*workers, ... below n and takes turns between them. With fewer than
// workers of them, workers share them.
func owned(w, i, workers, n int) int {
	if w >= n {
		return w % n
	}
	mine := (n - w + workers - 1) / workers
	return w + (i/workers%mine)*workers
}

// rawOneSubject publishes ops messages to one subject of stream RAW_ONE
// with async publishes, inFlight of them pending at once, each checking the
// subject's last sequence: with one writer on the stream that sequence is
// known in advance, so the checks do not stop the pipeline.
func rawOneSubject(ctx context.Context, nc *nats.Conn, ops, inFlight int, payload []byte) (Case, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(inFlight))
	if err != nil {
		return Case{}, err
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW_ONE", Subjects: []string{"rawone"}, Storage: jetstream.FileStorage}); err != nil {
		return Case{}, err
	}
	name := fmt.Sprintf("raw JetStream async publish, expected-sequence check, %d in flight on one subject", min(inFlight, ops))
	c := Case{Name: name, Ops: ops, Concurrency: min(inFlight, ops)}
	type pending struct {
		ack jetstream.PubAckFuture
		at  time.Time
	}
	futures := make(chan pending, inFlight)
	lat := make([]time.Duration, 0, ops)
	acked := make(chan error, 1)
	go func() {
		var first error
		for p := range futures {
			select {
			case <-p.ack.Ok():
				lat = append(lat, time.Since(p.at))
			case err := <-p.ack.Err():
				first = cmp.Or(first, err)
			}
		}
		acked <- first
	}()
	start := time.Now()
	err = nil
	for i := range ops {
		// Timed from before the call, which waits while inFlight are pending.
		at := time.Now()
		f, perr := js.PublishAsync("rawone", payload, jetstream.WithExpectLastSequencePerSubject(uint64(i)))
		if perr != nil {
			err = perr
			break
		}
		futures <- pending{ack: f, at: at}
	}
	close(futures)
	err = cmp.Or(err, <-acked)
	c.elapsed = time.Since(start)
	if err != nil {
		return c, fmt.Errorf("%s: %w", name, err)
	}
	c.finish(lat)
	return c, nil
}

// commandThroughput seeds apps apps named <prefix>-<n> with a deploy each
// and then sends ops runner reports with inFlight in flight (each a
// command round trip through client): inFlight clients take turns between
// the apps they own, so each app has at most one command in flight, unless
// there are fewer apps than clients.
func commandThroughput(ctx context.Context, client *commandbus.Client, name, prefix string, ops, inFlight, apps int) (Case, error) {
	revisions := make([]string, apps)
	actor := events.Metadata{Actor: "bench"}
	if _, err := measureInFlight("seed", apps, inFlight, func(_, i int) error {
		o, err := client.Execute(ctx, events.NewCommand(fmt.Sprintf("%s-%d", prefix, i), events.Deploy{Command: "true"}, actor))
		if err == nil && o.Status != events.OutcomeAccepted {
			err = fmt.Errorf("seed deploy %s: %s", o.Status, o.Message)
		}
		revisions[i] = o.RevisionID
		return err
	}); err != nil {
		return Case{}, err
	}
	runnerID := uuid.Must(uuid.NewV7()).String()
	return measureInFlight(name, ops, inFlight, func(w, i int) error {
		app := owned(w, i, inFlight, apps)
		report := events.ReportRunner{RunnerID: runnerID, RevisionID: revisions[app], State: events.RunnerIdle}
		o, err := client.Execute(ctx, events.NewCommand(fmt.Sprintf("%s-%d", prefix, app), report, actor))
		if err == nil && o.Status != events.OutcomeAccepted {
			err = fmt.Errorf("outcome %s: %s", o.Status, o.Message)
		}
		return err
	})
}
