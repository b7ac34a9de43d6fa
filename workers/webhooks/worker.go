// Package webhooks delivers the event log to HTTP receivers: each webhook
// is a durable JetStream consumer on the event stream (one app's events,
// or every app's), so a receiver that is down gets every event when it
// comes back, in order (the consumer has one message in flight at a time),
// at least once, each with its event id as a stable id to deduplicate.
//
// Bodies are CloudEvents 1.0 in structured JSON mode, signed per the
// Standard Webhooks specification (webhook-id, webhook-timestamp,
// webhook-signature: HMAC-SHA256 with the webhook's secret). A failed
// attempt is retried with exponential back-off and jitter; after
// MaxFailures failures in a row the webhook is disabled, and its consumer
// keeps what was not delivered for when it is enabled again.
//
// Definitions live in the key-value bucket REVLINE_WEBHOOKS (every change
// kept in the key's history: who added, disabled, enabled or removed a
// webhook, and why), secrets in REVLINE_WEBHOOK_SECRETS (clients write,
// never read), the last attempts of each webhook in
// REVLINE_WEBHOOK_DELIVERIES, with the last event it delivered, after
// which a consumer deleted behind the worker's back is made again.
// Webhooks are not an app's: Store.Record records each change of a
// definition as an event of an aggregate of their own
// (events.WebhooksAggregate), and the definitions stay the worker's read
// model.
package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/revline/revline/events"
)

// Actor is who the worker records as disabling a webhook.
const Actor = "worker:webhooks"

