package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
)

// groups returns the first words of the commands that have several words
// (apps, runners, secrets): `revline apps --help` lists a group.
func groups() []string {
	var out []string
	for _, c := range commands() {
		if group, _, ok := strings.Cut(c.name, " "); ok && !slices.Contains(out, group) {
			out = append(out, group)
		}
	}
	return out
}

// printGroupHelp lists the commands of group.
func printGroupHelp(w io.Writer, group string) {
	fmt.Fprintf(w, "Usage: revline %s COMMAND [ARGS] [FLAGS]\n\nCommands:\n", group)
	for _, c := range commands() {
		if strings.HasPrefix(c.name, group+" ") {
			fmt.Fprintf(w, "  %-18s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprintf(w, "\nRun `revline %s COMMAND --help` for a command's flags and an example.\n", group)
}

// helpFor answers what Main could not match to a command: help for
// everything, for a group or for a command (`revline help deploy`), the
// version, or an unknown command with the nearest known one. It returns
// the exit code.
func helpFor(e env, args []string) int {
	isHelp := func(s string) bool { return s == "-h" || s == "--help" || s == "help" }
	switch {
	case len(args) == 0 || (len(args) == 1 && isHelp(args[0])):
		printHelp(e.stdout)
		return ExitOK
	case args[0] == "--version":
		return Main(e.ctx, []string{"version"}, e.stdout, e.stderr)
	case args[0] == "help":
		// `revline help apps scale` is `revline apps scale --help`.
		return Main(e.ctx, append(args[1:], "--help"), e.stdout, e.stderr)
	case slices.Contains(groups(), args[0]):
		if len(args) > 1 && isHelp(args[1]) {
			printGroupHelp(e.stdout, args[0])
			return ExitOK
		}
		if len(args) == 1 {
			var names []string
			for _, c := range commands() {
				if rest, ok := strings.CutPrefix(c.name, args[0]+" "); ok {
					names = append(names, rest)
				}
			}
			fmt.Fprintf(e.stderr, "Error: unknown command %q: it needs one of %s; run `revline --help` or `revline %s --help`\n", args[0], strings.Join(names, ", "), args[0])
			return ExitUsage
		}
	}
	asked := strings.Join(args[:min(len(args), 2)], " ")
	if len(args) > 1 && strings.HasPrefix(args[1], "-") {
		asked = args[0]
	}
	msg := fmt.Sprintf("Error: unknown command %q", asked)
	if near := nearest(asked); near != "" {
		msg += fmt.Sprintf("; did you mean %q?", near)
	}
	fmt.Fprintf(e.stderr, "%s; run `revline --help` for the list\n", msg)
	return ExitUsage
}

// nearest returns the command name closest to asked: one its name, or the
// last word of its name, is within a typo of (at most a third of the
// letters, and at most 3), or "".
func nearest(asked string) string {
	limit := min(3, len(asked)/3+1)
	best, bestDistance := "", limit+1
	for _, c := range commands() {
		candidates := []string{c.name}
		if _, last, ok := strings.Cut(c.name, " "); ok && !strings.Contains(asked, " ") {
			candidates = append(candidates, last) // `revline scale` for `revline apps scale`
		}
		for _, name := range candidates {
			if d := editDistance(asked, name); d < bestDistance {
				best, bestDistance = c.name, d
			}
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// buildInfo is what `revline version` reports.
type buildInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	// Modified is true for a build from a work tree with uncommitted
	// changes.
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
}

func currentBuild() buildInfo {
	b := buildInfo{Version: Version, Go: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	return b
}

func versionCommand() command {
	c := command{
		name:    "version",
		summary: "Print the version, the commit it was built from and the Go version.",
		example: "revline version -o json",
	}
	c.run = func(e env, args []string) error {
		fs := c.flagSet()
		var output string
		fs.StringVar(&output, "o", outputTable, "output format: table or json")
		fs.StringVar(&output, "output", outputTable, "output format: table or json")
		pos, err := parse(e, fs, args)
		switch {
		case err != nil:
			return err
		case len(pos) > 0:
			return usagef("version takes no arguments, got %q", strings.Join(pos, " "))
		case output != outputTable && output != outputJSON:
			return usagef("output format %q: want table or json", output)
		}
		b := currentBuild()
		if output == outputJSON {
			enc := json.NewEncoder(e.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(b)
		}
		line := "revline " + b.Version
		if b.Commit != "" {
			line += " (commit " + b.Commit[:min(len(b.Commit), 12)]
			if b.Modified {
				line += ", modified"
			}
			line += ")"
		}
		_, err = fmt.Fprintf(e.stdout, "%s %s\n", line, b.Go)
		return err
	}
	return c
}
