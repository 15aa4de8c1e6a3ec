package adapterkit

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/service"
)

// MetricPrefix starts every adapter metric name; every metric has an
// engine label.
const MetricPrefix = "usrsp_adapter_"

// LatencyBuckets suit requests and vswitch calls (0.5 ms to 10 s).
var LatencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Metrics are the metrics every adapter has, on their own registry (with
// the Go and process collectors). A nil *Metrics records nothing, so
// adapters under test may go without.
type Metrics struct {
	Registry *prometheus.Registry
	engine   contracts.Engine

	requestSeconds   *prometheus.HistogramVec
	requestErrors    *prometheus.CounterVec
	attachments      prometheus.Gauge
	vswitchConnected prometheus.Gauge
	reconcileSeconds prometheus.Observer

	overlayTunnels    prometheus.Gauge
	overlaySyncErrors prometheus.Counter
}

// NewMetrics makes the metrics of engine on a new registry.
func NewMetrics(engine contracts.Engine) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry(), engine: engine}
	m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.requestSeconds = m.HistogramVec("request_duration_seconds", "Time to serve a request, by operation.", LatencyBuckets, "op")
	m.requestErrors = m.CounterVec("request_errors_total", "Failed requests by operation and contracts (CNI) error code.", "op", "code")
	m.attachments = m.Gauge("attachments", "Attachments the adapter owns: its durable records.")
	m.vswitchConnected = m.Gauge("vswitch_connected", "1 while the connection to the vswitch is up.")
	m.reconcileSeconds = m.HistogramVec("reconcile_duration_seconds", "Time to reconcile (replay) the desired state with the vswitch.",
		prometheus.ExponentialBuckets(.001, 4, 10)).WithLabelValues()
	m.overlayTunnels = m.Gauge("overlay_tunnels", "VXLAN tunnels to overlay peers that discovery wants.")
	m.overlaySyncErrors = m.CounterVec("overlay_sync_errors_total", "Tunnel syncs with the vswitch that failed.").WithLabelValues()
	return m
}

func (m *Metrics) opts(name, help string) (string, string, prometheus.Labels) {
	return MetricPrefix + name, help, prometheus.Labels{"engine": string(m.engine)}
}

// HistogramVec registers an engine-specific histogram named
// usrsp_adapter_<name> with the engine label and the given labels.
func (m *Metrics) HistogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	n, h, c := m.opts(name, help)
	v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: n, Help: h, ConstLabels: c, Buckets: buckets}, labels)
	m.Registry.MustRegister(v)
	return v
}

// CounterVec registers an engine-specific counter, like HistogramVec.
func (m *Metrics) CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	n, h, c := m.opts(name, help)
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: n, Help: h, ConstLabels: c}, labels)
	m.Registry.MustRegister(v)
	return v
}

// Gauge registers an engine-specific gauge, like HistogramVec.
func (m *Metrics) Gauge(name, help string) prometheus.Gauge {
	n, h, c := m.opts(name, help)
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: n, Help: h, ConstLabels: c})
	m.Registry.MustRegister(g)
	return g
}

// ObserveRequest records one served request.
func (m *Metrics) ObserveRequest(ri service.RequestInfo) {
	if m == nil {
		return
	}
	m.requestSeconds.WithLabelValues(string(ri.Op)).Observe(ri.Duration.Seconds())
	if ri.Err != nil {
		m.requestErrors.WithLabelValues(string(ri.Op), strconv.FormatUint(uint64(contracts.CodeOf(ri.Err)), 10)).Inc()
	}
}

// SetAttachments sets the number of attachments the adapter owns.
func (m *Metrics) SetAttachments(n int) {
	if m != nil {
		m.attachments.Set(float64(n))
	}
}

// SetVswitchConnected sets usrsp_adapter_vswitch_connected.
func (m *Metrics) SetVswitchConnected(up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.vswitchConnected.Set(v)
}

// ObserveReconcile records one reconcile (replay) of the desired state.
func (m *Metrics) ObserveReconcile(d time.Duration) {
	if m != nil {
		m.reconcileSeconds.Observe(d.Seconds())
	}
}

// ObserveOverlaySync records a tunnel sync: the tunnels wanted and
// whether the sync failed.
func (m *Metrics) ObserveOverlaySync(tunnels int, err error) {
	if m == nil {
		return
	}
	m.overlayTunnels.Set(float64(tunnels))
	if err != nil {
		m.overlaySyncErrors.Inc()
	}
}
