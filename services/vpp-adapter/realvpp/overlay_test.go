package realvpp_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/adapterkit/overlay"
	"usrsp.dev/libs/confine"
	"usrsp.dev/libs/vpp"
	"usrsp.dev/libs/vpp/vppproc"
	"usrsp.dev/services/vpp-adapter/adapter"
)

// overlayNode is one "node" of the overlay test: a VPP in its own network
// namespace with an af_packet uplink on its end of the underlay veth, and
// an adapter (no daemon: the test plays the overlay Manager) on it.
type overlayNode struct {
	name   string
	ns     string // network namespace
	uplink string // its veth end
	vtep   netip.Addr
	vpp    *vppInstance
	a      *adapter.Adapter
	pods   string // the adapter's shared pod dir
}

// ip runs ip(8) and fails t on error.
func ip(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
}

// underlay makes two network namespaces joined by a veth pair, both ends
// up; t.Cleanup deletes the namespaces (and so the veths).
func underlay(t *testing.T, nsA, nsB, ifA, ifB string) {
	t.Helper()
	for _, ns := range []string{nsA, nsB} {
		_ = exec.Command("ip", "netns", "delete", ns).Run() // a leftover of a killed run
		ip(t, "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", ns).Run() })
	}
	ip(t, "link", "add", ifA, "netns", nsA, "type", "veth", "peer", "name", ifB, "netns", nsB)
	ip(t, "-n", nsA, "link", "set", ifA, "up")
	ip(t, "-n", nsB, "link", "set", ifB, "up")
}

// startNode starts the node's VPP inside its namespace, gives it the
// uplink (the operator's part) and an adapter with the VTEP.
func startNode(t *testing.T, n *overlayNode, core int) {
	t.Helper()
	vppEnv(t)
	dir, err := os.MkdirTemp("", "usrsp-"+n.name+"-")
	require.NoError(t, err)
	ns := n.ns
	proc, err := vppproc.New(vppproc.Config{Name: n.name, Dir: dir, MainCore: core,
		Command: func(ctx context.Context, name string, args ...string) *exec.Cmd {
			return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
		}})
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.NoError(t, proc.Stop())
		if t.Failed() {
			t.Logf("%s: VPP output:\n%s", n.name, proc.LogTail(100))
		}
		_ = os.RemoveAll(dir)
	})
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, proc.Start(c))
	n.vpp = &vppInstance{t: t, name: n.name, dir: dir, proc: proc, APISock: proc.APISock}
	n.vpp.connect()
	n.configureUplink(t)

	n.pods, err = os.MkdirTemp("", "uvx-pods-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(n.pods) })
	roots, err := confine.Layout{SharedDir: n.pods, LinkDir: filepath.Join(n.pods, ".l"), KubeletPodsDir: filepath.Join(n.pods, ".k")}.Roots()
	require.NoError(t, err)
	st, err := adapter.OpenStore(filepath.Join(dir, "state"))
	require.NoError(t, err)
	n.a = adapter.New(adapter.Config{Store: st, Roots: roots, VTEP: n.vtep, TablePerNetwork: true,
		Log: zerolog.New(zerolog.NewTestWriter(t)).With().Str("node", n.name).Logger()})
	n.up(t)
}

// configureUplink is what the operator sets up on every VPP start: the
// uplink with the VTEP address, and a fixed MAC like a NIC's.
func (n *overlayNode) configureUplink(t *testing.T) {
	t.Helper()
	c := ctx(t)
	v4 := n.vtep.As4()
	mac, err := vpp.ParseMAC(fmt.Sprintf("02:fe:%02x:%02x:%02x:%02x", v4[0], v4[1], v4[2], v4[3]))
	require.NoError(t, err)
	sw, err := n.vpp.Client.CreateAfPacket(c, vpp.AfPacketConfig{HostIfName: n.uplink, MAC: mac})
	require.NoError(t, err)
	require.NoError(t, n.vpp.Client.AddAddress(c, sw, netip.PrefixFrom(n.vtep, 24)))
	require.NoError(t, n.vpp.Client.AdminUp(c, sw))
}

// up hands the adapter the node VPP's session (a connect or reconnect).
func (n *overlayNode) up(t *testing.T) adapter.ReplaySummary {
	t.Helper()
	sum, err := n.a.Up(ctx(t), vpp.Session{Conn: n.vpp.conn, Client: n.vpp.Client})
	require.NoError(t, err)
	return sum
}

