// Package processor runs the command processor: it consumes commands from
// the bus with named durable consumers (through Watermill), one per
// partition of the command stream, decides them with the App aggregate,
// appends the events, and publishes each outcome.
package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/workers/wmnats"
)

// ConsumerName is the durable consumer of the commands the command stream
// stores under the subject they were published on: those whose subject is
// malformed, and those stored before the stream was partitioned (by an
// older version, which consumed every command with this consumer). It is a
// stable name: every replica of the processor shares it.
const ConsumerName = "revline-command-processor"

// PartitionConsumerName is the durable consumer of partition n of the
// command stream (see commandbus.Partitions). It is a stable name: every
// replica of the processor shares it.
func PartitionConsumerName(n int) string {
	return ConsumerName + "-" + strconv.Itoa(n)
}

// maxAttempts bounds how often one command is re-decided after conflicts.
const maxAttempts = 50

// How the handler retries a command whose processing failed (the store is
// unreachable) before it gives the command back to JetStream.
const (
	handlerRetries          = 3
	handlerMaxRetryInterval = time.Second
)

// OutcomeParams describes one processed command to an OnOutcome hook.
type OutcomeParams struct {
	Outcome  events.Outcome
	Duration time.Duration
	// EventsAppended counts the events this processing appended.
	EventsAppended int
}

// Store is what the processor needs of the event store.
type Store interface {
	events.Appender
	events.AppLoader
}

// Verifier authenticates a command and authorizes it before it is
// decided (auth.Store in serve).
type Verifier interface {
	// Verify returns the actor the command's events record. It returns an
	// *events.Rejection (events.CodeUnauthenticated, events.CodeForbidden)
	// for a command that must not be decided, which is then rejected with
	// that code; any other error is transient, and the command is retried.
	Verify(ctx context.Context, c events.SignedCommand) (actor string, err error)
}

// Config configures a Processor.
type Config struct {
	// NATSURL is required: the processor's subscriber opens its own
	// connection (Watermill drains it on close).
	NATSURL string
	// NATSOptions are used for that connection (credentials, TLS).
	NATSOptions []nats.Option
	// JetStream is required, for outcomes and dead letters.
	JetStream jetstream.JetStream
	// Store is required.
	Store Store
	// Verifier is required: every command is verified before it is
	// decided, and its events record the actor the Verifier names.
	Verifier Verifier
	// Registry; default events.NewRegistry().
	Registry *events.Registry
	// Now is the clock handed to the decider; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
	// AckWait is how long JetStream waits for news of a command before it
	// redelivers it; default 1s. While a command is processed the processor
	// reports progress every AckWait/4, so AckWait bounds how long the
	// command in flight when a processor died waits to be redelivered, not
	// how long processing may take.
	AckWait time.Duration
	// ProcessTimeout bounds one attempt at processing a command; default
	// 30s. An attempt that runs out is retried, like a store outage.
	ProcessTimeout time.Duration
	// OnOutcome, optional, is called after each outcome is published.
	OnOutcome func(OutcomeParams)
	// Snapshots, optional, keeps apps' snapshots: a cold load of an app
	// reads its snapshot and the events after it, and the processor
	// writes an app's snapshot in the background every SnapshotEvery
	// events it folds in.
	Snapshots *events.SnapshotStore
	// SnapshotEvery; default 1,000.
	SnapshotEvery int
	// RefusalRetention is how long the outcome of a command refused before
	// it was decided (malformed, or refused by the Verifier) is kept;
	// default commandbus.RefusalRetention. Every other outcome is kept for
	// good.
	RefusalRetention time.Duration
}

