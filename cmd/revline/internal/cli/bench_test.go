package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/revline/revline/cmd/revline/internal/cli"
)

func TestBenchJSONIsOneObjectWithEveryCase(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the benchmark (embedded NATS, command processor, HTTP servers)")
	}
	r := run(t, "bench", "--ops", "10", "--revisions", "100", "--requests", "50", "--concurrency", "2", "-o", "json")
	if r.code != cli.ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	var doc struct {
		OK    bool                       `json:"ok"`
		Cases map[string]json.RawMessage `json:"cases"`
	}
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, r.stdout)
	}
	if dec.More() {
		t.Errorf("stdout has more than one JSON value:\n%s", r.stdout)
	}
	for _, id := range []string{"raw_jetstream_publish", "event_append", "raw_nats_request", "command_round_trip", "http_direct", "http_reverse_proxy", "http_gateway"} {
		if _, ok := doc.Cases[id]; !ok {
			t.Errorf("no case %s in:\n%s", id, r.stdout)
		}
	}
	if !doc.OK {
		t.Errorf("ok is false:\n%s", r.stdout)
	}
}

func TestBenchUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"bench", "-o", "yaml"},
		{"bench", "--requests", "0"},
		{"bench", "--concurrency", "0"},
		{"bench", "--ops", "0"},
		{"bench", "--revisions", "0"},
		{"bench", "--startup-events", "-1"},
		{"bench", "now"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			r := run(t, args...)
			if r.code != cli.ExitUsage || r.stdout != "" || !strings.Contains(r.stderr, "usage: revline bench") {
				t.Errorf("exit %d, stdout %q, stderr %q; want a usage error", r.code, r.stdout, r.stderr)
			}
		})
	}
}
