package commandbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/events"
)

// OutcomeLog is the durable record of every command's outcome: one message
// per command id on revline.outcomes.<command id> in REVLINE_OUTCOMES,
// written once and kept. It is what makes an outcome final: whatever the
// processor told a client is what every redelivery and every later retry
// with the same command id gets.
type OutcomeLog struct {
	js jetstream.JetStream

	mu     sync.Mutex
	stream jetstream.Stream
}

// NewOutcomeLog returns the outcome log on js. The stream must exist
// (EnsureStreams creates it).
func NewOutcomeLog(js jetstream.JetStream) *OutcomeLog { return &OutcomeLog{js: js} }

// Lookup returns the stored outcome of commandID; found is false when no
// outcome has been recorded for it. The read goes to the stream leader (the
// stream has no direct gets), so an outcome recorded before is never missed
// because a replica lags.
func (l *OutcomeLog) Lookup(ctx context.Context, commandID string) (o events.Outcome, found bool, err error) {
	stream, err := l.outcomeStream(ctx)
	if err != nil {
		return events.Outcome{}, false, err
	}
	raw, err := stream.GetLastMsgForSubject(ctx, events.OutcomeSubject(commandID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return events.Outcome{}, false, nil
	}
	if err != nil {
		return events.Outcome{}, false, fmt.Errorf("read outcome of %s: %w", commandID, err)
	}
	o, err = events.DecodeOutcome(raw.Header, raw.Data)
	if err != nil {
		return events.Outcome{}, false, fmt.Errorf("read outcome of %s: %w", commandID, err)
	}
	return o, true, nil
}

// Record stores o, encoded in contentType, unless an outcome of the same
// command is stored already: the write carries an expected last subject
// sequence of 0, so the first outcome of a command id is the only one. It
// returns the outcome that is stored now and whether it is o (false: an
// earlier one, which the caller must report instead). Subscribers of the
// outcome subject receive o either way. keepFor, when not 0, makes the
// stream delete the outcome after that long (in whole seconds, at least one;
// see RefusalRetention); 0 keeps it for good.
func (l *OutcomeLog) Record(ctx context.Context, o events.Outcome, contentType string, keepFor time.Duration) (stored events.Outcome, recorded bool, err error) {
	msg, err := events.OutcomeMsg(o, contentType)
	if err != nil {
		return events.Outcome{}, false, err
	}
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
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

// Announce publishes o on its outcome subject for clients waiting there,
// without storing it: the outcome of a redelivered or retried command,
// which is stored already. The expected-sequence header makes the stream,
// which captures the subject, refuse to store it a second time.
func (l *OutcomeLog) Announce(o events.Outcome, contentType string) error {
	msg, err := events.OutcomeMsg(o, contentType)
	if err != nil {
		return err
	}
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	if err := l.js.Conn().PublishMsg(msg); err != nil {
		return fmt.Errorf("announce outcome of %s: %w", o.CommandID, err)
	}
	return nil
}

// outcomeStream returns the outcome stream, looked up once.
func (l *OutcomeLog) outcomeStream(ctx context.Context) (jetstream.Stream, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stream == nil {
		stream, err := l.js.Stream(ctx, OutcomeStreamName)
		if err != nil {
			return nil, fmt.Errorf("outcome stream: %w", err)
		}
		l.stream = stream
	}
	return l.stream, nil
}
