// Package processor runs the command processor: it consumes commands from
// the bus with a named durable consumer (through Watermill), decides them
// with the App aggregate, appends the events, and publishes each outcome.
package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
	"github.com/revline/revline/workers/wmnats"
)

// ConsumerName is the durable consumer of the command stream. It is a
// stable name: every replica of the processor shares it.
const ConsumerName = "revline-command-processor"

// maxAttempts bounds how often one command is re-decided after conflicts.
const maxAttempts = 50

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
	// Registry; default events.NewRegistry().
	Registry *events.Registry
	// Now is the clock handed to the decider; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
	// AckWait is how long a command may take before JetStream redelivers
	// it; default 10s. Commands take milliseconds; after a crash the
	// command that was in flight blocks the next ones for this long.
	AckWait time.Duration
	// OnOutcome, optional, is called after each outcome is published.
	OnOutcome func(OutcomeParams)
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
		c.AckWait = 10 * time.Second
	}
	if c.OnOutcome == nil {
		c.OnOutcome = func(OutcomeParams) {}
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
	return errors.Join(errs...)
}

// Processor decides commands. Create it with New and run it with Run.
type Processor struct {
	cfg Config

	mu   sync.Mutex
	apps map[string]*appCache
}

// appCache is the processor's cached view of one app, so that a command
// does not re-read the app's history. It is refreshed after a conflict.
type appCache struct {
	mu      sync.Mutex
	loaded  bool
	state   aggregates.App
	applied map[string]events.Outcome // by command id
}

// New checks cfg and returns a Processor.
func New(cfg Config) (*Processor, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Processor{cfg: cfg, apps: map[string]*appCache{}}, nil
}

