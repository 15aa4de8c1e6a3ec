//go:build e2e

// Package e2e proves the whole usrsp path on this machine with real
// packets: libcni (as Multus) → the built cni-entry → NATS → the
// ovs-adapter process → a private OVS-DPDK → the pods' apps (dpdk-testpmd
// and pod-consumer in network namespaces). Run as root: `make e2e`.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/ovsdpdk"
	"usrsp.dev/libs/testkit"
	"usrsp.dev/tools/harness"
	"usrsp.dev/tools/podmantest"
)

const ifName = "net1"

// binDir holds the binaries built once for all tests ("" when skipping).
var binDir string

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	// Root is all the binaries need; the OVS and VPP tests check the rest.
	if os.Geteuid() == 0 {
		dir, err := os.MkdirTemp("", "usrsp-e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		start := time.Now()
		if err := harness.Build(context.Background(), "", dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("e2e: built binaries in %s\n", time.Since(start).Round(time.Millisecond))
		binDir = dir
	}
	return m.Run()
}

// skipReason says why the suite cannot run here ("" if it can).
func skipReason() string {
	switch {
	case os.Geteuid() != 0:
		return "e2e needs root (hugepages, network namespaces): run `sudo make e2e`"
	case !installed(ovsdpdk.DefaultVswitchd):
		return ovsdpdk.DefaultVswitchd + " missing: run `make deps` (deploy/scripts/install-deps.sh)"
	case !installed("dpdk-testpmd"):
		return "dpdk-testpmd missing: run `make deps` (Debian package dpdk-dev)"
	}
	return ""
}

func installed(bin string) bool { _, err := exec.LookPath(bin); return err == nil }

// engineCase is one engine's node and the vswitch network (bridge) a
// test's pods join.
type engineCase struct {
	engine contracts.Engine
	node   func(t *testing.T) *harness.Harness
	bridge map[string]any // host.bridge of the test's networks
}

var (
	ovsCase     = engineCase{engine: contracts.EngineOVSDPDK, node: node, bridge: map[string]any{"bridgeName": "br-e2e"}}
	vppCase     = engineCase{engine: contracts.EngineVPP, node: vppNode, bridge: map[string]any{"bridgeId": 7}}
	engineCases = []engineCase{ovsCase, vppCase}
)

// node brings up a node for t and tears it down in t.Cleanup.
func node(t *testing.T) *harness.Harness {
	t.Helper()
	if r := skipReason(); r != "" {
		t.Skip(r)
	}
	t.Cleanup(func() { assertNoDPDKLeftovers(t) }) // registered first: runs after the node's Close
	return startNode(t, contracts.EngineOVSDPDK, "ovs-vswitchd log", func(h *harness.Harness) string { return h.OVS.VswitchdLogTail(20) })
}

// startNode brings up a node of engine for t and closes it in t.Cleanup;
// when t failed, it first logs the tails of the adapter's log, the
// vswitch's (vswitchLog names it, tail reads it) and the plugin's.
func startNode(t *testing.T, engine contracts.Engine, vswitchLog string, tail func(*harness.Harness) string) *harness.Harness {
	t.Helper()
	require.NotEmpty(t, binDir, "binaries not built")
	start := time.Now()
	h, err := harness.New(context.Background(), harness.Config{BinDir: binDir, Logf: t.Logf, Engine: engine})
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s adapter log (tail):\n%s", engine, h.AdapterLogTail(30))
			t.Logf("%s (tail):\n%s", vswitchLog, tail(h))
			b, _ := os.ReadFile(filepath.Join(h.LogDir(), "userspace.log"))
			t.Logf("userspace log (tail):\n%s", lastLines(string(b), 20))
		}
		assert.NoError(t, h.Close())
	})
	t.Logf("phase node up (%s): %s", engine, time.Since(start).Round(time.Millisecond))
	return h
}

// rangeNetwork is a userspace network with host and host-local addresses
// from first to last of subnet: networks sharing a vswitch network
// (bridge) and subnet each take their own range.
func rangeNetwork(t *testing.T, h *harness.Harness, name string, host map[string]any, subnet, first, last string) *harness.Network {
	t.Helper()
	n, err := h.NetworkFrom(map[string]any{
		"type": "userspace", "name": name, "host": host,
		"ipam": map[string]any{"type": "host-local", "ranges": []any{[]any{
			map[string]any{"subnet": subnet, "rangeStart": first, "rangeEnd": last}}}},
	})
	require.NoError(t, err)
	return n
}

// subscribeReconciled subscribes to the node's reconciled events, before a
// vswitch restart; the func it returns waits for one, failing t when ctx
// ends first.
func subscribeReconciled(t *testing.T, h *harness.Harness, engine contracts.Engine) func(ctx context.Context) {
	t.Helper()
	reconciled := make(chan *contracts.Event, 8)
	sub, err := h.NC.Subscribe(contracts.EventSubject(h.Node(), engine, contracts.EventReconciled), func(m *nats.Msg) {
		if ev, err := contracts.DecodeEvent(m.Data); err == nil {
			reconciled <- ev
		}
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, h.NC.Flush())
	return func(ctx context.Context) {
		t.Helper()
		select {
		case ev := <-reconciled:
			t.Logf("event %s: %s (%s)", ev.Kind, ev.Message, ev.Duration)
		case <-ctx.Done():
			t.Fatalf("no %s event after the %s restart: %v", contracts.EventReconciled, engine, ctx.Err())
		}
	}
}

// requireNetwork fails t unless the network was made:
// requireNetwork(t)(h.MemifNetwork(...)).
func requireNetwork(t *testing.T) func(*harness.Network, error) *harness.Network {
	return func(n *harness.Network, err error) *harness.Network {
		t.Helper()
		require.NoError(t, err)
		return n
	}
}

// phase runs one step of a test and logs its duration.
func phase(t *testing.T, name string, fn func()) {
	t.Helper()
	start := time.Now()
	fn()
	t.Logf("phase %s: %s", name, time.Since(start).Round(time.Millisecond))
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// pods creates n pods and ADDs net to each (ifName), checking the result.
func pods(t *testing.T, ctx context.Context, h *harness.Harness, net *harness.Network, n int) []*harness.Pod {
	t.Helper()
	var ps []*harness.Pod
	for i := range n {
		p, err := h.NewPod(ctx, fmt.Sprintf("pod-%c", 'a'+i))
		require.NoError(t, err)
		res, err := p.Add(ctx, net, ifName)
		require.NoError(t, err)
		require.Len(t, res.Interfaces, 1)
		assert.Equal(t, ifName, res.Interfaces[0].Name)
		assert.Equal(t, p.Netns(), res.Interfaces[0].Sandbox)
		require.Len(t, res.IPs, 1)
		require.NoError(t, p.Check(ctx, net, ifName), "CHECK right after ADD")
		ps = append(ps, p)
	}
	return ps
}

// assertTraffic runs txonly in a and rxonly in b and compares every
// counter on the way exactly.
func assertTraffic(t *testing.T, ctx context.Context, h *harness.Harness, a, b *harness.Pod) harness.Traffic {
	t.Helper()
	tr, err := h.RunTraffic(ctx, a, b, ifName, time.Second)
	require.NoError(t, err)
	t.Logf("traffic: %s (steps: %s)", tr, strings.Join(tr.Steps, ", "))
	require.NotZero(t, tr.Sender.TXPackets, "testpmd A sent nothing")
	assert.Equal(t, tr.Sender.TXPackets, tr.SenderOVS.RXPackets, "OVS received from A exactly what A sent")
	assert.Zero(t, tr.SenderOVS.RXDropped, "OVS dropped on A's port")
	assert.Equal(t, tr.SenderOVS.RXPackets, tr.ReceiverOVS.TXPackets+tr.ReceiverOVS.TXDropped,
		"everything OVS took from A was sent to B or counted as dropped on B's port")
	assert.Equal(t, tr.ReceiverOVS.TXPackets, tr.Receiver.RXPackets, "B received exactly what OVS sent it")
	assert.NotZero(t, tr.Receiver.RXPackets, "B received nothing")
	assert.Zero(t, tr.Receiver.TXPackets, "rxonly B sent packets")
	return tr
}

// assertGone checks that nothing of the pods' attachments of net is left:
// OVS ports (by external_ids), pod data, sockets, links, device info,
// host-local allocations.
func assertGone(t *testing.T, ctx context.Context, h *harness.Harness, net *harness.Network, ps ...*harness.Pod) {
	t.Helper()
	owned, err := h.OwnedPorts(ctx)
	require.NoError(t, err)
	assert.Empty(t, owned, "OVS ports with external_ids:usrsp-owner=%s", harness.Owner)
	for _, p := range ps {
		port, err := h.PortOf(ctx, p.ContainerID, ifName)
		require.NoError(t, err)
		assert.Empty(t, port, "OVS interface of %s", p.Name)
		assert.Empty(t, filesIn(t, p.Dir(), func(fi os.FileInfo) bool {
			return fi.Mode()&os.ModeSocket != 0 || strings.HasPrefix(fi.Name(), "usrsp-")
		}), "sockets and pod data files in %s", p.Dir())
		_, err = os.Stat(p.DeviceInfoFile(ifName))
		assert.True(t, os.IsNotExist(err), "device info of %s: %v", p.Name, err)
	}
	assert.Empty(t, filesIn(t, h.LinkDir(), nil), "links in %s", h.LinkDir())
	assert.Empty(t, ipamAllocations(t, h, net), "host-local allocations of %s", net.Name)
}

// filesIn lists the names in dir matching keep (all if nil); a missing dir
// is empty.
func filesIn(t *testing.T, dir string, keep func(os.FileInfo) bool) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		fi, err := e.Info()
		require.NoError(t, err)
		if keep == nil || keep(fi) {
			names = append(names, e.Name())
		}
	}
	return names
}

