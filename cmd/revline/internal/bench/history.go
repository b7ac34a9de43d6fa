package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/workers/processor"
)

// Case ids of the history cases: what a long history costs.
const (
	CaseRawReplay           = "raw_ordered_consumer_replay"
	CaseProjectionRebuild   = "projection_rebuild"
	CaseReadModelSnapshot   = "read_model_startup_snapshot"
	CaseCommandFewRevisions = "command_few_revisions"
	CaseCommandManyRevs     = "command_many_revisions"
	CaseColdCommandFold     = "cold_command_many_revisions_full_fold"
	CaseColdCommandSnapshot = "cold_command_many_revisions_snapshot"
	CaseStartupFold         = "startup_full_fold"
	CaseStartupSnapshot     = "startup_snapshots"
)

// Sizes and targets of the history cases (issue 11).
const (
	// FewRevisions and ManyRevisions (the default of Config.Revisions)
	// are the sizes of the two apps whose command latency is compared.
	FewRevisions  = 10
	ManyRevisions = 10000
	// ColdSamples is how many cold commands (each on a fresh processor)
	// are measured on the app with ManyRevisions, with and without its
	// snapshot.
	ColdSamples = 5
	// StartupApps share the events of the start-up cases.
	StartupApps = 100
	// TargetRebuildRatio: a projection rebuild should reach this share of
	// a raw ordered-consumer replay's rate.
	TargetRebuildRatio = 0.70
	// TargetManyRevisionsP50Ratio bounds a command's p50 on the app with
	// ManyRevisions against that on the app with FewRevisions.
	TargetManyRevisionsP50Ratio = 1.1
	// TargetStartupSpeedup: a start-up with snapshots should be this many
	// times faster than one that folds every app's history (or, for the
	// read model, the whole log).
	TargetStartupSpeedup = 20
	// seedBatch is how many runner reports one seeded append holds.
	seedBatch = 100
)

// history is what the history cases share: the server, the store, the
// snapshots, and a running processor with its client.
type history struct {
	url       string
	js        jetstream.JetStream
	store     *events.JetStreamStore
	snapshots *events.SnapshotStore
	verifier  processor.Verifier
	client    *commandbus.Client
	ops       int
	// revisions is the size of the large app.
	revisions int
}

// runHistory measures the history cases: command latency on a small and a
// large app, cold commands on the large one with and without its
// snapshot, Revline against the textbook handler on long histories,
// start-up with startupEvents events (if any) with and without
// snapshots, and finally a projection rebuild of the whole log against a
// raw replay of it.
func runHistory(ctx context.Context, h history, startupEvents int, r *Report) error {
	few, err := h.seedRevisions(ctx, "few-revisions", FewRevisions)
	if err != nil {
		return err
	}
	many, err := h.seedRevisions(ctx, "many-revisions", h.revisions)
	if err != nil {
		return err
	}
	if err := h.commandLatency(ctx, few, many, r); err != nil {
		return err
	}
	if err := h.coldCommands(ctx, many, r); err != nil {
		return err
	}
	if err := h.textbook(ctx, r); err != nil {
		return err
	}
	if startupEvents > 0 {
		if err := h.startup(ctx, startupEvents, r); err != nil {
			return err
		}
	}
	return h.rebuild(ctx, r)
}

// seeded is an app seeded with a history.
type seeded struct {
	app, revisionID string
	last            uint64
}

// seedRevisions appends, unmeasured, n deploys to app, as the processor
// would (decided on the folded state).
func (h history) seedRevisions(ctx context.Context, app string, n int) (seeded, error) {
	state := aggregates.App{Name: app}
	s := seeded{app: app}
	for i := range n {
		cmd := events.NewCommand(app, events.Deploy{Command: "./web", Message: fmt.Sprintf("revision %d", i+1)}, events.Metadata{Actor: "bench"})
		deploy := cmd.Command.(events.Deploy)
		deploy.RevisionID = events.RevisionIDFor(cmd.CommandID)
		evs, err := aggregates.Decide(state, deploy, time.Now())
		if err != nil {
			return s, fmt.Errorf("seed %s: %w", app, err)
		}
		envs := make([]events.Envelope, len(evs))
		for j, ev := range evs {
			envs[j] = events.NewEnvelope(app, ev, events.Metadata{Actor: "bench", CausationID: cmd.CommandID, CorrelationID: cmd.CommandID}, time.Now())
		}
		res, err := h.store.Append(ctx, app, state.Version, envs)
		if err != nil {
			return s, fmt.Errorf("seed %s: %w", app, err)
		}
		for j := range envs {
			envs[j].Sequence = res.FirstSequence + uint64(j)
			state = aggregates.Evolve(state, envs[j])
		}
		s.revisionID, s.last = deploy.RevisionID, res.LastSequence
	}
	return s, nil
}

