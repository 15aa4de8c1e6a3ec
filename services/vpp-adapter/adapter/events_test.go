package adapter_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/service"
	"usrsp.dev/libs/natstest"
	"usrsp.dev/libs/vpp"
	"usrsp.dev/services/vpp-adapter/adapter"
	"usrsp.dev/services/vpp-adapter/daemon/daemontest"
	"usrsp.dev/services/vpp-adapter/version"
)

// TestEventsSayWhatHappened serves the adapter (on the fake VPP) over an
// embedded nats-server with the production publisher and reads its events
// the way an operator does: `nats sub 'usrsp.v1.*.*.event.>'`.
func TestEventsSayWhatHappened(t *testing.T) {
	const node = "node-1"
	srv := natstest.Run(t)
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	h := newHarness(t, func(cfg *adapter.Config) { cfg.Events = contracts.NewPublisher(nc, node, contracts.EngineVPP) })
	svc, err := service.Add(nc, service.Config{Node: node, Engine: contracts.EngineVPP, Version: version.Version}, h.a)
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	evs := daemontest.NewEvents()
	evs.Subscribe(t, nc)
	client := contracts.NewClient(nc, node, 5*time.Second)
	c := ctx(t)

	// next returns the next event; every request below publishes at least
	// one, so a missing event fails the bounded wait.
	next := func(t *testing.T) contracts.Event {
		t.Helper()
		ev := evs.Next(t)
		assert.Equal(t, node, ev.Node)
		assert.Equal(t, contracts.EngineVPP, ev.Engine)
		return ev
	}
	expect := func(t *testing.T, kind contracts.EventKind, k *contracts.AttachmentKey, network string, parts ...string) {
		t.Helper()
		ev := next(t)
		require.Equal(t, kind, ev.Kind, "%s", ev.Message)
		if k == nil {
			assert.Nil(t, ev.Key)
		} else if assert.NotNil(t, ev.Key) {
			assert.Equal(t, *k, *ev.Key)
		}
		assert.Equal(t, network, ev.Network)
		for _, p := range parts {
			assert.Contains(t, ev.Message, p)
		}
	}

	tagged := vlanBridge(4, 100)
	vhost := vhostBridge(4, 0)
	l3Key := contracts.AttachmentKey{ContainerID: "aaaabbbbccccdddd", IfName: "net1"}
	l3 := &contracts.AttachRequest{Key: l3Key, Network: "vpp-l3", Interface: contracts.HostInterface{
		IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeInterface, MTU: 1500, SocketPath: podBase + "/aaaabbbbccccdddd/memif-net1.sock",
		Memif: &contracts.MemifSpec{Role: contracts.MemifRoleMaster, Mode: contracts.MemifModeEthernet},
		IPs:   []contracts.IPConfig{{Address: "10.1.1.5/24", Gateway: "10.1.1.1"}}}}

	t.Run("attached says what the pod got", func(t *testing.T) {
		for _, tc := range []struct {
			req   *contracts.AttachRequest
			parts []string
		}{
			{tagged, []string{"memif1/0 (memif master) on " + tagged.Interface.SocketPath, "in bridge domain 4, access port of VLAN 100"}},
			{vhost, []string{"vhost-user server VirtualEthernet0/0/0 on " + vhost.Interface.SocketPath + " in bridge domain 4"}},
			{l3, []string{"memif2/0 (memif master)", "routed to 10.1.1.5/24", "MTU 1500"}},
		} {
			_, err := client.Attach(c, contracts.EngineVPP, tc.req)
			require.NoError(t, err)
			expect(t, contracts.EventAttached, &tc.req.Key, tc.req.Network, tc.parts...)
		}
	})

	t.Run("a failed attach is an error event with the network and VPP's reason", func(t *testing.T) {
		other := memifBridge(4)
		other.Key.IfName = "net9"
		other.Interface.SocketPath = podBase + "/0123456789abcdef/memif-net9.sock"
		h.fake.FailNext("memif_create_v2", -73)
		_, err := client.Attach(c, contracts.EngineVPP, other)
		require.Error(t, err)
		expect(t, contracts.EventError, &other.Key, "vpp-net", "attach: vpp memif_create_v2")
	})

	t.Run("a failed check is an error event", func(t *testing.T) {
		mismatch := *tagged
		mismatch.Interface.Bridge = &contracts.BridgeSpec{ID: 4, VLAN: 100}
		h.fake.SetRewrite("memif1/0", vpp.VtrPush1, 200)
		_, err := client.Check(c, contracts.EngineVPP, &contracts.CheckRequest{Key: key, Network: tagged.Network, Interface: mismatch.Interface})
		require.Error(t, err)
		expect(t, contracts.EventError, &key, "vpp-net", "check: ", "push-1 dot1q 100")
		h.fake.SetRewrite("memif1/0", vpp.VtrPush1, 100)
	})

	t.Run("the replay's summary comes first, then one event per attachment", func(t *testing.T) {
		h.fake.Wipe()
		h.a.Up(context.Background(), vpp.Session{Client: h.client})
		expect(t, contracts.EventReconciled, nil, "", "desired 3, present 0, recreated 3")
		got := map[contracts.AttachmentKey]string{}
		for range 3 {
			ev := next(t)
			require.Equal(t, contracts.EventReconciled, ev.Kind)
			require.NotNil(t, ev.Key)
			got[*ev.Key] = ev.Network + ": " + ev.Message
		}
		assert.Contains(t, got[key], "vpp-net: reconciled: re-created memif")
		assert.Contains(t, got[key], "access port of VLAN 100")
		assert.Contains(t, got[vhostKey], "vpp-net: reconciled: re-created vhost-user server")
		assert.Contains(t, got[l3Key], "vpp-l3: reconciled: re-created memif")
	})

	t.Run("detached says what went; nothing removed, no event", func(t *testing.T) {
		_, err := client.Detach(c, contracts.EngineVPP, &contracts.DetachRequest{Key: contracts.AttachmentKey{ContainerID: "unknown", IfName: "net1"}, Network: "vpp-net"})
		require.NoError(t, err)
		_, err = client.Detach(c, contracts.EngineVPP, &contracts.DetachRequest{Key: vhostKey})
		require.NoError(t, err)
		expect(t, contracts.EventDetached, &vhostKey, "vpp-net", "detached: vhost-user server VirtualEthernet", "in bridge domain 4")
	})

	t.Run("gc publishes one detached event per attachment it removes", func(t *testing.T) {
		second := vlanBridge(4, 100)
		second.Key.IfName = "net3"
		second.Interface.SocketPath = podBase + "/0123456789abcdef/memif-net3.sock"
		_, err := client.Attach(c, contracts.EngineVPP, second)
		require.NoError(t, err)
		expect(t, contracts.EventAttached, &second.Key, "vpp-net")
		resp, err := client.GC(c, contracts.EngineVPP, &contracts.GCRequest{Network: "vpp-net", Valid: []contracts.AttachmentKey{}})
		require.NoError(t, err)
		require.Len(t, resp.Removed, 2)
		got := map[contracts.AttachmentKey]string{}
		for range 2 {
			ev := next(t)
			require.Equal(t, contracts.EventDetached, ev.Kind, ev.Message)
			assert.Equal(t, "vpp-net", ev.Network)
			got[*ev.Key] = ev.Message
		}
		for _, k := range resp.Removed {
			assert.Contains(t, got[k], "garbage collected: memif")
		}
		// The L3 attachment of the other network stays, and says so by
		// being the only one left.
		list, err := client.List(c, contracts.EngineVPP, &contracts.ListRequest{})
		require.NoError(t, err)
		require.Len(t, list.Attachments, 1)
		assert.Equal(t, l3Key, list.Attachments[0].Key)
	})
}
