package adapter

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"usrsp.dev/contracts"
)

// Metrics are the adapter's Prometheus metrics.
type Metrics struct {
	attachSeconds  prometheus.Histogram
	vswitchSeconds prometheus.Histogram
	portsOwned     prometheus.Gauge
	errors         *prometheus.CounterVec
	reconciles     *prometheus.CounterVec
}

// NewMetrics registers the adapter's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		attachSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "usrsp_ovs_adapter_attach_seconds", Help: "Time to serve a successful attach, including vswitchd creating the port.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		// attach_seconds minus this is the adapter's own overhead.
		vswitchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "usrsp_ovs_adapter_vswitch_seconds", Help: "Time of the OVS call within a successful attach: the OVSDB transaction and vswitchd applying it.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		portsOwned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "usrsp_ovs_adapter_ports_owned", Help: "Attachments (OVS ports) the adapter owns.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usrsp_ovs_adapter_errors_total", Help: "Failed operations by op and error code.",
		}, []string{"op", "code"}),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usrsp_ovs_adapter_reconcile_ports_total", Help: "Ports reconcile removed or re-created.",
		}, []string{"action"}),
	}
	reg.MustRegister(m.attachSeconds, m.vswitchSeconds, m.portsOwned, m.errors, m.reconciles)
	return m
}

func (m *Metrics) failed(op contracts.Op, err error) {
	m.errors.WithLabelValues(string(op), strconv.FormatUint(uint64(contracts.CodeOf(err)), 10)).Inc()
}
