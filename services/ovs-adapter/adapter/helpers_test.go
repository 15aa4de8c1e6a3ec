package adapter_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/adapterkit"
	"usrsp.dev/libs/confine"
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

var _ contracts.EventPublisher = (*events)(nil)

type env struct {
	a       *adapter.Adapter
	ovs     ovs.OVS
	store   *adapter.Store
	events  *events
	sockDir string // a pod directory: <dirs.SharedDir>/pod
	runDir  string
	base    string // holds the pod directories
	dirs    adapterkit.PodDirs
	roots   *confine.Roots
	metrics *adapterkit.Metrics
	vtep    netip.Addr // the adapter's Config.VTEP (withVTEP)
}

// newEnv builds an adapter on sw (an ovstest.Fake when nil) with a fresh
// state dir, or stateDir when given.
func newEnv(t *testing.T, sw ovs.OVS, stateDir string) *env {
	t.Helper()
	if sw == nil {
		sw = ovstest.New()
	}
	return buildEnv(t, sw, stateDir, t.TempDir())
}

// buildEnv builds an adapter on sw whose vswitchd runs in runDir, with a
// fresh state dir unless stateDir is given. The socket dir is short
// (sun_path is 108 bytes).
func buildEnv(tb testing.TB, sw ovs.OVS, stateDir, runDir string) *env {
	tb.Helper()
	if stateDir == "" {
		stateDir = filepath.Join(tb.TempDir(), "state")
	}
	store, err := adapter.OpenStore(stateDir)
	require.NoError(tb, err)
	base, err := os.MkdirTemp("", "ovsa")
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = os.RemoveAll(base) })
	dirs := adapterkit.PodDirs{SharedDir: filepath.Join(base, "s"), LinkDir: filepath.Join(base, "l"), KubeletPodsDir: filepath.Join(base, "k")}
	require.NoError(tb, os.MkdirAll(dirs.KubeletPodsDir, 0o755))
	roots, err := dirs.Roots(stateDir, runDir)
	require.NoError(tb, err)
	sockDir := filepath.Join(dirs.SharedDir, "pod")
	require.NoError(tb, os.Mkdir(sockDir, 0o750))
	e := &env{ovs: sw, store: store, events: &events{}, sockDir: sockDir, runDir: runDir, dirs: dirs, base: base,
		metrics: adapterkit.NewMetrics(contracts.EngineOVSDPDK), roots: roots}
	e.a, err = adapter.New(e.config())
	require.NoError(tb, err)
	return e
}

// config is the adapter's configuration in e.
func (e *env) config() adapter.Config {
	return adapter.Config{OVS: e.ovs, Store: e.store, Events: e.events, Metrics: e.metrics, OVSRunDir: e.runDir, Roots: e.roots, Version: "test", VTEP: e.vtep}
}

// withVTEP makes e's adapter anew with Config.VTEP vtep.
func (e *env) withVTEP(tb testing.TB, vtep string) *env {
	tb.Helper()
	e.vtep = netip.MustParseAddr(vtep)
	e.metrics = adapterkit.NewMetrics(contracts.EngineOVSDPDK) // registered once per adapter
	var err error
	e.a, err = adapter.New(e.config())
	require.NoError(tb, err)
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

// restart is a new adapter on e's state dir, pod directories and OVS, as
// after an adapter restart.
func (e *env) restart(tb testing.TB) *env {
	tb.Helper()
	r := *e
	var err error
	r.store, err = adapter.OpenStore(e.store.Dir())
	require.NoError(tb, err)
	r.events, r.metrics = &events{}, adapterkit.NewMetrics(contracts.EngineOVSDPDK)
	r.a, err = adapter.New(r.config())
	require.NoError(tb, err)
	return &r
}
