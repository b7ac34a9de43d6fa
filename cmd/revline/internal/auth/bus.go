package auth

import (
	"cmp"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/revline/revline/events"
)

// On the bus a token signs: its value derives an Ed25519 key
// (events.SigningKey), whose public half its record keeps. The command
// processor checks each command's signature with Verify before deciding
// it, and the token requests (Serve) check theirs too.

// ServerTokenPrefix starts the name of every server's own token
// (ServerSigner), and of no other.
const ServerTokenPrefix = "serve-"

// MaxSignatureAge bounds how far a command's signing time may be from
// when JetStream stored it (either way, for clocks that differ): an older
// signed command is a replay.
const MaxSignatureAge = 5 * time.Minute

// commandPermissions is what each command needs: the same roles as the
// HTTP routes that send it (httpapi), one table for both. The runner
// worker's reports are the server's: only an admin token (and the
// server's own) may send them.
var commandPermissions = map[string]Permission{
	events.CmdSetRevision:     Operate,
	events.CmdRollout:         Operate,
	events.CmdDeleteRevision:  Operate,
	events.CmdScale:           Operate,
	events.CmdSuspend:         Operate,
	events.CmdResume:          Operate,
	events.CmdStopRunner:      Operate,
	events.CmdDeploy:          Deploy,
	events.CmdDeleteApp:       Deploy,
	events.CmdSetSecret:       Deploy,
	events.CmdUnsetSecret:     Deploy,
	events.CmdCompleteDeploy:  Admin,
	events.CmdFailDeploy:      Admin,
	events.CmdCompleteRollout: Admin,
	events.CmdFailRollout:     Admin,
	events.CmdReportRunner:    Admin,
}

// CommandPermission returns what sending a command of the given type
// needs; Admin for a type it does not know.
func CommandPermission(commandType string) Permission {
	if p, ok := commandPermissions[commandType]; ok {
		return p
	}
	return Admin
}

// Verify authenticates and authorizes a command before it is decided,
// and returns the actor its events record: token:NAME of the token that
// signed it, or, for a server's own token, the actor the command names.
// A command that must not be decided gets an *events.Rejection: code
// events.CodeUnauthenticated when it is unsigned, its signature is bad,
// older than MaxSignatureAge when stored, or its token unknown, revoked
// or without a key; events.CodeForbidden when the token's role or app
// glob does not allow it. Any other error is the token store's, and the
// command should be retried.
func (s *Store) Verify(ctx context.Context, c events.SignedCommand) (string, error) {
	return s.actorOf(ctx, c.Signature, c.StoredAt, c.Command.Actor, CommandPermission(c.Command.Type), c.Command.App)
}

// VerifyWrite checks a write that a client made straight into a bucket
// (a webhook's definition: webhooks.Verifier) and returns the actor it
// records: token:NAME of the token that signed it, or, for a server's own
// token, claimed. The write must be signed at most MaxSignatureAge from
// storedAt by a live token that is an admin of every app (who alone may
// write there); anything short of that is an *events.Rejection, any other
// error the token store's.
func (s *Store) VerifyWrite(ctx context.Context, sig events.Signature, storedAt time.Time, claimed string) (string, error) {
	return s.actorOf(ctx, sig, storedAt, claimed, Admin, "")
}

// actorOf returns the actor of what sig signs, stored at storedAt: the
// signing token's (token:NAME), or claimed when a server's own token
// signed it, once the token may do need on app. Anything short of that is
// an *events.Rejection (events.CodeUnauthenticated, events.CodeForbidden);
// any other error is the token store's.
func (s *Store) actorOf(ctx context.Context, sig events.Signature, storedAt time.Time, claimed string, need Permission, app string) (string, error) {
	t, err := s.checkSignature(ctx, sig, storedAt)
	if errors.Is(err, ErrUnauthenticated) {
		return "", &events.Rejection{Code: events.CodeUnauthenticated, Message: err.Error()}
	}
	if err != nil {
		return "", err
	}
	if t.Server {
		return cmp.Or(claimed, t.Actor()), nil
	}
	var forbidden *ForbiddenError
	if err := t.Authorize(need, app); errors.As(err, &forbidden) {
		return "", &events.Rejection{Code: events.CodeForbidden, Message: forbidden.Reason}
	}
	return t.Actor(), nil
}

