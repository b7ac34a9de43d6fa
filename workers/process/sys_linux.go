package process

import (
	"fmt"
	"math"
	"os/exec"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// sysProcAttr puts the runner's shell in its own process group and has the
// kernel SIGKILL it if the supervisor dies, so a crashed supervisor leaves no
// shells behind (their children are left for SweepOrphans). Go sets the
// parent death signal after switching to the runner's user, which would
// otherwise clear it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

type spawnRequest struct {
	cmd *exec.Cmd
	err chan<- error
}

// spawner returns the queue of a goroutine that starts commands on an OS
// thread of its own. Pdeathsig fires when the *thread* that forked the child
// exits, not the process, and the Go runtime destroys a thread whenever a
// goroutine exits while locked to it. A child forked from an arbitrary thread
// could therefore be killed at some random later moment, if another goroutine
// happened to lock that thread and exit. Merely locking the thread around
// cmd.Start does not prevent that; forking only from a goroutine that locks its
// thread and never exits ties the signal to the death of the whole process.
var spawner = sync.OnceValue(func() chan<- spawnRequest {
	queue := make(chan spawnRequest)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread must live as long as the process
		for req := range queue {
			closeOnExecAll()
			req.err <- req.cmd.Start()
		}
	}()
	return queue
})

// startCmd starts cmd from the spawner thread, after marking every
// descriptor of the process above stderr close-on-exec.
func startCmd(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	spawner() <- spawnRequest{cmd: cmd, err: errc}
	return <-errc
}

// closeOnExecAll marks every descriptor above 2 close-on-exec, so that a
// runner inherits none of them. Go opens its own descriptors close-on-exec,
// and os/exec passes a child only what it is given (stdin, stdout, stderr
// here); but a descriptor the process inherited from its own parent without
// the flag, or one opened by C code or a raw system call, would be inherited
// by every child. Doing it before each start also covers descriptors opened
// since the last one. Descriptors passed on purpose (exec.Cmd.ExtraFiles) are
// unaffected: the child gets copies made without the flag.
func closeOnExecAll() {
	if err := unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return
	}
	closeOnExecListed("/proc/self/fd") // before Linux 5.11: one at a time
}

// becomeSubreaper makes this process a child subreaper, once: descendants
// of its runners whose parent exits are reparented to it, where the
// supervisor can still find and reap them, instead of to init.
var becomeSubreaper = sync.OnceValue(func() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
	}
	return nil
})
