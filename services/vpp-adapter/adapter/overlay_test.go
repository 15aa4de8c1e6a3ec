package adapter_test

import (
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/adapterkit/overlay"
	"usrsp.dev/libs/vpp"
	"usrsp.dev/libs/vpp/vpptest"
	"usrsp.dev/services/vpp-adapter/adapter"
)

var (
	vtep  = netip.MustParseAddr("10.231.0.1")
	peer1 = netip.MustParseAddr("10.231.0.2")
	peer2 = netip.MustParseAddr("10.231.0.3")
)

func withVTEP(c *adapter.Config) { c.VTEP = vtep }

// counter is an overlay that counts Changed calls.
type counter struct{ n atomic.Int64 }

func (c *counter) Changed() { c.n.Add(1) }

// overlayHarness is a harness whose adapter has the VTEP, on a VPP whose
// uplink has it, and counts the overlay's Changed calls.
func overlayHarness(t *testing.T, opts ...option) (*harness, *counter) {
	h := newHarness(t, append(opts, withVTEP)...)
	h.fake.AddInterface(vpptest.Interface{Name: "host-uplink", DevType: "af_packet", Up: true, Addresses: []string{vtep.String() + "/24"}})
	n := &counter{}
	h.a.SetOverlay(n)
	return h, n
}

func withOverlay(r *contracts.AttachRequest, vni uint32) *contracts.AttachRequest {
	r.Interface.Overlay = &contracts.Overlay{Type: contracts.OverlayVXLAN, VNI: vni}
	return r
}

func bridgeTunnel(remote netip.Addr, peer string) overlay.Tunnel {
	return overlay.Tunnel{Network: "vpp-net", NetType: contracts.NetTypeBridge, VNI: 5001, Port: 4789, Local: vtep, Remote: remote, Peer: peer}
}

// tunnels returns the fake's VXLAN tunnel interfaces by tag.
func tunnels(f *vpptest.FakeVPP) map[string]vpptest.Interface {
	out := map[string]vpptest.Interface{}
	for _, i := range f.Snapshot() {
		if i.Tunnel != nil {
			out[i.Tag] = i
		}
	}
	return out
}

func countCalls(calls []string, name string) int {
	n := 0
	for _, c := range calls {
		if c == name {
			n++
		}
	}
	return n
}

func TestOverlayRefusedWithoutVTEP(t *testing.T) {
	h := newHarness(t)
	_, err := h.a.Attach(ctx(t), withOverlay(memifBridge(5), 5001))
	require.Error(t, err)
	assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err))
	assert.Contains(t, err.Error(), "interface.overlay")
	assert.Contains(t, err.Error(), "--vtep")
	assert.Empty(t, h.fake.Calls(), "refused before VPP is asked anything")
}

func TestOverlayRoutedIPv6Refused(t *testing.T) {
	h, _ := overlayHarness(t)
	_, err := h.a.Attach(ctx(t), withOverlay(l3Request(), 7))
	require.Error(t, err)
	assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err))
	assert.Contains(t, err.Error(), "IPv4 only")
}

