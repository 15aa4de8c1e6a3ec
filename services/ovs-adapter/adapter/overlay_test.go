package adapter_test

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/adapterkit/overlay"
	"usrsp.dev/services/ovs-adapter/adapter"
	"usrsp.dev/services/ovs-adapter/ovs"
	"usrsp.dev/services/ovs-adapter/ovs/ovstest"
)

const (
	vtepA, vtepB, vtepC = "10.232.0.1", "10.232.0.2", "10.232.0.3"
	ovlNet              = "ovl"
	ovlBridge           = "br-ovl"
	ovlVNI              = 5001
)

// overlayReq is a memif attachment on the overlay network ovlNet.
func overlayReq(k contracts.AttachmentKey, sockDir string, vlan int) *contracts.AttachRequest {
	r := memifReq(k, sockDir)
	r.Network = ovlNet
	r.Interface.Bridge = &contracts.BridgeSpec{Name: ovlBridge, VLAN: vlan}
	r.Interface.Overlay = &contracts.Overlay{Type: contracts.OverlayVXLAN, VNI: ovlVNI}
	return r
}

func tunnel(local, remote, peer string) overlay.Tunnel {
	return overlay.Tunnel{Network: ovlNet, NetType: contracts.NetTypeBridge, VNI: ovlVNI, Port: contracts.DefaultVXLANPort,
		Local: netip.MustParseAddr(local), Remote: netip.MustParseAddr(remote), Peer: peer}
}

// changes counts Changed calls (the overlay Manager's part).
type changes struct{ n atomic.Int64 }

func (c *changes) Changed() { c.n.Add(1) }

// tunnelPorts are the VXLAN ports on sw, by name.
func tunnelPorts(t *testing.T, sw ovs.OVS) map[string]ovs.Port {
	t.Helper()
	owned, err := sw.OwnedPorts(context.Background())
	require.NoError(t, err)
	out := map[string]ovs.Port{}
	for _, p := range owned {
		if p.IsTunnel() {
			out[p.Name] = p
		}
	}
	return out
}

func TestOverlayRefused(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name, vtep string
		edit       func(r *contracts.AttachRequest)
		want       []string
	}{
		{name: "no vtep", want: []string{"interface.overlay", "--vtep"}},
		{name: "netType interface", vtep: vtepA, edit: func(r *contracts.AttachRequest) { r.Interface.NetType = contracts.NetTypeInterface },
			want: []string{"interface.netType", "bridge"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sw := ovstest.New()
			e := newEnv(t, sw, "")
			if tt.vtep != "" {
				e.withVTEP(t, tt.vtep)
			}
			r := overlayReq(key("c1", "net1"), e.sockDir, 0)
			if tt.edit != nil {
				tt.edit(r)
			}
			_, err := e.a.Attach(ctx, r)
			require.Error(t, err)
			assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err))
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.Empty(t, sw.All(), "nothing made")
		})
	}
}

