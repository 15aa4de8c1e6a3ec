// Package daemon wires the ovs-dpdk adapter into a node daemon on
// libs/adapterkit (NATS, the micro service, health/readiness/metrics HTTP,
// the records): here is what is OVS's, the connection and vswitchd watch
// loop that reconciles on start and after OVS restarts. cmd/ovs-adapter is
// a thin main around Run; tests, the e2e suite and the demo can run it
// in-process.
package daemon

import (
	"context"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/adapterkit"
	"usrsp.dev/libs/adapterkit/overlay"
	"usrsp.dev/services/ovs-adapter/adapter"
	"usrsp.dev/services/ovs-adapter/ovs"
	"usrsp.dev/services/ovs-adapter/version"
)

// maxRetries bounds the reconciles in a row that re-create ports vswitchd
// keeps failing (1+2+4+8+16 s of backoff).
const maxRetries = 5

// Program is the ovs-adapter binary: its flag defaults and what --version
// prints.
var Program = adapterkit.Program{
	Name: "ovs-adapter", Engine: contracts.EngineOVSDPDK, Version: version.Version,
	// What the tests ran against: Debian 12's openvswitch-switch-dpdk
	// 3.1.0-2+deb12u1 (`ovs-vswitchd --version`: 3.1.0, DPDK 22.11.11).
	Vswitch:  "Open vSwitch 3.1.0 with DPDK 22.11.11",
	StateDir: "/var/lib/usrsp/ovs-adapter", MetricsAddr: ":9477",
}

// Config configures the daemon.
type Config struct {
	adapterkit.Config
	OVSDB     string // OVSDB remote, e.g. unix:/var/run/openvswitch/db.sock
	OVSRunDir string // ovs-vswitchd's run dir (pid file, dpdkvhostuser sockets)
	// WatchInterval is how often OVS is checked for a lost connection or a
	// restarted vswitchd (default 1s).
	WatchInterval time.Duration
	// Conn, if set, is the OVS to use instead of dialing OVSDB (tests:
	// ovstest.Fake). Close closes it.
	Conn ovs.Conn
}

// RegisterFlags registers the OVS flags on fs (the common ones are the
// kit's, see Program.Parse).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.OVSDB, "ovsdb", adapterkit.Env("OVSDB", "unix:/var/run/openvswitch/db.sock"), "OVSDB remote (env OVSDB)")
	fs.StringVar(&c.OVSRunDir, "ovs-rundir", adapterkit.Env("OVS_RUNDIR", "/var/run/openvswitch"), "ovs-vswitchd's run dir: pid file and dpdkvhostuser sockets (env OVS_RUNDIR)")
}

// Daemon is a running adapter.
type Daemon struct {
	*adapterkit.Base
	cfg     Config
	Adapter *adapter.Adapter
	ovs     ovs.Conn
	// overlay is the node's overlay discovery (nil without --vtep).
	overlay *overlay.Manager
	// reconciled counts successful reconciles (tests wait on it).
	reconciled atomic.Int64
	kick       chan struct{}
}

// Run starts the daemon and serves until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	d, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	return d.Run(ctx)
}

