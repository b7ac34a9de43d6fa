package webhooks

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/revline/revline/events"
)

// Buckets of the webhooks' state.
const (
	// BucketName holds webhook definitions (key "hook.<id>", each change
	// kept in the key's history: who added, disabled, enabled, removed)
	// and redelivery requests (key "redeliver.<id>"). Clients read and
	// write it.
	BucketName = "REVLINE_WEBHOOKS"
	// SecretBucketName holds each webhook's signing secret (key "<id>").
	// Clients write it, never read it.
	SecretBucketName = "REVLINE_WEBHOOK_SECRETS"
	// DeliveryBucketName holds each webhook's recent delivery attempts
	// (key "<id>", one revision an attempt, the last DeliveryHistory
	// kept) and the stream sequence of the last event it delivered (key
	// "delivered.<id>"). Clients read it; only the server writes it.
	DeliveryBucketName = "REVLINE_WEBHOOK_DELIVERIES"
	// DeliveryHistory is how many delivery attempts are kept per webhook
	// (JetStream's largest key-value history).
	DeliveryHistory = 64
	// policyKey holds the serving side's Policy, so that `webhooks add`
	// refuses a target the server would refuse.
	policyKey = "policy"
)

// Limits of a webhook definition.
const (
	MaxURLLength  = 2048
	MaxEventGlobs = 32
	maxGlobLength = 128
	// SecretBytes is the size of a generated signing secret.
	SecretBytes = 32
	// maxSecretBytes bounds a given signing secret (decoded).
	maxSecretBytes = 128
)

// ErrNotFound is wrapped by the errors about a webhook id that names no
// webhook (or one that was removed).
var ErrNotFound = errors.New("no such webhook")

// InvalidError is a webhook definition Add refuses: a bad URL, app or
// event glob, a target the server's policy refuses, a bad secret.
type InvalidError struct{ Err error }

