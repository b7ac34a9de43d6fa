// Package metrics exposes Revline's Prometheus metrics: commands by type
// and outcome, command latency, events appended, runners by state, and the
// gateway's requests, waits and cold starts.
package metrics

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/workers/gateway"
	"github.com/revline/revline/workers/processor"
)

// Metrics holds the server's collectors on a registry of its own.
type Metrics struct {
	registry       *prometheus.Registry
	commands       *prometheus.CounterVec
	commandLatency *prometheus.HistogramVec
	eventsAppended prometheus.Counter
	requests       *prometheus.CounterVec
	requestLatency *prometheus.HistogramVec
	coldStarts     *prometheus.HistogramVec
}

// New registers the collectors; runners by state are read from model at
// scrape time.
func New(model *projections.RevisionHistory) (*Metrics, error) {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "revline_commands_total",
			Help: "Commands processed, by command type and outcome status (accepted, rejected, noop).",
		}, []string{"type", "status"}),
		commandLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "revline_command_duration_seconds",
			Help:    "Time from a command's delivery to its outcome being published.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"type"}),
		eventsAppended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "revline_events_appended_total",
			Help: "Events appended to the event log by this server.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "revline_gateway_requests_total",
			Help: "Requests the gateway answered, by app (\"\" for unknown apps) and status code.",
		}, []string{"app", "code"}),
		requestLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "revline_gateway_request_duration_seconds",
			Help:    "Time from a request's arrival at the gateway to the end of its answer.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"app"}),
		coldStarts: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "revline_gateway_cold_start_seconds",
			Help:    "How long a request that found no runner taking requests (an app scaled to zero) waited for one.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}, []string{"app"}),
	}
	runners := prometheus.NewDesc("revline_runners", "Runners known to the read model, by app and state.", []string{"app", "state"}, nil)
	// A gauge, not a counter: a replay into a build that decodes more
	// lowers it.
	skipped := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "revline_events_skipped",
		Help: "Messages of the event log the read model skips, as every reader skips them: events this build cannot decode, and messages that are no event (revline audit shows them, revline audit verify lists them).",
	}, func() float64 { return float64(model.Skipped()) })
	for _, c := range []prometheus.Collector{
		m.commands, m.commandLatency, m.eventsAppended, m.requests, m.requestLatency, m.coldStarts, skipped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		runnerCollector{desc: runners, model: model},
	} {
		if err := m.registry.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return m, nil
}

// ObserveOutcome records one processed command; it is the processor's
// OnOutcome hook.
func (m *Metrics) ObserveOutcome(p processor.OutcomeParams) {
	commandType := p.Outcome.CommandType
	if commandType == "" {
		commandType = "malformed"
	}
	m.commands.WithLabelValues(commandType, string(p.Outcome.Status)).Inc()
	m.commandLatency.WithLabelValues(commandType).Observe(p.Duration.Seconds())
	m.eventsAppended.Add(float64(p.EventsAppended))
}

// ObserveRequest records one request answered by the gateway; it is the
// gateway's Observe hook.
func (m *Metrics) ObserveRequest(r gateway.RequestStats) {
	m.requests.WithLabelValues(r.App, strconv.Itoa(r.Status)).Inc()
	m.requestLatency.WithLabelValues(r.App).Observe(r.Duration.Seconds())
	if r.ColdStart {
		m.coldStarts.WithLabelValues(r.App).Observe(r.Waited.Seconds())
	}
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

type runnerCollector struct {
	desc  *prometheus.Desc
	model *projections.RevisionHistory
}

func (c runnerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c runnerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, app := range c.model.Apps() {
		counts := map[events.RunnerState]int{}
		for _, r := range c.model.Runners(app.Name, false) {
			counts[r.State]++
		}
		for state, n := range counts {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), app.Name, string(state))
		}
	}
}