func (c *Config) setDefaults() {
	if c.Registry == nil {
		c.Registry = events.NewRegistry()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.AckWait == 0 {
		c.AckWait = time.Second
	}
	if c.ProcessTimeout == 0 {
		c.ProcessTimeout = 30 * time.Second
	}
	if c.OnOutcome == nil {
		c.OnOutcome = func(OutcomeParams) {}
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = 1000
	}
	if c.RefusalRetention == 0 {
		c.RefusalRetention = commandbus.RefusalRetention
	}
}

// Validate reports missing required settings.
func (c Config) Validate() error {
	var errs []error
	if c.NATSURL == "" {
		errs = append(errs, errors.New("processor: NATSURL is required"))
	}
	if c.JetStream == nil {
		errs = append(errs, errors.New("processor: JetStream is required"))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("processor: Store is required"))
	}
	if c.Verifier == nil {
		errs = append(errs, errors.New("processor: Verifier is required"))
	}
	if c.AckWait < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("processor: AckWait must be at least 100ms, got %s", c.AckWait))
	}
	if c.ProcessTimeout <= 0 {
		errs = append(errs, fmt.Errorf("processor: ProcessTimeout must be positive, got %s", c.ProcessTimeout))
	}
	if c.SnapshotEvery < 0 {
		errs = append(errs, fmt.Errorf("processor: SnapshotEvery must be positive, got %d", c.SnapshotEvery))
	}
	return errors.Join(errs...)
}

// Processor decides commands. Create it with New and run it with Run.
type Processor struct {
	cfg      Config
	outcomes *commandbus.OutcomeLog
	snaps    *snapshotWriter

	mu   sync.Mutex
	apps map[string]*appCache
}

// recentCommands is how many of an app's latest accepted commands the
// cache remembers by id. A command's events are appended before its
// outcome is recorded, and no other command of the same app is decided
// until it is acknowledged; so a command whose events are stored but whose
// outcome is not (the processor died in between) is always among the
// app's latest, and a few entries bound the memory this needs. (A
// processor that stalls past the ack wait while another takes the command
// over sees the log move under it, and then looks the outcome up again:
// see decide.)
const recentCommands = 16

// appCache is the processor's cached view of one app, so that a command
// does not re-read the app's history. It is refreshed after a conflict.
type appCache struct {
	mu     sync.Mutex
	loaded bool
	state  aggregates.App
	// recent holds the outcomes of the app's latest accepted commands,
	// oldest first, at most recentCommands of them.
	recent []events.Outcome
	// unsnapshotted counts the events folded in since the app's snapshot
	// was last taken (or since its load, for one loaded without).
	unsnapshotted int
}

// New checks cfg and returns a Processor.
func New(cfg Config) (*Processor, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Processor{cfg: cfg, outcomes: commandbus.NewOutcomeLog(cfg.JetStream), apps: map[string]*appCache{}}
	if cfg.Snapshots != nil {
		p.snaps = newSnapshotWriter(cfg.Snapshots, cfg.Logger)
	}
	return p, nil
}

// Run consumes commands until ctx ends: the partitions side by side, each
// in order. It returns once the router has stopped.
func (p *Processor) Run(ctx context.Context) error {
	logger := watermill.NewSlogLoggerWithLevelMapping(p.cfg.Logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	stream, err := p.cfg.JetStream.Stream(ctx, commandbus.CommandStreamName)
	if err != nil {
		return fmt.Errorf("processor: command stream: %w", err)
	}
	router, err := wmnats.NewRouter(logger)
	if err != nil {
		return fmt.Errorf("processor: router: %w", err)
	}
	poison, err := middleware.PoisonQueueWithFilter(deadLetterPublisher{js: p.cfg.JetStream}, events.DeadLetterSubject, isPermanent)
	if err != nil {
		return fmt.Errorf("processor: poison queue: %w", err)
	}
	router.AddMiddleware(
		wmnats.KeepInProgress(p.cfg.JetStream.Conn(), p.cfg.AckWait/4),
		poison,
		middleware.Retry{
			MaxRetries:      handlerRetries,
			InitialInterval: 50 * time.Millisecond,
			MaxInterval:     handlerMaxRetryInterval,
			Multiplier:      2,
			ShouldRetry:     func(params middleware.RetryParams) bool { return !isPermanent(params.Err) },
			Logger:          logger,
		}.Middleware,
		middleware.Recoverer,
	)
	subs := make([]*wmnats.Subscriber, 0, commandbus.Partitions+1)
	defer func() {
		for _, sub := range subs {
			_ = sub.Close()
		}
	}()
	subscribe := func(durable, filter string, handler message.NoPublishHandlerFunc) error {
		sub, err := newSubscriber(p.cfg, logger, durable, filter)
		if err != nil {
			return err
		}
		subs = append(subs, sub)
		router.AddConsumerHandler(durable, CommandTopic, sub, handler)
		return nil
	}
	if err := subscribe(ConsumerName, events.CommandSubjectPrefix+">", p.handle); err != nil {
		return err
	}
	unpartitioned := make(chan struct{})
	go p.awaitUnpartitioned(ctx, stream, stream.CachedInfo().State.LastSeq, unpartitioned)
	for n := range commandbus.Partitions {
		if err := subscribe(PartitionConsumerName(n), commandbus.PartitionFilter(n), after(ctx, unpartitioned, p.handle)); err != nil {
			return err
		}
	}
	err = wmnats.Run(ctx, router, subs...)
	subs = nil // closed by the router
	return err
}

// after returns h, which waits until ready is closed before it handles
// its first message. A message that is still waiting when ctx ends is
// given back to JetStream.
func after(ctx context.Context, ready <-chan struct{}, h message.NoPublishHandlerFunc) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		select {
		case <-ready:
			return h(msg)
		case <-ctx.Done():
			return fmt.Errorf("processor stopped while %s waited for older commands: %w", msg.Metadata.Get(wmnats.MetadataSubject), ctx.Err())
		}
	}
}