// Error implements the error interface.
func (e *InvalidError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error, for errors.Is and errors.As.
func (e *InvalidError) Unwrap() error { return e.Err }

// Status of a webhook.
const (
	StatusActive   = "active"
	StatusDisabled = "disabled"
	StatusRemoved  = "removed"
)

// Webhook is one webhook's definition, as stored in BucketName. It holds
// no secret.
type Webhook struct {
	ID  string `json:"id"`
	URL string `json:"url"`
	// App limits the webhook to one app's events ("": every app).
	App string `json:"app,omitempty"`
	// Events are globs over event types (path.Match, "revision.*"); none
	// means every type.
	Events []string `json:"events,omitempty"`
	// StartSequence is the event stream's sequence the webhook starts at:
	// the first event after it was added.
	StartSequence uint64    `json:"start_sequence"`
	Status        string    `json:"status"`
	CreatedBy     string    `json:"created_by"`
	CreatedAt     time.Time `json:"created_at"`
	// ChangedBy and ChangedAt say who disabled, enabled or removed it
	// last, and when; Reason why (a disable by the server says which
	// failures).
	ChangedBy string     `json:"changed_by,omitempty"`
	ChangedAt *time.Time `json:"changed_at,omitempty"`
	Reason    string     `json:"reason,omitempty"`
}

// Wants reports whether the webhook delivers an event of type eventType
// that aggregate owns (an app, or events.WebhooksAggregate): one its app
// filter takes (see checkAggregate) and its globs match.
func (w Webhook) Wants(aggregate, eventType string) bool {
	if w.checkAggregate(aggregate) != nil {
		return false
	}
	if len(w.Events) == 0 {
		return true
	}
	return slices.ContainsFunc(w.Events, func(glob string) bool {
		ok, _ := path.Match(glob, eventType)
		return ok
	})
}

// checkAggregate refuses an event that aggregate owns unless it is the
// webhook's app's, or any app's for a webhook of every app: never the
// webhooks aggregate's, which is no app's (every reader of apps skips it).
func (w Webhook) checkAggregate(aggregate string) error {
	switch {
	case aggregate == events.WebhooksAggregate:
		return errors.New("it records a webhook change, no app's event")
	case w.App != "" && aggregate != w.App:
		return fmt.Errorf("it is app %s's, and the webhook is for app %s", aggregate, w.App)
	}
	return nil
}

// ConsumerName is hook's durable consumer on the event stream:
// ConsumerPrefix, its id, and a keyed hash of its id that only the
// server can make (the key is in the secret bucket, which clients may
// write to but not read). A token that reads every app's events may
// pull from any consumer of the event stream whose name it knows, and
// learns webhooks' ids from their events: with a name it cannot
// guess, it cannot take events from a webhook, nor delete its consumer.
// Only a store from Ensure, the server's, names consumers.
func (s *Store) ConsumerName(hook Webhook) string {
	mac := hmac.New(sha256.New, s.consumerKey)
	mac.Write([]byte(hook.ID))
	return ConsumerPrefix + hook.ID + "-" + hex.EncodeToString(mac.Sum(nil)[:12])
}

// ConsumerPrefix starts the name of every webhook's durable consumer.
const ConsumerPrefix = "revline-webhook-"

// ConsumerKeyName is the key, in the secret bucket, of the key of the
// webhooks' consumer names (Store.ConsumerName); no webhook id (12
// hexadecimal characters) can be it, and no token may write it.
const ConsumerKeyName = "consumer-names"

// ensureConsumerKey returns the key of the consumers' names, made once
// by the first server to start: every replica reads the same.
func ensureConsumerKey(ctx context.Context, secrets jetstream.KeyValue) ([]byte, error) {
	for {
		entry, err := secrets.Get(ctx, ConsumerKeyName)
		if err == nil && len(entry.Value()) >= 32 {
			return entry.Value(), nil
		}
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fmt.Errorf("webhook store: the consumers' name key: %w", err)
		}
		key := make([]byte, 32)
		_, _ = rand.Read(key) // never fails (crypto/rand)
		if err == nil {
			// Shorter than a key: a client wrote it (admins may write
			// secrets). Replace that version, unless another replica did
			// first; the consumers are made again under their new names,
			// after the last event delivered.
			_, err = secrets.Update(ctx, ConsumerKeyName, key, entry.Revision())
		} else {
			_, err = secrets.Create(ctx, ConsumerKeyName, key)
		}
		if err == nil {
			return key, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("webhook store: the consumers' name key: %w", err)
		}
		// Another replica made or replaced it first: read theirs.
	}
}

// filterSubject is the webhook's consumer's filter: its app's events, or
// every event.
func (w Webhook) filterSubject() string {
	if w.App == "" {
		return events.EventSubjectPrefix + ">"
	}
	return events.AppEventsFilter(w.App)
}

var idPattern = regexp.MustCompile(`^[0-9a-f]{12}$`)

// ValidateID refuses what cannot be a webhook id (ids become part of key
// and consumer names).
func ValidateID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("webhook id %q: want the 12 hexadecimal characters `webhooks list` shows", id)
	}
	return nil
}

func newID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// Validate checks a definition's URL, app and event globs. It does not
// look at where the URL's host points (see CheckTarget).
func (w Webhook) Validate() error {
	if err := ValidateURL(w.URL); err != nil {
		return err
	}
	if w.App != "" {
		if err := events.ValidateAppName(w.App); err != nil {
			return err
		}
	}
	if len(w.Events) > MaxEventGlobs {
		return fmt.Errorf("webhook: %d event globs, at most %d", len(w.Events), MaxEventGlobs)
	}
	for _, glob := range w.Events {
		if glob == "" || len(glob) > maxGlobLength {
			return fmt.Errorf("webhook: event glob %q: want 1 to %d characters", glob, maxGlobLength)
		}
		if _, err := path.Match(glob, ""); err != nil {
			return fmt.Errorf("webhook: event glob %q: %w", glob, err)
		}
	}
	return nil
}

