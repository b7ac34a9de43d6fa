package webhooks_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/revline/revline/events"
	"github.com/revline/revline/events/embedded/embeddedtest"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/workers/webhooks"
)

// env is a NATS server with the event store and the webhook buckets.
type env struct {
	t      testing.TB
	js     jetstream.JetStream
	events *events.JetStreamStore
	hooks  *webhooks.Store
	seqs   map[string]uint64 // last sequence of each app
}

func newEnv(t testing.TB, policy webhooks.Policy) *env {
	t.Helper()
	srv := embeddedtest.Start(t)
	_, js := embeddedtest.Connect(t, srv)
	ctx := context.Background()
	store, err := events.NewJetStreamStore(ctx, events.JetStreamStoreConfig{JetStream: js})
	if err != nil {
		t.Fatal(err)
	}
	hooks, err := webhooks.Ensure(ctx, js, 1, policy)
	if err != nil {
		t.Fatal(err)
	}
	hooks.SignWith(events.NewSigner(serverToken, tokenValue(serverToken)))
	return &env{t: t, js: js, events: store, hooks: hooks, seqs: map[string]uint64{}}
}

// appendEvent stores one event of app and returns its envelope.
func (e *env) appendEvent(app string, ev events.Event) events.Envelope {
	e.t.Helper()
	env := events.NewEnvelope(app, ev, events.Metadata{Actor: "alice", CorrelationID: uuid.NewString(), CausationID: uuid.NewString()}, time.Now())
	res, err := e.events.Append(context.Background(), app, e.seqs[app], []events.Envelope{env})
	if err != nil {
		e.t.Fatal(err)
	}
	e.seqs[app] = res.LastSequence
	env.Sequence = res.LastSequence
	return env
}

// run starts a worker until the returned stop is called (or the test ends).
func (e *env) run(cfg webhooks.Config) (stop func()) {
	e.t.Helper()
	cfg.JetStream, cfg.Store = e.js, e.hooks
	if cfg.BackoffBase == 0 {
		cfg.BackoffBase, cfg.BackoffMax = time.Millisecond, 5*time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w, err := webhooks.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				e.t.Errorf("worker: %v", err)
			}
		})
	}
	e.t.Cleanup(stop)
	return stop
}

func (e *env) waitDisabled(ctx context.Context, id string) {
	e.t.Helper()
	testsupport.Eventually(ctx, e.t, "the webhook is disabled", func() bool {
		w, _, err := e.hooks.Get(ctx, id)
		return err == nil && w.Status == webhooks.StatusDisabled
	})
}

