package daemon_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/natstest"
	"usrsp.dev/services/ovs-adapter/adapter"
	"usrsp.dev/services/ovs-adapter/daemon"
	"usrsp.dev/services/ovs-adapter/ovs"
	"usrsp.dev/services/ovs-adapter/ovs/ovstest"
)

// awaitTunnels waits until fake's VXLAN ports are exactly want. Discovery
// runs in the daemons, with no event for a tunnel, so this polls within a
// bounded time.
func awaitTunnels(t *testing.T, fake *ovstest.Fake, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := []string{}
		for _, p := range fake.All() {
			if p.IsTunnel() {
				got = append(got, p.Name)
			}
		}
		if slices.Equal(want, got) {
			return
		}
		require.True(t, time.Now().Before(deadline), "tunnels %v, want %v", got, want)
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOverlayDaemons: two daemons (fake OVS) with --vtep on one NATS find
// each other and tunnel their shared overlay network; when one stops, its
// "leaving" removes the other's tunnel at once. node-b announces every 10s,
// so node-a would forget it only after 30s, well past awaitTunnels' bound:
// only the "leaving" can remove the tunnel in time.
func TestOverlayDaemons(t *testing.T) {
	srv := natstest.Run(t)
	ctx := context.Background()
	vteps := []string{"10.232.0.1", "10.232.0.2"}
	intervals := []time.Duration{100 * time.Millisecond, 10 * time.Second}
	fakes := []*ovstest.Fake{ovstest.New(), ovstest.New()}
	stops := make([]func(), 2)
	nc, _ := subscribe(t, srv.ClientURL())
	for i, node := range []string{"node-a", "node-b"} {
		cfg := config(t, srv.ClientURL(), node, nil, fakes[i])
		cfg.VTEP, cfg.OverlayInterval = vteps[i], intervals[i]
		_, stops[i] = runDaemon(t, cfg)
		sock := filepath.Join(podDir(t, cfg, "pod"), "vh.sock")
		_, err := contracts.NewClient(nc, node, 20*time.Second).Attach(ctx, contracts.EngineOVSDPDK, &contracts.AttachRequest{
			Key: contracts.AttachmentKey{ContainerID: "pod" + node, IfName: "net1"}, Network: "ovl",
			Interface: contracts.HostInterface{IfType: contracts.IfTypeVhostUser, NetType: contracts.NetTypeBridge, SocketPath: sock,
				Vhost: &contracts.VhostSpec{Mode: contracts.VhostModeClient}, Bridge: &contracts.BridgeSpec{Name: "br-ovl"},
				Overlay: &contracts.Overlay{Type: contracts.OverlayVXLAN, VNI: 5001}}})
		require.NoError(t, err)
	}
	awaitTunnels(t, fakes[0], adapter.TunnelName("ovl", vteps[1]))
	awaitTunnels(t, fakes[1], adapter.TunnelName("ovl", vteps[0]))
	p, err := fakes[0].Ports(ctx, []string{adapter.TunnelName("ovl", vteps[1])})
	require.NoError(t, err)
	require.Len(t, p, 1)
	assert.Equal(t, "node-b", p[0].ExternalIDs[ovs.ExtPeer])

	stops[1]()
	awaitTunnels(t, fakes[0])
	awaitTunnels(t, fakes[1], adapter.TunnelName("ovl", vteps[0])) // a stopped adapter leaves OVS as it is
}

func TestOverlayBadVTEP(t *testing.T) {
	srv := natstest.Run(t)
	cfg := config(t, srv.ClientURL(), "node-a", nil, ovstest.New())
	cfg.VTEP = "not-an-address"
	_, err := daemon.Start(context.Background(), cfg)
	require.Error(t, err)
	assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err))
	assert.Contains(t, err.Error(), "--vtep")
}
