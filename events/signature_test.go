package events_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/revline/revline/events"
)

// The token of docs/bus.md's worked example (Signing): its key and the
// signature of its example message are fixed, for clients in other
// languages to check their own derivation and payload against.
const (
	exampleToken     = "rvl_alice_0000000000000000000000000000000000000000000000000000000000000000"
	examplePublicKey = "2dO4AbznjbhHy0qDlP3I2kvSbQe1IiRm4dkTAS/5JAU="
	// exampleSignature signs exampleMsg (no actor); Ed25519 signatures
	// are deterministic.
	exampleSignature = "UH6iNI1Wd/VO78PO1kYqmew1QZfJl+RolFZ9mWpuoCiI6EqmT/M8jXyjhltIvi78hZK+T1MOvo2Rwk65xfpWAA=="
)

func exampleMsg() *nats.Msg {
	msg := nats.NewMsg("revline.commands.my-app.scale")
	msg.Data = []byte(`{"runtime":{"min_concurrency":2}}`)
	msg.Header.Set(events.HeaderMsgID, "0193f1ee-5e6a-7c1d-8e2f-0a1b2c3d4e5f")
	msg.Header.Set(events.HeaderContentType, events.ContentTypeJSON)
	msg.Header.Set(events.HeaderSignedAt, "2026-11-26T12:00:00Z")
	return msg
}

func TestSigningKeyIsDerivedFromTheTokenValue(t *testing.T) {
	t.Parallel()
	pub := events.SigningKey(exampleToken).Public().(ed25519.PublicKey)
	if got := events.EncodePublicKey(pub); got != examplePublicKey {
		t.Errorf("public key of the example token %s, want %s (docs/bus.md)", got, examplePublicKey)
	}
	if other := events.EncodePublicKey(events.SigningKey(exampleToken + "0").Public().(ed25519.PublicKey)); other == examplePublicKey {
		t.Error("two tokens derive one key")
	}
	if decoded, err := events.DecodePublicKey(examplePublicKey); err != nil || !decoded.Equal(pub) {
		t.Errorf("decode: %v, %v", decoded, err)
	}
	if _, err := events.DecodePublicKey("AAAA"); err == nil {
		t.Error("a short key decoded")
	}
}

func TestSigningPayloadIsTheDocumentedLines(t *testing.T) {
	t.Parallel()
	msg := exampleMsg()
	msg.Header.Set(events.HeaderActor, "ci")
	want := strings.Join([]string{
		"revline-signature-v1",
		"revline.commands.my-app.scale",
		"0193f1ee-5e6a-7c1d-8e2f-0a1b2c3d4e5f",
		"application/json",
		"2026-11-26T12:00:00Z",
		"ci",
		"273d3b0febf71333e54f679c45a73168d747d8b3a0c984e08e4c5e2f2f425444",
	}, "\n")
	if got := string(events.SigningPayload(msg.Subject, msg.Header, msg.Data)); got != want {
		t.Errorf("payload\n%s\nwant\n%s", got, want)
	}
	// The documented signature of the example, made by hand as a client
	// in another language would, verifies.
	msg.Header.Del(events.HeaderActor)
	msg.Header.Set(events.HeaderKey, "alice")
	msg.Header.Set(events.HeaderSignature, exampleSignature)
	sig, err := events.ReadSignature(msg.Subject, msg.Header, msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := events.DecodePublicKey(examplePublicKey)
	if err := sig.Verify(pub); err != nil {
		t.Errorf("the documented signature: %v", err)
	}
}

func TestASignatureVerifiesUnderItsKeyOnly(t *testing.T) {
	t.Parallel()
	msg := exampleMsg()
	if err := events.NewSigner("alice", exampleToken).Sign(msg); err != nil {
		t.Fatal(err)
	}
	sig, err := events.ReadSignature(msg.Subject, msg.Header, msg.Data)
	if err != nil || !sig.Signed() || sig.Key != "alice" || time.Since(sig.SignedAt) > time.Minute {
		t.Fatalf("read %+v, %v", sig, err)
	}
	pub := events.SigningKey(exampleToken).Public().(ed25519.PublicKey)
	if err := sig.Verify(pub); err != nil {
		t.Fatalf("own signature: %v", err)
	}
	other := events.SigningKey("rvl_bob_1").Public().(ed25519.PublicKey)
	if err := sig.Verify(other); !errors.Is(err, events.ErrBadSignature) {
		t.Errorf("another key verified it: %v", err)
	}
}

// Each part of the signed payload is covered: changing any of them after
// signing breaks the signature.
func TestChangingASignedPartBreaksTheSignature(t *testing.T) {
	t.Parallel()
	pub := events.SigningKey(exampleToken).Public().(ed25519.PublicKey)
	cases := map[string]func(m *nats.Msg){
		"body":         func(m *nats.Msg) { m.Data = []byte(`{"runtime":{"min_concurrency":20}}`) },
		"subject":      func(m *nats.Msg) { m.Subject = "revline.commands.other.scale" },
		"command id":   func(m *nats.Msg) { m.Header.Set(events.HeaderMsgID, "0193f1ee-5e6a-7c1d-8e2f-0a1b2c3d4e60") },
		"content type": func(m *nats.Msg) { m.Header.Set(events.HeaderContentType, events.ContentTypeMsgpack) },
		"actor":        func(m *nats.Msg) { m.Header.Set(events.HeaderActor, "worker:runner") },
		"signed at": func(m *nats.Msg) {
			m.Header.Set(events.HeaderSignedAt, time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano))
		},
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			msg := exampleMsg()
			if err := events.NewSigner("alice", exampleToken).Sign(msg); err != nil {
				t.Fatal(err)
			}
			change(msg)
			sig, err := events.ReadSignature(msg.Subject, msg.Header, msg.Data)
			if err != nil {
				t.Fatal(err)
			}
			if err := sig.Verify(pub); !errors.Is(err, events.ErrBadSignature) {
				t.Errorf("verified after changing the %s: %v", name, err)
			}
		})
	}
}

