// Package testsupport holds helpers shared by the tests of every package.
// Only tests import it: it is never linked into the revline binary.
package testsupport

import (
	"context"
	"testing"
	"time"
)

// Eventually polls cond, for a condition no notification tells about,
// until it holds; it fails the test if ctx ends first.
func Eventually(ctx context.Context, t testing.TB, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting until %s", what)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
