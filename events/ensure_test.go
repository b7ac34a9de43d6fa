package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/events/embedded/embeddedtest"
)

// updateRequests counts the stream updates asked of the server since it
// was made: a copy of each request reaches its subscription before the
// request's answer reaches the same connection.
func updateRequests(t *testing.T, nc *nats.Conn) func() int {
	t.Helper()
	sub, err := nc.SubscribeSync("$JS.API.STREAM.UPDATE.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return func() int {
		n, _, err := sub.Pending()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// A stream, bucket or object store already configured as Revline wants
// is not updated
// (an update rewrites its store, which nats-server does not guard against
// a consumer being made at the same moment); one that differs is.
func TestEnsureUpdatesOnlyWhatDiffers(t *testing.T) {
	t.Parallel()
	nc, js := embeddedtest.Connect(t, embeddedtest.Start(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	updates := updateRequests(t, nc)
	streams := append(commandbus.StreamConfigs(1), events.EventStreamConfig(1))
	buckets := []jetstream.KeyValueConfig{
		{Bucket: "LIMITED", Description: "a bucket", History: 1, MaxValueSize: 4 << 10, Storage: jetstream.FileStorage, Replicas: 1},
		{Bucket: "HISTORY", History: 16, TTL: time.Hour},
	}
	ensureAll := func() {
		t.Helper()
		for _, cfg := range streams {
			if _, err := events.EnsureStream(ctx, js, cfg); err != nil {
				t.Fatal(err)
			}
		}
		for _, cfg := range buckets {
			if _, err := events.EnsureKeyValue(ctx, js, cfg); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := events.EnsureReadModelStore(ctx, js, 1); err != nil {
			t.Fatal(err)
		}
	}
	ensureAll() // creates them (nats.go asks for an update first)
	made := updates()
	ensureAll()
	if n := updates() - made; n != 0 {
		t.Fatalf("%d updates of streams and buckets configured so already", n)
	}

	streams[0].MaxAge += time.Hour
	buckets[1].History = 8
	ensureAll()
	if n := updates() - made; n != 2 {
		t.Errorf("%d updates after one stream and one bucket changed, want 2", n)
	}
	stream, err := js.Stream(ctx, streams[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	if got := stream.CachedInfo().Config.MaxAge; got != streams[0].MaxAge {
		t.Errorf("max age %s, want %s", got, streams[0].MaxAge)
	}
	kv, err := js.KeyValue(ctx, "HISTORY")
	if err != nil {
		t.Fatal(err)
	}
	if status, err := kv.Status(ctx); err != nil || status.History() != 8 {
		t.Errorf("history %v (%v), want 8", status, err)
	}

	// Settings Revline leaves unset, set behind its back, are unset again:
	// a protective one, one that changes what a stream stores, a bucket's
	// expiry.
	tampered := streams[1]
	tampered.AllowRollup, tampered.Compression = true, jetstream.S2Compression
	if _, err := js.UpdateStream(ctx, tampered); err != nil {
		t.Fatal(err)
	}
	if _, err := events.EnsureStream(ctx, js, streams[1]); err != nil {
		t.Fatal(err)
	}
	if stream, err := js.Stream(ctx, streams[1].Name); err != nil || stream.CachedInfo().Config.AllowRollup || stream.CachedInfo().Config.Compression != jetstream.NoCompression {
		t.Errorf("a rollup or compression set behind Revline's back stays set (%v)", err)
	}
	expiring := buckets[0]
	expiring.TTL = time.Minute
	if _, err := js.UpdateKeyValue(ctx, expiring); err != nil {
		t.Fatal(err)
	}
	if _, err := events.EnsureKeyValue(ctx, js, buckets[0]); err != nil {
		t.Fatal(err)
	}
	kv, err = js.KeyValue(ctx, buckets[0].Bucket)
	if err != nil {
		t.Fatal(err)
	}
	if status, err := kv.Status(ctx); err != nil || status.TTL() != 0 {
		t.Errorf("an expiry set behind Revline's back stays: %v (%v)", status.TTL(), err)
	}
}