// ValidateURL accepts an absolute http or https URL with a host and no
// user information (credentials belong in no definition: every client can
// read those).
func ValidateURL(raw string) error {
	if len(raw) > MaxURLLength {
		return fmt.Errorf("webhook URL: %d characters, at most %d", len(raw), MaxURLLength)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("webhook URL: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("webhook URL %q: want http or https", raw)
	case u.Hostname() == "":
		return fmt.Errorf("webhook URL %q: no host", raw)
	case u.User != nil:
		return fmt.Errorf("webhook URL: user information is refused (every client can read webhook definitions); the receiver checks the signature instead")
	}
	return nil
}

// Policy is what the serving side allows, published in BucketName for
// clients to check against before adding a webhook.
type Policy struct {
	AllowPrivate bool `json:"allow_private"`
}

// Delivery is one attempt to deliver an event to a webhook.
type Delivery struct {
	EventID  string    `json:"event_id"`
	Sequence uint64    `json:"sequence"`
	Type     string    `json:"type"`
	App      string    `json:"app"`
	Attempt  int       `json:"attempt"`
	At       time.Time `json:"at"`
	// Status is the receiver's HTTP status, 0 when none came.
	Status    int    `json:"status"`
	LatencyMS int64  `json:"latency_ms"`
	Error     string `json:"error,omitempty"`
	// Redelivery marks an attempt asked for with `webhooks redeliver`.
	Redelivery bool `json:"redelivery,omitempty"`
}

// OK reports whether the receiver accepted the delivery.
func (d Delivery) OK() bool { return d.Error == "" && d.Status >= 200 && d.Status < 300 }

// Redelivery is a request to deliver one event again.
type Redelivery struct {
	Sequence    uint64    `json:"sequence"`
	RequestedBy string    `json:"requested_by"`
	RequestedAt time.Time `json:"requested_at"`
}

// Store reads and writes webhooks' definitions, secrets and deliveries.
type Store struct {
	hooks, secrets, deliveries jetstream.KeyValue
	// consumerKey keys the consumers' names (ConsumerName); nil in a
	// client's store.
	consumerKey []byte
	// signer, if set, signs every change of a definition (SignWith).
	signer *events.Signer
	// stream tells clients where the event log ends (a new webhook's
	// start).
	js jetstream.JetStream
}

// DefinitionHistory is how many versions of each webhook's definition
// the bucket keeps (`webhooks history`).
const DefinitionHistory = 16

func bucketConfigs(replicas int) []jetstream.KeyValueConfig {
	replicas = max(replicas, 1)
	return []jetstream.KeyValueConfig{
		{Bucket: BucketName, Description: "Revline webhook definitions (no secrets) and redelivery requests", History: DefinitionHistory, MaxValueSize: 16 << 10, Storage: jetstream.FileStorage, Replicas: replicas},
		{Bucket: SecretBucketName, Description: "Revline webhook signing secrets, written by clients, read by the server only", History: 1, MaxValueSize: 1 << 10, Storage: jetstream.FileStorage, Replicas: replicas},
		{Bucket: DeliveryBucketName, Description: "Revline webhook delivery attempts, the last 64 of each webhook", History: DeliveryHistory, MaxValueSize: 8 << 10, Storage: jetstream.FileStorage, Replicas: replicas},
	}
}

// Ensure creates or updates the buckets and records policy, as serve does
// at start-up.
func Ensure(ctx context.Context, js jetstream.JetStream, replicas int, policy Policy) (*Store, error) {
	kvs := make([]jetstream.KeyValue, 0, 3)
	for _, cfg := range bucketConfigs(replicas) {
		kv, err := events.EnsureKeyValue(ctx, js, cfg)
		if err != nil {
			return nil, fmt.Errorf("webhook store: %w", err)
		}
		kvs = append(kvs, kv)
	}
	s := &Store{hooks: kvs[0], secrets: kvs[1], deliveries: kvs[2], js: js}
	if err := s.putJSON(ctx, s.hooks, policyKey, policy); err != nil {
		return nil, err
	}
	key, err := ensureConsumerKey(ctx, s.secrets)
	if err != nil {
		return nil, err
	}
	s.consumerKey = key
	return s, nil
}

// Open binds to the buckets a server created, as a client does.
func Open(ctx context.Context, js jetstream.JetStream) (*Store, error) {
	kvs := make([]jetstream.KeyValue, 0, 3)
	for _, cfg := range bucketConfigs(1) {
		kv, err := js.KeyValue(ctx, cfg.Bucket)
		if err != nil {
			return nil, fmt.Errorf("webhook store: %w (is serve running and up to date?)", err)
		}
		kvs = append(kvs, kv)
	}
	return &Store{hooks: kvs[0], secrets: kvs[1], deliveries: kvs[2], js: js}, nil
}

// SignWith makes the store sign every change of a webhook's definition
// with signer, a token's key: the change is recorded (Record) as made by
// that token, not by whoever the definition names, unless signer is a
// server's own token, which acts for whom it names. A client signs with
// its token, serve with its own.
func (s *Store) SignWith(signer *events.Signer) { s.signer = signer }

// writeDefinition stores w, expecting its key's last revision to be
// lastRevision (0: a new webhook), signed if the store signs. A write
// that another overtook wraps jetstream.ErrKeyExists, as a key-value
// update's does.
func (s *Store) writeDefinition(ctx context.Context, w Webhook, lastRevision uint64) error {
	data, err := json.Marshal(w)
	if err != nil {
		return err
	}
	msg := nats.NewMsg(definitionSubject(w.ID))
	msg.Data = data
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(lastRevision, 10))
	// Signed, so that the recorder can tell this write from a copy of it
	// published again later over another change (writtenOver).
	msg.Header.Set(events.HeaderMsgID, definitionWriteID(lastRevision))
	if s.signer != nil {
		if err := s.signer.Sign(msg); err != nil {
			return fmt.Errorf("webhook %s: sign the definition: %w", w.ID, err)
		}
	}
	_, err = s.js.PublishMsg(ctx, msg)
	if events.IsWrongLastSequence(err) {
		return fmt.Errorf("webhook %s: %w", w.ID, jetstream.ErrKeyExists)
	}
	if err != nil {
		return fmt.Errorf("webhook %s: store the definition: %w", w.ID, err)
	}
	return nil
}

