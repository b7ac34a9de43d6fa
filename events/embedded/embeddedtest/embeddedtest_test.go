package embeddedtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/revline/revline/events/embedded/embeddedtest"
)

// A cluster handed back by StartCluster takes an R3 stream at once:
// every peer is online and known to the meta leader, so placement cannot
// fail with "no suitable peers for placement, peer offline".
func TestStartClusterPlacesR3StreamAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	servers := embeddedtest.StartCluster(t, 3)
	nc, err := nats.Connect(embeddedtest.ClusterURL(servers))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, name := range []string{"R3_A", "R3_B"} {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Replicas: 3}); err != nil {
			t.Fatalf("create R3 stream %s right after StartCluster: %v", name, err)
		}
	}
}
