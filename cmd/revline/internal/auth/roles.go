// Package auth is who may do what over HTTP: bearer tokens, each with a
// role and the apps it may touch, kept in a JetStream key-value bucket
// that every serve replica reads, and the server's answers to the CLI's
// `revline tokens` requests.
//
// Only a token's SHA-256 hash is stored, never its value. A token is 256
// random bits, so its hash cannot be reversed or guessed; a slow password
// hash (bcrypt, argon2) protects low-entropy passwords and would only add
// tens of milliseconds of CPU to every request.
package auth

import (
	"fmt"
	"path"
	"strings"

	"github.com/revline/revline/events"
)

// Role is what a token may do. Each role may do what the ones before it
// may.
type Role string

// The roles, from least to most privileged.
const (
	// RoleViewer reads: apps, revisions, runners, logs, the audit log.
	RoleViewer Role = "viewer"
	// RoleOperator may also change what runs without running new code:
	// set-rev, rollout, stop and kill runners, scale, suspend, resume,
	// delete a revision.
	RoleOperator Role = "operator"
	// RoleDeployer may also deploy, which runs a new command: code
	// execution on the runners' machines.
	RoleDeployer Role = "deployer"
	// RoleAdmin may do everything, including managing tokens.
	RoleAdmin Role = "admin"
)

// Roles lists the roles, least privileged first.
var Roles = []Role{RoleViewer, RoleOperator, RoleDeployer, RoleAdmin}

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("role %q: want one of viewer, operator, deployer, admin", s)
}

// Permission is what a route needs.
type Permission int

// The permissions, each the least role's.
const (
	// Read is the viewer's.
	Read Permission = iota
	// Operate is the operator's.
	Operate
	// Deploy is the deployer's.
	Deploy
	// Admin is the admin's.
	Admin
)

// String names the role that grants p first.
func (p Permission) String() string {
	if p < 0 || int(p) >= len(Roles) {
		return fmt.Sprintf("permission(%d)", int(p))
	}
	return string(Roles[p])
}

// rank is r's position in Roles, -1 for an unknown role.
func (r Role) rank() int {
	for i, known := range Roles {
		if known == r {
			return i
		}
	}
	return -1
}

// Allows reports whether r grants p.
func (r Role) Allows(p Permission) bool { return r.rank() >= int(p) }

// AllApps is the app glob of a token that may touch every app.
const AllApps = "*"

// maxGlobLength bounds an app glob.
const maxGlobLength = 128

// ValidateAppGlob checks glob is a path.Match pattern over app names:
// lowercase letters, digits, '-', '_', and the wildcards '*', '?' and
// character classes.
func ValidateAppGlob(glob string) error {
	if glob == "" || len(glob) > maxGlobLength {
		return fmt.Errorf("app glob %q: want 1 to %d characters", glob, maxGlobLength)
	}
	if strings.ContainsAny(glob, "/. >") {
		return fmt.Errorf("app glob %q: app names have no '/', '.', '>' or spaces", glob)
	}
	if _, err := path.Match(glob, ""); err != nil {
		return fmt.Errorf("app glob %q: %w", glob, err)
	}
	if err := literalsFitAppNames(glob); err != nil {
		return fmt.Errorf("app glob %q matches no app: %w", glob, err)
	}
	return nil
}

// literalsFitAppNames refuses a glob (valid for path.Match) whose literal
// characters no app name has there (events.ValidateAppName: lowercase
// letters, digits, '-' and '_', starting with a letter or digit), such as
// _webhooks or Web-*: a token for no app at all is a mistake.
func literalsFitAppNames(glob string) error {
	if !strings.ContainsAny(glob, `*?[\`) {
		return events.ValidateAppName(glob)
	}
	first := true
	for i := 0; i < len(glob); i++ {
		c := glob[i]
		switch c {
		case '*', '?':
			first = false
			continue
		case '[':
			// A class: path.Match has checked it is closed.
			i += strings.IndexByte(glob[i+1:], ']') + 1
			first = false
			continue
		case '\\':
			i++
			c = glob[i]
		}
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '-' || c == '_') && !first:
		default:
			return fmt.Errorf("app names have no %q there (lowercase letters, digits, '-' and '_', starting with a letter or digit)", c)
		}
		first = false
	}
	return nil
}

// matchApp reports whether app matches glob (a validated one).
func matchApp(glob, app string) bool {
	ok, err := path.Match(glob, app)
	return err == nil && ok
}