func (e *env) add(w webhooks.Webhook, secret []byte) webhooks.Webhook {
	e.t.Helper()
	added, err := e.hooks.Add(context.Background(), w, secret, "alice", time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return added
}

// receiver is a webhook receiver that checks every delivery's signature
// and answers 500 while down.
type receiver struct {
	secret []byte
	srv    *httptest.Server
	down   atomic.Bool
	mu     sync.Mutex
	got    []webhooks.CloudEvent // accepted deliveries, duplicates included
	failed int                   // deliveries answered 500
	bad    []string              // what failed verification
}

func newReceiver(t testing.TB, secret []byte) *receiver {
	r := &receiver{secret: secret}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down.Load() {
		r.failed++
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	id := req.Header.Get(webhooks.HeaderID)
	if err := webhooks.Verify(r.secret, id, req.Header.Get(webhooks.HeaderTimestamp), req.Header.Get(webhooks.HeaderSignature), body); err != nil {
		r.bad = append(r.bad, err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ce webhooks.CloudEvent
	if err := json.Unmarshal(body, &ce); err != nil || ce.ID != id || req.Header.Get("Content-Type") != webhooks.ContentType {
		r.bad = append(r.bad, "body: "+string(body))
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.got = append(r.got, ce)
	w.WriteHeader(http.StatusNoContent)
}

// unique returns the ids received, duplicates removed, in first-seen order.
func (r *receiver) unique() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for _, ce := range r.got {
		if !slices.Contains(ids, ce.ID) {
			ids = append(ids, ce.ID)
		}
	}
	return ids
}

func (r *receiver) failures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

func ids(envs []events.Envelope) []string {
	out := make([]string, len(envs))
	for i, e := range envs {
		out[i] = e.EventID
	}
	return out
}

func waitCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestEveryEventArrivesInOrderThroughAnOutageAndARestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, webhooks.Policy{AllowPrivate: true})
	secret := webhooks.NewSecret()
	r := newReceiver(t, secret)
	e.appendEvent("web", events.AppSuspended{RevisionID: "before"}) // before the webhook: not sent
	hook := e.add(webhooks.Webhook{URL: r.srv.URL + "/hook"}, secret)
	stop := e.run(webhooks.Config{AllowPrivate: true, MaxFailures: 1000})
	ctx := waitCtx(t)

	var sent []events.Envelope
	r.down.Store(true)
	for i := range 3 {
		sent = append(sent, e.appendEvent("web", events.AppSuspended{RevisionID: strconv.Itoa(i)}))
	}
	testsupport.Eventually(ctx, t, "the receiver refused 3 attempts", func() bool { return r.failures() >= 3 })
	// The worker stops while the receiver is down; events go on.
	stop()
	sent = append(sent, e.appendEvent("api", events.AppResumed{RevisionID: "other app"}))
	r.down.Store(false)
	e.run(webhooks.Config{AllowPrivate: true, MaxFailures: 1000})
	for i := range 3 {
		sent = append(sent, e.appendEvent("web", events.AppResumed{RevisionID: strconv.Itoa(i)}))
	}
	testsupport.Eventually(ctx, t, "every event arrived", func() bool { return len(r.unique()) >= len(sent) })
	if got, want := r.unique(), ids(sent); !slices.Equal(got, want) {
		t.Fatalf("received %v, want %v in this order", got, want)
	}
	r.mu.Lock()
	if len(r.bad) > 0 {
		t.Errorf("deliveries failed verification: %v", r.bad)
	}
	first := r.got[0]
	r.mu.Unlock()
	if first.SpecVersion != "1.0" || first.Type != "dev.revline.app.suspended" || first.Source != "/revline/apps/web" ||
		first.Sequence != strconv.FormatUint(sent[0].Sequence, 10) || first.Actor != "alice" || !bytes.Contains(first.Data, []byte(`"revision_id":"0"`)) {
		t.Errorf("first CloudEvent = %+v", first)
	}
	deliveries, err := e.hooks.Deliveries(ctx, hook.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(deliveries); n == 0 || deliveries[0].OK() || deliveries[0].Status != 500 || deliveries[0].Sequence != sent[0].Sequence {
		t.Errorf("first delivery attempt = %+v, want a 500 on event %d", deliveries, sent[0].Sequence)
	}
	if last := deliveries[len(deliveries)-1]; !last.OK() || last.EventID != sent[len(sent)-1].EventID {
		t.Errorf("last delivery attempt = %+v", last)
	}
}

// Hundreds of events waiting for a new webhook arrive in order.
func TestManyEventsArriveInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t, webhooks.Policy{AllowPrivate: true})
	secret := webhooks.NewSecret()
	r := newReceiver(t, secret)
	e.add(webhooks.Webhook{URL: r.srv.URL}, secret)
	var sent []events.Envelope
	for i := range 300 {
		sent = append(sent, e.appendEvent("web", events.AppSuspended{RevisionID: strconv.Itoa(i)}))
	}
	e.run(webhooks.Config{AllowPrivate: true})
	testsupport.Eventually(waitCtx(t), t, "every event arrived", func() bool { return len(r.unique()) == len(sent) })
	if got := r.unique(); !slices.Equal(got, ids(sent)) {
		t.Error("the events arrived out of order")
	}
}

func TestAReceiverThatWasNotListeningGetsEverythingWhenItIs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, webhooks.Policy{AllowPrivate: true})
	secret := webhooks.NewSecret()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.Addr().String()
	_ = closed.Close()
	hook := e.add(webhooks.Webhook{URL: "http://" + addr + "/in"}, secret)
	e.run(webhooks.Config{AllowPrivate: true, MaxFailures: 1000})
	sent := []events.Envelope{e.appendEvent("web", events.AppSuspended{RevisionID: "a"}), e.appendEvent("web", events.AppResumed{RevisionID: "a"})}
	ctx := waitCtx(t)
	testsupport.Eventually(ctx, t, "two connections were refused", func() bool {
		d, err := e.hooks.Deliveries(ctx, hook.ID)
		return err == nil && len(d) >= 2 && strings.Contains(d[1].Error, "refused")
	})
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the receiver's port was taken meanwhile: %v", err)
	}
	r := &receiver{secret: secret}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	r.srv.Listener = listener
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	testsupport.Eventually(ctx, t, "both events arrived", func() bool { return len(r.unique()) == 2 })
	if got := r.unique(); !slices.Equal(got, ids(sent)) {
		t.Errorf("received %v, want %v", got, ids(sent))
	}
}