func TestOverlayBridgeSync(t *testing.T) {
	h, changed := overlayHarness(t)
	c := ctx(t)
	_, err := h.a.Attach(c, withOverlay(memifBridge(5), 5001))
	require.NoError(t, err)
	assert.Equal(t, int64(1), changed.n.Load(), "an attach tells the overlay")
	assert.Equal(t, []contracts.OverlayMember{{Network: "vpp-net", NetType: contracts.NetTypeBridge, VNI: 5001, Port: 4789}}, members(t, h.a))

	// An operator's tunnel, untagged: never touched.
	foreign, err := h.client.CreateTunnel(c, vppTunnel(peer2, 99))
	require.NoError(t, err)

	want := []overlay.Tunnel{bridgeTunnel(peer1, "n2"), bridgeTunnel(peer2, "n3")}
	require.NoError(t, h.a.SyncTunnels(c, want, false))
	got := tunnels(h.fake)
	require.Len(t, got, 3)
	for _, w := range want {
		tag := adapter.TunnelTag("vpp-net", w.Remote)
		assert.True(t, strings.HasPrefix(tag, adapter.TunnelTagPrefix))
		tun, ok := got[tag]
		require.True(t, ok, "tunnel to %s tagged %s", w.Remote, tag)
		assert.Equal(t, vtep, tun.Tunnel.Src)
		assert.Equal(t, w.Remote, tun.Tunnel.Dst)
		assert.Equal(t, uint32(5001), tun.Tunnel.VNI)
		assert.Equal(t, uint16(4789), tun.Tunnel.DstPort)
		assert.Equal(t, uint16(4789), tun.Tunnel.SrcPort)
		assert.Equal(t, uint32(1), tun.Tunnel.DecapNextIndex, "decap to l2-input")
		assert.False(t, tun.L3)
		assert.True(t, tun.Up)
		assert.Equal(t, uint32(5), tun.BD, "in the bridge domain of the network's attachments")
	}
	h.fake.Calls()
	require.NoError(t, h.a.SyncTunnels(c, want, true))
	calls := h.fake.Calls()
	assert.Zero(t, countCalls(calls, "vxlan_add_del_tunnel_v3"), "a second sync changes nothing: %v", calls)
	assert.Zero(t, countCalls(calls, "sw_interface_set_l2_bridge"), "%v", calls)
	assert.Equal(t, 1, countCalls(calls, "ip_address_dump"), "the VTEP is looked up on the uplink found before: %v", calls)
	assertSHG(t, h.fake, 5, 2)
	// A tunnel put back in the bridge domain without its split-horizon
	// group (by hand) is put in it again.
	require.NoError(t, h.client.JoinBridge(c, got[adapter.TunnelTag("vpp-net", peer1)].Tunnel.SwIfIndex, 5, 0))
	assertSHG(t, h.fake, 5, 1)
	require.NoError(t, h.a.SyncTunnels(c, want, true))
	assertSHG(t, h.fake, 5, 2)

	// Without prune, a tunnel no peer wants stays; with prune it goes, the
	// operator's untagged one stays.
	require.NoError(t, h.a.SyncTunnels(c, want[:1], false))
	assert.Len(t, tunnels(h.fake), 3)
	require.NoError(t, h.a.SyncTunnels(c, want[:1], true))
	got = tunnels(h.fake)
	assert.Len(t, got, 2)
	assert.Contains(t, got, adapter.TunnelTag("vpp-net", peer1))
	assert.Contains(t, got, "", "the untagged tunnel")
	assertSHG(t, h.fake, 5, 1)

	// A tunnel with another VNI under the same tag is replaced.
	moved := want[0]
	moved.VNI = 6001
	require.NoError(t, h.a.SyncTunnels(c, []overlay.Tunnel{moved}, true))
	got = tunnels(h.fake)
	assert.Equal(t, uint32(6001), got[adapter.TunnelTag("vpp-net", peer1)].Tunnel.VNI)

	// The last detach removes the network's tunnels, then the bridge
	// domain; the overlay hears of it.
	before := changed.n.Load()
	_, err = h.a.Detach(c, &contracts.DetachRequest{Key: key, Network: "vpp-net"})
	require.NoError(t, err)
	assert.Equal(t, before+1, changed.n.Load())
	got = tunnels(h.fake)
	assert.Len(t, got, 1)
	assert.Contains(t, got, "")
	_, bds, _ := h.fake.State()
	assert.Empty(t, bds, "the bridge domain went with its last attachment and tunnels")
	assert.Equal(t, foreign, h.fake.Snapshot()["vxlan_tunnel0"].Tunnel.SwIfIndex)
}

func TestOverlayTunnelOnlyForLocalNetworks(t *testing.T) {
	h, _ := overlayHarness(t)
	c := ctx(t)
	// No attachment of vpp-net here (its detach raced the sync): no tunnel.
	require.NoError(t, h.a.SyncTunnels(c, []overlay.Tunnel{bridgeTunnel(peer1, "n2")}, true))
	assert.Empty(t, tunnels(h.fake))
}

func TestOverlayVLANTunnelIsAccessPort(t *testing.T) {
	h, _ := overlayHarness(t)
	c := ctx(t)
	req := withOverlay(vhostBridge(8, 30), 5001)
	_, err := h.a.Attach(c, req)
	require.NoError(t, err)
	require.NoError(t, h.a.SyncTunnels(c, []overlay.Tunnel{bridgeTunnel(peer1, "n2")}, true))
	tun := tunnels(h.fake)[adapter.TunnelTag("vpp-net", peer1)]
	assert.Equal(t, uint32(8), tun.BD)
	assert.Equal(t, uint32(30), tun.VtrTag1, "the tunnel carries VLAN 30's frames untagged")
	assert.True(t, tun.EFP)
}

