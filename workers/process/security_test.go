//go:build linux

package process_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/revline/revline/workers/process"
)

// TestRunnerInheritsNoDescriptors opens descriptors without close-on-exec,
// as a parent of the server might have left them, and checks that a runner
// sees only stdin (/dev/null), stdout and stderr (its log).
func TestRunnerInheritsNoDescriptors(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	fileFD, err := syscall.Open(secret, syscall.O_RDONLY, 0) // no O_CLOEXEC
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fileFD)
	var pipe [2]int
	if err := syscall.Pipe(pipe[:]); err != nil { // pipe2(fds, 0): no O_CLOEXEC
		t.Fatal(err)
	}
	defer syscall.Close(pipe[0])
	defer syscall.Close(pipe[1])
	for _, fd := range []int{fileFD, pipe[0], pipe[1]} {
		if flags, err := fcntlGetFD(fd); err != nil || flags&syscall.FD_CLOEXEC != 0 {
			t.Fatalf("descriptor %d: flags %#x, %v; want no FD_CLOEXEC to start with", fd, flags, err)
		}
	}

	s := newSupervisor(t, t.TempDir())
	p, err := s.Start(process.Spec{RunnerID: "fds", Command: "ls -l /proc/self/fd"})
	if err != nil {
		t.Fatal(err)
	}
	waitDone(ctx, t, p)
	if err := p.ExitErr(); err != nil {
		t.Fatalf("ExitErr() = %v", err)
	}
	b, err := os.ReadFile(p.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	// "lr-x------ 1 u g 64 Nov 26 12:00 3 -> /proc/4242/fd": ls's own
	// listing of the directory it reads is the one more descriptor allowed.
	fds := map[int]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		before, target, ok := strings.Cut(line, " -> ")
		if !ok {
			continue
		}
		f := strings.Fields(before)
		fds[atoi(t, f[len(f)-1])] = target
	}
	if fds[0] != "/dev/null" || fds[1] != p.LogPath() || fds[2] != p.LogPath() {
		t.Errorf("runner's stdin, stdout, stderr = %q, %q, %q; want /dev/null and its log %s", fds[0], fds[1], fds[2], p.LogPath())
	}
	for fd, target := range fds {
		if fd > 2 && !strings.HasPrefix(target, "/proc/") {
			t.Errorf("runner inherited descriptor %d -> %s\nls output:\n%s", fd, target, b)
		}
	}
}

func fcntlGetFD(fd int) (int, error) {
	flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(flags), nil
}
