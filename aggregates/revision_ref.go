package aggregates

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/revline/revline/events"
)

// MinRevisionPrefix is the shortest revision id prefix ResolveRevisionRef
// accepts. New revision ids are random from their first character, so 8
// characters tell them apart in practice; older ones (UUID v7, whose first
// 8 hex digits change only about once a minute) may need more.
const MinRevisionPrefix = 8

// Sentinel errors of ResolveRevisionRef, for errors.Is.
var (
	ErrRevisionNotFound    = errors.New("revision not found")
	ErrAmbiguousRevision   = errors.New("ambiguous revision prefix")
	ErrRevisionRefTooShort = errors.New("revision prefix too short")
)

// RevisionNotFoundError reports a revision reference that matches no
// revision of the app. It wraps ErrRevisionNotFound.
type RevisionNotFoundError struct {
	App string
	Ref string
}

// Error implements the error interface.
func (e *RevisionNotFoundError) Error() string {
	if n, ok := ParseRevisionNumber(e.Ref); ok {
		return fmt.Sprintf("app %q has no revision v%d", e.App, n)
	}
	return fmt.Sprintf("app %q has no revision matching %s", e.App, quote(e.Ref))
}

// Unwrap returns ErrRevisionNotFound.
func (e *RevisionNotFoundError) Unwrap() error { return ErrRevisionNotFound }

// AmbiguousRevisionError reports a prefix that matches several revisions.
// It wraps ErrAmbiguousRevision.
type AmbiguousRevisionError struct {
	App string
	Ref string
	// Matches are the matching revision ids, sorted.
	Matches []string
}

// Error implements the error interface.
func (e *AmbiguousRevisionError) Error() string {
	shown := e.Matches
	more := ""
	if len(shown) > 3 {
		shown = shown[:3]
		more = fmt.Sprintf(" and %d more", len(e.Matches)-3)
	}
	return fmt.Sprintf("revision prefix %s of app %q is ambiguous: it matches %s%s; give more characters, or the revision number (v3)",
		quote(e.Ref), e.App, strings.Join(shown, ", "), more)
}

// Unwrap returns ErrAmbiguousRevision.
func (e *AmbiguousRevisionError) Unwrap() error { return ErrAmbiguousRevision }

// RevisionRefTooShortError reports a reference that is neither a revision
// number, nor a full id, nor a prefix of at least MinRevisionPrefix
// characters. It wraps ErrRevisionRefTooShort.
type RevisionRefTooShortError struct {
	App string
	Ref string
}

// Error implements the error interface.
func (e *RevisionRefTooShortError) Error() string {
	return fmt.Sprintf("revision %s of app %q: give the revision number (v3 or 3), the full id or a prefix of at least %d characters",
		quote(e.Ref), e.App, MinRevisionPrefix)
}

// Unwrap returns ErrRevisionRefTooShort.
func (e *RevisionRefTooShortError) Unwrap() error { return ErrRevisionRefTooShort }

// RevisionKey is what ResolveRevisionRef needs to know of one revision.
type RevisionKey struct {
	ID      string
	Number  uint64
	Deleted bool
}

// maxBareNumberDigits bounds how long a reference of digits alone may be
// to be read as a revision number: longer ones are id prefixes (an id may
// begin with 8 decimal digits).
const maxBareNumberDigits = MinRevisionPrefix - 1

// ParseRevisionNumber reads a revision number reference: "v3" or "V3", or
// digits alone ("3") shorter than MinRevisionPrefix, so that an id prefix
// made of digits is still read as a prefix.
func ParseRevisionNumber(ref string) (uint64, bool) {
	digits, prefixed := strings.CutPrefix(strings.ToLower(ref), "v")
	if digits == "" || (!prefixed && len(digits) > maxBareNumberDigits) {
		return 0, false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// ResolveRevisionRef returns the full id of the revision of app that ref
// names among revs: its number (v3 or 3), its full id, or a prefix of its
// id (compared without regard to case) of at least MinRevisionPrefix
// characters that matches exactly one revision. Revisions that are not
// deleted are preferred for a prefix, since they are the ones a user can
// see; a prefix matching only deleted revisions resolves among those, so
// that the caller can say the revision was deleted. A number names the
// revision created with it, deleted or not.
//
// It returns a *RevisionRefTooShortError, *RevisionNotFoundError or
// *AmbiguousRevisionError.
func ResolveRevisionRef(app, ref string, revs []RevisionKey) (string, error) {
	if n, ok := ParseRevisionNumber(ref); ok {
		for _, r := range revs {
			if r.Number == n {
				return r.ID, nil
			}
		}
		return "", &RevisionNotFoundError{App: app, Ref: ref}
	}
	for _, r := range revs {
		if r.ID == ref {
			return ref, nil
		}
	}
	if len(ref) < MinRevisionPrefix {
		return "", &RevisionRefTooShortError{App: app, Ref: ref}
	}
	var live, deleted []string
	for _, r := range revs {
		if len(r.ID) < len(ref) || !strings.EqualFold(r.ID[:len(ref)], ref) {
			continue
		}
		if r.Deleted {
			deleted = append(deleted, r.ID)
		} else {
			live = append(live, r.ID)
		}
	}
	for _, matches := range [][]string{live, deleted} {
		switch len(matches) {
		case 0:
			continue
		case 1:
			return matches[0], nil
		}
		slices.Sort(matches)
		return "", &AmbiguousRevisionError{App: app, Ref: ref, Matches: matches}
	}
	return "", &RevisionNotFoundError{App: app, Ref: ref}
}

// ResolveRevision returns the id of the app's revision that ref names, as
// ResolveRevisionRef reads references, with its errors.
func (a App) ResolveRevision(ref string) (string, error) {
	keys := make([]RevisionKey, 0, len(a.Revisions))
	for _, r := range a.Revisions {
		keys = append(keys, RevisionKey{ID: r.ID, Number: r.Number, Deleted: r.Deleted})
	}
	return ResolveRevisionRef(a.Name, ref, keys)
}

// resolve returns the revision of state that ref names, as
// ResolveRevisionRef does, or a rejection.
func (a App) resolve(ref string) (*Revision, error) {
	id, err := a.ResolveRevision(ref)
	switch {
	case errors.Is(err, ErrAmbiguousRevision):
		return nil, reject(CodeAmbiguousRevision, "%s", err)
	case errors.Is(err, ErrRevisionRefTooShort):
		return nil, reject(CodeRevisionRefTooShort, "%s", err)
	case err != nil:
		return nil, reject(CodeRevisionNotFound, "%s", err)
	}
	return a.Revisions[id], nil
}

// RevisionNumber is the number of the revision ev creates when the app's
// revisions so far go up to last: the one ev records or, for an event
// written before revisions had numbers, the next one in creation order.
// Every fold of the log numbers revisions with it, so that all agree.
func RevisionNumber(ev events.RevisionCreated, last uint64) uint64 {
	if ev.Number != 0 {
		return ev.Number
	}
	return last + 1
}
