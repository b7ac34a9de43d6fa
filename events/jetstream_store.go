package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// EventStreamName is the JetStream stream holding every event.
const EventStreamName = "REVLINE_EVENTS"

// JetStreamStoreConfig configures a JetStreamStore.
type JetStreamStoreConfig struct {
	// JetStream is required.
	JetStream jetstream.JetStream
	// Registry decodes stored events; default NewRegistry().
	Registry *Registry
	// Replicas of the event stream: 1 embedded, 3 on a cluster. Default 1.
	Replicas int
	// Logger; default slog.Default().
	Logger *slog.Logger
	// WriteGate, optional, is asked before every append: while it returns
	// an error (a StreamGuard's Err), Append refuses with an error
	// wrapping ErrLogUntrusted and writes nothing.
	WriteGate func() error
}

func (c *JetStreamStoreConfig) setDefaults() {
	if c.Registry == nil {
		c.Registry = NewRegistry()
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a missing or impossible setting.
func (c JetStreamStoreConfig) Validate() error {
	if c.JetStream == nil {
		return errors.New("event store: JetStream is required")
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return fmt.Errorf("event store: replicas must be between 1 and 5, got %d", c.Replicas)
	}
	return nil
}

// JetStreamStore is the Store on NATS JetStream: one stream, the subject
// tree revline.events.<app>.> per app, optimistic concurrency with the
// wildcard expected-last-subject-sequence check, and atomic batches for
// commands that produce several events.
type JetStreamStore struct {
	js        jetstream.JetStream
	stream    jetstream.Stream
	registry  *Registry
	logger    *slog.Logger
	writeGate func() error
}

// EventStreamConfig is the configuration of the event stream.
func EventStreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        EventStreamName,
		Description: "Revline event log: the source of truth",
		Subjects:    []string{EventSubjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		Replicas:    replicas,
		// Atomic batches keep a command's events all-or-nothing.
		AllowAtomicPublish: true,
		AllowDirect:        true,
		DenyDelete:         true,
		DenyPurge:          true,
	}
}

// NewJetStreamStore creates or updates the event stream and returns a store on it.
func NewJetStreamStore(ctx context.Context, cfg JetStreamStoreConfig) (*JetStreamStore, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	stream, err := EnsureStream(ctx, cfg.JetStream, EventStreamConfig(cfg.Replicas))
	if err != nil {
		return nil, fmt.Errorf("event store: %w", err)
	}
	return &JetStreamStore{js: cfg.JetStream, stream: stream, registry: cfg.Registry, logger: cfg.Logger, writeGate: cfg.WriteGate}, nil
}

// OpenJetStreamStore returns a store on the existing event stream without
// creating or changing it: what a client that only reads needs. It returns
// an error wrapping jetstream.ErrStreamNotFound when no server has created
// the stream yet.
func OpenJetStreamStore(ctx context.Context, cfg JetStreamStoreConfig) (*JetStreamStore, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	stream, err := cfg.JetStream.Stream(ctx, EventStreamName)
	if err != nil {
		return nil, fmt.Errorf("event store: open stream %s: %w", EventStreamName, err)
	}
	return &JetStreamStore{js: cfg.JetStream, stream: stream, registry: cfg.Registry, logger: cfg.Logger, writeGate: cfg.WriteGate}, nil
}

// Append implements Appender.
//
// Event messages carry no Nats-Msg-Id: a retried command is recognised by
// its causation id after the expected-sequence check fails, which behaves
// the same on a standalone server (where the check runs before dedupe and
// answers "wrong last sequence") and on a cluster (where dedupe would
// answer "duplicate" instead). See docs/bus.md, "Idempotency".
func (s *JetStreamStore) Append(ctx context.Context, app string, expected uint64, events []Envelope) (AppendResult, error) {
	if err := checkBatch(app, events); err != nil {
		return AppendResult{}, err
	}
	if s.writeGate != nil {
		if err := s.writeGate(); err != nil {
			return AppendResult{}, fmt.Errorf("append to app %q: %w", app, asUntrusted(err))
		}
	}
	msgs := make([]*nats.Msg, len(events))
	for i, env := range events {
		msg, err := EventMsg(env)
		if err != nil {
			return AppendResult{}, err
		}
		msg.Header.Del(HeaderMsgID)
		msgs[i] = msg
	}
	// Only the first message of a batch may carry the check; it guards
	// every subject of the app through the wildcard form.
	msgs[0].Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(expected, 10))
	msgs[0].Header.Set(jetstream.ExpectedLastSubjSeqSubjHeader, AppEventsFilter(app))

	res, err := s.publish(ctx, msgs)
	if IsWrongLastSequence(err) {
		return s.reconcile(ctx, app, expected, events[0].CausationID)
	}
	if err != nil {
		return AppendResult{}, fmt.Errorf("append %d events for app %q: %w", len(events), app, err)
	}
	return res, nil
}

