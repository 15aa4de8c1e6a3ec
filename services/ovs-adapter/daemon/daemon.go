// Package daemon wires the ovs-dpdk adapter into a node daemon: NATS
// service, events, reconcile on start and after OVS restarts, and the
// health/readiness/metrics HTTP endpoint. cmd/ovs-adapter is a thin main
// around Run; tests, the e2e suite and the demo can run it in-process.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/service"
	"usrsp.dev/services/ovs-adapter/adapter"
	"usrsp.dev/services/ovs-adapter/ovs"
)

// Version is the adapter's version.
const Version = "0.1.0"

// Config configures the daemon.
type Config struct {
	NATSURL   string
	NATSCreds string
	Node      string
	OVSDB     string // OVSDB remote, e.g. unix:/var/run/openvswitch/db.sock
	OVSRunDir string // ovs-vswitchd's run dir (pid file, dpdkvhostuser sockets)
	StateDir  string
	// MetricsAddr is the listen address of /healthz, /readyz, /metrics
	// ("" disables it; ":0" picks a port, see Daemon.HTTPAddr).
	MetricsAddr string
	// WatchInterval is how often OVS is checked for a lost connection or a
	// restarted vswitchd (default 1s).
	WatchInterval time.Duration
	Log           zerolog.Logger
}

// Daemon is a running adapter.
type Daemon struct {
	cfg     Config
	Adapter *adapter.Adapter
	ovs     *ovs.Client
	nc      *nats.Conn
	svc     micro.Service
	http    *http.Server
	ln      net.Listener
	ready   atomic.Bool
	// reconciled counts successful reconciles (tests wait on it).
	reconciled atomic.Int64
	kick       chan struct{}
}

// Start connects everything, reconciles once (if OVS is reachable) and
// starts serving. Stop it with Run's context or Close.
func Start(ctx context.Context, cfg Config) (*Daemon, error) {
	if cfg.Node == "" {
		return nil, contracts.Errorf(contracts.CodeInvalidConfig, "node name is empty")
	}
	if cfg.OVSRunDir == "" {
		cfg.OVSRunDir = "/var/run/openvswitch"
	}
	if cfg.WatchInterval <= 0 {
		cfg.WatchInterval = time.Second
	}
	log := cfg.Log.With().Str("engine", string(contracts.EngineOVSDPDK)).Str("node", cfg.Node).Logger()
	cfg.Log = log
	store, err := adapter.OpenStore(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d := &Daemon{cfg: cfg, ovs: ovs.NewClient(ovs.Config{Remote: cfg.OVSDB}), kick: make(chan struct{}, 1)}
	success := false
	defer func() {
		if !success {
			d.Close()
		}
	}()

	if d.nc, err = contracts.ConnectService(contracts.ConnectOptions{URL: cfg.NATSURL, CredentialsFile: cfg.NATSCreds, Name: "usrsp-ovs-adapter/" + cfg.Node},
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn().Err(err).Msg("NATS disconnected") }),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info().Str("url", nc.ConnectedUrl()).Msg("NATS reconnected") })); err != nil {
		return nil, err
	}
	d.Adapter, err = adapter.New(adapter.Config{
		OVS: d.ovs, Store: store, Events: contracts.NewPublisher(d.nc, cfg.Node, contracts.EngineOVSDPDK),
		Metrics: adapter.NewMetrics(reg), OVSRunDir: cfg.OVSRunDir, Version: Version,
		OnEventError: func(err error) { log.Warn().Err(err).Msg("event not published") },
	})
	if err != nil {
		return nil, err
	}
	if cfg.MetricsAddr != "" {
		if err := d.serveHTTP(reg); err != nil {
			return nil, err
		}
	}
	d.reconcile(ctx, "start")
	if d.svc, err = service.Add(d.nc, service.Config{
		Node: cfg.Node, Engine: contracts.EngineOVSDPDK, Version: Version,
		Description: "usrsp OVS-DPDK adapter: vhost-user and memif ports for pods",
		OnRequest:   d.logRequest,
	}, d.Adapter); err != nil {
		return nil, fmt.Errorf("register NATS service: %w", err)
	}
	log.Info().Str("subject", contracts.ServicePrefix(cfg.Node, contracts.EngineOVSDPDK)+".>").Str("ovsdb", cfg.OVSDB).
		Str("state_dir", cfg.StateDir).Msg("serving")
	success = true
	return d, nil
}

