// Package runnertest builds the runner that tests deploy: echo-runner
// (../testdata/echo-runner), an HTTP server on $PORT that answers with its
// revision, runner id and pid, can be slow (/slow?ms=N), stream
// (/stream?n=N), report its peak concurrency (/stats), crash (/crash) and
// take uploads (/upload); on SIGTERM it drains, dies or ignores the signal
// as $ECHO_RUNNER_SIGTERM says.
package runnertest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// BuildEchoRunner builds echo-runner into dir and returns the binary's
// path. Call it from TestMain, once per test binary.
func BuildEchoRunner(dir string) (string, error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("runnertest: cannot locate the echo-runner sources")
	}
	src := filepath.Join(filepath.Dir(self), "..", "testdata", "echo-runner")
	// A supervisor running as root (as CI may) runs runners as an
	// unprivileged user: it must be able to reach and run the binary.
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", fmt.Errorf("runnertest: %w", err)
	}
	bin := filepath.Join(dir, "echo-runner")
	if out, err := exec.Command("go", "build", "-o", bin, src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("runnertest: build echo-runner: %w\n%s", err, out)
	}
	return bin, nil
}
