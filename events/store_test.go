package events_test

import (
	"context"
	"testing"

	"github.com/revline/revline/events"
	"github.com/revline/revline/events/embedded"
	"github.com/revline/revline/events/storetest"
)

func TestMemoryStoreContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(*testing.T) events.Store { return events.NewMemoryStore() })
}

func TestJetStreamStoreContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) events.Store {
		_, js := embedded.ConnectForTest(t, embedded.StartForTest(t))
		store, err := events.NewJetStreamStore(context.Background(), events.JetStreamStoreConfig{JetStream: js})
		if err != nil {
			t.Fatal(err)
		}
		return store
	})
}
