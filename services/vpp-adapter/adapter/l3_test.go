package adapter_test

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/arp"
	"go.fd.io/govpp/binapi/fib_types"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/ip6_nd"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/vpp/vpptest"
	"usrsp.dev/services/vpp-adapter/adapter"
)

// l3Pod is an L3 attachment the way host-local IPAM hands them out: every
// pod of network l3-net in 10.1.1.0/24 and fd00:1::/64 with the same
// gateways.
func l3Pod(id string, host int) *contracts.AttachRequest {
	return &contracts.AttachRequest{Key: contracts.AttachmentKey{ContainerID: id, IfName: "net1"}, Network: "l3-net",
		Interface: contracts.HostInterface{
			IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeInterface,
			SocketPath: podBase + "/" + id + "/memif-net1.sock",
			Memif:      &contracts.MemifSpec{Role: contracts.MemifRoleMaster, Mode: contracts.MemifModeEthernet},
			IPs: []contracts.IPConfig{
				{Address: "10.1.1." + itoa(host) + "/24", Gateway: "10.1.1.1"},
				{Address: "fd00:1::" + itoa(host) + "/64", Gateway: "fd00:1::1"},
			},
		}}
}

func l3Request() *contracts.AttachRequest {
	r := l3Pod(key.ContainerID, 5)
	r.Key = key
	return r
}

func itoa(n int) string { return strconv.Itoa(n) }

var (
	memifHead = []string{"memif_socket_filename_dump", "memif_socket_filename_add_del_v2", "memif_create_v2", "sw_interface_tag_add_del"}
	podL3     = []string{"sw_interface_set_unnumbered", "proxy_arp_intfc_enable_disable", "sw_interface_ip6_enable_disable", "ip6nd_proxy_enable_disable",
		"ip_route_add_del", "ip_route_add_del", "sw_interface_set_flags", "sw_interface_dump"}
	podL3Down = []string{"sw_interface_dump", "ip_route_add_del", "ip_route_add_del", "proxy_arp_intfc_enable_disable",
		"ip6nd_proxy_enable_disable", "sw_interface_ip6_enable_disable", "sw_interface_set_unnumbered", "memif_delete"}
	memifSocketRelease = []string{"memif_socket_filename_dump", "memif_dump", "memif_socket_filename_add_del_v2"}
)

