package events

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// SignatureVersion is the first line of every SigningPayload.
const SignatureVersion = "revline-signature-v1"

// signingKeyDomain separates the seed of a signing key from any other use
// of a token's value (its stored SHA-256 is of the value alone).
const signingKeyDomain = "revline-signing-key-v1\n"

// SigningKey derives the Ed25519 key of a credential, a token's value: the
// seed is SHA-256("revline-signing-key-v1\n" + value). Anyone holding the
// value can derive it (PyNaCl: nacl.signing.SigningKey(seed)); the server
// keeps only its public half.
func SigningKey(value string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte(signingKeyDomain + value))
	return ed25519.NewKeyFromSeed(seed[:])
}

// EncodePublicKey is the stored and printed form of a public key: standard
// base64 with padding.
func EncodePublicKey(pub ed25519.PublicKey) string {
	return base64.StdEncoding.EncodeToString(pub)
}

// DecodePublicKey reverses EncodePublicKey.
func DecodePublicKey(s string) (ed25519.PublicKey, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key %q: want the base64 of %d bytes", truncate(s, 80), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}

// NATSUser returns the NATS nkey user (a public key starting with U) of
// an Ed25519 public key: on the bus, a token's key is also its identity,
// the user it connects as.
func NATSUser(pub ed25519.PublicKey) (string, error) {
	user, err := nkeys.Encode(nkeys.PrefixByteUser, pub)
	if err != nil {
		return "", fmt.Errorf("nats user of a public key: %w", err)
	}
	return string(user), nil
}

// InboxPrefix is where the bus delivers the replies of the token named
// key (nats.CustomInboxPrefix): a token may subscribe below it and nowhere
// else in _INBOX, so no token reads another's replies.
func InboxPrefix(key string) string { return "_INBOX." + key }

// SigningPayload returns the bytes a message's signature is over: seven
// lines joined by "\n" (no trailing newline) of SignatureVersion, the
// subject the message is published on, then the values of the headers
// Nats-Msg-Id, Content-Type, Revline-Signed-At and Revline-Actor as sent
// ("" when absent), then the lowercase hex SHA-256 of the body.
func SigningPayload(subject string, h HeaderGetter, body []byte) []byte {
	sum := sha256.Sum256(body)
	return []byte(strings.Join([]string{
		SignatureVersion,
		subject,
		h.Get(HeaderMsgID),
		h.Get(HeaderContentType),
		h.Get(HeaderSignedAt),
		h.Get(HeaderActor),
		hex.EncodeToString(sum[:]),
	}, "\n"))
}

// Signer signs messages with one key.
type Signer struct {
	// Key is the name of the signing key (a token's name).
	Key     string
	private ed25519.PrivateKey
	now     func() time.Time
}

// NewSigner returns a Signer for the token named key whose value is value.
func NewSigner(key, value string) *Signer {
	return &Signer{Key: key, private: SigningKey(value), now: time.Now}
}

// NATSOptions returns the options that connect to the bus as s's token:
// its key as an nkey user (NATSUser), which signs the server's challenge,
// and its inbox prefix (InboxPrefix).
func (s *Signer) NATSOptions() ([]nats.Option, error) {
	kp, err := nkeys.FromRawSeed(nkeys.PrefixByteUser, s.private.Seed())
	if err != nil {
		return nil, fmt.Errorf("nats identity of token %s: %w", s.Key, err)
	}
	public, err := kp.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("nats identity of token %s: %w", s.Key, err)
	}
	return []nats.Option{nats.Nkey(public, kp.Sign), nats.CustomInboxPrefix(InboxPrefix(s.Key))}, nil
}

// idempotencyNamespace scopes command ids derived from idempotency keys.
var idempotencyNamespace = uuid.MustParse("6f1c3d0a-8a43-4c43-9a59-6c7a2b1d9e5f")

// IdempotencyID returns the command id of the command that idempotency
// key key names for app: the same on every retry, and one no one without
// the signer's token can compute, so that no one can claim it first with a
// command of their own (a refusal is an outcome, and outcomes are final).
// A nil s derives it from app and key alone, which anyone can.
func (s *Signer) IdempotencyID(app, key string) string {
	scope := []byte(app + "/" + key)
	if s != nil {
		mac := hmac.New(sha256.New, s.private.Seed())
		mac.Write(scope)
		scope = mac.Sum(nil)
	}
	return uuid.NewSHA1(idempotencyNamespace, scope).String()
}

