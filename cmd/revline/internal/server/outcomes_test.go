package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/revline/revline/cmd/revline/internal/server"
	"github.com/revline/revline/cmd/revline/internal/servertest"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
)

// A token hears the outcomes of its own commands, and no other token's:
// NATS refuses a subscription to another token's outcome subjects and a
// lookup of them, by direct get (the subject is in the request's) or by
// a get from the leader (the subject is in its body).
func TestATokenReadsOnlyItsOwnOutcomes(t *testing.T) {
	t.Parallel()
	addrs := servertest.Serve(t, server.Config{})
	asClient(t, addrs)("deploy", "web", "--command", runnerBin)
	a := attacker(t, addrs)
	alice, bob := a.token("alice", "operator"), a.token("bob", "operator")
	asAlice, asBob := mustConnectAs(t, addrs, alice), mustConnectAs(t, addrs, bob)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seconds := events.Seconds(77)
	cmd := events.NewCommand("web", events.Scale{Runtime: events.RuntimeOverrides{KeepAlive: &seconds}}, events.Metadata{})
	aliceClient := commandbus.NewClient(asAlice.js, commandbus.WithSigner(alice))
	if o, err := aliceClient.Execute(ctx, cmd); err != nil || o.Status != events.OutcomeAccepted {
		t.Fatalf("alice's scale: %+v, %v", o, err)
	}
	// Alice looks it up again (from the stream: it was published before).
	if o, err := aliceClient.Await(ctx, cmd.CommandID); err != nil || o.Status != events.OutcomeAccepted || o.CommandID != cmd.CommandID {
		t.Fatalf("alice's lookup of her outcome: %+v, %v", o, err)
	}

	for _, subject := range []string{
		events.KeyOutcomes("alice"),
		events.OutcomeSubject("alice", cmd.CommandID),
		events.CommandOutcomes(cmd.CommandID),
		events.OutcomeSubjectPrefix + ">",
	} {
		if _, err := asBob.nc.SubscribeSync(subject); err != nil {
			t.Fatal(err)
		}
		expectViolation(t, asBob.violations, "bob subscribing to "+subject)
	}
	for _, get := range []struct{ subject, body string }{
		{"$JS.API.DIRECT.GET." + commandbus.OutcomeStreamName + "." + events.OutcomeSubject("alice", cmd.CommandID), ""},
		{"$JS.API.DIRECT.GET." + commandbus.OutcomeStreamName + "." + events.CommandOutcomes(cmd.CommandID), ""},
		{"$JS.API.DIRECT.GET." + commandbus.OutcomeStreamName, `{"last_by_subj":"` + events.OutcomeSubject("alice", cmd.CommandID) + `"}`},
		{"$JS.API.STREAM.MSG.GET." + commandbus.OutcomeStreamName, `{"last_by_subj":"` + events.OutcomeSubject("alice", cmd.CommandID) + `"}`},
		{"$JS.API.STREAM.MSG.GET." + commandbus.OutcomeStreamName, `{"seq":1}`},
	} {
		if _, err := asBob.nc.RequestWithContext(refusedWithin(t), get.subject, []byte(get.body)); err == nil {
			t.Errorf("bob got an answer from %s %s", get.subject, get.body)
		}
		expectViolation(t, asBob.violations, "bob's get on "+get.subject+" "+get.body)
	}
	// Under his own key the command id has no outcome.
	shortly, cancelShortly := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShortly()
	if o, err := commandbus.NewClient(asBob.js, commandbus.WithSigner(bob)).Await(shortly, cmd.CommandID); !errors.Is(err, commandbus.ErrNoOutcomeYet) {
		t.Errorf("bob awaiting alice's command: %+v, %v; want no outcome", o, err)
	}
	select {
	case err := <-asBob.violations:
		t.Errorf("bob's own lookups: %v", err)
	default:
	}
}
