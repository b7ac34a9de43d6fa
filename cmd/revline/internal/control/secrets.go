package control

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
)

// SecretWriter stores secret values (see package secrets).
type SecretWriter interface {
	Put(ctx context.Context, app, name string, value []byte) (version uint64, err error)
	Purge(ctx context.Context, app, name string) error
}

// ErrNoSecretStore is returned by the secret operations of a Control
// without a secret store.
var ErrNoSecretStore = errors.New("no secret store")

// SecretResult is the result of SetSecret and UnsetSecret.
type SecretResult struct {
	App     string               `json:"app"`
	Name    string               `json:"name"`
	Version uint64               `json:"version,omitempty"`
	Status  events.OutcomeStatus `json:"status"`
	Message string               `json:"message,omitempty"`
	// Sequence is the event's stream sequence (0 for a no-op).
	Sequence uint64 `json:"sequence,omitempty"`
}

// SetSecret stores value as the app's secret name, then records its name
// and version (never the value) in the event log. Runners started from
// then on get it as the environment variable name; running ones keep what
// they started with until a rollout.
func (c *Control) SetSecret(ctx context.Context, app, name string, value []byte) (SecretResult, error) {
	if c.Secrets == nil {
		return SecretResult{}, ErrNoSecretStore
	}
	if err := events.ValidateSecretName(name); err != nil {
		return SecretResult{}, err
	}
	version, err := c.Secrets.Put(ctx, app, name, value)
	if err != nil {
		return SecretResult{}, err
	}
	o, err := c.execute(ctx, app, events.SetSecret{Name: name, Version: version}, "")
	var rejection *events.Rejection
	if errors.As(err, &rejection) && rejection.Code == aggregates.CodeAppDeleted {
		// A deleted app has no secret in use: the value just stored is
		// nobody's, and goes.
		if perr := c.Secrets.Purge(ctx, app, name); perr != nil {
			return SecretResult{}, fmt.Errorf("%w (and the value stored for it could not be purged: %w)", err, perr)
		}
	}
	if err != nil {
		return SecretResult{}, err
	}
	return SecretResult{App: app, Name: name, Version: version, Status: o.Status, Message: o.Message, Sequence: o.LastSequence}, nil
}

// UnsetSecret removes the app's secret name: the event log records it, then
// the value is purged from the store.
func (c *Control) UnsetSecret(ctx context.Context, app, name string) (SecretResult, error) {
	if c.Secrets == nil {
		return SecretResult{}, ErrNoSecretStore
	}
	o, err := c.execute(ctx, app, events.UnsetSecret{Name: name}, "")
	if err != nil {
		return SecretResult{}, err
	}
	if err := c.Secrets.Purge(ctx, app, name); err != nil {
		return SecretResult{}, fmt.Errorf("secret %s is unset, but its value is still stored: %w", name, err)
	}
	return SecretResult{App: app, Name: name, Status: o.Status, Message: o.Message, Sequence: o.LastSequence}, nil
}

// SecretView describes one of an app's secrets: never its value.
type SecretView struct {
	Name    string    `json:"name"`
	Version uint64    `json:"version"`
	SetAt   time.Time `json:"set_at"`
	SetBy   string    `json:"set_by"`
}

// ListSecrets returns the app's secrets by name, folded from its history.
func ListSecrets(ctx context.Context, log events.AppLoader, app string) ([]SecretView, error) {
	history, err := log.Load(ctx, app, 0)
	if err != nil {
		return nil, err
	}
	state := aggregates.Fold(app, history)
	views := make([]SecretView, 0, len(state.Secrets))
	for name, s := range state.Secrets {
		views = append(views, SecretView{Name: name, Version: s.Version, SetAt: s.SetAt, SetBy: s.SetBy})
	}
	slices.SortFunc(views, func(a, b SecretView) int { return strings.Compare(a.Name, b.Name) })
	return views, nil
}