// ipamAllocations are host-local's reservation files (named by IP).
func ipamAllocations(t *testing.T, h *harness.Harness, net *harness.Network) []string {
	return filesIn(t, filepath.Join(h.IPAMDir(), net.Name), func(fi os.FileInfo) bool {
		return strings.Count(fi.Name(), ".") == 3 && !strings.HasPrefix(fi.Name(), "last_reserved_ip")
	})
}

// assertNoDPDKLeftovers checks that no usrsp DPDK runtime dir is left.
func assertNoDPDKLeftovers(t *testing.T) {
	left, _ := filepath.Glob("/var/run/dpdk/usrsp-pod-*")
	assert.Empty(t, left, "DPDK runtime dirs of pod apps")
}

func del(t *testing.T, ctx context.Context, net *harness.Network, ps ...*harness.Pod) {
	t.Helper()
	for _, p := range ps {
		require.NoError(t, p.Del(ctx, net, ifName))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// assertVswitchClean checks that the vswitch has nothing of the adapter's
// left: OVS ports with its owner tag and its bridge, or VPP interfaces,
// bridge domains, memif sockets and the adapter's records (the harness's
// VPP is private, so everything on it is the adapter's).
func assertVswitchClean(t *testing.T, ctx context.Context, h *harness.Harness) {
	t.Helper()
	if h.Engine() == contracts.EngineVPP {
		ifs, err := h.VPP.Interfaces(ctx)
		require.NoError(t, err)
		assert.Empty(t, ifs, "host VPP interfaces besides local0")
		bds, err := h.VPP.BridgeDomains(ctx)
		require.NoError(t, err)
		assert.Empty(t, bds, "host VPP bridge domains")
		socks, err := h.VPP.MemifSockets(ctx)
		require.NoError(t, err)
		assert.Empty(t, socks, "host VPP memif sockets besides id 0")
		assert.Empty(t, filesIn(t, h.StateDir(), nil), "vpp-adapter records")
		return
	}
	owned, err := h.OwnedPorts(ctx)
	require.NoError(t, err)
	assert.Empty(t, owned, "OVS ports with external_ids:usrsp-owner=%s", harness.Owner)
	bridges, err := h.Bridges(ctx)
	require.NoError(t, err)
	assert.Empty(t, bridges, "the adapter's bridge is gone once empty")
}

// Two pods on one bridge, each with a port of kind, testpmd txonly in one
// and rxonly in the other; then DEL and nothing is left (including the
// bridge the adapter created).
func TestTraffic(t *testing.T) {
	for _, tc := range []struct {
		name    string
		network func(h *harness.Harness) (*harness.Network, error)
	}{
		{"vhostuser", func(h *harness.Harness) (*harness.Network, error) {
			return h.VhostUserNetwork("vhost-net", "br-vhost", "10.61.0.0/24")
		}},
		{"memif", func(h *harness.Harness) (*harness.Network, error) {
			return h.MemifNetwork("memif-net", "br-memif", "10.62.0.0/24")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := node(t)
			ctx := ctxFor(t, 2*time.Minute)
			net, err := tc.network(h)
			require.NoError(t, err)
			var ps []*harness.Pod
			phase(t, tc.name+" ADD+CHECK two pods", func() { ps = pods(t, ctx, h, net, 2) })
			phase(t, tc.name+" traffic", func() { assertTraffic(t, ctx, h, ps[0], ps[1]) })
			phase(t, tc.name+" DEL", func() { del(t, ctx, net, ps...) })
			assertGone(t, ctx, h, net, ps...)
			bridges, err := h.Bridges(ctx)
			require.NoError(t, err)
			assert.Empty(t, bridges, "the adapter removes the bridge it created once empty")
		})
	}
}

// Two pods on one OVS-DPDK bridge through memif ports ping each other
// using nothing but `pod-consumer probe` (issue 5).
func TestMemifProbePing(t *testing.T) {
	h := node(t)
	ctx := ctxFor(t, 2*time.Minute)
	net := requireNetwork(t)(h.MemifNetwork("probe-net", "br-probe", "10.63.0.0/24"))
	var ps []*harness.Pod
	phase(t, "probe ADD+CHECK two pods", func() { ps = pods(t, ctx, h, net, 2) })
	servedIP, err := ps[0].IPv4(ifName)
	require.NoError(t, err)

	phase(t, "probe ping", func() { probeServeAndPing(t, ctx, ps[0], ps[1], servedIP) })
	phase(t, "probe DEL", func() { del(t, ctx, net, ps...) })
	assertGone(t, ctx, h, net, ps...)
}

// probeServeAndPing runs `pod-consumer probe serve` in server and 5 `probe ping`s
// to its address servedIP from client, and checks that every echo came
// back and was answered once.
func probeServeAndPing(t *testing.T, ctx context.Context, server, client *harness.Pod, servedIP string) {
	t.Helper()
	serve, err := server.StartPodConsumer(ctx, "probe", "serve")
	require.NoError(t, err)
	require.NoError(t, serve.WaitOutput(ctx, "answering ARP and ping"), serve.Output())
	out, err := client.PodConsumer(ctx, "probe", "ping", servedIP, "-c", "5", "-i", "100ms", "-W", "2s")
	require.NoError(t, err, "pod-consumer probe ping exits 0 only when replies came back\n%s", out)
	t.Logf("probe ping:\n%s", out)
	assert.Contains(t, out, "5 packets transmitted, 5 received, 0% packet loss")
	assert.Equal(t, 5, strings.Count(out, "bytes from "+servedIP))
	require.NoError(t, serve.Stop(syscall.SIGTERM))
	assert.Contains(t, serve.Output(), "5 echo requests")
}

// kill -9 of the adapter between ADD and DEL: DEL fails with code 11 but
// releases IPAM and the pod's files; after a restart DEL cleans the rest.
func TestAdapterKilledBetweenAddAndDel(t *testing.T) {
	h := node(t)
	ctx := ctxFor(t, 2*time.Minute)
	net := requireNetwork(t)(h.VhostUserNetwork("kill-net", "br-kill", "10.64.0.0/24"))
	ps := pods(t, ctx, h, net, 1)
	p := ps[0]
	port, err := h.PortOf(ctx, p.ContainerID, ifName)
	require.NoError(t, err)
	require.NotEmpty(t, port)

	phase(t, "kill -9 adapter", func() { require.NoError(t, h.KillAdapter()) })
	phase(t, "DEL while the adapter is down", func() {
		err := p.Del(ctx, net, ifName)
		require.Error(t, err)
		assert.Equal(t, uint(contracts.CodeTryAgainLater), harness.Code(err), "%v", err)
	})
	assert.Empty(t, ipamAllocations(t, h, net), "IPAM released although the adapter is down")
	_, err = os.Stat(filepath.Join(p.Dir(), contracts.PodDataFileName(ifName)))
	assert.True(t, os.IsNotExist(err), "pod data removed although the adapter is down: %v", err)
	owned, err := h.OwnedPorts(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{port}, owned, "the port stays until the adapter is back")

	phase(t, "restart adapter", func() { require.NoError(t, h.StartAdapter(ctx)) })
	phase(t, "DEL again", func() { del(t, ctx, net, p) })
	assertGone(t, ctx, h, net, p)
	bridges, err := h.Bridges(ctx)
	require.NoError(t, err)
	assert.Empty(t, bridges)
}

// ovs-vswitchd crashes and restarts with attachments present: the adapter
// reconciles, the same ports come back and traffic flows again.
func TestVswitchdRestart(t *testing.T) {
	h := node(t)
	ctx := ctxFor(t, 3*time.Minute)
	vnet := requireNetwork(t)(h.VhostUserNetwork("vhost-net", "br-vhost", "10.65.0.0/24"))
	mnet := requireNetwork(t)(h.MemifNetwork("memif-net", "br-memif", "10.66.0.0/24"))
	var vps, mps []*harness.Pod
	phase(t, "ADD vhost-user and memif pairs", func() {
		vps = pods(t, ctx, h, vnet, 2)
		mps = pods(t, ctx, h, mnet, 2)
	})
	all := append(append([]*harness.Pod(nil), vps...), mps...)
	before := portsOf(t, h, all)

	awaitReconciled := subscribeReconciled(t, h, contracts.EngineOVSDPDK)

	phase(t, "kill -9 and restart ovs-vswitchd", func() { require.NoError(t, h.OVS.RestartVswitchd(ctx, true)) })
	phase(t, "adapter reconcile", func() {
		awaitReconciled(ctxFor(t, 30*time.Second))
		require.NoError(t, h.AwaitPortsReady(ctx, before...))
	})
	assert.Equal(t, before, portsOf(t, h, all), "the same ports are back")
	phase(t, "vhost-user traffic after restart", func() { assertTraffic(t, ctx, h, vps[0], vps[1]) })
	phase(t, "memif traffic after restart", func() { assertTraffic(t, ctx, h, mps[0], mps[1]) })
	phase(t, "DEL all", func() {
		del(t, ctx, vnet, vps...)
		del(t, ctx, mnet, mps...)
	})
	assertGone(t, ctx, h, vnet, vps...)
	assertGone(t, ctx, h, mnet, mps...)
}

func portsOf(t *testing.T, h *harness.Harness, ps []*harness.Pod) []string {
	t.Helper()
	var ports []string
	for _, p := range ps {
		port, err := h.PortOf(ctxFor(t, 10*time.Second), p.ContainerID, ifName)
		require.NoError(t, err)
		require.NotEmpty(t, port, "port of %s", p.Name)
		ports = append(ports, port)
	}
	return ports
}

// GC with an empty valid list removes every attachment of the network and
// nothing of another network.
func TestGC(t *testing.T) {
	h := node(t)
	ctx := ctxFor(t, 2*time.Minute)
	net := requireNetwork(t)(h.VhostUserNetwork("gc-net", "br-gc", "10.67.0.0/24"))
	other := requireNetwork(t)(h.MemifNetwork("other-net", "br-other", "10.68.0.0/24"))
	ps := pods(t, ctx, h, net, 2)
	keep := pods(t, ctx, h, other, 1)

	phase(t, "GC with no valid attachments", func() { require.NoError(t, h.GC(ctx, net, []types.GCAttachment{})) })
	for _, p := range ps {
		port, err := h.PortOf(ctx, p.ContainerID, ifName)
		require.NoError(t, err)
		assert.Empty(t, port, "GC removed the port of %s", p.Name)
	}
	assert.Empty(t, ipamAllocations(t, h, net), "GC released IPAM")
	kept, err := h.PortOf(ctx, keep[0].ContainerID, ifName)
	require.NoError(t, err)
	assert.NotEmpty(t, kept, "GC of gc-net kept other-net's port")
	require.NoError(t, keep[0].Check(ctx, other, ifName))

	// The runtime's DELs after GC are no-ops that succeed.
	del(t, ctx, net, ps...)
	del(t, ctx, other, keep...)
	assertGone(t, ctx, h, net, ps...)
	assertGone(t, ctx, h, other, keep...)
}

// Attach latency: 20 ADDs through libcni per interface kind (IPAM,
// cni-entry, NATS, adapter, vswitchd creating the port). It logs the
// median; timing goals are not asserted here.
func TestAttachLatency(t *testing.T) {
	h := node(t)
	ctx := ctxFor(t, 3*time.Minute)
	const n = 20
	for _, kind := range []string{"vhostuser", "memif"} {
		var net *harness.Network
		var err error
		if kind == "vhostuser" {
			net, err = h.VhostUserNetwork("lat-vhost", "br-lat", "10.69.0.0/24")
		} else {
			net, err = h.MemifNetwork("lat-memif", "br-lat", "10.70.0.0/24")
		}
		require.NoError(t, err)
		var adds, dels []time.Duration
		var ps []*harness.Pod
		for i := range n {
			p, err := h.NewPod(ctx, "lat-"+kind+"-"+string(rune('a'+i)))
			require.NoError(t, err)
			start := time.Now()
			_, err = p.Add(ctx, net, ifName)
			adds = append(adds, time.Since(start))
			require.NoError(t, err)
			ps = append(ps, p)
		}
		for _, p := range ps {
			start := time.Now()
			require.NoError(t, p.Del(ctx, net, ifName))
			dels = append(dels, time.Since(start))
		}
		t.Logf("attach latency %s: ADD median %s (min %s, max %s), DEL median %s, n=%d",
			kind, median(adds), minOf(adds), maxOf(adds), median(dels), n)
		assertGone(t, ctx, h, net, ps...)
	}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2].Round(time.Microsecond * 100)
	}
	return ((s[len(s)/2-1] + s[len(s)/2]) / 2).Round(time.Microsecond * 100)
}

