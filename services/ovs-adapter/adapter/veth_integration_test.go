package adapter_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/services/ovs-adapter/ovs"
)

// vethPod is a network namespace with the pod end of a veth pair, made
// the way cni-entry makes it for iftype veth; removed when the test ends.
type vethPod struct {
	key   contracts.AttachmentKey
	netns string
	host  string // host end, contracts.HostVethName(key)
}

func newVethPod(t *testing.T, k contracts.AttachmentKey, cidr string) vethPod {
	t.Helper()
	p := vethPod{key: k, netns: "usrsp-ot-" + k.ContainerID, host: contracts.HostVethName(k)}
	ip := func(args ...string) {
		t.Helper()
		out, err := exec.Command("ip", args...).CombinedOutput()
		require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
	}
	ip("netns", "add", p.netns)
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", p.host).Run() // gone with the netns if it was still paired
		_ = exec.Command("ip", "netns", "del", p.netns).Run()
	})
	ip("link", "add", p.host, "type", "veth", "peer", "name", k.IfName, "netns", p.netns)
	ip("link", "set", p.host, "up")
	ip("-n", p.netns, "addr", "add", cidr, "dev", k.IfName)
	ip("-n", p.netns, "link", "set", k.IfName, "up")
	return p
}

func vethReq(k contracts.AttachmentKey) *contracts.AttachRequest {
	return &contracts.AttachRequest{Key: k, Network: "net-a", Interface: contracts.HostInterface{
		IfType: contracts.IfTypeVeth, NetType: contracts.NetTypeBridge,
		Veth:   &contracts.VethSpec{HostIfName: contracts.HostVethName(k)},
		Bridge: &contracts.BridgeSpec{Name: "br-test"},
	}}
}

// TestRealOVSVeth: two kernel pods' veths become OVS system ports on one
// netdev (userspace datapath) bridge and ping each other through it;
// CHECK sees the ports; DETACH removes the ports and never the netdevs
// (cni-entry made them); GC by external_ids finds a system port.
func TestRealOVSVeth(t *testing.T) {
	inst, e := startReal(t)
	ctx := context.Background()
	a := newVethPod(t, key("vetha", "net1"), "10.77.0.1/24")
	b := newVethPod(t, key("vethb", "net1"), "10.77.0.2/24")

	for _, p := range []vethPod{a, b} {
		resp, err := e.a.Attach(ctx, vethReq(p.key))
		require.NoError(t, err)
		assert.Equal(t, p.host, resp.Attachment.HostIfName)
		assert.Equal(t, ovs.TypeSystem, vsctl(t, inst, "get", "Interface", p.host, "type"))
		assert.NotEqual(t, "-1", vsctl(t, inst, "get", "Interface", p.host, "ofport"))
		_, err = e.a.Check(ctx, &contracts.CheckRequest{Key: p.key, Network: "net-a", Interface: vethReq(p.key).Interface})
		require.NoError(t, err)
	}
	out, err := exec.Command("ip", "netns", "exec", a.netns, "ping", "-c", "3", "-i", "0.2", "-W", "5", "10.77.0.2").CombinedOutput()
	require.NoError(t, err, "ping through OVS: %s", out)
	assert.Contains(t, string(out), "3 received")

	_, err = e.a.Attach(ctx, vethReq(a.key))
	require.NoError(t, err, "a replay is success")

	other := vethReq(key("vethc", "net1"))
	other.Interface.Veth.HostIfName = a.host
	_, err = e.a.Attach(ctx, other)
	assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err), "a veth not named after its own key is refused")

	resp, err := e.a.Detach(ctx, &contracts.DetachRequest{Key: a.key})
	require.NoError(t, err)
	assert.True(t, resp.Removed)
	ports, err := e.ovs.Ports(ctx, []string{a.host})
	require.NoError(t, err)
	assert.Empty(t, ports)
	require.NoError(t, exec.Command("ip", "link", "show", a.host).Run(), "the netdev is cni-entry's: left alone")

	gc, err := e.a.GC(ctx, &contracts.GCRequest{Network: "net-a"})
	require.NoError(t, err)
	assert.Equal(t, []contracts.AttachmentKey{b.key}, gc.Removed)
	owned, err := e.ovs.OwnedPorts(ctx)
	require.NoError(t, err)
	assert.Empty(t, owned)
}
