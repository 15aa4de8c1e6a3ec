package adapter_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/vhost_user"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/confine/confinetest"
	"usrsp.dev/libs/vpp/vpptest"
	"usrsp.dev/services/vpp-adapter/adapter"
	"usrsp.dev/services/vpp-adapter/version"
)

func TestMemifMasterInNewBridgeDomain(t *testing.T) {
	h := newHarness(t)
	req := memifBridge(4)
	resp, calls := h.attach(t, req)
	require.Equal(t, []string{
		"memif_socket_filename_dump", "memif_socket_filename_add_del_v2", "memif_create_v2",
		"sw_interface_tag_add_del", "bridge_domain_dump", "bridge_domain_add_del_v2",
		"sw_interface_set_l2_bridge", "sw_interface_set_flags", "sw_interface_dump",
	}, names(calls))
	sock := msg[*memif.MemifSocketFilenameAddDelV2](t, calls, 1)
	assert.Equal(t, memif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: ^uint32(0), SocketFilename: req.Interface.SocketPath}, *sock)
	create := msg[*memif.MemifCreateV2](t, calls, 2)
	assert.Equal(t, memif.MEMIF_ROLE_API_MASTER, create.Role)
	assert.Equal(t, memif.MEMIF_MODE_API_ETHERNET, create.Mode)
	assert.Equal(t, uint32(1), create.SocketID, "the id VPP allocated")
	assert.Equal(t, []any{uint8(1), uint8(1), uint32(1024), uint16(2048)}, []any{create.RxQueues, create.TxQueues, create.RingSize, create.BufferSize})
	tag := msg[*interfaces.SwInterfaceTagAddDel](t, calls, 3)
	assert.Equal(t, interfaces.SwInterfaceTagAddDel{IsAdd: true, SwIfIndex: 1, Tag: adapter.Tag(key)}, *tag)
	assert.Len(t, tag.Tag, len("usrsp:")+12)
	bd := msg[*l2.BridgeDomainAddDelV2](t, calls, 5)
	assert.Equal(t, l2.BridgeDomainAddDelV2{BdID: 4, Flood: true, UuFlood: true, Forward: true, Learn: true, BdTag: adapter.BridgeTag, IsAdd: true}, *bd)
	join := msg[*l2.SwInterfaceSetL2Bridge](t, calls, 6)
	assert.Equal(t, l2.SwInterfaceSetL2Bridge{RxSwIfIndex: 1, BdID: 4, PortType: l2.L2_API_PORT_TYPE_NORMAL, Enable: true}, *join)
	up := msg[*interfaces.SwInterfaceSetFlags](t, calls, 7)
	assert.Equal(t, interfaces.SwInterfaceSetFlags{SwIfIndex: 1, Flags: interface_types.IF_STATUS_API_FLAG_ADMIN_UP}, *up)

	assert.Equal(t, "memif1/0", resp.Attachment.HostIfName)
	assert.Equal(t, req.Interface.SocketPath, resp.Attachment.SocketPath)
	assert.Equal(t, contracts.EngineVPP, resp.Attachment.Engine)
	rec, found, err := h.store.Get(key)
	require.NoError(t, err)
	require.True(t, found)
	assert.True(t, rec.BridgeCreated)
	assert.True(t, rec.MemifSocketAdded)

	// Detach: leave the domain, delete the memif, the domain we created
	// (now empty) and the socket registration we added.
	h.fake.Calls()
	dresp, err := h.a.Detach(ctx(t), &contracts.DetachRequest{Key: key})
	require.NoError(t, err)
	assert.True(t, dresp.Removed)
	calls = h.fake.Messages()
	require.Equal(t, []string{
		"sw_interface_dump", "sw_interface_set_l2_bridge", "memif_delete", "bridge_domain_dump",
		"bridge_domain_add_del_v2", "memif_socket_filename_dump", "memif_dump", "memif_socket_filename_add_del_v2",
	}, names(calls))
	assert.False(t, msg[*l2.SwInterfaceSetL2Bridge](t, calls, 1).Enable)
	assert.Equal(t, l2.BridgeDomainAddDelV2{BdID: 4, IsAdd: false}, *msg[*l2.BridgeDomainAddDelV2](t, calls, 4))
	assert.Equal(t, memif.MemifSocketFilenameAddDelV2{SocketID: 1, SocketFilename: req.Interface.SocketPath}, *msg[*memif.MemifSocketFilenameAddDelV2](t, calls, 7))
	sockets, bds, _ := h.fake.State()
	assert.Equal(t, []string{"0=/run/vpp/memif.sock"}, sockets)
	assert.Empty(t, bds)
	_, found, err = h.store.Get(key)
	require.NoError(t, err)
	assert.False(t, found)
}

