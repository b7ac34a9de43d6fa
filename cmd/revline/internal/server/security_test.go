package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/cmd/revline/internal/server"
	"github.com/revline/revline/cmd/revline/internal/servertest"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/projections/audit"
	"github.com/revline/revline/workers/processor"
	"github.com/revline/revline/workers/runner"
)

// The embedded NATS server accepts only its own identities and the
// tokens': anonymous clients are refused, and even an admin token sends
// commands and reads, but cannot write events or outcomes, answer
// queries, listen to others' commands, or change a stream.
func TestEmbeddedNATSAcceptsOnlyItsIdentities(t *testing.T) {
	t.Parallel()
	addrs := servertest.Serve(t, server.Config{NATSListen: "127.0.0.1:0"})
	if _, err := os.Stat(filepath.Join(filepath.Dir(addrs.AdminTokenFile), "client.nk")); err == nil {
		t.Error("serve made a shared client identity")
	}
	if nc, err := nats.Connect(addrs.NATSURL); err == nil {
		nc.Close()
		t.Fatal("an anonymous client connected")
	}

	// The admin token connects: the CLI connects as it.
	code, stdout, stderr := revline(t, addrs.NATSURL, "deploy", "web", "--command", runnerBin, "--token-file", addrs.AdminTokenFile)
	if code != 0 {
		t.Fatalf("deploy as the admin token: exit %d, %s %s", code, stdout, stderr)
	}

	violations := make(chan error, 10)
	nc, err := nats.Connect(addrs.NATSURL, append(tokenOptions(t, addrs.AdminTokenFile), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// A refused JetStream request gets no answer: each waits out a context
	// of its own.
	refused := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		t.Cleanup(cancel)
		return ctx
	}

	// Forged event: refused, nothing stored.
	if _, err := js.Publish(refused(), events.EventSubject("web", events.TypeRevisionCreated), []byte{0x80}); err == nil {
		t.Error("the client published an event")
	}
	// Forged outcome, query impostor, eavesdropper on commands: refused.
	for _, subject := range []string{"revline.query.apps", events.CommandSubjectPrefix + ">"} {
		if _, err := nc.SubscribeSync(subject); err != nil {
			t.Fatal(err)
		}
		expectViolation(t, violations, subject)
	}
	if err := nc.Publish(events.OutcomeSubject("watcher", "0193f1c2-0000-7000-8000-000000000001"), []byte("forged")); err != nil {
		t.Fatal(err)
	}
	expectViolation(t, violations, "revline.outcomes")
	// Streams cannot be changed or deleted.
	if err := js.DeleteStream(refused(), events.EventStreamName); err == nil {
		t.Error("the client deleted the event stream")
	}
	if _, err := js.UpdateStream(refused(), jetstream.StreamConfig{Name: commandbus.OutcomeStreamName, Subjects: []string{"revline.outcomes.>"}, MaxMsgs: 1}); err == nil {
		t.Error("the client updated the outcome stream")
	}
	// The runner worker's consumer is the server's: not deleted, not changed.
	if err := js.DeleteConsumer(refused(), events.EventStreamName, runner.ConsumerName); err == nil {
		t.Error("the client deleted the runner worker's consumer")
	}
	if _, err := js.CreateOrUpdateConsumer(refused(), events.EventStreamName, jetstream.ConsumerConfig{Durable: runner.ConsumerName, FilterSubject: "revline.events.nothing.>"}); err == nil {
		t.Error("the client changed the runner worker's consumer")
	}
	// So are the command processor's, one a partition, and no command
	// enters a partition but through the stream's subject transform.
	if err := js.DeleteConsumer(refused(), commandbus.CommandStreamName, processor.PartitionConsumerName(0)); err == nil {
		t.Error("the client deleted a command processor's consumer")
	}
	if _, err := js.CreateOrUpdateConsumer(refused(), commandbus.CommandStreamName, jetstream.ConsumerConfig{Durable: "eavesdropper", FilterSubject: commandbus.PartitionFilter(0)}); err == nil {
		t.Error("the client made a consumer of the command stream")
	}
	if err := nc.Publish(commandbus.PartitionSubjectPrefix+"0.web.deploy", []byte{0x80}); err != nil {
		t.Fatal(err)
	}
	expectViolation(t, violations, "a command published into a partition")
	// Snapshots are the server's: a client neither writes nor reads them
	// (a forged snapshot would be folded into every cold load).
	if err := nc.Publish("$KV."+events.SnapshotBucketName+"."+events.AppSnapshotKey("web"), []byte{0x80}); err != nil {
		t.Fatal(err)
	}
	expectViolation(t, violations, "a snapshot written")
	if err := nc.PublishRequest("$JS.API.DIRECT.GET.KV_"+events.SnapshotBucketName+".$KV."+events.SnapshotBucketName+"."+events.AppSnapshotKey("web"), nats.NewInbox(), nil); err != nil {
		t.Fatal(err)
	}
	expectViolation(t, violations, "a snapshot read")
	// So is the read model's (a forged one would be every query's answer
	// after the next start).
	if err := nc.Publish("$O."+events.ReadModelBucketName+".C.forged", []byte{0x80}); err != nil {
		t.Fatal(err)
	}
	expectViolation(t, violations, "a read model snapshot written")
	if err := nc.PublishRequest("$JS.API.STREAM.MSG.GET.OBJ_"+events.ReadModelBucketName, nats.NewInbox(), []byte(`{"seq":1}`)); err != nil {
		t.Fatal(err)
	}
	expectViolation(t, violations, "a read model snapshot read")
	// Time travel's snapshots are read by clients, written by the server
	// alone (a forged one would change what time travel answers).
	if err := nc.Publish("$KV."+audit.SnapshotBucketName+".index.web", []byte{0x80}); err != nil {
		t.Fatal(err)
	}
	expectViolation(t, violations, "a time travel snapshot written")
	timeTravel, err := js.KeyValue(refused(), audit.SnapshotBucketName)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := timeTravel.Get(refused(), "index.web"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("a client reading time travel's snapshots: %v, want a key not found", err)
	}
	// What JetStream delivers to the server is not in the clients' inboxes.
	if _, err := nc.SubscribeSync("_INBOX_REVLINE_SERVER.>"); err != nil {
		t.Fatal(err)
	}
	expectViolation(t, violations, "the server's inboxes")
	if _, err := nc.SubscribeSync("_INBOX.>"); err != nil {
		t.Fatal(err)
	}
	expectViolation(t, violations, "every token's inboxes")
	// Its own inbox, which the CLI acting as the same token uses too.
	eavesdropper, err := nc.SubscribeSync(events.InboxPrefix(auth.BootstrapName) + ".>")
	if err != nil {
		t.Fatal(err)
	}
	// A query whose reply subject names the event log writes nothing there.
	before, err := js.Stream(context.Background(), events.EventStreamName)
	if err != nil {
		t.Fatal(err)
	}
	lastBefore := before.CachedInfo().State.LastSeq
	if err := nc.PublishRequest("revline.query.apps", events.EventSubject("web", events.TypeRevisionDeployed), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := revline(t, addrs.NATSURL, "deploy", "web2", "--command", runnerBin, "--message", "secret-payload-marker", "--token-file", addrs.AdminTokenFile); code != 0 {
		t.Fatalf("second deploy: exit %d, %s %s", code, stdout, stderr)
	}
	for {
		msg, err := eavesdropper.NextMsg(200 * time.Millisecond)
		if err != nil {
			break // nothing more
		}
		if strings.Contains(string(msg.Data), "secret-payload-marker") && strings.Contains(string(msg.Data), "command") && msg.Header.Get("Nats-Msg-Id") != "" {
			t.Errorf("a client's inbox subscription received a command delivered to the server on %s", msg.Subject)
		}
	}
	after, err := js.Stream(context.Background(), events.EventStreamName)
	if err != nil {
		t.Fatal(err)
	}
	if history, err := after.GetMsg(context.Background(), lastBefore+1); err == nil && history.Header.Get(events.HeaderEventType) == "" {
		t.Errorf("the query service wrote its answer into the event log: %s", history.Data)
	}

	// JetStream answers a command's publish to any reply subject, so a
	// token that may send commands can make it store its ack among an
	// app's events: that is no event, and the app carries on.
	if err := nc.PublishRequest(events.CommandSubject("zz", "bogus"), events.EventSubject("web", "junk"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := revline(t, addrs.NATSURL, "apps", "scale", "web", "--keep-alive", "61", "--token-file", addrs.AdminTokenFile); code != 0 {
		t.Fatalf("scale after an ack was stored among the app's events: exit %d, %s %s", code, stdout, stderr)
	}
	// The operator can see it: the read model counts what it skipped.
	metricsCtx, cancelMetrics := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelMetrics()
	testsupport.Eventually(metricsCtx, t, "/metrics counts the skipped message", func() bool {
		resp, err := http.Get(addrs.HTTPURL + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), "\nrevline_events_skipped 1\n")
	})

	info, err := js.Stream(context.Background(), events.EventStreamName)
	if err != nil {
		t.Fatalf("the event stream is gone: %v", err)
	}
	if cfg := info.CachedInfo().Config; cfg.MaxMsgs > 0 || !cfg.DenyDelete {
		t.Errorf("the event stream's configuration changed: %+v", cfg)
	}
}

func expectViolation(t *testing.T, violations <-chan error, what string) {
	t.Helper()
	select {
	case err := <-violations:
		if !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(err.Error(), "Permissions Violation") {
			t.Errorf("%s: %v, want a permissions violation", what, err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("%s: allowed, want a permissions violation", what)
	}
}

// A client that sends its request body slowly does not hold a connection
// of the HTTP API for long: the server gives up on it after the read
// timeout.
func TestHTTPAPIDropsSlowSenders(t *testing.T) {
	t.Parallel()
	addrs := servertest.Serve(t, server.Config{NATSListen: "127.0.0.1:0", HTTPReadTimeout: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", strings.TrimPrefix(addrs.HTTPURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/apps/web/rollout HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	// The server closes the connection (after a 400 or nothing at all).
	if _, err := io.Copy(io.Discard, conn); err != nil {
		t.Fatalf("the connection stayed open: %v", err)
	}
}