func minOf(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m.Round(time.Microsecond * 100)
}

func maxOf(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = max(m, d)
	}
	return m.Round(time.Microsecond * 100)
}

// kernelSubnet is shared by the kernel and the memif network of a test;
// each network's host-local takes addresses from its own half.
const kernelSubnet = "10.66.0.0/24"

// inNetns runs a command in pod p's network namespace (no mounts needed).
func inNetns(ctx context.Context, p *harness.Pod, name string, args ...string) (string, error) {
	return inNetnsFile(ctx, p.Netns(), name, args...)
}

// inNetnsFile runs a host binary in the network namespace at path and returns its combined output.
func inNetnsFile(ctx context.Context, netns, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + netns, name}, args...)...).CombinedOutput()
	return string(out), err
}

// assertHostVethGone checks that the host end of key's veth pair is gone.
func assertHostVethGone(t *testing.T, ctx context.Context, key contracts.AttachmentKey) {
	t.Helper()
	host := contracts.HostVethName(key)
	assert.Error(t, exec.CommandContext(ctx, "ip", "link", "show", host).Run(), "host end %s of the veth is gone", host)
}

// assertKernelInterface checks the pod's netdev as a CNI conformance suite
// does: named ifName in CNI_NETNS, with the result's MAC and address.
func assertKernelInterface(t *testing.T, ctx context.Context, p *harness.Pod, mac, cidr string) {
	t.Helper()
	out, err := inNetns(ctx, p, "ip", "-o", "addr", "show", "dev", ifName)
	require.NoError(t, err, out)
	assert.Contains(t, out, "inet "+cidr)
	out, err = inNetns(ctx, p, "ip", "-o", "link", "show", "dev", ifName)
	require.NoError(t, err, out)
	assert.Contains(t, out, "link/ether "+mac)
	assert.Contains(t, out, "state UP")
}