// awaitUnpartitioned closes done once the command stream holds no command
// under the subject it was published on (the stream's subject transform
// moves every well-formed one into a partition), or ConsumerName has
// handled every command stored so up to sequence last, or has none left:
// commands an older version stored before the stream was partitioned.
// Until then the partitions wait, so that an app's commands stored before
// are decided before those stored after. On a stream that was partitioned
// from the start that is at once.
func (p *Processor) awaitUnpartitioned(ctx context.Context, stream jetstream.Stream, last uint64, done chan<- struct{}) {
	// A wait this long is worth a line in the log, with what it waits on.
	warnAt := time.Now().Add(5 * time.Second)
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		// Nothing stored unpartitioned: nothing to wait for, whether the
		// consumer answers or not (on a cluster its info was seen to be
		// "not found" for 30 s from one node while the others used it).
		if info, err := stream.Info(ctx, jetstream.WithSubjectFilter(events.CommandSubjectPrefix+">")); err == nil && len(info.State.Subjects) == 0 {
			close(done)
			return
		}
		consumer, err := p.cfg.JetStream.Consumer(ctx, commandbus.CommandStreamName, ConsumerName)
		switch {
		case err == nil:
			info := consumer.CachedInfo()
			if (info.NumPending == 0 && info.NumAckPending == 0) || info.AckFloor.Stream >= last {
				close(done)
				return
			}
			if time.Now().After(warnAt) {
				warnAt = time.Now().Add(time.Minute)
				p.cfg.Logger.Warn("the partitions still wait for commands stored before partitioning",
					"pending", info.NumPending, "ack_pending", info.NumAckPending, "ack_floor", info.AckFloor.Stream, "up_to", last)
			}
		case !errors.Is(err, jetstream.ErrConsumerNotFound) && ctx.Err() == nil:
			p.cfg.Logger.Warn("reading the progress of unpartitioned commands", "error", err)
		case time.Now().After(warnAt) && ctx.Err() == nil:
			warnAt = time.Now().Add(time.Minute)
			p.cfg.Logger.Warn("the partitions still wait for the consumer of unpartitioned commands to exist", "consumer", ConsumerName)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay): // JetStream offers no notification
		}
	}
}

// permanentError marks a command that can never succeed: it goes to the
// dead-letter subject instead of being retried.
type permanentError struct{ err error }

// Error implements the error interface.
func (e permanentError) Error() string { return e.err.Error() }

// Unwrap returns the underlying error, for errors.Is and errors.As.
func (e permanentError) Unwrap() error { return e.err }

func isPermanent(err error) bool {
	var perm permanentError
	var panicked middleware.RecoveredPanicError
	return errors.As(err, &perm) || errors.As(err, &panicked)
}