// Run consumes commands until ctx ends. It returns once the router has
// stopped.
func (p *Processor) Run(ctx context.Context) error {
	logger := watermill.NewSlogLoggerWithLevelMapping(p.cfg.Logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	sub, err := newSubscriber(p.cfg, logger)
	if err != nil {
		return err
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
		poison,
		middleware.Retry{
			MaxRetries:      3,
			InitialInterval: 50 * time.Millisecond,
			MaxInterval:     time.Second,
			Multiplier:      2,
			ShouldRetry:     func(params middleware.RetryParams) bool { return !isPermanent(params.Err) },
			Logger:          logger,
		}.Middleware,
		middleware.Recoverer,
	)
	router.AddConsumerHandler(ConsumerName, CommandTopic, sub, p.handle)
	return wmnats.Run(ctx, router, sub)
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
	cmd, err := p.cfg.Registry.DecodeCommandMsg(msg.Metadata.Get(wmnats.MetadataSubject), msg.Metadata, msg.Payload)
	if err != nil {
		var malformed *events.MalformedCommandError
		if errors.As(err, &malformed) && malformed.CommandID != "" {
			o := events.Outcome{CommandID: malformed.CommandID, Status: events.OutcomeRejected, Code: malformed.Code, Message: err.Error()}
			if perr := p.publishOutcome(msg.Context(), o, msg.Metadata.Get(events.HeaderContentType)); perr != nil {
				return perr
			}
			p.cfg.OnOutcome(OutcomeParams{Outcome: o, Duration: time.Since(start)})
		}
		p.cfg.Logger.Warn("malformed command sent to dead letter", "subject", msg.Metadata.Get(wmnats.MetadataSubject), "error", err)
		return permanentError{err}
	}
	outcome, appended, err := p.Process(msg.Context(), cmd)
	if err != nil {
		return err
	}
	if err := p.publishOutcome(msg.Context(), outcome, cmd.ContentType); err != nil {
		return err
	}
	p.cfg.OnOutcome(OutcomeParams{Outcome: outcome, Duration: time.Since(start), EventsAppended: appended})
	return nil
}

// Process decides one command and appends its events, re-deciding on
// fresh state after a conflict. It returns the outcome and how many events
// it appended. An error means the command could not be processed now
// (the store is unreachable) and should be retried.
func (p *Processor) Process(ctx context.Context, cmd events.CommandEnvelope) (events.Outcome, int, error) {
	cache := p.cache(cmd.App)
	cache.mu.Lock()
	defer cache.mu.Unlock()
	assignIDs(&cmd)
	for range maxAttempts {
		if err := p.refresh(ctx, cmd.App, cache); err != nil {
			return events.Outcome{}, 0, err
		}
		if done, ok := cache.applied[cmd.CommandID]; ok {
			done.CommandType, done.Duplicate = cmd.Type, true
			return done, 0, nil
		}
		evs, err := aggregates.Decide(cache.state, cmd.Command, p.cfg.Now())
		if err != nil {
			// A refusal is not checked by an append: make sure it was not
			// decided on a cache another replica has moved past.
			moved, lerr := p.catchUp(ctx, cmd.App, cache)
			if lerr != nil {
				return events.Outcome{}, 0, lerr
			}
			if moved {
				continue
			}
			return rejection(cmd, err), 0, nil
		}
		envs := p.envelopes(cmd, evs)
		res, err := p.cfg.Store.Append(ctx, cmd.App, cache.state.Version, envs)
		if errors.Is(err, events.ErrConflict) || (err == nil && res.Duplicate) {
			cache.loaded = false // another writer moved on: read what it wrote
			continue
		}
		if err != nil {
			cache.loaded = false // the append may or may not have landed
			return events.Outcome{}, 0, fmt.Errorf("process %s for %q: %w", cmd.Type, cmd.App, err)
		}
		for i := range envs {
			envs[i].Sequence = res.FirstSequence + uint64(i)
			cache.apply(envs[i])
		}
		done := cache.applied[cmd.CommandID]
		done.CommandType = cmd.Type
		return done, len(envs), nil
	}
	return events.Outcome{}, 0, fmt.Errorf("process %s for %q: still conflicting after %d attempts", cmd.Type, cmd.App, maxAttempts)
}

// assignIDs gives a deploy or rollout the id it creates, once per
// processing, so that re-deciding after a conflict reuses it.
func assignIDs(cmd *events.CommandEnvelope) {
	switch c := cmd.Command.(type) {
	case events.Deploy:
		if c.RevisionID == "" {
			c.RevisionID = uuid.Must(uuid.NewV7()).String()
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
		c = &appCache{}
		p.apps[app] = c
	}
	return c
}

// refresh brings the cache up to date when it is not known to be.
func (p *Processor) refresh(ctx context.Context, app string, c *appCache) error {
	if c.loaded {
		return nil
	}
	if c.applied == nil {
		c.state = aggregates.App{Name: app}
		c.applied = map[string]events.Outcome{}
	}
	if _, err := p.catchUp(ctx, app, c); err != nil {
		return err
	}
	c.loaded = true
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

// apply folds env into the cached state and records the outcome of the
// command that caused it, so that a retried command id is answered again.
func (c *appCache) apply(env events.Envelope) {
	c.state = aggregates.Evolve(c.state, env)
	o, ok := c.applied[env.CausationID]
	if !ok {
		o = events.Outcome{CommandID: env.CausationID, App: env.App, Status: events.OutcomeAccepted, FirstSequence: env.Sequence}
	}
	o.LastSequence = env.Sequence
	switch ev := env.Event.(type) {
	case events.RevisionCreated:
		o.CommandType, o.RevisionID = events.CmdDeploy, ev.RevisionID
	case events.RolloutRequested:
		o.CommandType, o.RolloutID = events.CmdRollout, ev.RolloutID
	}
	c.applied[env.CausationID] = o
}

func (p *Processor) publishOutcome(ctx context.Context, o events.Outcome, contentType string) error {
	msg, err := events.OutcomeMsg(o, contentType)
	if err != nil {
		return err
	}
	if _, err := p.cfg.JetStream.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish outcome of %s: %w", o.CommandID, err)
	}
	return nil
}