// Run serves until ctx is done, watching OVS: after the OVSDB connection
// was made again or vswitchd restarted (new pid), it reconciles.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.Close()
	tick := time.NewTicker(d.cfg.WatchInterval)
	defer tick.Stop()
	gen, pid := d.ovs.Generation(), d.vswitchdPID()
	pending := !d.ready.Load()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-d.kick:
			pending = true
		}
		if err := d.ovs.Ping(ctx); err != nil {
			d.ready.Store(false)
			pending = true
			continue
		}
		if g := d.ovs.Generation(); g != gen {
			d.cfg.Log.Info().Msg("OVSDB connection made again")
			gen, pending = g, true
		}
		if p := d.vswitchdPID(); p != pid && p != 0 {
			d.cfg.Log.Info().Int("pid", p).Msg("ovs-vswitchd restarted")
			pid, pending = p, true
		}
		if pending {
			pending = !d.reconcile(ctx, "ovs restart or reconnect")
		}
	}
}

// Reconcile asks Run to reconcile now (e.g. from a signal handler).
func (d *Daemon) Reconcile() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Reconciled is the number of successful reconciles so far.
func (d *Daemon) Reconciled() int64 { return d.reconciled.Load() }

func (d *Daemon) reconcile(ctx context.Context, why string) bool {
	start := time.Now()
	res, err := d.Adapter.Reconcile(ctx)
	log := d.cfg.Log.With().Str("reason", why).Dur("duration", time.Since(start)).Logger()
	if err != nil {
		d.ready.Store(false)
		log.Warn().Err(err).Msg("reconcile failed; will retry")
		return false
	}
	d.ready.Store(true)
	d.reconciled.Add(1)
	log.Info().Strs("removed", res.Removed).Strs("recreated", res.Recreated).Int("relinked", res.Relinked).Msg("reconciled")
	return true
}

func (d *Daemon) vswitchdPID() int {
	b, err := os.ReadFile(filepath.Join(d.cfg.OVSRunDir, "ovs-vswitchd.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func (d *Daemon) logRequest(ri service.RequestInfo) {
	ev := d.cfg.Log.Info()
	if ri.Err != nil {
		ev = d.cfg.Log.Warn().Err(ri.Err).Uint("code", uint(contracts.CodeOf(ri.Err)))
	}
	if ri.Key != nil {
		ev = ev.Str("container_id", ri.Key.ContainerID).Str("ifname", ri.Key.IfName)
	}
	ev.Str("subject", ri.Subject).Str("op", string(ri.Op)).Dur("duration", ri.Duration).Msg("request")
}

func (d *Daemon) serveHTTP(reg *prometheus.Registry) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !d.ready.Load() || !d.nc.IsConnected() {
			http.Error(w, "not ready: OVS not reconciled or NATS disconnected", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	ln, err := net.Listen("tcp", d.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	d.ln = ln
	d.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := d.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.cfg.Log.Error().Err(err).Msg("metrics server stopped")
		}
	}()
	return nil
}

// HTTPAddr is the address the HTTP endpoint listens on ("" if none).
func (d *Daemon) HTTPAddr() string {
	if d.ln == nil {
		return ""
	}
	return d.ln.Addr().String()
}

// Ready reports what /readyz reports.
func (d *Daemon) Ready() bool { return d.ready.Load() && d.nc != nil && d.nc.IsConnected() }

// Close stops serving and closes the connections. Safe to call twice.
func (d *Daemon) Close() {
	if d.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = d.http.Shutdown(ctx)
		cancel()
	}
	if d.svc != nil {
		_ = d.svc.Stop()
	}
	if d.nc != nil {
		d.nc.Close()
	}
	_ = d.ovs.Close()
}