// seedReports appends, unmeasured, n runner reports to s's app, in
// batches of seedBatch.
func (h history) seedReports(ctx context.Context, s *seeded, n int) error {
	runners := []string{uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()}
	states := []events.RunnerState{events.RunnerIdle, events.RunnerRunning}
	for done := 0; done < n; {
		batch := min(seedBatch, n-done)
		meta := events.Metadata{Actor: "bench", CausationID: uuid.NewString()}
		envs := make([]events.Envelope, batch)
		for j := range envs {
			i := done + j
			ev := events.RunnerStateChanged(events.ReportRunner{RunnerID: runners[i%len(runners)], RevisionID: s.revisionID, State: states[i/len(runners)%len(states)], PID: 1000 + i%1000, Port: 8000})
			envs[j] = events.NewEnvelope(s.app, ev, meta, time.Now())
		}
		res, err := h.store.Append(ctx, s.app, s.last, envs)
		if err != nil {
			return fmt.Errorf("seed %s: %w", s.app, err)
		}
		s.last, done = res.LastSequence, done+batch
	}
	return nil
}

func report(s seeded) events.Command {
	return events.ReportRunner{RunnerID: uuid.NewString(), RevisionID: s.revisionID, State: events.RunnerIdle}
}

// commandLatency measures runner reports one at a time through the bus
// to the small app and to the large one, both already in the running
// processor's cache (one unmeasured command each first).
func (h history) commandLatency(ctx context.Context, few, many seeded, r *Report) error {
	for _, c := range []struct {
		id string
		s  seeded
		n  int
	}{{CaseCommandFewRevisions, few, FewRevisions}, {CaseCommandManyRevs, many, h.revisions}} {
		send := func(int) error {
			o, err := h.client.Execute(ctx, events.NewCommand(c.s.app, report(c.s), events.Metadata{Actor: "bench"}))
			if err == nil && o.Status != events.OutcomeAccepted {
				err = fmt.Errorf("outcome %s: %s", o.Status, o.Message)
			}
			return err
		}
		if err := send(0); err != nil {
			return fmt.Errorf("warm-up of %s: %w", c.s.app, err)
		}
		measured, err := measure(fmt.Sprintf("Revline command round trip, app with %d revisions", c.n), h.ops, send)
		if err != nil {
			return err
		}
		r.Cases[c.id] = measured
	}
	r.Comparisons["command_many_vs_few_revisions"] = compare(r.Cases, CaseCommandManyRevs, CaseCommandFewRevisions, &Target{MaxP50Ratio: TargetManyRevisionsP50Ratio})
	return nil
}

// coldCommands measures the first command to the large app on fresh
// processors (a cold cache: the app is loaded first), ColdSamples times
// without snapshots and ColdSamples times with the app's snapshot, which
// a processor writing one after every append writes first.
func (h history) coldCommands(ctx context.Context, many seeded, r *Report) error {
	if err := h.snapshot(ctx, many); err != nil {
		return err
	}
	for _, c := range []struct {
		id    string
		snaps *events.SnapshotStore
		how   string
	}{{CaseColdCommandFold, nil, "folding its whole history"}, {CaseColdCommandSnapshot, h.snapshots, "from its snapshot"}} {
		name := fmt.Sprintf("Revline cold command, app with %d revisions, loaded %s", h.revisions, c.how)
		measured, err := measure(name, ColdSamples, func(int) error {
			proc, err := h.processor(c.snaps, 0)
			if err != nil {
				return err
			}
			return process(ctx, proc, events.NewCommand(many.app, report(many), events.Metadata{Actor: "bench"}))
		})
		if err != nil {
			return err
		}
		r.Cases[c.id] = measured
	}
	r.Comparisons["cold_command_snapshot_vs_full_fold"] = compare(r.Cases, CaseColdCommandSnapshot, CaseColdCommandFold, nil)
	return nil
}

