package control

import (
	"context"
	"errors"
	"fmt"

	"github.com/revline/revline/events"
)

// FailureLimit is how many times the runners of the revision a wait is for
// may fail (crash, or exit or time out before they listen) during the wait
// before it gives up: a crash loop is told within seconds, not at the
// wait's deadline. The runner worker goes on restarting them.
const FailureLimit = 3

// ErrRunnersFailing is wrapped by the error a wait returns once the
// runners it waits for have failed FailureLimit times (a
// *RunnersFailingError says how).
var ErrRunnersFailing = errors.New("runners failing")

// RunnersFailingError ends a wait whose runners keep failing: it names the
// last runner that failed and what it did.
type RunnersFailingError struct {
	App        string
	RevisionID string
	// Number is the revision's number, 0 if the read model could not
	// tell it in time.
	Number uint64
	// Failures counts the failures seen during the wait.
	Failures int
	// RunnerID and What are the last failure: the runner, and what the
	// runner worker reported ("crashed: exited: exit status 3; restarting
	// in 2s", "did not start: ...").
	RunnerID string
	What     string
}

// Error implements the error interface: one line.
func (e *RunnersFailingError) Error() string {
	return fmt.Sprintf("the runners of %s keep failing (%d times since the change); the last, runner %s of %s, %s",
		e.App, e.Failures, e.RunnerID, revisionLabel(e.Number, e.RevisionID), e.What)
}

// Unwrap makes the error match ErrRunnersFailing.
func (e *RunnersFailingError) Unwrap() error { return ErrRunnersFailing }

// failureWatch counts, from the runner reports that follow a change, the
// failures of the runners of the app's current revision: a crash (reported
// crash_backoff) or a start that failed (reported terminated straight from
// setup or pending: the runner exited, or did not listen in time). It is
// fed the app's events in order and decides nothing else.
type failureWatch struct {
	app string
	// revisionID is the current revision, moved by each switch.
	revisionID string
	// starting holds the runners of revisionID reported starting and not
	// since ready, stopping or failed.
	starting map[string]bool
	err      RunnersFailingError
}

func newFailureWatch(app, revisionID string) *failureWatch {
	return &failureWatch{app: app, revisionID: revisionID, starting: map[string]bool{}}
}

// observe folds one event in and returns a *RunnersFailingError once the
// failures reach FailureLimit. A switch of revision starts the count over:
// the runners to wait for are others.
func (w *failureWatch) observe(ev events.Event) error {
	switch ev := ev.(type) {
	case events.CurrentRevisionSet:
		if ev.To != w.revisionID {
			*w = *newFailureWatch(w.app, ev.To)
		}
	case events.RunnerStateChanged:
		if ev.RevisionID != w.revisionID {
			return nil
		}
		what := ""
		switch ev.State {
		case events.RunnerPending, events.RunnerSetup:
			w.starting[ev.RunnerID] = true
			return nil
		case events.RunnerCrashBackoff:
			what = "crashed"
		case events.RunnerTerminated:
			if w.starting[ev.RunnerID] {
				what = "did not start"
			}
		}
		delete(w.starting, ev.RunnerID)
		if what == "" {
			return nil
		}
		if ev.Reason != "" {
			what += ": " + ev.Reason
		}
		w.err.Failures++
		w.err.RunnerID, w.err.What = ev.RunnerID, what
		if w.err.Failures >= FailureLimit {
			err := w.err
			err.App, err.RevisionID = w.app, w.revisionID
			return &err
		}
	}
	return nil
}

// watchRunners follows app's events after sequence after until ctx ends,
// telling Progress each runner's move and ending the context it returns,
// with a *RunnersFailingError as its cause, once the runners of the
// current revision (revisionID at first) keep failing. The caller calls
// stop once done with it, which returns once the follow has stopped.
func (c *Control) watchRunners(ctx context.Context, app, revisionID string, after uint64) (watched context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	watch := newFailureWatch(app, revisionID)
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := c.Events.FollowApp(ctx, app, after+1, func(env events.Envelope, _ error) error {
			if ev, ok := env.Event.(events.RunnerStateChanged); ok {
				c.runnerStep(ev)
			}
			return watch.observe(env.Event)
		})
		var failing *RunnersFailingError
		if errors.As(err, &failing) {
			failing.Number = c.number(ctx, app, failing.RevisionID, after)
			cancel(err)
		}
	}()
	return ctx, func() {
		cancel(nil)
		<-done
	}
}

// failure returns the cause that ended ctx if it is the runners failing,
// else nil.
func failure(ctx context.Context) error {
	if err := context.Cause(ctx); errors.Is(err, ErrRunnersFailing) {
		return err
	}
	return nil
}
