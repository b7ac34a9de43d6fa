package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// No test here asserts a time: only that every case ran, without errors,
// and that the report has the shape scripts rely on.

func checkCase(t *testing.T, cases map[string]Case, id string, ops, concurrency int) {
	t.Helper()
	c, ok := cases[id]
	switch {
	case !ok:
		t.Errorf("case %s is missing", id)
	case c.Ops != ops || c.Concurrency != concurrency || c.Errors != 0:
		t.Errorf("case %s: ops %d, concurrency %d, errors %d; want %d, %d, 0", id, c.Ops, c.Concurrency, c.Errors, ops, concurrency)
	case c.Name == "" || c.OpsPerSecond <= 0 || c.ElapsedSeconds <= 0 || c.P50Micros <= 0 || c.P99Micros < c.P50Micros:
		t.Errorf("case %s is incomplete: %+v", id, c)
	}
}

func TestHTTPCasesRunAgainstTheSameRunner(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cases, comparisons, err := RunHTTP(ctx, HTTPConfig{Requests: 200, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 3 {
		t.Errorf("got %d cases, want 3: %v", len(cases), cases)
	}
	for _, id := range []string{CaseHTTPDirect, CaseHTTPReverseProxy, CaseHTTPGateway} {
		checkCase(t, cases, id, 200, 4)
	}
	gw, ok := comparisons["gateway_vs_reverse_proxy"]
	if !ok || gw.Case != CaseHTTPGateway || gw.Baseline != CaseHTTPReverseProxy || gw.Target == nil {
		t.Fatalf("gateway_vs_reverse_proxy = %+v, %v", gw, ok)
	}
	if gw.Target.MaxP50Ratio != TargetP50Ratio || gw.Target.MinThroughputRatio != TargetThroughputRatio {
		t.Errorf("target = %+v", *gw.Target)
	}
	if met := gw.P50Ratio <= TargetP50Ratio && gw.ThroughputRatio >= TargetThroughputRatio; gw.Target.Met != met {
		t.Errorf("target met = %v with ratios %.3f and %.3f", gw.Target.Met, gw.P50Ratio, gw.ThroughputRatio)
	}
	direct, ok := comparisons["gateway_vs_direct"]
	if !ok || direct.Case != CaseHTTPGateway || direct.Baseline != CaseHTTPDirect || direct.Target != nil {
		t.Errorf("gateway_vs_direct = %+v, %v", direct, ok)
	}
	for id, c := range comparisons {
		if c.ThroughputRatio <= 0 || c.P50Ratio <= 0 || c.P99Ratio <= 0 {
			t.Errorf("comparison %s has a zero ratio: %+v", id, c)
		}
	}
}

func TestTheRunnerAnswers64Bytes(t *testing.T) {
	if len(runnerBody) != 64 {
		t.Errorf("the runner's answer has %d bytes, BENCHMARKS.md says 64", len(runnerBody))
	}
}

func TestHTTPConfigDefaults(t *testing.T) {
	for _, tc := range []struct {
		in             HTTPConfig
		warmup, rounds int
	}{
		{HTTPConfig{Requests: 50000, Concurrency: 16}, 5000, 10},
		{HTTPConfig{Requests: 200, Concurrency: 4}, 80, 10},
		{HTTPConfig{Requests: 10, Concurrency: 4}, 80, 2},
		{HTTPConfig{Requests: 1, Concurrency: 16}, 320, 1},
	} {
		c := tc.in
		if err := c.setDefaults(); err != nil {
			t.Fatal(err)
		}
		if c.Warmup != tc.warmup || c.Rounds != tc.rounds {
			t.Errorf("%+v: warm-up %d, rounds %d; want %d, %d", tc.in, c.Warmup, c.Rounds, tc.warmup, tc.rounds)
		}
	}
	for _, c := range []HTTPConfig{{Requests: 0, Concurrency: 1}, {Requests: 1, Concurrency: 0}} {
		if err := c.setDefaults(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

func TestRunReportsEveryCaseAsOneJSONObject(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded NATS server and a command processor")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := Run(ctx, Config{Ops: 20, Revisions: 1000, StartupEvents: 2000, HTTP: HTTPConfig{Requests: 100, Concurrency: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK || r.Machine.CPUs < 1 || r.Config.Ops != 20 || r.Config.Revisions != 1000 || r.Config.StartupEvents != 2000 || r.Config.Commands != 100 || r.Config.Requests != 100 || r.Config.Concurrency != 2 {
		t.Errorf("report header: ok %v, machine %+v, config %+v", r.OK, r.Machine, r.Config)
	}
	for _, id := range []string{CaseRawPublish, CaseEventAppend, CaseRawRequest, CaseCommandRoundTrip} {
		checkCase(t, r.Cases, id, 20, 1)
	}
	for _, id := range []string{CaseHTTPDirect, CaseHTTPReverseProxy, CaseHTTPGateway} {
		checkCase(t, r.Cases, id, 100, 2)
	}
	// Commands default to 5 × ops, in flight as many as there are, up to
	// 256 over as many apps (up to 1000) and 64 on one app.
	for _, id := range []string{CaseRawManySubjects, CaseCommandsManyApps} {
		checkCase(t, r.Cases, id, 100, 100)
	}
	for _, id := range []string{CaseRawOneSubject, CaseCommandsOneApp} {
		checkCase(t, r.Cases, id, 100, OneAppInFlight)
	}
	if tgt := r.Comparisons["commands_many_apps_vs_raw_publish"].Target; tgt == nil || tgt.MinThroughputRatio != TargetManyAppsThroughputRatio || tgt.MaxP50Ratio != 0 {
		t.Errorf("commands_many_apps_vs_raw_publish has target %+v", tgt)
	}
	for _, id := range []string{CaseCommandFewRevisions, CaseCommandManyRevs} {
		checkCase(t, r.Cases, id, 20, 1)
	}
	for _, id := range []string{CaseColdCommandFold, CaseColdCommandSnapshot} {
		checkCase(t, r.Cases, id, ColdSamples, 1)
	}
	// The textbook comparison: a run of 20 ops has one app of its own, and
	// 4 commands (a fifth of the ops).
	for _, id := range []string{CaseCommandsHistory, CaseTextbookReload} {
		checkCase(t, r.Cases, id, 4, 1)
	}
	// Start-up: 2,000 events over 19 apps (one deploy and at least 100
	// runner reports each), the first command to each measured.
	for _, id := range []string{CaseStartupFold, CaseStartupSnapshot} {
		checkCase(t, r.Cases, id, 19, 1)
	}
	// Replays have a rate and no latency: every event of the log, the
	// 1,010 deploys and the 2,000 start-up events at least.
	for _, id := range []string{CaseRawReplay, CaseProjectionRebuild, CaseReadModelSnapshot} {
		if c := r.Cases[id]; c.Ops < 1000+FewRevisions+2000 || c.OpsPerSecond <= 0 || c.Ops != r.Cases[CaseRawReplay].Ops {
			t.Errorf("case %s: %+v", id, c)
		}
	}
	for id, want := range map[string]Target{
		"projection_rebuild_vs_raw_replay":   {MinThroughputRatio: TargetRebuildRatio},
		"command_many_vs_few_revisions":      {MaxP50Ratio: TargetManyRevisionsP50Ratio},
		"startup_snapshots_vs_full_fold":     {MinThroughputRatio: TargetStartupSpeedup},
		"cold_command_snapshot_vs_full_fold": {},
		"commands_vs_textbook_reload":        {MinThroughputRatio: TargetTextbookSpeedup},
		"command_round_trip_vs_raw_publish":  {MaxP50Ratio: TargetRoundTripP50Ratio},
		"read_model_snapshot_vs_rebuild":     {MinThroughputRatio: TargetStartupSpeedup},
	} {
		c, ok := r.Comparisons[id]
		got := Target{}
		if c.Target != nil {
			got = *c.Target
			got.Met = false
		}
		if !ok || got != want {
			t.Errorf("comparison %s: %+v, %v; want target %+v", id, c, ok, want)
		}
	}

	// What a script sees.
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OK          bool `json:"ok"`
		Cases       map[string]map[string]any
		Comparisons map[string]struct {
			ThroughputRatio *float64 `json:"throughput_ratio"`
			P50Ratio        *float64 `json:"p50_ratio"`
			Target          *struct {
				Met *bool `json:"met"`
			} `json:"target"`
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Cases) != 22 || !doc.OK {
		t.Errorf("JSON has %d cases, ok %v; want 22, true: %s", len(doc.Cases), doc.OK, b)
	}
	for id, c := range doc.Cases {
		for _, field := range []string{"name", "ops", "concurrency", "errors", "elapsed_seconds", "ops_per_second", "p50_us", "p99_us"} {
			if _, ok := c[field]; !ok {
				t.Errorf("case %s has no %s", id, field)
			}
		}
	}
	for _, id := range []string{"event_append_vs_raw_publish", "command_round_trip_vs_raw_request", "command_round_trip_vs_raw_publish", "commands_many_apps_vs_raw_publish", "commands_one_app_vs_raw_async_publish", "gateway_vs_reverse_proxy", "gateway_vs_direct",
		"projection_rebuild_vs_raw_replay", "command_many_vs_few_revisions", "cold_command_snapshot_vs_full_fold", "startup_snapshots_vs_full_fold", "commands_vs_textbook_reload", "read_model_snapshot_vs_rebuild"} {
		if c, ok := doc.Comparisons[id]; !ok || c.ThroughputRatio == nil || c.P50Ratio == nil {
			t.Errorf("comparison %s is missing or incomplete: %s", id, b)
		}
	}
	if tgt := doc.Comparisons["gateway_vs_reverse_proxy"].Target; tgt == nil || tgt.Met == nil {
		t.Errorf("gateway_vs_reverse_proxy has no target: %s", b)
	}

	var table bytes.Buffer
	r.WriteTable(&table)
	for _, c := range r.Cases {
		if !strings.Contains(table.String(), "| "+c.Name+" |") {
			t.Errorf("the table has no row for %q:\n%s", c.Name, table.String())
		}
	}
	for _, s := range []string{"gateway / bare reverse proxy", "gateway / direct", "p50 ≤ 1.15x, throughput ≥ 0.85", "(target ≥ 0.25: ", "raw publish p50: "} {
		if !strings.Contains(table.String(), s) {
			t.Errorf("the table has no %q:\n%s", s, table.String())
		}
	}
}

// Each worker of a throughput case owns its subjects (so one publish in
// flight per subject) and takes turns between them; with fewer subjects
// than workers they share.
func TestWorkersOwnTheirSubjects(t *testing.T) {
	const workers, n, ops = 4, 10, 40
	owner := map[int]int{}
	for i := range ops {
		w := i % workers // measureInFlight gives operation i to worker i % workers
		s := owned(w, i, workers, n)
		if s < 0 || s >= n {
			t.Fatalf("operation %d of worker %d: subject %d out of range", i, w, s)
		}
		if o, ok := owner[s]; ok && o != w {
			t.Fatalf("subject %d is used by workers %d and %d", s, o, w)
		}
		owner[s] = w
	}
	if len(owner) != n {
		t.Errorf("%d of %d subjects used", len(owner), n)
	}
	if s := owned(3, 3, workers, 1); s != 0 {
		t.Errorf("with one subject, worker 3 uses %d", s)
	}
}
