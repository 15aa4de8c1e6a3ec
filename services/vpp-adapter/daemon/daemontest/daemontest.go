// Package daemontest runs the vpp-adapter daemon in-process for tests: on
// an embedded NATS, with its records in a temp dir, against the fake VPP
// (libs/vpp/vpptest) or a real one, and describes it as a
// contractstest.Target for the shared adapter conformance suite.
package daemontest

import (
	"cmp"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/contractstest"
	"usrsp.dev/libs/natstest"
	"usrsp.dev/services/vpp-adapter/daemon"
)

// Node is the node name the daemons of tests serve.
const Node = "node-1.example"

// Instance is one daemon under test and the test's NATS connection to it.
type Instance struct {
	t   *testing.T
	cfg daemon.Config
	// D is the running daemon (a new one after Restart).
	D *daemon.Daemon
	// NC is the test's own connection; Client talks to the daemon on it.
	NC     *nats.Conn
	Client *contracts.Client
	// PodDir holds the pods' socket directories of Request: the daemon's
	// shared dir. LinkDir is its link dir, StateDir its state dir.
	PodDir, LinkDir, StateDir string
	stop                      func()
}

// New starts a daemon with cfg, filling in an embedded NATS, Node, a state
// dir and an HTTP listener on a free port where cfg leaves them empty, and
// a test logger, but does not connect it to VPP yet (see Run).
func New(t *testing.T, cfg daemon.Config) *Instance {
	t.Helper()
	if cfg.NATSURL == "" {
		cfg.NATSURL = natstest.Run(t).ClientURL()
	}
	cfg.Node = cmp.Or(cfg.Node, Node)
	cfg.StateDir = cmp.Or(cfg.StateDir, filepath.Join(t.TempDir(), "state"))
	cfg.MetricsAddr = cmp.Or(cfg.MetricsAddr, "127.0.0.1:0")
	cfg.Log = zerolog.New(zerolog.NewTestWriter(t)).With().Timestamp().Logger()
	// Unix socket paths are limited to 107 bytes: a short dir, not t.TempDir.
	podDir, err := os.MkdirTemp("", "usrsp-pods-")
	require.NoError(t, err)
	linkDir, err := os.MkdirTemp("", "usrsp-links-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(podDir); _ = os.RemoveAll(linkDir) })
	// The daemon's roots (libs/confine): never the node's own directories.
	cfg.PodDirs.SharedDir = cmp.Or(cfg.PodDirs.SharedDir, podDir)
	cfg.PodDirs.LinkDir = cmp.Or(cfg.PodDirs.LinkDir, linkDir)
	cfg.PodDirs.KubeletPodsDir = cmp.Or(cfg.PodDirs.KubeletPodsDir, filepath.Join(linkDir, "no-kubelet"))
	i := &Instance{t: t, cfg: cfg, PodDir: cfg.PodDirs.SharedDir, LinkDir: cfg.PodDirs.LinkDir, StateDir: cfg.StateDir, stop: func() {}}
	i.NC = contractstest.Connect(t, cfg.NATSURL)
	i.Client = contracts.NewClient(i.NC, cfg.Node, 20*time.Second)
	i.D, err = daemon.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { i.stop(); i.D.Close() })
	return i
}

// Start is New and Run.
func Start(t *testing.T, cfg daemon.Config) *Instance {
	t.Helper()
	i := New(t, cfg)
	i.Run()
	return i
}

// Run runs the daemon (its VPP connection loop) until Restart or the end
// of the test.
func (i *Instance) Run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	d := i.D
	go func() { done <- d.Run(ctx) }()
	i.stop = func() {
		cancel()
		require.NoError(i.t, <-done)
		i.stop = func() {}
	}
}

// Stop stops the daemon like a process that exits (its overlay, if any,
// announces that it leaves); Restart runs it again.
func (i *Instance) Stop() { i.stop() }

// Restart stops the daemon and runs a new one on the same records, NATS
// and VPP, like a restarted process; it returns once that one is ready.
func (i *Instance) Restart(t *testing.T) {
	t.Helper()
	i.stop()
	d, err := daemon.Start(i.cfg)
	require.NoError(t, err)
	i.D = d
	i.Run()
	i.WaitReady(t, time.Minute)
}

// WaitReady polls readiness (it has no event) until the daemon is ready.
func (i *Instance) WaitReady(t *testing.T, within time.Duration) {
	t.Helper()
	i.Poll(t, within, "ready", func(ready bool, _ string) bool { return ready })
}

// Poll polls the daemon's readiness until done says so and returns the
// last reason; it fails t after within.
func (i *Instance) Poll(t *testing.T, within time.Duration, what string, done func(ready bool, why string) bool) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ready, why := i.D.Ready()
		if done(ready, why) {
			return why
		}
		if time.Now().After(deadline) {
			t.Fatalf("adapter not %s within %s; ready=%v reason=%q", what, within, ready, why)
		}
		time.Sleep(10 * time.Millisecond) // poll with a deadline
	}
}

// Get fetches path from the daemon's HTTP endpoint.
func (i *Instance) Get(t *testing.T, path string) (int, string) {
	t.Helper()
	r, err := http.Get("http://" + i.D.HTTPAddr() + path)
	require.NoError(t, err)
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	return r.StatusCode, string(b)
}

// MemifRequest is a memif master of key on network in bridge domain bd,
// its socket in a directory of its own under PodDir.
func (i *Instance) MemifRequest(k contracts.AttachmentKey, network string, bd uint32) *contracts.AttachRequest {
	dir := filepath.Join(i.PodDir, k.ShortID())
	require.NoError(i.t, os.MkdirAll(dir, 0o755))
	return &contracts.AttachRequest{Key: k, Network: network, Interface: contracts.HostInterface{
		IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeBridge,
		SocketPath: filepath.Join(dir, "memif-"+k.IfName+".sock"),
		Memif:      &contracts.MemifSpec{Role: contracts.MemifRoleMaster, Mode: contracts.MemifModeEthernet},
		Bridge:     &contracts.BridgeSpec{ID: bd}}}
}

// Target is the daemon as a conformance suite target: memif masters in
// bridge domain 7, a conflict is another memif id, Restart restarts the
// daemon. assertClean (may be nil) checks VPP holds nothing of ours.
func (i *Instance) Target(assertClean func(*testing.T)) contractstest.Target {
	return contractstest.Target{
		NC: i.NC, Node: i.cfg.Node, Engine: contracts.EngineVPP, Timeout: 20 * time.Second,
		Request: func(k contracts.AttachmentKey, network string) *contracts.AttachRequest {
			return i.MemifRequest(k, network, 7)
		},
		Conflicting: contractstest.OtherMemifID,
		Restart:     i.Restart,
		AssertClean: assertClean,
	}
}