func (p *Processor) handle(msg *message.Message) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(msg.Context(), p.cfg.ProcessTimeout)
	defer cancel()
	// What is decoded, and dead-lettered, is the subject the client used.
	subject := commandbus.PublishedSubject(msg.Metadata.Get(wmnats.MetadataSubject))
	msg.Metadata.Set(wmnats.MetadataSubject, subject)
	cmd, err := p.cfg.Registry.DecodeCommandMsg(subject, msg.Metadata, msg.Payload)
	if err != nil {
		var malformed *events.MalformedCommandError
		if errors.As(err, &malformed) && malformed.CommandID != "" {
			o := events.Outcome{CommandID: malformed.CommandID, Status: events.OutcomeRejected, Code: malformed.Code, Message: err.Error()}
			// Not decided, and from a sender not verified: kept as a refusal.
			o, rerr := p.record(ctx, o, msg.Metadata.Get(events.HeaderKey), msg.Metadata.Get(events.HeaderContentType), p.cfg.RefusalRetention)
			if rerr != nil {
				return rerr
			}
			p.cfg.OnOutcome(OutcomeParams{Outcome: o, Duration: time.Since(start)})
		}
		p.cfg.Logger.Warn("malformed command sent to dead letter", "subject", subject, "error", err)
		return permanentError{err}
	}
	actor, refusal, err := p.verify(ctx, subject, msg, cmd)
	if err != nil {
		return err
	}
	if refusal != nil {
		o, accepted, err := p.acceptedBefore(ctx, cmd)
		if err != nil {
			return err
		}
		var keepFor time.Duration
		if !accepted {
			p.cfg.Logger.Warn("command refused", "app", cmd.App, "command", cmd.Type, "command_id", cmd.CommandID,
				"key", events.OutcomeKey(msg.Metadata.Get(events.HeaderKey)), "code", refusal.Code, "reason", refusal.Message)
			o = rejection(cmd, refusal)
			keepFor = p.cfg.RefusalRetention
		}
		o.Fingerprint = events.Fingerprint(cmd)
		if o, err = p.record(ctx, o, cmd.Key, cmd.ContentType, keepFor); err != nil {
			return err
		}
		p.cfg.OnOutcome(OutcomeParams{Outcome: o, Duration: time.Since(start)})
		return nil
	}
	cmd.Actor = actor
	attempt := &handling{}
	ctx = context.WithValue(ctx, handlingKey{}, attempt)
	defer p.answerPanic(ctx, cmd, attempt)
	outcome, appended, err := p.Process(ctx, cmd)
	var unreadable *events.UnreadableEventError
	if errors.As(err, &unreadable) {
		p.cfg.Logger.Error("command refused: the app's history cannot be read", "app", cmd.App, "command_id", cmd.CommandID, "error", err)
		o := events.Outcome{CommandID: cmd.CommandID, App: cmd.App, CommandType: cmd.Type, Status: events.OutcomeRejected, Code: events.CodeAppHistoryUnreadable, Message: err.Error(), Fingerprint: events.Fingerprint(cmd)}
		if o, err = p.record(ctx, o, cmd.Key, cmd.ContentType, 0); err != nil {
			return err
		}
		p.cfg.OnOutcome(OutcomeParams{Outcome: o, Duration: time.Since(start)})
		return permanentError{unreadable}
	}
	if err != nil {
		return err
	}
	if outcome.Duplicate || outcome.Code == events.CodeIdempotencyKeyReused {
		// Recorded before (or another command's): the client waiting for
		// it hears it, and nothing is stored.
		if err := p.outcomes.Announce(outcome, cmd.Key, cmd.ContentType); err != nil {
			return err
		}
	}
	p.cfg.OnOutcome(OutcomeParams{Outcome: outcome, Duration: time.Since(start), EventsAppended: appended})
	return nil
}