// SignedRequest is a JSON request to subject (a server request such as
// a token request or a replay), with a message id, signed by s; a nil s
// leaves it unsigned (which serve refuses).
func (s *Signer) SignedRequest(subject string, data []byte) (*nats.Msg, error) {
	msg := nats.NewMsg(subject)
	msg.Data = data
	msg.Header.Set(HeaderMsgID, uuid.NewString())
	msg.Header.Set(HeaderContentType, ContentTypeJSON)
	if s == nil {
		return msg, nil
	}
	return msg, s.Sign(msg)
}

// Sign sets msg's signature headers, signed now. Every header the payload
// covers must be set before. A header a payload line cannot hold (one with
// a newline) makes it fail.
func (s *Signer) Sign(msg *nats.Msg) error {
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	for _, name := range []string{HeaderMsgID, HeaderContentType, HeaderActor} {
		if strings.ContainsAny(msg.Header.Get(name), "\r\n") {
			return fmt.Errorf("sign: header %s holds a line break", name)
		}
	}
	msg.Header.Set(HeaderKey, s.Key)
	msg.Header.Set(HeaderSignedAt, s.now().UTC().Format(time.RFC3339Nano))
	sig := ed25519.Sign(s.private, SigningPayload(msg.Subject, msg.Header, msg.Data))
	msg.Header.Set(HeaderSignature, base64.StdEncoding.EncodeToString(sig))
	return nil
}

// Signature is what a message says of its signing.
type Signature struct {
	// Key is the name of the key that signed; "" for an unsigned message.
	Key      string
	SignedAt time.Time
	sig      []byte
	payload  []byte
}

// ErrBadSignature is wrapped by the errors of ReadSignature and Verify.
var ErrBadSignature = errors.New("bad signature")

// ReadSignature returns the signature a message published on subject
// carries: the zero Signature when it has no signature header at all, an
// error wrapping ErrBadSignature when its headers are incomplete or
// malformed.
func ReadSignature(subject string, h HeaderGetter, body []byte) (Signature, error) {
	key, at, sig := h.Get(HeaderKey), h.Get(HeaderSignedAt), h.Get(HeaderSignature)
	if key == "" && at == "" && sig == "" {
		return Signature{}, nil
	}
	if key == "" || at == "" || sig == "" {
		return Signature{}, fmt.Errorf("%w: a signed message carries all of %s, %s and %s", ErrBadSignature, HeaderKey, HeaderSignedAt, HeaderSignature)
	}
	signedAt, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return Signature{}, fmt.Errorf("%w: %s %q is not RFC 3339", ErrBadSignature, HeaderSignedAt, truncate(at, 40))
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(raw) != ed25519.SignatureSize {
		return Signature{}, fmt.Errorf("%w: %s is not the base64 of %d bytes", ErrBadSignature, HeaderSignature, ed25519.SignatureSize)
	}
	return Signature{Key: key, SignedAt: signedAt, sig: raw, payload: SigningPayload(subject, h, body)}, nil
}

// Signed reports whether the message carried a signature.
func (s Signature) Signed() bool { return s.Key != "" }

// Verify returns an error wrapping ErrBadSignature unless the signature is
// pub's over the message.
func (s Signature) Verify(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, s.payload, s.sig) {
		return fmt.Errorf("%w: it is not key %s's signature of this message (subject, command id, content type, signed-at, actor and body)", ErrBadSignature, truncate(s.Key, 80))
	}
	return nil
}

// SignedCommand is a command as its verifier sees it, before it is
// decided.
type SignedCommand struct {
	Command CommandEnvelope
	// Signature is the zero Signature for an unsigned command.
	Signature Signature
	// StoredAt is when JetStream stored the command: its signature's
	// age is measured from then, not from when it is processed, so that a
	// command queued while no processor ran is still good.
	StoredAt time.Time
}
