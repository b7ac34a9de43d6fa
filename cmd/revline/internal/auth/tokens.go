package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/events"
)

// BucketName is the key-value bucket of tokens: one key per token name,
// written and read only by the server's identity.
const BucketName = "REVLINE_TOKENS"

// Token values look like rvl_<name>_<64 hex digits>: the name says which
// record to check, the 256 random bits are the secret.
const (
	tokenPrefix  = "rvl_"
	secretHexLen = 64
	secretBytes  = secretHexLen / 2
	// A token's name is its key's (events.IsKeyName): a subject token of
	// its outcomes and inbox.
	maxNameLength = events.MaxKeyNameLength
)

// ValidateName checks a token's name: lowercase letters, digits, '-' and
// '_', starting with a letter or digit, at most 64 characters.
func ValidateName(name string) error {
	switch {
	case name == "":
		return errors.New("token name is empty")
	case len(name) > maxNameLength:
		return fmt.Errorf("token name is %d characters long, the limit is %d", len(name), maxNameLength)
	case !events.IsKeyName(name):
		return fmt.Errorf("token name %q: use lowercase letters, digits, '-' and '_', starting with a letter or digit", name)
	}
	return nil
}

// Token is a stored token: everything but its value, of which only the
// hash is kept.
type Token struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Apps is a path.Match glob of the app names the token may touch;
	// AllApps for every app.
	Apps      string    `json:"apps"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	Revoked   bool      `json:"revoked"`
	RevokedBy string    `json:"revoked_by,omitempty"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// Hash is the hex SHA-256 of the token's value; replies to clients
	// leave it out.
	Hash string `json:"hash,omitempty"`
	// PublicKey is the public half of the key the token's value derives
	// (events.SigningKey), in events.EncodePublicKey's form: the bus
	// checks the token's signatures with it. A token made before there was
	// one works over HTTP only.
	PublicKey string `json:"public_key,omitempty"`
	// Server marks a server's own token (ServerSigner): a command it
	// signs may say whom it acts for (events.HeaderActor), and the events
	// record that actor.
	Server bool `json:"server,omitempty"`
}

// Actor is what the event log records for the token's requests.
func (t Token) Actor() string { return "token:" + t.Name }

// AllApps reports whether t may touch every app.
func (t Token) AllApps() bool { return t.Apps == AllApps }

// ErrUnauthenticated is wrapped by the error of a request whose token is
// missing, malformed, unknown or revoked.
var ErrUnauthenticated = errors.New("unauthenticated")

// ForbiddenError is a token's request that its role or app glob does not
// allow.
type ForbiddenError struct {
	Token string
	// Reason says what was missing, in one sentence.
	Reason string
}

// Error implements the error interface.
func (e *ForbiddenError) Error() string { return e.Reason }

// Authorize returns a *ForbiddenError unless t grants need on app ("" for
// a route across apps, which only a token for every app may use).
func (t Token) Authorize(need Permission, app string) error {
	if !t.Role.Allows(need) {
		return &ForbiddenError{Token: t.Name, Reason: fmt.Sprintf("token %s has role %s; this needs %s", t.Name, t.Role, need)}
	}
	switch {
	case t.AllApps():
	case app == "":
		return &ForbiddenError{Token: t.Name, Reason: fmt.Sprintf("token %s may only touch apps matching %q; this route spans every app", t.Name, t.Apps)}
	case !matchApp(t.Apps, app):
		return &ForbiddenError{Token: t.Name, Reason: fmt.Sprintf("token %s may only touch apps matching %q, not %s", t.Name, t.Apps, app)}
	}
	return nil
}

// Store keeps tokens in the BucketName bucket.
type Store struct {
	kv jetstream.KeyValue
	// applied, when set (OnChange), is waited for after each change.
	applied func(ctx context.Context, revision uint64) error
}

// OnChange makes each change of a token by this store (Create, Revoke,
// AddPublicKey) return only once applied returns for the bucket revision
// of the change: serve waits until its NATS server has made the token's
// users match (a new token can connect once its creation is answered, a
// revoked one is disconnected). An error of applied is the change's (the
// change is stored all the same). Call it before the store is shared.
func (s *Store) OnChange(applied func(ctx context.Context, revision uint64) error) {
	s.applied = applied
}

// changed waits for a change stored at revision to be applied (OnChange).
func (s *Store) changed(ctx context.Context, name string, revision uint64) error {
	if s.applied == nil {
		return nil
	}
	if err := s.applied(ctx, revision); err != nil {
		return fmt.Errorf("token %s stored, but not yet applied to the NATS server's users: %w", name, err)
	}
	return nil
}

