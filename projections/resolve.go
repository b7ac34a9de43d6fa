package projections

import (
	"errors"
	"fmt"

	"github.com/revline/revline/aggregates"
)

// ErrAppNotFound is wrapped by *AppNotFoundError.
var ErrAppNotFound = errors.New("app not found")

// AppNotFoundError reports an app with no history. It wraps ErrAppNotFound.
type AppNotFoundError struct {
	App string
}

// Error implements the error interface.
func (e *AppNotFoundError) Error() string { return fmt.Sprintf("app %q not found", e.App) }

// Unwrap returns ErrAppNotFound.
func (e *AppNotFoundError) Unwrap() error { return ErrAppNotFound }

// ResolveRevision returns the full id of the app's revision that ref names:
// its number (v3 or 3), its full id, or a unique id prefix of at least
// aggregates.MinRevisionPrefix characters, as aggregates.ResolveRevisionRef
// reads them (the decider reads references in commands the same way).
//
// It returns an *AppNotFoundError, or the errors of
// aggregates.ResolveRevisionRef.
func (m *RevisionHistory) ResolveRevision(appName, ref string) (string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	app, ok := m.apps[appName]
	if !ok {
		return "", &AppNotFoundError{App: appName}
	}
	keys := make([]aggregates.RevisionKey, 0, len(app.revisions))
	for _, r := range app.revisions {
		keys = append(keys, aggregates.RevisionKey{ID: r.id, Number: r.number, Deleted: r.deleted})
	}
	return aggregates.ResolveRevisionRef(appName, ref, keys)
}