// kernelPingsMemif: a pod with iftype veth (a kernel netdev) and a pod
// with memif on the same vswitch network; the kernel pod pings the memif
// pod's pure-Go probe with the kernel's own ping. Then DEL leaves nothing.
func kernelPingsMemif(t *testing.T, h *harness.Harness, kernelHost, memifHost map[string]any) {
	ctx := ctxFor(t, 2*time.Minute)
	kernNet := rangeNetwork(t, h, "kern-net", kernelHost, kernelSubnet, "10.66.0.10", "10.66.0.99")
	memifNet := rangeNetwork(t, h, "memif-net", memifHost, kernelSubnet, "10.66.0.100", "10.66.0.199")

	var kp, mp *harness.Pod
	var kernRes struct{ mac, cidr string }
	phase(t, "ADD+CHECK kernel pod and memif pod", func() {
		kp = pods(t, ctx, h, kernNet, 1)[0]
		mp = pods(t, ctx, h, memifNet, 1)[0]
		d, err := kp.PodData(ifName)
		require.NoError(t, err)
		assert.Equal(t, contracts.IfTypeVeth, d.Interface.IfType)
		require.NotNil(t, d.IPAM)
		kernRes.mac, kernRes.cidr = d.Interface.MAC, d.IPAM.IPs[0].Address
	})
	phase(t, "the kernel pod's netdev", func() {
		_, err := net.ParseMAC(kernRes.mac)
		require.NoError(t, err)
		assertKernelInterface(t, ctx, kp, kernRes.mac, kernRes.cidr)
	})
	memifIP, err := mp.IPv4(ifName)
	require.NoError(t, err)
	phase(t, "kernel ping → memif probe", func() {
		serve, err := mp.StartPodConsumer(ctx, "probe", "serve")
		require.NoError(t, err)
		require.NoError(t, serve.WaitOutput(ctx, "answering ARP and ping"), serve.Output())
		out, err := inNetns(ctx, kp, "ping", "-c", "5", "-i", "0.2", "-W", "2", memifIP)
		t.Logf("ping from the kernel pod:\n%s", out)
		require.NoError(t, err, "ping exits 0 only when replies came back")
		assert.Contains(t, out, "5 packets transmitted, 5 received")
		require.NoError(t, serve.Stop(syscall.SIGTERM))
		assert.Contains(t, serve.Output(), "5 echo requests")
	})
	phase(t, "DEL both, DEL again", func() {
		del(t, ctx, kernNet, kp)
		del(t, ctx, memifNet, mp)
		del(t, ctx, kernNet, kp)
	})
	out, err := inNetns(ctx, kp, "ip", "-o", "link", "show")
	require.NoError(t, err)
	assert.NotContains(t, out, ifName+"@", "the pod's veth is gone")
	assertHostVethGone(t, ctx, contracts.AttachmentKey{ContainerID: kp.ContainerID, IfName: ifName})
	assertVswitchClean(t, ctx, h)
	for _, n := range []*harness.Network{kernNet, memifNet} {
		assert.Empty(t, ipamAllocations(t, h, n), "host-local allocations of %s", n.Name)
	}
	assert.Empty(t, filesIn(t, h.LinkDir(), nil), "links")
	for _, p := range []*harness.Pod{kp, mp} {
		assert.Empty(t, filesIn(t, p.Dir(), nil), "files in %s", p.Dir())
	}
}

// TestKernelIfTypeOVS: the kernel pod's host veth end is an OVS system
// port on the same netdev bridge as the memif pod's dpdk port.
func TestKernelIfTypeOVS(t *testing.T) { testKernelIfType(t, ovsCase) }

// TestKernelIfTypeVPP: the kernel pod's host veth end is a VPP af_packet
// interface (host-<veth>) in the same bridge domain as the memif pod's
// memif.
func TestKernelIfTypeVPP(t *testing.T) { testKernelIfType(t, vppCase) }

// testKernelIfType: a veth pod and a memif pod on one bridge of c's vswitch.
func testKernelIfType(t *testing.T, c engineCase) {
	h := c.node(t)
	kernelPingsMemif(t, h,
		map[string]any{"engine": c.engine, "iftype": "veth", "netType": "bridge", "bridge": c.bridge},
		map[string]any{"engine": c.engine, "iftype": "memif", "netType": "bridge",
			"memif": map[string]any{"role": "master", "mode": "ethernet"}, "bridge": c.bridge})
}

// TestKernelIfTypeVPPL3: two kernel pods on one netType interface network:
// the host VPP routes them (af_packet interfaces unnumbered to the
// network's loopback, proxy ARP), so each reaches the other and the
// gateway with the kernel's ping.
func TestKernelIfTypeVPPL3(t *testing.T) {
	h := vppNode(t)
	ctx := ctxFor(t, 2*time.Minute)
	n, err := h.NetworkFrom(map[string]any{
		"type": "userspace", "name": "kern-l3",
		"host": map[string]any{"engine": "vpp", "iftype": "veth", "netType": "interface"},
		"ipam": map[string]any{"type": "host-local", "subnet": "10.67.0.0/24", "gateway": "10.67.0.1"},
	})
	require.NoError(t, err)
	var ps []*harness.Pod
	phase(t, "ADD+CHECK two kernel pods", func() { ps = pods(t, ctx, h, n, 2) })
	ipB, err := ps[1].IPv4(ifName)
	require.NoError(t, err)
	for _, dst := range []string{ipB, "10.67.0.1"} {
		phase(t, "kernel ping "+dst, func() {
			// VPP drops the packet that triggers each of its neighbour
			// resolutions (towards a and towards b): warm the path first,
			// as TestVPPMemifPing does.
			warm, _ := inNetns(ctx, ps[0], "ping", "-c", "3", "-i", "0.2", "-W", "1", dst)
			t.Logf("warm-up:\n%s", warm)
			out, err := inNetns(ctx, ps[0], "ping", "-c", "5", "-i", "0.2", "-W", "2", dst)
			t.Logf("ping from pod a:\n%s", out)
			require.NoError(t, err, "ping exits 0 only when replies came back")
			assert.Regexp(t, `5 packets transmitted, [45] received`, out)
		})
	}
	phase(t, "DEL both", func() { del(t, ctx, n, ps...) })
	assertVswitchClean(t, ctx, h) // also the network's loopback
	assert.Empty(t, ipamAllocations(t, h, n), "host-local allocations")
}

// oldREADMEConfig is the old Userspace CNI README's vpp-memif-ping network,
// verbatim; the harness adds only what points it at this node (NATS, node
// name, directories, host-local's dataDir).
const oldREADMEConfig = `{"type":"userspace","name":"memif-network","host":{"engine":"vpp","iftype":"memif","netType":"bridge","memif":{"role":"master","mode":"ethernet"},"bridge":{"bridgeName":"4"}},"container":{"engine":"vpp","iftype":"memif","netType":"interface","memif":{"role":"slave","mode":"ethernet"}},"ipam":{"type":"host-local","subnet":"192.168.210.0/24","routes":[{"dst":"0.0.0.0/0"}]}}`