// Follow calls fn with every token, revoked ones too, as the bucket holds
// them now, then again after each change, with the bucket revision they
// are as of, until ctx ends (it then returns ctx.Err()) or fn fails.
func (s *Store) Follow(ctx context.Context, fn func(tokens []Token, revision uint64) error) error {
	watcher, err := s.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("follow tokens: %w", err)
	}
	// Stopped, the watcher closes its updates.
	defer context.AfterFunc(ctx, func() { _ = watcher.Stop() })()
	defer func() { _ = watcher.Stop() }()
	byName := map[string]Token{}
	var revision uint64
	current := false
	for entry := range watcher.Updates() {
		if entry != nil {
			revision = max(revision, entry.Revision())
			if entry.Operation() != jetstream.KeyValuePut {
				delete(byName, entry.Key())
			} else {
				var t Token
				if err := json.Unmarshal(entry.Value(), &t); err != nil {
					return fmt.Errorf("follow tokens: token %s: stored record unreadable: %w", entry.Key(), err)
				}
				byName[entry.Key()] = t
			}
			if !current {
				continue // the bucket as it is now is not all there yet
			}
		}
		current = true
		tokens := make([]Token, 0, len(byName))
		for _, t := range byName {
			tokens = append(tokens, t)
		}
		slices.SortFunc(tokens, func(a, b Token) int { return strings.Compare(a.Name, b.Name) })
		if err := fn(tokens, revision); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("follow tokens: the watch ended")
}

// Ensure creates or updates the bucket, as serve does at start-up, with
// the server's identity.
func Ensure(ctx context.Context, js jetstream.JetStream, replicas int) (*Store, error) {
	kv, err := events.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:       BucketName,
		Description:  "Revline HTTP bearer tokens: name, role, apps and the SHA-256 of the value, never the value",
		History:      1,
		MaxValueSize: 4 << 10,
		Storage:      jetstream.FileStorage,
		Replicas:     max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("token store: %w", err)
	}
	return &Store{kv: kv}, nil
}

// Open returns the store of the existing bucket, without changing it:
// what `revline nats-config` reads the tokens from, as the server.
func Open(ctx context.Context, js jetstream.JetStream) (*Store, error) {
	kv, err := js.KeyValue(ctx, BucketName)
	if err != nil {
		return nil, fmt.Errorf("token store: %w (has serve run on this NATS?)", err)
	}
	return &Store{kv: kv}, nil
}

// ErrNameTaken is wrapped by the error of Create for a name that a token,
// revoked or not, already has: a name is an actor in the event log, so it
// is never given to a second token.
var ErrNameTaken = errors.New("a token with that name exists (revoked ones keep their name)")

// ErrNotFound is wrapped by the error of Revoke for an unknown name.
var ErrNotFound = errors.New("no token has that name")

// NewToken describes a token to create.
type NewToken struct {
	Name string
	Role Role
	// Apps is the app glob; "" means AllApps.
	Apps      string
	CreatedBy string
	// Server makes a server's own token (Token.Server).
	Server bool
}

// Create stores a new token and returns its value, which is shown once
// and never stored, and its record. It returns an error wrapping
// ErrNameTaken when the name is in use.
func (s *Store) Create(ctx context.Context, nt NewToken, now time.Time) (string, Token, error) {
	if err := ValidateName(nt.Name); err != nil {
		return "", Token{}, err
	}
	if strings.HasPrefix(nt.Name, ServerTokenPrefix) && !nt.Server {
		// One an operator could take for a server's when rotating it.
		return "", Token{}, fmt.Errorf("token name %q: names starting with %q are the servers' own tokens'", nt.Name, ServerTokenPrefix)
	}
	if _, err := ParseRole(string(nt.Role)); err != nil {
		return "", Token{}, err
	}
	if nt.Apps == "" {
		nt.Apps = AllApps
	}
	if err := ValidateAppGlob(nt.Apps); err != nil {
		return "", Token{}, err
	}
	random := make([]byte, secretBytes)
	if _, err := rand.Read(random); err != nil {
		return "", Token{}, fmt.Errorf("make token: %w", err)
	}
	value := tokenPrefix + nt.Name + "_" + hex.EncodeToString(random)
	t := Token{
		Name: nt.Name, Role: nt.Role, Apps: nt.Apps, CreatedBy: nt.CreatedBy, CreatedAt: now.UTC(),
		Hash: hash(value), PublicKey: publicKey(value), Server: nt.Server,
	}
	data, err := json.Marshal(t)
	if err != nil {
		return "", Token{}, fmt.Errorf("make token: %w", err)
	}
	revision, err := s.kv.Create(ctx, t.Name, data)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return "", Token{}, fmt.Errorf("token %s: %w", t.Name, ErrNameTaken)
		}
		return "", Token{}, fmt.Errorf("store token %s: %w", t.Name, err)
	}
	if err := s.changed(ctx, t.Name, revision); err != nil {
		return "", Token{}, err
	}
	return value, t, nil
}