// verify asks the Verifier who sent cmd, the message it was decoded from,
// and returns the actor its events record, or the rejection that refuses
// it. An error is transient.
func (p *Processor) verify(ctx context.Context, subject string, msg *message.Message, cmd events.CommandEnvelope) (string, *events.Rejection, error) {
	// A command without a stored time (never from JetStream) counts as
	// stored at the epoch, so that no signature is young enough.
	storedAt, _ := time.Parse(time.RFC3339Nano, msg.Metadata.Get(wmnats.MetadataStoredAt))
	sig, err := events.ReadSignature(subject, msg.Metadata, msg.Payload)
	if err != nil {
		return "", &events.Rejection{Code: events.CodeUnauthenticated, Message: err.Error()}, nil
	}
	actor, err := p.cfg.Verifier.Verify(ctx, events.SignedCommand{Command: cmd, Signature: sig, StoredAt: storedAt})
	var rej *events.Rejection
	if errors.As(err, &rej) {
		return "", rej, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("verify %s for %q: %w", cmd.Type, cmd.App, err)
	}
	return actor, nil, nil
}

// acceptedBefore returns the acceptance of cmd if its events are in its
// app's log already. A command accepted before a crash that lost its
// outcome is delivered again, and is answered by what it did, whatever its
// signature says now (its token revoked meanwhile, say): an outcome is
// the truth of the log, and is final. An app whose history cannot be read
// has no such acceptance to find.
func (p *Processor) acceptedBefore(ctx context.Context, cmd events.CommandEnvelope) (o events.Outcome, ok bool, err error) {
	p.mu.Lock()
	_, cached := p.apps[cmd.App]
	p.mu.Unlock()
	cache := p.cache(cmd.App)
	if !cached {
		// Refusals come from any token that may send commands, for any app
		// name its glob lets it publish: an app loaded only for this check
		// is not kept.
		defer func() {
			if !ok {
				p.mu.Lock()
				if p.apps[cmd.App] == cache {
					delete(p.apps, cmd.App)
				}
				p.mu.Unlock()
			}
		}()
	}
	cache.mu.Lock()
	defer cache.mu.Unlock()
	loaded, err := p.refresh(ctx, cmd.App, cache)
	if err == nil && !loaded {
		_, err = p.catchUp(ctx, cmd.App, cache) // another replica may have appended it
	}
	var unreadable *events.UnreadableEventError
	if errors.As(err, &unreadable) {
		return events.Outcome{}, false, nil
	} else if err != nil {
		return events.Outcome{}, false, err
	}
	o, ok = cache.accepted(cmd.CommandID)
	o.CommandType = cmd.Type
	return o, ok, nil
}

// answerPanic, deferred, gives a command the processor panicked on an
// outcome before the panic goes on (to the Recoverer, and the command to
// the dead letters): its client would otherwise wait in vain. The app's
// cache may be half updated, so it is dropped, and the log says what
// happened: the acceptance if the command's events are there, else an
// internal_error rejection. If the log cannot be read, nothing is
// recorded (a resend is decided again). An outcome recorded already stands.
func (p *Processor) answerPanic(ctx context.Context, cmd events.CommandEnvelope, attempt *handling) {
	recovered := recover()
	if recovered == nil {
		return
	}
	defer panic(recovered)
	cache := p.cache(cmd.App)
	if cache.mu.TryLock() {
		cache.loaded, cache.state, cache.recent, cache.unsnapshotted = false, aggregates.App{Name: cmd.App}, nil, 0
		cache.mu.Unlock()
	}
	o, known := p.outcomeFromLog(ctx, cmd)
	if !known && attempt.appending.Load() {
		p.cfg.Logger.Error("no outcome for a command the processor panicked on: it may have appended events, and its app's log cannot be read", "command_id", cmd.CommandID)
		return
	}
	if !known {
		// Nothing was appended while handling it: a refusal is the truth.
		o = events.Outcome{CommandID: cmd.CommandID, App: cmd.App, CommandType: cmd.Type, Status: events.OutcomeRejected, Code: events.CodeInternalError}
	}
	if o.Status == events.OutcomeRejected {
		o.Message = aggregates.FitText(fmt.Sprintf("the server failed on this command: %v", recovered), aggregates.MaxReasonBytes)
	}
	o.Fingerprint = events.Fingerprint(cmd)
	if _, err := p.record(ctx, o, cmd.Key, cmd.ContentType, 0); err != nil {
		p.cfg.Logger.Error("recording the outcome of a command the processor panicked on", "command_id", cmd.CommandID, "error", err)
	}
}