// attach attaches a memif master of pod id on network with the overlay
// vni; addr makes it routed (netType interface), else it joins bridge bd.
func (n *overlayNode) attach(t *testing.T, id, network string, vni, bd uint32, addr string) *contracts.AttachRequest {
	t.Helper()
	dir := filepath.Join(n.pods, id)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	r := &contracts.AttachRequest{Key: contracts.AttachmentKey{ContainerID: id, IfName: "net1"}, Network: network,
		Interface: contracts.HostInterface{IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeBridge,
			SocketPath: filepath.Join(dir, "memif-net1.sock"),
			Memif:      &contracts.MemifSpec{Role: contracts.MemifRoleMaster, Mode: contracts.MemifModeEthernet},
			Overlay:    &contracts.Overlay{Type: contracts.OverlayVXLAN, VNI: vni}}}
	if addr != "" {
		r.Interface.NetType = contracts.NetTypeInterface
		r.Interface.IPs = []contracts.IPConfig{{Address: addr, Gateway: "10.231.20.1"}}
	} else {
		r.Interface.Bridge = &contracts.BridgeSpec{ID: bd}
	}
	_, err := n.a.Attach(ctx(t), r)
	require.NoError(t, err, "%s: attach %s", n.name, r.Key)
	return r
}

// tunnels are the node VPP's tunnels tagged as the adapter's.
func (n *overlayNode) tunnels(t *testing.T) []vpp.Interface {
	t.Helper()
	ifs, err := n.vpp.Client.InterfacesTagged(ctx(t), adapter.TunnelTagPrefix)
	require.NoError(t, err)
	return ifs
}

