package vpp_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.fd.io/govpp/adapter"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/memclnt"

	"usrsp.dev/libs/vpp"
	"usrsp.dev/libs/vpp/vpptest"
)

// newFake connects a Client to a fresh fake VPP.
func newFake(t *testing.T) (*vpptest.FakeVPP, *vpp.Client) {
	f := vpptest.New()
	_, c := f.Dial(t)
	return f, c
}

func TestRoutes(t *testing.T) {
	cases := []struct {
		name  string
		table uint32
		dst   string
		path  vpp.Path
	}{
		{"IPv4 default via a gateway", 0, "0.0.0.0/0", vpp.Path{SwIfIndex: 1, Via: netip.MustParseAddr("10.56.0.1")}},
		{"IPv6 attached", 0, "fd00:56::/64", vpp.Path{SwIfIndex: 2}},
		{"IPv6 via a gateway in a table", 7, "::/0", vpp.Path{SwIfIndex: 3, Via: netip.MustParseAddr("fd00:56::1")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, c := newFake(t)
			dst := netip.MustParsePrefix(tc.dst)
			paths, err := c.RoutePaths(ctx(t), tc.table, dst)
			require.NoError(t, err)
			assert.Empty(t, paths, "no route yet is no error")

			require.NoError(t, c.AddRoute(ctx(t), tc.table, dst, tc.path))
			paths, err = c.RoutePaths(ctx(t), tc.table, dst)
			require.NoError(t, err)
			assert.Equal(t, []vpp.Path{tc.path}, paths)

			other, err := c.RoutePaths(ctx(t), tc.table+1, dst)
			require.NoError(t, err)
			assert.Empty(t, other, "another table has no such route")
			msgs := f.Messages()
			add := msgs[1].Msg.(*ip.IPRouteAddDel)
			assert.Equal(t, tc.table, add.Route.TableID)
			assert.Equal(t, tc.dst, add.Route.Prefix.String())
		})
	}
}

func TestRoutePathsError(t *testing.T) {
	f, c := newFake(t)
	f.FailNext("ip_route_lookup", api.SYSCALL_ERROR_1)
	_, err := c.RoutePaths(ctx(t), 0, netip.MustParsePrefix("10.0.0.0/8"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ip_route_lookup 10.0.0.0/8 table 0")
}

func TestInterfaceStateAndVhostTag(t *testing.T) {
	f, c := newFake(t)
	sw, err := c.CreateVhost(ctx(t), vpp.VhostConfig{Socket: "/run/x.sock", Tag: "usrsp-pod:net1"})
	require.NoError(t, err)
	tagged, err := c.InterfacesTagged(ctx(t), "usrsp-pod:")
	require.NoError(t, err)
	require.Len(t, tagged, 1, "tagged on creation")
	assert.Equal(t, sw, tagged[0].SwIfIndex)
	assert.False(t, tagged[0].AdminUp)

	require.NoError(t, c.AdminUp(ctx(t), sw))
	for _, peerUp := range []bool{true, false} {
		f.SetPeerUp(peerUp)
		i, found, err := c.Interface(ctx(t), sw)
		require.NoError(t, err)
		require.True(t, found)
		assert.True(t, i.AdminUp)
		assert.Equal(t, peerUp, i.LinkUp, "the link is up when the other end is there")
	}
}

func TestLoopSetupRetriesAndMessages(t *testing.T) {
	few := []api.Message{&memclnt.ControlPing{}, &memclnt.ControlPingReply{}, &ip.IPRouteLookup{}, &ip.IPRouteLookupReply{}}
	cases := []struct {
		name       string
		messages   []api.Message
		failSetups int
		wantErr    string // the first error Down is told; "" when Setup gets through at once
	}{
		{"all messages: the unknown one stops it", nil, 0, "VPP binary API is incompatible"},
		{"the messages the program uses", few, 0, ""},
		{"Setup fails, is told, and runs again", few, 2, "setup failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := vpptest.New()
			vppAPI := unknownMsg{fake, "proxy_arp_add_del"} // vpp-adapter's, not the program's
			setups, downs := make(chan vpp.Session, 10), make(chan error, 10)
			failures := tc.failSetups
			loop := &vpp.Loop{
				NewAdapter: func() adapter.VppAPI { return vppAPI },
				Messages:   tc.messages,
				Setup: func(_ context.Context, s vpp.Session) error {
					if failures > 0 {
						failures--
						return errors.New("setup failed")
					}
					setups <- s
					return nil
				},
				Down: func(err error) {
					select {
					case downs <- err:
					default:
					}
				},
				MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
				ProbeInterval: 5 * time.Millisecond, ProbeTimeout: time.Second,
			}
			c, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); loop.Run(c) }()
			defer func() { cancel(); <-done }()

			if tc.wantErr != "" {
				select {
				case err := <-downs:
					assert.ErrorContains(t, err, tc.wantErr)
				case <-time.After(5 * time.Second):
					t.Fatal("Down not called")
				}
			}
			if tc.messages == nil {
				return
			}
			for range 2 { // first connect, then again after VPP restarted
				select {
				case s := <-setups:
					_, err := s.Client.RoutePaths(ctx(t), 0, netip.MustParsePrefix("10.0.0.0/8"))
					require.NoError(t, err)
				case <-time.After(5 * time.Second):
					t.Fatal("Setup not called")
				}
				fake.Restart()
			}
		})
	}
}
