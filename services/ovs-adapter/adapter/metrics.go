package adapter

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"usrsp.dev/libs/adapterkit"
)

// metrics are the OVS extras on the kit's metrics (same registry, prefix
// and engine label). Without kit metrics they record nothing.
type metrics struct {
	kit *adapterkit.Metrics
	// vswitchSeconds is the OVS call within a successful attach; the
	// attach's request_duration_seconds minus this is the adapter's own
	// overhead.
	vswitchSeconds prometheus.Observer
	reconcile      *prometheus.CounterVec
}

func newMetrics(m *adapterkit.Metrics) *metrics {
	if m == nil {
		return &metrics{}
	}
	return &metrics{
		kit: m,
		vswitchSeconds: m.HistogramVec("vswitch_call_seconds", "Time of the OVS call within a successful attach: the OVSDB transaction and vswitchd applying it.",
			adapterkit.LatencyBuckets).WithLabelValues(),
		reconcile: m.CounterVec("reconcile_ports_total", "Ports reconcile removed (no record) or re-created.", "action"),
	}
}

func (m *metrics) vswitchCall(d time.Duration) {
	if m.vswitchSeconds != nil {
		m.vswitchSeconds.Observe(d.Seconds())
	}
}

func (m *metrics) reconciled(res ReconcileResult) {
	if m.reconcile != nil {
		m.reconcile.WithLabelValues("removed").Add(float64(len(res.Removed)))
		m.reconcile.WithLabelValues("recreated").Add(float64(len(res.Recreated)))
	}
}

func (m *metrics) attachments(n int) { m.kit.SetAttachments(n) }