// handling is what the handler of one delivery knows of its command, for
// answerPanic: whether an append was tried.
type handling struct{ appending atomic.Bool }

type handlingKey struct{}

// outcomeFromLog reads cmd's app's whole log, without folding it (a fold
// may be what panicked), and returns the acceptance of cmd if events it
// caused are there, else an internal_error rejection; known is false if
// the log cannot be read.
func (p *Processor) outcomeFromLog(ctx context.Context, cmd events.CommandEnvelope) (o events.Outcome, known bool) {
	defer func() {
		if recover() != nil {
			known = false
		}
	}()
	history, err := p.cfg.Store.Load(ctx, cmd.App, 0)
	if err != nil {
		return events.Outcome{}, false
	}
	o = events.Outcome{CommandID: cmd.CommandID, App: cmd.App, CommandType: cmd.Type, Status: events.OutcomeRejected, Code: events.CodeInternalError}
	for _, env := range history {
		if env.CausationID != cmd.CommandID {
			continue
		}
		if o.Status != events.OutcomeAccepted {
			o = events.Outcome{CommandID: cmd.CommandID, App: cmd.App, CommandType: cmd.Type, Status: events.OutcomeAccepted, FirstSequence: env.Sequence}
		}
		o.LastSequence = env.Sequence
		switch ev := env.Event.(type) {
		case events.RevisionCreated:
			o.RevisionID = ev.RevisionID
		case events.RolloutRequested:
			o.RolloutID = ev.RolloutID
		}
	}
	return o, true
}

// Process decides one command, appends its events and records its outcome,
// unless an outcome of the same command id was recorded before: that one
// is final, and returned with Duplicate set, whatever the app's state is
// now. It re-decides on fresh state after a conflict. It returns the
// outcome and how many events it appended. An error means the command
// could not be processed now (the store is unreachable) and should be
// retried; an *events.UnreadableEventError means it never can be.
func (p *Processor) Process(ctx context.Context, cmd events.CommandEnvelope) (events.Outcome, int, error) {
	stored, found, err := p.outcomes.Lookup(ctx, cmd.CommandID)
	if err != nil {
		return events.Outcome{}, 0, err
	}
	if found {
		if !stored.Answers(cmd) {
			return events.ReusedKey(cmd), 0, nil
		}
		stored.Duplicate = true
		return stored, 0, nil
	}
	outcome, appended, recordedMeanwhile, err := p.decide(ctx, cmd)
	if err != nil {
		return events.Outcome{}, 0, err
	}
	if recordedMeanwhile {
		return outcome, 0, nil
	}
	// Only now may the command be acknowledged: a crash before this line
	// redelivers it, and decide finds its events by causation id.
	outcome.Fingerprint = events.Fingerprint(cmd)
	final, err := p.record(ctx, outcome, cmd.Key, cmd.ContentType, 0)
	if err != nil {
		return events.Outcome{}, 0, err
	}
	if final.Duplicate && appended > 0 {
		p.cfg.Logger.Error("another processor recorded a different outcome for a command whose events this one appended",
			"command_id", cmd.CommandID, "app", cmd.App, "recorded", final.Status, "appended", appended)
	}
	return final, appended, nil
}

// record stores o as the command's final outcome, or returns the outcome
// recorded earlier (marked Duplicate) if there is one. keepFor, when not 0,
// is how long the outcome is kept (a refusal to decide the command).
func (p *Processor) record(ctx context.Context, o events.Outcome, key, contentType string, keepFor time.Duration) (events.Outcome, error) {
	duplicate := o.Duplicate
	o.Duplicate = false // what is stored is the first answer itself
	stored, fresh, err := p.outcomes.Record(ctx, o, key, contentType, keepFor)
	if err != nil {
		return events.Outcome{}, err
	}
	stored.Duplicate = duplicate || !fresh
	return stored, nil
}