func TestAWebhookIsDisabledAfterMaxFailuresAndKeepsItsEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, webhooks.Policy{AllowPrivate: true})
	secret := webhooks.NewSecret()
	r := newReceiver(t, secret)
	r.down.Store(true)
	hook := e.add(webhooks.Webhook{URL: r.srv.URL}, secret)
	var pauses []time.Duration
	var mu sync.Mutex
	e.run(webhooks.Config{AllowPrivate: true, MaxFailures: 3, BackoffBase: time.Second, BackoffMax: 3 * time.Second,
		Jitter: func() float64 { return 0.5 },
		Sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			pauses = append(pauses, d)
			return ctx.Err()
		}})
	ctx := waitCtx(t)
	sent := e.appendEvent("web", events.AppSuspended{RevisionID: "r"})
	e.waitDisabled(ctx, hook.ID)
	w, _, _ := e.hooks.Get(ctx, hook.ID)
	if w.ChangedBy != webhooks.Actor || !strings.Contains(w.Reason, "3 failed attempts in a row") || !strings.Contains(w.Reason, "500") {
		t.Errorf("disabled webhook = %+v", w)
	}
	if got := r.failures(); got != 3 {
		t.Errorf("receiver saw %d attempts, want 3", got)
	}
	mu.Lock()
	// Base 1s doubling, each at 3/4 (jitter 0.5 between half and all).
	if want := []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond}; !slices.Equal(pauses, want) {
		t.Errorf("pauses = %v, want %v", pauses, want)
	}
	mu.Unlock()

	// Enabled again, it delivers what it kept.
	r.down.Store(false)
	if _, err := e.hooks.SetStatus(ctx, hook.ID, webhooks.StatusActive, "bob", "fixed", time.Now()); err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(ctx, t, "the kept event arrived", func() bool { return len(r.unique()) == 1 })
	if got := r.unique(); got[0] != sent.EventID {
		t.Errorf("got %v, want %s", got, sent.EventID)
	}
}

func TestEventGlobsAndAppSelectWhatIsSent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, webhooks.Policy{AllowPrivate: true})
	secret := webhooks.NewSecret()
	r := newReceiver(t, secret)
	e.add(webhooks.Webhook{URL: r.srv.URL, App: "web", Events: []string{"app.res*", "rollout.*"}}, secret)
	e.run(webhooks.Config{AllowPrivate: true})
	e.appendEvent("web", events.AppSuspended{RevisionID: "r"})
	want := e.appendEvent("web", events.AppResumed{RevisionID: "r"})
	e.appendEvent("api", events.AppResumed{RevisionID: "r"})
	e.appendEvent("api", events.RolloutRequested{RolloutID: "x", RevisionID: "r"})
	last := e.appendEvent("web", events.RolloutRequested{RolloutID: "y", RevisionID: "r"})
	ctx := waitCtx(t)
	testsupport.Eventually(ctx, t, "the last matching event arrived", func() bool { return slices.Contains(r.unique(), last.EventID) })
	if got := r.unique(); !slices.Equal(got, []string{want.EventID, last.EventID}) {
		t.Errorf("received %v, want only web's app.resumed and rollout.requested", got)
	}
}

