//go:build linux

package process_test

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/workers/process"
)

// secretVar is the variable through which the tests give a runner a secret,
// as the runner worker gives apps theirs; the serve helper reports it.
const secretVar = "EXTRA"

// requireRoot skips t unless the tests run as root, the only case where the
// supervisor can run runners as other users.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("the tests run as uid %d, not root: the supervisor cannot switch users, and every runner runs as the supervisor's user", os.Geteuid())
	}
}

// probe is what a runner found when it went after another runner.
type probe struct {
	uid       int
	environ   bool   // it read the other's /proc/PID/environ
	signalled bool   // it sent the other SIGTERM
	listed    bool   // it listed the other's working directory
	log       string // everything it printed
}

// probeCommand goes after target as an attacker among the runners would:
// it reads target's environment, greps every environment in /proc for the
// secret variable and prints what it finds, sends target SIGTERM and lists
// target's working directory.
func probeCommand(target *process.Process) string {
	return fmt.Sprintf(`pid=%d
cat /proc/$pid/environ >/dev/null 2>&1 && echo environ=read
grep -a -h -o '%s=[[:print:]]*' /proc/[0-9]*/environ 2>/dev/null
kill -TERM $pid 2>/dev/null && echo signal=sent
ls %s >/dev/null 2>&1 && echo workdir=listed
echo uid=$(id -u)
exit 0`, target.PID(), secretVar, shQuote(target.WorkDir()))
}

// runProbe runs probeCommand against target as runner id of s, until it
// is done, and returns what it found.
func runProbe(t *testing.T, s *process.Supervisor, id string, target *process.Process) (probe, *process.Process) {
	t.Helper()
	p, err := s.Start(process.Spec{RunnerID: id, App: "app-b", Command: probeCommand(target)})
	if err != nil {
		t.Fatal(err)
	}
	out, vars := runnerOutput(testContext(t), t, p)
	res := probe{uid: atoi(t, vars["uid"]), log: out}
	_, res.environ = vars["environ"]
	_, res.signalled = vars["signal"]
	_, res.listed = vars["workdir"]
	return res, p
}