// Config configures a Worker.
type Config struct {
	// JetStream is required: the webhooks' consumers are on its event
	// stream.
	JetStream jetstream.JetStream
	// Store is required (from Ensure).
	Store *Store
	// AllowPrivate lets webhooks target loopback, link-local and private
	// addresses (serve --webhooks-allow-private).
	AllowPrivate bool
	// MaxFailures is how many failed attempts in a row disable a webhook;
	// default 10.
	MaxFailures int
	// BackoffBase is the delay after a first failure, doubling after each
	// next one up to BackoffMax, each with jitter (between half and all of
	// it); defaults 1s and 5m.
	BackoffBase, BackoffMax time.Duration
	// RequestTimeout bounds one attempt; default 10s.
	RequestTimeout time.Duration
	// Now, Sleep and Jitter (in [0, 1)) are the clock and the randomness;
	// defaults the real ones.
	Now    func() time.Time
	Sleep  func(ctx context.Context, d time.Duration) error
	Jitter func() float64
	// Logger; default slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.MaxFailures == 0 {
		c.MaxFailures = 10
	}
	if c.BackoffBase == 0 {
		c.BackoffBase = time.Second
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = 5 * time.Minute
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleep
	}
	if c.Jitter == nil {
		c.Jitter = rand.Float64
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports missing or impossible settings.
func (c Config) Validate() error {
	switch {
	case c.JetStream == nil:
		return errors.New("webhooks: JetStream is required")
	case c.Store == nil:
		return errors.New("webhooks: Store is required")
	case c.MaxFailures < 1:
		return fmt.Errorf("webhooks: MaxFailures must be at least 1, got %d", c.MaxFailures)
	case c.BackoffBase < 0 || c.BackoffMax < c.BackoffBase:
		return fmt.Errorf("webhooks: want 0 <= BackoffBase (%s) <= BackoffMax (%s)", c.BackoffBase, c.BackoffMax)
	case c.RequestTimeout < 0:
		return errors.New("webhooks: RequestTimeout must be positive")
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Worker runs one dispatcher per active webhook.
type Worker struct {
	cfg      Config
	log      *slog.Logger
	client   *http.Client
	registry *events.Registry
}

// New returns a worker; Run starts it.
func New(cfg Config) (*Worker, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: cfg.RequestTimeout}
	if !cfg.AllowPrivate {
		dialer.Control = refusePrivate
	}
	transport := &http.Transport{
		Proxy:               nil, // a proxy would connect on our behalf, past the address check
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: cfg.RequestTimeout,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     time.Minute,
	}
	client := &http.Client{
		Transport: transport,
		Timeout:   cfg.RequestTimeout,
		// A redirect is an answer, not a success: following it would
		// send the signed body somewhere the webhook does not name.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Worker{cfg: cfg, log: cfg.Logger, client: client, registry: events.NewRegistry()}, nil
}

// dispatcher is the goroutine delivering one webhook's events.
type dispatcher struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (d *dispatcher) stop() {
	d.cancel()
	<-d.done
}

func (d *dispatcher) finished() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// Run follows the webhook definitions until ctx ends: it starts a
// dispatcher for each active webhook, stops those disabled or removed
// (deleting a removed one's consumer), and carries out redelivery
// requests.
func (w *Worker) Run(ctx context.Context) error {
	watcher, err := w.cfg.Store.hooks.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("webhooks: watch definitions: %w", err)
	}
	defer func() { _ = watcher.Stop() }()
	running := map[string]*dispatcher{}
	var redeliveries sync.WaitGroup
	defer func() {
		for _, d := range running {
			d.stop()
		}
		redeliveries.Wait()
	}()
	for {
		entry, err := nextEntry(ctx, watcher)
		if err != nil {
			return err
		}
		if entry == nil || entry.Operation() != jetstream.KeyValuePut {
			continue // the end of the initial values, or a deleted request
		}
		switch kind, id, _ := strings.Cut(entry.Key(), "."); kind {
		case "hook":
			w.apply(ctx, running, id, entry.Value())
		case "redeliver":
			redeliveries.Go(func() { w.redeliver(ctx, id, entry) })
		}
	}
}

// nextEntry waits for the next entry of watcher (nil: the end of the
// initial values) or the end of ctx.
func nextEntry(ctx context.Context, watcher jetstream.KeyWatcher) (jetstream.KeyValueEntry, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case entry, ok := <-watcher.Updates():
		if !ok && ctx.Err() != nil {
			return nil, ctx.Err() // a watch made with ctx ends with it
		}
		if !ok {
			return nil, errors.New("webhooks: the watch of definitions ended")
		}
		return entry, nil
	}
}

// apply makes the dispatcher of webhook id match its definition.
func (w *Worker) apply(ctx context.Context, running map[string]*dispatcher, id string, data []byte) {
	hook, err := decodeWebhook(data)
	if err != nil || hook.ID != id {
		w.log.Warn("skipping an unreadable webhook definition", "key", id, "error", err)
		return
	}
	d := running[id]
	if hook.Status == StatusActive {
		if d != nil && !d.finished() {
			return
		}
		dctx, cancel := context.WithCancel(ctx)
		d = &dispatcher{cancel: cancel, done: make(chan struct{})}
		running[id] = d
		w.log.Info("webhook active", "webhook", id, "target", redact(hook.URL), "app", hook.App, "events", hook.Events, "by", claimedBy(hook))
		go func() {
			defer close(d.done)
			w.dispatch(dctx, hook)
		}()
		return
	}
	if d != nil {
		d.stop()
		delete(running, id)
	}
	level := slog.LevelInfo
	if hook.Status == StatusDisabled {
		level = slog.LevelWarn
	}
	w.log.Log(ctx, level, "webhook "+hook.Status, "webhook", id, "by", claimedBy(hook), "reason", redactReason(hook))
	if hook.Status == StatusRemoved {
		err := w.cfg.JetStream.DeleteConsumer(ctx, events.EventStreamName, w.cfg.Store.ConsumerName(hook))
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			w.log.Warn("could not delete a removed webhook's consumer", "webhook", id, "error", err)
		}
		if err := w.cfg.Store.purgeDeliveries(ctx, id); err != nil {
			w.log.Warn("could not purge a removed webhook's deliveries", "webhook", id, "error", err)
		}
	}
}

// redact keeps a URL's scheme and host for the log: its path or query may
// hold a token.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host
}

// errorText is a delivery error as it is recorded, logged and put in a
// disable reason: a *url.Error (the HTTP client's) names its URL by scheme
// and host only (redact); what it wraps (a dial, TLS or timeout error)
// names no path.
func errorText(err error) string {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = &url.Error{Op: urlErr.Op, URL: redact(urlErr.URL), Err: urlErr.Err}
	}
	return err.Error()
}

// redactReason replaces hook's URL in a reason (a disable by a server
// before errorText quoted it whole) by its scheme and host.
func redactReason(hook Webhook) string {
	reason := strings.ReplaceAll(hook.Reason, hook.URL, redact(hook.URL))
	if u, err := url.Parse(hook.URL); err == nil {
		reason = strings.ReplaceAll(reason, u.String(), redact(hook.URL))
	}
	return reason
}

// errDisabled stops a dispatcher whose webhook it disabled.
var errDisabled = errors.New("webhook disabled")

