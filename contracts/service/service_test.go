package service_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/contractstest"
	"usrsp.dev/contracts/service"
	"usrsp.dev/libs/natstest"
)

const node = "node-a"

func validAttach() contracts.AttachRequest {
	return contracts.AttachRequest{
		Key:     contracts.AttachmentKey{ContainerID: "abc123", IfName: "net1"},
		Network: "memif-net",
		Interface: contracts.HostInterface{
			IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeNone, SocketPath: "/run/usrsp/x/memif-net1.sock",
			Memif: &contracts.MemifSpec{Role: "master", Mode: "ethernet", Queues: 1},
		},
	}
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
	svc, err := service.Add(contractstest.Connect(t, srv.ClientURL()), service.Config{Node: node, Engine: contracts.EngineVPP, Version: "1.0.0"}, a)
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	c := contracts.NewClient(contractstest.Connect(t, srv.ClientURL()), node, 10*time.Second)

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

// micro only sees the hand-off to the request goroutine, so the real
// request and error counts are in each endpoint's stats data.
func TestStatsCountErrors(t *testing.T) {
	srv := natstest.Run(t)
	fake := contractstest.NewFakeAdapter(contracts.EngineVPP)
	var seen []service.RequestInfo
	var mu sync.Mutex
	svc, err := service.Add(contractstest.Connect(t, srv.ClientURL()), service.Config{Node: node, Engine: contracts.EngineVPP, Version: "1.0.0",
		OnRequest: func(ri service.RequestInfo) { mu.Lock(); seen = append(seen, ri); mu.Unlock() }}, fake)
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	c := contracts.NewClient(contractstest.Connect(t, srv.ClientURL()), node, 5*time.Second)

	req := validAttach()
	_, err = c.Attach(context.Background(), contracts.EngineVPP, &req)
	require.NoError(t, err)
	fake.FailNext(contracts.OpAttach, contracts.Errorf(contracts.CodeVswitch, "boom"))
	_, err = c.Attach(context.Background(), contracts.EngineVPP, &req)
	require.Error(t, err)

	var attach *struct {
		Requests  uint64 `json:"requests"`
		Errors    uint64 `json:"errors"`
		LastError string `json:"last_error"`
	}
	for _, ep := range svc.Stats().Endpoints {
		if ep.Name == "attach" {
			require.NoError(t, json.Unmarshal(ep.Data, &attach))
		}
	}
	require.NotNil(t, attach)
	assert.Equal(t, uint64(2), attach.Requests)
	assert.Equal(t, uint64(1), attach.Errors)
	assert.Equal(t, "boom", attach.LastError)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 2)
	assert.Equal(t, contracts.OpAttach, seen[1].Op)
	assert.Equal(t, req.Key, *seen[1].Key)
	assert.Equal(t, contracts.CodeVswitch, contracts.CodeOf(seen[1].Err))
}

func TestInfoNamesEngineAndNode(t *testing.T) {
	srv := natstest.Run(t)
	svc, err := service.Add(contractstest.Connect(t, srv.ClientURL()), service.Config{Node: node, Engine: contracts.EngineOVSDPDK, Version: "1.2.3",
		Metadata: map[string]string{"vswitch": "ovs 3.1"}}, contractstest.NewFakeAdapter(contracts.EngineOVSDPDK))
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	info := svc.Info()
	assert.Equal(t, "usrsp-ovs-dpdk-adapter", info.Name)
	assert.Equal(t, map[string]string{"engine": "ovs-dpdk", "node": node, "api": "v1", "vswitch": "ovs 3.1"}, info.Metadata)
	require.Len(t, info.Endpoints, len(contracts.Ops))
	assert.Equal(t, "usrsp.v1.node-a.ovs-dpdk.attach", info.Endpoints[0].Subject)
}