// TestRealVPPOverlay: two nodes, each a VPP in its own network namespace
// joined by a veth underlay, carry a bridge and a routed overlay network
// between their pods over VXLAN; a node VPP's kill -9 and the last
// detaches are survived and cleaned up.
func TestRealVPPOverlay(t *testing.T) {
	vppEnv(t)
	id := os.Getpid() % 100000
	a := &overlayNode{name: "node-a", ns: fmt.Sprintf("uvx-%d-a", id), uplink: fmt.Sprintf("uvx-%da", id), vtep: netip.MustParseAddr("10.231.0.1")}
	b := &overlayNode{name: "node-b", ns: fmt.Sprintf("uvx-%d-b", id), uplink: fmt.Sprintf("uvx-%db", id), vtep: netip.MustParseAddr("10.231.0.2")}
	underlay(t, a.ns, b.ns, a.uplink, b.uplink)
	startNode(t, a, 0)
	startNode(t, b, 1)
	require.Positive(t, a.vpp.ping(b.vtep.String()), "the underlay works")

	// The bridge network uses bridge domain 10 on node a, 11 on node b:
	// only the VNI has to agree. The routed one is 10.231.20.0/24.
	const bridgeVNI, routedVNI = 5001, 7001
	bridgeA := a.attach(t, "br-a", "ovl-bridge", bridgeVNI, 10, "")
	bridgeB := b.attach(t, "br-b", "ovl-bridge", bridgeVNI, 11, "")
	routedA := a.attach(t, "l3-a", "ovl-l3", routedVNI, 0, "10.231.20.2/24")
	routedB := b.attach(t, "l3-b", "ovl-l3", routedVNI, 0, "10.231.20.3/24")

	// What each node's Manager would compute from the other's announcement.
	want := func(local, remote *overlayNode, remoteRoute string) []overlay.Tunnel {
		return []overlay.Tunnel{
			{Network: "ovl-bridge", NetType: contracts.NetTypeBridge, VNI: bridgeVNI, Port: contracts.DefaultVXLANPort,
				Local: local.vtep, Remote: remote.vtep, Peer: remote.name},
			{Network: "ovl-l3", NetType: contracts.NetTypeInterface, VNI: routedVNI, Port: contracts.DefaultVXLANPort,
				Local: local.vtep, Remote: remote.vtep, Peer: remote.name, Routes: []netip.Prefix{netip.MustParsePrefix(remoteRoute)}},
		}
	}
	wantA, wantB := want(a, b, "10.231.20.3/32"), want(b, a, "10.231.20.2/32")
	require.NoError(t, a.a.SyncTunnels(ctx(t), wantA, true))
	require.NoError(t, b.a.SyncTunnels(ctx(t), wantB, true))
	require.Len(t, a.tunnels(t), 2)
	require.Len(t, b.tunnels(t), 2)
	a.vpp.cli("show vxlan tunnel")

	t.Run("bridge: the tunnel is in the bridge domain in split-horizon group 1", func(t *testing.T) {
		bridgeTunnel := tunnelTagged(t, a, adapter.TunnelTag("ovl-bridge", b.vtep))
		bds, err := a.vpp.Client.BridgeDomains(ctx(t), 10)
		require.NoError(t, err)
		require.Len(t, bds, 1)
		assert.Contains(t, bds[0].Ports, vpp.BridgePort{SwIfIndex: bridgeTunnel.SwIfIndex, SHG: adapter.TunnelSHG})
		a.vpp.cli("show bridge-domain 10 detail")
	})

	t.Run("routed: the tunnel is unnumbered in the network's table and carries the peer's pod route", func(t *testing.T) {
		l3Tunnel := tunnelTagged(t, a, adapter.TunnelTag("ovl-l3", b.vtep))
		assert.Contains(t, a.vpp.cli("show interface address "+l3Tunnel.Name), "unnumbered")
		fib := a.vpp.cli(fmt.Sprintf("show ip fib table %d 10.231.20.3/32", adapter.TableID("ovl-l3")))
		assert.Contains(t, fib, l3Tunnel.Name)
	})

	podBrA, ifBrA := podVPP(t, "pod-br-a", 1, bridgeA.Interface.SocketPath, "10.231.10.1/24")
	podBrB, ifBrB := podVPP(t, "pod-br-b", 0, bridgeB.Interface.SocketPath, "10.231.10.2/24")
	podL3A, ifL3A := podVPP(t, "pod-l3-a", 1, routedA.Interface.SocketPath, "10.231.20.2/24")
	podL3B, ifL3B := podVPP(t, "pod-l3-b", 0, routedB.Interface.SocketPath, "10.231.20.3/24")
	for p, name := range map[*vppInstance]string{podBrA: ifBrA, podBrB: ifBrB, podL3A: ifL3A, podL3B: ifL3B} {
		p.waitLinkUp(name, 60*time.Second)
	}

	t.Run("pods on the two nodes ping each other across the VXLAN underlay", func(t *testing.T) {
		assert.Positive(t, podBrA.ping("10.231.10.2"), "bridge: pod a -> pod b (L2 over VXLAN)")
		assert.Positive(t, podBrB.ping("10.231.10.1"), "bridge: pod b -> pod a")
		assert.Positive(t, podL3A.ping("10.231.20.3"), "routed: pod a -> pod b (proxy ARP, route into the tunnel)")
		assert.Positive(t, podL3B.ping("10.231.20.2"), "routed: pod b -> pod a")
		if t.Failed() {
			a.vpp.cli("show errors")
			b.vpp.cli("show errors")
		}
	})

	t.Run("kill -9 of node b's VPP: replay and a sync bring the tunnels back", func(t *testing.T) {
		b.vpp.kill9()
		b.vpp.start()
		b.configureUplink(t)
		sum := b.up(t)
		assert.Equal(t, 2, sum.Recreated)
		assert.Empty(t, b.tunnels(t), "VPP lost its tunnels; the replay leaves them to the overlay")
		require.NoError(t, b.a.SyncTunnels(ctx(t), wantB, false))
		assert.Len(t, b.tunnels(t), 2)
		podBrB.waitLinkUp(ifBrB, 60*time.Second)
		podL3B.waitLinkUp(ifL3B, 60*time.Second)
		// Node b's VPP resolves its neighbours again (the first echo of a
		// round may be lost to that): a few rounds, bounded.
		diag := func() {
			podL3B.cli("show ip neighbors")
			a.vpp.cli("show ip neighbors")
			b.vpp.cli("show ip neighbors")
			b.vpp.cli("show errors")
			b.vpp.cli(fmt.Sprintf("show ip fib table %d", adapter.TableID("ovl-l3")))
		}
		assert.Positive(t, pingRounds(podBrA, "10.231.10.2", 3, diag), "bridge traffic recovers")
		assert.Positive(t, pingRounds(podL3A, "10.231.20.3", 3, diag), "routed traffic recovers")
	})

	t.Run("the last detach of each network removes its tunnels, bridge domain and loopback", func(t *testing.T) {
		for _, x := range []struct {
			n    *overlayNode
			reqs []*contracts.AttachRequest
		}{{a, []*contracts.AttachRequest{bridgeA, routedA}}, {b, []*contracts.AttachRequest{bridgeB, routedB}}} {
			for _, r := range x.reqs {
				_, err := x.n.a.Detach(ctx(t), &contracts.DetachRequest{Key: r.Key, Network: r.Network})
				require.NoError(t, err)
			}
			assert.Empty(t, x.n.tunnels(t), "%s: no tunnel left", x.n.name)
			tuns, err := x.n.vpp.Client.Tunnels(ctx(t))
			require.NoError(t, err)
			assert.Empty(t, tuns, "%s: VPP has no VXLAN tunnel", x.n.name)
			_, _, bds := ownedState(t, x.n.vpp)
			assert.Empty(t, bds, "%s: bridge domains", x.n.name)
			assert.Empty(t, l3Loopbacks(t, x.n.vpp), "%s: loopbacks", x.n.name)
			fib := x.n.vpp.cli(fmt.Sprintf("show ip fib table %d", adapter.TableID("ovl-l3")))
			assert.NotContains(t, fib, "vxlan_tunnel", "%s: no route through a deleted tunnel", x.n.name)
		}
	})
}

func tunnelTagged(t *testing.T, n *overlayNode, tag string) vpp.Interface {
	t.Helper()
	for _, i := range n.tunnels(t) {
		if i.Tag == tag {
			return i
		}
	}
	t.Fatalf("%s: no tunnel tagged %s", n.name, tag)
	return vpp.Interface{}
}

// pingRounds pings dst from p up to rounds times (5 echoes each) until a
// reply comes back, calling diag after each round without one; it returns
// the replies of the last round.
func pingRounds(p *vppInstance, dst string, rounds int, diag func()) int {
	p.t.Helper()
	for i := 1; ; i++ {
		n := p.ping(dst)
		if n > 0 || i == rounds {
			return n
		}
		p.t.Logf("%s: no reply from %s in round %d of %d", p.name, dst, i, rounds)
		diag()
	}
}
