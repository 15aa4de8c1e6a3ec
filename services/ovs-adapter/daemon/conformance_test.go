package daemon_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/contractstest"
	"usrsp.dev/libs/natstest"
	"usrsp.dev/libs/ovsdpdk/ovsdpdktest"
	"usrsp.dev/services/ovs-adapter/daemon"
	"usrsp.dev/services/ovs-adapter/ovs/ovstest"
)

// TestConformanceFakeOVS runs the shared adapter suite against the daemon
// on an in-memory OVS and an embedded NATS.
func TestConformanceFakeOVS(t *testing.T) {
	srv := natstest.Run(t)
	fake := ovstest.New()
	runSuite(t, config(t, srv.ClientURL(), "conf-fake", nil, fake), func(t *testing.T) {
		assert.Empty(t, fake.All(), "ports left in OVS")
		assert.Empty(t, fake.Bridges(), "bridges left in OVS")
	})
}

// TestConformanceRealOVS runs the shared adapter suite against the daemon
// on a private OVS-DPDK.
func TestConformanceRealOVS(t *testing.T) {
	inst := ovsdpdktest.Start(t)
	srv := natstest.Run(t)
	sw := ovsClient(t, inst)
	runSuite(t, config(t, srv.ClientURL(), "conf-real", inst, nil), func(t *testing.T) {
		ports, err := sw.OwnedPorts(context.Background())
		require.NoError(t, err)
		assert.Empty(t, ports, "ports left in OVS")
	})
}

// runSuite runs the daemon of cfg under the suite; Restart runs a new
// daemon on the same state dir (and OVS).
func runSuite(t *testing.T, cfg daemon.Config, clean func(*testing.T)) {
	_, stop := runDaemon(t, cfg)
	nc, _ := subscribe(t, cfg.NATSURL)
	sockDir := podDir(t, cfg, "pod") // socket paths must lie in a pod directory
	contractstest.RunAdapterSuite(t, contractstest.Target{
		NC: nc, Node: cfg.Node, Engine: contracts.EngineOVSDPDK,
		Request: func(k contracts.AttachmentKey, network string) *contracts.AttachRequest {
			h := contracts.HostInterface{NetType: contracts.NetTypeBridge, MTU: 1500,
				SocketPath: filepath.Join(sockDir, k.ShortID()+".sock"), Bridge: &contracts.BridgeSpec{Name: "br-conf"}}
			if k.ShortID() < "8" { // half memif, half vhost-user
				h.IfType, h.Memif = contracts.IfTypeMemif, &contracts.MemifSpec{Role: contracts.MemifRoleMaster, Mode: contracts.MemifModeEthernet}
			} else {
				h.IfType, h.Vhost = contracts.IfTypeVhostUser, &contracts.VhostSpec{Mode: contracts.VhostModeClient}
			}
			return &contracts.AttachRequest{Key: k, Network: network, Interface: h}
		},
		Conflicting: func(r *contracts.AttachRequest) *contracts.AttachRequest {
			c := *r
			c.Interface.MTU = 1400
			return &c
		},
		Restart: func(*testing.T) {
			stop()
			_, stop = runDaemon(t, cfg)
		},
		AssertClean: clean,
	})
}
