// Package adapterkit is what every usrsp adapter daemon shares: flags and
// env, the logger, the NATS connection, the micro service with one request
// hook (log line and metrics), the /healthz, /readyz and /metrics endpoint
// with the same semantics on every engine, and the metrics themselves.
// The engine's daemon package adds its vswitch connection loop and the
// adapter; see services/ovs-adapter/daemon and services/vpp-adapter/daemon.
package adapterkit

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/adapterkit/overlay"
)

// Program describes one adapter binary.
type Program struct {
	Name    string // e.g. "ovs-adapter"
	Engine  contracts.Engine
	Version string // the adapter's version
	// Vswitch is the vswitch version the adapter is built and tested for,
	// e.g. "VPP 25.10"; --version prints it.
	Vswitch string
	// StateDir and MetricsAddr are the defaults of --state-dir and
	// --metrics-addr.
	StateDir, MetricsAddr string
}

// Config is what every adapter daemon needs, whatever its engine.
type Config struct {
	NATSURL   string
	NATSCreds string
	// NATSTLS verifies the server (CAFile) and presents a client certificate.
	NATSTLS contracts.TLSFiles
	Node    string
	// StateDir is the directory of the durable attachment records.
	StateDir string
	// MetricsAddr is the listen address of /healthz, /readyz and /metrics
	// ("" disables it; ":0" picks a port, see Base.HTTPAddr).
	MetricsAddr string
	Log         zerolog.Logger
	// PodDirs are the node's pod directories, where request paths may
	// lead (roots.go).
	PodDirs PodDirs
	// VTEP is this node's underlay address for overlay networks (--vtep):
	// the local end of every VXLAN tunnel. Empty: overlay networks are
	// refused on this node. The vswitch must already reach the underlay
	// from it (README: the operator's part).
	VTEP string
	// OverlayInterval is how often the adapter announces itself to its
	// peers (--overlay-interval); peers forget it after 3 silent ones.
	OverlayInterval time.Duration
}

// ErrVersion is returned by Parse after it printed the version.
var ErrVersion = errors.New("version printed")

// Parse registers the common flags on fs (the engine's own flags are
// registered before), parses args and builds the logger on w. Every flag
// falls back to its environment variable. With --version it prints the
// version to out and returns ErrVersion.
func (p Program) Parse(fs *flag.FlagSet, args []string, out, w io.Writer) (Config, error) {
	host, _ := os.Hostname()
	var cfg Config
	var level string
	var version bool
	interval, err := envDuration("OVERLAY_INTERVAL", overlay.DefaultInterval)
	if err != nil {
		return cfg, err
	}
	fs.StringVar(&cfg.NATSURL, "nats-url", Env("NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL(s) (env NATS_URL)")
	fs.StringVar(&cfg.NATSCreds, "nats-creds", Env("NATS_CREDS", ""), "NATS credentials file (env NATS_CREDS)")
	fs.StringVar(&cfg.NATSTLS.CAFile, "nats-tls-ca", Env("NATS_TLS_CA", ""), "CA file (PEM) that verifies the NATS server, empty: system roots (env NATS_TLS_CA)")
	fs.StringVar(&cfg.NATSTLS.CertFile, "nats-tls-cert", Env("NATS_TLS_CERT", ""), "NATS client certificate file (PEM), with --nats-tls-key (env NATS_TLS_CERT)")
	fs.StringVar(&cfg.NATSTLS.KeyFile, "nats-tls-key", Env("NATS_TLS_KEY", ""), "NATS client key file (PEM) (env NATS_TLS_KEY)")
	fs.StringVar(&cfg.Node, "node", Env("NODE_NAME", host), "this node's name (env NODE_NAME)")
	fs.StringVar(&cfg.StateDir, "state-dir", Env("STATE_DIR", p.StateDir), "directory of the durable attachment records (env STATE_DIR)")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", Env("METRICS_ADDR", p.MetricsAddr), "listen address of /healthz, /readyz and /metrics, empty to disable (env METRICS_ADDR)")
	cfg.PodDirs.RegisterFlags(fs)
	fs.StringVar(&cfg.VTEP, "vtep", Env("VTEP", ""), "this node's underlay address for overlay (VXLAN) networks, empty: none on this node (env VTEP)")
	fs.DurationVar(&cfg.OverlayInterval, "overlay-interval", interval, "how often to announce this node to overlay peers; they forget it after 3 silent intervals (env OVERLAY_INTERVAL)")
	fs.StringVar(&level, "log-level", Env("LOG_LEVEL", "info"), "debug, info, warn or error (env LOG_LEVEL)")
	fs.BoolVar(&version, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if version {
		fmt.Fprintf(out, "%s %s (%s, contracts API %s, built and tested for %s)\n", p.Name, p.Version, p.Engine, contracts.APIVersion, p.Vswitch)
		return cfg, ErrVersion
	}
	log, err := NewLogger(w, level)
	if err != nil {
		return cfg, err
	}
	cfg.Log = log
	return cfg, nil
}

// Main is the whole main of an adapter: Parse on the command line, then
// run until SIGINT or SIGTERM; an error exits 1.
func (p Program) Main(run func(ctx context.Context, cfg Config) error) {
	cfg, err := p.Parse(flag.CommandLine, os.Args[1:], os.Stdout, os.Stderr)
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		err = run(ctx, cfg)
		stop()
	}
	if err != nil && !errors.Is(err, ErrVersion) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", p.Name, err)
		os.Exit(1)
	}
}

// NewLogger is the adapters' zerolog logger: JSON on w with timestamps,
// durations in milliseconds. Start adds the engine and node fields.
func NewLogger(w io.Writer, level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("--log-level: %w", err)
	}
	zerolog.DurationFieldUnit = time.Millisecond
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// envDuration is the duration in the environment variable name, or def
// if unset.
func envDuration(name string, def time.Duration) (time.Duration, error) {
	v, ok := os.LookupEnv(name)
	if !ok {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("env %s: %w", name, err)
	}
	return d, nil
}

// Env is the value of the environment variable name, or def if unset.
func Env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}
