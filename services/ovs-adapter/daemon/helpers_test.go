package daemon_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/contractstest"
	"usrsp.dev/libs/adapterkit"
	"usrsp.dev/libs/ovsdpdk"
	"usrsp.dev/services/ovs-adapter/adapter"
	"usrsp.dev/services/ovs-adapter/daemon"
	"usrsp.dev/services/ovs-adapter/ovs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// config is a daemon on node with a fresh state dir, a test logger and a
// fast watch; conn is its OVS (nil: the real one of inst).
func config(t *testing.T, natsURL, node string, inst *ovsdpdk.Instance, conn ovs.Conn) daemon.Config {
	base, err := os.MkdirTemp("", "ovsd") // short: sun_path is 108 bytes
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	cfg := daemon.Config{
		Config: adapterkit.Config{NATSURL: natsURL, Node: node, StateDir: filepath.Join(t.TempDir(), "state"),
			Log:     zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel),
			PodDirs: adapterkit.PodDirs{SharedDir: filepath.Join(base, "s"), LinkDir: filepath.Join(base, "l"), KubeletPodsDir: filepath.Join(base, "k")}},
		WatchInterval: 100 * time.Millisecond, Conn: conn, OVSRunDir: t.TempDir(),
	}
	if inst != nil {
		cfg.OVSDB, cfg.OVSRunDir = inst.DBRemote(), inst.RunDir()
	}
	return cfg
}

// runDaemon starts a daemon and runs it until stop is called or t ends.
func runDaemon(t *testing.T, cfg daemon.Config) (d *daemon.Daemon, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d, err := daemon.Start(ctx, cfg)
	if err != nil {
		cancel()
		require.NoError(t, err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return d, stop
}

// subscribe connects to NATS and receives every adapter event.
func subscribe(t *testing.T, natsURL string) (*nats.Conn, <-chan *nats.Msg) {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	events := make(chan *nats.Msg, 256)
	sub, err := nc.ChanSubscribe(contracts.AllEventsSubject, events)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, nc.Flush())
	return nc, events
}

// awaitEvent waits (at most 20s) for an event of kind about k (nil: about
// no one attachment, e.g. a whole reconcile).
func awaitEvent(t *testing.T, events <-chan *nats.Msg, kind contracts.EventKind, k *contracts.AttachmentKey) contracts.Event {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m := <-events:
			ev, err := contracts.DecodeEvent(m.Data)
			require.NoError(t, err)
			if ev.Kind == kind && (ev.Key == nil) == (k == nil) && (k == nil || *ev.Key == *k) {
				require.Equal(t, contracts.EventSubject(ev.Node, contracts.EngineOVSDPDK, kind), m.Subject)
				t.Logf("%s event: %s", kind, ev.Message)
				return *ev
			}
		case <-timeout:
			t.Fatalf("no %s event for %v within 20s", kind, k)
		}
	}
}

// awaitChecks waits until Check passes for every attachment (as Attach
// reported it), polling within a bounded time like awaitPortsUp.
func awaitChecks(t *testing.T, ctx context.Context, a *adapter.Adapter, atts []contracts.Attachment, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for _, att := range atts {
		for {
			_, err := a.Check(ctx, &contracts.CheckRequest{Key: att.Key, Network: att.Network, Interface: att.Interface})
			if err == nil {
				break
			}
			require.True(t, time.Now().Before(deadline), "check %s: %v", att.Key, err)
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// awaitPortsUp waits until n owned ports exist, none with an error, all
// with an OpenFlow port. The state is another process's, with no event to
// subscribe to, so this polls within a bounded time.
func awaitPortsUp(t *testing.T, ctx context.Context, sw *ovs.Client, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ports, err := sw.OwnedPorts(ctx)
		bad := ""
		if err != nil {
			bad = err.Error()
		} else if len(ports) != n {
			bad = fmt.Sprintf("%d ports, want %d", len(ports), n)
		}
		for _, p := range ports {
			if bad == "" && (p.Error != "" || p.OFPort <= 0) {
				bad = fmt.Sprintf("port %s: ofport %d, error %q", p.Name, p.OFPort, p.Error)
			}
		}
		if bad == "" {
			return
		}
		require.True(t, time.Now().Before(deadline), "ports not back within %s: %s", within, bad)
		time.Sleep(50 * time.Millisecond)
	}
}

// ovsClient is a second OVSDB client on inst, to look at what the adapter made.
func ovsClient(t *testing.T, inst *ovsdpdk.Instance) *ovs.Client {
	sw := ovs.NewClient(ovs.Config{Remote: inst.DBRemote()})
	t.Cleanup(func() { _ = sw.Close() })
	return sw
}

// podDir makes a pod directory under cfg's shared dir.
func podDir(t *testing.T, cfg daemon.Config, name string) string {
	t.Helper()
	dir := filepath.Join(cfg.PodDirs.SharedDir, name)
	require.NoError(t, os.MkdirAll(dir, 0o750))
	return dir
}

// runSuite runs the daemon of cfg under the suite; Restart runs a new
// daemon on the same state dir (and OVS).
func runSuite(t *testing.T, cfg daemon.Config, clean func(*testing.T)) {
	_, stop := runDaemon(t, cfg)
	nc, _ := subscribe(t, cfg.NATSURL)
	sockDir := podDir(t, cfg, "pod") // socket paths must lie in a pod directory
	contractstest.RunAdapterSuite(t, contractstest.Target{
		NC: nc, Node: cfg.Node, Engine: contracts.EngineOVSDPDK,
		Request: func(k contracts.AttachmentKey, network string) *contracts.AttachRequest {
			h := contracts.HostInterface{NetType: contracts.NetTypeBridge, MTU: 1500,
				SocketPath: filepath.Join(sockDir, k.ShortID()+".sock"), Bridge: &contracts.BridgeSpec{Name: "br-conf"}}
			if k.ShortID() < "8" { // half memif, half vhost-user
				h.IfType, h.Memif = contracts.IfTypeMemif, &contracts.MemifSpec{Role: contracts.MemifRoleMaster, Mode: contracts.MemifModeEthernet}
			} else {
				h.IfType, h.Vhost = contracts.IfTypeVhostUser, &contracts.VhostSpec{Mode: contracts.VhostModeClient}
			}
			return &contracts.AttachRequest{Key: k, Network: network, Interface: h}
		},
		Conflicting: func(r *contracts.AttachRequest) *contracts.AttachRequest {
			c := *r
			c.Interface.MTU = 1400
			return &c
		},
		Restart: func(*testing.T) {
			stop()
			_, stop = runDaemon(t, cfg)
		},
		AssertClean: clean,
	})
}
