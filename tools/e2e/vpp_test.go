//go:build e2e

package e2e

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/tools/harness"
)

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
