//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/ovsdpdk"
	"usrsp.dev/tools/harness"
)

// Issue 13: networks that span nodes. "Nodes" are vswitches in network
// namespaces of their own joined by a veth underlay (harness.Cluster);
// adapters with distinct node names find each other over NATS and tunnel
// VXLAN between the vswitches.

const (
	// overlayInterval is every adapter's --overlay-interval: peers forget
	// a silent node after 3 of them.
	overlayInterval = 500 * time.Millisecond
	// overlayMTU is the pod MTU cni-entry gives an overlay network: the
	// underlay's 1500 minus VXLAN's 50.
	overlayMTU = 1500 - contracts.VXLANOverhead
	// awaitBound bounds every wait for the overlay to converge.
	awaitBound = 30 * time.Second
)

// overlayCluster brings up n nodes of engine on natsServers NATS servers
// for t and closes them in t.Cleanup, logging every node's adapter and
// vswitch log tails when t failed.
func overlayCluster(t *testing.T, engine contracts.Engine, n, natsServers int) *harness.Cluster {
	t.Helper()
	switch engine {
	case contracts.EngineVPP:
		skip := t.Skip
		if os.Getenv(harness.EnvVPPRequired) == "1" {
			skip = t.Fatal
		}
		if os.Geteuid() != 0 {
			skip("overlay e2e needs root (network namespaces, VPP): run `sudo make e2e`")
		}
		if r := harness.VPPMissing(); r != "" {
			skip("VPP overlay e2e skipped: " + r)
		}
	default:
		if r := skipReason(); r != "" {
			t.Skip(r)
		}
	}
	require.NotEmpty(t, binDir, "binaries not built")
	start := time.Now()
	c, err := harness.NewCluster(context.Background(), engine, n, harness.ClusterConfig{
		BinDir: binDir, Logf: t.Logf, NATSServers: natsServers,
		AdapterArgs: []string{"--overlay-interval", overlayInterval.String()},
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range c.Nodes {
				t.Logf("%s %s log (tail):\n%s", h.Node(), h.AdapterName(), h.AdapterLogTail(40))
				if h.VPP != nil {
					t.Logf("%s VPP (tail):\n%s", h.Node(), h.VPP.LogTail(10))
				} else {
					t.Logf("%s ovs-vswitchd log (tail):\n%s", h.Node(), h.OVS.VswitchdLogTail(20))
				}
				b, _ := os.ReadFile(filepath.Join(h.LogDir(), "userspace.log"))
				t.Logf("%s userspace log (tail):\n%s", h.Node(), lastLines(string(b), 10))
			}
		}
		assert.NoError(t, c.Close())
	})
	t.Logf("phase cluster up (%d %s nodes, %d NATS servers): %s", n, engine, natsServers, time.Since(start).Round(time.Millisecond))
	phase(t, "underlay pings between every pair of VTEPs", func() {
		ctx := ctxFor(t, awaitBound)
		for i := range n {
			for j := range n {
				if i == j {
					continue
				}
				got, out, err := c.UnderlayPing(ctx, i, j, 3)
				require.NoError(t, err)
				// The first may go to ARP (VPP drops the packet that
				// triggers a resolution).
				require.GreaterOrEqual(t, got, 2, "underlay %s → %s:\n%s", harness.VTEP(i), harness.VTEP(j), out)
				require.NotContains(t, out, "DUP!", "underlay %s → %s", harness.VTEP(i), harness.VTEP(j))
			}
		}
	})
	return c
}

// overlayNet is one network across the cluster: each node's own config of
// it (same name, host block and overlay; its own host-local range of the
// subnet and, by the harness, its own IPAM dataDir).
type overlayNet struct {
	name  string
	nodes []*harness.Network
}

// newOverlayNet makes plugin's network for every node; node i's addresses
// are ranges[i] ("first-last") of subnet.
func newOverlayNet(t *testing.T, c *harness.Cluster, plugin map[string]any, subnet string, ranges []string) overlayNet {
	t.Helper()
	net := overlayNet{name: plugin["name"].(string)}
	for i, h := range c.Nodes {
		first, last, _ := strings.Cut(ranges[i], "-")
		p := map[string]any{}
		for k, v := range plugin {
			p[k] = v
		}
		p["ipam"] = map[string]any{"type": "host-local", "ranges": []any{[]any{
			map[string]any{"subnet": subnet, "rangeStart": first, "rangeEnd": last}}}}
		n, err := h.NetworkFrom(p)
		require.NoError(t, err)
		net.nodes = append(net.nodes, n)
	}
	return net
}