func (s *JetStreamStore) publish(ctx context.Context, msgs []*nats.Msg) (AppendResult, error) {
	if len(msgs) == 1 {
		ack, err := s.js.PublishMsg(ctx, msgs[0])
		if err != nil {
			return AppendResult{}, err
		}
		return AppendResult{FirstSequence: ack.Sequence, LastSequence: ack.Sequence}, nil
	}
	ack, err := jetstreamext.PublishMsgBatch(ctx, s.js, msgs)
	if err != nil {
		return AppendResult{}, err
	}
	return AppendResult{FirstSequence: ack.Sequence - uint64(len(msgs)) + 1, LastSequence: ack.Sequence}, nil
}

// reconcile tells a retry of an already stored command from a real conflict.
func (s *JetStreamStore) reconcile(ctx context.Context, app string, expected uint64, causationID string) (AppendResult, error) {
	history, err := s.Load(ctx, app, expected)
	if err != nil {
		return AppendResult{}, fmt.Errorf("append for app %q: reconcile after conflict: %w", app, err)
	}
	if dup, ok := findDuplicate(history, causationID); ok {
		return dup, nil
	}
	return AppendResult{}, &ConflictError{App: app, Expected: expected}
}

// IsWrongLastSequence reports whether err is JetStream's answer to a
// publish whose expected last (subject) sequence did not match: another
// message was stored first. Standalone servers and clusters use two codes.
func IsWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
		return true
	}
	return false
}

// loadBatchSize is how many messages one direct batch get returns.
const loadBatchSize = 256

// maxLaggingReads bounds the retries of a load answered by a lagging replica.
const maxLaggingReads = 200

