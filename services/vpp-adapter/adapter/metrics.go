package adapter

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/service"
)

// Metrics are the adapter's Prometheus metrics, on their own registry.
// A nil *Metrics records nothing.
type Metrics struct {
	Registry *prometheus.Registry
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	ownedIfs prometheus.Gauge
	replay   prometheus.Histogram
	vppUp    prometheus.Gauge
}

// NewMetrics registers the adapter's metrics on a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "usrsp_vpp_adapter_request_duration_seconds", Help: "Time to serve a request, by operation (attach latency is op=attach).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usrsp_vpp_adapter_request_errors_total", Help: "Failed requests by operation and contracts (CNI) error code.",
		}, []string{"op", "code"}),
		ownedIfs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "usrsp_vpp_adapter_interfaces_owned", Help: "Attachments (VPP interfaces) the adapter owns: its durable records.",
		}),
		replay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "usrsp_vpp_adapter_replay_duration_seconds", Help: "Time to replay the desired state after a VPP (re)connect.",
			Buckets: prometheus.ExponentialBuckets(.001, 4, 10),
		}),
		vppUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "usrsp_vpp_adapter_vpp_connected", Help: "1 while the binary API connection to VPP is up.",
		}),
	}
	m.Registry.MustRegister(m.duration, m.errors, m.ownedIfs, m.replay, m.vppUp)
	return m
}

// Handler serves the metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// Observe records one served request.
func (m *Metrics) Observe(info service.RequestInfo) {
	if m == nil {
		return
	}
	m.duration.WithLabelValues(string(info.Op)).Observe(info.Duration.Seconds())
	if info.Err != nil {
		m.errors.WithLabelValues(string(info.Op), strconv.FormatUint(uint64(contracts.CodeOf(info.Err)), 10)).Inc()
	}
}

func (m *Metrics) replayed(s ReplaySummary) {
	if m != nil {
		m.replay.Observe(s.Duration.Seconds())
	}
}

func (m *Metrics) owned(n int) {
	if m != nil {
		m.ownedIfs.Set(float64(n))
	}
}

func (m *Metrics) connected(up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.vppUp.Set(v)
}
