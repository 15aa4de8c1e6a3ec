package contracts_test

import (
	"context"
	"testing"
	"time"

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