func TestPrivateTargetsAreRefusedUnlessAllowed(t *testing.T) {
	t.Parallel()
	strict := newEnv(t, webhooks.Policy{})
	for _, target := range []string{"http://127.0.0.1:8080/x", "http://localhost/x", "http://[::1]/", "http://10.1.2.3/", "http://169.254.169.254/latest", "http://192.168.0.1/", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/"} {
		_, err := strict.hooks.Add(context.Background(), webhooks.Webhook{URL: target}, webhooks.NewSecret(), "alice", time.Now())
		if !errors.Is(err, webhooks.ErrPrivateTarget) {
			t.Errorf("add %s: err = %v, want ErrPrivateTarget", target, err)
		}
	}
	for _, target := range []string{"ftp://example.com/", "example.com/hook", "http:///x", "http://user:pw@example.com/"} {
		if _, err := strict.hooks.Add(context.Background(), webhooks.Webhook{URL: target}, webhooks.NewSecret(), "alice", time.Now()); err == nil || errors.Is(err, webhooks.ErrPrivateTarget) {
			t.Errorf("add %s: err = %v, want a refusal of the URL", target, err)
		}
	}

	// A definition that names a private target (a name that resolved
	// elsewhere when added, say) is refused when connecting.
	e := newEnv(t, webhooks.Policy{AllowPrivate: true})
	secret := webhooks.NewSecret()
	r := newReceiver(t, secret)
	hook := e.add(webhooks.Webhook{URL: r.srv.URL}, secret)
	e.run(webhooks.Config{MaxFailures: 2})
	e.appendEvent("web", events.AppSuspended{RevisionID: "r"})
	ctx := waitCtx(t)
	e.waitDisabled(ctx, hook.ID)
	deliveries, err := e.hooks.Deliveries(ctx, hook.ID)
	if err != nil || len(deliveries) != 2 || !strings.Contains(deliveries[0].Error, "private") {
		t.Errorf("deliveries = %+v (%v), want 2 refused as private", deliveries, err)
	}
	if n := len(r.unique()) + r.failures(); n != 0 {
		t.Errorf("the receiver was reached %d times", n)
	}
}

func TestRedeliverSendsAnEventAgainWithItsID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, webhooks.Policy{AllowPrivate: true})
	secret := webhooks.NewSecret()
	r := newReceiver(t, secret)
	hook := e.add(webhooks.Webhook{URL: r.srv.URL}, secret)
	e.run(webhooks.Config{AllowPrivate: true})
	sent := e.appendEvent("web", events.AppSuspended{RevisionID: "r"})
	ctx := waitCtx(t)
	testsupport.Eventually(ctx, t, "the event arrived", func() bool { return len(r.unique()) == 1 })
	if err := e.hooks.RequestRedelivery(ctx, hook.ID, sent.Sequence, "bob", time.Now()); err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(ctx, t, "the event arrived again", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.got) == 2
	})
	r.mu.Lock()
	if r.got[1].ID != sent.EventID {
		t.Errorf("redelivered %s, want %s", r.got[1].ID, sent.EventID)
	}
	r.mu.Unlock()
	// Either attempt may be recorded first: the first delivery's record
	// races the redelivery.
	testsupport.Eventually(ctx, t, "both attempts are recorded", func() bool {
		d, err := e.hooks.Deliveries(ctx, hook.ID)
		return err == nil && len(d) == 2 && d[0].OK() && d[1].OK() && d[0].Redelivery != d[1].Redelivery
	})
}

