package contracts_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/contractstest"
	"usrsp.dev/libs/natstest"
)

const node = "node-a.example"

func connect(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := contracts.Connect(contracts.ConnectOptions{URL: url, Timeout: 2 * time.Second, Name: t.Name()})
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

func TestClientRoundTrip(t *testing.T) {
	srv := natstest.Run(t)
	fake := contractstest.NewFakeAdapter(contracts.EngineOVSDPDK)
	svc, err := fake.Serve(connect(t, srv.ClientURL()), node)
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })

	c := contracts.NewClient(connect(t, srv.ClientURL()), node, 2*time.Second)
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
	svc, err := fake.Serve(connect(t, srv.ClientURL()), node)
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	c := contracts.NewClient(connect(t, srv.ClientURL()), node, time.Second)
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
		other := contracts.NewClient(connect(t, srv.ClientURL()), "node-b", time.Second)
		_, err := other.Status(ctx, contracts.EngineVPP)
		assert.Equal(t, contracts.CodeTryAgainLater, contracts.CodeOf(err))
	})
	t.Run("NATS down", func(t *testing.T) {
		_, err := contracts.Connect(contracts.ConnectOptions{URL: "nats://127.0.0.1:1", Timeout: 500 * time.Millisecond})
		assert.Equal(t, contracts.CodeTryAgainLater, contracts.CodeOf(err))
		assert.Contains(t, err.Error(), "127.0.0.1:1")
	})
}

// blockingAdapter lets a test hold requests inside the adapter.
type blockingAdapter struct {
	*contractstest.FakeAdapter
	release  chan struct{}
	inFlight atomic.Int32
	maxSeen  atomic.Int32
}

func (b *blockingAdapter) Attach(ctx context.Context, r *contracts.AttachRequest) (*contracts.AttachResponse, error) {
	n := b.inFlight.Add(1)
	defer b.inFlight.Add(-1)
	for {
		m := b.maxSeen.Load()
		if n <= m || b.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return b.FakeAdapter.Attach(ctx, r)
}

func TestServiceParallelAcrossKeysSerialPerKey(t *testing.T) {
	srv := natstest.Run(t)
	a := &blockingAdapter{FakeAdapter: contractstest.NewFakeAdapter(contracts.EngineVPP), release: make(chan struct{})}
	svc, err := contracts.AddService(connect(t, srv.ClientURL()), contracts.ServiceConfig{Node: node, Engine: contracts.EngineVPP, Version: "1.0.0"}, a)
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	c := contracts.NewClient(connect(t, srv.ClientURL()), node, 10*time.Second)

	// Four requests: three distinct keys, one key twice.
	ids := []string{"c1", "c2", "c3", "c1"}
	var wg sync.WaitGroup
	errs := make([]error, len(ids))
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := validAttach()
			req.Key.ContainerID = id
			_, errs[i] = c.Attach(context.Background(), contracts.EngineVPP, &req)
		}()
	}
	require.Eventually(t, func() bool { return a.inFlight.Load() == 3 }, 5*time.Second, 5*time.Millisecond,
		"distinct keys must be handled in parallel")
	close(a.release)
	wg.Wait()
	for _, err := range errs {
		assert.NoError(t, err)
	}
	assert.Equal(t, int32(3), a.maxSeen.Load(), "the same key must never be handled twice at once")
	assert.Len(t, a.Attachments(), 3)
}

func TestPublisher(t *testing.T) {
	srv := natstest.Run(t)
	nc := connect(t, srv.ClientURL())
	sub, err := nc.SubscribeSync(contracts.AllEventsSubject)
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	p := contracts.NewPublisher(connect(t, srv.ClientURL()), node, contracts.EngineOVSDPDK)
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
