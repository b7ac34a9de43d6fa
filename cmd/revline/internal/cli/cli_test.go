package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/revline/revline/cmd/revline/internal/cli"
)

// unreachable is a NATS URL nothing listens on: a command that tries to
// connect fails at once with "cannot reach NATS", so a usage error that
// comes back instead proves the command never tried.
const unreachable = "nats://127.0.0.1:1"

// runnerID is a well-formed runner id.
const runnerID = "01a214e9-c31c-7d34-bee6-9380ace5896c"

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := cli.Main(ctx, args, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// lines splits s into its newline-terminated lines and fails unless every
// line, the last one included, ends with a newline.
func lines(t *testing.T, s string) []string {
	t.Helper()
	if s == "" {
		return nil
	}
	if !strings.HasSuffix(s, "\n") {
		t.Errorf("output %q does not end with a newline", s)
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func TestHelpGoesToStdoutWithExitZero(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{nil, {"--help"}, {"-h"}, {"help"}} {
		t.Run(strings.Join(append([]string{"revline"}, args...), " "), func(t *testing.T) {
			t.Parallel()
			r := run(t, args...)
			if r.code != cli.ExitOK || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			for _, want := range []string{"revline [command]", "deploy", "apps", "serve", "runners", "completion"} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("help does not mention %q:\n%s", want, r.stdout)
				}
			}
		})
	}
}

func TestCommandHelpShowsUsageAndExampleWithoutConnecting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"deploy", "--help"}, "revline deploy APP [flags]"},
		{[]string{"apps", "list-rev", "-h"}, "revline apps list-rev APP [flags]"},
		{[]string{"apps", "scale", "my-app", "--help", "--nats-url", unreachable}, "--min-concurrency"},
		{[]string{"runners", "logs", "--help"}, "revline runners logs APP RUNNER [flags]"},
		{[]string{"help", "apps", "scale"}, "revline apps scale APP [flags]"},
		{[]string{"version", "--help"}, "revline version [flags]"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			r := run(t, tc.args...)
			if r.code != cli.ExitOK || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			if !strings.Contains(r.stdout, tc.want) || !strings.Contains(r.stdout, "Examples:") {
				t.Errorf("help lacks %q or an example:\n%s", tc.want, r.stdout)
			}
		})
	}
}

func TestVersionPrintsTheVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}} {
		r := run(t, args...)
		if r.code != cli.ExitOK || !strings.HasPrefix(r.stdout, "revline "+cli.Version+" ") || !strings.Contains(r.stdout, runtime.Version()) || r.stderr != "" {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
	r := run(t, "version", "-o", "json")
	var got struct{ Version, Go string }
	if r.code != cli.ExitOK || json.Unmarshal([]byte(r.stdout), &got) != nil || got.Version != cli.Version || got.Go != runtime.Version() {
		t.Fatalf("version -o json: exit %d, stdout %q", r.code, r.stdout)
	}
}

// `revline help CMD`, `revline GROUP --help` and typos get what kubectl
// and gh users expect.
func TestHelpForGroupsCommandsAndTypos(t *testing.T) {
	t.Parallel()
	r := run(t, "apps", "--help")
	if r.code != cli.ExitOK || !strings.Contains(r.stdout, "\n  scale ") || strings.Contains(r.stdout, "deploy ") {
		t.Fatalf("apps --help: exit %d, stdout %q", r.code, r.stdout)
	}
	r = run(t, "help", "apps", "scale")
	if r.code != cli.ExitOK || !strings.Contains(r.stdout, "revline apps scale APP") {
		t.Fatalf("help apps scale: exit %d, stdout %q", r.code, r.stdout)
	}
	for typo, want := range map[string]string{"delpoy": "deploy", "scael": "apps scale", "apps lst": "apps list"} {
		r := run(t, strings.Fields(typo)...)
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, fmt.Sprintf("did you mean %q?", want)) {
			t.Errorf("%s: exit %d, stderr %q, want a suggestion of %q", typo, r.code, r.stderr, want)
		}
	}
}

func TestUnknownCommandExitsTwoWithOneLine(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"frobnicate"}, {"apps"}, {"apps", "frobnicate", "my-app"}, {"audit", "verify", "--frobnicate"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			r := run(t, args...)
			if r.code != cli.ExitUsage {
				t.Fatalf("exit %d, want %d (stderr %q)", r.code, cli.ExitUsage, r.stderr)
			}
			got := lines(t, r.stderr)
			if len(got) != 1 || !strings.Contains(got[0], "unknown") || !strings.Contains(got[0], "--help") {
				t.Fatalf("stderr %q, want one line naming the unknown command", r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q", r.stdout)
			}
		})
	}
}

