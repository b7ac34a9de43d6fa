package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
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
	hookConsumer := added.Webhook.ConsumerName()
	testsupport.Eventually(ctx, t, "the webhook's consumer", func() bool { return consumerExists(t, admin, hookConsumer) })
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
