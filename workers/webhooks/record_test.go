package webhooks_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/revline/revline/events"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/workers/webhooks"
)

// keyVerifier verifies webhook changes against the public keys of the
// tokens it knows, by name, as serve's token store does: a server's own
// token acts for whom it claims, any other for itself.
type keyVerifier struct {
	keys   map[string]ed25519.PublicKey
	server string
}

// serverToken is the token the tests' server store signs with.
const serverToken = "serve"

func newKeyVerifier(tokens ...string) keyVerifier {
	v := keyVerifier{keys: map[string]ed25519.PublicKey{}, server: serverToken}
	for _, name := range append(tokens, serverToken) {
		v.keys[name] = events.SigningKey(tokenValue(name)).Public().(ed25519.PublicKey)
	}
	return v
}

// tokenValue is the tests' value of the token name.
func tokenValue(name string) string { return "rvl_" + name + "_secret" }

func (v keyVerifier) VerifyWrite(_ context.Context, sig events.Signature, _ time.Time, claimed string) (string, error) {
	pub, ok := v.keys[sig.Key]
	if !ok {
		return "", &events.Rejection{Code: events.CodeUnauthenticated, Message: "unknown token " + sig.Key}
	}
	if err := sig.Verify(pub); err != nil {
		return "", &events.Rejection{Code: events.CodeUnauthenticated, Message: err.Error()}
	}
	if sig.Key == v.server {
		return claimed, nil
	}
	return "token:" + sig.Key, nil
}

// record runs Store.Record until the returned stop is called (or the
// test ends), as one serve replica does.
func (e *env) record() (stop func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- e.hooks.Record(ctx, e.events, newKeyVerifier("ops"), slog.New(slog.DiscardHandler))
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				e.t.Errorf("record: %v", err)
			}
		})
	}
	e.t.Cleanup(stop)
	return stop
}

// newRecordingEnv is an env whose webhook changes one replica records,
// with a receiver that takes private targets.
func newRecordingEnv(t *testing.T) (*env, context.Context, *receiver) {
	e := newEnv(t, webhooks.Policy{AllowPrivate: true})
	e.record()
	return e, waitCtx(t), newReceiver(t, webhooks.NewSecret())
}

// recorded returns the webhooks aggregate's events once there are n.
func (e *env) recorded(ctx context.Context, n int) []events.Envelope {
	e.t.Helper()
	var history []events.Envelope
	testsupport.Eventually(ctx, e.t, "the webhook changes recorded", func() bool {
		var err error
		history, err = e.events.Load(ctx, events.WebhooksAggregate, 0)
		return err == nil && len(history) >= n
	})
	return history
}

