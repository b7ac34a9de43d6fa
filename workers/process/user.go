//go:build unix

package process

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// defaultRunnerUsers are the users a root supervisor runs runners as when
// Config.RunnerUser is empty, the first that exists.
var defaultRunnerUsers = []string{"revline-runner", "nobody"}

// runnerUser is who runners run as.
type runnerUser struct {
	// drop is true when runners run as another user than the supervisor's
	// (the supervisor is root): cred is then set.
	drop bool
	name string
	uid  uint32
	gid  uint32
}

// credential returns the credential runners are started with, or nil to
// start them as the supervisor's user.
func (u runnerUser) credential() *syscall.Credential {
	if !u.drop {
		return nil
	}
	// No supplementary groups: root's would otherwise stay.
	return &syscall.Credential{Uid: u.uid, Gid: u.gid, Groups: []uint32{}}
}

// resolveRunnerUser decides who runners run as (see Config.RunnerUser).
func resolveRunnerUser(cfg Config) (runnerUser, error) {
	euid := os.Geteuid()
	if euid != 0 {
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

	spec := cfg.RunnerUser
	if spec == "" {
		if cfg.AllowRootRunners {
			return runnerUser{}, nil
		}
		for _, name := range defaultRunnerUsers {
			if _, err := user.Lookup(name); err == nil {
				spec = name
				break
			}
		}
		if spec == "" {
			return runnerUser{}, fmt.Errorf("no user to run runners as: none of %s exists; set the runner user, or allow root runners", strings.Join(defaultRunnerUsers, ", "))
		}
	}
	u, err := lookupRunnerUser(spec)
	if err != nil {
		return runnerUser{}, err
	}
	if u.uid == 0 {
		if !cfg.AllowRootRunners {
			return runnerUser{}, fmt.Errorf("runner user %q is root: runners run users' code, so they run as root only when root runners are explicitly allowed", spec)
		}
		return runnerUser{}, nil
	}
	u.drop = true
	return u, nil
}

// lookupRunnerUser resolves a user name, a numeric uid (its primary group
// from the user database, or a group with the same number) or "uid:gid".
func lookupRunnerUser(spec string) (runnerUser, error) {
	if uidText, gidText, ok := strings.Cut(spec, ":"); ok {
		uid, err1 := parseID(uidText)
		gid, err2 := parseID(gidText)
		if err := errors.Join(err1, err2); err != nil {
			return runnerUser{}, fmt.Errorf("runner user %q: %w", spec, err)
		}
		return runnerUser{name: uidText, uid: uid, gid: gid}, nil
	}
	u, err := user.Lookup(spec)
	if err != nil {
		uid, numErr := parseID(spec)
		if numErr != nil {
			return runnerUser{}, fmt.Errorf("runner user %q: %w", spec, err)
		}
		if u, err = user.LookupId(spec); err != nil {
			return runnerUser{name: spec, uid: uid, gid: uid}, nil
		}
	}
	uid, err1 := parseID(u.Uid)
	gid, err2 := parseID(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return runnerUser{}, fmt.Errorf("runner user %q: %w", spec, err)
	}
	return runnerUser{name: u.Username, uid: uid, gid: gid}, nil
}

func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not a numeric id", s)
	}
	return uint32(n), nil
}
