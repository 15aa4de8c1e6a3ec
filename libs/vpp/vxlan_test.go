package vpp_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/libs/vpp"
	"usrsp.dev/libs/vpp/vpptest"
)

// TestTunnels runs the overlay's operations on the fake and, when one can
// be started, on a real VPP: the fake's answers must be VPP's.
func TestTunnels(t *testing.T) {
	vpps := []struct {
		name string
		dial func(t *testing.T) *vpp.Client
	}{
		{"fake", func(t *testing.T) *vpp.Client { _, c := newFake(t); return c }},
		{"real", func(t *testing.T) *vpp.Client {
			v := vpptest.StartVPP(t, "vxlan", 1)
			_, c := vpptest.Connect(t, v.APISock)
			return c
		}},
	}
	for _, v := range vpps {
		t.Run(v.name, func(t *testing.T) {
			c := v.dial(t)
			src, dst := netip.MustParseAddr("10.231.0.1"), netip.MustParseAddr("10.231.0.2")
			l2cfg := vpp.TunnelConfig{Src: src, Dst: dst, Port: 4789, VNI: 5001}
			l3cfg := vpp.TunnelConfig{Src: src, Dst: dst, Port: 4789, VNI: 5002, L3: true}
			l2next, err := c.DecapNext(ctx(t), l2cfg)
			require.NoError(t, err)
			again, err := c.DecapNext(ctx(t), l2cfg)
			require.NoError(t, err)
			assert.Equal(t, l2next, again, "add_node_next is idempotent")
			l3next, err := c.DecapNext(ctx(t), l3cfg)
			require.NoError(t, err)
			assert.NotEqual(t, l2next, l3next)

			l2sw, err := c.CreateTunnel(ctx(t), l2cfg)
			require.NoError(t, err)
			l3sw, err := c.CreateTunnel(ctx(t), l3cfg)
			require.NoError(t, err)
			_, err = c.CreateTunnel(ctx(t), l2cfg)
			require.Error(t, err, "a second tunnel with the same ends and VNI")

			tuns, err := c.Tunnels(ctx(t))
			require.NoError(t, err)
			require.Len(t, tuns, 2)
			assert.Equal(t, vpp.Tunnel{SwIfIndex: l2sw, Src: src, Dst: dst, SrcPort: 4789, DstPort: 4789, VNI: 5001, DecapNextIndex: l2next}, tuns[0])
			assert.Equal(t, l3next, tuns[1].DecapNextIndex)

			_, err = c.AddBridgeDomain(ctx(t), 31, "usrsp")
			require.NoError(t, err)
			require.NoError(t, c.JoinBridge(ctx(t), l2sw, 31, 1))
			bds, err := c.BridgeDomains(ctx(t), 31)
			require.NoError(t, err)
			require.Len(t, bds, 1)
			assert.Contains(t, bds[0].Ports, vpp.BridgePort{SwIfIndex: l2sw, SHG: 1})
			// A VLAN network's tunnel is an access port of its VLAN.
			require.NoError(t, c.SetAccessVLAN(ctx(t), l2sw, 30, true))
			ifc, found, err := c.Interface(ctx(t), l2sw)
			require.NoError(t, err)
			require.True(t, found)
			assert.Equal(t, uint32(30), ifc.Rewrite.AccessVLAN())
			require.NoError(t, c.SetAccessVLAN(ctx(t), l2sw, 30, false))

			require.NoError(t, c.AddTable(ctx(t), 9, false, "usrsp:t"))
			require.NoError(t, c.SetTable(ctx(t), l3sw, 9, false))
			table, err := c.InterfaceTable(ctx(t), l3sw, false)
			require.NoError(t, err)
			assert.Equal(t, uint32(9), table)
			pod := netip.MustParseAddr("10.232.0.7")
			require.NoError(t, c.Route(ctx(t), true, 9, l3sw, pod))
			via, err := c.RoutesVia(ctx(t), 9, false, l3sw)
			require.NoError(t, err)
			assert.Equal(t, []netip.Prefix{netip.PrefixFrom(pod, 32)}, via)
			require.NoError(t, c.Route(ctx(t), false, 9, l3sw, pod))

			lo, err := c.CreateLoopback(ctx(t))
			require.NoError(t, err)
			require.NoError(t, c.AddAddress(ctx(t), lo, netip.MustParsePrefix("10.231.0.1/24")))
			ifc, found, err = c.InterfaceWithAddress(ctx(t), src)
			require.NoError(t, err)
			require.True(t, found)
			assert.Equal(t, lo, ifc.SwIfIndex)
			_, found, err = c.InterfaceWithAddress(ctx(t), dst)
			require.NoError(t, err)
			assert.False(t, found)

			require.NoError(t, c.SetBridge(ctx(t), l2sw, 31, false))
			for _, tun := range tuns {
				require.NoError(t, c.DeleteTunnel(ctx(t), tun))
				require.NoError(t, c.DeleteTunnel(ctx(t), tun), "deleting a missing tunnel is success")
			}
			tuns, err = c.Tunnels(ctx(t))
			require.NoError(t, err)
			assert.Empty(t, tuns)
		})
	}
}
