package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
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
)

// busAttacker is connected as the bootstrap admin token (the client with
// the most rights on the bus) and sends commands and token requests as it
// likes, signed by any token or none. The outcomes of what it sends are
// published for the tokens the commands name, which it cannot read: the
// test reads them as the server.
type busAttacker struct {
	t     *testing.T
	addrs server.Addresses
	nc    *nats.Conn
	js    jetstream.JetStream
	// asServer reads every token's outcomes.
	asServer jetstream.JetStream
}

func attacker(t *testing.T, addrs server.Addresses) *busAttacker {
	t.Helper()
	js := clientConn(t, addrs)
	return &busAttacker{t: t, addrs: addrs, nc: js.Conn(), js: js, asServer: serverConn(t, addrs)}
}

// send publishes cmd for app as the attacker built it (actor claimed,
// signed by signer or not, changed by tamper after signing) and returns
// its outcome.
func (a *busAttacker) send(app string, cmd events.Command, actor string, signer *events.Signer, tamper func(*nats.Msg)) events.Outcome {
	a.t.Helper()
	env := events.NewCommand(app, cmd, events.Metadata{Actor: actor})
	msg, err := events.CommandMsg(env)
	if err != nil {
		a.t.Fatal(err)
	}
	if signer != nil {
		if err := signer.Sign(msg); err != nil {
			a.t.Fatal(err)
		}
	}
	if tamper != nil {
		tamper(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := a.js.PublishMsg(ctx, msg); err != nil {
		a.t.Fatal(err)
	}
	// Its outcome is published under the key the command names (none:
	// events.NoOutcomeKey), as a client that signs with it waits for it.
	var named []commandbus.ClientOption
	if key := msg.Header.Get(events.HeaderKey); key != "" {
		named = append(named, commandbus.WithSigner(events.NewSigner(key, "")))
	}
	o, err := commandbus.NewClient(a.asServer, named...).Await(ctx, env.CommandID)
	if err != nil {
		a.t.Fatal(err)
	}
	return o
}

// token makes a token with the CLI as the bootstrap admin, and returns its
// signer.
func (a *busAttacker) token(name, role string, flags ...string) *events.Signer {
	a.t.Helper()
	signer, _ := a.tokenFile(name, role, flags...)
	return signer
}

// tokenFile is token, and also returns a file holding the token's value
// (for --token-file).
func (a *busAttacker) tokenFile(name, role string, flags ...string) (*events.Signer, string) {
	a.t.Helper()
	code, stdout, stderr := revline(a.t, a.addrs.NATSURL, append([]string{"tokens", "create", name, "--role", role, "-o", "json", "--token-file", a.addrs.AdminTokenFile}, flags...)...)
	var made struct{ Value string }
	if code != 0 || json.Unmarshal([]byte(stdout), &made) != nil {
		a.t.Fatalf("tokens create %s: exit %d, %s %s", name, code, stdout, stderr)
	}
	file := filepath.Join(a.t.TempDir(), name+".token")
	if err := os.WriteFile(file, []byte(made.Value), 0o600); err != nil {
		a.t.Fatal(err)
	}
	return events.NewSigner(name, made.Value), file
}

func wantRejected(t *testing.T, what string, o events.Outcome, code string) {
	t.Helper()
	if o.Status != events.OutcomeRejected || o.Code != code {
		t.Errorf("%s: outcome %s %s (%s); want rejected %s", what, o.Status, o.Code, o.Message, code)
	}
}

// What someone connected to the bus, with no signature or that of a token
// of a lesser role, sees when sending commands: every command is verified before it
// is decided, and the log records the token that signed it.
func TestServeVerifiesEveryCommand(t *testing.T) {
	t.Parallel()
	var logs testsupport.SyncBuffer
	addrs := servertest.Serve(t, server.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	a := attacker(t, addrs)
	// The operator's CLI deploys (as the bootstrap admin token) and waits
	// until the revision is deployed.
	if code, stdout, stderr := revline(t, addrs.NATSURL, "deploy", "web", "--command", runnerBin, "--token-file", addrs.AdminTokenFile); code != 0 {
		t.Fatalf("deploy: exit %d, %s %s", code, stdout, stderr)
	}
	ops := a.token("ops", "operator")
	webOps := a.token("web-ops", "operator", "--app", "web-*")
	gone := a.token("gone", "admin")
	if code, _, stderr := revline(t, addrs.NATSURL, "tokens", "revoke", "gone", "--token-file", addrs.AdminTokenFile); code != 0 {
		t.Fatalf("revoke: %s", stderr)
	}
	keepAlive := events.Seconds(90)
	scale := events.Scale{Runtime: events.RuntimeOverrides{KeepAlive: &keepAlive}}

	wantRejected(t, "unsigned", a.send("web", scale, "alice", nil, nil), events.CodeUnauthenticated)
	wantRejected(t, "signed by a token that does not exist", a.send("web", scale, "", events.NewSigner("admin", "rvl_admin_"+strings.Repeat("0", 64)), nil), events.CodeUnauthenticated)
	wantRejected(t, "tampered body", a.send("web", scale, "", ops, func(m *nats.Msg) {
		other := events.Seconds(1)
		m.Data, _ = events.Marshal(events.ContentTypeMsgpack, events.Scale{Runtime: events.RuntimeOverrides{KeepAlive: &other}})
	}), events.CodeUnauthenticated)
	wantRejected(t, "actor changed after signing", a.send("web", scale, "", ops, func(m *nats.Msg) { m.Header.Set(events.HeaderActor, "worker:runner") }), events.CodeUnauthenticated)
	wantRejected(t, "revoked token", a.send("web", scale, "", gone, nil), events.CodeUnauthenticated)
	wantRejected(t, "operator deploys", a.send("web", events.Deploy{Command: "true"}, "", ops, nil), events.CodeForbidden)
	wantRejected(t, "operator reports a runner", a.send("web", events.CompleteRollout{RolloutID: "r"}, "", ops, nil), events.CodeForbidden)
	wantRejected(t, "app outside the token's glob", a.send("web", scale, "", webOps, nil), events.CodeForbidden)

	// A signed command claiming another actor is recorded as its token's.
	o := a.send("web", scale, "worker:runner", ops, nil)
	if o.Status != events.OutcomeAccepted {
		t.Fatalf("operator's scale: %+v", o)
	}
	history, err := events.OpenJetStreamStore(t.Context(), events.JetStreamStoreConfig{JetStream: clientConn(t, addrs)})
	if err != nil {
		t.Fatal(err)
	}
	envs, err := history.Load(t.Context(), "web", o.FirstSequence-1)
	if err != nil || len(envs) == 0 {
		t.Fatalf("the scale's events: %v, %v", envs, err)
	}
	if envs[0].Actor != "token:ops" {
		t.Errorf("the scale records actor %q, want token:ops", envs[0].Actor)
	}
	for _, env := range envs {
		if _, ok := env.Event.(events.AppScaled); ok && env.CausationID != o.CommandID {
			t.Errorf("a refused command changed the app: %+v", env)
		}
	}
	// Each refusal is logged for the operator, with the token it names.
	for _, want := range []string{`code=unauthenticated reason="unauthenticated: unsigned`, "key=gone code=unauthenticated", "key=ops code=forbidden", "key=web-ops code=forbidden"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %q", want)
		}
	}
}

// Token requests need an admin's signature: a connection alone cannot
// make tokens.
func TestTokenRequestsNeedAnAdminSignature(t *testing.T) {
	t.Parallel()
	addrs := servertest.Serve(t, server.Config{})
	a := attacker(t, addrs)
	ops := a.token("ops", "operator")
	ctx := t.Context()
	req := auth.Request{Name: "mine", Role: auth.RoleAdmin}
	if _, err := auth.Ask(ctx, a.nc, nil, auth.SubjectCreate, req); err == nil || !strings.HasPrefix(err.Error(), "unauthenticated: unsigned") {
		t.Errorf("unsigned create: %v", err)
	}
	if _, err := auth.Ask(ctx, a.nc, ops, auth.SubjectCreate, req); err == nil || !strings.HasPrefix(err.Error(), "forbidden:") {
		t.Errorf("create signed by an operator: %v", err)
	}
	if _, err := auth.Ask(ctx, a.nc, ops, auth.SubjectList, auth.Request{}); err == nil || !strings.HasPrefix(err.Error(), "forbidden:") {
		t.Errorf("list signed by an operator: %v", err)
	}
	if _, err := auth.Ask(ctx, a.nc, ops, auth.SubjectRevoke, auth.Request{Name: "admin"}); err == nil || !strings.HasPrefix(err.Error(), "forbidden:") {
		t.Errorf("revoke signed by an operator: %v", err)
	}
	// The bootstrap admin's CLI still manages tokens, and is recorded as
	// their author.
	code, stdout, stderr := revline(t, addrs.NATSURL, "tokens", "list", "-o", "json", "--token-file", addrs.AdminTokenFile)
	var tokens []auth.Token
	if code != 0 || json.Unmarshal([]byte(stdout), &tokens) != nil {
		t.Fatalf("tokens list: exit %d, %s %s", code, stdout, stderr)
	}
	for _, tok := range tokens {
		if tok.Name == "mine" {
			t.Errorf("a refused request made a token: %+v", tok)
		}
		if tok.Name == "ops" && tok.CreatedBy != "token:admin" {
			t.Errorf("ops was created by %q, want token:admin", tok.CreatedBy)
		}
	}
}
