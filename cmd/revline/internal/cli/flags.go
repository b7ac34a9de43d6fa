package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/revline/revline/events"
	"github.com/spf13/pflag"
)

// intFlag is an int flag that remembers whether it was set, for partial
// updates.
type intFlag struct{ v *int }

func (f *intFlag) String() string {
	if f.v == nil {
		return ""
	}
	return strconv.Itoa(*f.v)
}

// Type implements pflag.Value: the value's kind in help.
func (f *intFlag) Type() string { return "int" }

func (f *intFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", s)
	}
	if n < 0 {
		return fmt.Errorf("%d is negative", n)
	}
	f.v = &n
	return nil
}

// secondsFlag is a duration flag in whole seconds ("300", "300s", "5m")
// that remembers whether it was set.
type secondsFlag struct{ v *events.Seconds }

func (f *secondsFlag) String() string {
	if f.v == nil {
		return ""
	}
	return strconv.FormatInt(int64(*f.v), 10)
}

// Type implements pflag.Value: the value's kind in help.
func (f *secondsFlag) Type() string { return "seconds" }

func (f *secondsFlag) Set(s string) error {
	d, err := events.ParseSeconds(s)
	if err != nil {
		return err
	}
	f.v = &d
	return nil
}

// limitFlag is the --limit of the list commands: the most items to show,
// 0 for all of them.
type limitFlag struct{ n int }

func (l *limitFlag) register(fs *pflag.FlagSet) {
	fs.Func("limit", "show at most `N` items, from the top of the list (default: all)", func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("%q is not a positive whole number", s)
		}
		l.n = n
		return nil
	})
}

// annotationsFlag collects repeated KEY=VALUE flags.
type annotationsFlag map[string]string

func (a annotationsFlag) String() string { return "" }

// Type implements pflag.Value: the value's kind in help.
func (a annotationsFlag) Type() string { return "KEY=VALUE" }

func (a annotationsFlag) Set(s string) error {
	key, value, ok := strings.Cut(s, "=")
	if !ok || key == "" {
		return fmt.Errorf("%q is not KEY=VALUE", s)
	}
	if previous, dup := a[key]; dup {
		return fmt.Errorf("annotation %q is given twice (%q and %q): give each key once", key, previous, value)
	}
	a[key] = value
	return nil
}

// runtimeFlags are the runtime-tunable parameters, shared by deploy and scale.
type runtimeFlags struct {
	keepAlive, requestTimeout, scalingDelay                                  secondsFlag
	minConcurrency, maxConcurrency, concurrencyBuffer, concurrencyBufferPerc intFlag
}

func (r *runtimeFlags) register(fs *pflag.FlagSet) {
	fs.Var(&r.keepAlive, "keep-alive", "seconds an idle runner is kept (300, 300s, 5m)")
	fs.Var(&r.minConcurrency, "min-concurrency", "runners kept up even without traffic")
	fs.Var(&r.maxConcurrency, "max-concurrency", "most runners the app may have")
	fs.Var(&r.concurrencyBuffer, "concurrency-buffer", "extra runners kept warm above demand")
	fs.Var(&r.concurrencyBufferPerc, "concurrency-buffer-perc", "extra runners kept warm, as a percentage of those the demand needs (the larger buffer wins)")
	fs.Var(&r.scalingDelay, "scaling-delay", "how long requests wait for a runner before demand starts another (300, 300s, 5m)")
	fs.Var(&r.requestTimeout, "request-timeout", "longest a request may run; also the drain grace on a graceful rollout")
}

func (r *runtimeFlags) overrides() events.RuntimeOverrides {
	return events.RuntimeOverrides{
		KeepAlive:             r.keepAlive.v,
		MinConcurrency:        r.minConcurrency.v,
		MaxConcurrency:        r.maxConcurrency.v,
		ConcurrencyBuffer:     r.concurrencyBuffer.v,
		ConcurrencyBufferPerc: r.concurrencyBufferPerc.v,
		ScalingDelay:          r.scalingDelay.v,
		RequestTimeout:        r.requestTimeout.v,
	}
}

// codeFlags are the code-specific parameters.
type codeFlags struct {
	machineType     string
	maxMultiplexing intFlag
	startupTimeout  secondsFlag
}

func (c *codeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.machineType, "machine-type", "", "machine type of the runners (default XS)")
	fs.Var(&c.maxMultiplexing, "max-multiplexing", "concurrent requests one runner takes (default 1)")
	fs.Var(&c.startupTimeout, "startup-timeout", "how long a runner has to listen on $PORT (default 60s)")
}

// given names the flags of the code parameters given, in flag order.
func (c *codeFlags) given() []string {
	o := c.overrides()
	var names []string
	for _, f := range []struct {
		name string
		set  bool
	}{{"--machine-type", o.MachineType != nil}, {"--max-multiplexing", o.MaxMultiplexing != nil}, {"--startup-timeout", o.StartupTimeout != nil}} {
		if f.set {
			names = append(names, f.name)
		}
	}
	return names
}

func (c *codeFlags) overrides() events.CodeOverrides {
	o := events.CodeOverrides{MaxMultiplexing: c.maxMultiplexing.v, StartupTimeout: c.startupTimeout.v}
	if c.machineType != "" {
		o.MachineType = &c.machineType
	}
	return o
}