// snapshot has s's app snapshotted up to its end: a fresh processor that
// snapshots after every append decides one command for it.
func (h history) snapshot(ctx context.Context, s seeded) error {
	proc, err := h.processor(h.snapshots, 1)
	if err != nil {
		return err
	}
	if err := process(ctx, proc, events.NewCommand(s.app, report(s), events.Metadata{Actor: "bench"})); err != nil {
		return err
	}
	last, err := h.store.LastAppSequence(ctx, s.app)
	if err != nil {
		return err
	}
	return h.awaitSnapshot(ctx, s.app, last)
}

// awaitSnapshot waits until the snapshot of app covers at least sequence
// atLeast: the processor writes it in the background.
func (h history) awaitSnapshot(ctx context.Context, app string, atLeast uint64) error {
	deadline := time.Now().Add(time.Minute)
	for {
		snap, found, err := h.snapshots.Get(ctx, events.AppSnapshotKey(app))
		if err != nil {
			return err
		}
		if found && snap.Sequence >= atLeast {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no snapshot of %s at sequence %d after a minute (the processor's log says why)", app, atLeast)
		}
		select { // the bucket's watch would do, but a poll is enough here
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// processor returns a processor with a cold cache, snapshotting every
// every events (0: the default) if it has snaps.
func (h history) processor(snaps *events.SnapshotStore, every int) (*processor.Processor, error) {
	return processor.New(processor.Config{NATSURL: h.url, JetStream: h.js, Store: h.store, Verifier: h.verifier, Snapshots: snaps, SnapshotEvery: every})
}

// process decides cmd on proc directly (no bus), and wants it accepted.
func process(ctx context.Context, proc *processor.Processor, cmd events.CommandEnvelope) error {
	o, _, err := proc.Process(ctx, cmd)
	if err == nil && o.Status != events.OutcomeAccepted {
		err = fmt.Errorf("%s: outcome %s: %s", cmd.App, o.Status, o.Message)
	}
	return err
}

// startup seeds total events over StartupApps apps, then measures what a
// processor's start-up costs: its first command to every app, the apps
// loaded one after the other, without snapshots; then, once a processor
// has written every app's snapshot, with them.
func (h history) startup(ctx context.Context, total int, r *Report) error {
	apps := make([]seeded, min(StartupApps, max(1, total/(seedBatch+1))))
	errs := make([]error, len(apps))
	var wg sync.WaitGroup
	for w := range 4 { // seeding is not measured: appends in parallel
		wg.Go(func() {
			for i := w; i < len(apps); i += 4 {
				s, err := h.seedRevisions(ctx, fmt.Sprintf("startup-%03d", i), 1)
				if err == nil {
					err = h.seedReports(ctx, &s, total/len(apps)-1)
				}
				apps[i], errs[i] = s, err
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	first := func(name string, snaps *events.SnapshotStore, every int) (Case, error) {
		proc, err := h.processor(snaps, every)
		if err != nil {
			return Case{}, err
		}
		return measure(name, len(apps), func(i int) error {
			return process(ctx, proc, events.NewCommand(apps[i].app, report(apps[i]), events.Metadata{Actor: "bench"}))
		})
	}
	what := fmt.Sprintf("%d events over %d apps", total, len(apps))
	fold, err := first("Revline start-up (first command to each app), "+what+", folding every history", nil, 0)
	if err != nil {
		return err
	}
	for _, s := range apps {
		if err := h.snapshot(ctx, s); err != nil {
			return err
		}
	}
	snap, err := first("Revline start-up (first command to each app), "+what+", from snapshots", h.snapshots, 0)
	if err != nil {
		return err
	}
	r.Cases[CaseStartupFold], r.Cases[CaseStartupSnapshot] = fold, snap
	r.Comparisons["startup_snapshots_vs_full_fold"] = compare(r.Cases, CaseStartupSnapshot, CaseStartupFold, &Target{MinThroughputRatio: TargetStartupSpeedup})
	return nil
}

// rebuild replays the whole event log twice: with a raw ordered consumer
// that only counts the messages, and as a projection rebuild (decode and
// apply every event to a fresh revision-history model).
func (h history) rebuild(ctx context.Context, r *Report) error {
	last, err := h.store.LastSequence(ctx)
	if err != nil {
		return err
	}
	stream, err := h.js.Stream(ctx, events.EventStreamName)
	if err != nil {
		return err
	}
	raw := Case{Name: fmt.Sprintf("raw ordered-consumer replay of the event log (%d messages)", last), Ops: int(last), Concurrency: 1}
	start := time.Now()
	if err := replay(ctx, stream, last); err != nil {
		return err
	}
	raw.elapsed = time.Since(start)
	raw.finish(nil)
	rebuilt := Case{Name: fmt.Sprintf("Revline projection rebuild of the event log (%d events)", last), Ops: int(last), Concurrency: 1}
	start = time.Now()
	model, err := projections.Rebuild(ctx, h.store, last)
	if err != nil {
		return err
	}
	rebuilt.elapsed = time.Since(start)
	rebuilt.finish(nil)
	restored, err := h.restoreReadModel(ctx, model)
	if err != nil {
		return err
	}
	r.Cases[CaseRawReplay], r.Cases[CaseProjectionRebuild], r.Cases[CaseReadModelSnapshot] = raw, rebuilt, restored
	r.Comparisons["projection_rebuild_vs_raw_replay"] = compare(r.Cases, CaseProjectionRebuild, CaseRawReplay, &Target{MinThroughputRatio: TargetRebuildRatio})
	r.Comparisons["read_model_snapshot_vs_rebuild"] = compare(r.Cases, CaseReadModelSnapshot, CaseProjectionRebuild, &Target{MinThroughputRatio: TargetStartupSpeedup})
	return nil
}

// restoreReadModel measures what serve's start-up costs with the read
// model's snapshot: model's snapshot is written (unmeasured), then a fresh
// model restores it, checked against the log as serve does. Its ops are
// the events the snapshot covers, so that its rate compares with a
// rebuild's.
func (h history) restoreReadModel(ctx context.Context, model *projections.RevisionHistory) (Case, error) {
	snaps, err := events.EnsureReadModelStore(ctx, h.js, 1)
	if err != nil {
		return Case{}, err
	}
	data, checkpoint, err := model.Snapshot()
	if err != nil {
		return Case{}, err
	}
	if err := snaps.Put(ctx, events.Snapshot{Schema: projections.SnapshotSchema, Sequence: checkpoint, Data: data}); err != nil {
		return Case{}, err
	}
	c := Case{Name: fmt.Sprintf("Revline read model start-up from its snapshot (%d events, %d bytes)", checkpoint, len(data)), Ops: int(checkpoint), Concurrency: 1}
	start := time.Now()
	at, ignored, err := projections.NewRevisionHistory().RestoreFrom(ctx, snaps, h.store)
	if err == nil && at != checkpoint {
		err = fmt.Errorf("restored at %d, want %d (%s)", at, checkpoint, ignored)
	}
	if err != nil {
		return Case{}, fmt.Errorf("read model start-up: %w", err)
	}
	c.elapsed = time.Since(start)
	c.finish(nil)
	return c, nil
}

// replay reads stream from its first message to sequence last with an
// ordered consumer's callback, decoding nothing.
func replay(ctx context.Context, stream jetstream.Stream, last uint64) error {
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	done := make(chan struct{})
	var once sync.Once
	consuming, err := cons.Consume(func(msg jetstream.Msg) {
		if meta, err := msg.Metadata(); err == nil && meta.Sequence.Stream >= last {
			once.Do(func() { close(done) })
		}
	})
	if err != nil {
		return err
	}
	defer consuming.Stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("raw replay: %w", ctx.Err())
	}
}