// vppNode brings up a node with a host VPP and the vpp-adapter process for
// t. Without VPP it skips, or fails when USRSP_VPP_REQUIRED=1 (CI).
func vppNode(t *testing.T) *harness.Harness {
	t.Helper()
	skip := t.Skip
	if os.Getenv(harness.EnvVPPRequired) == "1" {
		skip = t.Fatal
	}
	if os.Geteuid() != 0 {
		skip("VPP e2e needs root (network namespaces, VPP): run `sudo make e2e`")
	}
	if r := harness.VPPMissing(); r != "" {
		skip("VPP e2e skipped: " + r)
	}
	return startNode(t, contracts.EngineVPP, "host VPP", func(h *harness.Harness) string { return h.VPP.LogTail(20) })
}

// vppPod is a pod attached to net with its own VPP configured only by
// `pod-consumer apply --engine vpp` run inside the pod.
type vppPod struct {
	*harness.Pod
	VPP *harness.VPP
	IP  string
}

// vppPods ADDs net to n new pods, starts a VPP in each and, unless
// noApply, runs `pod-consumer apply` in it.
func vppPods(t *testing.T, ctx context.Context, h *harness.Harness, net *harness.Network, n int, apply bool) []*vppPod {
	t.Helper()
	var out []*vppPod
	phase(t, "ADD+CHECK of pods, start their VPPs", func() {
		for _, p := range pods(t, ctx, h, net, n) {
			v, err := p.StartVPP(ctx)
			require.NoError(t, err)
			ip, err := p.IPv4(ifName)
			require.NoError(t, err)
			out = append(out, &vppPod{Pod: p, VPP: v, IP: ip})
		}
	})
	if apply {
		phase(t, "pod-consumer apply --engine vpp in each pod", func() {
			for _, p := range out {
				got, err := p.PodConsumer(ctx, "apply", "--engine", "vpp", "--vpp-api-socket", p.VPP.APISock)
				require.NoError(t, err)
				t.Logf("%s: pod-consumer apply: %s", p.Name, strings.TrimSpace(got))
				require.Contains(t, got, "link up")
			}
		})
	}
	return out
}

// assertPing pings to from from's VPP (vppctl in the pod): at least 4 of
// 5 replies (the first may be lost to ARP, as in the old README's sample).
func assertPing(t *testing.T, ctx context.Context, from, to *vppPod) {
	t.Helper()
	phase(t, "vppctl ping "+from.Name+" → "+to.Name, func() {
		n, out, err := from.VPP.Ping(ctx, to.IP, 5)
		require.NoError(t, err)
		t.Logf("%s# ping %s repeat 5\n%s", from.Name, to.IP, strings.TrimSpace(out))
		assert.GreaterOrEqual(t, n, 4, "replies from %s (%s)", to.Name, to.IP)
	})
}

// assertVPPGone checks that the host VPP has nothing of usrsp left (no
// interface but local0, no bridge domain, no memif socket but id 0) and no
// file of the pods is left behind.
func assertVPPGone(t *testing.T, ctx context.Context, h *harness.Harness, net *harness.Network, ps ...*vppPod) {
	t.Helper()
	assertVswitchClean(t, ctx, h)
	for _, p := range ps {
		_, err := os.Stat(p.Dir())
		assert.True(t, os.IsNotExist(err), "pod dir %s: %v (files: %v)", p.Dir(), err, filesIn(t, p.Dir(), nil))
		_, err = os.Stat(p.DeviceInfoFile(ifName))
		assert.True(t, os.IsNotExist(err), "device info of %s: %v", p.Name, err)
	}
	assert.Empty(t, filesIn(t, h.LinkDir(), nil), "links in %s", h.LinkDir())
	assert.Empty(t, ipamAllocations(t, h, net), "host-local allocations of %s", net.Name)
}

