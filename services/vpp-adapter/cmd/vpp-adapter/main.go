// Command vpp-adapter is usrsp's VPP node daemon: it serves attach requests
// from NATS by creating memif, vhost-user and af_packet interfaces on the
// node's VPP. See services/vpp-adapter/README.md.
package main

import (
	"context"
	"flag"

	"go.fd.io/govpp/adapter/socketclient"

	"usrsp.dev/libs/adapterkit"
	"usrsp.dev/services/vpp-adapter/daemon"
)

func main() {
	apiSock := flag.String("vpp-api-socket", adapterkit.Env("VPP_API_SOCKET", socketclient.DefaultSocketName), "VPP binary API socket (env VPP_API_SOCKET)")
	tablePerNetwork := flag.Bool("l3-table-per-network", adapterkit.Env("L3_TABLE_PER_NETWORK", "") == "true", "put each L3 network in its own VPP IP table (env L3_TABLE_PER_NETWORK=true)")
	daemon.Program.Main(func(ctx context.Context, c adapterkit.Config) error {
		return daemon.Run(ctx, daemon.Config{Config: c, APISocket: *apiSock, TablePerNetwork: *tablePerNetwork})
	})
}
