//go:build e2e

package e2e

import (
	"context"
	"net"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/tools/harness"
)

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
			// as the routed memif case in vpp_test.go does.
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
