package server_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/cmd/revline/internal/server"
	"github.com/revline/revline/cmd/revline/internal/servertest"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/events/secrets"
	"github.com/revline/revline/internal/testsupport"
)

// tokenConn is a connection to the bus as a token, whose asynchronous
// errors (permission violations) arrive on violations.
type tokenConn struct {
	nc         *nats.Conn
	js         jetstream.JetStream
	violations chan error
	closed     chan struct{}
}

func connectAs(t *testing.T, addrs server.Addresses, signer *events.Signer, more ...nats.Option) (*tokenConn, error) {
	t.Helper()
	opts, err := signer.NATSOptions()
	if err != nil {
		t.Fatal(err)
	}
	c := &tokenConn{violations: make(chan error, 16), closed: make(chan struct{})}
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { c.violations <- err }),
		nats.ClosedHandler(func(*nats.Conn) { close(c.closed) }))
	if c.nc, err = nats.Connect(addrs.NATSURL, append(opts, more...)...); err != nil {
		return nil, err
	}
	t.Cleanup(c.nc.Close)
	if c.js, err = jetstream.New(c.nc); err != nil {
		t.Fatal(err)
	}
	return c, nil
}

func mustConnectAs(t *testing.T, addrs server.Addresses, signer *events.Signer, more ...nats.Option) *tokenConn {
	t.Helper()
	c, err := connectAs(t, addrs, signer, more...)
	if err != nil {
		t.Fatalf("connect as token %s: %v", signer.Key, err)
	}
	return c
}

