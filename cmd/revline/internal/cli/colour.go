package cli

import (
	"strings"

	"github.com/revline/revline/events"
	"github.com/revline/revline/workers/webhooks"
)

// envNoColor turns colour off whatever the terminal (https://no-color.org).
const envNoColor = "NO_COLOR"

// useColour decides whether tables are coloured: only on a terminal, and
// not when NO_COLOR is set to anything but "" (as no-color.org asks).
func useColour(stdoutTerminal bool, noColor string) bool {
	return stdoutTerminal && noColor == ""
}

// showProgress decides whether a long wait prints its steps on stderr:
// only with table output (JSON is for programs) and stderr a terminal, so
// that pipes and scripts get the same output as without a wait.
func showProgress(output string, stderrTerminal bool) bool {
	return (output == outputTable || output == outputWide) && stderrTerminal
}

// SGR sequences of the status colours.
const (
	sgrGreen  = "\x1b[32m"
	sgrYellow = "\x1b[33m"
	sgrRed    = "\x1b[31m"
	sgrFaint  = "\x1b[2m"
	sgrReset  = "\x1b[0m"
)

// statusColours colour a status word: serving or done green, on the way
// yellow, failing red, gone faint.
var statusColours = map[string]string{
	string(events.StatusDeployed):     sgrGreen,
	string(events.RunnerIdle):         sgrGreen,
	string(events.RunnerRunning):      sgrGreen,
	string(events.StatusDeploying):    sgrYellow,
	string(events.StatusSuspended):    sgrYellow,
	string(events.RunnerPending):      sgrYellow,
	string(events.RunnerSetup):        sgrYellow,
	string(events.RunnerDraining):     sgrYellow,
	string(events.RunnerTerminating):  sgrYellow,
	string(events.StatusFailed):       sgrRed,
	string(events.RunnerCrashBackoff): sgrRed,
	string(events.RunnerTerminated):   sgrFaint,
	webhooks.StatusActive:             sgrGreen,
	webhooks.StatusDisabled:           sgrYellow,
	webhooks.StatusRemoved:            sgrFaint,
}

// paintStatus colours a status cell ("deployed", "deployed, never live",
// "disabled by alice 3m ago") by its first word; a crash-looping revision
// is red, whatever its status. A cell of no known status is left as it
// is.
func paintStatus(cell string) string {
	word, _, _ := strings.Cut(strings.ReplaceAll(cell, ",", " "), " ")
	colour := statusColours[word]
	if strings.Contains(cell, "crash-looping") {
		colour = sgrRed
	}
	if colour == "" {
		return cell
	}
	return colour + cell + sgrReset
}
