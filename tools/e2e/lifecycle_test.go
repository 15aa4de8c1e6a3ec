//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/tools/harness"
)

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

	phase(t, "probe ping", func() {
		serve, err := ps[0].StartPodConsumer(ctx, "probe", "serve")
		require.NoError(t, err)
		require.NoError(t, serve.WaitOutput(ctx, "answering ARP and ping"), serve.Output())
		out, err := ps[1].PodConsumer(ctx, "probe", "ping", servedIP, "-c", "5", "-i", "100ms", "-W", "2s")
		require.NoError(t, err, "pod-consumer probe ping exits 0 only when replies came back\n%s", out)
		t.Logf("probe ping:\n%s", out)
		assert.Contains(t, out, "5 packets transmitted, 5 received, 0% packet loss")
		assert.Equal(t, 5, strings.Count(out, "bytes from "+servedIP))
		require.NoError(t, serve.Stop(syscall.SIGTERM))
		assert.Contains(t, serve.Output(), "5 echo requests")
	})
	phase(t, "probe DEL", func() { del(t, ctx, net, ps...) })
	assertGone(t, ctx, h, net, ps...)
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
