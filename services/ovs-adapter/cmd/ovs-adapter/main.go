// Command ovs-adapter is usrsp's OVS-DPDK node daemon: it serves attach
// requests from NATS by creating vhost-user and memif ports on the node's
// OVS-DPDK. See services/ovs-adapter/README.md.
package main

import (
	"context"
	"flag"

	"usrsp.dev/libs/adapterkit"
	"usrsp.dev/services/ovs-adapter/daemon"
)

func main() {
	var cfg daemon.Config
	cfg.RegisterFlags(flag.CommandLine)
	daemon.Program.Main(func(ctx context.Context, c adapterkit.Config) error {
		cfg.Config = c
		return daemon.Run(ctx, cfg)
	})
}