// startSecretRunner starts a runner of app-a that holds secret in its
// environment and waits until it serves.
func startSecretRunner(t *testing.T, s *process.Supervisor, id, secret string) *process.Process {
	t.Helper()
	spec := serveSpec(id, secretVar+"="+secret)
	spec.App = "app-a"
	p, err := s.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitReady(testContext(t), 20*time.Second); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRunnersOfDifferentAppsAreKeptApart is the attack of issue 8: a runner
// of app B reads the environment of app A's runner, its secrets included.
// With a uid of its own per runner, it cannot, nor signal it, nor look into
// its working directory.
func TestRunnersOfDifferentAppsAreKeptApart(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	s := newSupervisor(t, t.TempDir())
	const secret = "s3cret-of-app-a-7f1d"
	a := startSecretRunner(t, s, shortRunnerID(t)+"-a", secret)

	res, b := runProbe(t, s, shortRunnerID(t)+"-b", a)
	r := process.DefaultRunnerUIDs
	for _, p := range []*process.Process{a, b} {
		if p.UID() < int(r.First) || p.UID() > int(r.Last) {
			t.Errorf("runner %s runs as uid %d; want a uid of %s", p.RunnerID(), p.UID(), r)
		}
	}
	if res.uid != b.UID() || a.UID() == b.UID() {
		t.Errorf("runners of app-a and app-b run as uids %d and %d (the probe said %d); want two uids", a.UID(), b.UID(), res.uid)
	}
	if strings.Contains(res.log, secret) || res.environ {
		t.Errorf("app-b's runner read app-a's environment; its log:\n%s", res.log)
	}
	if res.signalled {
		t.Errorf("app-b's runner signalled app-a's runner; its log:\n%s", res.log)
	}
	if res.listed {
		t.Errorf("app-b's runner listed app-a's working directory; its log:\n%s", res.log)
	}
	select {
	case <-a.Done():
		t.Fatalf("app-a's runner exited: %v", a.ExitErr())
	default:
	}
	if got := queryServe(t, a.Port())[secretVar]; got != secret {
		t.Errorf("app-a's runner has %s=%q; want its secret, untouched", secretVar, got)
	}

	info, err := os.Stat(a.WorkDir())
	if err != nil {
		t.Fatal(err)
	}
	st := info.Sys().(*syscall.Stat_t)
	if int(st.Uid) != a.UID() || int(st.Gid) != a.UID() || info.Mode().Perm() != 0o700 {
		t.Errorf("app-a's working directory: owner %d:%d, mode %v; want %d:%d, 0700", st.Uid, st.Gid, info.Mode().Perm(), a.UID(), a.UID())
	}
}

// TestSharedRunnerUserIsExposed: with a runner user given, every runner
// runs as it, and the supervisor warns, once, that runners can then read
// each other's environment, which the probe shows they can.
func TestSharedRunnerUserIsExposed(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	logs := &testsupport.SyncBuffer{}
	s := newSupervisorConfig(t, process.Config{
		StateDir: t.TempDir(), RunnerUser: "4244:4244",
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	const secret = "s3cret-shared-9c2e"
	a := startSecretRunner(t, s, shortRunnerID(t)+"-a", secret)
	res, b := runProbe(t, s, shortRunnerID(t)+"-b", a)
	if a.UID() != 4244 || b.UID() != 4244 || res.uid != 4244 {
		t.Errorf("runners run as uids %d and %d (the probe said %d); want both 4244", a.UID(), b.UID(), res.uid)
	}
	if !strings.Contains(res.log, secretVar+"="+secret) || !res.environ {
		t.Errorf("a runner sharing the user did not find the other's secret; its log:\n%s", res.log)
	}
	if n := strings.Count(logs.String(), "runners share one user"); n != 1 {
		t.Errorf("warnings about the shared user: %d; want 1. Log:\n%s", n, logs)
	}
}

// TestRunnerUIDReleasedOnlyWhenGone: with a range of one uid, a second
// runner gets no uid while the first one runs, and gets its uid once it is
// gone.
func TestRunnerUIDReleasedOnlyWhenGone(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	ctx := testContext(t)
	const uid = 0x70020001 // outside the default range: no other test takes it
	s := newSupervisorConfig(t, process.Config{StateDir: t.TempDir(), RunnerUIDs: process.UIDRange{First: uid, Last: uid}})
	id := shortRunnerID(t)
	a, err := s.Start(serveSpec(id + "-a"))
	if err != nil {
		t.Fatal(err)
	}
	if a.UID() != uid {
		t.Fatalf("runner runs as uid %d; want %d, the only one of the range", a.UID(), uid)
	}
	if _, err := s.Start(serveSpec(id + "-b")); !errors.Is(err, process.ErrNoRunnerUID) {
		t.Fatalf("Start while the range's one uid is held = %v; want ErrNoRunnerUID", err)
	}
	if err := a.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := s.Start(serveSpec(id + "-b"))
	if err != nil {
		t.Fatalf("Start once the first runner is gone: %v", err)
	}
	if b.UID() != uid {
		t.Errorf("second runner runs as uid %d; want %d, released", b.UID(), uid)
	}
}

// TestRunnerUIDOfOrphanNotReused: after a supervisor crashed, the uid of
// its orphaned runner is handed out by the next supervisor only once the
// sweep has killed the orphan.
func TestRunnerUIDOfOrphanNotReused(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	ctx := testContext(t)
	const uid = 0x70020002
	uids := process.UIDRange{First: uid, Last: uid}
	dir := t.TempDir()
	runnerID := testRunnerID(t)
	cmd, shell, port := startSupervisorHelper(ctx, t, envStateDir+"="+dir, envRunnerID+"="+runnerID, envUIDRange+"="+uids.String())
	server := serverPID(t, port)
	t.Cleanup(func() {
		if t.Failed() {
			_ = syscall.Kill(-shell, syscall.SIGKILL)
			_ = syscall.Kill(server, syscall.SIGKILL)
		}
	})
	if got := procUID(t, server); got != uid {
		t.Fatalf("runner of the crashed supervisor runs as uid %d; want %d", got, uid)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()

	s := newSupervisorConfig(t, process.Config{StateDir: dir, RunnerUIDs: uids})
	if _, err := s.Start(serveSpec(runnerID + "-next")); !errors.Is(err, process.ErrNoRunnerUID) {
		t.Fatalf("Start while an orphan runs as the range's one uid = %v; want ErrNoRunnerUID", err)
	}
	if n, err := s.SweepOrphans(); err != nil || n != 1 {
		t.Fatalf("SweepOrphans = %d, %v; want 1, nil", n, err)
	}
	eventually(ctx, t, "orphan killed", func() bool { return !alive(server) })
	var p *process.Process
	eventually(ctx, t, "uid free once the orphan is gone", func() bool {
		var err error
		p, err = s.Start(serveSpec(runnerID + "-next"))
		return err == nil
	})
	if p.UID() != uid {
		t.Errorf("runner after the sweep runs as uid %d; want %d", p.UID(), uid)
	}
}

// TestRunnerUIDRangeRefused: a range goes neither with a shared runner user
// nor with root runners, and must be a range of uids that are not root.
func TestRunnerUIDRangeRefused(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	r := process.UIDRange{First: 300000, Last: 300009}
	for name, cfg := range map[string]process.Config{
		"with a runner user": {RunnerUser: "4242", RunnerUIDs: r},
		"with root runners":  {AllowRootRunners: true, RunnerUIDs: r},
		"reversed":           {RunnerUIDs: process.UIDRange{First: 10, Last: 5}},
		"from root":          {RunnerUIDs: process.UIDRange{First: 0, Last: 5}},
		"up to (uid_t)-1":    {RunnerUIDs: process.UIDRange{First: 10, Last: math.MaxUint32}},
	} {
		cfg.StateDir = t.TempDir()
		if _, err := process.NewSupervisor(cfg); err == nil || !strings.Contains(err.Error(), "uid range") {
			t.Errorf("NewSupervisor %s = %v; want an error about the uid range", name, err)
		}
	}
}

// shortRunnerID is testRunnerID cut to leave room for a suffix.
func shortRunnerID(t *testing.T) string {
	id := testRunnerID(t)
	return id[:min(len(id), 56)]
}

// procUID returns the real uid of process pid.
func procUID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if ids, ok := strings.CutPrefix(line, "Uid:"); ok {
			return atoi(t, strings.Fields(ids)[0])
		}
	}
	t.Fatalf("no Uid line in /proc/%d/status", pid)
	return 0
}
