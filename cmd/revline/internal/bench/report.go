package bench

import (
	"fmt"
	"io"
	"time"
)

// WriteTable prints the report as the Markdown tables of BENCHMARKS.md.
func (r *Report) WriteTable(w io.Writer) {
	row := func(c Case, ratio string) {
		fmt.Fprintf(w, "| %s | %d | %.0f | %s | %s | %s |\n", c.Name, c.Ops, c.OpsPerSecond, micros(c.P50Micros), micros(c.P99Micros), ratio)
	}
	if _, ok := r.Cases[CaseRawPublish]; ok {
		fmt.Fprintf(w, "| case | ops | ops/s | p50 | p99 | Revline / raw throughput |\n|---|---|---|---|---|---|\n")
		for _, p := range [][2]string{{CaseRawPublish, CaseEventAppend}, {CaseRawRequest, CaseCommandRoundTrip}} {
			raw, revline := r.Cases[p[0]], r.Cases[p[1]]
			row(raw, "")
			row(revline, fmt.Sprintf("%.2f", revline.OpsPerSecond/raw.OpsPerSecond))
		}
		if c := r.Comparisons["command_round_trip_vs_raw_publish"]; c.Target != nil {
			fmt.Fprintf(w, "\nCommand round trip p50 / raw publish p50: %.2fx (target ≤ %.2fx: %s)\n", c.P50Ratio, c.Target.MaxP50Ratio, map[bool]string{true: "met", false: "missed"}[c.Target.Met])
		}
	}
	if _, ok := r.Cases[CaseRawManySubjects]; ok {
		fmt.Fprintf(w, "\n%d commands (and raw publishes) per case, many in flight:\n\n", r.Config.Commands)
		fmt.Fprintf(w, "| case | ops | in flight | ops/s | p50 | p99 | Revline / raw throughput |\n|---|---|---|---|---|---|---|\n")
		for _, p := range []struct{ raw, revline, comparison string }{
			{CaseRawManySubjects, CaseCommandsManyApps, "commands_many_apps_vs_raw_publish"},
			{CaseRawOneSubject, CaseCommandsOneApp, "commands_one_app_vs_raw_async_publish"},
		} {
			for _, id := range []string{p.raw, p.revline} {
				c, ratio := r.Cases[id], ""
				if id == p.revline {
					ratio = fmt.Sprintf("%.3f", r.Comparisons[p.comparison].ThroughputRatio)
					if t := r.Comparisons[p.comparison].Target; t != nil {
						ratio += fmt.Sprintf(" (target ≥ %.2f: %s)", t.MinThroughputRatio, map[bool]string{true: "met", false: "missed"}[t.Met])
					}
				}
				fmt.Fprintf(w, "| %s | %d | %d | %.0f | %s | %s | %s |\n", c.Name, c.Ops, c.Concurrency, c.OpsPerSecond, micros(c.P50Micros), micros(c.P99Micros), ratio)
			}
		}
	}
	r.writeHistory(w)
	if _, ok := r.Cases[CaseHTTPGateway]; !ok {
		return
	}
	fmt.Fprintf(w, "\n%d concurrent keep-alive clients, %d requests per case after %d of warm-up, in %d interleaved rounds:\n\n",
		r.Config.Concurrency, r.Config.Requests, r.Config.Warmup, r.Config.Rounds)
	fmt.Fprintf(w, "| case | requests | errors | requests/s | p50 | p99 |\n|---|---|---|---|---|---|\n")
	for _, id := range []string{CaseHTTPDirect, CaseHTTPReverseProxy, CaseHTTPGateway} {
		c := r.Cases[id]
		fmt.Fprintf(w, "| %s | %d | %d | %.0f | %s | %s |\n", c.Name, c.Ops, c.Errors, c.OpsPerSecond, micros(c.P50Micros), micros(c.P99Micros))
	}
	fmt.Fprintf(w, "\n| ratio | throughput | p50 | p99 | target |\n|---|---|---|---|---|\n")
	for _, x := range []struct{ id, name string }{
		{"gateway_vs_reverse_proxy", "gateway / bare reverse proxy"},
		{"gateway_vs_direct", "gateway / direct"},
		{"reverse_proxy_vs_direct", "bare reverse proxy / direct"},
	} {
		c := r.Comparisons[x.id]
		target := ""
		if t := c.Target; t != nil {
			verdict := "missed"
			if t.Met {
				verdict = "met"
			}
			target = fmt.Sprintf("p50 ≤ %.2fx, throughput ≥ %.2f: %s", t.MaxP50Ratio, t.MinThroughputRatio, verdict)
		}
		fmt.Fprintf(w, "| %s | %.2f | %.2fx | %.2fx | %s |\n", x.name, c.ThroughputRatio, c.P50Ratio, c.P99Ratio, target)
	}
}

