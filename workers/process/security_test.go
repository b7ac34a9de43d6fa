//go:build linux

package process_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/revline/revline/workers/process"
)

// TestRunnerInheritsNoDescriptors opens descriptors without close-on-exec,
// as a parent of the server might have left them, and checks that a runner
// sees only stdin (/dev/null), stdout and stderr (its log). Not parallel:
// a supervisor starting a runner in another test marks every descriptor of
// the process close-on-exec, this test's included, before it could check
// that it starts without.
func TestRunnerInheritsNoDescriptors(t *testing.T) {
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
	p, err := s.Start(process.Spec{App: "web", RunnerID: "fds", Command: "ls -l /proc/self/fd"})
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
	// Its output goes on a pipe the supervisor copies into the log: the
	// runner never holds its log file (to truncate it, or write past its
	// size limit).
	if fds[0] != "/dev/null" || !strings.HasPrefix(fds[1], "pipe:") || fds[2] != fds[1] {
		t.Errorf("runner's stdin, stdout, stderr = %q, %q, %q; want /dev/null and one pipe", fds[0], fds[1], fds[2])
	}
	for fd, target := range fds {
		if fd > 2 && !strings.HasPrefix(target, "/proc/") {
			t.Errorf("runner inherited descriptor %d -> %s\nls output:\n%s", fd, target, b)
		}
	}
}

// testRunnerID is a runner id made of t's name, unique among the tests.
func testRunnerID(t *testing.T) string {
	id := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(t.Name()))
	return id[max(0, len(id)-64):]
}

func fcntlGetFD(fd int) (int, error) {
	flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(flags), nil
}

// identity is what a runner reports about itself (see identityCommand).
type identity struct {
	uid, gid int
	groups   []int
	pwd      string
	home     string
	wrote    bool // it could write to its working directory
	read     bool // it could read the secret
}

// identityCommand prints who the runner is, where it runs, and whether it
// can write there and read secret.
func identityCommand(secret string) string {
	return fmt.Sprintf(`echo uid=$(id -u); echo gid=$(id -g); echo groups=$(id -G); echo pwd=$(pwd); echo home=$HOME
touch ./written && echo wrote=yes
cat %s >/dev/null 2>&1 && echo read=yes
exit 0`, shQuote(secret))
}