// refusedWithin is a context for a request the server refuses: a
// permission violation gets no answer, so the request waits it out.
func refusedWithin(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A token is an identity on the bus: it connects with its key, and may
// do there what its role and apps allow, no more. Anonymous connections
// are refused; a revoked token is disconnected and cannot come back.
// serve logs each refusal, naming the token.
func TestTokensAreBusIdentities(t *testing.T) {
	t.Parallel()
	var logs testsupport.SyncBuffer
	addrs := servertest.Serve(t, server.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if nc, err := nats.Connect(addrs.NATSURL); err == nil {
		nc.Close()
		t.Fatal("an anonymous client connected")
	}
	cli := asClient(t, addrs)
	cli("deploy", "web", "--command", runnerBin)
	cli("deploy", "api", "--command", runnerBin)
	a := attacker(t, addrs)
	viewer, viewerFile := a.tokenFile("watcher", "viewer")
	webOperator := a.token("web-ops", "operator", "--app", "web")
	globOperator := a.token("w-ops", "operator", "--app", "w*")

	// A token connects as soon as its creation is answered.
	asViewer := mustConnectAs(t, addrs, viewer)
	// The viewer sends no command: the bus refuses it before the
	// processor sees it.
	if _, err := asViewer.js.Publish(refusedWithin(t), events.CommandSubject("web", events.CmdScale), []byte("{}")); err == nil {
		t.Error("a viewer published a command")
	}
	expectViolation(t, asViewer.violations, "a viewer's command")
	logCtx, cancelLog := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelLog()
	testsupport.Eventually(logCtx, t, "serve logs the viewer's refused command", func() bool {
		for line := range strings.SplitSeq(logs.String(), "\n") {
			if strings.Contains(line, "NATS refused a client") && strings.Contains(line, "token=watcher") && strings.Contains(line, "revline.commands.web.scale") {
				return true
			}
		}
		return false
	})
	// It hears only its own replies.
	for _, inbox := range []string{"_INBOX.>", events.InboxPrefix("web-ops") + ".>", "_INBOX.web-ops.x", events.OutcomeSubjectPrefix + ">"} {
		if _, err := asViewer.nc.SubscribeSync(inbox); err != nil {
			t.Fatal(err)
		}
		expectViolation(t, asViewer.violations, "a viewer subscribing to "+inbox)
	}
	// It reads: queries, and the events of every app.
	if code, stdout, stderr := revline(t, addrs.NATSURL, "apps", "list-rev", "api", "--token-file", addrs.AdminTokenFile, "--token-file", viewerFile); code != 0 {
		t.Errorf("list-rev as a viewer: exit %d, %s %s", code, stdout, stderr)
	}
	if n := readEvents(t, asViewer, "api"); n == 0 {
		t.Error("a viewer of every app read none of api's events")
	}

	// A token for one app reads that app's events, and no other's: not
	// with a consumer, not with a direct get, not with a leader get.
	asWeb := mustConnectAs(t, addrs, webOperator)
	if n := readEvents(t, asWeb, "web"); n == 0 {
		t.Error("the web token read none of web's events")
	}
	if _, err := asWeb.js.OrderedConsumer(refusedWithin(t), events.EventStreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.AppEventsFilter("api")}}); err == nil {
		t.Error("the web token made a consumer of api's events")
	}
	expectViolation(t, asWeb.violations, "a consumer of another app's events")
	if _, err := asWeb.js.CreateOrUpdateConsumer(refusedWithin(t), events.EventStreamName, jetstream.ConsumerConfig{Name: "all"}); err == nil {
		t.Error("the web token made a consumer of every app's events")
	}
	expectViolation(t, asWeb.violations, "a consumer without a filter")
	for _, get := range []struct{ subject, body string }{
		{"$JS.API.DIRECT.GET." + events.EventStreamName + "." + events.AppEventsFilter("api"), ""},
		{"$JS.API.DIRECT.GET." + events.EventStreamName, `{"seq":1}`},
		{"$JS.API.STREAM.MSG.GET." + events.EventStreamName, `{"seq":1}`},
	} {
		if _, err := asWeb.nc.RequestWithContext(refusedWithin(t), get.subject, []byte(get.body)); err == nil {
			t.Errorf("the web token got an answer from %s %s", get.subject, get.body)
		}
		expectViolation(t, asWeb.violations, "a get on "+get.subject)
	}
	// It sends commands for its app, and only for it.
	seconds := events.Seconds(61)
	keepAlive := events.Scale{Runtime: events.RuntimeOverrides{KeepAlive: &seconds}}
	client := commandbus.NewClient(asWeb.js, commandbus.WithSigner(webOperator))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o, err := client.Execute(ctx, events.NewCommand("web", &keepAlive, events.Metadata{}))
	if err != nil || o.Status == events.OutcomeRejected {
		t.Errorf("the web token's scale of web: %+v, %v", o, err)
	}
	if _, err := asWeb.js.Publish(refusedWithin(t), events.CommandSubject("api", events.CmdScale), []byte("{}")); err == nil {
		t.Error("the web token published a command for api")
	}
	expectViolation(t, asWeb.violations, "a command for another app")
	// A glob cannot be a subject: its commands reach the processor, which
	// refuses those of other apps; it reads no events over the bus.
	asGlob := mustConnectAs(t, addrs, globOperator)
	globClient := commandbus.NewClient(asGlob.js, commandbus.WithSigner(globOperator))
	o, err = globClient.Execute(ctx, events.NewCommand("api", &keepAlive, events.Metadata{}))
	if err != nil {
		t.Fatal(err)
	}
	wantRejected(t, "the glob token's command for api", o, events.CodeForbidden)
	if _, err := asGlob.js.OrderedConsumer(refusedWithin(t), events.EventStreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.AppEventsFilter("web")}}); err == nil {
		t.Error("a glob token made a consumer of events")
	}
	expectViolation(t, asGlob.violations, "a glob token's consumer")

	// Revoked: its connection is closed at once, and it cannot connect
	// again.
	reconnected := make(chan struct{}, 1)
	asRevoked := mustConnectAs(t, addrs, webOperator, nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }), nats.ReconnectWait(10*time.Millisecond), nats.MaxReconnects(5))
	cli("tokens", "revoke", "web-ops")
	select {
	case <-asRevoked.closed:
	case <-reconnected:
		t.Fatal("a revoked token reconnected")
	case <-time.After(30 * time.Second):
		t.Fatal("a revoked token's connection is still open")
	}
	if _, err := connectAs(t, addrs, webOperator); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("a revoked token connects: %v; want an authorization violation", err)
	}
	// The others stay connected.
	if err := asViewer.nc.Flush(); err != nil {
		t.Errorf("the viewer's connection after another token's revocation: %v", err)
	}
}

