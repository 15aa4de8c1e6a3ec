// Package daemon wires the ovs-dpdk adapter into a node daemon: NATS
// service, events, reconcile on start and after OVS restarts, and the
// health/readiness/metrics HTTP endpoint. cmd/ovs-adapter is a thin main
// around Run; tests, the e2e suite and the demo can run it in-process.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// maxRetries bounds the reconciles in a row that re-create ports vswitchd
// keeps failing (1+2+4+8+16 s of backoff).
const maxRetries = 5

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
	if ok, failed := d.reconcile(ctx, "start"); ok && failed > 0 {
		d.Reconcile() // Run retries
	}
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
//
// While a reconcile leaves ports that vswitchd failed (Interface.error), it
// reconciles again with backoff (1s, doubling) until none is left, at most
// maxRetries times in a row: each failed memif re-create keeps one of
// DPDK's 32 ethdevs per vswitchd, so endless retries of a port that
// cannot come back would starve every other memif port. The next restart,
// reconnect or kick starts over.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.Close()
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { defer close(watched); d.watchVswitchd(watchCtx) }()
	defer func() { stopWatch(); <-watched }()
	tick := time.NewTicker(d.cfg.WatchInterval)
	defer tick.Stop()
	gen, pid := d.ovs.Generation(), d.vswitchdPID()
	pending := !d.ready.Load()
	var retry <-chan time.Time // set while ports are left failed
	backoff, retries := time.Duration(0), 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-d.kick:
			pending, retries = true, 0
		case <-retry:
			retry, pending = nil, true
			retries++
		}
		if err := d.ovs.Ping(ctx); err != nil {
			d.ready.Store(false)
			pending = true
			continue
		}
		if g := d.ovs.Generation(); g != gen {
			d.cfg.Log.Info().Msg("OVSDB connection made again")
			gen, pending, retries = g, true, 0
		}
		if p := d.vswitchdPID(); p != pid && p != 0 {
			d.cfg.Log.Info().Int("pid", p).Msg("ovs-vswitchd restarted")
			pid, pending, retries = p, true, 0
		}
		if pending {
			ok, failed := d.reconcile(ctx, "ovs restart, reconnect or failed ports")
			pending = !ok
			switch {
			case ok && failed > 0 && retries < maxRetries:
				backoff = max(2*backoff, time.Second)
				retry = time.After(backoff)
				d.cfg.Log.Warn().Int("failed", failed).Dur("retry_in", backoff).Msg("ports left failed by vswitchd; reconciling again")
			case ok:
				if failed > 0 {
					d.cfg.Log.Error().Int("failed", failed).Int("retries", retries).
						Msg("ports left failed by vswitchd; not retrying until ovs-vswitchd restarts (Check reports them)")
				}
				retry, backoff, retries = nil, 0, 0
			}
		}
	}
}

// watchVswitchd holds a connection to ovs-vswitchd's control socket, which
// the kernel closes the moment vswitchd dies (crash or SIGTERM). That is
// well before a restarted vswitchd has initialized DPDK and re-created its
// ports from the database, so the stale sockets (memif server,
// dpdkvhostuser) are removed in between (see adapter.RemoveStaleSockets);
// then it asks for a reconcile.
// The control socket needs only the run dir, not vswitchd's pid namespace.
func (d *Daemon) watchVswitchd(ctx context.Context) {
	var dialer net.Dialer
	for {
		conn, err := dialer.DialContext(ctx, "unix", d.vswitchdCtl())
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d.cfg.WatchInterval): // not running (yet)
			}
			continue
		}
		stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
		_, _ = io.Copy(io.Discard, conn) // vswitchd never writes unasked: this returns when it dies
		stop()
		_ = conn.Close()
		if ctx.Err() != nil {
			return
		}
		d.removeStaleSockets(ctx)
		d.Reconcile()
	}
}

// removeStaleSockets removes the sockets the dead vswitchd left. Its
// control connection closes before the process has closed all its
// sockets, so sockets still in use are tried again every 5 ms for up to a
// second (their closing has no event to wait for; a new vswitchd needs
// longer than that to initialize DPDK and bind them again).
func (d *Daemon) removeStaleSockets(ctx context.Context) {
	start := time.Now()
	total := 0
	for {
		n, inUse, err := d.Adapter.RemoveStaleSockets()
		total += n
		log := d.cfg.Log.With().Int("removed", total).Int("in_use", inUse).Dur("duration", time.Since(start)).Logger()
		switch {
		case err != nil:
			log.Warn().Err(err).Msg("ovs-vswitchd exited; removing its stale sockets failed in part")
			return
		case inUse == 0 || time.Since(start) > time.Second:
			log.Info().Msg("ovs-vswitchd exited; removed its stale sockets")
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// vswitchdCtl is ovs-vswitchd's control socket: <rundir>/ovs-vswitchd.ctl
// when started with --unixctl so, else OVS's default
// <rundir>/ovs-vswitchd.<pid>.ctl.
func (d *Daemon) vswitchdCtl() string {
	fixed := filepath.Join(d.cfg.OVSRunDir, "ovs-vswitchd.ctl")
	if _, err := os.Stat(fixed); err == nil {
		return fixed
	}
	return filepath.Join(d.cfg.OVSRunDir, "ovs-vswitchd."+strconv.Itoa(d.vswitchdPID())+".ctl")
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

// reconcile reports whether it succeeded and how many ports vswitchd
// failed to re-create.
func (d *Daemon) reconcile(ctx context.Context, why string) (ok bool, failed int) {
	start := time.Now()
	res, err := d.Adapter.Reconcile(ctx)
	log := d.cfg.Log.With().Str("reason", why).Dur("duration", time.Since(start)).Logger()
	if err != nil {
		d.ready.Store(false)
		log.Warn().Err(err).Msg("reconcile failed; will retry")
		return false, 0
	}
	d.ready.Store(true)
	d.reconciled.Add(1)
	log.Info().Strs("removed", res.Removed).Strs("recreated", res.Recreated).Int("relinked", res.Relinked).
		Strs("failed", res.Failed).Msg("reconciled")
	return true, len(res.Failed)
}

func (d *Daemon) vswitchdPID() int {
	b, err := os.ReadFile(filepath.Join(d.cfg.OVSRunDir, "ovs-vswitchd.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// logRequest logs changes (attach, detach, gc) at info and the frequent
// reads (check, list, status) at debug; every error at warn.
func (d *Daemon) logRequest(ri service.RequestInfo) {
	ev := d.cfg.Log.Info()
	switch {
	case ri.Err != nil:
		ev = d.cfg.Log.Warn().Err(ri.Err).Uint("code", uint(contracts.CodeOf(ri.Err)))
	case ri.Op == contracts.OpCheck || ri.Op == contracts.OpList || ri.Op == contracts.OpStatus:
		ev = d.cfg.Log.Debug()
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