// dispatch delivers hook's events until ctx ends or the webhook is
// disabled. A consumer that fails (deleted behind its back, NATS away) is
// made again after a pause.
func (w *Worker) dispatch(ctx context.Context, hook Webhook) {
	failures := 0
	for pause := w.cfg.BackoffBase; ; pause = min(2*pause, w.cfg.BackoffMax) {
		// Another replica may have removed the webhook, and its consumer
		// with it, since this one saw it: never make that consumer again.
		if now, _, err := w.cfg.Store.Get(ctx, hook.ID); err == nil && now.Status != StatusActive {
			return
		}
		err := w.consume(ctx, hook, &failures)
		if ctx.Err() != nil || errors.Is(err, errDisabled) {
			return
		}
		w.log.Warn("webhook consumer failed; starting it again", "webhook", hook.ID, "error", err, "in", pause)
		if w.cfg.Sleep(ctx, pause) != nil {
			return
		}
	}
}

// consumer returns hook's consumer, its settings brought up to date. A
// missing one (new, or deleted behind the worker's back: any token that
// reads every app's events may delete it) is made to start after the
// last event the webhook delivered, not at its start: a deleted consumer
// costs a pause, not the whole history sent again.
func (w *Worker) consumer(ctx context.Context, hook Webhook) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       w.cfg.Store.ConsumerName(hook),
		Description:   "webhook " + hook.ID,
		FilterSubject: hook.filterSubject(),
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		// One message in flight: events reach the receiver in order, even
		// with several replicas pulling.
		MaxAckPending: 1,
		// The worker reports progress before each attempt and each pause.
		AckWait:    w.cfg.BackoffMax + w.cfg.RequestTimeout + 30*time.Second,
		MaxDeliver: -1,
	}
	existing, err := w.cfg.JetStream.Consumer(ctx, events.EventStreamName, cfg.Durable)
	switch {
	case err == nil:
		// Its start cannot change, nor would it matter: it is past it.
		cfg.OptStartSeq = existing.CachedInfo().Config.OptStartSeq
		return w.cfg.JetStream.UpdateConsumer(ctx, events.EventStreamName, cfg)
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil, err
	}
	if cfg.OptStartSeq, err = w.cfg.Store.resumeSequence(ctx, hook); err != nil {
		return nil, err
	}
	// Another replica may make it meanwhile, from the same start or a
	// later one (ErrConsumerExists): the next try takes that one.
	return w.cfg.JetStream.CreateConsumer(ctx, events.EventStreamName, cfg)
}

// consume runs hook's consumer: one message at a time, each until it is
// delivered (or the webhook disabled).
func (w *Worker) consume(ctx context.Context, hook Webhook, failures *int) error {
	cons, err := w.consumer(ctx, hook)
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	// One pull a message: the consumer hands out one at a time anyway
	// (and a Messages iterator of one message was seen to stop pulling).
	for {
		pullCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		msg, err := cons.Next(jetstream.FetchContext(pullCtx))
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded):
			continue // nothing new
		case err != nil:
			return err
		}
		if err := w.handle(ctx, hook, msg, failures); err != nil {
			return err
		}
	}
}

// handle delivers one message, retrying until the receiver takes it.
func (w *Worker) handle(ctx context.Context, hook Webhook, msg jetstream.Msg, failures *int) error {
	meta, err := msg.Metadata()
	if err != nil {
		return fmt.Errorf("message metadata: %w", err)
	}
	env, err := w.registry.DecodeEventMsg(msg.Headers(), msg.Data(), meta.Sequence.Stream)
	if err != nil {
		// Like every reader of the log: report it and go on.
		w.log.Error("webhook skips an undecodable event", "webhook", hook.ID, "sequence", meta.Sequence.Stream, "error", err)
		w.record(ctx, hook.ID, Delivery{Sequence: meta.Sequence.Stream, At: w.cfg.Now().UTC(), Error: "not delivered: " + err.Error()})
		return msg.Ack()
	}
	if !hook.Wants(env.App, env.Type) {
		return msg.Ack()
	}
	for attempt := 1; ; attempt++ {
		_ = msg.InProgress()
		d := w.attempt(ctx, hook, env, attempt)
		if ctx.Err() != nil {
			_ = msg.Nak() // another replica, or the next start, takes it
			return ctx.Err()
		}
		w.record(ctx, hook.ID, d)
		if d.OK() {
			*failures = 0
			if err := w.cfg.Store.recordDelivered(ctx, hook.ID, env.Sequence); err != nil {
				// A consumer made again would send it once more.
				w.log.Warn("could not record a webhook's last delivered event", "webhook", hook.ID, "sequence", env.Sequence, "error", err)
			}
			return msg.Ack()
		}
		*failures++
		if *failures >= w.cfg.MaxFailures {
			reason := fmt.Sprintf("%d failed attempts in a row, the last on event %d: %s", *failures, env.Sequence, d.Error)
			// The watch of definitions logs it, as every change, and stops
			// this dispatcher as soon as it sees it: the change must not
			// depend on ctx.
			setCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.RequestTimeout)
			_, err := w.cfg.Store.SetStatus(setCtx, hook.ID, StatusDisabled, Actor, reason, w.cfg.Now())
			cancel()
			if err != nil {
				w.log.Error("could not disable a failing webhook", "webhook", hook.ID, "error", err)
			}
			_ = msg.Nak() // kept for when the webhook is enabled again
			return errDisabled
		}
		_ = msg.InProgress()
		if err := w.cfg.Sleep(ctx, w.backoff(attempt)); err != nil {
			_ = msg.Nak()
			return err
		}
	}
}

