package server

import (
	"path/filepath"
	"sync"
	"testing"
)

// Two processes making the identities of a new data directory at once (a
// serve and a nats-config) end with the same ones.
func TestIdentitiesAreMadeOnce(t *testing.T) {
	t.Parallel()
	for range 20 {
		path := filepath.Join(t.TempDir(), "client.nk")
		var wg sync.WaitGroup
		ids := make([]identity, 8)
		errs := make([]error, 8)
		for i := range ids {
			wg.Go(func() { ids[i], errs[i] = loadIdentity(path) })
		}
		wg.Wait()
		for i := range ids {
			if errs[i] != nil || ids[i].publicKey != ids[0].publicKey {
				t.Fatalf("loader %d: %s, %v; loader 0: %s", i, ids[i].publicKey, errs[i], ids[0].publicKey)
			}
		}
	}
}
