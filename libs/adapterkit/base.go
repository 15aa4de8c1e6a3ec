package adapterkit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/service"
	"usrsp.dev/libs/adapterkit/overlay"
)

// Base is the engine-independent half of a running adapter daemon: the
// NATS connection, the metrics, the HTTP endpoint, the readiness state and
// (after Serve) the micro service.
type Base struct {
	Program Program
	Config  Config
	// Log carries the engine and node fields.
	Log     zerolog.Logger
	NC      *nats.Conn
	Metrics *Metrics

	svc  micro.Service
	http *http.Server
	ln   net.Listener

	mu         sync.Mutex
	vswitchUp  bool
	vswitchWhy string // why the vswitch is not connected
	reconciled bool
	reconWhy   string // why the desired state is not reconciled
}

// Start connects to NATS and starts the HTTP endpoint; /readyz answers 503
// until the daemon reports the vswitch connected (VswitchUp) and the
// desired state reconciled (Reconciled). Close it when done.
func Start(p Program, cfg Config) (*Base, error) {
	if cfg.Node == "" {
		return nil, contracts.Errorf(contracts.CodeInvalidConfig, "node name is empty")
	}
	log := cfg.Log.With().Str("engine", string(p.Engine)).Str("node", cfg.Node).Logger()
	b := &Base{Program: p, Config: cfg, Log: log, Metrics: NewMetrics(p.Engine),
		vswitchWhy: "not connected yet", reconWhy: "not reconciled yet"}
	b.Config.Log = log
	var err error
	b.NC, err = connectNATS(p, cfg, log)
	if err != nil {
		return nil, err
	}
	if cfg.MetricsAddr != "" {
		if err := b.serveHTTP(); err != nil {
			b.Close()
			return nil, err
		}
	}
	return b, nil
}

// Publisher publishes the adapter's events on this node's engine subjects.
func (b *Base) Publisher() *contracts.Publisher {
	return contracts.NewPublisher(b.NC, b.Config.Node, b.Program.Engine)
}

// NewOverlay returns the overlay discovery of this node for dp, or nil
// when --vtep is empty (no overlay networks on this node). Run it with
// the daemon's context.
func (b *Base) NewOverlay(dp overlay.Dataplane) (*overlay.Manager, error) {
	if b.Config.VTEP == "" {
		return nil, nil
	}
	vtep, ok := b.vtep()
	if !ok {
		return nil, contracts.Errorf(contracts.CodeInvalidConfig, "--vtep %q is not an IPv4 address (overlays need an IPv4 underlay)", b.Config.VTEP)
	}
	return overlay.New(overlay.Config{NC: b.NC, Node: b.Config.Node, Engine: b.Program.Engine, VTEP: vtep,
		Interval: b.Config.OverlayInterval, Dataplane: dp, Log: b.Log, OnSync: b.Metrics.ObserveOverlaySync})
}

// VTEP is --vtep, for the adapter (made before NewOverlay, which needs it
// as its Dataplane): zero when unset or not an IPv4 address, which
// NewOverlay then refuses.
func (b *Base) VTEP() netip.Addr {
	vtep, _ := b.vtep()
	return vtep
}

func (b *Base) vtep() (netip.Addr, bool) {
	vtep, err := netip.ParseAddr(b.Config.VTEP)
	if err != nil || !vtep.Is4() {
		return netip.Addr{}, false
	}
	return vtep, true
}

// ServiceOptions are the engine's parts of the micro service.
type ServiceOptions struct {
	Description string
	Metadata    map[string]string
	// OnRequest, if set, runs after the kit's hook (log line, metrics).
	OnRequest func(service.RequestInfo)
}