// get returns the record of the token named name and its KV revision.
func (s *Store) get(ctx context.Context, name string) (Token, uint64, error) {
	// A bucket just made on a cluster may not answer yet (no responders
	// while its leader is elected): a read is safe to repeat.
	var entry jetstream.KeyValueEntry
	err := events.RetryWhileBusy(ctx, func(attempt context.Context) (err error) {
		entry, err = s.kv.Get(attempt, name)
		return err
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Token{}, 0, fmt.Errorf("token %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return Token{}, 0, fmt.Errorf("read token %s: %w", name, err)
	}
	var t Token
	if err := json.Unmarshal(entry.Value(), &t); err != nil {
		return Token{}, 0, fmt.Errorf("token %s: stored record unreadable: %w", name, err)
	}
	return t, entry.Revision(), nil
}

// List returns every token, revoked ones too, by name.
func (s *Store) List(ctx context.Context) ([]Token, error) {
	keys, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	var names []string
	for k := range keys.Keys() {
		names = append(names, k)
	}
	slices.Sort(names)
	tokens := make([]Token, 0, len(names))
	for _, name := range names {
		t, _, err := s.get(ctx, name)
		if errors.Is(err, ErrNotFound) {
			continue // deleted between the listing and the read
		}
		if err != nil {
			return nil, err
		}
		tokens = append(tokens, t)
	}
	return tokens, nil
}

// Revoke marks the token named name revoked: every replica refuses it
// from its next request on. Revoking a revoked token is a no-op that
// returns the record as it is. It returns an error wrapping ErrNotFound
// for an unknown name.
func (s *Store) Revoke(ctx context.Context, name, by string, now time.Time) (Token, error) {
	if err := ValidateName(name); err != nil {
		return Token{}, err
	}
	for {
		t, rev, err := s.get(ctx, name)
		if err != nil || t.Revoked {
			return t, err
		}
		t, err = s.update(ctx, t, rev, func(t *Token) { t.Revoked, t.RevokedBy, t.RevokedAt = true, by, now.UTC() })
		if !errors.Is(err, errChanged) {
			return t, err
		}
	}
}

// errChanged is update's error for a record changed since it was read.
var errChanged = errors.New("token record changed since read")

// update stores t, changed by change, if its record is still at revision
// rev; it returns errChanged if not (read it again and retry).
func (s *Store) update(ctx context.Context, t Token, rev uint64, change func(*Token)) (Token, error) {
	change(&t)
	data, err := json.Marshal(t)
	if err != nil {
		return Token{}, fmt.Errorf("update token %s: %w", t.Name, err)
	}
	revision, err := s.kv.Update(ctx, t.Name, data, rev)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return Token{}, errChanged
	}
	if err != nil {
		return Token{}, fmt.Errorf("update token %s: %w", t.Name, err)
	}
	return t, s.changed(ctx, t.Name, revision)
}

// Authenticate returns the record of the token whose value is value. It
// reads the bucket every time, so a revocation counts from the next
// request on, on every replica. It returns an error wrapping
// ErrUnauthenticated when value is malformed, unknown or revoked; the
// error never contains value.
func (s *Store) Authenticate(ctx context.Context, value string) (Token, error) {
	name, ok := parseValue(value)
	if !ok {
		return Token{}, fmt.Errorf("%w: not a Revline token (rvl_NAME_SECRET)", ErrUnauthenticated)
	}
	return s.Check(ctx, name, hash(value))
}

// Check returns the record of the token named name if its hash is
// tokenHash and it is not revoked (a dashboard session keeps the name
// and hash of the token it was opened with, not the value).
func (s *Store) Check(ctx context.Context, name, tokenHash string) (Token, error) {
	t, _, err := s.get(ctx, name)
	switch {
	case errors.Is(err, ErrNotFound):
		return Token{}, fmt.Errorf("%w: unknown token %s", ErrUnauthenticated, name)
	case err != nil:
		return Token{}, err
	case subtle.ConstantTimeCompare([]byte(t.Hash), []byte(tokenHash)) != 1:
		return Token{}, fmt.Errorf("%w: wrong secret for token %s", ErrUnauthenticated, name)
	case t.Revoked:
		return Token{}, fmt.Errorf("%w: token %s was revoked", ErrUnauthenticated, name)
	}
	return t, nil
}

// ClaimedName returns the token name a value claims, "" when it is not a
// Revline token: for logging a refusal, whose reason it is not proof of.
func ClaimedName(value string) string {
	name, _ := parseValue(value)
	return name
}

// parseValue returns the token name inside a token value.
func parseValue(value string) (string, bool) {
	rest, ok := strings.CutPrefix(value, tokenPrefix)
	if !ok || len(rest) < secretHexLen+2 {
		return "", false
	}
	name, secret := rest[:len(rest)-secretHexLen-1], rest[len(rest)-secretHexLen:]
	if rest[len(name)] != '_' || ValidateName(name) != nil {
		return "", false
	}
	if _, err := hex.DecodeString(secret); err != nil {
		return "", false
	}
	return name, true
}

// publicKey is the stored form of the public key a token value derives.
func publicKey(value string) string {
	return events.EncodePublicKey(events.SigningKey(value).Public().(ed25519.PublicKey))
}

// hash is the stored form of a token value.
func hash(value string) string {
	sum := sha256.Sum256([]byte(value))
	return hex.EncodeToString(sum[:])
}