func TestTheSecretIsOnlyInItsOwnBucket(t *testing.T) {
	t.Parallel()
	e := newEnv(t, webhooks.Policy{AllowPrivate: true})
	secret := webhooks.NewSecret()
	r := newReceiver(t, secret)
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&logs, &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r.down.Store(true)
	hook := e.add(webhooks.Webhook{URL: r.srv.URL}, secret)
	e.run(webhooks.Config{AllowPrivate: true, MaxFailures: 2, Logger: logger})
	e.appendEvent("web", events.AppSuspended{RevisionID: "r"})
	ctx := waitCtx(t)
	e.waitDisabled(ctx, hook.ID)
	// The worker logs the change when it sees it in the store, after the
	// store says disabled.
	testsupport.Eventually(ctx, t, "the log says the webhook was disabled", func() bool {
		logMu.Lock()
		defer logMu.Unlock()
		return strings.Contains(logs.String(), "webhook disabled")
	})
	forms := [][]byte{secret, []byte(webhooks.FormatSecret(secret)), []byte(base64.StdEncoding.EncodeToString(secret))}
	logMu.Lock()
	for _, form := range forms {
		if bytes.Contains(logs.Bytes(), form) {
			t.Errorf("the log holds the secret: %s", logs.String())
		}
	}
	logMu.Unlock()
	found := 0
	for name := range e.js.StreamNames(ctx).Name() {
		stream, err := e.js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for seq := uint64(1); seq <= stream.CachedInfo().State.LastSeq; seq++ {
			msg, err := stream.GetMsg(ctx, seq)
			if err != nil {
				continue // deleted
			}
			for _, form := range forms {
				if bytes.Contains(msg.Data, form) || strings.Contains(strings.Join(flatten(msg.Header), " "), string(form)) {
					if name != "KV_"+webhooks.SecretBucketName {
						t.Errorf("stream %s, message %d holds the secret", name, seq)
					}
					found++
				}
			}
		}
	}
	if found == 0 {
		t.Error("the secret is not in its own bucket either: the search cannot find it")
	}
}

func flatten(h map[string][]string) []string {
	var out []string
	for k, vs := range h {
		out = append(out, k)
		out = append(out, vs...)
	}
	return out
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestSignaturesFollowStandardWebhooks(t *testing.T) {
	t.Parallel()
	// The test vector of the Standard Webhooks reference libraries.
	secret, err := webhooks.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := webhooks.Sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("signature = %s, want %s", got, want)
	}
	if err := webhooks.Verify(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", "v1,bad "+got, []byte(`{"test": 2432232314}`)); err != nil {
		t.Errorf("verify: %v", err)
	}
	if err := webhooks.Verify(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265331", got, []byte(`{"test": 2432232314}`)); err == nil {
		t.Error("a signature verified with another timestamp")
	}
	for _, bad := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_c2hvcnQ="} {
		if _, err := webhooks.ParseSecret(bad); err == nil {
			t.Errorf("ParseSecret(%q) accepted", bad)
		}
	}
	if s := webhooks.NewSecret(); !slices.Equal(must(webhooks.ParseSecret(webhooks.FormatSecret(s))), s) {
		t.Error("a formatted secret does not parse back")
	}
}

func must[V any](v V, err error) V {
	if err != nil {
		panic(err)
	}
	return v
}

