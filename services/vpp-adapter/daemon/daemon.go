// Package daemon wires the vpp adapter into a node daemon on the shared
// adapter kit (libs/adapterkit: NATS, the service and its request hook,
// /healthz /readyz /metrics) plus the VPP connection loop (libs/vpp Loop),
// which replays the records on every (re)connect. cmd/vpp-adapter is a
// thin main around Run; tests run the daemon in-process on a fake VPP.
package daemon

import (
	"cmp"
	"context"
	"sync"
	"time"

	govppadapter "go.fd.io/govpp/adapter"
	"go.fd.io/govpp/adapter/socketclient"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/adapterkit"
	"usrsp.dev/libs/adapterkit/overlay"
	"usrsp.dev/libs/vpp"
	"usrsp.dev/services/vpp-adapter/adapter"
	"usrsp.dev/services/vpp-adapter/version"
)

// Program is the vpp-adapter binary: name, version, flag defaults.
var Program = adapterkit.Program{Name: "vpp-adapter", Engine: contracts.EngineVPP, Version: version.Version,
	Vswitch: "VPP " + vpp.BuiltFor, StateDir: "/var/lib/usrsp/vpp-adapter", MetricsAddr: ":9641"}

// Config configures the daemon: the kit's common part and VPP's.
type Config struct {
	adapterkit.Config
	// APISocket is VPP's binary API socket (default /run/vpp/api.sock).
	APISocket string
	// TablePerNetwork: see adapter.Config.
	TablePerNetwork bool
	// NewVPP returns the VPP transport of each connection attempt; nil: a
	// socket client on APISocket. Tests pass a fake VPP.
	NewVPP func() govppadapter.VppAPI
	// MinBackoff and MaxBackoff bound the wait between connection attempts
	// (default 500ms-30s); ProbeInterval and ProbeTimeout drive the
	// liveness probe (default 2s each).
	MinBackoff, MaxBackoff      time.Duration
	ProbeInterval, ProbeTimeout time.Duration
}

// Daemon is a running adapter.
type Daemon struct {
	*adapterkit.Base
	cfg     Config
	Adapter *adapter.Adapter
	// Overlay is the overlay discovery, nil without --vtep.
	Overlay *overlay.Manager
}

// Start opens the records, connects to NATS and starts serving; VPP is
// connected (and the records replayed) by Run. /readyz answers 503 until
// then.
func Start(cfg Config) (*Daemon, error) {
	cfg.APISocket = cmp.Or(cfg.APISocket, socketclient.DefaultSocketName)
	if cfg.NewVPP == nil {
		sock := cfg.APISocket
		cfg.NewVPP = func() govppadapter.VppAPI { return socketclient.NewVppClient(sock) }
	}
	cfg.MinBackoff = cmp.Or(cfg.MinBackoff, 500*time.Millisecond)
	cfg.MaxBackoff = cmp.Or(cfg.MaxBackoff, 30*time.Second)
	cfg.ProbeInterval = cmp.Or(cfg.ProbeInterval, 2*time.Second)
	cfg.ProbeTimeout = cmp.Or(cfg.ProbeTimeout, 2*time.Second)

	st, err := adapter.OpenStore(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	// The pod directories (and the state dir) bound every path the
	// adapter hands VPP or touches (libs/confine).
	roots, err := cfg.PodDirs.Roots(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	b, err := adapterkit.Start(Program, cfg.Config)
	if err != nil {
		return nil, err
	}
	b.Log.Info().Strs("roots", roots.Dirs()).Msg("request paths are confined to these directories")
	d := &Daemon{Base: b, cfg: cfg}
	d.Adapter = adapter.New(adapter.Config{Store: st, Roots: roots, Log: b.Log, Metrics: b.Metrics, Events: b.Publisher(),
		TablePerNetwork: cfg.TablePerNetwork, VTEP: b.VTEP()})
	// The adapter is the overlay's dataplane, so it is made first; an
	// unparsable --vtep is NewOverlay's error below.
	if d.Overlay, err = b.NewOverlay(d.Adapter); err != nil {
		b.Close()
		return nil, err
	}
	if d.Overlay != nil {
		d.Adapter.SetOverlay(d.Overlay)
		b.Log.Info().Str("vtep", d.Overlay.VTEP().String()).Msg("overlay networks enabled")
	}
	if err := b.Serve(d.Adapter, adapterkit.ServiceOptions{
		Description: "usrsp VPP adapter (memif, vhost-user, af_packet) for VPP " + vpp.BuiltFor,
		Metadata:    map[string]string{"vpp-version": vpp.BuiltFor, "vpp-api-socket": cfg.APISocket},
	}); err != nil {
		b.Close()
		return nil, err
	}
	return d, nil
}

// Run keeps the VPP connection until ctx is done, replaying the records
// on every connect, then closes the daemon.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.Close()
	var overlayDone sync.WaitGroup
	if d.Overlay != nil {
		// Waited for before Close: its "leaving" announcement needs NATS.
		overlayDone.Go(func() {
			if err := d.Overlay.Run(ctx); err != nil {
				d.Log.Error().Err(err).Msg("overlay discovery stopped")
			}
		})
	}
	defer overlayDone.Wait()
	loop := &vpp.Loop{
		NewAdapter: d.cfg.NewVPP,
		Up: func(ctx context.Context, s vpp.Session) {
			d.VswitchUp(true, "")
			sum, err := d.Adapter.Up(ctx, s)
			d.Reconciled(sum.Duration, err)
		},
		Down: func(err error) {
			d.Adapter.Down(err)
			d.VswitchUp(false, err.Error())
		},
		MinBackoff: d.cfg.MinBackoff, MaxBackoff: d.cfg.MaxBackoff,
		ProbeInterval: d.cfg.ProbeInterval, ProbeTimeout: d.cfg.ProbeTimeout,
	}
	d.Log.Info().Str("vpp_api_socket", d.cfg.APISocket).Msg("connecting to VPP")
	loop.Run(ctx)
	d.Log.Info().Msg("stopping")
	return nil
}

// Run is the whole daemon: Start, then Run until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	d, err := Start(cfg)
	if err != nil {
		return err
	}
	return d.Run(ctx)
}