// nodePod is a pod on one node of the cluster.
type nodePod struct {
	*harness.Pod
	node int
	h    *harness.Harness
	net  *harness.Network
	IP   string
	VPP  *harness.VPP // pods with their own VPP
}

// addOverlayPod ADDs net to a new pod on node i and checks it, and its MTU.
func addOverlayPod(t *testing.T, ctx context.Context, c *harness.Cluster, net overlayNet, i int, name string) *nodePod {
	t.Helper()
	h := c.Nodes[i]
	p, err := h.NewPod(ctx, name)
	require.NoError(t, err)
	res, err := p.Add(ctx, net.nodes[i], ifName)
	require.NoError(t, err)
	require.Len(t, res.IPs, 1)
	require.NoError(t, p.Check(ctx, net.nodes[i], ifName), "CHECK right after ADD")
	data, err := p.PodData(ifName)
	require.NoError(t, err)
	assert.Equal(t, overlayMTU, data.Interface.MTU, "pod data MTU of %s on %s", name, h.Node())
	ip, err := p.IPv4(ifName)
	require.NoError(t, err)
	return &nodePod{Pod: p, node: i, h: h, net: net.nodes[i], IP: ip}
}

// serveProbe starts `pod-consumer probe serve` in p and waits until it
// answers.
func serveProbe(t *testing.T, ctx context.Context, p *nodePod) *harness.Proc {
	t.Helper()
	serve, err := p.StartPodConsumer(ctx, "probe", "serve")
	require.NoError(t, err)
	require.NoError(t, serve.WaitOutput(ctx, "answering"), "probe serve in %s:\n%s", p.Name, serve.Output())
	return serve
}

var probeSummary = regexp.MustCompile(`answered \d+ ARP requests and (\d+) echo requests`)

// stopProbe stops a probe serve and returns how many echo requests it
// answered.
func stopProbe(t *testing.T, serve *harness.Proc) int {
	t.Helper()
	require.NoError(t, serve.Stop(syscall.SIGTERM))
	m := probeSummary.FindStringSubmatch(serve.Output())
	require.NotNil(t, m, "probe serve's summary:\n%s", serve.Output())
	n, _ := strconv.Atoi(m[1])
	return n
}

var rttLine = regexp.MustCompile(`rtt min/avg/max = ([\d.]+)/([\d.]+)/([\d.]+) ms`)

// probePing pings to from `pod-consumer probe ping` in from, count
// requests 200 ms apart, and returns its output; the error is the probe's
// (exit 0 only when replies came back).
func probePing(ctx context.Context, from, to *nodePod, count int) (string, error) {
	return from.PodConsumer(ctx, "probe", "ping", to.IP, "-c", strconv.Itoa(count), "-i", "200ms", "-W", "2s")
}

// assertProbePing pings to from from: every request answered; logs the
// RTTs.
func assertProbePing(t *testing.T, ctx context.Context, from, to *nodePod, count int) {
	t.Helper()
	out, err := probePing(ctx, from, to, count)
	require.NoError(t, err, "probe ping %s (%s) → %s (%s)\n%s", from.Name, from.h.Node(), to.Name, to.h.Node(), out)
	assert.Contains(t, out, fmt.Sprintf("%d packets transmitted, %d received", count, count), "probe ping %s → %s", from.Name, to.Name)
	rtt := "?"
	if m := rttLine.FindStringSubmatch(out); m != nil {
		rtt = m[1] + "/" + m[2] + "/" + m[3] + " ms"
	}
	t.Logf("cross-node probe ping %s (%s) → %s (%s, %s): rtt min/avg/max %s", from.Name, from.h.Node(), to.Name, to.h.Node(), to.IP, rtt)
}

// pingAcrossEveryPair serves a probe in each pod in turn and pings it
// from every other pod; each probe must have answered exactly the echo
// requests sent to it (no duplicates through the mesh).
func pingAcrossEveryPair(t *testing.T, ctx context.Context, ps []*nodePod) {
	t.Helper()
	const count = 3
	for _, to := range ps {
		serve := serveProbe(t, ctx, to)
		for _, from := range ps {
			if from != to {
				assertProbePing(t, ctx, from, to, count)
			}
		}
		assert.Equal(t, count*(len(ps)-1), stopProbe(t, serve), "echo requests %s answered", to.Name)
	}
}

