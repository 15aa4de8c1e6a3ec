package daemon_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/natstest"
	"usrsp.dev/libs/ovsdpdk"
	"usrsp.dev/libs/ovsdpdk/ovsdpdktest"
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
	ctx := context.Background()
	cfg := config(t, srv.ClientURL(), "node-1", inst, nil)
	d, _ := runDaemon(t, cfg)
	sw := ovsClient(t, inst)
	sockDir := podDir(t, cfg, "pod")

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
	ctx := context.Background()
	cfg := config(t, srv.ClientURL(), "node-1", inst, nil)
	d, _ := runDaemon(t, cfg)
	_, events := subscribe(t, srv.ClientURL())
	sw := ovsClient(t, inst)
	pod := podDir(t, cfg, "pod")

	k := contracts.AttachmentKey{ContainerID: "retry01", IfName: "net1"}
	req := &contracts.AttachRequest{Key: k, Network: "net-a", Interface: contracts.HostInterface{
		IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeBridge, SocketPath: filepath.Join(pod, "memif.sock"),
		Memif:  &contracts.MemifSpec{Role: contracts.MemifRoleMaster, Mode: contracts.MemifModeEthernet},
		Bridge: &contracts.BridgeSpec{Name: "br-memif"},
	}}
	_, err := d.Adapter.Attach(ctx, req)
	require.NoError(t, err)
	require.NoError(t, os.RemoveAll(pod))
	require.NoError(t, inst.RestartVswitchd(ctx, true))

	awaitEvent(t, events, contracts.EventError, &k)
	require.NoError(t, os.Mkdir(pod, 0o755))
	awaitEvent(t, events, contracts.EventReconciled, &k)
	awaitPortsUp(t, ctx, sw, 1, 10*time.Second)
	_, err = d.Adapter.Check(ctx, &contracts.CheckRequest{Key: k, Network: req.Network, Interface: req.Interface})
	require.NoError(t, err)
}
