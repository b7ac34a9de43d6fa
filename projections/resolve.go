package projections

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// MinRevisionPrefix is the shortest revision id prefix ResolveRevision
// accepts. Revision ids are UUID v7s, whose first 8 hex digits change only
// about once a minute, so a longer prefix is often needed.
const MinRevisionPrefix = 8

// Sentinel errors of ResolveRevision, for errors.Is.
var (
	ErrAppNotFound         = errors.New("app not found")
	ErrRevisionNotFound    = errors.New("revision not found")
	ErrAmbiguousRevision   = errors.New("ambiguous revision prefix")
	ErrRevisionRefTooShort = errors.New("revision prefix too short")
)

// AppNotFoundError reports an app with no history. It wraps ErrAppNotFound.
type AppNotFoundError struct {
	App string
}

// Error implements the error interface.
func (e *AppNotFoundError) Error() string { return fmt.Sprintf("app %q not found", e.App) }

// Unwrap returns ErrAppNotFound.
func (e *AppNotFoundError) Unwrap() error { return ErrAppNotFound }

// RevisionNotFoundError reports a revision reference that matches no
// revision of the app. It wraps ErrRevisionNotFound.
type RevisionNotFoundError struct {
	App string
	Ref string
}

// Error implements the error interface.
func (e *RevisionNotFoundError) Error() string {
	return fmt.Sprintf("app %q has no revision matching %q", e.App, e.Ref)
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
	return fmt.Sprintf("revision prefix %q of app %q is ambiguous: it matches %s%s; give more characters",
		e.Ref, e.App, strings.Join(shown, ", "), more)
}

// Unwrap returns ErrAmbiguousRevision.
func (e *AmbiguousRevisionError) Unwrap() error { return ErrAmbiguousRevision }

// RevisionRefTooShortError reports a prefix shorter than MinRevisionPrefix
// that is not a full id either. It wraps ErrRevisionRefTooShort.
type RevisionRefTooShortError struct {
	App string
	Ref string
}

// Error implements the error interface.
func (e *RevisionRefTooShortError) Error() string {
	return fmt.Sprintf("revision %q of app %q: give the full id or a prefix of at least %d characters",
		e.Ref, e.App, MinRevisionPrefix)
}

// Unwrap returns ErrRevisionRefTooShort.
func (e *RevisionRefTooShortError) Unwrap() error { return ErrRevisionRefTooShort }

// ResolveRevision returns the full id of the app's revision that ref names:
// a full id, or a prefix (compared without regard to case) of at least
// MinRevisionPrefix characters that matches exactly one revision.
// Revisions that are not deleted are preferred, since they are the ones a
// user can see; a prefix matching only deleted revisions resolves among
// those, so that the caller can say the revision was deleted.
//
// It returns an *AppNotFoundError, *RevisionRefTooShortError,
// *RevisionNotFoundError or *AmbiguousRevisionError.
func (m *RevisionHistory) ResolveRevision(appName, ref string) (string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	app, ok := m.apps[appName]
	if !ok {
		return "", &AppNotFoundError{App: appName}
	}
	if _, ok := app.revisions[ref]; ok {
		return ref, nil
	}
	if len(ref) < MinRevisionPrefix {
		return "", &RevisionRefTooShortError{App: appName, Ref: ref}
	}
	var live, deleted []string
	for id, r := range app.revisions {
		if len(id) < len(ref) || !strings.EqualFold(id[:len(ref)], ref) {
			continue
		}
		if r.deleted {
			deleted = append(deleted, id)
		} else {
			live = append(live, id)
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
		return "", &AmbiguousRevisionError{App: appName, Ref: ref, Matches: matches}
	}
	return "", &RevisionNotFoundError{App: appName, Ref: ref}
}