// checkSignature returns the record of the token whose signature sig is,
// made at most MaxSignatureAge from at. It returns an error wrapping
// ErrUnauthenticated for anything short of that.
func (s *Store) checkSignature(ctx context.Context, sig events.Signature, at time.Time) (Token, error) {
	if !sig.Signed() {
		return Token{}, fmt.Errorf("%w: unsigned; sign with a token's key (%s, %s, %s: docs/bus.md §3)", ErrUnauthenticated, events.HeaderKey, events.HeaderSignedAt, events.HeaderSignature)
	}
	if err := ValidateName(sig.Key); err != nil {
		return Token{}, fmt.Errorf("%w: %s names no token: %v", ErrUnauthenticated, events.HeaderKey, err)
	}
	t, _, err := s.get(ctx, sig.Key)
	switch {
	case errors.Is(err, ErrNotFound):
		return Token{}, fmt.Errorf("%w: unknown token %s", ErrUnauthenticated, sig.Key)
	case err != nil:
		return Token{}, err
	case t.Revoked:
		return Token{}, fmt.Errorf("%w: token %s was revoked", ErrUnauthenticated, t.Name)
	case t.PublicKey == "":
		return Token{}, fmt.Errorf("%w: token %s was made before the bus took signatures and has no key; it works over HTTP only: make a new token for the bus", ErrUnauthenticated, t.Name)
	}
	pub, err := events.DecodePublicKey(t.PublicKey)
	if err != nil {
		return Token{}, fmt.Errorf("%w: token %s: stored key unreadable: %v", ErrUnauthenticated, t.Name, err)
	}
	if err := sig.Verify(pub); err != nil {
		return Token{}, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	if age := at.Sub(sig.SignedAt); age > MaxSignatureAge || age < -MaxSignatureAge {
		return Token{}, fmt.Errorf("%w: signed at %s, %s from when it reached the server (%s); the limit is %s: a replay, or a clock that is off",
			ErrUnauthenticated, sig.SignedAt.UTC().Format(time.RFC3339), age.Round(time.Second), at.UTC().Format(time.RFC3339), MaxSignatureAge)
	}
	return t, nil
}

// AddPublicKey gives the record of the token whose value is value its
// public key, if it has none (it was made before there were keys), so
// that it signs on the bus too: serve does so for the bootstrap token,
// whose value it holds. It returns an error wrapping ErrUnauthenticated
// when value is not a live token's.
func (s *Store) AddPublicKey(ctx context.Context, value string) error {
	name, ok := parseValue(value)
	if !ok {
		return fmt.Errorf("%w: not a Revline token (rvl_NAME_SECRET)", ErrUnauthenticated)
	}
	for {
		t, rev, err := s.get(ctx, name)
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare([]byte(t.Hash), []byte(hash(value))) != 1 || t.Revoked {
			return fmt.Errorf("%w: token %s: wrong secret, or revoked", ErrUnauthenticated, name)
		}
		if t.PublicKey != "" {
			return nil
		}
		if _, err := s.update(ctx, t, rev, func(t *Token) { t.PublicKey = publicKey(value) }); !errors.Is(err, errChanged) {
			return err
		}
	}
}

// serverTokenFile holds, in serve's auth directory, the value of the
// server's own token (mode 0600).
const serverTokenFile = "server.token"

// ServerSigner returns the signer of a server's own components (the HTTP
// API and dashboard, acting for their tokens, and the runner worker): a
// server token (Token.Server) whose value is kept in dir/server.token
// (0600). A replica without one, or whose token was revoked (to rotate
// it) or is gone, makes a new one, named serve-<8 hex digits>.
func ServerSigner(ctx context.Context, s *Store, dir string, now time.Time) (*events.Signer, error) {
	path := filepath.Join(dir, serverTokenFile)
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("server token: %w", err)
	}
	if value := strings.TrimSpace(string(data)); value != "" {
		name, _ := parseValue(value)
		t, err := s.Authenticate(ctx, value)
		switch {
		case err == nil && t.Server && t.PublicKey != "":
			return events.NewSigner(name, value), nil
		case err != nil && !errors.Is(err, ErrUnauthenticated):
			return nil, fmt.Errorf("server token: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("server token: %w", err)
	}
	name := ServerTokenPrefix + strings.ReplaceAll(uuid.NewString(), "-", "")[:8]
	value, _, err := s.Create(ctx, NewToken{Name: name, Role: RoleAdmin, CreatedBy: "serve", Server: true}, now)
	if err != nil {
		return nil, fmt.Errorf("server token: %w", err)
	}
	if err := writeSecretFile(path, value); err != nil {
		if _, rerr := s.Revoke(ctx, name, "serve", now); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return nil, fmt.Errorf("server token: %w", err)
	}
	return events.NewSigner(name, value), nil
}
