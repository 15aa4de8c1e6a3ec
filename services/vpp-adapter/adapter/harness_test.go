package adapter_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.fd.io/govpp/core"

	"usrsp.dev/contracts"
	"usrsp.dev/services/vpp-adapter/adapter"
	"usrsp.dev/services/vpp-adapter/store"
	"usrsp.dev/libs/vpp"
	"usrsp.dev/libs/vpp/vpptest"
)

// events records published events; tests wait on it instead of sleeping.
type events struct {
	mu  sync.Mutex
	evs []contracts.Event
	ch  chan contracts.Event
}

var _ adapter.Publisher = (*events)(nil)

func (e *events) Publish(ev contracts.Event) error {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
	select {
	case e.ch <- ev:
	default:
	}
	return nil
}

// waitFor returns the next event of kind, failing after a bounded wait.
func (e *events) waitFor(t *testing.T, kind contracts.EventKind) contracts.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-e.ch:
			if ev.Kind == kind {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event within 10s", kind)
		}
	}
}

type harness struct {
	fake   *vpptest.FakeVPP
	store  *store.Store
	a      *adapter.Adapter
	events *events
	client *vpp.Client
}

type option func(*adapter.Config)

func tablePerNetwork(c *adapter.Config) { c.TablePerNetwork = true }

func newAdapter(t *testing.T, dir string, opts ...option) (*adapter.Adapter, *store.Store, *events) {
	t.Helper()
	st, err := store.Open(dir)
	require.NoError(t, err)
	ev := &events{ch: make(chan contracts.Event, 64)}
	cfg := adapter.Config{Store: st, Log: zerolog.New(zerolog.NewTestWriter(t)), Events: ev, Metrics: adapter.NewMetrics()}
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

func newHarnessIn(t *testing.T, dir string, opts ...option) *harness {
	t.Helper()
	h := &harness{fake: vpptest.New()}
	h.a, h.store, h.events = newAdapter(t, dir, opts...)
	conn, err := core.Connect(h.fake)
	require.NoError(t, err)
	t.Cleanup(conn.Disconnect)
	h.client = vpp.NewClient(conn)
	h.a.Up(context.Background(), vpp.Session{Conn: conn, Client: h.client})
	ready, why := h.a.Ready()
	require.True(t, ready, why)
	h.fake.Calls()
	return h
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
		SocketPath: "/var/lib/usrsp/pods/0123456789abcdef/memif-net1.sock",
		Memif:      &contracts.MemifSpec{Role: contracts.MemifRoleMaster, Mode: contracts.MemifModeEthernet, ID: 0},
		Bridge:     &contracts.BridgeSpec{ID: bd},
	}}
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
