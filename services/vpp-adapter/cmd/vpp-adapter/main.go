// Command vpp-adapter is the node daemon that drives the host VPP for
// usrsp: a NATS micro service on this node's VPP subjects.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	govppadapter "go.fd.io/govpp/adapter"
	"go.fd.io/govpp/adapter/socketclient"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/service"
	"usrsp.dev/services/vpp-adapter/adapter"
	"usrsp.dev/services/vpp-adapter/store"
	"usrsp.dev/libs/vpp"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "vpp-adapter:", err)
		os.Exit(1)
	}
}

func run() error {
	host, _ := os.Hostname()
	natsURL := flag.String("nats-url", env("NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL(s) (env NATS_URL)")
	creds := flag.String("nats-creds", env("NATS_CREDS", ""), "NATS credentials file (env NATS_CREDS)")
	node := flag.String("node", env("NODE_NAME", host), "Kubernetes node name (env NODE_NAME)")
	apiSock := flag.String("vpp-api-socket", env("VPP_API_SOCKET", socketclient.DefaultSocketName), "VPP binary API socket (env VPP_API_SOCKET)")
	stateDir := flag.String("state-dir", env("STATE_DIR", "/var/lib/usrsp/vpp-adapter"), "directory of the durable attachment records (env STATE_DIR)")
	metricsAddr := flag.String("metrics-addr", env("METRICS_ADDR", ":9641"), "address of /metrics, /healthz, /readyz; empty: off (env METRICS_ADDR)")
	logLevel := flag.String("log-level", env("LOG_LEVEL", "info"), "debug, info, warn or error (env LOG_LEVEL)")
	tablePerNetwork := flag.Bool("l3-table-per-network", env("L3_TABLE_PER_NETWORK", "") == "true", "put each L3 network in its own VPP IP table (env L3_TABLE_PER_NETWORK=true)")
	version := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *version {
		fmt.Printf("vpp-adapter %s (VPP binary API %s)\n", adapter.Version, vpp.BuiltFor)
		return nil
	}
	level, err := zerolog.ParseLevel(*logLevel)
	if err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := zerolog.New(os.Stderr).Level(level).With().Timestamp().Str("engine", string(contracts.EngineVPP)).Str("node", *node).Logger()

	st, err := store.Open(*stateDir)
	if err != nil {
		return err
	}
	nc, err := contracts.ConnectService(contracts.ConnectOptions{URL: *natsURL, CredentialsFile: *creds, Name: "vpp-adapter@" + *node},
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn().Err(err).Msg("NATS disconnected") }),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info().Str("url", c.ConnectedUrl()).Msg("NATS reconnected") }))
	if err != nil {
		return err
	}
	defer nc.Close()

	metrics := adapter.NewMetrics()
	a := adapter.New(adapter.Config{Store: st, Log: log, Metrics: metrics, TablePerNetwork: *tablePerNetwork,
		Events: contracts.NewPublisher(nc, *node, contracts.EngineVPP)})
	svcCfg := a.ServiceConfig(*node)
	svcCfg.Metadata["vpp-api-socket"] = *apiSock
	svc, err := service.Add(nc, svcCfg, a)
	if err != nil {
		return fmt.Errorf("register NATS micro service: %w", err)
	}
	defer func() { _ = svc.Stop() }()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *metricsAddr != "" {
		srv := &http.Server{Addr: *metricsAddr, Handler: a.HealthHandler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error().Err(err).Str("addr", *metricsAddr).Msg("metrics server stopped")
			}
		}()
		defer func() { _ = srv.Close() }()
	}
	log.Info().Str("version", adapter.Version).Str("vpp_api_socket", *apiSock).Str("state_dir", *stateDir).
		Str("subject", contracts.ServicePrefix(*node, contracts.EngineVPP)).Msg("vpp-adapter started")
	loop := &vpp.Loop{
		NewAdapter:    func() govppadapter.VppAPI { return socketclient.NewVppClient(*apiSock) },
		Up:            a.Up,
		Down:          a.Down,
		MinBackoff:    500 * time.Millisecond,
		MaxBackoff:    30 * time.Second,
		ProbeInterval: 2 * time.Second,
		ProbeTimeout:  2 * time.Second,
	}
	loop.Run(ctx)
	log.Info().Msg("vpp-adapter stopping")
	return nil
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}