func cat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestL3SharedSubnet(t *testing.T) {
	h := newHarness(t)
	c := ctx(t)
	podA, podB := l3Pod("aaaa", 5), l3Pod("bbbb", 6)
	loopTag := adapter.LoopbackTag("l3-net", 0)

	// The first pod creates the network's loopback with the gateways.
	_, err := h.a.Attach(c, podA)
	require.NoError(t, err)
	calls := h.fake.Messages()
	require.Equal(t, cat(memifHead,
		[]string{"sw_interface_dump", "create_loopback", "sw_interface_tag_add_del", "sw_interface_set_flags",
			"sw_interface_add_del_address", "sw_interface_add_del_address", "proxy_arp_add_del"},
		podL3), names(calls))
	const memifA, loop = 1, 2
	assert.Equal(t, interfaces.SwInterfaceTagAddDel{IsAdd: true, SwIfIndex: loop, Tag: loopTag}, *msg[*interfaces.SwInterfaceTagAddDel](t, calls, 6))
	assert.Equal(t, interfaces.SwInterfaceSetFlags{SwIfIndex: loop, Flags: 1}, *msg[*interfaces.SwInterfaceSetFlags](t, calls, 7), "admin up before the addresses")
	gw4 := msg[*interfaces.SwInterfaceAddDelAddress](t, calls, 8)
	assert.Equal(t, []any{uint32(loop), true, "10.1.1.1/24"}, []any{uint32(gw4.SwIfIndex), gw4.IsAdd, gw4.Prefix.String()})
	assert.Equal(t, "fd00:1::1/64", msg[*interfaces.SwInterfaceAddDelAddress](t, calls, 9).Prefix.String())
	proxy := msg[*arp.ProxyArpAddDel](t, calls, 10)
	assert.True(t, proxy.IsAdd)
	assert.Equal(t, "table 0 10.1.1.1-10.1.1.254", rangeOf(proxy.Proxy))
	assert.Equal(t, interfaces.SwInterfaceSetUnnumbered{SwIfIndex: loop, UnnumberedSwIfIndex: memifA, IsAdd: true},
		*msg[*interfaces.SwInterfaceSetUnnumbered](t, calls, 11))
	assert.Equal(t, arp.ProxyArpIntfcEnableDisable{SwIfIndex: memifA, Enable: true}, *msg[*arp.ProxyArpIntfcEnableDisable](t, calls, 12))
	assert.Equal(t, ip.SwInterfaceIP6EnableDisable{SwIfIndex: memifA, Enable: true}, *msg[*ip.SwInterfaceIP6EnableDisable](t, calls, 13),
		"VPP does not enable IPv6 on an unnumbered interface by itself")
	assert.Equal(t, ip6_nd.IP6ndProxyEnableDisable{SwIfIndex: memifA, IsEnable: true}, *msg[*ip6_nd.IP6ndProxyEnableDisable](t, calls, 14))
	r4 := msg[*ip.IPRouteAddDel](t, calls, 15)
	assert.True(t, r4.IsAdd)
	assert.Equal(t, "10.1.1.5/32", r4.Route.Prefix.String())
	assert.Equal(t, []fib_types.FibPath{{SwIfIndex: memifA, Weight: 1, Proto: fib_types.FIB_API_PATH_NH_PROTO_IP4}}, r4.Route.Paths,
		"an attached host route: no next-hop address, so VPP flags it attached (ARP from the pod needs that)")
	assert.Equal(t, "fd00:1::5/128", msg[*ip.IPRouteAddDel](t, calls, 16).Route.Prefix.String())

	// The second pod in the same subnet reuses the loopback: no address
	// twice, so VPP has no overlapping prefix to refuse.
	h.fake.Calls()
	_, err = h.a.Attach(c, podB)
	require.NoError(t, err)
	calls = h.fake.Messages()
	require.Equal(t, cat(memifHead,
		[]string{"sw_interface_dump", "ip_address_dump", "ip_address_dump", "proxy_arp_add_del"},
		podL3), names(calls))
	const memifB = 3
	assert.False(t, msg[*ip.IPAddressDump](t, calls, 5).IsIPv6)
	assert.True(t, msg[*ip.IPAddressDump](t, calls, 6).IsIPv6)
	assert.Equal(t, interfaces.SwInterfaceSetUnnumbered{SwIfIndex: loop, UnnumberedSwIfIndex: memifB, IsAdd: true},
		*msg[*interfaces.SwInterfaceSetUnnumbered](t, calls, 8))
	ifs := h.fake.Snapshot()
	assert.Equal(t, []string{"10.1.1.1/24", "fd00:1::1/64"}, ifs["loop0"].Addresses)
	assert.Equal(t, uint32(loop), ifs["memif1/0"].UnnumberedTo)
	assert.Equal(t, uint32(loop), ifs["memif2/0"].UnnumberedTo)
	assert.Empty(t, ifs["memif2/0"].Addresses)
	_, _, routes := h.fake.State()
	assert.Equal(t, []string{"table 0 10.1.1.5/32 via 1", "table 0 10.1.1.6/32 via 3", "table 0 fd00:1::5/128 via 1", "table 0 fd00:1::6/128 via 3"}, routes)

	// Detaching the first pod keeps the loopback: the second needs it.
	h.fake.Calls()
	_, err = h.a.Detach(c, &contracts.DetachRequest{Key: podA.Key})
	require.NoError(t, err)
	calls = h.fake.Messages()
	require.Equal(t, cat(podL3Down, memifSocketRelease), names(calls))
	assert.False(t, msg[*ip.IPRouteAddDel](t, calls, 1).IsAdd)
	assert.Equal(t, arp.ProxyArpIntfcEnableDisable{SwIfIndex: memifA}, *msg[*arp.ProxyArpIntfcEnableDisable](t, calls, 3))
	assert.Equal(t, interfaces.SwInterfaceSetUnnumbered{SwIfIndex: loop, UnnumberedSwIfIndex: memifA}, *msg[*interfaces.SwInterfaceSetUnnumbered](t, calls, 6))
	assert.Contains(t, h.fake.Snapshot(), "loop0")

	// Detaching the last pod removes the loopback and the proxy range.
	h.fake.Calls()
	_, err = h.a.Detach(c, &contracts.DetachRequest{Key: podB.Key})
	require.NoError(t, err)
	calls = h.fake.Messages()
	require.Equal(t, cat(podL3Down, []string{"sw_interface_dump", "delete_loopback", "proxy_arp_add_del"}, memifSocketRelease), names(calls))
	assert.Equal(t, interfaces.DeleteLoopback{SwIfIndex: loop}, *msg[*interfaces.DeleteLoopback](t, calls, 9))
	assert.False(t, msg[*arp.ProxyArpAddDel](t, calls, 10).IsAdd)
	assert.NotContains(t, h.fake.Snapshot(), "loop0")
	assert.Empty(t, h.fake.ProxyRanges())
	_, _, routes = h.fake.State()
	assert.Empty(t, routes)
}

