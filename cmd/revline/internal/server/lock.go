package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFile is the file in the data directory that one serve at a time
// holds locked: two on one directory would share the embedded NATS
// server's store and each take the other's runners for orphans of a
// crash, and kill them.
const lockFile = "serve.lock"

// ErrDataDirInUse is wrapped by the error of Run when another serve holds
// the data directory.
var ErrDataDirInUse = errors.New("data directory in use")

// lockDataDir takes the data directory's lock for this process, and
// writes its pid in the lock file for the next one's message. The lock
// goes with the process, however it ends (a kill -9 included): release
// only closes the file early.
func lockDataDir(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("serve: lock the data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := "another process"
		if b, rerr := os.ReadFile(path); rerr == nil && strings.TrimSpace(string(b)) != "" {
			holder = "pid " + strings.TrimSpace(string(b))
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("serve: %w: %s is used by another revline serve (%s); give this one a --data-dir of its own", ErrDataDirInUse, dir, holder)
		}
		return nil, fmt.Errorf("serve: lock the data directory: %w", err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}