// backoff is the pause after the attempt-th failed attempt: BackoffBase
// doubled attempt-1 times, at most BackoffMax, then between half and all
// of it at random.
func (w *Worker) backoff(attempt int) time.Duration {
	d := w.cfg.BackoffMax
	if attempt < 32 {
		d = min(w.cfg.BackoffBase<<(attempt-1), w.cfg.BackoffMax)
	}
	return d/2 + time.Duration(w.cfg.Jitter()*float64(d/2))
}

// attempt makes one delivery of env to hook and says how it went.
func (w *Worker) attempt(ctx context.Context, hook Webhook, env events.Envelope, attempt int) Delivery {
	d := Delivery{EventID: env.EventID, Sequence: env.Sequence, Type: env.Type, App: env.App, Attempt: attempt, At: w.cfg.Now().UTC()}
	fail := func(err error) Delivery {
		d.Error = errorText(err)
		return d
	}
	secret, err := w.cfg.Store.secret(ctx, hook.ID)
	if err != nil {
		return fail(err)
	}
	ce, err := NewCloudEvent(env)
	if err != nil {
		return fail(err)
	}
	body, err := json.Marshal(ce)
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return fail(err)
	}
	now := w.cfg.Now()
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("User-Agent", "Revline-Webhooks/1")
	req.Header.Set(HeaderID, env.EventID)
	req.Header.Set(HeaderTimestamp, fmt.Sprint(now.Unix()))
	req.Header.Set(HeaderSignature, Sign(secret, env.EventID, now, body))
	resp, err := w.client.Do(req)
	d.LatencyMS = w.cfg.Now().Sub(now).Milliseconds()
	if err != nil {
		return fail(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	_ = resp.Body.Close()
	d.Status = resp.StatusCode
	if !d.OK() {
		d.Error = "the receiver answered " + resp.Status
	}
	return d
}

func (w *Worker) record(ctx context.Context, id string, d Delivery) {
	if err := w.cfg.Store.recordDelivery(ctx, id, d); err != nil {
		w.log.Warn("could not record a webhook delivery", "webhook", id, "sequence", d.Sequence, "error", err)
	}
}

// redeliver carries out a redelivery request, once across replicas: the
// one that deletes the request (at the revision it saw) delivers.
func (w *Worker) redeliver(ctx context.Context, id string, entry jetstream.KeyValueEntry) {
	if err := w.cfg.Store.hooks.Delete(ctx, entry.Key(), jetstream.LastRevision(entry.Revision())); err != nil {
		return // another replica took it, or it was replaced by a newer request
	}
	var req Redelivery
	if err := json.Unmarshal(entry.Value(), &req); err != nil {
		w.log.Warn("skipping an unreadable redelivery request", "webhook", id, "error", err)
		return
	}
	hook, _, err := w.cfg.Store.Get(ctx, id)
	if err != nil || hook.Status == StatusRemoved {
		w.log.Warn("redelivery for no webhook", "webhook", id, "error", err)
		return
	}
	w.log.Info("webhook redelivery", "webhook", id, "sequence", req.Sequence, "by", req.RequestedBy)
	d := Delivery{Sequence: req.Sequence, At: w.cfg.Now().UTC(), Redelivery: true}
	msg, err := getMsg(ctx, w.cfg.JetStream, req.Sequence)
	if err == nil {
		var env events.Envelope
		env, err = w.registry.DecodeEventMsg(msg.Header, msg.Data, msg.Sequence)
		if err == nil {
			if err = hook.checkAggregate(env.App); err != nil {
				err = fmt.Errorf("event %d: %w", req.Sequence, err)
			}
		}
		if err == nil {
			d = w.attempt(ctx, hook, env, 1)
			d.Redelivery = true
		}
	}
	if err != nil {
		d.Error = "not redelivered: " + err.Error()
	}
	w.record(ctx, id, d)
}

func getMsg(ctx context.Context, js jetstream.JetStream, seq uint64) (*jetstream.RawStreamMsg, error) {
	stream, err := js.Stream(ctx, events.EventStreamName)
	if err != nil {
		return nil, err
	}
	return stream.GetMsg(ctx, seq)
}