// Usage errors exit 2 with one line, the error and the usage, and are
// found before any connection is tried.
func TestUsageErrorsExitTwoBeforeConnecting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		args    []string
		mention string
		usage   string
	}{
		{"list-rev without APP", []string{"apps", "list-rev"}, "want 1 argument", "usage: revline apps list-rev APP"},
		{"set-rev with one argument", []string{"apps", "set-rev", "my-app"}, "want 2 argument", "usage: revline apps set-rev APP REVISION"},
		{"list with an argument", []string{"apps", "list", "my-app"}, "apps list takes no arguments", "usage: revline apps list"},
		{"deploy without --command", []string{"deploy", "my-app"}, "--command is required", "usage: revline deploy APP"},
		{"deploy with an unknown strategy", []string{"deploy", "my-app", "--command", "run", "--strategy", "blue-green"}, "unknown strategy", "usage: revline deploy APP"},
		{"set-rev with an unknown strategy", []string{"apps", "set-rev", "my-app", "0193f1c2", "--strategy", "yolo"}, "unknown strategy", "usage: revline apps set-rev"},
		{"runners with an unknown state", []string{"apps", "runners", "my-app", "--state", "sleeping"}, "unknown runner state", "usage: revline apps runners"},
		{"negative min concurrency", []string{"apps", "scale", "my-app", "--min-concurrency", "-1"}, "negative", "usage: revline apps scale APP"},
		{"fractional keep-alive", []string{"apps", "scale", "my-app", "--keep-alive", "1.5s"}, "whole number of seconds", "usage: revline apps scale APP"},
		{"max concurrency not a number", []string{"apps", "scale", "my-app", "--max-concurrency", "many"}, "not a whole number", "usage: revline apps scale APP"},
		{"scale without a parameter", []string{"apps", "scale", "my-app"}, "at least one parameter", "usage: revline apps scale APP"},
		{"yaml output", []string{"apps", "list", "-o", "yaml"}, `output format "yaml"`, "usage: revline apps list"},
		{"yaml output, long flag", []string{"apps", "list-rev", "my-app", "--output", "yaml"}, `output format "yaml"`, "usage: revline apps list-rev APP"},
		{"zero timeout", []string{"apps", "list", "--timeout", "0s"}, "--timeout must be positive", "usage: revline apps list"},
		{"unknown flag", []string{"apps", "list", "--colour"}, "unknown flag: --colour", "usage: revline apps list"},
		{"long flag with one dash", []string{"apps", "list", "-timeout=5s"}, "a long flag takes two dashes: --timeout", "usage: revline apps list"},
		{"unknown shorthand", []string{"apps", "list", "-x"}, "unknown shorthand flag: 'x' in -x", "usage: revline apps list"},
		{"missing credentials file", []string{"apps", "list", "--nats-creds", "/nonexistent/revline.creds"}, "--nats-creds /nonexistent/revline.creds", "usage: revline apps list"},
		{"client cert without key", []string{"apps", "list", "--nats-tls-cert", "/dev/null"}, "go together", "usage: revline apps list"},
		{"credentials for the embedded server", []string{"serve", "--nats-creds", "/dev/null"}, "need --nats-url", "usage: revline serve"},
		{"annotation without =", []string{"deploy", "my-app", "--command", "run", "--annotation", "team"}, "not KEY=VALUE", "usage: revline deploy APP"},
		{"annotation given twice", []string{"deploy", "my-app", "--command", "run", "--annotation", "a=b", "--annotation", "a=c"}, "given twice", "usage: revline deploy APP"},
		{"usage error wins over a bad app name", []string{"deploy", "a.b"}, "--command is required", "usage: revline deploy APP"},
		{"serve with an argument", []string{"serve", "now"}, "serve takes no arguments", "usage: revline serve"},
		{"serve with a bad log level", []string{"serve", "--log-level", "loud"}, "--log-level", "usage: revline serve"},
		{"serve with a reversed uid range", []string{"serve", "--runner-uid-range", "300000-200000"}, "first uid above the last", "usage: revline serve"},
		{"serve with a uid range from root", []string{"serve", "--runner-uid-range", "0-1000"}, "starts at root", "usage: revline serve"},
		{"serve with a uid range that is no range", []string{"serve", "--runner-uid-range", "200000"}, "want FIRST-LAST", "usage: revline serve"},
		{"runners logs without RUNNER", []string{"runners", "logs", "my-app"}, "want 2 argument", "usage: revline runners logs APP RUNNER"},
		{"secrets set without a secret", []string{"secrets", "set", "my-app"}, "want 2 to", "usage: revline secrets set APP NAME[=VALUE]..."},
		{"secret name that is no variable name", []string{"secrets", "set", "my-app", "HF-TOKEN=x"}, `invalid secret name "HF-TOKEN"`, "usage: revline secrets set"},
		{"secret named like a variable Revline sets", []string{"secrets", "set", "my-app", "PORT=80"}, "Revline sets this variable", "usage: revline secrets set"},
		{"two secrets from stdin", []string{"secrets", "set", "my-app", "A", "B"}, "only one secret can take its value from stdin", "usage: revline secrets set"},
		{"runners logs of a path", []string{"runners", "logs", "my-app", "../../etc/passwd"}, "is not a runner id", "usage: revline runners logs APP RUNNER"},
		{"runners logs of a runner that is not a UUID", []string{"runners", "logs", "my-app", "runner-1"}, "is not a runner id", "usage: revline runners logs APP RUNNER"},
		{"runners logs with a negative tail", []string{"runners", "logs", "my-app", runnerID, "--tail", "-1"}, "from 0 to 10000, or all", "usage: revline runners logs APP RUNNER"},
		{"audit with two apps", []string{"audit", "a", "b"}, "want 0 to 1 argument", "usage: revline audit [APP]"},
		{"audit with a bad since", []string{"audit", "--since", "yesterday"}, "--since", "usage: revline audit [APP]"},
		{"audit with a bad until", []string{"audit", "--until", "-2h"}, "--until", "usage: revline audit [APP]"},
		{"audit with an empty window", []string{"audit", "--since", "1h ago", "--until", "2h ago"}, "is not before", "usage: revline audit [APP]"},
		{"audit with a bad type glob", []string{"audit", "--type", "revision.["}, "not a valid glob", "usage: revline audit [APP]"},
		{"audit of a revision without APP", []string{"audit", "--revision", "v3"}, "--revision needs APP", "usage: revline audit [APP]"},
		{"audit following as a JSON array", []string{"audit", "--follow", "-o", "json"}, "use -o jsonl", "usage: revline audit [APP]"},
		{"audit following with a limit", []string{"audit", "--follow", "--limit", "3"}, "do not go together", "usage: revline audit [APP]"},
		{"audit as yaml", []string{"audit", "-o", "yaml"}, "want table, json, wide or jsonl", "usage: revline audit [APP]"},
		{"show at sequence 0", []string{"apps", "show", "my-app", "--at-seq", "0"}, "not a stream sequence", "usage: revline apps show APP"},
		{"list-rev at a bad time", []string{"apps", "list-rev", "my-app", "--at", "last tuesday"}, "--at", "usage: revline apps list-rev APP"},
		{"list-rev at a bad sequence", []string{"apps", "list-rev", "my-app", "--at-seq", "-4"}, "not a stream sequence", "usage: revline apps list-rev APP"},
		{"blame without PARAM", []string{"apps", "blame", "my-app"}, "want 2 argument", "usage: revline apps blame APP PARAM"},
		{"diff of one revision", []string{"apps", "diff", "my-app", "v1"}, "give two revisions", "usage: revline apps diff APP [REV_A REV_B]"},
		{"diff at one time", []string{"apps", "diff", "my-app", "--at", "1h ago"}, "two times", "usage: revline apps diff APP [REV_A REV_B]"},
		{"diff of revisions and times", []string{"apps", "diff", "my-app", "v1", "v2", "--at", "1h ago", "--at", "now"}, "two times", "usage: revline apps diff APP [REV_A REV_B]"},
		{"diff at a bad time", []string{"apps", "diff", "my-app", "--at", "soon", "--at", "now"}, "soon", "usage: revline apps diff APP [REV_A REV_B]"},
		{"history without APP", []string{"apps", "history"}, "want 1 argument", "usage: revline apps history APP"},
		{"history as jsonl", []string{"apps", "history", "my-app", "-o", "jsonl"}, "want table, json or wide", "usage: revline apps history APP"},
		{"runners logs with a tail over the maximum", []string{"runners", "logs", "my-app", runnerID, "--tail", "10001"}, "from 0 to 10000, or all", "usage: revline runners logs APP RUNNER"},
		{"replay with an argument", []string{"replay", "my-app"}, "replay takes no arguments", "usage: revline replay"},
		{"replay to sequence 0", []string{"replay", "--to-seq", "0"}, "not a stream sequence", "usage: revline replay"},
		{"replay as jsonl", []string{"replay", "-o", "jsonl"}, `output format "jsonl"`, "usage: revline replay"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := tc.args
			if args[0] != "serve" {
				args = append(args, "--nats-url", unreachable)
			}
			r := run(t, args...)
			if r.code != cli.ExitUsage {
				t.Fatalf("exit %d, want %d (stderr %q)", r.code, cli.ExitUsage, r.stderr)
			}
			got := lines(t, r.stderr)
			if len(got) != 1 {
				t.Fatalf("stderr %q, want one line", r.stderr)
			}
			if !strings.HasPrefix(got[0], "Error: ") || !strings.Contains(got[0], tc.mention) {
				t.Errorf("stderr %q, want an error mentioning %q", got[0], tc.mention)
			}
			if !strings.Contains(got[0], "; "+tc.usage) {
				t.Errorf("stderr %q, want it to give the usage, %q", got[0], tc.usage)
			}
			if strings.Contains(r.stderr, "NATS") {
				t.Errorf("stderr %q: the command tried to connect before checking its usage", r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q", r.stdout)
			}
		})
	}
}