func TestOverlayVTEPNotOnVPP(t *testing.T) {
	h := newHarness(t, withVTEP) // no uplink with the VTEP
	c := ctx(t)
	_, err := h.a.Attach(c, withOverlay(memifBridge(5), 5001))
	require.NoError(t, err)
	err = h.a.SyncTunnels(c, []overlay.Tunnel{bridgeTunnel(peer1, "n2")}, true)
	require.Error(t, err)
	assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err))
	assert.Contains(t, err.Error(), "--vtep "+vtep.String())
	assert.Empty(t, tunnels(h.fake))
}

// l3OverlayPod is an IPv4-only routed attachment of network l3-net.
func l3OverlayPod() *contracts.AttachRequest {
	r := l3Request()
	r.Interface.IPs = r.Interface.IPs[:1]
	return withOverlay(r, 7001)
}

func TestOverlayRoutedSync(t *testing.T) {
	h, _ := overlayHarness(t, tablePerNetwork)
	c := ctx(t)
	_, err := h.a.Attach(c, l3OverlayPod())
	require.NoError(t, err)
	assert.Equal(t, []contracts.OverlayMember{{Network: "l3-net", NetType: contracts.NetTypeInterface, VNI: 7001, Port: 4789,
		Routes: []string{"10.1.1.5/32"}}}, members(t, h.a))
	table := adapter.TableID("l3-net")
	t1 := overlay.Tunnel{Network: "l3-net", NetType: contracts.NetTypeInterface, VNI: 7001, Port: 4789, Local: vtep, Remote: peer1, Peer: "n2",
		Routes: []netip.Prefix{netip.MustParsePrefix("10.1.1.6/32"), netip.MustParsePrefix("10.1.1.7/32")}}
	require.NoError(t, h.a.SyncTunnels(c, []overlay.Tunnel{t1}, true))
	tun := tunnels(h.fake)[adapter.TunnelTag("l3-net", peer1)]
	require.NotNil(t, tun.Tunnel)
	assert.True(t, tun.L3)
	assert.Equal(t, uint32(2), tun.Tunnel.DecapNextIndex, "decap to ip4-input")
	assert.Equal(t, table, tun.Table)
	assert.True(t, tun.ProxyARP)
	loop := h.fake.Snapshot()["loop0"]
	assert.Equal(t, adapter.LoopbackTag("l3-net", table), loop.Tag)
	assert.NotZero(t, tun.UnnumberedTo)
	assert.Equal(t, loop.Tag, tagOf(h.fake, tun.UnnumberedTo))
	_, _, routes := h.fake.State()
	sw := tun.Tunnel.SwIfIndex
	assert.Contains(t, routes, routeKey(table, "10.1.1.6/32", sw))
	assert.Contains(t, routes, routeKey(table, "10.1.1.7/32", sw))

	// The peer's pods change: exactly its routes go into the tunnel.
	t1.Routes = []netip.Prefix{netip.MustParsePrefix("10.1.1.7/32"), netip.MustParsePrefix("10.1.1.8/32")}
	require.NoError(t, h.a.SyncTunnels(c, []overlay.Tunnel{t1}, true))
	_, _, routes = h.fake.State()
	assert.NotContains(t, routes, routeKey(table, "10.1.1.6/32", sw))
	assert.Contains(t, routes, routeKey(table, "10.1.1.8/32", sw))

	// A peer announcing this node's pod (a duplicate address, or a
	// hostile peer) gets no route for it: it would be a second path of
	// the local pod's route.
	t1.Routes = append(t1.Routes, netip.MustParsePrefix("10.1.1.5/32"))
	require.NoError(t, h.a.SyncTunnels(c, []overlay.Tunnel{t1}, true))
	_, _, routes = h.fake.State()
	assert.NotContains(t, routes, routeKey(table, "10.1.1.5/32", sw))
	assert.Contains(t, routes, routeKey(table, "10.1.1.8/32", sw))

	_, err = h.a.Detach(c, &contracts.DetachRequest{Key: key, Network: "l3-net"})
	require.NoError(t, err)
	assert.Empty(t, tunnels(h.fake))
	_, _, routes = h.fake.State()
	assert.Empty(t, routes, "no route left through the deleted tunnel")
	_, ok := h.fake.Snapshot()["loop0"]
	assert.False(t, ok, "the loopback went after the tunnel")
}

