package cli

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/revline/revline/cmd/revline/internal/control"
	"github.com/revline/revline/events"
)

// runnerStopCommand is `runners stop` (graceful) or, with force,
// `runners kill`.
func runnerStopCommand(force bool) command {
	c := command{
		name:    "runners stop",
		summary: "Stop one runner gracefully: it gets no new request and stops once its requests have ended; --replace starts its replacement first.",
		usage:   "APP RUNNER",
		example: "revline runners stop my-model 01a2183f-7dbf-72a7-9c0f-3454ea8a294e --replace",
	}
	if force {
		c.name = "runners kill"
		c.summary = "Kill one runner at once: its requests in flight fail (502) and are counted."
		c.example = "revline runners kill my-model 01a2183f-7dbf-72a7-9c0f-3454ea8a294e"
	}
	c.run = func(e env, args []string) error {
		var replace, noWait bool
		extra := func(fs *flag.FlagSet) {
			if !force {
				fs.BoolVar(&replace, "replace", false, "start a replacement runner, and wait until it is ready, before the drain starts")
			}
			fs.BoolVar(&noWait, "no-wait", false, "return once the stop is requested")
		}
		return withClient(e, c, args, 2, extra, nil, func(ctx context.Context, s *session, f *clientFlags, pos []string) error {
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
	}
	return c
}
