package cli

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/revline/revline/projections/queryapi"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// group returns a command that groups others (apps, runners, ...): it
// runs none itself, and `revline GROUP --help` lists them.
func group(name, short string, children ...*cobra.Command) *cobra.Command {
	g := &cobra.Command{
		Use:     name,
		Short:   short,
		Example: fmt.Sprintf("  %s\n  revline %s --help", strings.TrimSpace(children[0].Example), name),
	}
	g.AddCommand(children...)
	makeGroup(g)
	return g
}

// makeGroup makes g a group: `revline GROUP` alone or with an unknown
// command is a usage error.
func makeGroup(g *cobra.Command) {
	if g.Annotations == nil {
		g.Annotations = map[string]string{}
	}
	g.Annotations[groupAnnotation] = "true"
	g.Args = cobra.ArbitraryArgs
	g.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			var names []string
			for _, c := range cmd.Commands() {
				names = append(names, c.Name())
			}
			return unknownCommandError{fmt.Sprintf("unknown command %q: it needs one of %s; run `revline --help` or `%s --help`", cmd.Name(), strings.Join(names, ", "), cmd.CommandPath())}
		}
		return unknownCommand(cmd, args)
	}
}

// groupAnnotation marks the root and the groups: they run no command of
// their own, so their usage shows only `revline GROUP [command]`.
const groupAnnotation = "revline/group"

// clientAnnotation marks the client commands: those that talk to a
// server, with the root's connection flags.
const clientAnnotation = "revline/client"

// usageTemplate is cobra's, without the usage line of a command that only
// groups others, and with the root's persistent flags (global), the
// connection flags, in full in the root's help only: a client command's
// help names them in a line.
func usageTemplate(global *pflag.FlagSet) string {
	var names []string
	global.VisitAll(func(f *pflag.Flag) { names = append(names, "--"+f.Name) })
	return usageHead + `{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalNonPersistentFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if not .HasParent}}

Global Flags (every command that talks to a server, before or after its name):
{{.PersistentFlags.FlagUsages | trimTrailingWhitespaces}}{{else if index .Annotations "` + clientAnnotation + `"}}

Global Flags (the server to talk to, and the token to sign with; see "revline --help"):
  ` + strings.Join(names, ", ") + `{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} [command] --help" for more information about a command.{{end}}
`
}

// usageHead is the start of usageTemplate, cobra's.
const usageHead = `Usage:{{if and .Runnable (not (index .Annotations "` + groupAnnotation + `"))}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} [command]{{end}}{{if gt (len .Aliases) 0}}

Aliases:
  {{.NameAndAliases}}{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}

Available Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}`

// unknownCommand is the error for args that name no command under cmd,
// with the nearest command's name if one is within a typo.
func unknownCommand(cmd *cobra.Command, args []string) error {
	asked := strings.TrimSpace(strings.TrimPrefix(cmd.CommandPath()+" "+args[0], "revline"))
	msg := fmt.Sprintf("unknown command %q", asked)
	if near := nearest(cmd.Root(), asked); near != "" {
		msg += fmt.Sprintf("; did you mean %q?", near)
	}
	return unknownCommandError{msg + "; run `revline --help` for the list"}
}

// nearest returns the name of the command closest to asked: one its name,
// or the last word of its name, is within a typo of (at most a third of
// the letters, and at most 3), or "".
func nearest(root *cobra.Command, asked string) string {
	limit := min(3, len(asked)/3+1)
	best, bestDistance := "", limit+1
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if !c.Runnable() || c.Hidden || c == root {
			return
		}
		name := strings.TrimPrefix(c.CommandPath(), "revline ")
		candidates := []string{name}
		if c.Parent() != root && !strings.Contains(asked, " ") {
			candidates = append(candidates, c.Name()) // `revline scale` for `revline apps scale`
		}
		for _, candidate := range candidates {
			if d := editDistance(asked, candidate); d < bestDistance {
				best, bestDistance = name, d
			}
		}
	}
	walk(root)
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

// line is the build as `revline version` and `revline --version` print it.
func (b buildInfo) line() string {
	line := "revline " + b.Version
	if b.Commit != "" {
		line += " (commit " + b.Commit[:min(len(b.Commit), 12)]
		if b.Modified {
			line += ", modified"
		}
		line += ")"
	}
	return line + " " + b.Go
}

// serverVersionLimit bounds how long `revline version` waits for the
// server: it prints the CLI's own version whatever the server does.
const serverVersionLimit = 2 * time.Second

// versionReport is what `revline version` prints: the CLI's build and,
// when a server answers, its version.
type versionReport struct {
	buildInfo
	// Server is the version of the server the CLI talks to, "" when none
	// answered (ServerError says why).
	Server      string `json:"server,omitempty"`
	ServerError string `json:"server_error,omitempty"`
}

func versionCommand() *cobra.Command {
	cmd, f := clientCommand("version", "Print the CLI's and the server's versions", "revline version -o json", 0, 0)
	cmd.Long = "Print the version, the commit it was built from and the Go version, and the server's version when it answers."
	f.outputs = nil
	cmd.RunE = func(cmd *cobra.Command, pos []string) error {
		e := envOf(cmd)
		if err := f.check(e, pos, nil); err != nil {
			return err
		}
		report := versionReport{buildInfo: currentBuild()}
		ctx, cancel := context.WithTimeout(e.ctx, serverVersionLimit)
		defer cancel()
		err := f.run(ctx, func(ctx context.Context, s *session) error {
			v, err := queryapi.NewClient(s.nc).ServerVersion(ctx)
			report.Server = v.Version
			return err
		})
		if err != nil {
			report.ServerError = err.Error()
		}
		if f.output == outputJSON {
			return printJSON(e.stdout, report)
		}
		fmt.Fprintln(e.stdout, report.line())
		if report.Server != "" {
			fmt.Fprintf(e.stdout, "server %s at %s\n", report.Server, f.natsURL)
		} else {
			fmt.Fprintf(e.stdout, "server: no answer from %s (%s)\n", f.natsURL, report.ServerError)
		}
		return nil
	}
	return cmd
}

// completionExamples load the completion of each shell cobra knows.
var completionExamples = map[string]string{
	"bash":       "source <(revline completion bash)",
	"zsh":        `revline completion zsh > "${fpath[1]}/_revline"`,
	"fish":       "revline completion fish | source",
	"powershell": "revline completion powershell | Out-String | Invoke-Expression",
}

// addBuiltinExamples adds cobra's help and completion commands now, rather
// than when the command line runs, and gives them an example as every
// command has.
func addBuiltinExamples(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		switch c.Name() {
		case "help":
			c.Example = "  revline help apps scale"
			// cobra's shows the top-level help for an unknown command.
			c.Run = nil
			c.RunE = func(c *cobra.Command, args []string) error {
				target, rest, err := c.Root().Find(args)
				switch {
				case err != nil:
					return usageError{err.Error()}
				case len(rest) > 0:
					return unknownCommand(target, rest)
				}
				return target.Help()
			}
		case "completion":
			makeGroup(c)
			c.Short = "Generate a shell completion script"
			c.Example = "  source <(revline completion bash)\n  revline completion zsh > \"${fpath[1]}/_revline\""
			for _, shell := range c.Commands() {
				shell.Example = "  " + completionExamples[shell.Name()]
			}
		}
	}
}