// decide decides cmd on the app's state and appends its events. recorded
// is true when the outcome it returns is one another processor recorded
// meanwhile.
func (p *Processor) decide(ctx context.Context, cmd events.CommandEnvelope) (o events.Outcome, appended int, recorded bool, err error) {
	cache := p.cache(cmd.App)
	cache.mu.Lock()
	defer cache.mu.Unlock()
	assignIDs(&cmd)
	// moved is set once another writer is seen to have appended to the app
	// while this command was being decided. Normally no other command of
	// the app is decided before this one is acknowledged; but a processor
	// that stalled past the ack wait (a pause, a lost connection) finds
	// that another one took the command over, decided it, and went on to
	// later ones. Its outcome is then the one recorded: look again.
	moved := false
	for range maxAttempts {
		// A cold cache is read after the outcome was looked up: what it
		// reads may come from a processor that decided this command since.
		loaded, err := p.refresh(ctx, cmd.App, cache)
		if err != nil {
			return events.Outcome{}, 0, false, err
		}
		moved = moved || loaded
		if done, ok := cache.accepted(cmd.CommandID); ok {
			done.CommandType, done.Duplicate = cmd.Type, true
			return done, 0, false, nil
		}
		if moved {
			stored, found, err := p.outcomes.Lookup(ctx, cmd.CommandID)
			if err != nil {
				return events.Outcome{}, 0, false, err
			}
			if found {
				stored.Duplicate = true
				return stored, 0, true, nil
			}
			moved = false
		}
		evs, refusal := aggregates.Decide(cache.state, cmd.Command, p.cfg.Now())
		if refusal != nil {
			// A refusal is not checked by an append: make sure it was not
			// decided on a cache another replica has moved past.
			if moved, err = p.catchUp(ctx, cmd.App, cache); err != nil {
				return events.Outcome{}, 0, false, err
			}
			if moved {
				continue
			}
			return rejection(cmd, refusal), 0, false, nil
		}
		// The events chain from the hash of the last event of the state
		// they were decided on. An append checks that state's version, so
		// a chain from a stale state is never stored: a conflict re-decides
		// (and re-chains) on the state that includes what the other writer
		// appended, and the chain stays one line.
		envs, err := events.Chain(cache.state.LastHash, p.envelopes(cmd, evs))
		if err != nil {
			return events.Outcome{}, 0, false, fmt.Errorf("process %s for %q: %w", cmd.Type, cmd.App, err)
		}
		if attempt, ok := ctx.Value(handlingKey{}).(*handling); ok {
			attempt.appending.Store(true)
		}
		res, err := p.cfg.Store.Append(ctx, cmd.App, cache.state.Version, envs)
		if errors.Is(err, events.ErrConflict) || (err == nil && res.Duplicate) {
			cache.loaded, moved = false, true // another writer moved on: read what it wrote
			continue
		}
		if err != nil {
			cache.loaded = false // the append may or may not have landed
			return events.Outcome{}, 0, false, fmt.Errorf("process %s for %q: %w", cmd.Type, cmd.App, err)
		}
		for i := range envs {
			envs[i].Sequence = res.FirstSequence + uint64(i)
			cache.apply(envs[i])
		}
		p.maybeSnapshot(cache)
		done, _ := cache.accepted(cmd.CommandID)
		done.CommandType = cmd.Type
		return done, len(envs), false, nil
	}
	return events.Outcome{}, 0, false, fmt.Errorf("process %s for %q: still conflicting after %d attempts", cmd.Type, cmd.App, maxAttempts)
}

// assignIDs gives a deploy or rollout the id it creates, once per
// processing, so that re-deciding after a conflict reuses it.
func assignIDs(cmd *events.CommandEnvelope) {
	switch c := cmd.Command.(type) {
	case events.Deploy:
		if c.RevisionID == "" {
			c.RevisionID = events.RevisionIDFor(cmd.CommandID)
			cmd.Command = c
		}
	case events.Rollout:
		if c.RolloutID == "" {
			c.RolloutID = uuid.Must(uuid.NewV7()).String()
			cmd.Command = c
		}
	}
}

func rejection(cmd events.CommandEnvelope, err error) events.Outcome {
	o := events.Outcome{CommandID: cmd.CommandID, App: cmd.App, CommandType: cmd.Type, Status: events.OutcomeRejected, Code: events.CodeMalformedCommand, Message: err.Error()}
	var rej *events.Rejection
	if errors.As(err, &rej) {
		o.Code = rej.Code
		if rej.NoOp {
			o.Status = events.OutcomeNoOp
		}
	}
	return o
}

