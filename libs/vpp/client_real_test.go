package vpp_test

import (
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/libs/vpp"
	"usrsp.dev/libs/vpp/vpptest"
)

// TestRealVPPPodOperations runs what pod-consumer apply does against a
// real VPP: the fake's answers must be VPP's.
func TestRealVPPPodOperations(t *testing.T) {
	v := vpptest.StartVPP(t, "client", 1)
	_, c := vpptest.Connect(t, v.APISock)
	sw, err := c.CreateVhost(ctx(t), vpp.VhostConfig{Server: true, Socket: filepath.Join(v.Dir, "vh.sock"), Tag: "usrsp-pod:net1"})
	require.NoError(t, err)
	tagged, err := c.InterfacesTagged(ctx(t), "usrsp-pod:")
	require.NoError(t, err)
	require.Len(t, tagged, 1, "tagged on creation")
	assert.Equal(t, sw, tagged[0].SwIfIndex)

	require.NoError(t, c.AdminUp(ctx(t), sw))
	i, found, err := c.Interface(ctx(t), sw)
	require.NoError(t, err)
	require.True(t, found)
	assert.True(t, i.AdminUp)
	assert.False(t, i.LinkUp, "no vhost-user client connected")

	addrs := []netip.Prefix{netip.MustParsePrefix("10.9.0.2/24"), netip.MustParsePrefix("fd09::2/64")}
	for _, a := range addrs {
		require.NoError(t, c.AddAddress(ctx(t), sw, a))
	}
	for n, v6 := range []bool{false, true} {
		got, err := c.Addresses(ctx(t), sw, v6)
		require.NoError(t, err)
		assert.Equal(t, addrs[n:n+1], got)
	}

	routes := []struct {
		dst  string
		path vpp.Path
	}{
		{"0.0.0.0/0", vpp.Path{SwIfIndex: sw, Via: netip.MustParseAddr("10.9.0.1")}},
		{"10.99.0.0/16", vpp.Path{SwIfIndex: sw}},
		{"::/0", vpp.Path{SwIfIndex: sw, Via: netip.MustParseAddr("fd09::1")}},
	}
	for _, r := range routes {
		dst := netip.MustParsePrefix(r.dst)
		require.NoError(t, c.AddRoute(ctx(t), 0, dst, r.path))
		paths, err := c.RoutePaths(ctx(t), 0, dst)
		require.NoError(t, err)
		assert.Equal(t, []vpp.Path{r.path}, paths, r.dst)
	}
	for _, missing := range []struct {
		table uint32
		dst   string
	}{{0, "10.98.0.0/16"}, {77, "10.99.0.0/16"}} {
		paths, err := c.RoutePaths(ctx(t), missing.table, netip.MustParsePrefix(missing.dst))
		require.NoError(t, err, "no route, or no table, is no error")
		assert.Empty(t, paths)
	}
	require.NoError(t, c.DeleteVhost(ctx(t), sw))
}
