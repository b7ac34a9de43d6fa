package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrLogUntrusted is wrapped by the error of an append refused because a
// stream drifted from the configuration Revline gave it (see StreamGuard):
// the log's guarantees (nothing deleted, nothing discarded, nothing
// expired) may no longer hold, so nothing more is written until an
// operator has looked.
var ErrLogUntrusted = errors.New("event log untrusted")

// StreamDrift is how one stream differs from the configuration Revline
// gave it.
type StreamDrift struct {
	Stream string
	// Missing: the stream is gone.
	Missing bool
	// Changes name each protective setting that differs, as
	// "setting: want → got".
	Changes []string
}

// String implements fmt.Stringer.
func (d StreamDrift) String() string {
	if d.Missing {
		return fmt.Sprintf("stream %s is missing", d.Stream)
	}
	return fmt.Sprintf("stream %s changed: %s", d.Stream, strings.Join(d.Changes, ", "))
}

// StreamDriftError reports streams that drifted.
type StreamDriftError struct {
	Drifts []StreamDrift
}

// Error implements the error interface.
func (e *StreamDriftError) Error() string {
	parts := make([]string, len(e.Drifts))
	for i, d := range e.Drifts {
		parts[i] = d.String()
	}
	return strings.Join(parts, "; ")
}

// Unwrap returns ErrLogUntrusted, for errors.Is.
func (e *StreamDriftError) Unwrap() error { return ErrLogUntrusted }

// ConfigDrift compares the protective settings of a stream's actual
// configuration with the wanted one: what it stores (subjects), what it
// keeps (retention, limits, discard, expiry), who may remove messages
// (deny delete, deny purge, rollups), where copies go (replicas, storage,
// republish) and whether it still accepts writes (sealed, no ack).
// Descriptions and settings Revline does not rely on for the log's
// guarantees are not compared. Unlimited is unlimited whether written 0
// or -1.
func ConfigDrift(want, got jetstream.StreamConfig) []string {
	var changes []string
	differ := func(setting string, w, g any) {
		if w != g {
			changes = append(changes, fmt.Sprintf("%s: %v → %v", setting, w, g))
		}
	}
	wantSubjects, gotSubjects := slices.Sorted(slices.Values(want.Subjects)), slices.Sorted(slices.Values(got.Subjects))
	differ("subjects", strings.Join(wantSubjects, " "), strings.Join(gotSubjects, " "))
	differ("retention", want.Retention, got.Retention)
	differ("discard", want.Discard, got.Discard)
	differ("storage", want.Storage, got.Storage)
	differ("replicas", max(want.Replicas, 1), max(got.Replicas, 1))
	differ("max_msgs", unlimited(want.MaxMsgs), unlimited(got.MaxMsgs))
	differ("max_bytes", unlimited(want.MaxBytes), unlimited(got.MaxBytes))
	differ("max_msgs_per_subject", unlimited(want.MaxMsgsPerSubject), unlimited(got.MaxMsgsPerSubject))
	differ("max_msg_size", unlimited(int64(want.MaxMsgSize)), unlimited(int64(got.MaxMsgSize)))
	differ("max_age", want.MaxAge, got.MaxAge)
	differ("deny_delete", want.DenyDelete, got.DenyDelete)
	differ("deny_purge", want.DenyPurge, got.DenyPurge)
	differ("allow_rollup_hdrs", want.AllowRollup, got.AllowRollup)
	differ("allow_msg_ttl", want.AllowMsgTTL, got.AllowMsgTTL)
	differ("sealed", want.Sealed, got.Sealed)
	differ("no_ack", want.NoAck, got.NoAck)
	differ("republish", want.RePublish != nil, got.RePublish != nil)
	return changes
}

// asUntrusted makes sure a write gate's refusal wraps ErrLogUntrusted.
func asUntrusted(err error) error {
	if errors.Is(err, ErrLogUntrusted) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrLogUntrusted, err)
}

// unlimited writes every "no limit" value of a stream limit the same way.
func unlimited(limit int64) int64 {
	if limit <= 0 {
		return -1
	}
	return limit
}

// StreamGuard checks that streams keep the configuration Revline gave
// them. A client without admin rights cannot change a stream (see the
// NATS permissions serve sets up), but an operator of an external cluster,
// a leaked admin credential or a mistaken `nats stream edit` can: the
// guard notices, and while a stream has drifted, Err says how, /healthz
// fails with that reason, and the event store refuses appends (see
// JetStreamStoreConfig.WriteGate) instead of running on silently.
type StreamGuard struct {
	js     jetstream.StreamManager
	want   []jetstream.StreamConfig
	logger *slog.Logger
	// state holds the last check's error, nil while every stream is as
	// wanted (and before the first check).
	state atomic.Pointer[error]
}

// NewStreamGuard returns a guard of the streams want configures.
func NewStreamGuard(js jetstream.StreamManager, logger *slog.Logger, want ...jetstream.StreamConfig) *StreamGuard {
	if logger == nil {
		logger = slog.Default()
	}
	return &StreamGuard{js: js, want: want, logger: logger}
}

// Inspect compares every guarded stream with its wanted configuration and
// returns the drifted ones. It changes nothing and records nothing: at
// start-up, serve inspects before it restores the configuration, to say
// what it restores.
func (g *StreamGuard) Inspect(ctx context.Context) ([]StreamDrift, error) {
	var drifts []StreamDrift
	for _, want := range g.want {
		var info *jetstream.StreamInfo
		err := RetryWhileBusy(ctx, func(attempt context.Context) error {
			stream, err := g.js.Stream(attempt, want.Name)
			if err != nil {
				return err
			}
			info = stream.CachedInfo()
			return nil
		})
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			drifts = append(drifts, StreamDrift{Stream: want.Name, Missing: true})
		case err != nil:
			return nil, fmt.Errorf("inspect stream %s: %w", want.Name, err)
		default:
			if changes := ConfigDrift(want, info.Config); len(changes) > 0 {
				drifts = append(drifts, StreamDrift{Stream: want.Name, Changes: changes})
			}
		}
	}
	return drifts, nil
}

// Check inspects the streams and records the result for Err: a
// *StreamDriftError when a stream drifted. An inspection that fails (NATS
// unreachable) changes nothing: the guard reports drift, not outages.
func (g *StreamGuard) Check(ctx context.Context) error {
	drifts, err := g.Inspect(ctx)
	if err != nil {
		return err
	}
	var found error
	if len(drifts) > 0 {
		found = &StreamDriftError{Drifts: drifts}
	}
	before := g.state.Swap(&found)
	switch {
	case found != nil && (before == nil || *before == nil || (*before).Error() != found.Error()):
		g.logger.Error("the event log's streams drifted from their configuration: appends are refused until it is restored (restart serve to restore it)", "drift", found.Error())
	case found == nil && before != nil && *before != nil:
		g.logger.Info("the streams' configuration is as wanted again: appends resume")
	}
	return found
}

// Err returns the last check's drift, nil when none was found.
func (g *StreamGuard) Err() error {
	if p := g.state.Load(); p != nil {
		return *p
	}
	return nil
}

// Run checks every interval until ctx ends.
func (g *StreamGuard) Run(ctx context.Context, interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if err := g.Check(ctx); err != nil && !errors.Is(err, ErrLogUntrusted) && ctx.Err() == nil {
				g.logger.Warn("checking the streams' configuration", "error", err)
			}
		}
	}
}