// Load implements AppLoader. It asks the stream leader for the sequence of
// the app's last event, then reads with direct batch gets: no consumer is
// created per load. On a cluster a replica may answer a direct get a few
// milliseconds behind the leader; the leader's sequence tells when that
// happened, and the read is repeated until the replica has caught up.
func (s *JetStreamStore) Load(ctx context.Context, app string, after uint64) ([]Envelope, error) {
	if err := ValidateAggregateName(app); err != nil {
		return nil, err
	}
	last, err := s.leaderLastSequence(ctx, AppEventsFilter(app))
	if err != nil {
		return nil, fmt.Errorf("load app %q: %w", app, err)
	}
	var out []Envelope
	for next, lagging := after+1, 0; next <= last; {
		n, err := s.loadBatch(ctx, app, next, last, func(env Envelope) {
			out = append(out, env)
			next = env.Sequence + 1
		})
		if err != nil {
			return nil, err
		}
		if n == 0 && next <= last {
			// The replica that answered is behind the leader.
			if lagging++; lagging > maxLaggingReads {
				return nil, fmt.Errorf("load app %q: replicas stayed behind sequence %d", app, last)
			}
			if err := pause(ctx, time.Duration(lagging)*time.Millisecond); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// loadBatch reads up to loadBatchSize events of app from sequence from,
// none past last, and returns how many it read.
func (s *JetStreamStore) loadBatch(ctx context.Context, app string, from, last uint64, add func(Envelope)) (int, error) {
	msgs, err := jetstreamext.GetBatch(ctx, s.js, EventStreamName, loadBatchSize,
		jetstreamext.GetBatchSeq(from), jetstreamext.GetBatchSubject(AppEventsFilter(app)))
	if err != nil {
		return 0, fmt.Errorf("load app %q: %w", app, err)
	}
	n := 0
	for msg, err := range msgs {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			break
		}
		if err != nil {
			return n, fmt.Errorf("load app %q from %d: %w", app, from, err)
		}
		if msg.Sequence > last {
			break // appended after the load began
		}
		env, err := s.registry.DecodeEventMsg(msg.Header, msg.Data, msg.Sequence)
		if err != nil && msg.Header.Get(HeaderEventType) == "" {
			// Not an event at all (no event type): something else got
			// stored on the app's subjects. It is no part of the history,
			// but keeps its place, for the next append's expected sequence.
			s.logger.Warn("skipping a message that is not a Revline event", "app", app, "sequence", msg.Sequence, "subject", msg.Subject)
			env, err = Envelope{App: app, Sequence: msg.Sequence}, nil
		}
		if err != nil {
			return n, &UnreadableEventError{App: app, Sequence: msg.Sequence, Err: err}
		}
		add(env)
		n++
	}
	return n, nil
}

func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// LastSequence returns the stream sequence of the last event of any app,
// as the stream leader knows it (0 for an empty log).
func (s *JetStreamStore) LastSequence(ctx context.Context) (uint64, error) {
	return s.leaderLastSequence(ctx, EventSubjectPrefix+">")
}

// LastAppSequence returns the stream sequence of app's last event, as the
// stream leader knows it (0 if the app has none).
func (s *JetStreamStore) LastAppSequence(ctx context.Context, app string) (uint64, error) {
	if err := ValidateAggregateName(app); err != nil {
		return 0, err
	}
	return s.leaderLastSequence(ctx, AppEventsFilter(app))
}

// leaderLastSequence asks the stream leader (the non-direct API, which a
// replica does not answer) for the sequence of the last message matching
// filter, 0 if there is none.
func (s *JetStreamStore) leaderLastSequence(ctx context.Context, filter string) (uint64, error) {
	msg, err := LeaderGet(ctx, s.js, EventStreamName, 0, filter)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("last message of %s: %w", filter, err)
	}
	return msg.Sequence, nil
}

// Follow implements Follower.
func (s *JetStreamStore) Follow(ctx context.Context, from uint64, fn FollowFunc) error {
	return s.follow(ctx, from, EventSubjectPrefix+">", fn)
}

// FollowApp is Follow restricted to one app's events.
func (s *JetStreamStore) FollowApp(ctx context.Context, app string, from uint64, fn FollowFunc) error {
	if err := ValidateAggregateName(app); err != nil {
		return err
	}
	return s.follow(ctx, from, AppEventsFilter(app), fn)
}

// followHeartbeat is the idle heartbeat of a follower's pulls. An ordered
// consumer notices a pull the server lost only after two missed
// heartbeats: with nats.go's default of 5 s, a follower on a 3-node
// cluster now and then stalled for 10 s (seen in TestServeOnACluster as a
// deploy whose outcome arrived 10 s late).
const followHeartbeat = time.Second

func (s *JetStreamStore) follow(ctx context.Context, from uint64, filter string, fn FollowFunc) error {
	from = max(from, 1)
	var cons jetstream.Consumer
	err := RetryWhileBusy(ctx, func(attempt context.Context) (err error) {
		cons, err = s.stream.OrderedConsumer(attempt, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{filter},
			DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:    from,
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("ordered consumer from %d: %w", from, err)
	}
	iter, err := cons.Messages(jetstream.PullHeartbeat(followHeartbeat))
	if err != nil {
		return fmt.Errorf("consume from %d: %w", from, err)
	}
	defer iter.Stop()
	stop := context.AfterFunc(ctx, iter.Stop)
	defer stop()
	for {
		msg, err := iter.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read from %d: %w", from, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("message metadata: %w", err)
		}
		env, decodeErr := s.registry.DecodeEventMsg(msg.Headers(), msg.Data(), meta.Sequence.Stream)
		if decodeErr != nil {
			h := msg.Headers()
			env = Envelope{
				Sequence: meta.Sequence.Stream, App: h.Get(HeaderApp), Type: h.Get(HeaderEventType),
				PrevHash: h.Get(HeaderPrevHash), Hash: h.Get(HeaderEventHash),
			}
			if env.App == "" {
				env.App = appOfSubject(msg.Subject())
			}
			if env.Type == "" {
				// No event at all (a stray acknowledgement, say): skipped
				// like every reader skips it, and not worth a warning on
				// every read; `revline audit` shows it.
				s.logger.Debug("not an event", "sequence", meta.Sequence.Stream, "subject", msg.Subject())
			} else {
				s.logger.Warn("undecodable event", "sequence", meta.Sequence.Stream, "subject", msg.Subject(), "error", decodeErr)
			}
		}
		if err := fn(env, decodeErr); err != nil {
			return err
		}
	}
}