// awaitMemifConnected polls the pod VPP's `show memif` (a memif slave
// retries its connection on a timer; there is no event to wait for) until
// its interface is connected, bounded by ctx.
func awaitMemifConnected(t *testing.T, ctx context.Context, p *vppPod) {
	t.Helper()
	for {
		out, err := p.VPP.CLI(ctx, "show memif")
		require.NoError(t, err)
		if strings.Contains(out, " connected") {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: memif not connected: %v\n%s", p.Name, ctx.Err(), out)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func delVPPPods(t *testing.T, ctx context.Context, net *harness.Network, ps ...*vppPod) {
	t.Helper()
	phase(t, "DEL", func() {
		for _, p := range ps {
			require.NoError(t, p.Del(ctx, net, ifName))
		}
	})
}

// TestVPPMemifPing is the old project's VPP story through our binaries:
// libcni → userspace → NATS → vpp-adapter → host VPP, two pods each with a
// VPP configured only by `pod-consumer apply`, pinging through the host.
func TestVPPMemifPing(t *testing.T) {
	tests := []struct {
		name    string
		network func(h *harness.Harness) (*harness.Network, error)
		// warmUp pings once each way first. Routed, a packet crosses four
		// neighbour resolutions (pod a, host towards b, pod b, host towards
		// a) and VPP drops the packet that triggers each one: 1 of 5 came
		// back on a cold path here.
		warmUp bool
	}{
		{"old README vpp-memif-ping (bridge 4)", func(h *harness.Harness) (*harness.Network, error) {
			return h.NetworkJSON(oldREADMEConfig)
		}, false},
		{"netType interface (L3 on the host VPP)", func(h *harness.Harness) (*harness.Network, error) {
			return h.VPPMemifL3Network("memif-l3", "192.168.211.0/24")
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := vppNode(t)
			ctx := ctxFor(t, 2*time.Minute)
			net, err := tt.network(h)
			require.NoError(t, err)
			ps := vppPods(t, ctx, h, net, 2, true)
			if tt.warmUp {
				phase(t, "warm-up pings (neighbour resolution)", func() {
					for _, d := range [][2]*vppPod{{ps[0], ps[1]}, {ps[1], ps[0]}} {
						n, _, err := d[0].VPP.Ping(ctx, d[1].IP, 5)
						require.NoError(t, err)
						t.Logf("warm-up %s → %s: %d of 5 replies", d[0].Name, d[1].Name, n)
					}
				})
			}
			assertPing(t, ctx, ps[0], ps[1])
			assertPing(t, ctx, ps[1], ps[0])
			delVPPPods(t, ctx, net, ps...)
			assertVPPGone(t, ctx, h, net, ps...)
		})
	}
}

// TestVPPApplyWatchAndProbe: `pod-consumer apply --watch` re-applies after
// the pod's VPP is killed and restarted; the pure-Go `pod-consumer probe
// ping` in a third pod reaches a pod VPP through the host VPP; after a
// kill -9 and restart of the host VPP the adapter replays and the pods
// ping again.
func TestVPPApplyWatchAndProbe(t *testing.T) {
	h := vppNode(t)
	ctx := ctxFor(t, 2*time.Minute)
	net := requireNetwork(t)(h.VPPMemifNetwork("memif-network", "4", "192.168.210.0/24"))
	ps := vppPods(t, ctx, h, net, 2, false)
	a, b := ps[0], ps[1]

	_, err := b.PodConsumer(ctx, "apply", "--engine", "vpp", "--vpp-api-socket", b.VPP.APISock)
	require.NoError(t, err)
	watch, err := a.StartPodConsumer(ctx, "apply", "--engine", "vpp", "--watch", "--vpp-api-socket", a.VPP.APISock)
	require.NoError(t, err)
	phase(t, "apply --watch: first apply", func() {
		require.NoError(t, watch.WaitOutput(ctx, "link up"), "apply --watch output:\n%s", watch.Output())
	})
	assertPing(t, ctx, a, b)

	phase(t, "kill -9 and restart the pod VPP; apply --watch re-applies", func() {
		from := watch.OutputLen()
		require.NoError(t, a.VPP.Restart(ctx))
		require.NoError(t, watch.WaitOutputFrom(ctx, from, "link up"), "apply --watch output:\n%s", watch.Output())
		t.Logf("apply --watch after the restart:\n%s", strings.TrimSpace(watch.Output()[from:]))
	})
	assertPing(t, ctx, a, b)
	require.NoError(t, watch.Stop(syscall.SIGTERM))

	var c *harness.Pod
	phase(t, "ADD+CHECK of a probe pod (no VPP)", func() {
		c, err = h.NewPod(ctx, "pod-probe")
		require.NoError(t, err)
		_, err = c.Add(ctx, net, ifName)
		require.NoError(t, err)
		require.NoError(t, c.Check(ctx, net, ifName))
	})
	phase(t, "pod-consumer probe ping (pure Go) → pod VPP", func() {
		out, err := c.PodConsumer(ctx, "probe", "ping", b.IP, "-c", "5", "-i", "200ms", "-W", "2s")
		require.NoError(t, err, "pod-consumer probe ping exits 0 only when replies came back\n%s", out)
		t.Logf("probe ping %s:\n%s", b.IP, strings.TrimSpace(out))
		assert.GreaterOrEqual(t, strings.Count(out, "bytes from "+b.IP), 4, "replies from the pod VPP")
	})

	awaitReconciled := subscribeReconciled(t, h, contracts.EngineVPP)
	before, err := h.VPP.Interfaces(ctx)
	require.NoError(t, err)
	phase(t, "kill -9 and restart the host VPP (h.RestartVswitch)", func() { require.NoError(t, h.RestartVswitch(ctx)) })
	phase(t, "vpp-adapter replay", func() {
		awaitReconciled(ctx)
		after, err := h.VPP.Interfaces(ctx)
		require.NoError(t, err)
		assert.Len(t, after, len(before), "as many interfaces as before the restart: %v, then %v", before, after)
	})
	phase(t, "pod VPPs' memif reconnects", func() {
		for _, p := range []*vppPod{a, b} {
			awaitMemifConnected(t, ctx, p)
		}
	})
	assertPing(t, ctx, a, b)

	delVPPPods(t, ctx, net, a, b, &vppPod{Pod: c})
	assertVPPGone(t, ctx, h, net, a, b, &vppPod{Pod: c})
}

// podmanIfName is the interface name podman passes as CNI_IFNAME for a
// pod's first network.
const podmanIfName = "eth0"

// podmanMountPath is where the probe containers mount their pod's socket
// directory; the networks' podMountPath, so the pod data's socket paths
// work unchanged in the container.
const podmanMountPath = "/var/run/usrsp"

// podmanSubnet is shared by a case's memif and veth networks (one vswitch
// network); each network's host-local takes addresses from its own range.
const podmanSubnet = "10.58.0.0/24"

// networks are the case's memif network (the vswitch is the memif master,
// the pods' probes the slaves) and veth network (kernel netdevs), both on
// the same bridge and subnet.
func (c engineCase) networks(t *testing.T, h *harness.Harness) (memif, veth *harness.Network) {
	t.Helper()
	suffix := strings.ReplaceAll(string(c.engine), "-", "")
	mk := func(name string, host map[string]any, first, last string) *harness.Network {
		host["engine"], host["netType"], host["bridge"] = c.engine, contracts.NetTypeBridge, c.bridge
		return rangeNetwork(t, h, name+"-"+suffix, host, podmanSubnet, first, last)
	}
	memif = mk("podman-memif", map[string]any{"iftype": contracts.IfTypeMemif,
		"memif": map[string]any{"role": contracts.MemifRoleMaster, "mode": contracts.MemifModeEthernet}}, "10.58.0.10", "10.58.0.99")
	veth = mk("podman-veth", map[string]any{"iftype": contracts.IfTypeVeth}, "10.58.0.100", "10.58.0.199")
	return memif, veth
}

// TestPodman lets a real runtime drive the plugin (issue 12 item 5):
// Debian's podman with its CNI backend starts pods (infra container: a
// FROM-scratch pause image) on a `type: userspace` memif network,
// `pod-consumer probe` runs as a container in each pod with the pod's
// socket directory mounted, and the pods ping each other; a third pod on a
// veth network (a kernel netdev) on the same bridge pings the first with
// the kernel's ping; removing the pods leaves nothing behind. Once per
// engine: OVS-DPDK, and VPP when USRSP_VPP_BIN is set.
func TestPodman(t *testing.T) {
	pm := podmanFor(t)
	for _, c := range engineCases {
		t.Run(string(c.engine), func(t *testing.T) { testPodman(t, pm, c) })
	}
}

// podmanFor starts a private podman for the test with the pause and
// pod-consumer images built; everything goes in t.Cleanup.
func podmanFor(t *testing.T) *podmantest.Podman {
	t.Helper()
	if r := podmantest.Missing(); r != "" {
		t.Skip(r)
	}
	require.NotEmpty(t, binDir, "binaries not built")
	ctx := ctxFor(t, 2*time.Minute)
	pm, err := podmantest.New(podmantest.Config{CNIPluginDirs: []string{binDir}, Logf: t.Logf})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, pm.Close(), "removing the private podman") })
	phase(t, "build pause + images FROM scratch", func() {
		repo, err := harness.FindRepo()
		require.NoError(t, err)
		pause := filepath.Join(pm.Dir, "pause")
		require.NoError(t, podmantest.BuildPause(ctx, repo, pause))
		require.NoError(t, pm.BuildImages(ctx, pause, filepath.Join(binDir, "pod-consumer")))
	})
	return pm
}

