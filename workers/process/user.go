//go:build unix

package process

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// DefaultRunnerUIDs is the range a root supervisor allocates runners' uids
// from when Config.RunnerUIDs is zero: 1879048192-1879113727 (0x70000000 and
// the 65535 uids after it). It lies above the container ranges that
// systemd-nspawn allocates (up to 1879048191) and the subordinate ids that
// useradd hands out (/etc/subuid, up to 600100000), below 2^31 (where some
// tools take uids for negative numbers) and away from the ranges systemd
// reserves, so no user of the machine is expected there.
var DefaultRunnerUIDs = UIDRange{First: 0x70000000, Last: 0x7000FFFF}

// ErrNoRunnerUID is returned (wrapped) by Start when every uid of the
// runners' range is taken: by a runner of the supervisor's, by a process of
// the machine or by a user of the user database.
var ErrNoRunnerUID = errors.New("no free runner uid")

// UIDRange is a range of uids, First to Last included. A runner that gets a
// uid of the range gets the group of the same number.
type UIDRange struct {
	First, Last uint32
}

// ParseUIDRange parses "FIRST-LAST", e.g. "200000-265535". Neither end may be
// 0 (root) or 4294967295 ((uid_t)-1), and FIRST may not exceed LAST.
func ParseUIDRange(s string) (UIDRange, error) {
	first, last, ok := strings.Cut(s, "-")
	if !ok {
		return UIDRange{}, fmt.Errorf("uid range %q: want FIRST-LAST, e.g. %s", s, DefaultRunnerUIDs)
	}
	f, err1 := parseID(first)
	l, err2 := parseID(last)
	if err := errors.Join(err1, err2); err != nil {
		return UIDRange{}, fmt.Errorf("uid range %q: %w", s, err)
	}
	r := UIDRange{First: f, Last: l}
	if err := r.validate(); err != nil {
		return UIDRange{}, err
	}
	return r, nil
}

// String returns "FIRST-LAST".
func (r UIDRange) String() string { return fmt.Sprintf("%d-%d", r.First, r.Last) }

func (r UIDRange) validate() error {
	switch {
	case r.First == 0:
		return fmt.Errorf("uid range %s: starts at root (uid 0)", r)
	case r.Last == math.MaxUint32:
		return fmt.Errorf("uid range %s: ends at 4294967295, which is (uid_t)-1, no uid", r)
	case r.First > r.Last:
		return fmt.Errorf("uid range %s: first uid above the last", r)
	}
	return nil
}

func (r UIDRange) size() uint64 { return uint64(r.Last-r.First) + 1 }

// runnerUser is who runners run as: the supervisor's own user (the zero
// value), one user shared by every runner (identity), or a uid of each
// runner's own (perRunner).
type runnerUser struct {
	// perRunner is true when each runner gets a uid of its own from uids
	// (see Supervisor.newIdentity); otherwise every runner runs as identity.
	perRunner bool
	uids      UIDRange
	identity  identity
}

// identity is the user and group one runner runs as.
type identity struct {
	drop bool // another user than the supervisor's: uid and gid are set
	name string
	uid  uint32
	gid  uint32
}

// credential returns the credential a runner is started with, or nil to
// start it as the supervisor's user.
func (id identity) credential() *syscall.Credential {
	if !id.drop {
		return nil
	}
	// No supplementary groups: root's would otherwise stay.
	return &syscall.Credential{Uid: id.uid, Gid: id.gid, Groups: []uint32{}}
}

// uidOf returns the uid a runner with this identity runs as.
func (id identity) uidOf() int {
	if !id.drop {
		return os.Geteuid()
	}
	return int(id.uid)
}

// resolveRunnerUser decides who runners run as (see Config.RunnerUser and
// Config.RunnerUIDs).
func resolveRunnerUser(cfg Config) (runnerUser, error) {
	uidsSet := cfg.RunnerUIDs != UIDRange{}
	if uidsSet {
		if err := cfg.RunnerUIDs.validate(); err != nil {
			return runnerUser{}, err
		}
	}
	euid := os.Geteuid()
	if euid != 0 {
		if uidsSet {
			return runnerUser{}, fmt.Errorf("runner uid range %s: the supervisor runs as uid %d, not root, so it cannot switch users: runners run as uid %d", cfg.RunnerUIDs, euid, euid)
		}
		if cfg.RunnerUser != "" {
			u, err := lookupRunnerUser(cfg.RunnerUser)
			if err != nil {
				return runnerUser{}, err
			}
			if int(u.uid) != euid {
				return runnerUser{}, fmt.Errorf("runner user %q (uid %d): the supervisor runs as uid %d, not root, so runners run as uid %d", cfg.RunnerUser, u.uid, euid, euid)
			}
		}
		return runnerUser{}, nil
	}

	if uidsSet && (cfg.RunnerUser != "" || cfg.AllowRootRunners) {
		return runnerUser{}, fmt.Errorf("runner uid range %s: runners get uids of their own only when neither a runner user nor root runners are asked for", cfg.RunnerUIDs)
	}
	if cfg.RunnerUser == "" {
		if cfg.AllowRootRunners {
			return runnerUser{}, nil
		}
		return runnerUser{perRunner: true, uids: cmp.Or(cfg.RunnerUIDs, DefaultRunnerUIDs)}, nil
	}
	u, err := lookupRunnerUser(cfg.RunnerUser)
	if err != nil {
		return runnerUser{}, err
	}
	if u.uid == 0 {
		if !cfg.AllowRootRunners {
			return runnerUser{}, fmt.Errorf("runner user %q is root: runners run users' code, so they run as root only when root runners are explicitly allowed", cfg.RunnerUser)
		}
		return runnerUser{}, nil
	}
	u.drop = true
	return runnerUser{identity: u}, nil
}

// lookupRunnerUser resolves a user name, a numeric uid (its primary group
// from the user database, or a group with the same number) or "uid:gid".
func lookupRunnerUser(spec string) (identity, error) {
	if uidText, gidText, ok := strings.Cut(spec, ":"); ok {
		uid, err1 := parseID(uidText)
		gid, err2 := parseID(gidText)
		if err := errors.Join(err1, err2); err != nil {
			return identity{}, fmt.Errorf("runner user %q: %w", spec, err)
		}
		return identity{name: uidText, uid: uid, gid: gid}, nil
	}
	u, err := user.Lookup(spec)
	if err != nil {
		uid, numErr := parseID(spec)
		if numErr != nil {
			return identity{}, fmt.Errorf("runner user %q: %w", spec, err)
		}
		if u, err = user.LookupId(spec); err != nil {
			return identity{name: spec, uid: uid, gid: uid}, nil
		}
	}
	uid, err1 := parseID(u.Uid)
	gid, err2 := parseID(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return identity{}, fmt.Errorf("runner user %q: %w", spec, err)
	}
	return identity{name: u.Username, uid: uid, gid: gid}, nil
}

func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not a numeric id", s)
	}
	return uint32(n), nil
}
