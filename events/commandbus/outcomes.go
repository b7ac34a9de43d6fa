package commandbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/events"
)

// OutcomeLog is the server's durable record of every command's outcome:
// one message per command id, on revline.outcomes.<command id>.<key> in
// REVLINE_OUTCOMES, where key is the name of the token that signed the
// command (events.OutcomeSubject), written once and kept. It is what makes
// an outcome final: whatever the processor told a client is what every
// redelivery and every later retry with the same command id gets, whoever
// sends it.
type OutcomeLog struct {
	js jetstream.JetStream

	mu sync.Mutex
	// legacy is whether the stream held outcomes recorded before they were
	// per key (events.LegacyOutcomeSubject) when first asked, nil until
	// then: Lookup reads that subject too only if so. Asked once: the
	// question walks every outcome subject, and this version writes none
	// there (an older replica still running in a rolling upgrade may:
	// restart the new ones once the last old one has stopped).
	legacy *bool
}

// NewOutcomeLog returns the outcome log on js. The stream must exist
// (EnsureStreams creates it).
func NewOutcomeLog(js jetstream.JetStream) *OutcomeLog { return &OutcomeLog{js: js} }

// Lookup returns the stored outcome of commandID, whatever key it is
// recorded under, or as versions before outcomes were per key recorded it
// (events.LegacyOutcomeSubject) if the stream holds any such; found is
// false when no outcome has been recorded for it. Both reads name the
// command id in a literal prefix, so neither walks other commands'
// outcomes. They go to the stream leader
// (STREAM.MSG.GET, never a direct get, which any replica answers), so an
// outcome recorded before is never missed because a replica lags.
func (l *OutcomeLog) Lookup(ctx context.Context, commandID string) (o events.Outcome, found bool, err error) {
	o, found, err = l.leaderLookup(ctx, events.CommandOutcomes(commandID))
	if found || err != nil {
		return o, found, err
	}
	if legacy, err := l.hasLegacy(ctx); err != nil || !legacy {
		return events.Outcome{}, false, err
	}
	return l.leaderLookup(ctx, events.LegacyOutcomeSubject(commandID))
}

// hasLegacy reports whether the stream holds outcomes recorded before
// they were per key, asking the stream once (see OutcomeLog.legacy).
func (l *OutcomeLog) hasLegacy(ctx context.Context) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.legacy == nil {
		_, err := events.LeaderGet(ctx, l.js, OutcomeStreamName, 0, events.LegacyOutcomeSubject("*"))
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return false, fmt.Errorf("outcomes recorded before they were per key: %w", err)
		}
		found := err == nil
		l.legacy = &found
	}
	return *l.legacy, nil
}

// leaderLookup reads the last outcome on subject (which may hold
// wildcards) from the stream leader.
func (l *OutcomeLog) leaderLookup(ctx context.Context, subject string) (events.Outcome, bool, error) {
	msg, err := events.LeaderGet(ctx, l.js, OutcomeStreamName, 0, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return events.Outcome{}, false, nil
	}
	if err != nil {
		return events.Outcome{}, false, fmt.Errorf("read outcome %s: %w", subject, err)
	}
	o, err := events.DecodeOutcome(msg.Header, msg.Data)
	if err != nil {
		return events.Outcome{}, false, fmt.Errorf("read outcome %s: %w", subject, err)
	}
	return o, true, nil
}

// onlyOutcome makes the stream store msg, an outcome of commandID, only
// if no outcome of commandID is stored under any key: a command id has one
// outcome.
func onlyOutcome(msg *nats.Msg, commandID string) {
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	msg.Header.Set(jetstream.ExpectedLastSubjSeqSubjHeader, events.CommandOutcomes(commandID))
}

// Record stores o, encoded in contentType, under key (the name of the
// token that signed the command, events.OutcomeKey), unless an outcome of
// the same command is stored already, under any key: the write expects no
// message on events.CommandOutcomes, so the first outcome of a command id
// is the only one. It returns the outcome that is stored now and whether
// it is o (false: an earlier one, which the caller must report instead).
// Subscribers of key's outcome subject receive o either way. keepFor, when
// not 0, makes the stream delete the outcome after that long (in whole
// seconds, at least one; see RefusalRetention); 0 keeps it for good.
func (l *OutcomeLog) Record(ctx context.Context, o events.Outcome, key, contentType string, keepFor time.Duration) (stored events.Outcome, recorded bool, err error) {
	msg, err := events.OutcomeMsg(o, key, contentType)
	if err != nil {
		return events.Outcome{}, false, err
	}
	onlyOutcome(msg, o.CommandID)
	if keepFor > 0 {
		msg.Header.Set(jetstream.MsgTTLHeader, max(keepFor.Round(time.Second), time.Second).String())
	}
	_, err = l.js.PublishMsg(ctx, msg)
	if err == nil {
		return o, true, nil
	}
	if !events.IsWrongLastSequence(err) {
		return events.Outcome{}, false, fmt.Errorf("record outcome of %s: %w", o.CommandID, err)
	}
	earlier, found, lerr := l.Lookup(ctx, o.CommandID)
	if lerr != nil {
		return events.Outcome{}, false, lerr
	}
	if !found {
		return events.Outcome{}, false, fmt.Errorf("record outcome of %s: the stream refused it as a second outcome, but holds none", o.CommandID)
	}
	return earlier, false, nil
}

// Announce publishes o on key's outcome subject for the client waiting
// there, without storing it: the outcome of a redelivered or retried
// command, which is stored already (perhaps under another key). The
// expected-sequence headers make the stream, which captures the subject,
// refuse to store it a second time.
func (l *OutcomeLog) Announce(o events.Outcome, key, contentType string) error {
	msg, err := events.OutcomeMsg(o, key, contentType)
	if err != nil {
		return err
	}
	onlyOutcome(msg, o.CommandID)
	if err := l.js.Conn().PublishMsg(msg); err != nil {
		return fmt.Errorf("announce outcome of %s: %w", o.CommandID, err)
	}
	return nil
}

// ownOutcome is a client's lookup of the outcome of one of its commands:
// a direct get of the last message on its outcome subject, which names
// the stream and the subject in the request's own subject
// ($JS.API.DIRECT.GET.REVLINE_OUTCOMES.revline.outcomes.<command id>.<key>),
// so that NATS permissions limit a token to its own outcomes. Any replica
// answers, and one may lag: a client that misses looks again later.
func ownOutcome(ctx context.Context, nc *nats.Conn, key, commandID string) (events.Outcome, bool, error) {
	reply, err := nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+OutcomeStreamName+"."+events.OutcomeSubject(key, commandID), nil)
	if err != nil {
		return events.Outcome{}, false, fmt.Errorf("read outcome of %s: %w", commandID, err)
	}
	if status := reply.Header.Get("Status"); len(reply.Data) == 0 && status != "" {
		if status == "404" {
			return events.Outcome{}, false, nil
		}
		return events.Outcome{}, false, fmt.Errorf("read outcome of %s: status %s %s", commandID, status, reply.Header.Get("Description"))
	}
	o, err := events.DecodeOutcome(reply.Header, reply.Data)
	if err != nil {
		return events.Outcome{}, false, fmt.Errorf("read outcome of %s: %w", commandID, err)
	}
	return o, true, nil
}