func testPodman(t *testing.T, pm *podmantest.Podman, c engineCase) {
	h := c.node(t)
	ctx := ctxFor(t, 2*time.Minute)
	// Registered after the node's cleanup, so it runs first: pods still
	// there after a failure are torn down through CNI while NATS and the
	// adapter still run.
	t.Cleanup(func() {
		ctx := context.Background()
		if t.Failed() {
			names, _ := pm.Run(ctx, "ps", "--all", "--format", "{{.Names}}")
			for _, name := range strings.Fields(names) {
				out, _ := pm.Logs(ctx, name)
				t.Logf("container %s output:\n%s", name, out)
			}
		}
		_, err := pm.Run(ctx, "pod", "rm", "--all", "--force", "--time", "2")
		assert.NoError(t, err)
	})
	memifNet, vethNet := c.networks(t, h)
	addPodmanNetwork(t, pm, memifNet)
	addPodmanNetwork(t, pm, vethNet)

	var a, b, k *podmanPod
	phase(t, "podman pod create + start (CNI ADD) of two memif pods", func() {
		a = createPodmanPod(t, ctx, pm, h, string(c.engine)+"-a", memifNet)
		b = createPodmanPod(t, ctx, pm, h, string(c.engine)+"-b", memifNet)
	})

	phase(t, "probe serve in pod a, probe ping from pod b", func() {
		require.NoError(t, a.Start(ctx, probeContainer(h, a.Pod, "probe", "probe", "serve")))
		// serve says so once its memif is connected; ping would wait for
		// that too, but then a serve that never comes up is named.
		waitLog(t, ctx, pm, a.Name+"-probe", "answering")
		out, err := b.Run(ctx, probeContainer(h, b.Pod, "ping", "probe", "ping", a.IP, "-c", "5", "-i", "200ms", "-W", "2s"))
		t.Logf("probe ping in pod %s:\n%s", b.Name, out)
		require.NoError(t, err, "probe ping exits 0 only when replies came back")
		assert.Contains(t, out, "5 received")
	})

	phase(t, "podman pod create + start of a veth pod, kernel ping → pod a", func() {
		k = createPodmanPod(t, ctx, pm, h, string(c.engine)+"-k", vethNet)
		// The netdev podman was told about is in the pod's netns, named
		// eth0, with the result's MAC and address.
		out, err := inNetnsFile(ctx, k.Infra.SandboxKey, "ip", "-o", "addr", "show", "dev", podmanIfName)
		require.NoError(t, err, out)
		assert.Contains(t, out, "inet "+k.IP+"/24")
		out, err = inNetnsFile(ctx, k.Infra.SandboxKey, "ip", "-o", "link", "show", "dev", podmanIfName)
		require.NoError(t, err, out)
		assert.Contains(t, out, "link/ether "+k.MAC)
		out, err = inNetnsFile(ctx, k.Infra.SandboxKey, "ping", "-c", "5", "-i", "0.2", "-W", "2", a.IP)
		t.Logf("ping in pod %s:\n%s", k.Name, out)
		require.NoError(t, err, "ping exits 0 only when replies came back")
		assert.Contains(t, out, "5 packets transmitted, 5 received")
		// The replies were the probe container's: on SIGTERM it counts
		// what it answered (5 from pod b's probe, 5 from the kernel).
		_, err = pm.Run(ctx, "stop", "--time", "5", a.Name+"-probe")
		require.NoError(t, err)
		out, err = pm.Logs(ctx, a.Name+"-probe")
		require.NoError(t, err)
		assert.Contains(t, out, "and 10 echo requests", "probe serve in pod %s", a.Name)
	})

	phase(t, "podman pod rm (CNI DEL) of the three pods", func() {
		for _, pod := range []*podmanPod{a, b, k} {
			require.NoError(t, pod.Remove(ctx))
		}
	})
	for _, pod := range []*podmanPod{a, b, k} {
		assert.NoFileExists(t, pod.Infra.SandboxKey, "podman's netns of %s", pod.Name)
		assert.NoFileExists(t, libcniCache(pod.Network, pod.InfraID), "libcni's cached result of %s", pod.Name)
		assert.Empty(t, filesIn(t, podDir(h, pod.Pod), nil), "files in %s's directory", pod.Name)
	}
	assertHostVethGone(t, ctx, contracts.AttachmentKey{ContainerID: k.InfraID, IfName: podmanIfName})
	assertVswitchClean(t, ctx, h)
	assert.Empty(t, filesIn(t, h.LinkDir(), nil), "links in %s", h.LinkDir())
	for _, n := range []*harness.Network{memifNet, vethNet} {
		assert.Empty(t, ipamAllocations(t, h, n), "host-local allocations of %s", n.Name)
	}
}

// podmanPod is a started podman pod with what podman says about its one
// network.
type podmanPod struct {
	*podmantest.Pod
	Network string
	Infra   *podmantest.Infra
	IP, MAC string
}

// createPodmanPod creates and starts a pod on net and checks that podman
// took the CNI result: an address and a MAC on that network.
func createPodmanPod(t *testing.T, ctx context.Context, pm *podmantest.Podman, h *harness.Harness, name string, net *harness.Network) *podmanPod {
	t.Helper()
	pod, err := pm.CreatePod(ctx, name, net.Name)
	require.NoError(t, err)
	infra, err := pod.Infra(ctx)
	require.NoError(t, err)
	att, ok := infra.Networks[net.Name]
	require.True(t, ok, "podman has no %s network on %s: %+v", net.Name, name, infra.Networks)
	require.NotEmpty(t, att.IPAddress, "podman's IP of %s", name)
	require.NotEmpty(t, att.MacAddress, "podman's MAC of %s", name)
	t.Logf("pod %s: infra %s, netns %s, %s/%d %s", name, pod.InfraID[:12], infra.SandboxKey, att.IPAddress, att.IPPrefixLen, att.MacAddress)
	// The pod data cni-entry wrote (in <sharedDir>/<infra id[:12]>, as
	// podman passes no pod UID) agrees with what podman took.
	b, err := os.ReadFile(filepath.Join(podDir(h, pod), contracts.PodDataFileName(podmanIfName)))
	require.NoError(t, err, "pod data of %s", name)
	d, err := contracts.DecodePodData(b)
	require.NoError(t, err)
	assert.Equal(t, att.MacAddress, d.Interface.MAC, "MAC of %s: podman vs pod data", name)
	return &podmanPod{Pod: pod, Network: net.Name, Infra: infra, IP: att.IPAddress, MAC: att.MacAddress}
}

// addPodmanNetwork writes net as a podman network: cniVersion 1.0.0
// (podman 4.3's libcni speaks up to 1.0.0) and podMountPath
// podmanMountPath, where the probe containers mount the pod's directory.
func addPodmanNetwork(t *testing.T, pm *podmantest.Podman, net *harness.Network) {
	t.Helper()
	var list map[string]any
	require.NoError(t, json.Unmarshal(net.List.Bytes, &list))
	list["cniVersion"] = "1.0.0"
	for _, p := range list["plugins"].([]any) {
		p.(map[string]any)["podMountPath"] = podmanMountPath
	}
	b, err := json.Marshal(list)
	require.NoError(t, err)
	require.NoError(t, pm.AddNetwork(net.Name, b))
	t.Cleanup(func() { assert.NoError(t, pm.RemoveNetwork(net.Name)) })
}

// podDir is the pod's socket directory on the host. podman passes no
// K8S_POD_UID, so cni-entry uses <sharedDir>/<CNI_CONTAINERID[:12]>, and
// the CNI container id is the infra container's.
func podDir(h *harness.Harness, pod *podmantest.Pod) string {
	return filepath.Join(h.SharedDir(), pod.InfraID[:12])
}

// probeContainer is `pod-consumer <args>` as container <pod>-<suffix> in
// the pod, with the pod's directory mounted at podmanMountPath.
func probeContainer(h *harness.Harness, pod *podmantest.Pod, suffix string, args ...string) podmantest.Container {
	return podmantest.Container{
		Name:   pod.Name + "-" + suffix,
		Image:  podmantest.PodConsumerImage,
		Mounts: map[string]string{podDir(h, pod): podmanMountPath},
		Args:   append(args, "--annotations", ""),
	}
}

