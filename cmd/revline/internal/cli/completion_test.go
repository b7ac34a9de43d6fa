package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/revline/revline/cmd/revline/internal/cli"
)

// `revline completion SHELL` prints a script for each shell cobra knows;
// the scripts ask `revline __complete` for the words, which knows every
// command and flag value.
func TestCompletionScripts(t *testing.T) {
	t.Parallel()
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r := run(t, "completion", shell)
		if r.code != cli.ExitOK || r.stderr != "" || !strings.Contains(r.stdout, "__complete") {
			t.Fatalf("completion %s: exit %d, stderr %q, stdout %.200q", shell, r.code, r.stderr, r.stdout)
		}
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{""}, []string{"apps", "audit", "completion", "deploy", "runners", "secrets", "serve", "tokens", "version", "webhooks"}},
		{[]string{"apps", "l"}, []string{"list", "list-rev"}},
		{[]string{"audit", "v"}, []string{"verify"}},
		{[]string{"apps", "list", "-o", ""}, []string{"table", "json"}},
		{[]string{"audit", "--output", ""}, []string{"table", "json", "jsonl"}},
		{[]string{"deploy", "my-app", "--str"}, []string{"--strategy"}},
	} {
		r := run(t, append([]string{"__completeNoDesc"}, tc.args...)...)
		got := lines(t, r.stdout)
		if r.code != cli.ExitOK || len(got) == 0 || !strings.HasPrefix(got[len(got)-1], ":") {
			t.Fatalf("__complete %q: exit %d, stdout %q, stderr %q", tc.args, r.code, r.stdout, r.stderr)
		}
		if words := got[:len(got)-1]; !slices.Equal(words, tc.want) && !containsAll(words, tc.want) {
			t.Errorf("__complete %q = %q, want %q", tc.args, words, tc.want)
		}
	}
}

func containsAll(words, want []string) bool {
	for _, w := range want {
		if !slices.Contains(words, w) {
			return false
		}
	}
	return true
}

// The bash script loads in bash and registers the completion of revline.
func TestBashCompletionLoads(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash here")
	}
	r := run(t, "completion", "bash")
	script := filepath.Join(t.TempDir(), "revline.bash")
	if err := os.WriteFile(script, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), bash, "--norc", "-c", `source "$1" && complete -p revline`, "bash", script).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "__start_revline revline") {
		t.Fatalf("source the script; complete -p revline: %v\n%s", err, out)
	}
}
