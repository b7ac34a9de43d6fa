package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/revline/revline/events"
	"github.com/revline/revline/events/embedded/embeddedtest"
	"github.com/revline/revline/events/storetest"
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