// readEvents reads app's events with an ordered consumer, as the CLI
// does, and returns how many there are.
func readEvents(t *testing.T, c *tokenConn, app string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := c.js.OrderedConsumer(ctx, events.EventStreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.AppEventsFilter(app)}})
	if err != nil {
		t.Fatalf("consumer of %s's events: %v", app, err)
	}
	batch, err := cons.FetchNoWait(1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range batch.Messages() {
		n++
	}
	if err := batch.Error(); err != nil {
		t.Fatalf("reading %s's events: %v", app, err)
	}
	return n
}

// The CLI connects as the token it signs with: no client identity needed.
// A deployer of one app deploys, lists, sets secrets there; an admin
// manages webhooks; a revoked token is refused.
func TestTheCLIConnectsAsItsToken(t *testing.T) {
	t.Parallel()
	addrs := servertest.Serve(t, server.Config{WebhooksAllowPrivate: true})
	a := attacker(t, addrs)
	_, deployerFile := a.tokenFile("web-deployer", "deployer", "--app", "web")
	as := func(tokenFile string, args ...string) string {
		t.Helper()
		code, stdout, stderr := revline(t, addrs.NATSURL, append(args, "--token-file", tokenFile)...)
		if code != 0 {
			t.Fatalf("revline %v as %s: exit %d, %s %s", args, tokenFile, code, stdout, stderr)
		}
		return stdout
	}
	as(deployerFile, "deploy", "web", "--command", runnerBin)
	as(deployerFile, "secrets", "set", "web", "A=1")
	if out := as(deployerFile, "apps", "list-rev", "web"); !strings.Contains(out, "deployed") {
		t.Errorf("list-rev as the web deployer:\n%s", out)
	}
	// What reads an app's history from the leader (secrets list, audit)
	// cannot be scoped to one app on the bus: refused at once, and said.
	code, _, stderr := revline(t, addrs.NATSURL, "secrets", "list", "web", "--token-file", deployerFile)
	if code == 0 || !strings.Contains(stderr, "the bus refused token web-deployer") {
		t.Errorf("secrets list as the web deployer: exit %d, %s; want the bus's refusal", code, stderr)
	}
	// (Before, audit retried the refused request until its --timeout.)
	code, _, stderr = revline(t, addrs.NATSURL, "audit", "web", "--timeout", "30s", "--token-file", deployerFile)
	if code == 0 || !strings.Contains(stderr, "the bus refused token web-deployer") {
		t.Errorf("audit as the web deployer: exit %d, %s; want the bus's refusal", code, stderr)
	}
	// A deployer of a glob writes no secret value on the bus: it would
	// overwrite or purge those of apps outside its glob (the bucket keeps
	// one version, which set_secret pins). The CLI says why, at once.
	globDeployer, globFile := a.tokenFile("w-deployer", "deployer", "--app", "w*")
	code, _, stderr = revline(t, addrs.NATSURL, "secrets", "set", "web", "A=2", "--token-file", globFile)
	if code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "app glob") {
		t.Errorf("secrets set as a glob deployer: exit %d, %q; want one line saying a glob token writes no secrets", code, stderr)
	}
	asGlob := mustConnectAs(t, addrs, globDeployer)
	if err := asGlob.nc.Publish("$KV."+secrets.BucketName+".api.A", []byte("overwritten")); err != nil {
		t.Fatal(err)
	}
	expectViolation(t, asGlob.violations, "a glob deployer's secret value")
	_, everyAppFile := a.tokenFile("deployer", "deployer")
	if out := as(everyAppFile, "secrets", "list", "web"); !strings.Contains(out, "A") {
		t.Errorf("secrets list as a deployer of every app:\n%s", out)
	}
	as(addrs.AdminTokenFile, "webhooks", "add", "http://127.0.0.1:9/hook", "--app", "web")
	if out := as(addrs.AdminTokenFile, "webhooks", "list"); !strings.Contains(out, "127.0.0.1:9") {
		t.Errorf("webhooks list as the admin:\n%s", out)
	}
	as(addrs.AdminTokenFile, "tokens", "revoke", "web-deployer")
	code, _, stderr = revline(t, addrs.NATSURL, "apps", "list-rev", "web", "--token-file", deployerFile)
	if code == 0 || !strings.Contains(stderr, "refused token web-deployer") {
		t.Errorf("list-rev with a revoked token: exit %d, %s; want NATS to refuse the token", code, stderr)
	}
}
