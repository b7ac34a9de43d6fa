package webhooks

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/revline/revline/events"
	"github.com/revline/revline/events/embedded/embeddedtest"
)

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
	_, js := embeddedtest.Connect(t, embeddedtest.Start(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Ensure(ctx, js, 1, Policy{})
	if err != nil {
		t.Fatal(err)
	}
	by, err := s.signedBy(ctx, refuseAll{}, 999, "mallory", slog.New(slog.DiscardHandler))
	if err != nil || by != Unverified("mallory") {
		t.Fatalf("by %q, error %v; want %q", by, err, Unverified("mallory"))
	}
}
