package control

import (
	"context"
	"errors"
	"fmt"

	"github.com/revline/revline/events"
)

// StopResult is the result of StopRunner.
type StopResult struct {
	App      string               `json:"app"`
	RunnerID string               `json:"runner_id"`
	Status   events.OutcomeStatus `json:"status"`
	Message  string               `json:"message,omitempty"`
	// Stopped is true once the runner's end is in the log (with wait);
	// Reason is then the reason it was recorded with, which counts the
	// requests a kill dropped.
	Stopped  bool   `json:"stopped"`
	Reason   string `json:"reason,omitempty"`
	Sequence uint64 `json:"sequence,omitempty"`
}

// StopRunner stops one runner of app: gracefully (with replace, once a
// replacement is ready), or with force at once, dropping its requests in
// flight. With wait it returns once the runner's end is in the log.
func (c *Control) StopRunner(ctx context.Context, app, runnerID string, force, replace, wait bool) (StopResult, error) {
	o, err := c.execute(ctx, app, events.StopRunner{RunnerID: runnerID, Force: force, Replace: replace}, "")
	if err != nil {
		return StopResult{}, err
	}
	res := StopResult{App: app, RunnerID: runnerID, Status: o.Status, Message: o.Message, Sequence: o.LastSequence}
	if !wait || o.Status != events.OutcomeAccepted {
		return res, nil
	}
	err = c.Events.FollowApp(ctx, app, o.FirstSequence, func(env events.Envelope, _ error) error {
		if ev, ok := env.Event.(events.RunnerStateChanged); ok && ev.RunnerID == runnerID && ev.State == events.RunnerTerminated {
			res.Stopped, res.Reason, res.Sequence = true, ev.Reason, env.Sequence
			return errSettled
		}
		return nil
	})
	if !errors.Is(err, errSettled) {
		return res, fmt.Errorf("waiting for runner %s to stop: %w", runnerID, err)
	}
	return res, nil
}
