package adapter_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.fd.io/govpp/binapi/l2"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/vpp"
	"usrsp.dev/libs/vpp/vpptest"
	"usrsp.dev/services/vpp-adapter/adapter"
)

func vlanBridge(bd uint32, vlan int) *contracts.AttachRequest {
	r := memifBridge(bd)
	r.Interface.Bridge.VLAN = vlan
	return r
}

// byTag finds the fake interface of attachment k.
func byTag(t *testing.T, f *vpptest.FakeVPP, k contracts.AttachmentKey) vpptest.Interface {
	t.Helper()
	for _, i := range f.Snapshot() {
		if i.Tag == adapter.Tag(k) {
			return i
		}
	}
	t.Fatalf("no interface tagged %s", adapter.Tag(k))
	return vpptest.Interface{}
}

func TestVLANAccessPort(t *testing.T) {
	h := newHarness(t)
	req := vlanBridge(4, 100)
	_, calls := h.attach(t, req)
	require.Equal(t, []string{
		"memif_socket_filename_dump", "memif_socket_filename_add_del_v2", "memif_create_v2",
		"sw_interface_tag_add_del", "bridge_domain_dump", "bridge_domain_add_del_v2",
		"sw_interface_set_l2_bridge", "l2_interface_vlan_tag_rewrite", "l2_interface_efp_filter",
		"sw_interface_set_flags", "sw_interface_dump",
	}, names(calls), "the rewrite and the filter come after joining the bridge domain")
	assert.Equal(t, l2.L2InterfaceVlanTagRewrite{SwIfIndex: 1, VtrOp: vpp.VtrPush1, PushDot1q: 1, Tag1: 100},
		*msg[*l2.L2InterfaceVlanTagRewrite](t, calls, 7), "push-1 dot1q 100")
	assert.Equal(t, l2.L2InterfaceEfpFilter{SwIfIndex: 1, EnableDisable: true}, *msg[*l2.L2InterfaceEfpFilter](t, calls, 8))
	i := byTag(t, h.fake, key)
	assert.Equal(t, []any{uint32(vpp.VtrPush1), true, uint32(100), true}, []any{i.VtrOp, i.VtrDot1q, i.VtrTag1, i.EFP})

	check := &contracts.CheckRequest{Key: key, Network: req.Network, Interface: req.Interface}
	_, err := h.a.Check(ctx(t), check)
	require.NoError(t, err, "the rewrite VPP reports is the configured one")

	t.Run("check finds a changed or missing rewrite", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			op, tag1 uint32
			want     string
		}{
			{"another VLAN", vpp.VtrPush1, 200, "op 1 tag 200"},
			{"no rewrite", 0, 0, "no VLAN tag rewrite"},
			{"pop instead of push", 3, 0, "op 3"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h.fake.SetRewrite(i.Name, tc.op, tc.tag1)
				_, err := h.a.Check(ctx(t), check)
				require.Error(t, err)
				assert.Equal(t, contracts.CodeMismatch, contracts.CodeOf(err), "%v", err)
				assert.ErrorContains(t, err, tc.want)
				assert.ErrorContains(t, err, "push-1 dot1q 100")
			})
		}
		h.fake.SetRewrite(i.Name, vpp.VtrPush1, 100)
	})

	// Detach: filter and rewrite off before the interface leaves the domain
	// (VPP keeps L2 output config per sw_if_index, which is reused).
	h.fake.Calls()
	_, err = h.a.Detach(ctx(t), &contracts.DetachRequest{Key: key})
	require.NoError(t, err)
	calls = h.fake.Messages()
	require.Equal(t, []string{
		"sw_interface_dump", "l2_interface_efp_filter", "l2_interface_vlan_tag_rewrite", "sw_interface_set_l2_bridge", "memif_delete",
		"bridge_domain_dump", "bridge_domain_add_del_v2", "memif_socket_filename_dump", "memif_dump", "memif_socket_filename_add_del_v2",
	}, names(calls))
	assert.Equal(t, l2.L2InterfaceEfpFilter{SwIfIndex: 1, EnableDisable: false}, *msg[*l2.L2InterfaceEfpFilter](t, calls, 1))
	assert.Equal(t, l2.L2InterfaceVlanTagRewrite{SwIfIndex: 1}, *msg[*l2.L2InterfaceVlanTagRewrite](t, calls, 2), "L2_VTR_DISABLED")
}