func TestInvalidAppNameExitsOneWithoutConnecting(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"apps", "list-rev", "a.b"},
		{"deploy", "a.b", "--command", "run"},
		{"apps", "set-rev", "My-App", "0193f1c2"},
		{"apps", "scale", "a*", "--min-concurrency", "1"},
		{"apps", "suspend", strings.Repeat("a", 64)},
		{"runners", "logs", "a.b", runnerID},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			r := run(t, append(args, "--nats-url", unreachable)...)
			if r.code != cli.ExitFailed {
				t.Fatalf("exit %d, want %d (stderr %q)", r.code, cli.ExitFailed, r.stderr)
			}
			got := lines(t, r.stderr)
			if len(got) != 1 || !strings.HasPrefix(got[0], "Error: ") || !strings.Contains(got[0], "invalid app name") {
				t.Fatalf("stderr %q, want one line mentioning invalid app name", r.stderr)
			}
			if strings.Contains(r.stderr, "NATS") {
				t.Errorf("stderr %q: the command tried to connect", r.stderr)
			}
		})
	}
}

func TestUnreachableServerExitsOneWithOneLine(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"apps", "list"},
		{"apps", "list-rev", "my-app", "-o", "json"},
		{"deploy", "my-app", "--command", "python3 -m http.server $PORT", "--min-concurrency", "1"},
		{"apps", "rollout", "my-app", "--force"},
		{"apps", "runners", "my-app", "--state", "all"},
		{"apps", "runners", "my-app", "-o", "wide"},
		// Code parameters on scale are accepted (with a warning once the
		// server answers), so they are no usage error.
		{"apps", "scale", "my-app", "--machine-type", "X"},
		{"runners", "logs", "my-app", runnerID, "--tail", "all", "--follow"},
		{"runners", "logs", "my-app", strings.ToUpper(runnerID), "-f", "--tail", "0", "-o", "json"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			r := run(t, append(args, "--nats-url", unreachable)...)
			if r.code != cli.ExitFailed {
				t.Fatalf("exit %d, want %d (stderr %q)", r.code, cli.ExitFailed, r.stderr)
			}
			got := lines(t, r.stderr)
			if len(got) != 1 || !strings.Contains(got[0], "cannot reach NATS at "+unreachable) || !strings.Contains(got[0], "revline serve") {
				t.Fatalf("stderr %q, want one line saying it cannot reach NATS", r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q", r.stdout)
			}
		})
	}
}

