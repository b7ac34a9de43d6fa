package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/revline/revline/events"
	"github.com/revline/revline/projections"
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

// Tables as users see them, at a fixed now: by default within 100 columns
// with times relative to now, with -o wide every column and exact times.
func TestTableGolden(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC)
	revs := []projections.RevisionView{
		{Number: 3, RevisionID: "c0da738e-b3eb-5a14-a8b9-010f64ee3638", Status: events.StatusFailed, CreatedAt: now.Add(-90 * time.Second),
			Message: "broken: the model weights are not where the loader looks for them", FailReason: "runner exited with status 1"},
		{Number: 2, RevisionID: "a6fd1915-6aa1-5fb9-bfdb-373f5d227b2c", Status: events.StatusDeployed, Current: true, CreatedAt: now.Add(-47 * time.Minute),
			Runners: 2, Message: "second version", CrashBackoff: 1, Restarts: 4},
		{Number: 1, RevisionID: "404066ce-21b7-575e-b67a-796cdbe658e6", Status: events.StatusDeployed, CreatedAt: now.Add(-76 * time.Hour),
			Message: "first version"},
	}
	for i := range revs {
		revs[i].CodeParams = events.DefaultCodeParams()
		revs[i].RuntimeParams = events.DefaultRuntimeParams()
	}
	revs[1].MachineType = "GPU-H100"
	expires := now.Add(4 * time.Minute)
	runners := []projections.RunnerView{
		{RunnerID: "01a214e9-c31c-7d34-bee6-9380ace5896c", RevisionID: revs[1].RevisionID, State: events.RunnerRunning, InFlight: 3,
			StartedAt: now.Add(-5*time.Hour - 12*time.Minute), UpdatedAt: now.Add(-2 * time.Second), PID: 4242, Port: 40001},
		{RunnerID: "01a2183f-7dbf-72a7-9c0f-3454ea8a294e", RevisionID: revs[1].RevisionID, State: events.RunnerIdle, ExpiresAt: &expires,
			StartedAt: now.Add(-330 * time.Second), UpdatedAt: now.Add(-61 * time.Second), PID: 4243, Port: 40002, Restarts: 4,
			LastCrash: "exit status 1: Traceback (most recent call last): FileNotFoundError: weights.bin"},
	}
	for _, wide := range []bool{false, true} {
		name := "table"
		if wide {
			name = "wide"
		}
		ts := tableStyle{now: now, wide: wide}
		var b strings.Builder
		b.WriteString("$ revline apps list-rev my-model -o " + name + "\n")
		ts.printRevisions(&b, revs)
		b.WriteString("\n$ revline apps runners my-model -o " + name + "\n")
		ts.printRunners(&b, runners)
		t.Run(name, func(t *testing.T) {
			for _, line := range strings.Split(b.String(), "\n") {
				if !wide && utf8.RuneCountInString(line) > 100 {
					t.Errorf("line wider than 100 columns: %q", line)
				}
			}
			golden(t, "tables-"+name, b.String())
		})
	}
}
