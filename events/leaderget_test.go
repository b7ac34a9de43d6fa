package events_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/embedded/embeddedtest"
)

// LeaderGet reads a message by sequence or as the last on a subject, with
// its headers, even from a stream that allows direct gets; a message the
// stream does not hold is jetstream.ErrMsgNotFound.
func TestLeaderGet(t *testing.T) {
	t.Parallel()
	_, js := embeddedtest.Connect(t, embeddedtest.Start(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "GET", Subjects: []string{"get.>"}, AllowDirect: true}); err != nil {
		t.Fatal(err)
	}
	for _, subject := range []string{"get.a.1", "get.b.1", "get.a.2"} {
		msg := nats.NewMsg(subject)
		msg.Data = []byte(subject)
		msg.Header.Set("Who", "test")
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	bySeq, err := events.LeaderGet(ctx, js, "GET", 2, "")
	if err != nil || bySeq.Subject != "get.b.1" || string(bySeq.Data) != "get.b.1" || bySeq.Header.Get("Who") != "test" || bySeq.Sequence != 2 || bySeq.Time.IsZero() {
		t.Errorf("by sequence: %+v, %v", bySeq, err)
	}
	last, err := events.LeaderGet(ctx, js, "GET", 0, "get.a.*")
	if err != nil || last.Subject != "get.a.2" || last.Sequence != 3 {
		t.Errorf("last on get.a.*: %+v, %v", last, err)
	}
	for _, miss := range []struct {
		seq     uint64
		subject string
	}{{9, ""}, {0, "get.c.*"}} {
		if _, err := events.LeaderGet(ctx, js, "GET", miss.seq, miss.subject); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Errorf("%+v: %v, want not found", miss, err)
		}
	}
}