func TestOverlayChangedAfterReplay(t *testing.T) {
	dir := t.TempDir()
	h := newHarnessIn(t, dir, withVTEP)
	n := &counter{}
	h.a.SetOverlay(n)
	_, err := h.a.Attach(ctx(t), withOverlay(memifBridge(5), 5001))
	require.NoError(t, err)
	h.fake.Wipe()
	_, err = h.a.Up(ctx(t), sessionOf(t, h.fake))
	require.NoError(t, err)
	assert.Equal(t, int64(2), n.n.Load(), "attach, then the replay")
}

func vppTunnel(remote netip.Addr, vni uint32) vpp.TunnelConfig {
	return vpp.TunnelConfig{Src: vtep, Dst: remote, Port: 4789, VNI: vni}
}

func sessionOf(t *testing.T, f *vpptest.FakeVPP) vpp.Session {
	conn, c := f.Dial(t)
	return vpp.Session{Conn: conn, Client: c}
}

func tagOf(f *vpptest.FakeVPP, sw uint32) string {
	i, _ := f.InterfaceAt(sw)
	return i.Tag
}

func routeKey(table uint32, prefix string, sw uint32) string {
	return fmt.Sprintf("table %d %s via %d", table, prefix, sw)
}

// assertSHG checks that bridge domain bd has n members in the tunnels'
// split-horizon group.
func assertSHG(t *testing.T, f *vpptest.FakeVPP, bd uint32, n int) {
	t.Helper()
	got := 0
	for _, shg := range f.BridgePorts(bd) {
		if shg == adapter.TunnelSHG {
			got++
		}
	}
	assert.Equal(t, n, got, "members of bridge domain %d in split-horizon group %d", bd, adapter.TunnelSHG)
}

// TestOverlayReplayRemovesStaleTunnels: the last attachment of a network
// is detached while VPP is away (only its record goes); the replay on
// reconnect removes the network's tunnels with its interface, so its
// bridge domain or loopback goes too.
func TestOverlayReplayRemovesStaleTunnels(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []option
		req     *contracts.AttachRequest
		network string
		tunnel  overlay.Tunnel
	}{
		{"bridge", nil, withOverlay(memifBridge(5), 5001), "vpp-net", bridgeTunnel(peer1, "n2")},
		{"routed", []option{tablePerNetwork}, l3OverlayPod(), "l3-net", overlay.Tunnel{Network: "l3-net", NetType: contracts.NetTypeInterface,
			VNI: 7001, Port: 4789, Local: vtep, Remote: peer1, Peer: "n2", Routes: []netip.Prefix{netip.MustParsePrefix("10.1.1.6/32")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := overlayHarness(t, tc.opts...)
			c := ctx(t)
			_, err := h.a.Attach(c, tc.req)
			require.NoError(t, err)
			require.NoError(t, h.a.SyncTunnels(c, []overlay.Tunnel{tc.tunnel}, true))
			require.Len(t, tunnels(h.fake), 1)
			// An operator's tunnel, untagged: never touched.
			_, err = h.client.CreateTunnel(c, vppTunnel(peer2, 99))
			require.NoError(t, err)

			h.a.Down(assert.AnError)
			_, err = h.a.Detach(c, &contracts.DetachRequest{Key: tc.req.Key, Network: tc.network})
			require.NoError(t, err)
			_, err = h.a.Up(c, sessionOf(t, h.fake))
			require.NoError(t, err)

			got := tunnels(h.fake)
			assert.Len(t, got, 1)
			assert.Contains(t, got, "", "only the operator's tunnel is left")
			_, bds, routes := h.fake.State()
			assert.Empty(t, bds, "no bridge domain held by a tunnel")
			assert.Empty(t, routes, "no route through a deleted tunnel")
			for name := range h.fake.Snapshot() {
				assert.False(t, strings.HasPrefix(name, "loop"), "the network's loopback went: %s", name)
			}
		})
	}
}

func members(t *testing.T, a *adapter.Adapter) []contracts.OverlayMember {
	t.Helper()
	ms, err := a.Members()
	require.NoError(t, err)
	return ms
}
