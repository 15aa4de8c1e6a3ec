package daemon_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/natstest"
	"usrsp.dev/libs/ovsdpdk"
	"usrsp.dev/libs/ovsdpdk/ovsdpdktest"
	"usrsp.dev/services/ovs-adapter/adapter"
	"usrsp.dev/services/ovs-adapter/daemon"
	"usrsp.dev/services/ovs-adapter/ovs"
)

// TestMemifPortsSurviveVswitchdRestart: with many memif server ports (and
// one dpdkvhostuser port), a restarted ovs-vswitchd (killed, then stopped
// gracefully) gets every port back without an Interface.error, Check
// passes for all, and a pod's DPDK app links up on a memif port. Before
// the daemon removed stale sockets the moment vswitchd died, they made
// the new vswitchd fail each memif port once, which keeps a DPDK ethdev
// allocated per port; with 30 ports the renamed re-creates found no free
// ethdev (DPDK 22.11: 32 per process; OVS's vhost-user ports use none).
// USRSP_MEMIF_PORTS sets the memif port count (default 12, at most 32).
func TestMemifPortsSurviveVswitchdRestart(t *testing.T) {
	n := 12
	if s := os.Getenv("USRSP_MEMIF_PORTS"); s != "" {
		var err error
		n, err = strconv.Atoi(s)
		require.NoError(t, err, "USRSP_MEMIF_PORTS")
	}
	inst := ovsdpdktest.Start(t)
	srv := natstest.Run(t)
	ctx, cancel := context.WithCancel(context.Background())
	d, err := daemon.Start(ctx, daemon.Config{
		NATSURL: srv.ClientURL(), Node: "node-1", OVSDB: inst.DBRemote(), OVSRunDir: inst.RunDir(),
		StateDir: filepath.Join(t.TempDir(), "state"), WatchInterval: 100 * time.Millisecond,
		Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel),
	})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	sw := ovs.NewClient(ovs.Config{Remote: inst.DBRemote()})
	t.Cleanup(func() { _ = sw.Close() })
	sockDir, err := os.MkdirTemp("", "pod")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })

	// One dpdkvhostuser port too: OVS serves its socket in its run dir,
	// which a crash leaves behind as well.
	vhost, err := d.Adapter.Attach(ctx, &contracts.AttachRequest{Key: contracts.AttachmentKey{ContainerID: "vhost", IfName: "net1"}, Network: "net-a",
		Interface: contracts.HostInterface{IfType: contracts.IfTypeVhostUser, NetType: contracts.NetTypeBridge,
			SocketPath: filepath.Join(sockDir, "vhost.sock"), Vhost: &contracts.VhostSpec{Mode: contracts.VhostModeServer},
			Bridge: &contracts.BridgeSpec{Name: "br-memif"}}})
	require.NoError(t, err)
	atts := []contracts.Attachment{vhost.Attachment}
	for i := range n {
		k := contracts.AttachmentKey{ContainerID: fmt.Sprintf("memif%02d", i), IfName: "net1"}
		resp, err := d.Adapter.Attach(ctx, &contracts.AttachRequest{Key: k, Network: "net-a", Interface: contracts.HostInterface{
			IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeBridge,
			SocketPath: filepath.Join(sockDir, k.ContainerID+".sock"),
			Memif:      &contracts.MemifSpec{Role: contracts.MemifRoleMaster, Mode: contracts.MemifModeEthernet},
			Bridge:     &contracts.BridgeSpec{Name: "br-memif"},
		}})
		require.NoError(t, err)
		atts = append(atts, resp.Attachment)
	}

	for _, crash := range []bool{true, false} {
		start := time.Now()
		require.NoError(t, inst.RestartVswitchd(ctx, crash))
		restarted := time.Since(start)
		awaitPortsUp(t, ctx, sw, len(atts), 30*time.Second)
		// The vhost-user socket is exposed again by the reconcile.
		awaitChecks(t, ctx, d.Adapter, atts, 10*time.Second)
		t.Logf("%d memif ports and 1 dpdkvhostuser port usable %s after the restart began (crash=%v; vswitchd itself took %s)",
			n, time.Since(start).Round(time.Millisecond), crash, restarted.Round(time.Millisecond))
	}

	att := atts[len(atts)-1]
	q := "--rxq=" + strconv.Itoa(att.Interface.Memif.Queues)
	pmd, err := ovsdpdk.StartTestpmd(ovsdpdk.MemifClient(att.SocketPath), "--forward-mode=rxonly", q, "--txq="+q[len("--rxq="):])
	require.NoError(t, err)
	t.Cleanup(func() {
		if out := pmd.Stop(); t.Failed() {
			t.Logf("testpmd output:\n%s", out)
		}
	})
	_, err = inst.Vsctl(ctx, "--timeout=20", "wait-until", "Interface", att.HostIfName, "link_state=up")
	require.NoError(t, err, "memif link of %s did not come up after the restarts", att.HostIfName)
}