// TestSyncTunnels walks one adapter through a sequence of syncs; each
// step starts where the last ended.
func TestSyncTunnels(t *testing.T) {
	ctx := context.Background()
	sw := ovstest.New()
	e := newEnv(t, sw, "").withVTEP(t, vtepA)
	ch := &changes{}
	e.a.SetOverlay(ch)
	sw.AddOperatorPort(ovlBridge, "vx-operator") // not usrsp's: never touched
	k := key("c1", "net1")
	_, err := e.a.Attach(ctx, overlayReq(k, e.sockDir, 7))
	require.NoError(t, err)
	assert.EqualValues(t, 1, ch.n.Load(), "attach tells the overlay")
	assert.Equal(t, []contracts.OverlayMember{{Network: ovlNet, NetType: contracts.NetTypeBridge, VNI: ovlVNI, Port: contracts.DefaultVXLANPort}},
		members(t, e.a))

	toB, toC := tunnel(vtepA, vtepB, "node-b"), tunnel(vtepA, vtepC, "node-c")
	nameB, nameC := adapter.TunnelName(ovlNet, vtepB), adapter.TunnelName(ovlNet, vtepC)
	steps := []struct {
		name  string
		want  []overlay.Tunnel
		prune bool
		ports []string // tunnel ports after the step
		adds  int      // AddPorts calls the step makes
	}{
		{name: "create", want: []overlay.Tunnel{toB, toC}, ports: []string{nameB, nameC}, adds: 1},
		{name: "idempotent", want: []overlay.Tunnel{toB, toC}, ports: []string{nameB, nameC}},
		{name: "no prune keeps", want: []overlay.Tunnel{toB}, ports: []string{nameB, nameC}},
		{name: "prune removes", want: []overlay.Tunnel{toB}, prune: true, ports: []string{nameB}},
		{name: "other network ignored", want: []overlay.Tunnel{toB, {Network: "elsewhere", NetType: contracts.NetTypeBridge, VNI: 9,
			Port: 4789, Local: toB.Local, Remote: toC.Remote}}, prune: true, ports: []string{nameB}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			before := sw.Calls("AddPorts")
			require.NoError(t, e.a.SyncTunnels(ctx, s.want, s.prune))
			assert.Equal(t, s.adds, sw.Calls("AddPorts")-before)
			got := tunnelPorts(t, sw)
			assert.ElementsMatch(t, s.ports, keys(got))
		})
	}

	p := tunnelPorts(t, sw)[nameB]
	assert.Equal(t, ovs.TypeVXLAN, p.Type)
	assert.Equal(t, ovlBridge, p.Bridge)
	assert.Equal(t, 7, p.Tag, "the network's access VLAN")
	assert.True(t, p.Protected, "split horizon")
	assert.Equal(t, map[string]string{"remote_ip": vtepB, "local_ip": vtepA, "key": "5001", "dst_port": "4789"}, p.Options)
	assert.Equal(t, map[string]string{ovs.ExtOwner: ovs.OwnerValue, ovs.ExtNetwork: ovlNet, ovs.ExtRemote: vtepB, ovs.ExtPeer: "node-b"}, p.ExternalIDs)
	assert.LessOrEqual(t, len(nameB), 15)

	t.Run("drift healed", func(t *testing.T) {
		sw.Remove(nameB)
		require.NoError(t, e.a.SyncTunnels(ctx, []overlay.Tunnel{toB}, false))
		assert.Contains(t, tunnelPorts(t, sw), nameB)
	})

	t.Run("reconcile keeps tunnels", func(t *testing.T) {
		n := ch.n.Load()
		res, err := e.a.Reconcile(ctx)
		require.NoError(t, err)
		assert.Empty(t, res.Removed)
		assert.Contains(t, tunnelPorts(t, sw), nameB)
		assert.Equal(t, n+1, ch.n.Load(), "reconcile tells the overlay")
	})

	t.Run("last detach removes", func(t *testing.T) {
		n := ch.n.Load()
		_, err := e.a.Detach(ctx, &contracts.DetachRequest{Key: k, Network: ovlNet})
		require.NoError(t, err)
		assert.Empty(t, tunnelPorts(t, sw))
		assert.Equal(t, n+1, ch.n.Load(), "detach tells the overlay")
		assert.Empty(t, members(t, e.a))
		names := []string{}
		for _, p := range sw.All() {
			names = append(names, p.Name)
		}
		assert.Equal(t, []string{"vx-operator"}, names, "the operator's port stays")
	})

	t.Run("no local pods: nothing made", func(t *testing.T) {
		require.NoError(t, e.a.SyncTunnels(ctx, []overlay.Tunnel{toB}, false))
		assert.Empty(t, tunnelPorts(t, sw))
	})
}

// TestTunnelsOfGoneNetworks: tunnels of a network without an attachment
// here go even without prune (this node knows it has no pods there): on
// GC of the last attachment, on reconcile (after a restart) and on sync.
func TestTunnelsOfGoneNetworks(t *testing.T) {
	ctx := context.Background()
	for _, how := range []string{"gc", "reconcile", "sync"} {
		t.Run(how, func(t *testing.T) {
			sw := ovstest.New()
			e := newEnv(t, sw, "").withVTEP(t, vtepA)
			ch := &changes{}
			e.a.SetOverlay(ch)
			k := key("c1", "net1")
			_, err := e.a.Attach(ctx, overlayReq(k, e.sockDir, 0))
			require.NoError(t, err)
			// Another overlay network: its own VLAN and VNI, as on real
			// OVS (one overlay network per bridge and VLAN; one VNI per
			// peer VTEP and UDP port).
			other := overlayReq(key("c2", "net1"), e.sockDir, 8)
			other.Network = "keep"
			other.Interface.Overlay.VNI = ovlVNI + 1
			_, err = e.a.Attach(ctx, other)
			require.NoError(t, err)
			keep := tunnel(vtepA, vtepB, "node-b")
			keep.Network, keep.VNI = "keep", ovlVNI+1
			require.NoError(t, e.a.SyncTunnels(ctx, []overlay.Tunnel{tunnel(vtepA, vtepB, "node-b"), keep}, false))
			require.Len(t, tunnelPorts(t, sw), 2)

			switch how {
			case "gc":
				res, err := e.a.GC(ctx, &contracts.GCRequest{Network: ovlNet})
				require.NoError(t, err)
				assert.Equal(t, []contracts.AttachmentKey{k}, res.Removed)
			case "reconcile", "sync":
				// The record goes while the adapter is down; a new one
				// starts from the records.
				require.NoError(t, e.store.Delete(k))
				e = e.restart(t)
				if how == "reconcile" {
					res, err := e.a.Reconcile(ctx)
					require.NoError(t, err)
					assert.Contains(t, res.Removed, adapter.TunnelName(ovlNet, vtepB))
				} else {
					require.NoError(t, e.a.SyncTunnels(ctx, []overlay.Tunnel{keep}, false))
				}
			}
			assert.Equal(t, []string{adapter.TunnelName("keep", vtepB)}, keys(tunnelPorts(t, sw)), "only the live network's tunnel is left")
		})
	}
}

func keys(m map[string]ovs.Port) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	return out
}

func members(t *testing.T, a *adapter.Adapter) []contracts.OverlayMember {
	t.Helper()
	ms, err := a.Members()
	require.NoError(t, err)
	return ms
}
