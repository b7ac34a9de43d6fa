package auth_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/embedded/embeddedtest"
)

// signedCommand is cmd for app, with actor claimed, signed by signer (nil:
// unsigned) and changed by tamper (optional) after signing, as the
// processor reads it, stored at storedAt.
func signedCommand(t *testing.T, signer *events.Signer, app string, cmd events.Command, actor string, storedAt time.Time, tamper func(*nats.Msg)) events.SignedCommand {
	t.Helper()
	msg, err := events.CommandMsg(events.NewCommand(app, cmd, events.Metadata{Actor: actor}))
	if err != nil {
		t.Fatal(err)
	}
	if signer != nil {
		if err := signer.Sign(msg); err != nil {
			t.Fatal(err)
		}
	}
	if tamper != nil {
		tamper(msg)
	}
	env, err := events.NewRegistry().DecodeCommandMsg(msg.Subject, msg.Header, msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := events.ReadSignature(msg.Subject, msg.Header, msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	return events.SignedCommand{Command: env, Signature: sig, StoredAt: storedAt}
}

func mustCreate(t *testing.T, s *auth.Store, nt auth.NewToken) *events.Signer {
	t.Helper()
	value, _, err := s.Create(t.Context(), nt, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return events.NewSigner(nt.Name, value)
}

func TestVerifyAuthenticatesAndAuthorizesCommands(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	now := time.Now()
	operator := mustCreate(t, s, auth.NewToken{Name: "ops", Role: auth.RoleOperator})
	scoped := mustCreate(t, s, auth.NewToken{Name: "web-deployer", Role: auth.RoleDeployer, Apps: "web-*"})
	revoked := mustCreate(t, s, auth.NewToken{Name: "gone", Role: auth.RoleAdmin})
	if _, err := s.Revoke(t.Context(), "gone", "test", now); err != nil {
		t.Fatal(err)
	}
	server := mustCreate(t, s, auth.NewToken{Name: "serve-test", Role: auth.RoleAdmin, Server: true})
	stranger := events.NewSigner("ops", "rvl_ops_"+strings.Repeat("1", 64)) // a name it does not hold
	deploy := events.Deploy{Command: "run"}
	scale := events.Scale{}

	cases := []struct {
		name      string
		cmd       events.SignedCommand
		code      string // "" accepted
		wantActor string
	}{
		{name: "operator scales", cmd: signedCommand(t, operator, "web", scale, "", now, nil), wantActor: "token:ops"},
		{name: "claimed actor is ignored", cmd: signedCommand(t, operator, "web", scale, "worker:runner", now, nil), wantActor: "token:ops"},
		{name: "unsigned", cmd: signedCommand(t, nil, "web", scale, "alice", now, nil), code: events.CodeUnauthenticated},
		{name: "another value under a known name", cmd: signedCommand(t, stranger, "web", scale, "", now, nil), code: events.CodeUnauthenticated},
		{name: "unknown token", cmd: signedCommand(t, events.NewSigner("nobody", "x"), "web", scale, "", now, nil), code: events.CodeUnauthenticated},
		{name: "tampered body", cmd: signedCommand(t, operator, "web", scale, "", now, func(m *nats.Msg) { m.Data = scaleTo(t, 50) }), code: events.CodeUnauthenticated},
		{name: "actor added after signing", cmd: signedCommand(t, server, "web", scale, "", now, func(m *nats.Msg) { m.Header.Set(events.HeaderActor, "token:admin") }), code: events.CodeUnauthenticated},
		{name: "stored long after signing", cmd: signedCommand(t, operator, "web", scale, "", now.Add(auth.MaxSignatureAge+time.Second), nil), code: events.CodeUnauthenticated},
		{name: "stored long before signing", cmd: signedCommand(t, operator, "web", scale, "", now.Add(-auth.MaxSignatureAge-time.Second), nil), code: events.CodeUnauthenticated},
		{name: "queued, processed later", cmd: signedCommand(t, operator, "web", scale, "", now.Add(time.Minute), nil), wantActor: "token:ops"},
		{name: "revoked", cmd: signedCommand(t, revoked, "web", scale, "", now, nil), code: events.CodeUnauthenticated},
		{name: "operator may not deploy", cmd: signedCommand(t, operator, "web", deploy, "", now, nil), code: events.CodeForbidden},
		{name: "operator may not set secrets", cmd: signedCommand(t, operator, "web", events.SetSecret{Name: "K", Version: 1}, "", now, nil), code: events.CodeForbidden},
		{name: "operator may not report runners", cmd: signedCommand(t, operator, "web", events.CompleteRollout{RolloutID: "r"}, "", now, nil), code: events.CodeForbidden},
		{name: "deployer deploys in its glob", cmd: signedCommand(t, scoped, "web-1", deploy, "", now, nil), wantActor: "token:web-deployer"},
		{name: "deployer outside its glob", cmd: signedCommand(t, scoped, "api", deploy, "", now, nil), code: events.CodeForbidden},
		{name: "server acts for a token", cmd: signedCommand(t, server, "web", deploy, "token:alice", now, nil), wantActor: "token:alice"},
		{name: "server without an actor", cmd: signedCommand(t, server, "web", deploy, "", now, nil), wantActor: "token:serve-test"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			actor, err := s.Verify(t.Context(), tc.cmd)
			var rej *events.Rejection
			switch {
			case tc.code == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.code == "" && actor != tc.wantActor:
				t.Errorf("actor %q, want %q", actor, tc.wantActor)
			case tc.code != "" && (!errors.As(err, &rej) || rej.Code != tc.code):
				t.Errorf("got actor %q, error %v; want a %s rejection", actor, err, tc.code)
			}
		})
	}
}

// A token made before tokens had keys works over HTTP and is refused on
// the bus with a sentence that says why, until AddPublicKey gives it one.
func TestATokenWithoutAKeyIsRefusedOnTheBusUntilGivenOne(t *testing.T) {
	t.Parallel()
	s, kv := testStoreKV(t)
	value, tok, err := s.Create(t.Context(), auth.NewToken{Name: "old", Role: auth.RoleAdmin}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tok.PublicKey = ""
	stripKey(t, kv, tok)
	signer := events.NewSigner("old", value)
	_, err = s.Verify(t.Context(), signedCommand(t, signer, "web", events.Suspend{}, "", time.Now(), nil))
	var rej *events.Rejection
	if !errors.As(err, &rej) || rej.Code != events.CodeUnauthenticated || !strings.Contains(rej.Message, "HTTP only") {
		t.Fatalf("keyless token on the bus: %v", err)
	}
	if _, err := s.Authenticate(t.Context(), value); err != nil {
		t.Fatalf("keyless token over HTTP: %v", err)
	}
	if err := s.AddPublicKey(t.Context(), "rvl_old_"+strings.Repeat("0", 64)); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("a wrong value added a key: %v", err)
	}
	if err := s.AddPublicKey(t.Context(), value); err != nil {
		t.Fatal(err)
	}
	if actor, err := s.Verify(t.Context(), signedCommand(t, signer, "web", events.Suspend{}, "", time.Now(), nil)); err != nil || actor != "token:old" {
		t.Fatalf("after AddPublicKey: %q, %v", actor, err)
	}
}

func TestServerSignerIsKeptAndRemadeWhenRevoked(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	dir := filepath.Join(t.TempDir(), "auth")
	first, err := auth.ServerSigner(t.Context(), s, dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(filepath.Join(dir, "server.token")); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("server token file: %v, %v", info, err)
	}
	again, err := auth.ServerSigner(t.Context(), s, dir, time.Now())
	if err != nil || again.Key != first.Key || !strings.HasPrefix(first.Key, "serve-") {
		t.Fatalf("restart: %v, key %s then %s", err, first.Key, again.Key)
	}
	if _, err := s.Verify(t.Context(), signedCommand(t, first, "web", events.Deploy{Command: "x"}, "worker:runner", time.Now(), nil)); err != nil {
		t.Fatalf("server signature: %v", err)
	}
	if _, err := s.Revoke(t.Context(), first.Key, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	rotated, err := auth.ServerSigner(t.Context(), s, dir, time.Now())
	if err != nil || rotated.Key == first.Key {
		t.Fatalf("after revoking: %v, key %s", err, rotated.Key)
	}
	if actor, err := s.Verify(t.Context(), signedCommand(t, rotated, "web", events.Suspend{}, "worker:runner", time.Now(), nil)); err != nil || actor != "worker:runner" {
		t.Fatalf("rotated server token: %q, %v", actor, err)
	}
}

// testStoreKV is testStore with the bucket under it.
func testStoreKV(t *testing.T) (*auth.Store, jetstream.KeyValue) {
	t.Helper()
	_, js := embeddedtest.Connect(t, embeddedtest.Start(t))
	s, err := auth.Ensure(t.Context(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), auth.BucketName)
	if err != nil {
		t.Fatal(err)
	}
	return s, kv
}

// stripKey stores tok as a token made before tokens had keys was.
func stripKey(t *testing.T, kv jetstream.KeyValue, tok auth.Token) {
	t.Helper()
	data, err := json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "public_key") {
		t.Fatalf("record still has a key: %s", data)
	}
	if _, err := kv.Put(t.Context(), tok.Name, data); err != nil {
		t.Fatal(err)
	}
}

// scaleTo is the body of a scale to min concurrency n.
func scaleTo(t *testing.T, n int) []byte {
	t.Helper()
	data, err := events.Marshal(events.ContentTypeMsgpack, events.Scale{Runtime: events.RuntimeOverrides{MinConcurrency: &n}})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// A write straight into a bucket (a webhook's definition) records the
// admin token that signed it; a server's own token acts for whom the
// write claims; anything else is refused, as a command would be.
func TestVerifyWriteNamesTheAdminThatSigned(t *testing.T) {
	t.Parallel()
	s := testStore(t)
	now := time.Now()
	admin := mustCreate(t, s, auth.NewToken{Name: "root", Role: auth.RoleAdmin})
	scopedAdmin := mustCreate(t, s, auth.NewToken{Name: "web-admin", Role: auth.RoleAdmin, Apps: "web"})
	operator := mustCreate(t, s, auth.NewToken{Name: "ops", Role: auth.RoleOperator})
	server := mustCreate(t, s, auth.NewToken{Name: "serve-test", Role: auth.RoleAdmin, Server: true})
	write := func(signer *events.Signer) events.Signature {
		t.Helper()
		msg := nats.NewMsg("$KV.REVLINE_WEBHOOKS.hook.0123456789ab")
		msg.Data = []byte(`{"id":"0123456789ab","created_by":"mallory"}`)
		if signer != nil {
			if err := signer.Sign(msg); err != nil {
				t.Fatal(err)
			}
		}
		sig, err := events.ReadSignature(msg.Subject, msg.Header, msg.Data)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	for _, tc := range []struct {
		name      string
		sig       events.Signature
		storedAt  time.Time
		code      string
		wantActor string
	}{
		{"an admin of every app", write(admin), now, "", "token:root"},
		{"the server acts for whom it names", write(server), now, "", "mallory"},
		{"unsigned", write(nil), now, events.CodeUnauthenticated, ""},
		{"stored long after signing", write(admin), now.Add(auth.MaxSignatureAge + time.Second), events.CodeUnauthenticated, ""},
		{"an admin of one app", write(scopedAdmin), now, events.CodeForbidden, ""},
		{"an operator", write(operator), now, events.CodeForbidden, ""},
	} {
		actor, err := s.VerifyWrite(t.Context(), tc.sig, tc.storedAt, "mallory")
		var rej *events.Rejection
		switch {
		case tc.code == "" && (err != nil || actor != tc.wantActor):
			t.Errorf("%s: actor %q, error %v; want %q", tc.name, actor, err, tc.wantActor)
		case tc.code != "" && (!errors.As(err, &rej) || rej.Code != tc.code):
			t.Errorf("%s: actor %q, error %v; want a %s rejection", tc.name, actor, err, tc.code)
		}
	}
}
