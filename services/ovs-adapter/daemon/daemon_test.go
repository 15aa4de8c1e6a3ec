package daemon_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/natstest"
	"usrsp.dev/libs/ovsdpdk/ovsdpdktest"
	"usrsp.dev/services/ovs-adapter/daemon"
)

// TestDaemonOverNATS runs the daemon on a private OVS-DPDK and an embedded
// NATS and drives it only through contracts.Client, as cni-entry does.
func TestDaemonOverNATS(t *testing.T) {
	inst := ovsdpdktest.Start(t)
	srv := natstest.Run(t)
	ctx, cancel := context.WithCancel(context.Background())
	stateDir := filepath.Join(t.TempDir(), "state")
	d, err := daemon.Start(ctx, daemon.Config{
		NATSURL: srv.ClientURL(), Node: "node-1.example", OVSDB: inst.DBRemote(), OVSRunDir: inst.RunDir(),
		StateDir: stateDir, MetricsAddr: "127.0.0.1:0", WatchInterval: 100 * time.Millisecond,
		Log: zerolog.New(zerolog.NewTestWriter(t)),
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
	events := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(contracts.AllEventsSubject, events)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, nc.Flush())
	awaitEvent := func(kind contracts.EventKind) contracts.Event {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case m := <-events:
				ev, err := contracts.DecodeEvent(m.Data)
				require.NoError(t, err)
				if ev.Kind == kind {
					assert.Equal(t, contracts.EventSubject("node-1.example", contracts.EngineOVSDPDK, kind), m.Subject)
					return *ev
				}
			case <-timeout:
				t.Fatalf("no %s event within 20s", kind)
			}
		}
	}

	client := contracts.NewClient(nc, "node-1.example", 20*time.Second)
	st, err := client.Status(ctx, contracts.EngineOVSDPDK)
	require.NoError(t, err)
	assert.True(t, st.Ready, st.Message)
	assert.Contains(t, st.Vswitch, "Open vSwitch")

	sockDir, err := os.MkdirTemp("", "pod")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	req := &contracts.AttachRequest{Key: contracts.AttachmentKey{ContainerID: "0123456789abcdef", IfName: "net1"}, Network: "userspace-ovs",
		Interface: contracts.HostInterface{IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeBridge,
			SocketPath: filepath.Join(sockDir, "memif-net1.sock"),
			Memif:      &contracts.MemifSpec{Role: contracts.MemifRoleMaster, Mode: contracts.MemifModeEthernet},
			Bridge:     &contracts.BridgeSpec{Name: "br-nats", VLAN: 10}}}
	att, err := client.Attach(ctx, contracts.EngineOVSDPDK, req)
	require.NoError(t, err)
	assert.Equal(t, 2, att.Attachment.Interface.Memif.Queues)
	ev := awaitEvent(contracts.EventAttached)
	assert.Equal(t, req.Key, *ev.Key)

	list, err := client.List(ctx, contracts.EngineOVSDPDK, &contracts.ListRequest{Network: "userspace-ovs"})
	require.NoError(t, err)
	require.Len(t, list.Attachments, 1)
	_, err = client.Check(ctx, contracts.EngineOVSDPDK, &contracts.CheckRequest{Key: req.Key, Network: req.Network, Interface: req.Interface})
	require.NoError(t, err)

	// Bad request: the code travels over NATS.
	bad := *req
	bad.Interface.NetType = contracts.NetTypeInterface
	bad.Key.IfName = "net2"
	_, err = client.Attach(ctx, contracts.EngineOVSDPDK, &bad)
	assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err), "%v", err)

	// vswitchd restarts: the watcher notices the new pid and reconciles.
	require.NoError(t, inst.RestartVswitchd(ctx, true))
	awaitEvent(contracts.EventReconciled)
	_, err = client.Check(ctx, contracts.EngineOVSDPDK, &contracts.CheckRequest{Key: req.Key, Network: req.Network, Interface: req.Interface})
	require.NoError(t, err, "the memif port is back after a vswitchd crash")

	for path, wants := range map[string][]string{"/healthz": {"ok"}, "/readyz": {"ready"},
		"/metrics": {"usrsp_ovs_adapter_attach_seconds_count 1", "usrsp_ovs_adapter_vswitch_seconds_count 1"}} {
		resp, err := http.Get("http://" + d.HTTPAddr() + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
		for _, want := range wants {
			assert.Contains(t, string(body), want, path)
		}
	}

	det, err := client.Detach(ctx, contracts.EngineOVSDPDK, &contracts.DetachRequest{Key: req.Key, Network: req.Network})
	require.NoError(t, err)
	assert.True(t, det.Removed)
	awaitEvent(contracts.EventDetached)
	out, err := inst.Vsctl(ctx, "list-br")
	require.NoError(t, err)
	assert.Empty(t, out)
	assert.NoFileExists(t, req.Interface.SocketPath)
	entries, err := os.ReadDir(stateDir)
	require.NoError(t, err)
	assert.Empty(t, entries)
}