// Serve registers a as the node's micro service (contracts/service, which
// serializes requests per attachment key). Every request is logged and
// measured by one hook.
func (b *Base) Serve(a contracts.Adapter, o ServiceOptions) error {
	meta := map[string]string{"vswitch": b.Program.Vswitch}
	for k, v := range o.Metadata {
		meta[k] = v
	}
	svc, err := service.Add(b.NC, service.Config{
		Node: b.Config.Node, Engine: b.Program.Engine, Version: b.Program.Version,
		Description: o.Description, Metadata: meta,
		OnRequest: func(ri service.RequestInfo) {
			b.OnRequest(ri)
			if o.OnRequest != nil {
				o.OnRequest(ri)
			}
		},
	}, a)
	if err != nil {
		return fmt.Errorf("register NATS service: %w", err)
	}
	b.svc = svc
	b.Log.Info().Str("version", b.Program.Version).Str("subject", contracts.ServicePrefix(b.Config.Node, b.Program.Engine)+".>").
		Str("state_dir", b.Config.StateDir).Str("http", b.HTTPAddr()).Msg("serving")
	return nil
}

// OnRequest logs and measures one request: changes (attach, detach, gc)
// at info, the frequent reads (check, list, status) at debug, every
// failure at warn with its code.
func (b *Base) OnRequest(ri service.RequestInfo) {
	b.Metrics.ObserveRequest(ri)
	ev := b.Log.Info()
	switch {
	case ri.Err != nil:
		ev = b.Log.Warn().Err(ri.Err).Uint("code", uint(contracts.CodeOf(ri.Err)))
	case ri.Op == contracts.OpCheck || ri.Op == contracts.OpList || ri.Op == contracts.OpStatus:
		ev = b.Log.Debug()
	}
	if ri.Key != nil {
		ev = ev.Str("container_id", ri.Key.ContainerID).Str("ifname", ri.Key.IfName)
	}
	ev.Str("subject", ri.Subject).Str("op", string(ri.Op)).Dur("duration", ri.Duration).Msg("request")
}

// VswitchUp records whether the vswitch connection is up (why: the reason
// when not). A new connection needs a new reconcile before /readyz is 200.
func (b *Base) VswitchUp(up bool, why string) {
	b.Metrics.SetVswitchConnected(up)
	b.mu.Lock()
	defer b.mu.Unlock()
	if up && !b.vswitchUp {
		b.reconciled, b.reconWhy = false, "not reconciled since the vswitch connected"
	}
	b.vswitchUp, b.vswitchWhy = up, why
}

// Reconciled records a reconcile (replay) of the desired state that took
// d and failed with err (nil: success).
func (b *Base) Reconciled(d time.Duration, err error) {
	b.Metrics.ObserveReconcile(d)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reconciled, b.reconWhy = err == nil, ""
	if err != nil {
		b.reconWhy = "reconcile failed: " + err.Error()
	}
}

// Ready is what /readyz answers: the vswitch connected, the desired state
// reconciled, NATS connected; else false and why.
func (b *Base) Ready() (bool, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case !b.vswitchUp:
		return false, "vswitch not connected: " + b.vswitchWhy
	case !b.reconciled:
		return false, "desired state not reconciled: " + b.reconWhy
	case b.NC == nil || !b.NC.IsConnected():
		return false, "NATS not connected"
	}
	return true, ""
}

// Handler serves /healthz (the process answers), /readyz (see Ready) and
// /metrics.
func (b *Base) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(b.Metrics.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ok, why := b.Ready(); !ok {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

func (b *Base) serveHTTP() error {
	ln, err := net.Listen("tcp", b.Config.MetricsAddr)
	if err != nil {
		return fmt.Errorf("metrics listener %s: %w", b.Config.MetricsAddr, err)
	}
	b.ln = ln
	b.http = &http.Server{Handler: b.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := b.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.Log.Error().Err(err).Msg("metrics server stopped")
		}
	}()
	return nil
}

// HTTPAddr is the address the HTTP endpoint listens on ("" if none).
func (b *Base) HTTPAddr() string {
	if b.ln == nil {
		return ""
	}
	return b.ln.Addr().String()
}

// Close stops the HTTP endpoint and the service and closes NATS. Safe to
// call twice.
func (b *Base) Close() {
	if b.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = b.http.Shutdown(ctx)
		cancel()
	}
	if b.svc != nil {
		_ = b.svc.Stop()
	}
	if b.NC != nil {
		b.NC.Close()
	}
}
