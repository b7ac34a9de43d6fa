package process

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// sysProcAttr puts the runner's shell in its own process group and has the
// kernel SIGKILL it if the supervisor dies, so a crashed supervisor leaves no
// shells behind (their children are left for SweepOrphans).
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
			req.err <- req.cmd.Start()
		}
	}()
	return queue
})

// startCmd starts cmd from the spawner thread.
func startCmd(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	spawner() <- spawnRequest{cmd: cmd, err: errc}
	return <-errc
}
