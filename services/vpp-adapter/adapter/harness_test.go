package adapter_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	govppadapter "go.fd.io/govpp/adapter"
	"go.fd.io/govpp/core"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/vpp"
	"usrsp.dev/libs/vpp/vpptest"
	"usrsp.dev/services/vpp-adapter/adapter"
	"usrsp.dev/services/vpp-adapter/daemon/daemontest"
)

type harness struct {
	fake   *vpptest.FakeVPP
	store  *adapter.Store
	a      *adapter.Adapter
	events *daemontest.Events
	client *vpp.Client
}

type option func(*adapter.Config)

func tablePerNetwork(c *adapter.Config) { c.TablePerNetwork = true }

func newAdapter(t testing.TB, dir string, opts ...option) (*adapter.Adapter, *adapter.Store, *daemontest.Events) {
	t.Helper()
	st, err := adapter.OpenStore(dir)
	require.NoError(t, err)
	ev := daemontest.NewEvents()
	cfg := adapter.Config{Store: st, Roots: testRoots, Log: zerolog.New(zerolog.NewTestWriter(t)), Events: ev}
	for _, o := range opts {
		o(&cfg)
	}
	return adapter.New(cfg), st, ev
}

// newHarness connects an adapter to a fresh fake VPP (one session, no
// reconnect loop) and clears the message log of the startup replay.
func newHarness(t *testing.T, opts ...option) *harness {
	t.Helper()
	return newHarnessIn(t, t.TempDir(), opts...)
}

func newHarnessIn(t testing.TB, dir string, opts ...option) *harness {
	t.Helper()
	h := &harness{fake: vpptest.New()}
	h.a, h.store, h.events = newAdapter(t, dir, opts...)
	var conn *core.Connection
	conn, h.client = h.fake.Dial(t)
	h.a.Up(context.Background(), vpp.Session{Conn: conn, Client: h.client})
	ready, why := h.a.Ready()
	require.True(t, ready, why)
	h.fake.Calls()
	return h
}

// runLoop runs the real connection loop against fake until the test ends.
func runLoop(t *testing.T, fake *vpptest.FakeVPP, a *adapter.Adapter) {
	t.Helper()
	c, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	loop := &vpp.Loop{
		NewAdapter: func() govppadapter.VppAPI { return fake },
		Up:         func(ctx context.Context, s vpp.Session) { _, _ = a.Up(ctx, s) }, Down: a.Down,
		MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		ProbeInterval: 5 * time.Millisecond, ProbeTimeout: time.Second,
	}
	go func() { defer close(done); loop.Run(c) }()
	t.Cleanup(func() { cancel(); <-done })
}

// looped is an adapter on the records in dir that the real connection
// loop connects to a new fake VPP; the first replay's event is the
// caller's to wait for.
func looped(t *testing.T, dir string, opts ...option) (*vpptest.FakeVPP, *adapter.Adapter, *daemontest.Events) {
	t.Helper()
	fake := vpptest.New()
	a, _, evs := newAdapter(t, dir, opts...)
	runLoop(t, fake, a)
	return fake, a, evs
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

var key = contracts.AttachmentKey{ContainerID: "0123456789abcdef", IfName: "net1"}

func memifBridge(bd uint32) *contracts.AttachRequest {
	return &contracts.AttachRequest{Key: key, Network: "vpp-net", Interface: contracts.HostInterface{
		IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeBridge,
		SocketPath: podBase + "/0123456789abcdef/memif-net1.sock",
		Memif:      &contracts.MemifSpec{Role: contracts.MemifRoleMaster, Mode: contracts.MemifModeEthernet, ID: 0},
		Bridge:     &contracts.BridgeSpec{ID: bd},
	}}
}

var vhostKey = contracts.AttachmentKey{ContainerID: "fedcba9876543210", IfName: "net2"}

// vhostBridge is a vhost-user server of vhostKey in bridge domain bd, an
// access port of vlan (0: untagged).
func vhostBridge(bd uint32, vlan int) *contracts.AttachRequest {
	return &contracts.AttachRequest{Key: vhostKey, Network: "vpp-net", Interface: contracts.HostInterface{
		IfType: contracts.IfTypeVhostUser, NetType: contracts.NetTypeBridge, SocketPath: podBase + "/fedcba9876543210/vhost-net2.sock",
		Vhost: &contracts.VhostSpec{Mode: contracts.VhostModeServer}, Bridge: &contracts.BridgeSpec{ID: bd, VLAN: vlan}}}
}

// attach attaches req and returns the response and the requests VPP got
// for it.
func (h *harness) attach(t *testing.T, req *contracts.AttachRequest) (*contracts.AttachResponse, []vpptest.Call) {
	t.Helper()
	h.fake.Calls()
	resp, err := h.a.Attach(ctx(t), req)
	require.NoError(t, err)
	return resp, h.fake.Messages()
}

// msg returns the i-th recorded request as T.
func msg[T any](t *testing.T, calls []vpptest.Call, i int) T {
	t.Helper()
	require.Less(t, i, len(calls))
	m, ok := calls[i].Msg.(T)
	require.Truef(t, ok, "call %d is %s, not %T", i, calls[i].Name, *new(T))
	return m
}

func names(calls []vpptest.Call) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = c.Name
	}
	return out
}
