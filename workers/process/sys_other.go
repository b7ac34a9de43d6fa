//go:build unix && !linux

package process

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// sysProcAttr puts the runner's shell in its own process group. Without
// Pdeathsig, runners outlive a crashed supervisor until SweepOrphans.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// startCmd starts cmd after marking every descriptor of the process above
// stderr close-on-exec.
func startCmd(cmd *exec.Cmd) error {
	closeOnExecAll()
	return cmd.Start()
}

// closeOnExecAll marks every descriptor above 2 close-on-exec (see the Linux
// version), as listed in /dev/fd.
func closeOnExecAll() {
	dir, err := os.Open("/dev/fd")
	if err != nil {
		return
	}
	defer dir.Close()
	names, _ := dir.Readdirnames(-1)
	for _, name := range names {
		if fd, err := strconv.Atoi(name); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}