// Start connects everything, reconciles once (if OVS is reachable) and
// starts serving. Stop it with Run's context or Close.
func Start(ctx context.Context, cfg Config) (*Daemon, error) {
	if cfg.OVSRunDir == "" {
		cfg.OVSRunDir = "/var/run/openvswitch"
	}
	if cfg.WatchInterval <= 0 {
		cfg.WatchInterval = time.Second
	}
	base, err := adapterkit.Start(Program, cfg.Config)
	if err != nil {
		return nil, err
	}
	cfg.Config = base.Config
	if cfg.Conn == nil {
		cfg.Conn = ovs.NewClient(ovs.Config{Remote: cfg.OVSDB})
	}
	d := &Daemon{Base: base, cfg: cfg, ovs: cfg.Conn, kick: make(chan struct{}, 1)}
	success := false
	defer func() {
		if !success {
			d.Close()
		}
	}()
	log := d.Log
	store, err := adapter.OpenStore(cfg.StateDir) // also cleans up after a crash
	if err != nil {
		return nil, err
	}
	// The run dir is a root before vswitchd first starts (it makes it too).
	if err := os.MkdirAll(cfg.OVSRunDir, 0o755); err != nil {
		return nil, err
	}
	roots, err := cfg.PodDirs.Roots(cfg.StateDir, cfg.OVSRunDir)
	if err != nil {
		return nil, err
	}
	log.Info().Strs("roots", roots.Dirs()).Msg("request paths are confined to these directories")
	// The adapter is the overlay's dataplane, so it is made first; an
	// unparsable --vtep is NewOverlay's error below.
	d.Adapter, err = adapter.New(adapter.Config{
		OVS: d.ovs, Store: store, Events: d.Publisher(), Metrics: d.Metrics, OVSRunDir: cfg.OVSRunDir, Roots: roots, Version: version.Version,
		OnEventError: func(err error) { log.Warn().Err(err).Msg("event not published") }, VTEP: d.VTEP(),
	})
	if err != nil {
		return nil, err
	}
	if d.overlay, err = d.NewOverlay(d.Adapter); err != nil {
		return nil, err
	}
	if d.overlay != nil {
		d.Adapter.SetOverlay(d.overlay)
	}
	if d.ping(ctx) {
		if ok, failed := d.reconcile(ctx, "start"); ok && failed > 0 {
			d.Reconcile() // Run retries
		}
	}
	if err := d.Serve(d.Adapter, adapterkit.ServiceOptions{
		Description: "usrsp OVS-DPDK adapter: vhost-user and memif ports for pods",
		Metadata:    map[string]string{"ovsdb": cfg.OVSDB},
	}); err != nil {
		return nil, err
	}
	success = true
	return d, nil
}

// ping checks the OVSDB connection and reports it to the kit (readiness
// and usrsp_adapter_vswitch_connected).
func (d *Daemon) ping(ctx context.Context) bool {
	err := d.ovs.Ping(ctx)
	if err != nil {
		d.VswitchUp(false, err.Error())
		return false
	}
	d.VswitchUp(true, "")
	return true
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
	if d.overlay != nil {
		// Waited for before Close: its "leaving" must still reach NATS.
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := d.overlay.Run(ctx); err != nil {
				d.Log.Error().Err(err).Msg("overlay discovery stopped; overlay networks get no tunnels")
			}
		}()
		defer func() { <-done }()
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { defer close(watched); d.watchVswitchd(watchCtx) }()
	defer func() { stopWatch(); <-watched }()
	tick := time.NewTicker(d.cfg.WatchInterval)
	defer tick.Stop()
	gen, pid := d.ovs.Generation(), d.vswitchdPID()
	pending := d.reconciled.Load() == 0 // Start's reconcile failed or OVS was down
	var retry <-chan time.Time          // set while ports are left failed
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
		if !d.ping(ctx) {
			pending = true
			continue
		}
		if g := d.ovs.Generation(); g != gen {
			d.Log.Info().Msg("OVSDB connection made again")
			gen, pending, retries = g, true, 0
		}
		if p := d.vswitchdPID(); p != pid && p != 0 {
			d.Log.Info().Int("pid", p).Msg("ovs-vswitchd restarted")
			pid, pending, retries = p, true, 0
		}
		if pending {
			ok, failed := d.reconcile(ctx, "ovs restart, reconnect or failed ports")
			pending = !ok
			switch {
			case ok && failed > 0 && retries < maxRetries:
				backoff = max(2*backoff, time.Second)
				retry = time.After(backoff)
				d.Log.Warn().Int("failed", failed).Dur("retry_in", backoff).Msg("ports left failed by vswitchd; reconciling again")
			case ok:
				if failed > 0 {
					d.Log.Error().Int("failed", failed).Int("retries", retries).
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
		log := d.Log.With().Int("removed", total).Int("in_use", inUse).Dur("duration", time.Since(start)).Logger()
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

// Reconciles is the number of successful reconciles so far.
func (d *Daemon) Reconciles() int64 { return d.reconciled.Load() }

// reconcile reports whether it succeeded and how many ports vswitchd
// failed to re-create.
func (d *Daemon) reconcile(ctx context.Context, why string) (ok bool, failed int) {
	start := time.Now()
	res, err := d.Adapter.Reconcile(ctx)
	took := time.Since(start)
	d.Reconciled(took, err)
	log := d.Log.With().Str("reason", why).Dur("duration", took).Logger()
	if err != nil {
		log.Warn().Err(err).Msg("reconcile failed; will retry")
		return false, 0
	}
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

// Close stops serving and closes the connections (the kit's and OVS). Safe to call twice.
func (d *Daemon) Close() {
	d.Base.Close()
	_ = d.ovs.Close()
}
