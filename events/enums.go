package events

import "fmt"

// RevisionStatus is the lifecycle status of a revision.
type RevisionStatus string

// Revision statuses, as shown by list-rev.
const (
	StatusDeploying RevisionStatus = "deploying"
	StatusDeployed  RevisionStatus = "deployed"
	StatusFailed    RevisionStatus = "failed"
	StatusSuspended RevisionStatus = "suspended"
)

// Strategy says how runners move to another revision.
type Strategy string

// Strategies: rolling starts the new runners before stopping the old ones;
// recreate stops the old ones first.
const (
	StrategyRolling  Strategy = "rolling"
	StrategyRecreate Strategy = "recreate"
)

// ParseStrategy accepts "", "rolling" and "recreate"; "" means rolling.
func ParseStrategy(s string) (Strategy, error) {
	switch Strategy(s) {
	case "", StrategyRolling:
		return StrategyRolling, nil
	case StrategyRecreate:
		return StrategyRecreate, nil
	}
	return "", fmt.Errorf("unknown strategy %q: want rolling or recreate", s)
}

// RunnerState is the state of one runner, as fal names them.
type RunnerState string

// Runner states.
const (
	RunnerPending      RunnerState = "pending"
	RunnerSetup        RunnerState = "setup"
	RunnerIdle         RunnerState = "idle"
	RunnerRunning      RunnerState = "running"
	RunnerDraining     RunnerState = "draining"
	RunnerTerminating  RunnerState = "terminating"
	RunnerTerminated   RunnerState = "terminated"
	RunnerCrashBackoff RunnerState = "crash_backoff"
)

// ParseRunnerState checks s names a runner state.
func ParseRunnerState(s string) (RunnerState, error) {
	switch st := RunnerState(s); st {
	case RunnerPending, RunnerSetup, RunnerIdle, RunnerRunning, RunnerDraining,
		RunnerTerminating, RunnerTerminated, RunnerCrashBackoff:
		return st, nil
	}
	return "", fmt.Errorf("unknown runner state %q", s)
}