// A webhook's consumer deleted behind the worker's back (any token that
// may read every app's events may delete it) is made again after the
// last event the webhook delivered: the receiver gets each event once
// more at most (the one in flight, at least once), not the whole history
// again.
func TestADeletedConsumerResumesAfterTheLastDeliveredEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, webhooks.Policy{AllowPrivate: true})
	secret := webhooks.NewSecret()
	r := &receiver{secret: secret}
	var requests atomic.Int32
	held, release := make(chan struct{}), make(chan struct{})
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if requests.Add(1) == 3 {
			close(held)
			<-release
		}
		r.serve(w, req)
	}))
	t.Cleanup(r.srv.Close)
	hook := e.add(webhooks.Webhook{URL: r.srv.URL}, secret)
	e.run(webhooks.Config{AllowPrivate: true})
	var sent []events.Envelope
	for i := range 5 {
		sent = append(sent, e.appendEvent("web", events.AppSuspended{RevisionID: strconv.Itoa(i)}))
	}
	ctx := waitCtx(t)
	select {
	case <-held: // the third event is in flight
	case <-ctx.Done():
		t.Fatal("the third event never reached the receiver")
	}
	if err := e.js.DeleteConsumer(ctx, events.EventStreamName, e.hooks.ConsumerName(hook)); err != nil {
		t.Fatal(err)
	}
	close(release)
	testsupport.Eventually(ctx, t, "the five events arrived", func() bool { return len(r.unique()) == 5 })
	if _, err := e.js.Consumer(ctx, events.EventStreamName, e.hooks.ConsumerName(hook)); err != nil {
		t.Fatalf("the consumer was not made again: %v", err)
	}
	// And once more with nothing in flight.
	if err := e.js.DeleteConsumer(ctx, events.EventStreamName, e.hooks.ConsumerName(hook)); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		sent = append(sent, e.appendEvent("web", events.AppResumed{RevisionID: strconv.Itoa(i)}))
	}
	testsupport.Eventually(ctx, t, "every event arrived", func() bool { return len(r.unique()) == len(sent) })
	if got := r.unique(); !slices.Equal(got, ids(sent)) {
		t.Errorf("received %v, want %v in this order", got, ids(sent))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	times := map[string]int{}
	for _, ce := range r.got {
		times[ce.ID]++
	}
	for i, env := range sent {
		if n := times[env.EventID]; n > 1 && i != 2 {
			t.Errorf("event %d (not the one in flight) arrived %d times", i, n)
		}
	}
	if times[sent[2].EventID] > 2 {
		t.Errorf("the event in flight arrived %d times", times[sent[2].EventID])
	}
}

// Every server names a webhook's consumer the same (replicas share its
// deliveries), with a part that cannot be made from the webhook's id;
// a name key a client overwrote with something shorter than a key is
// replaced, which renames the consumers.
func TestConsumerNamesAreTheServersAndUnguessable(t *testing.T) {
	e := newEnv(t, webhooks.Policy{})
	ctx := waitCtx(t)
	hook := webhooks.Webhook{ID: "0123456789ab"}
	other, err := webhooks.Ensure(ctx, e.js, 1, webhooks.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	name := e.hooks.ConsumerName(hook)
	if got := other.ConsumerName(hook); got != name {
		t.Errorf("a second server names the consumer %q, the first %q", got, name)
	}
	suffix, ok := strings.CutPrefix(name, webhooks.ConsumerPrefix+hook.ID+"-")
	if !ok || len(suffix) < 16 || strings.Contains(name, " ") {
		t.Fatalf("consumer name %q: want %s<id>-<keyed hash>", name, webhooks.ConsumerPrefix)
	}
	if e.hooks.ConsumerName(webhooks.Webhook{ID: "0123456789ac"}) == name {
		t.Error("two webhooks share a consumer name")
	}
	secrets, err := e.js.KeyValue(ctx, webhooks.SecretBucketName)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.Put(ctx, webhooks.ConsumerKeyName, []byte("known")); err != nil {
		t.Fatal(err)
	}
	renamed, err := webhooks.Ensure(ctx, e.js, 1, webhooks.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	if got := renamed.ConsumerName(hook); got == name || !strings.HasPrefix(got, webhooks.ConsumerPrefix+hook.ID+"-") {
		t.Errorf("after a client wrote a known key the name is %q (was %q)", got, name)
	}
}
