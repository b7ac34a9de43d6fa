package webhooks

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/embedded/embeddedtest"
)

// serverStore is a webhook store as serve ensures it, on a NATS server of
// its own, with a context that ends with the test (or in 30 s).
func serverStore(t *testing.T) (*Store, jetstream.JetStream, context.Context) {
	t.Helper()
	_, js := embeddedtest.Connect(t, embeddedtest.Start(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	s, err := Ensure(ctx, js, 1, Policy{})
	if err != nil {
		t.Fatal(err)
	}
	return s, js, ctx
}

// refuseAll verifies nothing; the change it is asked about is gone first.
type refuseAll struct{}

func (refuseAll) VerifyWrite(context.Context, events.Signature, time.Time, string) (string, error) {
	return "", &events.Rejection{Code: events.CodeUnauthenticated, Message: "no"}
}

// A change the bucket's history no longer holds (dropped while the
// recorder was behind) is recorded as unverified after a few looks,
// instead of holding up every later change.
func TestAChangeGoneFromTheBucketIsRecordedUnverified(t *testing.T) {
	t.Parallel()
	s, _, ctx := serverStore(t)
	by, err := s.signedBy(ctx, refuseAll{}, 999, "mallory", slog.New(slog.DiscardHandler))
	if err != nil || by != Unverified("mallory") {
		t.Fatalf("by %q, error %v; want %q", by, err, Unverified("mallory"))
	}
}

// A signed change published again later, over other changes, is not
// recorded as its signer's: within the bucket's duplicate window the
// stream drops the copy (same message id); past it, the signed id names
// a revision the copy was not stored over.
func TestACopyOfASignedChangeIsNotItsSigners(t *testing.T) {
	t.Parallel()
	s, js, ctx := serverStore(t)
	s.SignWith(events.NewSigner("serve", "rvl_serve_secret"))
	hook := Webhook{ID: "0123456789ab", URL: "https://example.com/hook", Status: StatusActive, CreatedBy: "alice", CreatedAt: time.Now()}
	if err := s.writeDefinition(ctx, hook, 0); err != nil {
		t.Fatal(err)
	}
	disabled, err := s.SetStatus(ctx, hook.ID, StatusDisabled, "http:carol", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, disabledAt, err := s.Get(ctx, hook.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetStatus(ctx, hook.ID, StatusActive, "http:dave", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	copied, err := events.LeaderGet(ctx, js, "KV_"+BucketName, disabledAt, "")
	if err != nil || disabled.ChangedBy != "http:carol" {
		t.Fatalf("the disable's message: %+v, %v", copied, err)
	}
	if err := s.checkWrittenOver(ctx, copied); err != nil {
		t.Fatalf("the disable itself, where it was stored: %v", err)
	}

	// Published again at once: the stream drops it.
	again := nats.NewMsg(copied.Subject)
	again.Header, again.Data = copied.Header, copied.Data
	again.Header.Del(jetstream.ExpectedLastSubjSeqHeader)
	ack, err := js.PublishMsg(ctx, again)
	if err != nil || !ack.Duplicate {
		t.Fatalf("the copy published again: %+v, %v; want dropped as a duplicate", ack, err)
	}
	// Past the window it would be stored over the enable: refused.
	_, latest, err := s.Get(ctx, hook.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored := *copied
	stored.Sequence = latest + 1
	var refused *events.Rejection
	if err := s.checkWrittenOver(ctx, &stored); !errors.As(err, &refused) {
		t.Fatalf("the copy stored over the enable: %v, want a rejection", err)
	}
}