func (p *Processor) envelopes(cmd events.CommandEnvelope, evs []events.Event) []events.Envelope {
	meta := cmd.Metadata
	meta.CausationID = cmd.CommandID
	if meta.CorrelationID == "" {
		meta.CorrelationID = cmd.CommandID
	}
	if meta.Actor == "" {
		meta.Actor = "unknown"
	}
	now := p.cfg.Now()
	envs := make([]events.Envelope, len(evs))
	for i, ev := range evs {
		envs[i] = events.NewEnvelope(cmd.App, ev, meta, now)
	}
	return envs
}

func (p *Processor) cache(app string) *appCache {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.apps[app]
	if !ok {
		c = &appCache{state: aggregates.App{Name: app}}
		p.apps[app] = c
	}
	return c
}

// refresh brings the cache up to date when it is not known to be, and
// reports whether it read the log to do so.
func (p *Processor) refresh(ctx context.Context, app string, c *appCache) (bool, error) {
	if c.loaded {
		return false, nil
	}
	if c.state.Version == 0 {
		if err := p.loadCold(ctx, app, c); err != nil {
			return false, err
		}
	} else if _, err := p.catchUp(ctx, app, c); err != nil {
		return false, err
	}
	c.loaded = true
	return true, nil
}

// loadCold builds the cache of an app it holds nothing of: from the app's
// snapshot and the events after it, or from its whole history.
func (p *Processor) loadCold(ctx context.Context, app string, c *appCache) error {
	var snap aggregates.Snapshot
	history, restored, err := p.cfg.Snapshots.LoadApp(ctx, p.cfg.Store, app, func(stored events.Snapshot) (err error) {
		snap, err = aggregates.DecodeSnapshot(app, stored)
		return err
	})
	if err != nil {
		return fmt.Errorf("load app %q: %w", app, err)
	}
	if restored {
		c.state, c.recent = snap.State, snap.Accepted
	}
	for _, env := range history {
		c.apply(env)
	}
	return nil
}

// catchUp folds in events appended since the cache was last brought up to
// date, by this processor or another, and reports whether there were any.
func (p *Processor) catchUp(ctx context.Context, app string, c *appCache) (bool, error) {
	history, err := p.cfg.Store.Load(ctx, app, c.state.Version)
	if err != nil {
		return false, fmt.Errorf("load app %q: %w", app, err)
	}
	for _, env := range history {
		c.apply(env)
	}
	return len(history) > 0, nil
}

// apply folds env into the cached state and remembers the outcome of the
// command that caused it among the app's recent commands.
func (c *appCache) apply(env events.Envelope) {
	c.state = aggregates.Evolve(c.state, env)
	c.unsnapshotted++
	if env.Event == nil {
		return // not an event: it only moves the app's sequence
	}
	// A command's events are stored together, so they extend the last entry.
	if n := len(c.recent); n == 0 || c.recent[n-1].CommandID != env.CausationID {
		if n == recentCommands {
			c.recent = append(c.recent[:0], c.recent[1:]...)
		}
		c.recent = append(c.recent, events.Outcome{CommandID: env.CausationID, App: env.App, Status: events.OutcomeAccepted, FirstSequence: env.Sequence})
	}
	o := &c.recent[len(c.recent)-1]
	o.LastSequence = env.Sequence
	switch ev := env.Event.(type) {
	case events.RevisionCreated:
		o.CommandType, o.RevisionID = events.CmdDeploy, ev.RevisionID
	case events.RolloutRequested:
		o.CommandType, o.RolloutID = events.CmdRollout, ev.RolloutID
	}
}

// accepted returns the outcome of commandID if it is one of the app's
// recent accepted commands.
func (c *appCache) accepted(commandID string) (events.Outcome, bool) {
	for i := len(c.recent) - 1; i >= 0; i-- {
		if c.recent[i].CommandID == commandID {
			return c.recent[i], true
		}
	}
	return events.Outcome{}, false
}