func micros(us float64) string {
	return (time.Duration(us * float64(time.Microsecond))).Round(time.Microsecond).String()
}

// writeHistory prints the history cases, each pair with its ratio.
func (r *Report) writeHistory(w io.Writer) {
	if _, ok := r.Cases[CaseProjectionRebuild]; !ok {
		return
	}
	fmt.Fprintf(w, "\nHistory (%d commands per latency case, %d cold commands per cold case):\n\n", r.Config.Ops, ColdSamples)
	fmt.Fprintf(w, "| case | ops | elapsed | ops/s | p50 | p99 | ratio |\n|---|---|---|---|---|---|---|\n")
	printed := map[string]bool{}
	for _, p := range []struct{ baseline, c, comparison, ratio string }{
		{CaseRawReplay, CaseProjectionRebuild, "projection_rebuild_vs_raw_replay", "throughput"},
		{CaseProjectionRebuild, CaseReadModelSnapshot, "read_model_snapshot_vs_rebuild", "speed-up"},
		{CaseCommandFewRevisions, CaseCommandManyRevs, "command_many_vs_few_revisions", "p50"},
		{CaseColdCommandFold, CaseColdCommandSnapshot, "cold_command_snapshot_vs_full_fold", "p50"},
		{CaseTextbookReload, CaseCommandsHistory, "commands_vs_textbook_reload", "speed-up"},
		{CaseStartupFold, CaseStartupSnapshot, "startup_snapshots_vs_full_fold", "speed-up"},
	} {
		if _, ok := r.Cases[p.c]; !ok {
			continue
		}
		for _, id := range []string{p.baseline, p.c} {
			if printed[id] {
				continue // the baseline of two comparisons
			}
			printed[id] = true
			c, ratio := r.Cases[id], ""
			if id == p.c {
				cmp := r.Comparisons[p.comparison]
				switch p.ratio {
				case "p50":
					ratio = fmt.Sprintf("p50 %.2fx", cmp.P50Ratio)
				default:
					ratio = fmt.Sprintf("%s %.2f", p.ratio, cmp.ThroughputRatio)
				}
				if t := cmp.Target; t != nil {
					bound := fmt.Sprintf("≥ %.2f", t.MinThroughputRatio)
					if t.MaxP50Ratio > 0 {
						bound = fmt.Sprintf("≤ %.2fx", t.MaxP50Ratio)
					}
					ratio += fmt.Sprintf(" (target %s: %s)", bound, map[bool]string{true: "met", false: "missed"}[t.Met])
				}
			}
			p50, p99 := "–", "–" // a replay has no per-operation latency
			if c.P50Micros > 0 {
				p50, p99 = micros(c.P50Micros), micros(c.P99Micros)
			}
			fmt.Fprintf(w, "| %s | %d | %s | %.0f | %s | %s | %s |\n", c.Name, c.Ops, time.Duration(c.ElapsedSeconds*float64(time.Second)).Round(time.Millisecond), c.OpsPerSecond, p50, p99, ratio)
		}
	}
}
