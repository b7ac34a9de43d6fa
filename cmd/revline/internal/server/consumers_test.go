package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/cmd/revline/internal/server"
	"github.com/revline/revline/cmd/revline/internal/servertest"
	"github.com/revline/revline/events"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/workers/runner"
	"github.com/revline/revline/workers/webhooks"
)

// createConsumer asks, as c, for a consumer of app's events named name
// with the configuration config (JSON fields of JetStream's API), as any
// NATS client can: the permissions see the subject, never the body.
func createConsumer(t *testing.T, c *tokenConn, app, name, config string) {
	t.Helper()
	subject := "$JS.API.CONSUMER.CREATE." + events.EventStreamName + "." + name + "." + events.AppEventsFilter(app)
	body := `{"stream_name":"` + events.EventStreamName + `","config":{"name":"` + name + `","filter_subject":"` + events.AppEventsFilter(app) + `",` + config + `}}`
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg, err := c.nc.RequestWithContext(ctx, subject, []byte(body))
	if err != nil {
		t.Fatalf("create consumer %s: %v", name, err)
	}
	var answer struct {
		Error *struct{ Description string }
	}
	if err := json.Unmarshal(msg.Data, &answer); err != nil || answer.Error != nil {
		t.Fatalf("create consumer %s: %s", name, msg.Data)
	}
}

// consumerExists reports whether the event stream has the consumer name,
// as the admin token sees it.
func consumerExists(t *testing.T, js jetstream.JetStream, name string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := js.Consumer(ctx, events.EventStreamName, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return false
	}
	if err != nil && !errors.Is(err, jetstream.ErrNotPullConsumer) { // a push consumer is one too
		t.Fatalf("consumer %s: %v", name, err)
	}
	return true
}

