package events_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/revline/revline/events"
	"github.com/revline/revline/events/embedded/embeddedtest"
)

func TestConfigDriftNamesEachProtectiveChange(t *testing.T) {
	t.Parallel()
	want := events.EventStreamConfig(1)
	if changes := events.ConfigDrift(want, want); len(changes) != 0 {
		t.Fatalf("a configuration drifted from itself: %v", changes)
	}
	// The server writes "no limit" as -1 where Revline leaves 0, and
	// descriptions are not the log's guarantees.
	same := want
	same.MaxMsgs, same.MaxBytes, same.MaxMsgSize, same.Description = -1, -1, -1, "edited"
	if changes := events.ConfigDrift(want, same); len(changes) != 0 {
		t.Errorf("unlimited written as -1 or a new description counted as drift: %v", changes)
	}
	tampered := want
	tampered.Discard, tampered.MaxMsgs, tampered.DenyDelete = jetstream.DiscardOld, 1, false
	changes := events.ConfigDrift(want, tampered)
	joined := strings.Join(changes, "; ")
	for _, setting := range []string{"discard", "max_msgs: -1 → 1", "deny_delete: true → false"} {
		if !strings.Contains(joined, setting) {
			t.Errorf("drift %q does not name %q", joined, setting)
		}
	}
	if len(changes) != 3 {
		t.Errorf("got %d changes, want 3: %v", len(changes), changes)
	}
}

// A stream edited behind Revline's back makes the guard report it and the
// store refuse appends; restoring the configuration lifts both. A deleted
// stream is reported as missing.
func TestStreamGuardStopsAppendsWhileTheLogDrifted(t *testing.T) {
	t.Parallel()
	_, js := embeddedtest.Connect(t, embeddedtest.Start(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	guard := events.NewStreamGuard(js, slog.New(slog.DiscardHandler), events.EventStreamConfig(1))
	store, err := events.NewJetStreamStore(ctx, events.JetStreamStoreConfig{JetStream: js, WriteGate: guard.Err})
	if err != nil {
		t.Fatal(err)
	}
	appendOne := func(expected uint64) (events.AppendResult, error) {
		id := uuid.NewString()
		env := events.NewEnvelope("web", events.AppSuspended{}, events.Metadata{Actor: "test", CorrelationID: id, CausationID: id}, time.Now())
		return store.Append(ctx, "web", expected, []events.Envelope{env})
	}
	if err := guard.Check(ctx); err != nil {
		t.Fatalf("a fresh stream drifted: %v", err)
	}
	first, err := appendOne(0)
	if err != nil {
		t.Fatal(err)
	}

	tampered := events.EventStreamConfig(1)
	tampered.Discard, tampered.MaxMsgs = jetstream.DiscardOld, 1
	if _, err := js.UpdateStream(ctx, tampered); err != nil {
		t.Fatal(err)
	}
	err = guard.Check(ctx)
	var drift *events.StreamDriftError
	if !errors.As(err, &drift) || !errors.Is(err, events.ErrLogUntrusted) || !strings.Contains(err.Error(), "discard") || !strings.Contains(err.Error(), "max_msgs") {
		t.Fatalf("check after tampering: %v", err)
	}
	if guard.Err() == nil {
		t.Fatal("Err is nil after a drift was found")
	}
	if _, err := appendOne(first.LastSequence); !errors.Is(err, events.ErrLogUntrusted) {
		t.Fatalf("append while drifted: %v, want ErrLogUntrusted", err)
	}

	if _, err := js.UpdateStream(ctx, events.EventStreamConfig(1)); err != nil {
		t.Fatal(err)
	}
	if err := guard.Check(ctx); err != nil || guard.Err() != nil {
		t.Fatalf("check after restoring: %v, Err %v", err, guard.Err())
	}
	if _, err := appendOne(first.LastSequence); err != nil {
		t.Fatalf("append after restoring: %v", err)
	}

	if err := js.DeleteStream(ctx, events.EventStreamName); err != nil {
		t.Fatal(err)
	}
	if err := guard.Check(ctx); !errors.As(err, &drift) || len(drift.Drifts) != 1 || !drift.Drifts[0].Missing {
		t.Fatalf("check after deleting the stream: %v", err)
	}
}
