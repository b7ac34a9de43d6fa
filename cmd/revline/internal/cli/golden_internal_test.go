package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with what the tests print")

// golden compares got with testdata/name.golden, or with -update writes
// it there: a change of the output shows in the file's diff.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to write it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -run %s -update rewrites it; review the diff):\n--- got\n%s\n--- want\n%s", path, t.Name(), got, want)
	}
}

// Help as users see it. The environment is cleared of REVLINE_ variables,
// whose values help shows as defaults; so it cannot run in parallel.
func TestHelpGolden(t *testing.T) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "REVLINE_") {
			t.Setenv(name, "")
		}
	}
	t.Setenv(envActor, "alice@laptop")
	for name, args := range map[string][]string{
		"help-root":       {"--help"},
		"help-apps":       {"apps", "--help"},
		"help-deploy":     {"deploy", "--help"},
		"help-apps-scale": {"help", "apps", "scale"},
		"help-completion": {"completion", "--help"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Main(t.Context(), args, &stdout, &stderr); code != ExitOK || stderr.Len() != 0 {
				t.Fatalf("exit %d, stderr %q", code, stderr.String())
			}
			golden(t, name, stdout.String())
		})
	}
}