func TestMemifIntoExistingBridgeDomain(t *testing.T) {
	h := newHarness(t)
	h.fake.AddBD(4, "") // the operator's
	_, err := h.a.Attach(ctx(t), memifBridge(4))
	require.NoError(t, err)
	require.Equal(t, []string{
		"memif_socket_filename_dump", "memif_socket_filename_add_del_v2", "memif_create_v2",
		"sw_interface_tag_add_del", "bridge_domain_dump", "sw_interface_set_l2_bridge",
		"sw_interface_set_flags", "sw_interface_dump",
	}, h.fake.Calls())

	_, err = h.a.Detach(ctx(t), &contracts.DetachRequest{Key: key})
	require.NoError(t, err)
	require.Equal(t, []string{
		"sw_interface_dump", "sw_interface_set_l2_bridge", "memif_delete", "bridge_domain_dump",
		"memif_socket_filename_dump", "memif_dump", "memif_socket_filename_add_del_v2",
	}, h.fake.Calls(), "the operator's bridge domain is not deleted")
	_, bds, _ := h.fake.State()
	assert.Equal(t, []string{`4 tag="" members=0`}, bds)
}

func TestMemifReusesSocketRegistration(t *testing.T) {
	h := newHarness(t)
	req := memifBridge(4)
	h.fake.AddInterface(vpptest.Interface{}) // shift indexes: nothing assumes 1
	c := ctx(t)
	// Someone registered the file already: reuse its id, never remove it.
	_, err := h.client.AddMemifSocket(c, req.Interface.SocketPath)
	require.NoError(t, err)
	h.fake.Calls()
	_, err = h.a.Attach(c, req)
	require.NoError(t, err)
	calls := h.fake.Messages()
	require.Equal(t, "memif_socket_filename_dump", calls[0].Name)
	require.Equal(t, "memif_create_v2", calls[1].Name, "no second registration")
	h.fake.Calls()
	_, err = h.a.Detach(c, &contracts.DetachRequest{Key: key})
	require.NoError(t, err)
	assert.NotContains(t, h.fake.Calls(), "memif_socket_filename_add_del_v2")
}

func TestMemifAbstractSocketInPodNetns(t *testing.T) {
	h := newHarness(t)
	req := &contracts.AttachRequest{Key: key, Network: "vpp-net", Interface: contracts.HostInterface{
		IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeNone,
		Memif: &contracts.MemifSpec{Role: contracts.MemifRoleMaster, Mode: contracts.MemifModeIP, ID: 7, Queues: 2,
			RingSize: 4096, BufferSize: 4096, Secret: "s3cret", Netns: confinetest.Netns(), SocketFile: "memif-net1"},
	}}
	resp, calls := h.attach(t, req)
	assert.Equal(t, "abstract:memif-net1,netns_name="+confinetest.Netns(), msg[*memif.MemifSocketFilenameAddDelV2](t, calls, 1).SocketFilename)
	create := msg[*memif.MemifCreateV2](t, calls, 2)
	assert.Equal(t, memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, Mode: memif.MEMIF_MODE_API_IP, RxQueues: 2, TxQueues: 2,
		ID: 7, SocketID: 1, RingSize: 4096, BufferSize: 4096, Secret: "s3cret"}, *create)
	assert.Equal(t, "@memif-net1", resp.Attachment.SocketPath)
}

func TestVhostUser(t *testing.T) {
	for _, mode := range []string{contracts.VhostModeClient, contracts.VhostModeServer} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t)
			req := &contracts.AttachRequest{Key: key, Network: "vpp-net", Interface: contracts.HostInterface{
				IfType: contracts.IfTypeVhostUser, NetType: contracts.NetTypeNone, MAC: "02:00:00:00:00:01",
				SocketPath: podBase + "/0123456789abcdef/vhost-net1.sock",
				Vhost:      &contracts.VhostSpec{Mode: mode, Queues: 2},
			}}
			resp, calls := h.attach(t, req)
			require.Equal(t, []string{"create_vhost_user_if_v2", "sw_interface_tag_add_del", "sw_interface_set_flags", "sw_interface_dump"}, names(calls))
			create := msg[*vhost_user.CreateVhostUserIfV2](t, calls, 0)
			assert.Equal(t, mode == contracts.VhostModeServer, create.IsServer)
			assert.Equal(t, req.Interface.SocketPath, create.SockFilename)
			assert.True(t, create.UseCustomMac)
			assert.Equal(t, "02:00:00:00:00:01", create.MacAddress.String())
			assert.Equal(t, "VirtualEthernet0/0/0", resp.Attachment.HostIfName)

			h.fake.Calls()
			_, err := h.a.Detach(ctx(t), &contracts.DetachRequest{Key: key})
			require.NoError(t, err)
			require.Equal(t, []string{"sw_interface_dump", "delete_vhost_user_if"}, h.fake.Calls())
			assert.NotContains(t, h.fake.Snapshot(), "VirtualEthernet0/0/0")
		})
	}
}