// One case per exit code: 0 for success (help, version, completion), 1
// for a failure (here: no server, a bad app name), 2 for a usage error;
// an error is one line on stderr, printed once, and nothing on stdout.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"--help"}, cli.ExitOK},
		{[]string{"apps", "scale", "--help"}, cli.ExitOK},
		{[]string{"--version"}, cli.ExitOK},
		{[]string{"completion", "bash"}, cli.ExitOK},
		{[]string{"apps", "list", "--nats-url", unreachable}, cli.ExitFailed},
		{[]string{"apps", "list-rev", "Bad.Name", "--nats-url", unreachable}, cli.ExitFailed},
		{[]string{"apps", "list-rev", "--nats-url", unreachable}, cli.ExitUsage},
		{[]string{"apps", "scale", "my-app", "--nats-url", unreachable}, cli.ExitUsage},
		{[]string{"apps", "lst"}, cli.ExitUsage},
		{[]string{"deploy", "my-app", "--command", "x", "--frobnicate"}, cli.ExitUsage},
		{[]string{"completion", "tcsh"}, cli.ExitUsage},
		{[]string{"help", "frobnicate"}, cli.ExitUsage},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			r := run(t, tc.args...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d (stderr %q)", r.code, tc.code, r.stderr)
			}
			if tc.code == cli.ExitOK {
				if r.stderr != "" || r.stdout == "" {
					t.Errorf("stdout %q, stderr %q; want output and no error", r.stdout, r.stderr)
				}
				return
			}
			if got := lines(t, r.stderr); len(got) != 1 || !strings.HasPrefix(got[0], "Error: ") || r.stdout != "" {
				t.Errorf("stdout %q, stderr %q; want one error line and nothing else", r.stdout, r.stderr)
			}
		})
	}
}