// webhookConsumer returns the name of webhook id's consumer of the event
// stream, listed as the server (js) sees them; "" while there is none.
func webhookConsumer(ctx context.Context, t *testing.T, js jetstream.JetStream, id string) string {
	t.Helper()
	stream, err := js.Stream(ctx, events.EventStreamName)
	if err != nil {
		t.Fatal(err)
	}
	names := stream.ConsumerNames(ctx)
	found := ""
	for name := range names.Name() {
		if strings.HasPrefix(name, webhooks.ConsumerPrefix+id+"-") {
			found = name
		}
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	return found
}

// A token that reads every app's events learns webhooks' ids from their
// events; it still cannot find, pull from or delete a webhook's consumer:
// the name holds a keyed hash that only the server makes.
func TestAWebhooksConsumerCannotBeFoundFromItsID(t *testing.T) {
	t.Parallel()
	addrs := servertest.Serve(t, server.Config{WebhooksAllowPrivate: true})
	cli := asClient(t, addrs)
	receiver := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(receiver.Close)
	var added struct{ Webhook webhooks.Webhook }
	if err := json.Unmarshal([]byte(cli("webhooks", "add", receiver.URL, "-o", "json")), &added); err != nil {
		t.Fatal(err)
	}
	id := added.Webhook.ID
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	asServer := serverConn(t, addrs)
	var name string
	testsupport.Eventually(ctx, t, "the webhook's consumer", func() bool {
		name = webhookConsumer(ctx, t, asServer, id)
		return name != ""
	})
	if len(name) < len(webhooks.ConsumerPrefix+id)+16 {
		t.Fatalf("the webhook's consumer %q has no unguessable part", name)
	}
	a := attacker(t, addrs)
	reader := mustConnectAs(t, addrs, a.token("all-reader", "viewer"))
	for _, guess := range []string{webhooks.ConsumerPrefix + id, id} {
		if _, err := reader.js.Consumer(ctx, events.EventStreamName, guess); !errors.Is(err, jetstream.ErrConsumerNotFound) {
			t.Errorf("consumer %q, as a viewer of every app: %v, want not found", guess, err)
		}
	}
	listed := 0
	names, err := reader.js.Stream(ctx, events.EventStreamName)
	if err != nil {
		t.Fatal(err)
	}
	lister := names.ConsumerNames(refusedWithin(t))
	for range lister.Name() {
		listed++
	}
	if lister.Err() == nil || listed > 0 {
		t.Errorf("a viewer listed %d consumers of the event stream (error %v)", listed, lister.Err())
	}
	// An admin, who writes webhook secrets, cannot write the names' key.
	root := mustConnectAs(t, addrs, a.token("root", "admin"))
	if err := root.nc.Publish("$KV."+webhooks.SecretBucketName+"."+webhooks.ConsumerKeyName, []byte(strings.Repeat("k", 32))); err != nil {
		t.Fatal(err)
	}
	expectViolation(t, root.violations, "an admin writing the key of the webhooks' consumer names")
}

// A consumer a token makes that could outlive it (a push consumer, whose
// deliver subject can be another token's inbox, or a durable one) is
// deleted within the sweep's period; an ordered consumer, as the CLI's
// audit --follow makes, keeps working.
func TestClientConsumersThatOutliveTheirTokenAreDeleted(t *testing.T) {
	t.Parallel()
	addrs := servertest.Serve(t, server.Config{ConsumerSweepInterval: 100 * time.Millisecond, WebhooksAllowPrivate: true})
	cli := asClient(t, addrs)
	cli("deploy", "web", "--command", runnerBin)
	a := attacker(t, addrs)
	asWeb := mustConnectAs(t, addrs, a.token("web-reader", "viewer", "--app", "web"))
	admin := clientConn(t, addrs)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	receiver := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(receiver.Close)
	var added struct{ Webhook webhooks.Webhook }
	if err := json.Unmarshal([]byte(cli("webhooks", "add", receiver.URL, "-o", "json")), &added); err != nil {
		t.Fatal(err)
	}
	var hookConsumer string
	asServer := serverConn(t, addrs)
	testsupport.Eventually(ctx, t, "the webhook's consumer", func() bool {
		hookConsumer = webhookConsumer(ctx, t, asServer, added.Webhook.ID)
		return hookConsumer != ""
	})
	follow, err := asWeb.js.OrderedConsumer(ctx, events.EventStreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.AppEventsFilter("web")}, DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	followed, err := follow.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer followed.Stop()
	ordered := follow.CachedInfo().Name

	createConsumer(t, asWeb, "web", "push", `"durable_name":"push","deliver_subject":"_INBOX.api-reader.web","ack_policy":"none"`)
	createConsumer(t, asWeb, "web", "durable", `"durable_name":"durable","ack_policy":"explicit"`)
	createConsumer(t, asWeb, "web", "forever", `"ack_policy":"explicit","inactive_threshold":3153600000000000000`)
	for _, name := range []string{"push", "durable", "forever"} {
		testsupport.Eventually(ctx, t, "consumer "+name+" deleted", func() bool { return !consumerExists(t, admin, name) })
	}
	// The sweeps that deleted them left the ordered consumer, and the
	// server's own.
	if !consumerExists(t, admin, ordered) {
		t.Errorf("the ordered consumer %s was deleted", ordered)
	}
	for _, own := range []string{runner.ConsumerName, hookConsumer} {
		if !consumerExists(t, admin, own) {
			t.Errorf("the server's consumer %s was deleted", own)
		}
	}
	cli("apps", "scale", "web", "--keep-alive", "42")
	msg, err := followed.Next()
	if err != nil {
		t.Fatalf("the ordered consumer after the sweeps: %v", err)
	}
	if got := msg.Headers().Get(events.HeaderApp); got != "web" {
		t.Errorf("the ordered consumer read an event of %q", got)
	}
}

// A token's revocation deletes the consumers it made that could outlive
// it once the revocation is answered, without waiting for the next sweep.
func TestRevocationDeletesTheTokensLastingConsumers(t *testing.T) {
	t.Parallel()
	addrs := servertest.Serve(t, server.Config{ConsumerSweepInterval: time.Hour})
	cli := asClient(t, addrs)
	cli("deploy", "web", "--command", runnerBin)
	a := attacker(t, addrs)
	asWeb := mustConnectAs(t, addrs, a.token("web-reader", "viewer", "--app", "web"))
	createConsumer(t, asWeb, "web", "push", `"durable_name":"push","deliver_subject":"_INBOX.api-reader.web","ack_policy":"none"`)
	admin := clientConn(t, addrs)
	if !consumerExists(t, admin, "push") {
		t.Fatal("no push consumer to begin with")
	}
	cli("tokens", "revoke", "web-reader")
	if consumerExists(t, admin, "push") {
		t.Error("the revoked token's push consumer outlives the revocation")
	}
}
