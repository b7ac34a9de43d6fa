package control

import (
	"context"
	"errors"
	"fmt"

	"github.com/revline/revline/events"
)

// DeleteAppResult is the result of DeleteApp.
type DeleteAppResult struct {
	App     string               `json:"app"`
	Status  events.OutcomeStatus `json:"status"`
	Message string               `json:"message,omitempty"`
	// Sequence is the stream sequence of app.deleted (0 for a no-op).
	Sequence uint64 `json:"sequence,omitempty"`
	// PurgedSecrets names the secrets whose values were purged from the
	// secret store.
	PurgedSecrets []string `json:"purged_secrets,omitempty"`
}

// DeleteApp deletes the app: its runners stop at once, it leaves `apps
// list` and every command on it but a deploy is refused; its history stays
// in the log. The values of the secrets it forgets (app.deleted names
// them) are then purged from the secret store, as UnsetSecret does.
func (c *Control) DeleteApp(ctx context.Context, app, reason string) (DeleteAppResult, error) {
	o, err := c.execute(ctx, app, events.DeleteApp{Reason: reason}, "")
	if err != nil {
		return DeleteAppResult{}, err
	}
	res := DeleteAppResult{App: app, Status: o.Status, Message: o.Message, Sequence: o.LastSequence}
	if o.Status == events.OutcomeNoOp {
		return res, nil
	}
	var deleted events.AppDeleted
	err = c.Events.FollowApp(ctx, app, o.FirstSequence, func(env events.Envelope, decodeErr error) error {
		if ev, ok := env.Event.(events.AppDeleted); ok {
			deleted = ev
			return errSettled
		}
		return nil
	})
	if !errors.Is(err, errSettled) {
		return res, fmt.Errorf("app %s is deleted, but its event could not be read to purge its secrets: %w", app, err)
	}
	if len(deleted.Secrets) > 0 && c.Secrets == nil {
		return res, fmt.Errorf("app %s is deleted, but the values of its secrets %v are still stored: %w", app, deleted.Secrets, ErrNoSecretStore)
	}
	for _, name := range deleted.Secrets {
		if err := c.Secrets.Purge(ctx, app, name); err != nil {
			return res, fmt.Errorf("app %s is deleted, but the value of its secret %s is still stored: %w", app, name, err)
		}
		res.PurgedSecrets = append(res.PurgedSecrets, name)
	}
	return res, nil
}
