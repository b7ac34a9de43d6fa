package events

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Seconds is a duration in whole seconds. Durations travel as integers of
// seconds so that any client can read and write them without a duration type.
type Seconds int64

// Duration converts s to a time.Duration.
func (s Seconds) Duration() time.Duration { return time.Duration(s) * time.Second }

// ParseSeconds reads "300", "300s", "5m" or "1h30m" as whole seconds.
// It rejects negative values and fractions of a second.
func ParseSeconds(text string) (Seconds, error) {
	text = strings.TrimSpace(text)
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("duration %q is negative", text)
		}
		return Seconds(n), nil
	}
	d, err := time.ParseDuration(text)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want seconds (300), or a Go duration (300s, 5m)", text)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q is negative", text)
	}
	if d%time.Second != 0 {
		return 0, fmt.Errorf("duration %q is not a whole number of seconds", text)
	}
	return Seconds(d / time.Second), nil
}

// CodeParams are the parameters that belong to a revision's code. On a
// rollback they come from the target revision.
type CodeParams struct {
	MachineType     string  `msgpack:"machine_type" json:"machine_type"`
	MaxMultiplexing int     `msgpack:"max_multiplexing" json:"max_multiplexing"`
	StartupTimeout  Seconds `msgpack:"startup_timeout" json:"startup_timeout"`
}

// RuntimeParams are the runtime-tunable parameters. They belong to the app:
// a rollback inherits them from what is active now.
type RuntimeParams struct {
	KeepAlive         Seconds `msgpack:"keep_alive" json:"keep_alive"`
	MinConcurrency    int     `msgpack:"min_concurrency" json:"min_concurrency"`
	MaxConcurrency    int     `msgpack:"max_concurrency" json:"max_concurrency"`
	ConcurrencyBuffer int     `msgpack:"concurrency_buffer" json:"concurrency_buffer"`
	// ConcurrencyBufferPerc keeps a buffer of this percentage of the
	// runners the demand needs, when that is more than ConcurrencyBuffer.
	ConcurrencyBufferPerc int `msgpack:"concurrency_buffer_perc,omitempty" json:"concurrency_buffer_perc"`
	// ScalingDelay is how long requests must have waited for a runner
	// before demand starts another one (bursts shorter than that are
	// queued, not scaled for).
	ScalingDelay   Seconds `msgpack:"scaling_delay,omitempty" json:"scaling_delay"`
	RequestTimeout Seconds `msgpack:"request_timeout" json:"request_timeout"`
}

// RuntimeParamNames lists the runtime-tunable parameters by wire name, in a
// fixed order. Events that record parameter provenance use these names.
var RuntimeParamNames = []string{"keep_alive", "min_concurrency", "max_concurrency", "concurrency_buffer", "concurrency_buffer_perc", "scaling_delay", "request_timeout"}

// ParamValue is one parameter's wire name and its value as shown to people
// (durations with their unit: "300s").
type ParamValue struct{ Name, Value string }

func secondsText(s Seconds) string { return strconv.FormatInt(int64(s), 10) + "s" }

// Values lists the code parameters, in a fixed order.
func (c CodeParams) Values() []ParamValue {
	return []ParamValue{
		{"machine_type", c.MachineType},
		{"max_multiplexing", strconv.Itoa(c.MaxMultiplexing)},
		{"startup_timeout", secondsText(c.StartupTimeout)},
	}
}

// Values lists the runtime parameters in the order of RuntimeParamNames.
func (p RuntimeParams) Values() []ParamValue {
	return []ParamValue{
		{"keep_alive", secondsText(p.KeepAlive)},
		{"min_concurrency", strconv.Itoa(p.MinConcurrency)},
		{"max_concurrency", strconv.Itoa(p.MaxConcurrency)},
		{"concurrency_buffer", strconv.Itoa(p.ConcurrencyBuffer)},
		{"concurrency_buffer_perc", strconv.Itoa(p.ConcurrencyBufferPerc)},
		{"scaling_delay", secondsText(p.ScalingDelay)},
		{"request_timeout", secondsText(p.RequestTimeout)},
	}
}

// DefaultCodeParams are used for code parameters a deploy leaves unset.
func DefaultCodeParams() CodeParams {
	return CodeParams{MachineType: "XS", MaxMultiplexing: 1, StartupTimeout: 60}
}

// DefaultRuntimeParams are used for runtime parameters of an app's first
// deploy (or a --reset-scale deploy) that the deploy leaves unset.
func DefaultRuntimeParams() RuntimeParams {
	return RuntimeParams{KeepAlive: 60, MinConcurrency: 0, MaxConcurrency: 10, ConcurrencyBuffer: 0, RequestTimeout: 3600}
}

