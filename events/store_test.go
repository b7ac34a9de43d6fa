package events_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/revline/revline/events"
	"github.com/revline/revline/events/embedded/embeddedtest"
	"github.com/revline/revline/events/storetest"
	"github.com/revline/revline/internal/testsupport"
)

func TestMemoryStoreContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(*testing.T) events.Store { return events.NewMemoryStore() })
}

func TestJetStreamStoreContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) events.Store {
		_, js := embeddedtest.Connect(t, embeddedtest.Start(t))
		store, err := events.NewJetStreamStore(context.Background(), events.JetStreamStoreConfig{JetStream: js})
		if err != nil {
			t.Fatal(err)
		}
		return store
	})
}

// The same contract on a 3-node cluster with R3 streams, where a conflict
// may come back as 10164 and a retried publish as a duplicate: a retried
// command must still have exactly one effect.
func TestJetStreamStoreContractOnCluster(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	servers := embeddedtest.StartCluster(t, 3)
	nc, err := nats.Connect(embeddedtest.ClusterURL(servers))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := events.NewJetStreamStore(ctx, events.JetStreamStoreConfig{JetStream: js, Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	// Every test of the suite uses app names of its own, so they share the
	// cluster's store.
	storetest.Run(t, func(*testing.T) events.Store { return store })
}

// A message with no event type (a stray JetStream acknowledgement) is
// skipped by a follower without a warning; an event that cannot be decoded
// is skipped with one.
func TestFollowWarnsOnlyOfUndecodableEvents(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.Start(t)
	nc, js := embeddedtest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var logs testsupport.SyncBuffer
	store, err := events.NewJetStreamStore(ctx, events.JetStreamStoreConfig{JetStream: js, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish(events.EventSubject("web", "app.scaled"), []byte(`{"stream":"REVLINE_COMMANDS","seq":7}`)); err != nil {
		t.Fatal(err)
	}
	junk := nats.NewMsg(events.EventSubject("web", "app.scaled"))
	junk.Header.Set(events.HeaderEventType, "app.scaled")
	junk.Data = []byte("not msgpack")
	if err := nc.PublishMsg(junk); err != nil {
		t.Fatal(err)
	}
	skipped := 0
	err = store.Follow(ctx, 1, func(env events.Envelope, decodeErr error) error {
		if decodeErr != nil {
			skipped++
		}
		if env.Sequence == 1 && logs.String() != "" {
			t.Errorf("a message with no event type was logged: %s", logs.String())
		}
		if env.Sequence == 2 {
			return context.Canceled
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || skipped != 2 {
		t.Fatalf("follow: %v, %d skipped; want both messages skipped", err, skipped)
	}
	if !strings.Contains(logs.String(), "undecodable event") || strings.Count(logs.String(), "\n") != 1 {
		t.Fatalf("log %q; want one warning, of the undecodable event", logs.String())
	}
}