// definitionSubject is the subject of webhook id's definition in the
// bucket's stream.
func definitionSubject(id string) string { return "$KV." + BucketName + "." + hookKey(id) }

// definitionWriteID is the message id of a write of a definition over
// revision lastRevision of its key (0: a new webhook): unique, and naming
// that revision.
func definitionWriteID(lastRevision uint64) string {
	return "over-" + strconv.FormatUint(lastRevision, 10) + "-" + uuid.NewString()
}

// writtenOver returns the revision a write whose message id is id says it
// was written over; ok is false for an id of no such form.
func writtenOver(id string) (revision uint64, ok bool) {
	rest, ok := strings.CutPrefix(id, "over-")
	if !ok {
		return 0, false
	}
	number, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	revision, err := strconv.ParseUint(number, 10, 64)
	return revision, err == nil
}

func hookKey(id string) string      { return "hook." + id }
func redeliverKey(id string) string { return "redeliver." + id }
func (s *Store) putJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, key, data); err != nil {
		return fmt.Errorf("webhook store: write %s: %w", key, err)
	}
	return nil
}

// Add stores a new webhook with its signing secret (from ParseSecret or
// NewSecret) and returns it with its id, status and start. The target is
// checked against the server's policy (see CheckTarget).
func (s *Store) Add(ctx context.Context, w Webhook, secret []byte, actor string, now time.Time) (Webhook, error) {
	if err := w.Validate(); err != nil {
		return Webhook{}, &InvalidError{err}
	}
	if len(secret) == 0 || len(secret) > maxSecretBytes {
		return Webhook{}, &InvalidError{fmt.Errorf("webhook: a secret of 1 to %d bytes is required", maxSecretBytes)}
	}
	var policy Policy
	if entry, err := s.hooks.Get(ctx, policyKey); err == nil {
		_ = json.Unmarshal(entry.Value(), &policy) // a bad policy is the strict one
	}
	if err := CheckTarget(ctx, w.URL, policy.AllowPrivate); err != nil {
		return Webhook{}, &InvalidError{err}
	}
	stream, err := s.js.Stream(ctx, events.EventStreamName)
	if err != nil {
		return Webhook{}, fmt.Errorf("webhook: event stream: %w", err)
	}
	w.ID = newID()
	w.StartSequence = stream.CachedInfo().State.LastSeq + 1
	w.Status = StatusActive
	w.CreatedBy, w.CreatedAt = actor, now.UTC()
	// The secret first: the worker starts on the definition and needs it.
	if _, err := s.secrets.Put(ctx, w.ID, secret); err != nil {
		return Webhook{}, fmt.Errorf("webhook: store the secret: %w", err)
	}
	if err := s.writeDefinition(ctx, w, 0); err != nil {
		return Webhook{}, err
	}
	return w, nil
}

