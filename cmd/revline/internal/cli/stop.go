package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/revline/revline/cmd/revline/internal/control"
	"github.com/revline/revline/events"
	"github.com/spf13/cobra"
)

// runnerStopCommand is `runners stop` (graceful) or, with force,
// `runners kill`.
func runnerStopCommand(force bool) *cobra.Command {
	use, short, long := "stop APP RUNNER", "Stop a runner gracefully", "Stop one runner gracefully: it gets no new request and stops once its requests have ended; --replace starts its replacement first."
	example := "revline runners stop my-model 01a2183f-7dbf-72a7-9c0f-3454ea8a294e --replace"
	if force {
		use, short, long = "kill APP RUNNER", "Kill a runner at once", "Kill one runner at once: its requests in flight fail (502) and are counted."
		example = "revline runners kill my-model 01a2183f-7dbf-72a7-9c0f-3454ea8a294e"
	}
	cmd, f := clientCommand(use, short, example, 2, 0)
	cmd.Long = long
	var replace, noWait bool
	if !force {
		cmd.Flags().BoolVar(&replace, "replace", false, "start a replacement runner, and wait until it is ready, before the drain starts")
	}
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the stop is requested")
	f.runE(cmd, nil, func(ctx context.Context, e env, s *session, pos []string) error {
		res, err := s.control.StopRunner(ctx, pos[0], pos[1], force, replace, !noWait)
		return render(e, f, res, err, func(w io.Writer, res control.StopResult) {
			switch {
			case res.Status == events.OutcomeNoOp:
				fmt.Fprintf(w, "Nothing to do: %s\n", res.Message)
			case res.Stopped:
				fmt.Fprintf(w, "Runner %s of %s stopped: %s\n", res.RunnerID, res.App, res.Reason)
			default:
				fmt.Fprintf(w, "Stop of runner %s of %s requested.\n", res.RunnerID, res.App)
			}
		})
	})
	return cmd
}