func TestL3TablePerNetwork(t *testing.T) {
	h := newHarness(t, tablePerNetwork)
	_, calls := h.attach(t, l3Request())
	require.Equal(t, cat(memifHead,
		[]string{"sw_interface_dump", "create_loopback", "sw_interface_tag_add_del",
			"ip_table_add_del", "sw_interface_set_table", "ip_table_add_del", "sw_interface_set_table", "sw_interface_set_flags",
			"sw_interface_add_del_address", "sw_interface_add_del_address", "proxy_arp_add_del",
			"sw_interface_set_table", "sw_interface_set_table"}, // the pod interface, before it borrows the loopback's addresses
		podL3), names(calls))
	table := adapter.TableID("l3-net")
	assert.NotZero(t, table)
	assert.Equal(t, ip.IPTable{TableID: table, Name: "usrsp:l3-net"}, msg[*ip.IPTableAddDel](t, calls, 7).Table)
	assert.Equal(t, interfaces.SwInterfaceSetTable{SwIfIndex: 2, VrfID: table}, *msg[*interfaces.SwInterfaceSetTable](t, calls, 8))
	assert.True(t, msg[*ip.IPTableAddDel](t, calls, 9).Table.IsIP6)
	assert.Equal(t, interfaces.SwInterfaceSetTable{SwIfIndex: 2, IsIPv6: true, VrfID: table}, *msg[*interfaces.SwInterfaceSetTable](t, calls, 10))
	assert.Equal(t, "table "+utoa(table)+" 10.1.1.1-10.1.1.254", rangeOf(msg[*arp.ProxyArpAddDel](t, calls, 14).Proxy))
	assert.Equal(t, interfaces.SwInterfaceSetTable{SwIfIndex: 1, VrfID: table}, *msg[*interfaces.SwInterfaceSetTable](t, calls, 15))
	assert.Equal(t, interfaces.SwInterfaceSetTable{SwIfIndex: 1, IsIPv6: true, VrfID: table}, *msg[*interfaces.SwInterfaceSetTable](t, calls, 16))
	assert.Equal(t, table, msg[*ip.IPRouteAddDel](t, calls, 21).Route.TableID)
	assert.Equal(t, adapter.LoopbackTag("l3-net", table), h.fake.Snapshot()["loop0"].Tag)

	// Another network with the same subnet gets a loopback in its own table.
	other := l3Pod("cccc", 7)
	other.Network = "l3-other"
	_, err := h.a.Attach(ctx(t), other)
	require.NoError(t, err)
	assert.Equal(t, []string{"10.1.1.1/24", "fd00:1::1/64"}, h.fake.Snapshot()["loop1"].Addresses)
}

func TestL3SameSubnetTwoNetworksInOneTableConflicts(t *testing.T) {
	h := newHarness(t)
	_, err := h.a.Attach(ctx(t), l3Pod("aaaa", 5))
	require.NoError(t, err)
	other := l3Pod("cccc", 7)
	other.Network = "l3-other"
	h.fake.Calls()
	_, err = h.a.Attach(ctx(t), other)
	require.Error(t, err)
	assert.Equal(t, contracts.CodeConflict, contracts.CodeOf(err), "%v", err)
	assert.Contains(t, err.Error(), "10.1.1.1/24")
	calls := h.fake.Calls()
	i := indexOf(calls, "sw_interface_add_del_address")
	require.GreaterOrEqual(t, i, 0)
	assert.Equal(t, []string{"sw_interface_dump", "delete_loopback", "memif_delete", "memif_socket_filename_add_del_v2"},
		calls[i+1:], "undo: the new loopback goes, then the memif and its socket; the proxy range stays: l3-net uses it")
	assert.NotContains(t, h.fake.Snapshot(), "loop1")
	assert.Equal(t, []string{"table 0 10.1.1.1-10.1.1.254"}, h.fake.ProxyRanges())
}

