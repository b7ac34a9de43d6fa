//go:build unix && !linux

package process

import (
	"os/exec"
	"syscall"
)

// sysProcAttr puts the runner's shell in its own process group. Without
// Pdeathsig, runners outlive a crashed supervisor until SweepOrphans.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

func startCmd(cmd *exec.Cmd) error { return cmd.Start() }