// The connection flags are the root's (Global Flags): given before or
// after the command's name, or by their environment variables, they reach
// every client command; a command that talks to no server as a client
// refuses them rather than ignore them. The environment is changed, so
// the test does not run in parallel.
func TestConnectionFlagsAreGlobal(t *testing.T) {
	t.Setenv("REVLINE_NATS_URL", "")
	for _, args := range [][]string{
		{"apps", "list", "--nats-url", unreachable},
		{"--nats-url", unreachable, "apps", "list"},
		{"apps", "--nats-url=" + unreachable, "scale", "my-app", "--min-concurrency", "1"},
		{"deploy", "my-app", "--command", "true", "--nats-url", unreachable, "--token-file", "/dev/null", "--nats-tls-ca", "/dev/null"},
	} {
		if r := run(t, args...); r.code != cli.ExitFailed || !strings.Contains(r.stderr, "cannot reach NATS at "+unreachable) {
			t.Errorf("%q: exit %d, stderr %q; want the connection to %s tried", args, r.code, r.stderr, unreachable)
		}
	}
	// A flag's file is checked: the flag reached the command.
	if r := run(t, "--nats-nkey", "/no/such/seed", "apps", "list"); r.code != cli.ExitUsage || !strings.Contains(r.stderr, "--nats-nkey /no/such/seed") {
		t.Errorf("--nats-nkey before the command: exit %d, stderr %q", r.code, r.stderr)
	}
	t.Setenv("REVLINE_NATS_URL", unreachable)
	if r := run(t, "apps", "list"); r.code != cli.ExitFailed || !strings.Contains(r.stderr, "cannot reach NATS at "+unreachable) {
		t.Errorf("REVLINE_NATS_URL: exit %d, stderr %q", r.code, r.stderr)
	}
	// Each would fail at once (a bad flag) or write only to a temporary
	// directory if it ran.
	for _, args := range [][]string{
		{"nats-config", "--token-file", "/dev/null", "--data-dir", t.TempDir()}, // its --nats-url is its own, as serve's
		{"serve", "--token-file", "/dev/null", "--log-level", "nope"},
		{"bench", "--nats-nkey", "/dev/null", "-o", "nope"},
	} {
		if r := run(t, args...); r.code != cli.ExitUsage || !strings.Contains(r.stderr, "talks to no server as a client") {
			t.Errorf("%q: exit %d, stderr %q; want a usage error", args, r.code, r.stderr)
		}
	}
	// A mistyped subcommand is said to be unknown, with the flags or not.
	if r := run(t, "apps", "rollouts", "my-app", "--nats-url", unreachable); r.code != cli.ExitUsage || !strings.Contains(r.stderr, `did you mean "apps rollout"`) {
		t.Errorf("a mistyped subcommand with a connection flag: exit %d, stderr %q", r.code, r.stderr)
	}
}