// Get returns the webhook id with its key-value revision; the error wraps
// ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context, id string) (Webhook, uint64, error) {
	if err := ValidateID(id); err != nil {
		return Webhook{}, 0, err
	}
	entry, err := s.hooks.Get(ctx, hookKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Webhook{}, 0, fmt.Errorf("webhook %s: %w", id, ErrNotFound)
	} else if err != nil {
		return Webhook{}, 0, fmt.Errorf("webhook %s: %w", id, err)
	}
	w, err := decodeWebhook(entry.Value())
	if err != nil {
		return Webhook{}, 0, fmt.Errorf("webhook %s: %w", id, err)
	}
	return w, entry.Revision(), nil
}

func decodeWebhook(data []byte) (Webhook, error) {
	var w Webhook
	if err := json.Unmarshal(data, &w); err != nil {
		return Webhook{}, fmt.Errorf("undecodable definition: %w", err)
	}
	if err := ValidateID(w.ID); err != nil {
		return Webhook{}, err
	}
	return w, nil
}

// List returns every webhook, removed ones included, oldest first.
func (s *Store) List(ctx context.Context) ([]Webhook, error) {
	lister, err := s.hooks.ListKeysFiltered(ctx, hookKey("*"))
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	var hooks []Webhook
	for key := range lister.Keys() {
		w, _, err := s.Get(ctx, strings.TrimPrefix(key, "hook."))
		if errors.Is(err, ErrNotFound) {
			continue // removed from the bucket meanwhile
		} else if err != nil {
			return nil, err
		}
		hooks = append(hooks, w)
	}
	slices.SortFunc(hooks, func(a, b Webhook) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return hooks, nil
}

// SetStatus changes a webhook's status (active, disabled or removed),
// recording who, when and why; it refuses to change a removed webhook. A
// removed webhook's secret is purged. It returns the webhook as changed.
func (s *Store) SetStatus(ctx context.Context, id, status, actor, reason string, now time.Time) (Webhook, error) {
	for {
		w, rev, err := s.Get(ctx, id)
		if err != nil {
			return Webhook{}, err
		}
		if w.Status == StatusRemoved {
			return Webhook{}, fmt.Errorf("webhook %s: %w (removed by %s)", id, ErrNotFound, w.ChangedBy)
		}
		at := now.UTC()
		w.Status, w.ChangedBy, w.ChangedAt, w.Reason = status, actor, &at, reason
		err = s.writeDefinition(ctx, w, rev)
		if errors.Is(err, jetstream.ErrKeyExists) {
			continue // changed meanwhile: decide again on the new record
		} else if err != nil {
			return Webhook{}, err
		}
		if status == StatusRemoved {
			if err := s.secrets.Purge(ctx, id); err != nil {
				return w, fmt.Errorf("webhook %s removed; purge its secret: %w", id, err)
			}
		}
		return w, nil
	}
}

// History returns every kept version of webhook id's definition, oldest
// first: who added it, then each disable, enable and removal with who,
// when and why (the last 16 changes).
func (s *Store) History(ctx context.Context, id string) ([]Webhook, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	entries, err := s.hooks.History(ctx, hookKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("webhook %s: %w", id, ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("history of webhook %s: %w", id, err)
	}
	versions := make([]Webhook, 0, len(entries))
	for _, entry := range entries {
		if w, err := decodeWebhook(entry.Value()); err == nil {
			versions = append(versions, w)
		}
	}
	return versions, nil
}

// RequestRedelivery asks the serving side to deliver the event at stream
// sequence seq to webhook id once more.
func (s *Store) RequestRedelivery(ctx context.Context, id string, seq uint64, actor string, now time.Time) error {
	w, _, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if w.Status == StatusRemoved {
		return fmt.Errorf("webhook %s: %w (removed by %s)", id, ErrNotFound, w.ChangedBy)
	}
	if seq == 0 {
		return &InvalidError{errors.New("redeliver: the sequence starts at 1 (the SEQ of `revline audit` or of `webhooks deliveries`)")}
	}
	return s.putJSON(ctx, s.hooks, redeliverKey(id), Redelivery{Sequence: seq, RequestedBy: actor, RequestedAt: now.UTC()})
}

// Deliveries returns webhook id's recent delivery attempts, oldest first.
func (s *Store) Deliveries(ctx context.Context, id string) ([]Delivery, error) {
	if _, _, err := s.Get(ctx, id); err != nil {
		return nil, err
	}
	entries, err := s.deliveries.History(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("deliveries of webhook %s: %w", id, err)
	}
	out := make([]Delivery, 0, len(entries))
	for _, entry := range entries {
		if entry.Operation() != jetstream.KeyValuePut {
			continue
		}
		var d Delivery
		if err := json.Unmarshal(entry.Value(), &d); err != nil {
			continue // written by a newer or broken server: skip, not fail
		}
		out = append(out, d)
	}
	return out, nil
}

func (s *Store) recordDelivery(ctx context.Context, id string, d Delivery) error {
	return s.putJSON(ctx, s.deliveries, id, d)
}

// deliveredKey holds, in DeliveryBucketName, the stream sequence of the
// last event webhook id delivered.
func deliveredKey(id string) string { return "delivered." + id }

// recordDelivered records that webhook id delivered the event at stream
// sequence seq, the last one so far.
func (s *Store) recordDelivered(ctx context.Context, id string, seq uint64) error {
	if _, err := s.deliveries.Put(ctx, deliveredKey(id), []byte(strconv.FormatUint(seq, 10))); err != nil {
		return fmt.Errorf("webhook store: write %s: %w", deliveredKey(id), err)
	}
	return nil
}

// resumeSequence is where hook's consumer starts when it is made: after
// the last event the webhook delivered (recordDelivered), or at its start
// when it delivered none, so that a consumer deleted behind the worker's
// back sends nothing delivered again but the event that was in flight.
func (s *Store) resumeSequence(ctx context.Context, hook Webhook) (uint64, error) {
	start := max(hook.StartSequence, 1)
	entry, err := s.deliveries.Get(ctx, deliveredKey(hook.ID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return start, nil
	} else if err != nil {
		return 0, fmt.Errorf("webhook %s: the last event delivered: %w", hook.ID, err)
	}
	seq, err := strconv.ParseUint(string(entry.Value()), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("webhook %s: the last event delivered: %w", hook.ID, err)
	}
	return max(start, seq+1), nil
}

// purgeDeliveries forgets a removed webhook's delivery attempts and the
// last event it delivered.
func (s *Store) purgeDeliveries(ctx context.Context, id string) error {
	for _, key := range []string{id, deliveredKey(id)} {
		if err := s.deliveries.Purge(ctx, key); err != nil {
			return fmt.Errorf("webhook store: purge %s: %w", key, err)
		}
	}
	return nil
}

func (s *Store) secret(ctx context.Context, id string) ([]byte, error) {
	entry, err := s.secrets.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("secret of webhook %s: %w", id, err)
	}
	return entry.Value(), nil
}
