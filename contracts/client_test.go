package contracts_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/contractstest"
	"usrsp.dev/libs/natstest"
)

const node = "node-a.example"

func TestClientRoundTrip(t *testing.T) {
	srv := natstest.Run(t)
	fake := contractstest.NewFakeAdapter(contracts.EngineOVSDPDK)
	svc, err := fake.Serve(contractstest.Connect(t, srv.ClientURL()), node)
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })

	c := contracts.NewClient(contractstest.Connect(t, srv.ClientURL()), node, 2*time.Second)
	ctx := context.Background()
	req := validAttach()

	att, err := c.Attach(ctx, contracts.EngineOVSDPDK, &req)
	require.NoError(t, err)
	assert.Equal(t, req.Key, att.Attachment.Key)
	assert.Equal(t, contracts.EngineOVSDPDK, att.Attachment.Engine)

	again, err := c.Attach(ctx, contracts.EngineOVSDPDK, &req)
	require.NoError(t, err, "attach must be safe to replay")
	assert.Equal(t, att.Attachment.CreatedAt, again.Attachment.CreatedAt)

	_, err = c.Check(ctx, contracts.EngineOVSDPDK, &contracts.CheckRequest{Key: req.Key, Network: req.Network, Interface: req.Interface})
	require.NoError(t, err)

	changed := req.Interface
	changed.MTU = 9000
	_, err = c.Check(ctx, contracts.EngineOVSDPDK, &contracts.CheckRequest{Key: req.Key, Network: req.Network, Interface: changed})
	assert.Equal(t, contracts.CodeMismatch, contracts.CodeOf(err))

	list, err := c.List(ctx, contracts.EngineOVSDPDK, &contracts.ListRequest{Network: req.Network})
	require.NoError(t, err)
	assert.Len(t, list.Attachments, 1)

	st, err := c.Status(ctx, contracts.EngineOVSDPDK)
	require.NoError(t, err)
	assert.True(t, st.Ready)
	assert.Equal(t, 1, st.Attachments)

	det, err := c.Detach(ctx, contracts.EngineOVSDPDK, &contracts.DetachRequest{Key: req.Key})
	require.NoError(t, err)
	assert.True(t, det.Removed)
	det, err = c.Detach(ctx, contracts.EngineOVSDPDK, &contracts.DetachRequest{Key: req.Key})
	require.NoError(t, err, "detach of an unknown attachment is success")
	assert.False(t, det.Removed)

	_, err = c.Check(ctx, contracts.EngineOVSDPDK, &contracts.CheckRequest{Key: req.Key, Network: req.Network, Interface: req.Interface})
	assert.Equal(t, contracts.CodeNotFound, contracts.CodeOf(err))
}

func TestClientErrors(t *testing.T) {
	srv := natstest.Run(t)
	fake := contractstest.NewFakeAdapter(contracts.EngineVPP)
	svc, err := fake.Serve(contractstest.Connect(t, srv.ClientURL()), node)
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	c := contracts.NewClient(contractstest.Connect(t, srv.ClientURL()), node, time.Second)
	ctx := context.Background()

	t.Run("adapter error keeps its code", func(t *testing.T) {
		fake.FailNext(contracts.OpAttach, contracts.Errorf(contracts.CodeVswitch, "bridge br9 is broken"))
		req := validAttach()
		_, err := c.Attach(ctx, contracts.EngineVPP, &req)
		assert.Equal(t, contracts.CodeVswitch, contracts.CodeOf(err))
		assert.EqualError(t, err, "bridge br9 is broken")
	})
	t.Run("invalid request is rejected by the service", func(t *testing.T) {
		req := validAttach()
		req.Key.IfName = ""
		_, err := c.Attach(ctx, contracts.EngineVPP, &req)
		assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err))
		assert.Contains(t, err.Error(), "key.ifName")
	})
	t.Run("no adapter for the engine", func(t *testing.T) {
		_, err := c.Status(ctx, contracts.EngineOVSDPDK)
		assert.Equal(t, contracts.CodeTryAgainLater, contracts.CodeOf(err))
		assert.Contains(t, err.Error(), "usrsp.v1.node-a_example.ovs-dpdk.status")
	})
	t.Run("other node", func(t *testing.T) {
		other := contracts.NewClient(contractstest.Connect(t, srv.ClientURL()), "node-b", time.Second)
		_, err := other.Status(ctx, contracts.EngineVPP)
		assert.Equal(t, contracts.CodeTryAgainLater, contracts.CodeOf(err))
	})
	t.Run("NATS down", func(t *testing.T) {
		_, err := contracts.Connect(contracts.ConnectOptions{URL: "nats://127.0.0.1:1", Timeout: 500 * time.Millisecond})
		assert.Equal(t, contracts.CodeTryAgainLater, contracts.CodeOf(err))
		assert.Contains(t, err.Error(), "127.0.0.1:1")
	})
}

