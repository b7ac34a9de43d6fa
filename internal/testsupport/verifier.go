package testsupport

import (
	"context"

	"github.com/revline/revline/events"
)

// TrustActor is a command processor's Verifier for tests that own their
// bus and test something else: it checks nothing and records the
// Revline-Actor header as sent. `revline serve` verifies signatures
// (auth.Store); never use this outside tests.
type TrustActor struct{}

// Verify returns the actor the command claims.
func (TrustActor) Verify(_ context.Context, c events.SignedCommand) (string, error) {
	return c.Command.Actor, nil
}
