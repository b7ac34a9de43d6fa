package cli

import (
	"os"
	"runtime/pprof"

	"github.com/revline/revline/cmd/revline/internal/bench"
	"github.com/spf13/cobra"
)

func benchCommand() *cobra.Command {
	cmd := newCommand("bench", "Measure Revline against its baselines",
		"revline bench --ops 2000 --requests 50000 --concurrency 16 -o json", 0, 0)
	cmd.Long = "Measure Revline against its baselines (raw NATS, a bare reverse proxy, direct requests) in one run, and print the ratios."
	fs := cmd.Flags()
	ops := fs.Int("ops", 2000, "operations per NATS case (event append, command round trip and their raw baselines)")
	requests := fs.Int("requests", 50000, "measured requests per HTTP case (direct, bare reverse proxy, gateway)")
	concurrency := fs.Int("concurrency", 16, "concurrent keep-alive clients of the HTTP cases")
	revisions := fs.Int("revisions", bench.ManyRevisions, "revisions of the large app whose command latency is compared with one of 10 revisions")
	startupEvents := fs.Int("startup-events", 0, "events to seed for the start-up cases, with and without snapshots (0: leave them out)")
	var output string
	outputFlag(cmd, &output, "output format: table or json", nil)
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to `FILE`")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		e := envOf(cmd)
		if *ops < 1 || *requests < 1 || *concurrency < 1 || *revisions < 1 || *startupEvents < 0 {
			return usagef("--ops, --requests, --concurrency and --revisions must be at least 1, and --startup-events at least 0")
		}
		if err := checkOutput(output, nil); err != nil {
			return err
		}
		if *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		report, err := bench.Run(e.ctx, bench.Config{Ops: *ops, Revisions: *revisions, StartupEvents: *startupEvents, HTTP: bench.HTTPConfig{Requests: *requests, Concurrency: *concurrency}})
		if report != nil {
			if output == outputJSON {
				if jerr := printJSON(e.stdout, report); jerr != nil {
					return jerr
				}
			} else {
				report.WriteTable(e.stdout)
			}
		}
		return err
	}
	return cmd
}