func TestPublisher(t *testing.T) {
	srv := natstest.Run(t)
	nc := contractstest.Connect(t, srv.ClientURL())
	sub, err := nc.SubscribeSync(contracts.AllEventsSubject)
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	p := contracts.NewPublisher(contractstest.Connect(t, srv.ClientURL()), node, contracts.EngineOVSDPDK)
	key := contracts.AttachmentKey{ContainerID: "c1", IfName: "net1"}
	require.NoError(t, p.Publish(contracts.Event{Kind: contracts.EventAttached, Key: &key, Duration: time.Millisecond}))

	msg, err := sub.NextMsg(5 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, "usrsp.v1.node-a_example.ovs-dpdk.event.attached", msg.Subject)
	ev, err := contracts.DecodeEvent(msg.Data)
	require.NoError(t, err)
	assert.Equal(t, node, ev.Node)
	assert.Equal(t, key, *ev.Key)
	assert.False(t, ev.Time.IsZero())
}

func TestInboxPrefix(t *testing.T) {
	assert.Equal(t, "_INBOX_cni.node-a_example", contracts.InboxPrefix(contracts.RoleCNI, "node-a.example"))
	assert.Equal(t, "_INBOX_adapter.w1", contracts.InboxPrefix(contracts.RoleAdapter, "w1"))
}

// TestClientPermissionDenied runs a server where user "cni" may request
// only node's subjects and read only its own inbox (the shape
// libs/natsauth gives cni@node; its tests use the real identities).
func TestClientPermissionDenied(t *testing.T) {
	inbox := contracts.InboxPrefix(contracts.RoleCNI, node)
	srv, err := natstest.Start(&server.Options{Users: []*server.User{
		{Username: "adapter", Password: "a"},
		{Username: "cni", Password: "c", Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{contracts.SubjectRoot + "." + contracts.NodeToken(node) + ".*.*"}},
			Subscribe: &server.SubjectPermission{Allow: []string{inbox + ".>"}},
		}},
	}})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	adapter, err := contracts.Connect(contracts.ConnectOptions{URL: "nats://adapter:a@" + srv.Addr().String()})
	require.NoError(t, err)
	t.Cleanup(adapter.Close)
	svc, err := contractstest.NewFakeAdapter(contracts.EngineVPP).Serve(adapter, node)
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })

	const timeout = 5 * time.Second
	for _, tc := range []struct {
		name, inbox, node string
		wantCode          contracts.Code // 0: success
	}{
		{"own node, own inbox", inbox, node, 0},
		{"other node", inbox, "node-b", contracts.CodeInvalidConfig},
		{"default inbox", "", node, contracts.CodeInvalidConfig},
		{"another identity's inbox", contracts.InboxPrefix(contracts.RoleAdapter, node), node, contracts.CodeInvalidConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := contracts.Connect(contracts.ConnectOptions{URL: "nats://cni:c@" + srv.Addr().String(), InboxPrefix: tc.inbox})
			require.NoError(t, err)
			t.Cleanup(nc.Close)
			start := time.Now()
			st, err := contracts.NewClient(nc, tc.node, timeout).Status(context.Background(), contracts.EngineVPP)
			if tc.wantCode == 0 {
				require.NoError(t, err)
				assert.True(t, st.Ready)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tc.wantCode, contracts.CodeOf(err), "%v", err)
			assert.Contains(t, err.Error(), "nats.credentialsFile")
			assert.Contains(t, err.Error(), "ermissions violation")
			assert.Less(t, time.Since(start), timeout/2, "a denied request fails at once, not at its timeout")
		})
	}
}
