package webhooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/revline/revline/events"
)

// RecordLog is the part of the event store Record writes to;
// *events.JetStreamStore has it.
type RecordLog interface {
	events.Appender
	events.AppLoader
	// LastAppSequence returns the sequence of an aggregate's last event.
	LastAppSequence(ctx context.Context, app string) (uint64, error)
}

// Verifier names who signed a change of a webhook's definition
// (auth.Store in serve).
type Verifier interface {
	// VerifyWrite returns the actor a signed write records: its token's,
	// or claimed when a server's own token signed it. A write that is
	// unsigned, badly signed, or signed by a token that is unknown,
	// revoked or not an admin of every app is an *events.Rejection; any
	// other error is the token store's, and the write is checked again.
	VerifyWrite(ctx context.Context, sig events.Signature, storedAt time.Time, claimed string) (string, error)
}

// Unverified is the "by" of a change whose signature does not check out
// (Verifier), with whom its definition claims.
func Unverified(claimed string) string { return "unverified (claims " + claimed + ")" }

// Record follows the webhook definitions until ctx ends and appends to
// the event log, for each change, an event of the webhooks aggregate
// (events.WebhooksAggregate): webhook.added, .disabled, .enabled or
// .removed, with who made it (the token that signed the change, as
// verifier says; Unverified for a change no token signed), when and why,
// never the secret. The definitions stay the worker's read model; the events are
// the record. Each event holds the definition's revision, so that Record
// resumes after the last change recorded, and every serve replica may run
// it: an append expects the aggregate's last sequence, and the loser of a
// race finds the change recorded and moves on. Changes made before Record
// first ran are recorded from what the bucket's history still holds.
func (s *Store) Record(ctx context.Context, log RecordLog, verifier Verifier, logger *slog.Logger) error {
	last, err := lastRecorded(ctx, log)
	if err != nil {
		return err
	}
	opt := jetstream.IncludeHistory()
	if last.revision > 0 {
		opt = jetstream.ResumeFromRevision(last.revision + 1)
	}
	watcher, err := s.hooks.Watch(ctx, hookKey("*"), opt)
	if err != nil {
		return fmt.Errorf("webhooks: watch definitions to record them: %w", err)
	}
	defer func() { _ = watcher.Stop() }()
	for {
		entry, err := nextEntry(ctx, watcher)
		if err != nil {
			return err
		}
		if entry == nil || entry.Operation() != jetstream.KeyValuePut || entry.Revision() <= last.revision {
			continue
		}
		hook, err := decodeWebhook(entry.Value())
		if err != nil {
			logger.Warn("not recording an unreadable webhook definition", "key", entry.Key(), "revision", entry.Revision(), "error", err)
			continue
		}
		by, err := s.signedBy(ctx, verifier, entry.Revision(), claimedBy(hook), logger)
		if err != nil {
			return err
		}
		if err := record(ctx, log, &last, changeEvent(hook, by, entry.Revision(), entry.Created())); err != nil {
			return fmt.Errorf("webhooks: record webhook %s's change (revision %d): %w", hook.ID, entry.Revision(), err)
		}
	}
}

// claimedBy is who hook's definition says made its last change.
func claimedBy(hook Webhook) string {
	if hook.ChangedAt != nil {
		return hook.ChangedBy
	}
	return hook.CreatedBy
}

// signedBy returns who made the change stored at revision of the
// definitions' bucket, claiming to be claimed: as verifier names the
// token that signed it, or Unverified. It checks again after a pause
// while the token store cannot answer, until ctx ends.
func (s *Store) signedBy(ctx context.Context, verifier Verifier, revision uint64, claimed string, logger *slog.Logger) (string, error) {
	for attempt, pause := 1, 100*time.Millisecond; ; attempt, pause = attempt+1, min(2*pause, 5*time.Second) {
		by, err := s.verifyChange(ctx, verifier, revision, claimed)
		if errors.Is(err, jetstream.ErrMsgNotFound) && attempt >= changeGoneAttempts {
			// The bucket's history (16 changes a key) dropped it while the
			// recorder was behind (or a new leader is not caught up yet).
			err = &events.Rejection{Code: events.CodeUnauthenticated, Message: "the change is no longer in the bucket's history: " + err.Error()}
		}
		var refused *events.Rejection
		if errors.As(err, &refused) {
			logger.Warn("recording a webhook change no token signed as unverified", "revision", revision, "claims", claimed, "reason", refused.Message)
			return Unverified(claimed), nil
		}
		if err == nil || ctx.Err() != nil {
			return by, err
		}
		logger.Warn("checking who signed a webhook change; trying again", "revision", revision, "error", err, "in", pause)
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(pause):
		}
	}
}

// changeGoneAttempts is how many times signedBy looks for a change the
// bucket's stream does not hold (a replica may lag) before it records
// the change as unverified.
const changeGoneAttempts = 5

func (s *Store) verifyChange(ctx context.Context, verifier Verifier, revision uint64, claimed string) (string, error) {
	// From the leader: a replica answering a direct get may not hold a
	// change just stored, which would then be recorded as unverified.
	msg, err := events.LeaderGet(ctx, s.js, "KV_"+BucketName, revision, "")
	if err != nil {
		return "", fmt.Errorf("webhooks: the change at revision %d: %w", revision, err)
	}
	sig, err := events.ReadSignature(msg.Subject, msg.Header, msg.Data)
	if err != nil {
		return "", &events.Rejection{Code: events.CodeUnauthenticated, Message: err.Error()}
	}
	if !sig.Signed() {
		return "", &events.Rejection{Code: events.CodeUnauthenticated, Message: "unsigned"}
	}
	by, err := verifier.VerifyWrite(ctx, sig, msg.Time, claimed)
	if err != nil {
		return "", err
	}
	if err := s.checkWrittenOver(ctx, msg); err != nil {
		return "", err
	}
	return by, nil
}

