//go:build unix && !linux

package process

import (
	"errors"
	"os/exec"
	"syscall"
)

// Outside Linux, a runner is its process group: there is no subreaper, no
// cgroup and no /proc, so descendants that leave the group (setsid, setpgid)
// are neither signalled nor swept, and SweepOrphans cannot tell whose a
// process group is, so it kills none.

// platformState is empty outside Linux.
type platformState struct{}

func (s *Supervisor) initPlatform() {}

// sysProcAttr puts the runner's shell in its own process group. Without
// Pdeathsig, runners outlive a crashed supervisor.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

func (s *Supervisor) spawn(_ *Process, newCmd func() *exec.Cmd) (*exec.Cmd, error) {
	closeOnExecAll()
	cmd := newCmd()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd, nil
}

// closeOnExecAll marks every descriptor above 2 close-on-exec (see the Linux
// version), as listed in /dev/fd.
func closeOnExecAll() { closeOnExecListed("/dev/fd") }

func (s *Supervisor) started(*Process) {}
func (s *Supervisor) forget(*Process)  {}
func (s *Supervisor) startTracking()   {}

func (s *Supervisor) treeAlive(p *Process) bool {
	return !p.gone.Load() && syscall.Kill(-p.pid, 0) == nil
}

func (s *Supervisor) signalTree(p *Process, sig syscall.Signal) (bool, error) {
	switch err := syscall.Kill(-p.pid, sig); {
	case err == nil:
		return true, nil
	case errors.Is(err, syscall.ESRCH):
		return false, nil
	default:
		return false, err
	}
}

func (s *Supervisor) killTree(p *Process) bool {
	delivered, _ := s.signalTree(p, syscall.SIGKILL)
	return delivered
}

// liveUIDs knows no process without /proc: only the supervisor's own
// runners keep their uids from being handed out again.
func liveUIDs() map[uint32]bool { return nil }

func (s *Supervisor) killOrphans(recs []pidRecord) []orphanResult {
	return make([]orphanResult, len(recs))
}
