//go:build unix

package process

import (
	"fmt"
	"os/user"
	"strconv"
)

// newIdentity returns who a new runner runs as: the shared identity, or a
// uid of the runner's own, with the group of the same number. That uid is
// one that no runner of s holds (a runner holds its uid until none of its
// processes is alive), that no process of the machine runs as (an orphan
// of a previous run still being swept, a runner of another supervisor),
// and that names no user or group of the user database. Uids are handed
// out in turn from a random point of the range, so that a released uid is
// reused as late as possible. s.mu is held.
func (s *Supervisor) newIdentity() (identity, error) {
	if !s.user.perRunner {
		return s.user.identity, nil
	}
	held := make(map[uint32]bool, len(s.procs))
	for _, p := range s.procs {
		held[p.ident.uid] = true
	}
	live := liveUIDs()
	r := s.user.uids
	for i := range r.size() {
		offset := (s.uidNext + i) % r.size()
		uid := r.First + uint32(offset)
		if held[uid] || live[uid] || inUserDatabase(uid) {
			continue
		}
		s.uidNext = (offset + 1) % r.size()
		return identity{drop: true, name: strconv.FormatUint(uint64(uid), 10), uid: uid, gid: uid}, nil
	}
	return identity{}, fmt.Errorf("%w: every uid of %s is held by a runner, used by a process or names a user or group", ErrNoRunnerUID, r)
}

// inUserDatabase reports whether a user or a group has the number id.
func inUserDatabase(id uint32) bool {
	s := strconv.FormatUint(uint64(id), 10)
	if _, err := user.LookupId(s); err == nil {
		return true
	}
	_, err := user.LookupGroupId(s)
	return err == nil
}