// CodeOverrides is a partial CodeParams: nil fields are left as they are.
type CodeOverrides struct {
	MachineType     *string  `msgpack:"machine_type,omitempty" json:"machine_type,omitempty"`
	MaxMultiplexing *int     `msgpack:"max_multiplexing,omitempty" json:"max_multiplexing,omitempty"`
	StartupTimeout  *Seconds `msgpack:"startup_timeout,omitempty" json:"startup_timeout,omitempty"`
}

// Apply returns base with the set fields of o.
func (o CodeOverrides) Apply(base CodeParams) CodeParams {
	if o.MachineType != nil {
		base.MachineType = *o.MachineType
	}
	if o.MaxMultiplexing != nil {
		base.MaxMultiplexing = *o.MaxMultiplexing
	}
	if o.StartupTimeout != nil {
		base.StartupTimeout = *o.StartupTimeout
	}
	return base
}

// RuntimeOverrides is a partial RuntimeParams: nil fields are left as they are.
type RuntimeOverrides struct {
	KeepAlive         *Seconds `msgpack:"keep_alive,omitempty" json:"keep_alive,omitempty"`
	MinConcurrency    *int     `msgpack:"min_concurrency,omitempty" json:"min_concurrency,omitempty"`
	MaxConcurrency    *int     `msgpack:"max_concurrency,omitempty" json:"max_concurrency,omitempty"`
	ConcurrencyBuffer *int     `msgpack:"concurrency_buffer,omitempty" json:"concurrency_buffer,omitempty"`
	// ConcurrencyBufferPerc and ScalingDelay: see RuntimeParams.
	ConcurrencyBufferPerc *int     `msgpack:"concurrency_buffer_perc,omitempty" json:"concurrency_buffer_perc,omitempty"`
	ScalingDelay          *Seconds `msgpack:"scaling_delay,omitempty" json:"scaling_delay,omitempty"`
	RequestTimeout        *Seconds `msgpack:"request_timeout,omitempty" json:"request_timeout,omitempty"`
}

// IsZero reports whether o sets no field.
func (o RuntimeOverrides) IsZero() bool { return o == RuntimeOverrides{} }

// Apply returns base with the set fields of o.
func (o RuntimeOverrides) Apply(base RuntimeParams) RuntimeParams {
	if o.KeepAlive != nil {
		base.KeepAlive = *o.KeepAlive
	}
	if o.MinConcurrency != nil {
		base.MinConcurrency = *o.MinConcurrency
	}
	if o.MaxConcurrency != nil {
		base.MaxConcurrency = *o.MaxConcurrency
	}
	if o.ConcurrencyBuffer != nil {
		base.ConcurrencyBuffer = *o.ConcurrencyBuffer
	}
	if o.ConcurrencyBufferPerc != nil {
		base.ConcurrencyBufferPerc = *o.ConcurrencyBufferPerc
	}
	if o.ScalingDelay != nil {
		base.ScalingDelay = *o.ScalingDelay
	}
	if o.RequestTimeout != nil {
		base.RequestTimeout = *o.RequestTimeout
	}
	return base
}

// IsZero reports whether o sets no field.
func (o CodeOverrides) IsZero() bool { return o == CodeOverrides{} }

// ChangedCodeParams lists, by wire name, the code parameters that differ
// between before and after.
func ChangedCodeParams(before, after CodeParams) []string {
	var changed []string
	if before.MachineType != after.MachineType {
		changed = append(changed, "machine_type")
	}
	if before.MaxMultiplexing != after.MaxMultiplexing {
		changed = append(changed, "max_multiplexing")
	}
	if before.StartupTimeout != after.StartupTimeout {
		changed = append(changed, "startup_timeout")
	}
	return changed
}

// ChangedRuntimeParams lists, by wire name, the parameters that differ
// between before and after.
func ChangedRuntimeParams(before, after RuntimeParams) []string {
	var changed []string
	add := func(name string, differ bool) {
		if differ {
			changed = append(changed, name)
		}
	}
	add("keep_alive", before.KeepAlive != after.KeepAlive)
	add("min_concurrency", before.MinConcurrency != after.MinConcurrency)
	add("max_concurrency", before.MaxConcurrency != after.MaxConcurrency)
	add("concurrency_buffer", before.ConcurrencyBuffer != after.ConcurrencyBuffer)
	add("concurrency_buffer_perc", before.ConcurrencyBufferPerc != after.ConcurrencyBufferPerc)
	add("scaling_delay", before.ScalingDelay != after.ScalingDelay)
	add("request_timeout", before.RequestTimeout != after.RequestTimeout)
	return changed
}