// TestFailedPortIsRetried: a port the restarted vswitchd cannot re-create
// (its memif socket's directory is gone) is reported as an error event and
// reconciled again with backoff, so it comes back once the cause is gone.
func TestFailedPortIsRetried(t *testing.T) {
	inst := ovsdpdktest.Start(t)
	srv := natstest.Run(t)
	ctx, cancel := context.WithCancel(context.Background())
	d, err := daemon.Start(ctx, daemon.Config{
		NATSURL: srv.ClientURL(), Node: "node-1", OVSDB: inst.DBRemote(), OVSRunDir: inst.RunDir(),
		StateDir: filepath.Join(t.TempDir(), "state"), WatchInterval: 100 * time.Millisecond,
		Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel),
	})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	events := make(chan *nats.Msg, 256)
	sub, err := nc.ChanSubscribe(contracts.AllEventsSubject, events)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, nc.Flush())
	sw := ovs.NewClient(ovs.Config{Remote: inst.DBRemote()})
	t.Cleanup(func() { _ = sw.Close() })
	sockDir, err := os.MkdirTemp("", "pod")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	podDir := filepath.Join(sockDir, "pod")
	require.NoError(t, os.Mkdir(podDir, 0o755))

	k := contracts.AttachmentKey{ContainerID: "retry01", IfName: "net1"}
	req := &contracts.AttachRequest{Key: k, Network: "net-a", Interface: contracts.HostInterface{
		IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeBridge, SocketPath: filepath.Join(podDir, "memif.sock"),
		Memif:  &contracts.MemifSpec{Role: contracts.MemifRoleMaster, Mode: contracts.MemifModeEthernet},
		Bridge: &contracts.BridgeSpec{Name: "br-memif"},
	}}
	_, err = d.Adapter.Attach(ctx, req)
	require.NoError(t, err)
	require.NoError(t, os.RemoveAll(podDir))
	require.NoError(t, inst.RestartVswitchd(ctx, true))

	awaitEvent(t, events, contracts.EventError, &k)
	require.NoError(t, os.Mkdir(podDir, 0o755))
	awaitEvent(t, events, contracts.EventReconciled, &k)
	awaitPortsUp(t, ctx, sw, 1, 10*time.Second)
	_, err = d.Adapter.Check(ctx, &contracts.CheckRequest{Key: k, Network: req.Network, Interface: req.Interface})
	require.NoError(t, err)
}

// awaitEvent waits (at most 20s) for an event of kind about k (nil: about
// no one attachment, e.g. a whole reconcile).
func awaitEvent(t *testing.T, events <-chan *nats.Msg, kind contracts.EventKind, k *contracts.AttachmentKey) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m := <-events:
			ev, err := contracts.DecodeEvent(m.Data)
			require.NoError(t, err)
			if ev.Kind == kind && (ev.Key == nil) == (k == nil) && (k == nil || *ev.Key == *k) {
				t.Logf("%s event: %s", kind, ev.Message)
				return
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