// checkWrittenOver refuses, as an *events.Rejection, a signed write of a
// definition that was not stored right after the revision its signed
// message id names: a copy of someone's signed change, published again
// over later changes (the signature holds for 5 minutes), must not be
// recorded as theirs.
func (s *Store) checkWrittenOver(ctx context.Context, msg *jetstream.RawStreamMsg) error {
	over, ok := writtenOver(msg.Header.Get(events.HeaderMsgID))
	if !ok {
		return &events.Rejection{Code: events.CodeUnauthenticated, Message: "its signed message id names no revision it was written over"}
	}
	key := strings.TrimPrefix(msg.Subject, "$KV."+BucketName+".")
	entries, err := s.hooks.History(ctx, key)
	if err != nil {
		return fmt.Errorf("webhooks: the history of %s: %w", key, err)
	}
	previous, known := uint64(0), len(entries) < DefinitionHistory
	for _, entry := range entries {
		if entry.Revision() < msg.Sequence {
			previous, known = max(previous, entry.Revision()), true
		}
	}
	if known && previous != over {
		return &events.Rejection{Code: events.CodeUnauthenticated, Message: fmt.Sprintf(
			"it was signed as a change over revision %d, and stored over revision %d: a copy of a signed change published again", over, previous)}
	}
	return nil
}

// recorded is the webhooks aggregate's last event.
type recorded struct {
	sequence uint64
	hash     string
	// revision is the definition revision it records.
	revision uint64
}

// lastRecorded reads the webhooks aggregate's last event.
func lastRecorded(ctx context.Context, log RecordLog) (recorded, error) {
	seq, err := log.LastAppSequence(ctx, events.WebhooksAggregate)
	if err != nil || seq == 0 {
		return recorded{}, err
	}
	history, err := log.Load(ctx, events.WebhooksAggregate, seq-1)
	if err != nil {
		return recorded{}, fmt.Errorf("webhooks: the last change recorded: %w", err)
	}
	if len(history) == 0 {
		return recorded{}, fmt.Errorf("webhooks: the last change recorded (event %d) is gone", seq)
	}
	env := history[len(history)-1]
	return recorded{sequence: env.Sequence, hash: env.Hash, revision: revisionOf(env.Event)}, nil
}

// revisionOf is the definition revision ev records (0 for another event).
func revisionOf(ev events.Event) uint64 {
	switch ev := ev.(type) {
	case events.WebhookAdded:
		return ev.Revision
	case events.WebhookDisabled:
		return ev.Revision
	case events.WebhookEnabled:
		return ev.Revision
	case events.WebhookRemoved:
		return ev.Revision
	}
	return 0
}

// record appends env after last, chained to it, unless another replica
// recorded the same change first; last becomes what was recorded.
func record(ctx context.Context, log RecordLog, last *recorded, env events.Envelope) error {
	revision := revisionOf(env.Event)
	for {
		chained, err := events.Chain(last.hash, []events.Envelope{env})
		if err != nil {
			return err
		}
		_, err = log.Append(ctx, events.WebhooksAggregate, last.sequence, chained)
		var conflict *events.ConflictError
		if errors.As(err, &conflict) {
			if *last, err = lastRecorded(ctx, log); err != nil {
				return err
			}
			if last.revision >= revision {
				return nil // recorded by another replica
			}
			continue
		}
		if err != nil {
			return err
		}
		// Read back: a retry that another replica's append of the same
		// change answered carries that one's hash, not this one's.
		*last, err = lastRecorded(ctx, log)
		return err
	}
}

// changeEvent is the event that records hook's definition as it is at
// revision of the webhook bucket, which stored it at stored: added (never
// changed since), disabled, enabled or removed, at stored (clients write
// the definition, and its times, themselves), by the server's
// webhooks worker (Actor) on behalf of by, its reason without the URL's
// path or query (redactReason). Its causation id is derived from the
// webhook and revision, so that recording the same change twice appends
// it once.
func changeEvent(hook Webhook, by string, revision uint64, stored time.Time) events.Envelope {
	change := events.WebhookChanged{WebhookID: hook.ID, By: by, Reason: redactReason(hook), Revision: revision}
	var ev events.Event
	switch {
	case hook.Status == StatusDisabled:
		ev = events.WebhookDisabled(change)
	case hook.Status == StatusRemoved:
		ev = events.WebhookRemoved(change)
	case hook.ChangedAt != nil:
		ev = events.WebhookEnabled(change)
	default:
		ev = events.WebhookAdded{
			WebhookID: hook.ID, Target: redact(hook.URL), App: hook.App, Events: hook.Events,
			StartSequence: hook.StartSequence, By: by, Revision: revision,
		}
	}
	id := uuid.NewSHA1(uuid.NameSpaceURL, []byte("revline:webhook:"+hook.ID+":"+strconv.FormatUint(revision, 10))).String()
	return events.NewEnvelope(events.WebhooksAggregate, ev, events.Metadata{Actor: Actor, CorrelationID: id, CausationID: id}, stored)
}
