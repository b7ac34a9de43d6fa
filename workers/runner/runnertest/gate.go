package runnertest

import (
	"os"
	"path/filepath"
	"testing"
)

// Gate holds runners back: a runner started with Gate.Command does not
// listen until the test opens the gate, so that its deploy stays in
// flight for as long as the test needs, without a sleep.
type Gate struct{ path string }

// NewGate returns a closed gate, a file to be in a t.TempDir() that runners
// (run as an unprivileged user when the supervisor runs as root) can see.
// The test's cleanup opens it, so that no runner waits past the test.
func NewGate(t testing.TB) Gate {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	g := Gate{path: filepath.Join(dir, "open")}
	t.Cleanup(func() { g.Open(t) })
	return g
}

// Command is a shell command line that waits until the gate is open, then
// runs command in its place.
func (g Gate) Command(command string) string {
	return "while [ ! -e '" + g.path + "' ]; do sleep 0.05; done; exec " + command
}

// Open lets the runners through.
func (g Gate) Open(t testing.TB) {
	t.Helper()
	if err := os.WriteFile(g.path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Close holds the runners started from now on back again.
func (g Gate) Close(t testing.TB) {
	t.Helper()
	if err := os.Remove(g.path); err != nil {
		t.Fatal(err)
	}
}
