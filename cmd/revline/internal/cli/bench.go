package cli

import (
	"os"
	"runtime/pprof"

	"github.com/revline/revline/cmd/revline/internal/bench"
)

func benchCommand() command {
	c := command{
		name:    "bench",
		summary: "Measure Revline against its baselines (raw NATS, a bare reverse proxy, direct requests) in one run, and print the ratios.",
		example: "revline bench --ops 2000 --requests 50000 --concurrency 16 -o json",
	}
	c.run = func(e env, args []string) error {
		fs := c.flagSet()
		ops := fs.Int("ops", 2000, "operations per NATS case (event append, command round trip and their raw baselines)")
		requests := fs.Int("requests", 50000, "measured requests per HTTP case (direct, bare reverse proxy, gateway)")
		concurrency := fs.Int("concurrency", 16, "concurrent keep-alive clients of the HTTP cases")
		revisions := fs.Int("revisions", bench.ManyRevisions, "revisions of the large app whose command latency is compared with one of 10 revisions")
		startupEvents := fs.Int("startup-events", 0, "events to seed for the start-up cases, with and without snapshots (0: leave them out)")
		var output string
		fs.StringVar(&output, "o", outputTable, "output format: table or json")
		fs.StringVar(&output, "output", outputTable, "output format: table or json")
		cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to `FILE`")
		if pos, err := parse(e, fs, args); err != nil {
			return err
		} else if len(pos) > 0 || *ops < 1 || *requests < 1 || *concurrency < 1 || *revisions < 1 || *startupEvents < 0 {
			return usagef("bench takes no arguments, --ops, --requests, --concurrency and --revisions must be at least 1, and --startup-events at least 0")
		}
		if output != outputTable && output != outputJSON {
			return usagef("output format %q: want table or json", output)
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
	return c
}