func TestIdempotentRepeats(t *testing.T) {
	h := newHarness(t)
	req := memifBridge(4)
	first, err := h.a.Attach(ctx(t), req)
	require.NoError(t, err)
	h.fake.Calls()

	again, err := h.a.Attach(ctx(t), req)
	require.NoError(t, err)
	assert.Equal(t, []string{"sw_interface_dump"}, h.fake.Calls(), "a repeated attach creates nothing")
	assert.Equal(t, first.Attachment, again.Attachment)

	other := memifBridge(5)
	_, err = h.a.Attach(ctx(t), other)
	assert.Equal(t, contracts.CodeConflict, contracts.CodeOf(err), "same key, other spec: %v", err)

	_, err = h.a.Detach(ctx(t), &contracts.DetachRequest{Key: key})
	require.NoError(t, err)
	h.fake.Calls()
	resp, err := h.a.Detach(ctx(t), &contracts.DetachRequest{Key: key})
	require.NoError(t, err)
	assert.False(t, resp.Removed)
	assert.Equal(t, []string{"sw_interface_dump"}, h.fake.Calls(), "a repeated detach deletes nothing")
}

func TestVPPErrorsMapToContractCodes(t *testing.T) {
	cases := []struct {
		name    string
		failing string
		retval  api.VPPApiError
		code    contracts.Code
		inMsg   string
		undo    []string // requests after the failing one
	}{
		{"bad socket path", "memif_socket_filename_add_del_v2", api.INVALID_ARGUMENT, contracts.CodeInvalidConfig,
			"memif-net1.sock", nil},
		{"memif id taken", "memif_create_v2", api.SUBIF_ALREADY_EXISTS, contracts.CodeConflict,
			"memif id 0 on socket id 1", []string{"memif_socket_filename_add_del_v2"}},
		{"bridge join refused", "sw_interface_set_l2_bridge", api.UNSPECIFIED, contracts.CodeVswitch,
			"bridge domain 4", []string{"bridge_domain_dump", "bridge_domain_add_del_v2", "memif_delete", "memif_socket_filename_add_del_v2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.fake.FailNext(tc.failing, tc.retval)
			_, err := h.a.Attach(ctx(t), memifBridge(4))
			require.Error(t, err)
			assert.Equal(t, tc.code, contracts.CodeOf(err), "%v", err)
			assert.Contains(t, err.Error(), tc.inMsg)
			assert.Contains(t, err.Error(), tc.failing)
			calls := h.fake.Calls()
			i := indexOf(calls, tc.failing)
			require.GreaterOrEqual(t, i, 0)
			assert.Equal(t, tc.undo, nilIfEmpty(calls[i+1:]), "undo, in reverse order")
			sockets, bds, _ := h.fake.State()
			assert.Equal(t, []string{"0=/run/vpp/memif.sock"}, sockets, "nothing left behind")
			assert.Empty(t, bds)
			_, found, err := h.store.Get(key)
			require.NoError(t, err)
			assert.False(t, found, "a failed attach leaves no record")
		})
	}
	t.Run("not connected", func(t *testing.T) {
		h := newHarness(t)
		h.a.Down(assert.AnError)
		_, err := h.a.Attach(ctx(t), memifBridge(4))
		assert.Equal(t, contracts.CodeTryAgainLater, contracts.CodeOf(err))
		assert.Empty(t, h.fake.Calls())
	})
	t.Run("invalid request", func(t *testing.T) {
		h := newHarness(t)
		req := memifBridge(0)
		_, err := h.a.Attach(ctx(t), req)
		assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err))
		assert.Contains(t, err.Error(), "interface.bridge.id")
		assert.Empty(t, h.fake.Calls())
	})
}

func TestCheckListStatus(t *testing.T) {
	h := newHarness(t)
	req := memifBridge(4)
	c := ctx(t)
	_, err := h.a.Check(c, &contracts.CheckRequest{Key: key, Network: req.Network, Interface: req.Interface})
	assert.Equal(t, contracts.CodeNotFound, contracts.CodeOf(err))
	_, err = h.a.Attach(c, req)
	require.NoError(t, err)
	_, err = h.a.Check(c, &contracts.CheckRequest{Key: key, Network: req.Network, Interface: req.Interface})
	require.NoError(t, err)
	other := memifBridge(9)
	_, err = h.a.Check(c, &contracts.CheckRequest{Key: key, Network: req.Network, Interface: other.Interface})
	assert.Equal(t, contracts.CodeMismatch, contracts.CodeOf(err))

	list, err := h.a.List(c, &contracts.ListRequest{Network: "vpp-net"})
	require.NoError(t, err)
	assert.Len(t, list.Attachments, 1)
	st, err := h.a.Status(c, &contracts.StatusRequest{})
	require.NoError(t, err)
	assert.True(t, st.Ready)
	assert.Equal(t, "VPP 25.10-fake", st.Vswitch)
	assert.Equal(t, version.Version, st.Version)

	gc, err := h.a.GC(c, &contracts.GCRequest{Network: "vpp-net"})
	require.NoError(t, err)
	assert.Equal(t, []contracts.AttachmentKey{key}, gc.Removed)
	assert.Empty(t, h.fake.Snapshot()["memif1/0"].Name)
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