// runIdentity runs identityCommand under a supervisor configured with cfg
// and returns what the runner reported.
func runIdentity(t *testing.T, cfg process.Config) (identity, *process.Process) {
	t.Helper()
	ctx := testContext(t)
	secret := filepath.Join(cfg.StateDir, "secret")
	if err := os.WriteFile(secret, []byte("data/nats"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newSupervisorConfig(t, cfg)
	// Each call's runner has an id of its own: the subtests run in parallel
	// in one process, and a supervisor takes a child of this process that
	// carries its runner's id for its runner's (ids are unique in practice).
	p, err := s.Start(process.Spec{App: "web", RunnerID: testRunnerID(t), Command: identityCommand(secret)})
	if err != nil {
		t.Fatal(err)
	}
	_, vars := runnerOutput(ctx, t, p)
	id := identity{uid: atoi(t, vars["uid"]), gid: atoi(t, vars["gid"]), pwd: vars["pwd"], home: vars["home"]}
	for g := range strings.FieldsSeq(vars["groups"]) {
		id.groups = append(id.groups, atoi(t, g))
	}
	_, id.wrote = vars["wrote"]
	_, id.read = vars["read"]
	if _, err := os.Stat(p.WorkDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("working directory %s after the runner is done: %v, want it removed", p.WorkDir(), err)
	}
	return id, p
}

// runnerOutput waits until p is done, checks that it exited with status 0
// and returns its log and the values of its KEY=VALUE lines, by key.
func runnerOutput(ctx context.Context, t *testing.T, p *process.Process) (string, map[string]string) {
	t.Helper()
	waitDone(ctx, t, p)
	b, err := os.ReadFile(p.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ExitErr(); err != nil {
		t.Fatalf("ExitErr() = %v; log:\n%s", err, b)
	}
	vars := map[string]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		if key, value, ok := strings.Cut(line, "="); ok {
			vars[key] = value
		}
	}
	return string(b), vars
}

func TestRunnerUserWhenRoot(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skipf("the tests run as uid %d, not root: the supervisor cannot switch users, and runners run as the supervisor's user (TestRunnerUserWhenNotRoot)", os.Geteuid())
	}
	t.Run("default user", func(t *testing.T) {
		t.Parallel()
		id, p := runIdentity(t, process.Config{StateDir: t.TempDir()})
		r := process.DefaultRunnerUIDs
		if id.uid < int(r.First) || id.uid > int(r.Last) || id.uid != p.UID() || id.gid != id.uid || !slices.Equal(id.groups, []int{id.gid}) {
			t.Errorf("runner runs as uid %d (UID() %d), gid %d, groups %v; want a uid of %s, its group of the same number and no other", id.uid, p.UID(), id.gid, id.groups, r)
		}
		if id.read {
			t.Error("runner read a file of the supervisor's state directory")
		}
		if !id.wrote || id.pwd != p.WorkDir() || id.home != p.WorkDir() {
			t.Errorf("runner in %q (HOME %q), wrote there: %v; want its working directory %s, writable", id.pwd, id.home, id.wrote, p.WorkDir())
		}
	})
	t.Run("numeric user", func(t *testing.T) {
		t.Parallel()
		id, _ := runIdentity(t, process.Config{StateDir: t.TempDir(), RunnerUser: "4242:4343"})
		if id.uid != 4242 || id.gid != 4343 || !slices.Equal(id.groups, []int{4343}) || !id.wrote || id.read {
			t.Errorf("runner = %+v; want uid 4242, gid 4343, no other group, writing its directory, not reading the secret", id)
		}
	})
	t.Run("root allowed", func(t *testing.T) {
		t.Parallel()
		id, _ := runIdentity(t, process.Config{StateDir: t.TempDir(), AllowRootRunners: true})
		if id.uid != 0 || !id.read {
			t.Errorf("runner = %+v; want root, as allowed", id)
		}
	})
	t.Run("root refused", func(t *testing.T) {
		t.Parallel()
		for _, user := range []string{"root", "0", "0:0"} {
			if _, err := process.NewSupervisor(process.Config{StateDir: t.TempDir(), RunnerUser: user}); err == nil || !strings.Contains(err.Error(), "root") {
				t.Errorf("NewSupervisor with RunnerUser %q = %v; want an error about root", user, err)
			}
		}
		if _, err := process.NewSupervisor(process.Config{StateDir: t.TempDir(), RunnerUser: "no-such-user-revline"}); err == nil {
			t.Error("NewSupervisor with an unknown RunnerUser: want error")
		}
	})
}

func TestRunnerUserWhenNotRoot(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("the tests run as root: TestRunnerUserWhenRoot covers the privilege drop")
	}
	id, p := runIdentity(t, process.Config{StateDir: t.TempDir(), RunnerUser: strconv.Itoa(os.Geteuid())})
	if id.uid != os.Geteuid() || !id.wrote || id.pwd != p.WorkDir() {
		t.Errorf("runner = %+v; want uid %d in its writable working directory %s", id, os.Geteuid(), p.WorkDir())
	}
	if _, err := process.NewSupervisor(process.Config{StateDir: t.TempDir(), RunnerUser: "0"}); err == nil {
		t.Error("NewSupervisor not as root with RunnerUser 0: want an error (it cannot switch users)")
	}
	if _, err := process.NewSupervisor(process.Config{StateDir: t.TempDir(), RunnerUIDs: process.DefaultRunnerUIDs}); err == nil {
		t.Error("NewSupervisor not as root with RunnerUIDs: want an error (it cannot switch users)")
	}
}
