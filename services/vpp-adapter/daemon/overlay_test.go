package daemon_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/natstest"
	"usrsp.dev/libs/vpp/vpptest"
	"usrsp.dev/services/vpp-adapter/adapter"
	"usrsp.dev/services/vpp-adapter/daemon/daemontest"
)

// overlayNode is a daemon with --vtep on a fake VPP whose uplink has it.
func overlayNode(t *testing.T, natsURL, node, vtep string) (*daemontest.Instance, *vpptest.FakeVPP) {
	t.Helper()
	fake := vpptest.New()
	fake.AddInterface(vpptest.Interface{Name: "host-uplink", DevType: "af_packet", Up: true, Addresses: []string{vtep + "/24"}})
	cfg := onFake(fake)
	cfg.NATSURL, cfg.Node, cfg.VTEP, cfg.OverlayInterval = natsURL, node, vtep, contracts.MinAnnounceInterval
	i := daemontest.Start(t, cfg)
	require.NotNil(t, i.D.Overlay)
	assert.Equal(t, netip.MustParseAddr(vtep), i.D.Overlay.VTEP())
	i.WaitReady(t, 30*time.Second)
	return i, fake
}

// waitTunnels polls fake (bounded) until it has n tunnels tagged ours.
func waitTunnels(t *testing.T, fake *vpptest.FakeVPP, n int) map[string]vpptest.Interface {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := map[string]vpptest.Interface{}
		for _, i := range fake.Snapshot() {
			if i.Tunnel != nil && len(i.Tag) > len(adapter.TunnelTagPrefix) {
				got[i.Tag] = i
			}
		}
		if len(got) == n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d tunnels, not %d, within 30s: %v", len(got), n, got)
		}
		time.Sleep(10 * time.Millisecond) // poll with a deadline
	}
}

// TestOverlayDiscovery: two daemons on one NATS find each other and tunnel
// their common overlay network; a daemon that stops takes its tunnels
// with it on its peer.
func TestOverlayDiscovery(t *testing.T) {
	url := natstest.Run(t).ClientURL()
	n1, f1 := overlayNode(t, url, "n1.example", "10.231.0.1")
	n2, f2 := overlayNode(t, url, "n2.example", "10.231.0.2")
	for _, x := range []*daemontest.Instance{n1, n2} {
		r := x.MemifRequest(contracts.AttachmentKey{ContainerID: "pod-" + x.D.Config.Node, IfName: "net1"}, "ovl", 9)
		r.Interface.Overlay = &contracts.Overlay{Type: contracts.OverlayVXLAN, VNI: 5001}
		_, err := x.Client.Attach(ctx(t), contracts.EngineVPP, r)
		require.NoError(t, err)
	}
	t1 := waitTunnels(t, f1, 1)[adapter.TunnelTag("ovl", netip.MustParseAddr("10.231.0.2"))]
	require.NotNil(t, t1.Tunnel, "n1 tunnels to n2")
	assert.Equal(t, uint32(5001), t1.Tunnel.VNI)
	assert.Equal(t, uint32(9), t1.BD)
	waitTunnels(t, f2, 1)

	n2.Stop()
	waitTunnels(t, f1, 0)
}

func TestOverlayRefusedWithoutVTEP(t *testing.T) {
	i := daemontest.Start(t, onFake(vpptest.New()))
	assert.Nil(t, i.D.Overlay)
	i.WaitReady(t, 30*time.Second)
	r := i.MemifRequest(contracts.AttachmentKey{ContainerID: "pod", IfName: "net1"}, "ovl", 9)
	r.Interface.Overlay = &contracts.Overlay{Type: contracts.OverlayVXLAN, VNI: 5001}
	_, err := i.Client.Attach(ctx(t), contracts.EngineVPP, r)
	require.Error(t, err)
	assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err))
	assert.Contains(t, err.Error(), "--vtep")
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}