func TestReadSignature(t *testing.T) {
	t.Parallel()
	good := base64.StdEncoding.EncodeToString(make([]byte, ed25519.SignatureSize))
	cases := []struct {
		name             string
		key, at, sig     string
		signed, rejected bool
	}{
		{name: "unsigned"},
		{name: "complete", key: "alice", at: "2026-11-26T12:00:00.5Z", sig: good, signed: true},
		{name: "no signature", key: "alice", at: "2026-11-26T12:00:00Z", rejected: true},
		{name: "no key", at: "2026-11-26T12:00:00Z", sig: good, rejected: true},
		{name: "bad time", key: "alice", at: "yesterday", sig: good, rejected: true},
		{name: "short signature", key: "alice", at: "2026-11-26T12:00:00Z", sig: "AAAA", rejected: true},
		{name: "not base64", key: "alice", at: "2026-11-26T12:00:00Z", sig: "!!", rejected: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := nats.Header{}
			for name, v := range map[string]string{events.HeaderKey: tc.key, events.HeaderSignedAt: tc.at, events.HeaderSignature: tc.sig} {
				if v != "" {
					h.Set(name, v)
				}
			}
			sig, err := events.ReadSignature("revline.commands.a.scale", h, nil)
			if tc.rejected != errors.Is(err, events.ErrBadSignature) || (err != nil && !tc.rejected) {
				t.Fatalf("error %v, want rejected %v", err, tc.rejected)
			}
			if sig.Signed() != tc.signed {
				t.Errorf("signed %v, want %v", sig.Signed(), tc.signed)
			}
		})
	}
}

func TestSignRefusesALineBreakInASignedHeader(t *testing.T) {
	t.Parallel()
	msg := exampleMsg()
	msg.Header.Set(events.HeaderActor, "ci\nrevline.commands.x")
	if err := events.NewSigner("alice", exampleToken).Sign(msg); err == nil {
		t.Error("signed an actor holding a line break")
	}
}

// An idempotency key's command id is the same on every retry by the same
// token, and one another token (or someone without one) cannot compute:
// nobody can claim a command's id with a command of their own first.
func TestIdempotencyIDsAreKeyedWithTheToken(t *testing.T) {
	t.Parallel()
	alice, bob := events.NewSigner("alice", "rvl_alice_"+strings.Repeat("a", 64)), events.NewSigner("bob", "rvl_bob_"+strings.Repeat("b", 64))
	first := alice.IdempotencyID("web", "release-42")
	if again := alice.IdempotencyID("web", "release-42"); again != first {
		t.Fatalf("a retry got id %s, the first %s", again, first)
	}
	var unkeyed *events.Signer
	for what, other := range map[string]string{
		"another token": bob.IdempotencyID("web", "release-42"),
		"no token":      unkeyed.IdempotencyID("web", "release-42"),
		"another app":   alice.IdempotencyID("api", "release-42"),
		"another key":   alice.IdempotencyID("web", "release-43"),
	} {
		if other == first {
			t.Errorf("%s derives the same id %s", what, first)
		}
	}
}

// A token's NATS user is its signing key: what the token signs, the
// user's public key verifies.
func TestNATSUserIsTheSigningKey(t *testing.T) {
	t.Parallel()
	key := events.SigningKey(exampleToken)
	user, err := events.NATSUser(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	kp, err := nkeys.FromPublicKey(user)
	if err != nil || !strings.HasPrefix(user, "U") {
		t.Fatalf("NATS user %q: %v; want a user public key", user, err)
	}
	nonce := []byte("the server's nonce")
	if err := kp.Verify(nonce, ed25519.Sign(key, nonce)); err != nil {
		t.Errorf("the token's signature does not verify with its NATS user: %v", err)
	}
	// docs/bus.md §3 gives this seed for the example token.
	seed, err := nkeys.FromRawSeed(nkeys.PrefixByteUser, key.Seed())
	if err != nil {
		t.Fatal(err)
	}
	if encoded, _ := seed.Seed(); string(encoded) != "SUAINZMWDTMOFR4CQIXNECBR7FQMTR3NFXSS3XYJP7XMQ22GQMNP7QEMEA" {
		t.Errorf("the example token's nkey seed is %s, not the one docs/bus.md gives", encoded)
	}
	if events.InboxPrefix("alice") != "_INBOX.alice" {
		t.Errorf("inbox prefix %q", events.InboxPrefix("alice"))
	}
}