// Adding, disabling (by hand and after failures), enabling and removing
// a webhook are events of the webhooks aggregate, each once although two
// replicas record them, with who, when and why, chained, and without the
// secret; a recorder started again records only what is new.
func TestWebhookChangesAreEventsOfTheLog(t *testing.T) {
	t.Parallel()
	e, ctx, r := newRecordingEnv(t)
	secret := r.secret
	stopSecond := e.record()
	hook := e.add(webhooks.Webhook{URL: r.srv.URL + "/hook?token=private", App: "web", Events: []string{"app.*"}}, secret)
	if _, err := e.hooks.SetStatus(ctx, hook.ID, webhooks.StatusDisabled, "bob", "maintenance", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.hooks.SetStatus(ctx, hook.ID, webhooks.StatusActive, "carol", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	// The worker disables it after failed deliveries.
	r.down.Store(true)
	e.run(webhooks.Config{AllowPrivate: true, MaxFailures: 2})
	e.appendEvent("web", events.AppSuspended{RevisionID: "r"})
	e.waitDisabled(ctx, hook.ID)
	e.recorded(ctx, 4)
	stopSecond()
	if _, err := e.hooks.SetStatus(ctx, hook.ID, webhooks.StatusRemoved, "dave", "gone", time.Now()); err != nil {
		t.Fatal(err)
	}
	history := e.recorded(ctx, 5)

	type change struct{ typ, by, reason string }
	want := []change{
		{events.TypeWebhookAdded, "alice", ""},
		{events.TypeWebhookDisabled, "bob", "maintenance"},
		{events.TypeWebhookEnabled, "carol", ""},
		{events.TypeWebhookDisabled, webhooks.Actor, "2 failed attempts in a row"},
		{events.TypeWebhookRemoved, "dave", "gone"},
	}
	if len(history) != len(want) {
		t.Fatalf("recorded %d events, want %d: %+v", len(history), len(want), history)
	}
	prev := events.ZeroHash
	for i, env := range history {
		var got change
		switch ev := env.Event.(type) {
		case events.WebhookAdded:
			got = change{env.Type, ev.By, ""}
			if ev.WebhookID != hook.ID || ev.App != "web" || ev.Target != strings.TrimSuffix(r.srv.URL, "/") || ev.StartSequence != hook.StartSequence {
				t.Errorf("added: %+v", ev)
			}
		case events.WebhookDisabled:
			got = change{env.Type, ev.By, ev.Reason}
		case events.WebhookEnabled:
			got = change{env.Type, ev.By, ev.Reason}
		case events.WebhookRemoved:
			got = change{env.Type, ev.By, ev.Reason}
		}
		if got.typ != want[i].typ || got.by != want[i].by || !strings.Contains(got.reason, want[i].reason) {
			t.Errorf("event %d: %+v, want %+v", i, got, want[i])
		}
		if env.Actor != webhooks.Actor || env.PrevHash != prev || env.Hash != events.EventHash(env) {
			t.Errorf("event %d: actor %q, chained from %q (want %q), hash %q", i, env.Actor, env.PrevHash, prev, env.Hash)
		}
		prev = env.Hash
		for _, leak := range [][]byte{secret, []byte(base64.StdEncoding.EncodeToString(secret)), []byte("token=private")} {
			if bytes.Contains(env.Payload, leak) {
				t.Errorf("event %d holds the secret or the URL's query: %s", i, env.Payload)
			}
		}
	}

	// Started again, a recorder resumes after the last change recorded.
	e.record()
	e.appendEvent("web", events.AppResumed{RevisionID: "r"})
	again := e.add(webhooks.Webhook{URL: r.srv.URL}, secret)
	history = e.recorded(ctx, 6)
	if len(history) != 6 || history[5].Event.(events.WebhookAdded).WebhookID != again.ID {
		t.Fatalf("after a restart: %d events, the last %+v", len(history), history[len(history)-1])
	}
}

// A change is recorded as made by the token that signed it, whatever
// actor its definition claims; a change no known token signed is
// recorded as unverified, with the claim.
func TestWebhookChangesRecordWhoSignedThem(t *testing.T) {
	t.Parallel()
	e, ctx, r := newRecordingEnv(t)
	client := func(token string) *webhooks.Store {
		t.Helper()
		hooks, err := webhooks.Open(ctx, e.js)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			hooks.SignWith(events.NewSigner(token, tokenValue(token)))
		}
		return hooks
	}
	hook, err := client("ops").Add(ctx, webhooks.Webhook{URL: r.srv.URL}, r.secret, "mallory", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client("").SetStatus(ctx, hook.ID, webhooks.StatusDisabled, "eve", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := client("stranger").SetStatus(ctx, hook.ID, webhooks.StatusActive, "trent", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.hooks.SetStatus(ctx, hook.ID, webhooks.StatusRemoved, "http:carol", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	history := e.recorded(ctx, 4)
	var by []string
	for _, env := range history {
		switch ev := env.Event.(type) {
		case events.WebhookAdded:
			by = append(by, ev.By)
		case events.WebhookDisabled:
			by = append(by, ev.By)
		case events.WebhookEnabled:
			by = append(by, ev.By)
		case events.WebhookRemoved:
			by = append(by, ev.By)
		}
	}
	want := []string{"token:ops", webhooks.Unverified("eve"), webhooks.Unverified("trent"), "http:carol"}
	if !slices.Equal(by, want) {
		t.Errorf("recorded by %q, want %q", by, want)
	}
}

// No app can own the webhooks aggregate's subject: its name is not an
// app name, and every app name is refused as the aggregate's.
func TestWebhooksAggregateIsNoApp(t *testing.T) {
	t.Parallel()
	if err := events.ValidateAppName(events.WebhooksAggregate); err == nil {
		t.Fatalf("%q is a valid app name", events.WebhooksAggregate)
	}
	if err := events.ValidateAggregateName(events.WebhooksAggregate); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(events.EventSubject(events.WebhooksAggregate, events.TypeWebhookAdded), events.EventSubjectPrefix+"_") {
		t.Fatal("the webhooks aggregate's subject does not start with '_'")
	}
}

// A failed delivery's error names the target by scheme and host only:
// the URL's path and query (a token, often) are in no delivery record,
// no disable reason and no event of the log.
func TestAFailedDeliveryKeepsNoURLPathOrQuery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, webhooks.Policy{AllowPrivate: true})
	ctx := waitCtx(t)
	e.record()
	hook := e.add(webhooks.Webhook{URL: "http://127.0.0.1:9/services/T000/XXXXSECRET?token=abc"}, webhooks.NewSecret())
	e.run(webhooks.Config{AllowPrivate: true, MaxFailures: 1})
	e.appendEvent("web", events.AppSuspended{RevisionID: "r"})
	e.waitDisabled(ctx, hook.ID)
	history := e.recorded(ctx, 2)
	deliveries, err := e.hooks.Deliveries(ctx, hook.ID)
	if err != nil || len(deliveries) != 1 {
		t.Fatalf("deliveries = %+v (%v), want 1", deliveries, err)
	}
	disabled, _, err := e.hooks.Get(ctx, hook.ID)
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string]string{"delivery error": deliveries[0].Error, "disable reason": disabled.Reason}
	for _, env := range history {
		if env.Type == events.TypeWebhookDisabled {
			kept["webhook.disabled event"] = string(env.Payload)
		}
	}
	if len(kept) != 3 {
		t.Fatalf("no webhook.disabled event in %+v", history)
	}
	// A definition disabled by a server that kept the whole URL in the
	// reason is recorded without it.
	old := e.add(webhooks.Webhook{URL: "http://127.0.0.1:9/services/T000/XXXXSECRET?token=abc"}, webhooks.NewSecret())
	oldReason := `10 failed attempts in a row, the last on event 1: Post "http://127.0.0.1:9/services/T000/XXXXSECRET?token=abc": dial tcp 127.0.0.1:9: connect: connection refused`
	if _, err := e.hooks.SetStatus(ctx, old.ID, webhooks.StatusDisabled, webhooks.Actor, oldReason, time.Now()); err != nil {
		t.Fatal(err)
	}
	history = e.recorded(ctx, 4)
	kept["webhook.disabled event of an older server's reason"] = string(history[3].Payload)
	for what, text := range kept {
		if strings.Contains(text, "XXXXSECRET") || strings.Contains(text, "token=abc") {
			t.Errorf("the %s holds the URL's path or query: %s", what, text)
		}
		if !strings.Contains(text, "http://127.0.0.1:9") {
			t.Errorf("the %s does not name the target: %s", what, text)
		}
	}
}

// A webhook of every app's events gets no event of the webhooks
// aggregate (not an app's, like every reader of apps), nor when asked to
// redeliver one.
func TestEveryAppWebhooksSkipTheWebhooksAggregate(t *testing.T) {
	t.Parallel()
	e, ctx, r := newRecordingEnv(t)
	secret := r.secret
	hook := e.add(webhooks.Webhook{URL: r.srv.URL}, secret)
	added := e.recorded(ctx, 1)[0]
	if added.Sequence < hook.StartSequence {
		t.Fatalf("webhook.added is event %d, before the webhook's start %d", added.Sequence, hook.StartSequence)
	}
	e.run(webhooks.Config{AllowPrivate: true})
	sent := e.appendEvent("web", events.AppSuspended{RevisionID: "r"})
	testsupport.Eventually(ctx, t, "the app's event arrived", func() bool { return slices.Contains(r.unique(), sent.EventID) })
	if got := r.unique(); !slices.Equal(got, []string{sent.EventID}) {
		t.Errorf("received %v, want only the app's event %s (not webhook.added %s)", got, sent.EventID, added.EventID)
	}
	if err := e.hooks.RequestRedelivery(ctx, hook.ID, added.Sequence, "bob", time.Now()); err != nil {
		t.Fatal(err)
	}
	// The app event's delivery may be recorded after the redelivery.
	var redelivery webhooks.Delivery
	testsupport.Eventually(ctx, t, "the redelivery is recorded", func() bool {
		d, err := e.hooks.Deliveries(ctx, hook.ID)
		i := slices.IndexFunc(d, func(d webhooks.Delivery) bool { return d.Redelivery })
		if err != nil || i < 0 {
			return false
		}
		redelivery = d[i]
		return true
	})
	if redelivery.OK() || !strings.Contains(redelivery.Error, "not redelivered") {
		t.Errorf("redelivery of webhook.added = %+v, want refused", redelivery)
	}
	if got := r.unique(); len(got) != 1 {
		t.Errorf("received %v after the redelivery, want only %s", got, sent.EventID)
	}
}

// A change is recorded at the time the bucket stored it, not the one the
// definition (written by clients) says: nobody backdates webhook events.
func TestWebhookEventsTakeTheBucketsTime(t *testing.T) {
	t.Parallel()
	e, ctx, r := newRecordingEnv(t)
	backdated := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	hook, err := e.hooks.Add(ctx, webhooks.Webhook{URL: r.srv.URL}, r.secret, "mallory", backdated)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.hooks.SetStatus(ctx, hook.ID, webhooks.StatusDisabled, "mallory", "", backdated); err != nil {
		t.Fatal(err)
	}
	history := e.recorded(ctx, 2)
	bucket, err := e.js.KeyValue(ctx, webhooks.BucketName)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := bucket.History(ctx, "hook."+hook.ID)
	if err != nil || len(stored) != 2 {
		t.Fatalf("the definition's history: %d revisions (%v), want 2", len(stored), err)
	}
	for i, env := range history {
		if want := stored[i].Created().UTC(); !env.OccurredAt.Equal(want) {
			t.Errorf("%s occurred at %s, want %s (when the bucket stored it)", env.Type, env.OccurredAt, want)
		}
	}
}