func TestL3ReplayAfterVPPRestart(t *testing.T) {
	fake, a, evs := looped(t, t.TempDir())
	evs.WaitFor(t, contracts.EventReconciled)
	c := ctx(t)
	for _, r := range []*contracts.AttachRequest{l3Pod("aaaa", 5), l3Pod("bbbb", 6)} {
		_, err := a.Attach(c, r)
		require.NoError(t, err)
	}

	// VPP restarts; its startup config brings a loopback of the operator's
	// and a stale one of ours (a network nobody attaches to any more).
	fake.Restart()
	fake.AddInterface(vpptest.Interface{Name: "loop7", DevType: "Loopback", Tag: "operator", Addresses: []string{"192.0.2.1/24"}})
	fake.AddInterface(vpptest.Interface{Name: "loop8", DevType: "Loopback", Tag: adapter.LoopbackTag("gone-net", 0)})
	ev := evs.WaitFor(t, contracts.EventReconciled)
	assert.Contains(t, ev.Message, "desired 2, present 0, recreated 2, failed 0, stale removed 0, bridge domains removed 0, loopbacks removed 1")

	ifs := fake.Snapshot()
	assert.Equal(t, "operator", ifs["loop7"].Tag, "unowned loopback untouched")
	assert.NotContains(t, ifs, "loop8", "stale owned loopback removed")
	var loops []vpptest.Interface
	for _, i := range ifs {
		if i.Tag == adapter.LoopbackTag("l3-net", 0) {
			loops = append(loops, i)
		}
	}
	require.Len(t, loops, 1, "one loopback for the network, recreated once")
	assert.Equal(t, []string{"10.1.1.1/24", "fd00:1::1/64"}, loops[0].Addresses)
	for _, k := range []string{"aaaa", "bbbb"} {
		var pod *vpptest.Interface
		for _, i := range ifs {
			if i.Tag == adapter.Tag(contracts.AttachmentKey{ContainerID: k, IfName: "net1"}) {
				pod = &i
			}
		}
		require.NotNil(t, pod, "%s recreated", k)
		assert.NotZero(t, pod.UnnumberedTo)
		assert.True(t, pod.ProxyARP)
		assert.True(t, pod.NDProxy)
		assert.True(t, pod.Up)
	}
	_, _, routes := fake.State()
	assert.Len(t, routes, 4)
	assert.Equal(t, []string{"table 0 10.1.1.1-10.1.1.254"}, fake.ProxyRanges())
}

func TestMTU(t *testing.T) {
	h := newHarness(t)
	c := ctx(t)
	req := memifBridge(4)
	req.Interface.MTU = 9000
	_, err := h.a.Attach(c, req)
	require.NoError(t, err)
	calls := h.fake.Messages()
	require.Equal(t, []string{
		"memif_socket_filename_dump", "memif_socket_filename_add_del_v2", "memif_create_v2", "sw_interface_tag_add_del",
		"sw_interface_set_mtu", "bridge_domain_dump", "bridge_domain_add_del_v2",
		"sw_interface_set_l2_bridge", "sw_interface_set_flags", "sw_interface_dump",
	}, names(calls))
	assert.Equal(t, interfaces.SwInterfaceSetMtu{SwIfIndex: 1, Mtu: []uint32{9000, 9000, 9000, 9000}}, *msg[*interfaces.SwInterfaceSetMtu](t, calls, 4),
		"L3, IPv4, IPv6 and MPLS MTU")

	_, err = h.a.Check(c, &contracts.CheckRequest{Key: key, Network: req.Network, Interface: req.Interface})
	require.NoError(t, err)
	require.NoError(t, h.client.SetMTU(c, 1, 1500)) // someone changes it behind the adapter's back
	_, err = h.a.Check(c, &contracts.CheckRequest{Key: key, Network: req.Network, Interface: req.Interface})
	assert.Equal(t, contracts.CodeMismatch, contracts.CodeOf(err))
	assert.Contains(t, err.Error(), "MTU 1500")

	bad := memifBridge(4)
	bad.Key.IfName, bad.Interface.MTU = "net9", 20
	_, err = h.a.Attach(c, bad)
	assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err))
	assert.Contains(t, err.Error(), "interface.mtu")
}

func TestL3VPPRefusesUnnumbered(t *testing.T) {
	h := newHarness(t)
	h.fake.FailNext("sw_interface_set_unnumbered", api.INVALID_SW_IF_INDEX_2)
	_, err := h.a.Attach(ctx(t), l3Request())
	require.Error(t, err)
	assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err))
	calls := h.fake.Calls()
	i := indexOf(calls, "sw_interface_set_unnumbered")
	assert.Equal(t, []string{"sw_interface_dump", "delete_loopback", "proxy_arp_add_del", "memif_delete", "memif_socket_filename_add_del_v2"}, calls[i+1:],
		"undo in reverse: release the network (last user), then the memif and its socket")
	assert.Empty(t, h.fake.ProxyRanges())
	assert.Len(t, h.fake.Snapshot(), 1, "only local0 left")
}

func rangeOf(p arp.ProxyArp) string {
	return "table " + utoa(p.TableID) + " " + p.Low.String() + "-" + p.Hi.String()
}

func utoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }
