// Command ovs-adapter is usrsp's OVS-DPDK node daemon: it serves attach
// requests from NATS by creating vhost-user and memif ports on the node's
// OVS-DPDK. See services/ovs-adapter/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"usrsp.dev/services/ovs-adapter/daemon"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ovs-adapter:", err)
		os.Exit(1)
	}
}

func run() error {
	host, _ := os.Hostname()
	var cfg daemon.Config
	var level string
	flag.StringVar(&cfg.NATSURL, "nats-url", env("NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL(s) (env NATS_URL)")
	flag.StringVar(&cfg.NATSCreds, "nats-creds", env("NATS_CREDS", ""), "NATS credentials file (env NATS_CREDS)")
	flag.StringVar(&cfg.Node, "node", env("NODE_NAME", host), "this node's name (env NODE_NAME)")
	flag.StringVar(&cfg.OVSDB, "ovsdb", env("OVSDB", "unix:/var/run/openvswitch/db.sock"), "OVSDB remote (env OVSDB)")
	flag.StringVar(&cfg.OVSRunDir, "ovs-rundir", env("OVS_RUNDIR", "/var/run/openvswitch"), "ovs-vswitchd's run dir: pid file and dpdkvhostuser sockets (env OVS_RUNDIR)")
	flag.StringVar(&cfg.StateDir, "state-dir", env("STATE_DIR", "/var/lib/usrsp/ovs-adapter"), "directory of the durable attachment records (env STATE_DIR)")
	flag.StringVar(&cfg.MetricsAddr, "metrics-addr", env("METRICS_ADDR", ":9477"), "listen address of /healthz, /readyz and /metrics, empty to disable (env METRICS_ADDR)")
	flag.StringVar(&level, "log-level", env("LOG_LEVEL", "info"), "debug, info, warn or error (env LOG_LEVEL)")
	flag.Parse()

	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	cfg.Log = zerolog.New(os.Stderr).Level(lvl).With().Timestamp().Logger()
	zerolog.DurationFieldUnit = time.Millisecond

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	d, err := daemon.Start(ctx, cfg)
	if err != nil {
		return err
	}
	return d.Run(ctx)
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}
