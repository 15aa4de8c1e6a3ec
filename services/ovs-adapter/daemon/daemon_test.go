package daemon_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/adapterkit"
	"usrsp.dev/libs/natstest"
	"usrsp.dev/libs/ovsdpdk/ovsdpdktest"
	"usrsp.dev/services/ovs-adapter/daemon"
	"usrsp.dev/services/ovs-adapter/ovs/ovstest"
	"usrsp.dev/services/ovs-adapter/version"
)

// TestDaemonOverNATS runs the daemon on a private OVS-DPDK and an embedded
// NATS and drives it through contracts.Client, as cni-entry does: what
// the conformance suite does not cover (memif queues from the PMDs,
// vswitchd restarts, the HTTP endpoint, the state dir).
func TestDaemonOverNATS(t *testing.T) {
	inst := ovsdpdktest.Start(t)
	srv := natstest.Run(t)
	ctx := context.Background()
	cfg := config(t, srv.ClientURL(), "node-1.example", inst, nil)
	cfg.MetricsAddr = "127.0.0.1:0"
	d, _ := runDaemon(t, cfg)
	nc, events := subscribe(t, srv.ClientURL())

	client := contracts.NewClient(nc, "node-1.example", 20*time.Second)
	st, err := client.Status(ctx, contracts.EngineOVSDPDK)
	require.NoError(t, err)
	assert.True(t, st.Ready, st.Message)
	assert.Contains(t, st.Vswitch, "Open vSwitch")

	sockDir := podDir(t, cfg, "pod")
	req := &contracts.AttachRequest{Key: contracts.AttachmentKey{ContainerID: "0123456789abcdef", IfName: "net1"}, Network: "userspace-ovs",
		Interface: contracts.HostInterface{IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeBridge,
			SocketPath: filepath.Join(sockDir, "memif-net1.sock"),
			Memif:      &contracts.MemifSpec{Role: contracts.MemifRoleMaster, Mode: contracts.MemifModeEthernet},
			Bridge:     &contracts.BridgeSpec{Name: "br-nats", VLAN: 10}}}
	att, err := client.Attach(ctx, contracts.EngineOVSDPDK, req)
	require.NoError(t, err)
	assert.Equal(t, 2, att.Attachment.Interface.Memif.Queues)
	ev := awaitEvent(t, events, contracts.EventAttached, &req.Key)
	assert.Equal(t, req.Network, ev.Network)

	// vswitchd restarts: the watcher notices the new pid and reconciles.
	require.NoError(t, inst.RestartVswitchd(ctx, true))
	awaitEvent(t, events, contracts.EventReconciled, nil)
	_, err = client.Check(ctx, contracts.EngineOVSDPDK, &contracts.CheckRequest{Key: req.Key, Network: req.Network, Interface: req.Interface})
	require.NoError(t, err, "the memif port is back after a vswitchd crash")

	for path, wants := range map[string][]string{"/healthz": {"ok"}, "/readyz": {"ready"}, "/metrics": {
		`usrsp_adapter_request_duration_seconds_count{engine="ovs-dpdk",op="attach"} 1`,
		`usrsp_adapter_vswitch_call_seconds_count{engine="ovs-dpdk"} 1`,
		`usrsp_adapter_attachments{engine="ovs-dpdk"} 1`,
		`usrsp_adapter_vswitch_connected{engine="ovs-dpdk"} 1`,
		`usrsp_adapter_reconcile_duration_seconds_count{engine="ovs-dpdk"}`,
	}} {
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
	awaitEvent(t, events, contracts.EventDetached, &req.Key)
	out, err := inst.Vsctl(ctx, "list-br")
	require.NoError(t, err)
	assert.Empty(t, out)
	assert.NoFileExists(t, req.Interface.SocketPath)
	entries, err := os.ReadDir(cfg.StateDir)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

// TestReadiness: /readyz is 503 with the reason while OVSDB is not
// reachable, and 200 once Run reached it and reconciled (fake OVS here).
func TestReadiness(t *testing.T) {
	srv := natstest.Run(t)
	fake := ovstest.New()
	cfg := config(t, srv.ClientURL(), "node-1", nil, fake)
	cfg.MetricsAddr, cfg.WatchInterval = "127.0.0.1:0", 10*time.Millisecond
	fake.FailNext("Ping", contracts.Errorf(contracts.CodeTryAgainLater, "OVSDB unreachable"))
	ctx, cancel := context.WithCancel(context.Background())
	d, err := daemon.Start(ctx, cfg)
	require.NoError(t, err)
	readyz := func() (int, string) {
		resp, err := http.Get("http://" + d.HTTPAddr() + "/readyz")
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode, string(body)
	}
	code, body := readyz()
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "vswitch not connected: OVSDB unreachable")

	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	require.Eventually(t, func() bool { code, _ := readyz(); return code == http.StatusOK }, 5*time.Second, 10*time.Millisecond)
	assert.Positive(t, d.Reconciles())
	cancel()
	require.NoError(t, <-done)
}

// TestVersionFlag: --version names the adapter and the OVS it is built for.
func TestVersionFlag(t *testing.T) {
	var out bytes.Buffer
	var cfg daemon.Config
	fs := flag.NewFlagSet("ovs-adapter", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	_, err := daemon.Program.Parse(fs, []string{"--version", "--ovsdb", "tcp:127.0.0.1:6640"}, &out, io.Discard)
	require.True(t, errors.Is(err, adapterkit.ErrVersion), "%v", err)
	assert.Contains(t, out.String(), "ovs-adapter "+version.Version)
	assert.Contains(t, out.String(), "Open vSwitch 3.1.0 with DPDK 22.11.11")
	assert.Equal(t, "tcp:127.0.0.1:6640", cfg.OVSDB)
}

// TestCraftedAttachOverNATS is issue 11's attack as it came: one attach on
// NATS, vhost-user server mode, socketPath naming a file outside every
// root (standing for /etc/shadow), and a pod directory swapped for a
// symlink to it. Each fails with code 7 naming the field; the file stays.
func TestCraftedAttachOverNATS(t *testing.T) {
	for _, real := range []bool{false, true} {
		name := "fake OVS"
		if real {
			name = "real OVS"
		}
		t.Run(name, func(t *testing.T) {
			srv := natstest.Run(t)
			cfg := config(t, srv.ClientURL(), "crafted", nil, ovstest.New())
			if real {
				cfg = config(t, srv.ClientURL(), "crafted", ovsdpdktest.Start(t), nil)
			}
			runDaemon(t, cfg)
			nc, _ := subscribe(t, srv.ClientURL())
			client := contracts.NewClient(nc, cfg.Node, 20*time.Second)

			secret := filepath.Join(t.TempDir(), "shadow")
			require.NoError(t, os.WriteFile(secret, []byte("root:$6$x"), 0o600))
			require.NoError(t, os.Symlink(filepath.Dir(secret), filepath.Join(cfg.PodDirs.SharedDir, "swapped")))
			for _, path := range []string{secret, filepath.Join(cfg.PodDirs.SharedDir, "swapped", "shadow")} {
				_, err := client.Attach(context.Background(), contracts.EngineOVSDPDK, &contracts.AttachRequest{
					Key: contracts.AttachmentKey{ContainerID: "attacker", IfName: "net1"}, Network: "n",
					Interface: contracts.HostInterface{IfType: contracts.IfTypeVhostUser, NetType: contracts.NetTypeBridge,
						SocketPath: path, Vhost: &contracts.VhostSpec{Mode: contracts.VhostModeServer}, Bridge: &contracts.BridgeSpec{Name: "br-x"}}})
				require.Error(t, err, path)
				assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err), "%v", err)
				assert.Contains(t, err.Error(), "interface.socketPath")
				b, err := os.ReadFile(secret)
				require.NoError(t, err, "the file outside is still there")
				assert.Equal(t, "root:$6$x", string(b))
			}
		})
	}
}

// TestConformanceFakeOVS runs the shared adapter suite against the daemon
// on an in-memory OVS and an embedded NATS.
func TestConformanceFakeOVS(t *testing.T) {
	srv := natstest.Run(t)
	fake := ovstest.New()
	runSuite(t, config(t, srv.ClientURL(), "conf-fake", nil, fake), func(t *testing.T) {
		assert.Empty(t, fake.All(), "ports left in OVS")
		assert.Empty(t, fake.Bridges(), "bridges left in OVS")
	})
}

// TestConformanceRealOVS runs the shared adapter suite against the daemon
// on a private OVS-DPDK.
func TestConformanceRealOVS(t *testing.T) {
	inst := ovsdpdktest.Start(t)
	srv := natstest.Run(t)
	sw := ovsClient(t, inst)
	runSuite(t, config(t, srv.ClientURL(), "conf-real", inst, nil), func(t *testing.T) {
		ports, err := sw.OwnedPorts(context.Background())
		require.NoError(t, err)
		assert.Empty(t, ports, "ports left in OVS")
	})
}