// waitLog polls a container's output until it contains want.
func waitLog(t *testing.T, ctx context.Context, pm *podmantest.Podman, name, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		out, err := pm.Logs(ctx, name)
		if err == nil && strings.Contains(out, want) {
			return
		}
		select {
		case <-ctx.Done():
			require.Failf(t, "container output", "%s never said %q: %v\n%s", name, want, err, out)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// libcniCache is where podman's libcni caches an attachment's result.
func libcniCache(network, containerID string) string {
	return filepath.Join("/var/lib/cni/results", network+"-"+containerID+"-"+podmanIfName)
}

// connectArg makes this test binary, exec'd as the pod's app, a plain
// vhost-user client: connect(2) to the socket and exit 0, else print why
// and exit 1 (see init).
const connectArg = "usrsp-e2e-connect"

func init() {
	testkit.Subcommand(connectArg, func(args []string) error {
		c, err := net.DialTimeout("unix", args[0], 5*time.Second)
		if err != nil {
			return err
		}
		_ = c.Close()
		fmt.Println("connected")
		return nil
	})
}

// nonRoot runs programs in pods as the unprivileged app: after the pod's
// mount (harness.Pod.Command, as root), setpriv drops to testkit.AppUID
// with AppGID as its only group. The binaries are copied where that uid
// can execute them.
type nonRoot struct {
	pc, self string // pod-consumer and this test binary
	mount    string // the pods' podMountPath
}

func newNonRoot(t *testing.T, h *harness.Harness) nonRoot {
	t.Helper()
	self := testkit.ExecutableCopy(t)
	n := nonRoot{pc: filepath.Join(filepath.Dir(self), "pod-consumer"), self: self, mount: h.PodMountPath()}
	testkit.CopyExecutable(t, filepath.Join(h.Bin, "pod-consumer"), n.pc)
	// The pod's app reaches its mount through the harness directory (a
	// container sees it at its root).
	require.NoError(t, os.Chmod(h.Dir, 0o711))
	return n
}

func (n nonRoot) argv(name string, args ...string) []string {
	g := strconv.Itoa(testkit.AppGID)
	return append([]string{"--reuid=" + strconv.Itoa(testkit.AppUID), "--regid=" + g, "--groups=" + g, "--", name}, args...)
}

// podConsumer runs pod-consumer as the app in p.
func (n nonRoot) podConsumer(ctx context.Context, p *harness.Pod, args ...string) (string, error) {
	return p.Run(ctx, "setpriv", n.argv(n.pc, append(args, "--dir", n.mount, "--annotations", "")...)...)
}

// startPodConsumer starts pod-consumer as the app in p.
func (n nonRoot) startPodConsumer(ctx context.Context, p *harness.Pod, args ...string) (*harness.Proc, error) {
	return p.Start(ctx, "setpriv", n.argv(n.pc, append(args, "--dir", n.mount, "--annotations", "")...)...)
}

// connect connects to the socket file in p's directory as the app.
func (n nonRoot) connect(ctx context.Context, p *harness.Pod, file string) (string, error) {
	return p.Run(ctx, "setpriv", n.argv(n.self, connectArg, filepath.Join(n.mount, file))...)
}

// TestNonRootPod (issue 11): with podAccess, an app running as an
// unprivileged uid in the group reads its pod data (`pod-consumer list`),
// pings through OVS-DPDK memif with `pod-consumer probe`, and connects to
// a vhost-user socket OVS created (dpdkvhostuser, hard-linked into the pod
// directory), also after ovs-vswitchd was killed and re-created every
// socket; without podAccess the same uid is refused.
func TestNonRootPod(t *testing.T) {
	h := node(t)
	ctx := ctxFor(t, 4*time.Minute)
	app := newNonRoot(t, h)
	access := map[string]any{"group": strconv.Itoa(testkit.AppGID), "mode": "0660"}
	memif := map[string]any{"engine": "ovs-dpdk", "iftype": "memif", "netType": "bridge",
		"memif": map[string]any{"role": "master", "mode": "ethernet"}, "bridge": map[string]any{"bridgeName": "br-nonroot"}}
	vhost := map[string]any{"engine": "ovs-dpdk", "iftype": "vhostuser", "netType": "bridge",
		"vhost": map[string]any{"mode": "server"}, "bridge": map[string]any{"bridgeName": "br-nonroot-v"}}
	network := func(name, subnet string, host map[string]any, access map[string]any) *harness.Network {
		plugin := map[string]any{"type": "userspace", "name": name, "host": host,
			"ipam": map[string]any{"type": "host-local", "subnet": subnet}}
		if access != nil {
			plugin["podAccess"] = access
		}
		return requireNetwork(t)(h.NetworkFrom(plugin))
	}
	mnet := network("nonroot-memif", "10.71.0.0/24", memif, access)
	vnet := network("nonroot-vhost", "10.72.0.0/24", vhost, access)
	plain := network("root-memif", "10.73.0.0/24", memif, nil)

	var mps, vps, cps []*harness.Pod
	phase(t, "ADD memif pair, vhost-user server pod, a pod without podAccess", func() {
		mps = pods(t, ctx, h, mnet, 2)
		vps = pods(t, ctx, h, vnet, 1)
		cps = pods(t, ctx, h, plain, 1)
	})
	all := append(append(append([]*harness.Pod(nil), mps...), vps...), cps...)
	servedIP, err := mps[0].IPv4(ifName)
	require.NoError(t, err)

	asApp := func(stage string) {
		t.Helper()
		phase(t, "as uid "+strconv.Itoa(testkit.AppUID)+": pod-consumer list "+stage, func() {
			for _, p := range append(mps, vps...) {
				out, err := app.podConsumer(ctx, p, "list")
				require.NoError(t, err, out)
				assert.Contains(t, out, ifName, "pod %s lists its interface", p.Name)
			}
		})
		phase(t, "as uid "+strconv.Itoa(testkit.AppUID)+": probe ping over memif "+stage, func() {
			serve, err := app.startPodConsumer(ctx, mps[0], "probe", "serve")
			require.NoError(t, err)
			require.NoError(t, serve.WaitOutput(ctx, "answering ARP and ping"), serve.Output())
			out, err := app.podConsumer(ctx, mps[1], "probe", "ping", servedIP, "-c", "3", "-i", "100ms", "-W", "2s")
			require.NoError(t, err, "probe ping as a non-root app\n%s", out)
			assert.Contains(t, out, "3 packets transmitted, 3 received")
			require.NoError(t, serve.Stop(syscall.SIGTERM))
		})
		phase(t, "as uid "+strconv.Itoa(testkit.AppUID)+": connect to the vhost-user socket "+stage, func() {
			out, err := app.connect(ctx, vps[0], "vhostuser-"+ifName+".sock")
			require.NoError(t, err, out)
			assert.Contains(t, out, "connected")
		})
	}
	asApp("after ADD")

	phase(t, "without podAccess the same uid is refused", func() {
		out, err := app.podConsumer(ctx, cps[0], "list")
		require.Error(t, err, "pod-consumer list read a root-only pod directory:\n%s", out)
		assert.Contains(t, err.Error(), "permission denied")
		out, err = app.podConsumer(ctx, cps[0], "probe", "ping", servedIP, "-c", "1", "-W", "1s")
		require.Error(t, err, out)
		// The socket itself refuses too, even where the directory lets the app through.
		sock := filepath.Join(cps[0].Dir(), "memif-"+ifName+".sock")
		fi, err := os.Stat(sock)
		require.NoError(t, err)
		assert.Zero(t, fi.Mode().Perm()&0o002, "the memif socket of a root network is not writable by others: %v", fi.Mode())
	})

	awaitReconciled := subscribeReconciled(t, h, h.Engine())
	before := portsOf(t, h, all)
	phase(t, "kill -9 and restart ovs-vswitchd: every socket is new", func() {
		require.NoError(t, h.OVS.RestartVswitchd(ctx, true))
		awaitReconciled(ctxFor(t, 30*time.Second))
		require.NoError(t, h.AwaitPortsReady(ctx, before...))
	})
	for _, p := range append(mps, vps...) {
		assertSocketAccess(t, p.Dir())
	}
	asApp("after the ovs-vswitchd restart")

	phase(t, "DEL all", func() {
		del(t, ctx, mnet, mps...)
		del(t, ctx, vnet, vps...)
		del(t, ctx, plain, cps...)
	})
	assertGone(t, ctx, h, mnet, mps...)
	assertGone(t, ctx, h, vnet, vps...)
	assertGone(t, ctx, h, plain, cps...)
}

// assertSocketAccess checks the group and mode of every socket in dir.
func assertSocketAccess(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	n := 0
	for _, e := range entries {
		fi, err := os.Lstat(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		if fi.Mode()&os.ModeSocket == 0 {
			continue
		}
		n++
		assert.Equal(t, uint32(testkit.AppGID), fi.Sys().(*syscall.Stat_t).Gid, "group of %s", e.Name())
		assert.Equal(t, os.FileMode(0o660), fi.Mode().Perm(), "mode of %s", e.Name())
	}
	assert.NotZero(t, n, "sockets in %s: %s", dir, strings.Join(names(entries), " "))
}

func names(entries []os.DirEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
