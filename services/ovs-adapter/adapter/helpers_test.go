package adapter_test

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/services/ovs-adapter/adapter"
	"usrsp.dev/services/ovs-adapter/ovs"
	"usrsp.dev/services/ovs-adapter/ovs/ovstest"
)

// events records published events.
type events struct {
	mu  sync.Mutex
	evs []contracts.Event
}

func (e *events) Publish(ev contracts.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
	return nil
}

func (e *events) kinds() map[contracts.EventKind]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := map[contracts.EventKind]int{}
	for _, ev := range e.evs {
		m[ev.Kind]++
	}
	return m
}

var _ adapter.Publisher = (*events)(nil)

type env struct {
	a       *adapter.Adapter
	ovs     ovs.OVS
	store   *adapter.Store
	events  *events
	sockDir string
	runDir  string
}

// newEnv builds an adapter on sw (an ovstest.Fake when nil) with a fresh
// state dir, or stateDir when given.
func newEnv(t *testing.T, sw ovs.OVS, stateDir string) *env {
	t.Helper()
	if sw == nil {
		sw = ovstest.New()
	}
	if stateDir == "" {
		stateDir = filepath.Join(t.TempDir(), "state")
	}
	store, err := adapter.OpenStore(stateDir)
	require.NoError(t, err)
	e := &env{ovs: sw, store: store, events: &events{}, sockDir: t.TempDir(), runDir: t.TempDir()}
	e.a, err = adapter.New(adapter.Config{OVS: sw, Store: store, Events: e.events,
		Metrics: adapter.NewMetrics(promRegistry()), OVSRunDir: e.runDir, Version: "test"})
	require.NoError(t, err)
	return e
}

func key(c, i string) contracts.AttachmentKey {
	return contracts.AttachmentKey{ContainerID: c, IfName: i}
}

func vhostClientReq(k contracts.AttachmentKey, sockDir string) *contracts.AttachRequest {
	return &contracts.AttachRequest{Key: k, Network: "net-a", Interface: contracts.HostInterface{
		IfType: contracts.IfTypeVhostUser, NetType: contracts.NetTypeBridge,
		SocketPath: filepath.Join(sockDir, k.ContainerID+"-"+k.IfName+".sock"),
		Vhost:      &contracts.VhostSpec{Mode: contracts.VhostModeClient},
		Bridge:     &contracts.BridgeSpec{Name: "br-test", VLAN: 100}, MTU: 1500,
	}}
}

func memifReq(k contracts.AttachmentKey, sockDir string) *contracts.AttachRequest {
	return &contracts.AttachRequest{Key: k, Network: "net-a", Interface: contracts.HostInterface{
		IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeBridge,
		SocketPath: filepath.Join(sockDir, k.ContainerID+"-"+k.IfName+".sock"),
		Memif:      &contracts.MemifSpec{Role: contracts.MemifRoleMaster, Mode: contracts.MemifModeEthernet, Queues: 1},
		Bridge:     &contracts.BridgeSpec{Name: "br-test"},
	}}
}

func vhostServerReq(k contracts.AttachmentKey, sockDir string) *contracts.AttachRequest {
	r := vhostClientReq(k, sockDir)
	r.Interface.Vhost = &contracts.VhostSpec{Mode: contracts.VhostModeServer}
	return r
}

func promRegistry() *prometheus.Registry { return prometheus.NewRegistry() }