// awaitProbePing pings to from from once at a time until a reply comes
// back (bounded by awaitBound) and returns how long that took since start.
func awaitProbePing(t *testing.T, ctx context.Context, from, to *nodePod, start time.Time) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, awaitBound)
	defer cancel()
	for {
		out, err := from.PodConsumer(ctx, "probe", "ping", to.IP, "-c", "1", "-W", "300ms", "--wait", "5s")
		if err == nil {
			return time.Since(start)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no reply %s → %s within %s: %v\n%s", from.Name, to.Name, awaitBound, err, out)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// awaitTunnels polls (the vswitch has no event for it) until the node's
// VXLAN tunnels satisfy ok, bounded by awaitBound.
func awaitTunnels(t *testing.T, ctx context.Context, h *harness.Harness, what string, ok func(tunnels []string) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, awaitBound)
	defer cancel()
	for {
		tuns, err := tunnels(ctx, h)
		require.NoError(t, err)
		if ok(tuns) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %s not reached within %s; tunnels: %q", h.Node(), what, awaitBound, tuns)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tunnels lists the node's VXLAN tunnels: VPP's `show vxlan tunnel` lines,
// OVS's vxlan interfaces with their options.
func tunnels(ctx context.Context, h *harness.Harness) ([]string, error) {
	if h.Engine() == contracts.EngineVPP {
		return h.VPP.VXLANTunnels(ctx)
	}
	return h.VXLANPorts(ctx)
}

// hasTunnelTo says whether one of the tunnels goes to vtep: VPP's "dst
// <vtep>", OVS's "remote_ip=<vtep>".
func hasTunnelTo(tuns []string, vtep string) bool {
	for _, l := range tuns {
		if tunnelHas(l, "dst", "remote_ip", vtep) {
			return true
		}
	}
	return false
}

// tunnelsOfVNI are the tunnels of VNI vni: VPP's "vni <vni>", OVS's
// "key=<vni>".
func tunnelsOfVNI(tuns []string, vni int) []string {
	var of []string
	for _, l := range tuns {
		if tunnelHas(l, "vni", "key", strconv.Itoa(vni)) {
			of = append(of, l)
		}
	}
	return of
}

// tunnelHas says whether a tunnel line has value for VPP's "<vppKey>
// <value>" or OVS's "<ovsKey>=<value>" (whole words, so .1 is not .10;
// CSV may quote the options).
func tunnelHas(line, vppKey, ovsKey, value string) bool {
	f := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == ',' || r == '"' })
	for i, w := range f {
		if w == ovsKey+"="+value || w == vppKey && i+1 < len(f) && f[i+1] == value {
			return true
		}
	}
	return false
}

// leaveNode DELs every pod in gone (all of one network's pods on node i)
// and waits until the network's tunnels (VNI vni) are gone on node i and
// every other node has dropped its tunnel to node i, logging how long each
// took after the last DEL returned. Then the mesh of the others stays:
// they still have tunnels to each other, and probe pings across them
// (stay) answer.
func leaveNode(t *testing.T, ctx context.Context, c *harness.Cluster, i, vni int, gone, stay []*nodePod) {
	t.Helper()
	h := c.Nodes[i]
	for _, p := range gone {
		require.NoError(t, p.Del(ctx, p.net, ifName), "DEL %s on %s", p.Name, h.Node())
	}
	deleted := time.Now()
	awaitTunnels(t, ctx, h, fmt.Sprintf("no tunnel of vni %d", vni), func(tuns []string) bool { return len(tunnelsOfVNI(tuns, vni)) == 0 })
	t.Logf("last pod gone: %s has no tunnel of vni %d %s after its last DEL returned", h.Node(), vni, time.Since(deleted).Round(time.Millisecond))
	for j, peer := range c.Nodes {
		if j != i {
			awaitTunnels(t, ctx, peer, "no tunnel to "+harness.VTEP(i), func(tuns []string) bool { return !hasTunnelTo(tuns, harness.VTEP(i)) })
			t.Logf("last pod gone: %s dropped its tunnel to %s %s after %s's last DEL returned (interval %s)", peer.Node(), harness.VTEP(i), time.Since(deleted).Round(time.Millisecond), h.Node(), overlayInterval)
		}
	}
	assert.Empty(t, ipamAllocations(t, h, gone[0].net), "host-local allocations of %s on %s", gone[0].net.Name, h.Node())
	for j, peer := range c.Nodes {
		tuns, err := tunnels(ctx, peer)
		require.NoError(t, err)
		for k := range c.Nodes {
			if j != i && k != i && j != k {
				assert.True(t, hasTunnelTo(tuns, harness.VTEP(k)), "%s lost its tunnel to %s when %s left: %q", peer.Node(), harness.VTEP(k), h.Node(), tuns)
			}
		}
	}
	pingAcrossEveryPair(t, ctx, stay)
}

// assertMesh checks that every node has a tunnel to every other node.
func assertMesh(t *testing.T, ctx context.Context, c *harness.Cluster) {
	t.Helper()
	for i, h := range c.Nodes {
		for j := range c.Nodes {
			if i != j {
				awaitTunnels(t, ctx, h, "a tunnel to "+harness.VTEP(j), func(tuns []string) bool { return hasTunnelTo(tuns, harness.VTEP(j)) })
			}
		}
	}
}

// killAndRestartAdapter kills node i's adapter with SIGKILL, waits until
// every peer has dropped its tunnels to the node (3 silent intervals),
// restarts it and waits until probe pings from every other pod in ps
// reach target on node i again. It logs both times.
func killAndRestartAdapter(t *testing.T, ctx context.Context, c *harness.Cluster, i int, ps []*nodePod, target *nodePod) {
	t.Helper()
	h := c.Nodes[i]
	serve := serveProbe(t, ctx, target)
	killed := time.Now()
	require.NoError(t, h.KillAdapter())
	for j, peer := range c.Nodes {
		if j != i {
			awaitTunnels(t, ctx, peer, "no tunnel to "+harness.VTEP(i), func(tuns []string) bool { return !hasTunnelTo(tuns, harness.VTEP(i)) })
			t.Logf("peer removal: %s dropped its tunnel to %s %s after the kill -9 (interval %s)", peer.Node(), h.Node(), time.Since(killed).Round(time.Millisecond), overlayInterval)
		}
	}
	// The tunnels are the only path: without them no reply comes back.
	for _, from := range ps {
		if from.node != i {
			out, err := from.PodConsumer(ctx, "probe", "ping", target.IP, "-c", "1", "-W", "500ms")
			require.Error(t, err, "%s → %s answered with no tunnel between their nodes:\n%s", from.Name, target.Name, out)
		}
	}
	restart := time.Now()
	require.NoError(t, h.StartAdapter(ctx))
	up := time.Since(restart)
	for _, from := range ps {
		if from.node != i {
			d := awaitProbePing(t, ctx, from, target, restart)
			t.Logf("recovery after %s restart: %s → %s answers %s after the restart began (adapter ready after %s)",
				h.AdapterName(), from.Name, target.Name, d.Round(time.Millisecond), up.Round(time.Millisecond))
		}
	}
	stopProbe(t, serve)
}

// restartVswitch kills node i's vswitch with SIGKILL and starts it again
// (the harness puts the underlay back, the adapter replays), then waits
// until probe pings from every other pod in ps reach target on node i. It
// logs the time.
func restartVswitch(t *testing.T, ctx context.Context, c *harness.Cluster, i int, ps []*nodePod, target *nodePod) {
	t.Helper()
	h := c.Nodes[i]
	serve := serveProbe(t, ctx, target)
	awaitReconciled := subscribeReconciled(t, h, h.Engine())
	start := time.Now()
	require.NoError(t, h.RestartVswitch(ctx))
	restarted := time.Since(start)
	awaitReconciled(ctx)
	reconciled := time.Since(start)
	for _, from := range ps {
		if from.node != i {
			d := awaitProbePing(t, ctx, from, target, start)
			t.Logf("recovery after %s vswitch kill -9: %s → %s answers %s after the kill (vswitch up %s, reconciled %s)",
				h.Node(), from.Name, target.Name, d.Round(time.Millisecond), restarted.Round(time.Millisecond), reconciled.Round(time.Millisecond))
		}
	}
	stopProbe(t, serve)
}

// delAll DELs every pod and waits until no node has a VXLAN tunnel left.
func delAll(t *testing.T, ctx context.Context, c *harness.Cluster, ps ...*nodePod) {
	t.Helper()
	phase(t, "DEL every pod", func() {
		for _, p := range ps {
			require.NoError(t, p.Del(ctx, p.net, ifName), "DEL %s on %s", p.Name, p.h.Node())
		}
	})
	deleted := time.Now()
	phase(t, "no VXLAN tunnel left on any node", func() {
		for _, h := range c.Nodes {
			awaitTunnels(t, ctx, h, "no tunnels", func(tuns []string) bool { return len(tuns) == 0 })
			t.Logf("%s: no tunnel left %s after the last DEL returned", h.Node(), time.Since(deleted).Round(time.Millisecond))
		}
	})
	for _, p := range ps {
		assert.Empty(t, ipamAllocations(t, p.h, p.net), "host-local allocations of %s on %s", p.net.Name, p.h.Node())
	}
}

// vppOverlayPlugin is a VPP memif network (memif master on the host VPP,
// slave in the pod) spanning nodes as VXLAN vni: bridged in bridge domain
// bd, or routed (netType interface) when bd is 0.
func vppOverlayPlugin(name string, vni, bd int) map[string]any {
	host := map[string]any{"engine": "vpp", "iftype": "memif", "netType": "interface", "memif": map[string]any{"role": "master", "mode": "ethernet"}}
	if bd != 0 {
		host["netType"] = "bridge"
		host["bridge"] = map[string]any{"bridgeId": bd}
	}
	return map[string]any{"type": "userspace", "name": name, "host": host,
		"container": map[string]any{"engine": "vpp", "iftype": "memif", "netType": "interface", "memif": map[string]any{"role": "slave", "mode": "ethernet"}},
		"overlay":   map[string]any{"type": "vxlan", "vni": vni},
	}
}

// threeRanges splits a /24 prefix ("10.77.0.") into one range per node.
func threeRanges(prefix string) []string {
	return []string{prefix + "10-" + prefix + "59", prefix + "60-" + prefix + "109", prefix + "110-" + prefix + "159"}
}

// assertHostMTUs checks that every memif interface on the node's host VPP
// has L3 MTU overlayMTU.
func assertHostMTUs(t *testing.T, ctx context.Context, h *harness.Harness) {
	t.Helper()
	mtus, err := h.VPP.InterfaceMTUs(ctx)
	require.NoError(t, err)
	n := 0
	for name, mtu := range mtus {
		if strings.HasPrefix(name, "memif") {
			n++
			assert.Equal(t, overlayMTU, mtu, "%s: host VPP interface %s", h.Node(), name)
		}
	}
	assert.NotZero(t, n, "%s: no memif interface on the host VPP: %v", h.Node(), mtus)
}

// TestOverlayVPP: three VPP nodes on a 3-server NATS cluster, each node's
// adapter and cni-entry on different servers. A bridged overlay network
// with a probe pod and a pod VPP on every node: pings across every pair,
// MTU 1450, split horizon on every tunnel; a routed one too, whose DEL
// leaves no tunnel nor route into one. Then kill -9 of one adapter and of
// one VPP, and pings recover; DEL of node 2's pods: the others drop their
// tunnels to it and keep theirs; DEL of every pod leaves no tunnel.
func TestOverlayVPP(t *testing.T) {
	c := overlayCluster(t, contracts.EngineVPP, 3, 3)
	ctx := ctxFor(t, 8*time.Minute)
	const bd = 70
	l2 := newOverlayNet(t, c, vppOverlayPlugin("overlay-l2", 5001, bd), "10.77.0.0/24", threeRanges("10.77.0."))

	var probes, vpps []*nodePod
	phase(t, "ADD+CHECK a probe pod and a VPP pod on every node", func() {
		for i := range c.Nodes {
			probes = append(probes, addOverlayPod(t, ctx, c, l2, i, fmt.Sprintf("probe-%d", i)))
			p := addOverlayPod(t, ctx, c, l2, i, fmt.Sprintf("vpp-%d", i))
			v, err := p.StartVPP(ctx)
			require.NoError(t, err)
			p.VPP = v
			vpps = append(vpps, p)
		}
	})
	phase(t, "host VPP interfaces have MTU 1450", func() {
		for _, h := range c.Nodes {
			assertHostMTUs(t, ctx, h)
		}
	})
	phase(t, "a tunnel from every node to every other, in split-horizon group ≠ 0", func() {
		assertMesh(t, ctx, c)
		for _, h := range c.Nodes {
			shgs, err := h.VPP.BridgeDomainSHGs(ctx, bd)
			require.NoError(t, err)
			n := 0
			for ifc, shg := range shgs {
				if strings.HasPrefix(ifc, "vxlan_tunnel") {
					n++
					assert.NotZero(t, shg, "%s: %s in bridge domain %d floods to other tunnels (no split horizon)", h.Node(), ifc, bd)
				}
			}
			assert.Equal(t, len(c.Nodes)-1, n, "%s: tunnels in bridge domain %d: %v", h.Node(), bd, shgs)
		}
	})
	phase(t, "probe pings across every pair of nodes", func() { pingAcrossEveryPair(t, ctx, probes) })
	phase(t, "pod-consumer apply in every pod VPP", func() {
		for _, p := range vpps {
			out, err := p.PodConsumer(ctx, "apply", "--engine", "vpp", "--vpp-api-socket", p.VPP.APISock)
			require.NoError(t, err)
			require.Contains(t, out, "link up", "%s: pod-consumer apply", p.Name)
			mtus, err := p.VPP.InterfaceMTUs(ctx)
			require.NoError(t, err)
			for name, mtu := range mtus {
				if strings.HasPrefix(name, "memif") {
					assert.Equal(t, overlayMTU, mtu, "%s: pod VPP interface %s", p.Name, name)
				}
			}
		}
	})
	phase(t, "pod VPPs ping across every pair of nodes", func() {
		for _, from := range vpps {
			for _, dst := range vpps {
				if from != dst {
					assertVPPPing(t, ctx, from, dst)
				}
			}
		}
	})

	t.Run("routed", func(t *testing.T) {
		// netType interface: each host VPP routes its pods' addresses, and
		// the peers' (announced) into the tunnels.
		l3 := newOverlayNet(t, c, vppOverlayPlugin("overlay-l3", 5002, 0), "10.78.0.0/24", threeRanges("10.78.0."))
		var ps []*nodePod
		for i := range c.Nodes {
			ps = append(ps, addOverlayPod(t, ctx, c, l3, i, fmt.Sprintf("routed-%d", i)))
		}
		// Cold, a routed path crosses neighbour resolutions on the way and
		// VPP drops the packet that triggers each: one warm-up ping a pair.
		for _, dst := range ps {
			serve := serveProbe(t, ctx, dst)
			for _, from := range ps {
				if from != dst {
					awaitProbePing(t, ctx, from, dst, time.Now())
				}
			}
			stopProbe(t, serve)
		}
		pingAcrossEveryPair(t, ctx, ps)
		// Each node routes the peers' pods into their tunnels: the check
		// below is not vacuous.
		for _, h := range c.Nodes {
			fib, err := h.VPP.IPFIB(ctx)
			require.NoError(t, err)
			for _, p := range ps {
				if p.h == h {
					continue
				}
				i := slices.IndexFunc(fib, func(e harness.FIBEntry) bool { return e.Prefix.Addr().String() == p.IP })
				require.GreaterOrEqual(t, i, 0, "%s: no route to %s's %s", h.Node(), p.h.Node(), p.IP)
				assert.True(t, fib[i].Via("vxlan_tunnel"), "%s: the route to %s's %s: %q", h.Node(), p.h.Node(), p.IP, fib[i].Paths)
			}
		}
		phase(t, "DEL of the routed pods", func() {
			for _, p := range ps {
				require.NoError(t, p.Del(ctx, p.net, ifName))
			}
		})
		// A route VPP keeps through a deleted tunnel shows as a drop
		// naming no interface: so no prefix of the subnet may be left at
		// all, in any table.
		phase(t, "no routed tunnel nor route into one left on any node", func() {
			subnet := netip.MustParsePrefix("10.78.0.0/24")
			for _, h := range c.Nodes {
				awaitTunnels(t, ctx, h, "no tunnel of vni 5002", func(tuns []string) bool { return len(tunnelsOfVNI(tuns, 5002)) == 0 })
				fib, err := h.VPP.IPFIB(ctx)
				require.NoError(t, err)
				for _, e := range fib {
					assert.False(t, e.Via("vxlan_tunnel"), "%s: route %s (table %s) into a tunnel: %q", h.Node(), e.Prefix, e.Table, e.Paths)
					assert.False(t, e.Prefix.Bits() >= subnet.Bits() && subnet.Contains(e.Prefix.Addr()), "%s: route %s (table %s) of the routed network left: %q", h.Node(), e.Prefix, e.Table, e.Paths)
				}
			}
		})
	})

	phase(t, "kill -9 and restart node 1's adapter", func() {
		killAndRestartAdapter(t, ctx, c, 1, probes, probes[1])
	})
	phase(t, "kill -9 and restart node 2's VPP", func() {
		restartVswitch(t, ctx, c, 2, probes, probes[2])
		awaitMemifConnected(t, ctx, &vppPod{Pod: vpps[2].Pod, VPP: vpps[2].VPP})
		assertVPPPing(t, ctx, vpps[0], vpps[2])
	})
	phase(t, "DEL of node 2's pods: nodes 0 and 1 drop their tunnels to it, keep theirs", func() {
		require.NoError(t, vpps[2].VPP.Stop())
		leaveNode(t, ctx, c, 2, 5001, []*nodePod{probes[2], vpps[2]}, probes[:2])
		bds, err := c.Nodes[2].VPP.BridgeDomains(ctx)
		require.NoError(t, err)
		assert.NotContains(t, bds, uint32(bd), "%s: bridge domains", c.Nodes[2].Node())
	})
	for _, p := range vpps[:2] {
		require.NoError(t, p.VPP.Stop())
	}
	delAll(t, ctx, c, probes[0], probes[1], vpps[0], vpps[1])
	for _, h := range c.Nodes {
		bds, err := h.VPP.BridgeDomains(ctx)
		require.NoError(t, err)
		assert.Empty(t, bds, "%s: bridge domains", h.Node())
		assert.Empty(t, filesIn(t, h.StateDir(), nil), "%s: vpp-adapter records", h.Node())
		ifs, err := h.VPP.Interfaces(ctx)
		require.NoError(t, err)
		assert.Equal(t, []string{"host-" + c.NodeVeth(nodeIndex(c, h))}, ifs, "%s: host VPP interfaces besides local0: only the underlay's", h.Node())
	}
}

func nodeIndex(c *harness.Cluster, h *harness.Harness) int {
	for i, n := range c.Nodes {
		if n == h {
			return i
		}
	}
	return -1
}

var vppRTT = regexp.MustCompile(`time=([\d.]+) ms`)

// assertVPPPing pings dst from from's VPP: at least 4 of 5 replies (the
// first may be lost to ARP); logs the RTTs.
func assertVPPPing(t *testing.T, ctx context.Context, from, dst *nodePod) {
	t.Helper()
	n, out, err := from.VPP.Ping(ctx, dst.IP, 5)
	require.NoError(t, err)
	var rtts []string
	for _, m := range vppRTT.FindAllStringSubmatch(out, -1) {
		rtts = append(rtts, m[1])
	}
	t.Logf("cross-node pod VPP ping %s (%s) → %s (%s): %d/5, rtt %s ms", from.Name, from.h.Node(), dst.Name, dst.h.Node(), n, strings.Join(rtts, " "))
	assert.GreaterOrEqual(t, n, 4, "replies %s → %s:\n%s", from.Name, dst.Name, out)
}

// TestOverlayOVS: two OVS-DPDK nodes (one ovsdpdk.Lock, 128 MB of
// hugepages each) on one NATS server: memif probe pods ping across, MTU
// 1450; kill -9 of an adapter and of an ovs-vswitchd, and pings recover;
// DEL of node 1's pod: node 0 drops its vxlan port, a new pod there brings
// it back; DEL of every pod leaves no vxlan port.
func TestOverlayOVS(t *testing.T) {
	c := overlayCluster(t, contracts.EngineOVSDPDK, ovsdpdk.MaxInstances, 1)
	t.Cleanup(func() { assertNoDPDKLeftovers(t) })
	ctx := ctxFor(t, 5*time.Minute)
	net := newOverlayNet(t, c, map[string]any{"type": "userspace", "name": "overlay-ovs",
		"host":    map[string]any{"engine": "ovs-dpdk", "iftype": "memif", "netType": "bridge", "memif": map[string]any{"role": "master", "mode": "ethernet"}, "bridge": map[string]any{"bridgeName": "br-ovl"}},
		"overlay": map[string]any{"type": "vxlan", "vni": 5003},
	}, "10.79.0.0/24", threeRanges("10.79.0."))
	var ps []*nodePod
	phase(t, "ADD+CHECK a probe pod on every node", func() {
		for i := range c.Nodes {
			ps = append(ps, addOverlayPod(t, ctx, c, net, i, fmt.Sprintf("probe-%d", i)))
		}
	})
	phase(t, "OVS interfaces have MTU 1450", func() {
		for _, p := range ps {
			port, err := p.h.PortOf(ctx, p.ContainerID, ifName)
			require.NoError(t, err)
			mtu, err := p.h.OVS.Vsctl(ctx, "get", "Interface", port, "mtu")
			require.NoError(t, err)
			assert.Equal(t, strconv.Itoa(overlayMTU), mtu, "%s: OVS interface %s", p.h.Node(), port)
		}
	})
	phase(t, "a vxlan port on each node to the other", func() { assertMesh(t, ctx, c) })
	phase(t, "probe pings across the nodes", func() { pingAcrossEveryPair(t, ctx, ps) })
	phase(t, "kill -9 and restart node 0's adapter", func() { killAndRestartAdapter(t, ctx, c, 0, ps, ps[0]) })
	phase(t, "kill -9 and restart node 1's ovs-vswitchd", func() { restartVswitch(t, ctx, c, 1, ps, ps[1]) })
	phase(t, "probe pings across the nodes again", func() { pingAcrossEveryPair(t, ctx, ps) })
	phase(t, "DEL of node 1's pod: node 0 drops its vxlan port", func() {
		leaveNode(t, ctx, c, 1, 5003, ps[1:], nil)
	})
	phase(t, "a new pod on node 1: the ports come back, probe pings across", func() {
		added := time.Now()
		ps[1] = addOverlayPod(t, ctx, c, net, 1, "probe-1b")
		assertMesh(t, ctx, c)
		t.Logf("rejoin: a vxlan port each way %s after the ADD began", time.Since(added).Round(time.Millisecond))
		pingAcrossEveryPair(t, ctx, ps)
	})
	delAll(t, ctx, c, ps...)
	for _, h := range c.Nodes {
		owned, err := h.OwnedPorts(ctx)
		require.NoError(t, err)
		assert.Empty(t, owned, "%s: OVS ports with external_ids:usrsp-owner=%s", h.Node(), harness.Owner)
	}
}

// TestOverlayClusterCleanup: a cluster whose adapter cannot start fails
// NewCluster, which leaves no namespace or process behind.
func TestOverlayClusterCleanup(t *testing.T) {
	if r := harness.VPPMissing(); r != "" || os.Geteuid() != 0 {
		t.Skip("needs root and a VPP: " + r)
	}
	before, orphansBefore := uxeNetns(t), orphanProcs(t)
	_, err := harness.NewCluster(ctxFor(t, time.Minute), contracts.EngineVPP, 2, harness.ClusterConfig{
		BinDir: binDir, Logf: t.Logf, NATSServers: 2, AdapterArgs: []string{"--no-such-flag"}})
	require.Error(t, err)
	t.Logf("NewCluster: %s", strings.SplitN(err.Error(), "\n", 2)[0])
	assert.Equal(t, before, uxeNetns(t), "namespaces uxe-* after the failed NewCluster")
	// The node directories are gone with the cluster, so a VPP or adapter
	// left running is one whose command line names a directory that no
	// longer exists.
	for pid, cmd := range orphanProcs(t) {
		if _, old := orphansBefore[pid]; !old {
			t.Errorf("process %d left running by the failed NewCluster: %s", pid, cmd)
		}
	}
}

// orphanProcs maps the pid of every process whose command line names a
// harness directory (/tmp/usrsp-*) that no longer exists to that command
// line: a VPP, vswitchd or adapter its harness failed to stop.
func orphanProcs(t *testing.T) map[int]string {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	require.NoError(t, err)
	prefix := filepath.Join(os.TempDir(), "usrsp-")
	orphans := map[int]string{}
	for _, f := range procs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // gone meanwhile
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		for _, a := range args {
			rest, ok := strings.CutPrefix(a, prefix)
			if !ok {
				continue
			}
			dir, _, _ := strings.Cut(rest, "/")
			if _, err := os.Stat(prefix + dir); os.IsNotExist(err) {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
				orphans[pid] = strings.Join(args, " ")
				break
			}
		}
	}
	return orphans
}

func uxeNetns(t *testing.T) []string {
	entries, err := os.ReadDir("/var/run/netns")
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "uxe-") {
			names = append(names, e.Name())
		}
	}
	return names
}
