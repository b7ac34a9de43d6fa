package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/cmd/revline/internal/server"
	"github.com/revline/revline/cmd/revline/internal/servertest"
	"github.com/revline/revline/events"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/workers/webhooks"
)

// hookReceiver verifies each delivery's signature and keeps the events
// it accepted; while down it answers 500.
type hookReceiver struct {
	secret []byte
	down   atomic.Bool
	mu     sync.Mutex
	got    []webhooks.CloudEvent
	bad    int
}

func (r *hookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	var ce webhooks.CloudEvent
	switch {
	case r.down.Load():
		w.WriteHeader(http.StatusInternalServerError)
	case webhooks.Verify(r.secret, req.Header.Get(webhooks.HeaderID), req.Header.Get(webhooks.HeaderTimestamp), req.Header.Get(webhooks.HeaderSignature), body) != nil,
		json.Unmarshal(body, &ce) != nil:
		r.bad++
		w.WriteHeader(http.StatusUnauthorized)
	default:
		r.got = append(r.got, ce)
	}
}

func (r *hookReceiver) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ce := range r.got {
		out = append(out, strings.TrimPrefix(ce.Type, webhooks.TypePrefix))
	}
	return out
}

// Webhooks through the CLI, with the client identity, against a whole
// serve: added with a generated secret, they deliver signed CloudEvents of
// the types and app asked for, survive the receiver's outage (disabled
// after --webhooks-max-failures, enabled again with nothing lost), show
// their deliveries, redeliver, and are removed. The secret is in no
// stream but its own bucket, in no log line, and clients cannot read it.
func TestWebhooksThroughTheCLI(t *testing.T) {
	t.Parallel()
	var serverLog testsupport.SyncBuffer
	addrs := servertest.Serve(t, server.Config{
		NATSListen: "127.0.0.1:0", WebhooksAllowPrivate: true, WebhookMaxFailures: 2,
		Logger: slog.New(slog.NewTextHandler(&serverLog, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	cli := asClient(t, addrs)
	recv := &hookReceiver{}
	srv := httptest.NewServer(recv)
	t.Cleanup(srv.Close)

	var added struct {
		Webhook webhooks.Webhook `json:"webhook"`
		Secret  string           `json:"secret"`
	}
	if err := json.Unmarshal([]byte(cli("webhooks", "add", srv.URL+"/in", "--app", "web", "--events", "app.*", "-o", "json", "--actor", "mallory")), &added); err != nil {
		t.Fatal(err)
	}
	secret, err := webhooks.ParseSecret(added.Secret)
	if err != nil {
		t.Fatal(err)
	}
	recv.mu.Lock()
	recv.secret = secret
	recv.mu.Unlock()
	id := added.Webhook.ID
	if out := cli("webhooks", "list"); !strings.Contains(out, id) || !strings.Contains(out, "app.*") || !strings.Contains(out, "active") {
		t.Errorf("webhooks list:\n%s", out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli("deploy", "web", "--command", runnerBin)
	cli("deploy", "other", "--command", runnerBin) // another app: not sent
	cli("apps", "scale", "web", "--keep-alive", "61")
	testsupport.Eventually(ctx, t, "two events arrived", func() bool { return len(recv.types()) >= 2 })

	// The receiver goes down: after two failures the webhook is disabled.
	recv.down.Store(true)
	cli("apps", "scale", "web", "--keep-alive", "62")
	testsupport.Eventually(ctx, t, "the webhook is disabled", func() bool {
		return strings.Contains(cli("webhooks", "list"), "disabled by "+webhooks.Actor)
	})
	cli("apps", "scale", "web", "--keep-alive", "63")
	recv.down.Store(false)
	cli("webhooks", "enable", id)
	testsupport.Eventually(ctx, t, "every event arrived", func() bool { return len(recv.types()) >= 4 })
	if got, want := recv.types(), []string{"app.current_revision_set", "app.scaled", "app.scaled", "app.scaled"}; !slices.Equal(got, want) {
		t.Errorf("received %v, want %v", got, want)
	}
	recv.mu.Lock()
	if recv.bad != 0 {
		t.Errorf("%d deliveries failed verification", recv.bad)
	}
	var seqs []int
	for _, ce := range recv.got {
		n, _ := strconv.Atoi(ce.Sequence)
		seqs = append(seqs, n)
	}
	last := recv.got[3]
	recv.mu.Unlock()
	if !slices.IsSorted(seqs) || len(slices.Compact(seqs)) != 4 {
		t.Errorf("the events arrived at sequences %v, want 4 distinct ones in order", seqs)
	}

	deliveries := cli("webhooks", "deliveries", id)
	if !strings.Contains(deliveries, " 500 ") || !strings.Contains(deliveries, " 200 ") {
		t.Errorf("webhooks deliveries shows no 500 and 200:\n%s", deliveries)
	}
	cli("webhooks", "redeliver", id, last.Sequence)
	testsupport.Eventually(ctx, t, "the redelivery arrived", func() bool { return len(recv.types()) == 5 })
	recv.mu.Lock()
	if recv.got[4].ID != last.ID {
		t.Errorf("redelivered %s, want %s", recv.got[4].ID, last.ID)
	}
	recv.mu.Unlock()

	// A client writes webhook secrets and never reads them back.
	js := clientConn(t, addrs)
	kv, err := js.KeyValue(ctx, webhooks.SecretBucketName)
	if err != nil {
		t.Fatal(err)
	}
	refused, cancelRefused := context.WithTimeout(ctx, 2*time.Second)
	defer cancelRefused()
	if entry, err := kv.Get(refused, id); err == nil {
		t.Errorf("a client read a webhook secret: %q", entry.Value())
	}

	admin := serverConn(t, addrs)
	forms := []string{added.Secret, strings.TrimPrefix(added.Secret, "whsec_"), string(secret)}
	var names []string
	for name := range admin.StreamNames(ctx).Name() {
		if name != "KV_"+webhooks.SecretBucketName {
			names = append(names, name)
		}
	}
	for _, form := range forms {
		for _, where := range messagesHolding(ctx, t, admin, names, form) {
			t.Errorf("%s holds the webhook secret", where)
		}
	}
	for _, form := range forms {
		if strings.Contains(serverLog.String(), form) {
			t.Error("the server's log holds the webhook secret")
		}
	}

	if webhookConsumer(ctx, t, admin, id) == "" {
		t.Fatal("the webhook has no consumer before its removal")
	}
	out := cli("webhooks", "remove", id)
	if !strings.Contains(out, "Removed webhook "+id) {
		t.Errorf("webhooks remove: %s", out)
	}
	if out := cli("webhooks", "list"); strings.Contains(out, id) {
		t.Errorf("webhooks list shows a removed webhook:\n%s", out)
	}
	if out := cli("webhooks", "list", "--all"); !strings.Contains(out, "removed by") {
		t.Errorf("webhooks list --all does not say who removed it:\n%s", out)
	}
	history := lines(cli("webhooks", "history", id))
	if len(history) != 5 || !strings.Contains(history[1], "added") || !strings.Contains(history[2], "disabled  "+webhooks.Actor) ||
		!strings.Contains(history[3], "active") || !strings.Contains(history[4], "removed") {
		t.Errorf("webhooks history:\n%s", strings.Join(history, "\n"))
	}
	testsupport.Eventually(ctx, t, "the removed webhook's consumer is deleted", func() bool {
		return webhookConsumer(ctx, t, admin, id) == ""
	})

	// Every change is an event of the log, in the audit, chained.
	log, err := events.OpenJetStreamStore(ctx, events.JetStreamStoreConfig{JetStream: admin})
	if err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(ctx, t, "the webhook's changes recorded", func() bool {
		recorded, err := log.Load(ctx, events.WebhooksAggregate, 0)
		return err == nil && len(recorded) == 4
	})
	changes := lines(cli("audit", "--type", "webhook.*"))
	if len(changes) != 5 {
		t.Fatalf("audit --type webhook.*:\n%s", strings.Join(changes, "\n"))
	}
	// Who is the token that signed the change, never the --actor a
	// client claims; the server's own disable names its worker.
	adminToken := "token:" + auth.BootstrapName
	for i, want := range []string{"webhook " + id + " added by " + adminToken, "disabled by " + webhooks.Actor, "enabled by " + adminToken, "removed by " + adminToken} {
		if !strings.Contains(changes[i+1], want) {
			t.Errorf("audit line %d: %s, want %q\n%s", i+1, changes[i+1], want, strings.Join(changes, "\n"))
		}
	}
	if !strings.Contains(changes[1], ": app web's events of type app.* to http://127.0.0.1") || !strings.Contains(changes[2], "failed attempts") {
		t.Errorf("the webhook's addition and its disable after failures:\n%s", strings.Join(changes, "\n"))
	}
	// The aggregate by name: the same changes (without an APP column).
	byName := lines(cli("audit", events.WebhooksAggregate))
	if len(byName) != len(changes) {
		t.Errorf("audit %s:\n%s\nwant what --type webhook.* shows:\n%s", events.WebhooksAggregate, strings.Join(byName, "\n"), strings.Join(changes, "\n"))
	}
	for i := 1; i < min(len(byName), len(changes)); i++ {
		_, summary, _ := strings.Cut(changes[i], "webhook "+id)
		if !strings.HasSuffix(byName[i], "webhook "+id+summary) {
			t.Errorf("audit %s line %d: %s, want it to end with %q", events.WebhooksAggregate, i, byName[i], "webhook "+id+summary)
		}
	}
	if out := cli("audit", "verify"); !strings.Contains(out, "_webhooks") {
		t.Errorf("audit verify does not check the webhooks aggregate:\n%s", out)
	}
}

func lines(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }

// Without --webhooks-allow-private, serve refuses loopback targets when
// they are added.
func TestWebhooksRefusePrivateTargetsByDefault(t *testing.T) {
	t.Parallel()
	addrs := servertest.Serve(t, server.Config{NATSListen: "127.0.0.1:0", NoRunners: true})
	code, stdout, stderr := revline(t, addrs.NATSURL, "webhooks", "add", "http://127.0.0.1:9/in", "--token-file", addrs.AdminTokenFile)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "--webhooks-allow-private") {
		t.Errorf("exit %d, stdout %q, stderr %q; want a refusal naming --webhooks-allow-private", code, stdout, stderr)
	}
}