func TestUntaggedCheckRejectsRewrite(t *testing.T) {
	h := newHarness(t)
	req := memifBridge(4)
	resp, err := h.a.Attach(ctx(t), req)
	require.NoError(t, err)
	assert.NotContains(t, h.fake.Calls(), "l2_interface_vlan_tag_rewrite", "vlan 0: untagged, no rewrite")
	h.fake.SetRewrite(resp.Attachment.HostIfName, vpp.VtrPush1, 7)
	_, err = h.a.Check(ctx(t), &contracts.CheckRequest{Key: key, Network: req.Network, Interface: req.Interface})
	assert.Equal(t, contracts.CodeMismatch, contracts.CodeOf(err), "%v", err)
	assert.ErrorContains(t, err, "the configuration is untagged")
}

func TestVLANFailureIsUndone(t *testing.T) {
	h := newHarness(t)
	h.fake.FailNext("l2_interface_efp_filter", -1)
	_, err := h.a.Attach(ctx(t), vlanBridge(4, 100))
	require.Error(t, err)
	assert.Equal(t, contracts.CodeVswitch, contracts.CodeOf(err), "%v", err)
	assert.ErrorContains(t, err, "l2_interface_efp_filter")
	assert.Equal(t, []string{
		"memif_socket_filename_dump", "memif_socket_filename_add_del_v2", "memif_create_v2",
		"sw_interface_tag_add_del", "bridge_domain_dump", "bridge_domain_add_del_v2",
		"sw_interface_set_l2_bridge", "l2_interface_vlan_tag_rewrite", "l2_interface_efp_filter", // fails
		// undo, in reverse: rewrite and filter off, leave, our empty domain, memif, socket
		"l2_interface_efp_filter", "l2_interface_vlan_tag_rewrite", "sw_interface_set_l2_bridge",
		"bridge_domain_dump", "bridge_domain_add_del_v2", "memif_delete", "memif_socket_filename_add_del_v2",
	}, h.fake.Calls())
	sockets, bds, _ := h.fake.State()
	assert.Equal(t, []string{"0=/run/vpp/memif.sock"}, sockets)
	assert.Empty(t, bds)
	_, found, err := h.store.Get(key)
	require.NoError(t, err)
	assert.False(t, found, "a failed attach leaves no record")
}

func TestVLANReplayedAfterVPPRestart(t *testing.T) {
	fake, a, evs := looped(t, t.TempDir())
	evs.WaitFor(t, contracts.EventReconciled)
	vhost := vhostBridge(4, 200)
	c := ctx(t)
	for _, r := range []*contracts.AttachRequest{vlanBridge(4, 100), vhost} {
		_, err := a.Attach(c, r)
		require.NoError(t, err)
	}

	fake.Restart()
	ev := evs.WaitFor(t, contracts.EventReconciled)
	require.Contains(t, ev.Message, "recreated 2")
	for k, vlan := range map[contracts.AttachmentKey]uint32{key: 100, vhostKey: 200} {
		i := byTag(t, fake, k)
		assert.Equal(t, []any{uint32(4), uint32(vpp.VtrPush1), true, vlan, true}, []any{i.BD, i.VtrOp, i.VtrDot1q, i.VtrTag1, i.EFP}, "%s", k)
	}
	_, err := a.Check(c, &contracts.CheckRequest{Key: vhostKey, Network: vhost.Network, Interface: vhost.Interface})
	require.NoError(t, err)
}
