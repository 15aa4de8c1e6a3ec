//go:build e2e

// Package e2e proves the whole usrsp path on this machine with real
// packets: libcni (as Multus) → the built cni-entry → NATS → the
// ovs-adapter process → a private OVS-DPDK → the pods' apps (dpdk-testpmd
// and pod-consumer in network namespaces). Run as root: `make e2e`.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/ovsdpdk"
	"usrsp.dev/tools/harness"
)

const ifName = "net1"

// binDir holds the binaries built once for all tests ("" when skipping).
var binDir string

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	// Root is all the binaries need; the OVS and VPP tests check the rest.
	if os.Geteuid() == 0 {
		dir, err := os.MkdirTemp("", "usrsp-e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		start := time.Now()
		if err := harness.Build(context.Background(), "", dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("e2e: built binaries in %s\n", time.Since(start).Round(time.Millisecond))
		binDir = dir
	}
	return m.Run()
}

// skipReason says why the suite cannot run here ("" if it can).
func skipReason() string {
	switch {
	case os.Geteuid() != 0:
		return "e2e needs root (hugepages, network namespaces): run `sudo make e2e`"
	case !installed(ovsdpdk.DefaultVswitchd):
		return ovsdpdk.DefaultVswitchd + " missing: run `make deps` (deploy/scripts/install-deps.sh)"
	case !installed("dpdk-testpmd"):
		return "dpdk-testpmd missing: run `make deps` (Debian package dpdk-dev)"
	}
	return ""
}

func installed(bin string) bool { _, err := exec.LookPath(bin); return err == nil }

// engineCase is one engine's node and the vswitch network (bridge) a
// test's pods join.
type engineCase struct {
	engine contracts.Engine
	node   func(t *testing.T) *harness.Harness
	bridge map[string]any // host.bridge of the test's networks
}

var (
	ovsCase     = engineCase{engine: contracts.EngineOVSDPDK, node: node, bridge: map[string]any{"bridgeName": "br-e2e"}}
	vppCase     = engineCase{engine: contracts.EngineVPP, node: vppNode, bridge: map[string]any{"bridgeId": 7}}
	engineCases = []engineCase{ovsCase, vppCase}
)

// node brings up a node for t and tears it down in t.Cleanup.
func node(t *testing.T) *harness.Harness {
	t.Helper()
	if r := skipReason(); r != "" {
		t.Skip(r)
	}
	t.Cleanup(func() { assertNoDPDKLeftovers(t) }) // registered first: runs after the node's Close
	return startNode(t, contracts.EngineOVSDPDK, "ovs-vswitchd log", func(h *harness.Harness) string { return h.OVS.VswitchdLogTail(20) })
}

// startNode brings up a node of engine for t and closes it in t.Cleanup;
// when t failed, it first logs the tails of the adapter's log, the
// vswitch's (vswitchLog names it, tail reads it) and the plugin's.
func startNode(t *testing.T, engine contracts.Engine, vswitchLog string, tail func(*harness.Harness) string) *harness.Harness {
	t.Helper()
	require.NotEmpty(t, binDir, "binaries not built")
	start := time.Now()
	h, err := harness.New(context.Background(), harness.Config{BinDir: binDir, Logf: t.Logf, Engine: engine})
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s adapter log (tail):\n%s", engine, h.AdapterLogTail(30))
			t.Logf("%s (tail):\n%s", vswitchLog, tail(h))
			b, _ := os.ReadFile(filepath.Join(h.LogDir(), "userspace.log"))
			t.Logf("userspace log (tail):\n%s", lastLines(string(b), 20))
		}
		assert.NoError(t, h.Close())
	})
	t.Logf("phase node up (%s): %s", engine, time.Since(start).Round(time.Millisecond))
	return h
}

// rangeNetwork is a userspace network with host and host-local addresses
// from first to last of subnet: networks sharing a vswitch network
// (bridge) and subnet each take their own range.
func rangeNetwork(t *testing.T, h *harness.Harness, name string, host map[string]any, subnet, first, last string) *harness.Network {
	t.Helper()
	n, err := h.NetworkFrom(map[string]any{
		"type": "userspace", "name": name, "host": host,
		"ipam": map[string]any{"type": "host-local", "ranges": []any{[]any{
			map[string]any{"subnet": subnet, "rangeStart": first, "rangeEnd": last}}}},
	})
	require.NoError(t, err)
	return n
}

// subscribeReconciled subscribes to the node's reconciled events, before a
// vswitch restart; the func it returns waits for one, failing t when ctx
// ends first.
func subscribeReconciled(t *testing.T, h *harness.Harness, engine contracts.Engine) func(ctx context.Context) {
	t.Helper()
	reconciled := make(chan *contracts.Event, 8)
	sub, err := h.NC.Subscribe(contracts.EventSubject(h.Node(), engine, contracts.EventReconciled), func(m *nats.Msg) {
		if ev, err := contracts.DecodeEvent(m.Data); err == nil {
			reconciled <- ev
		}
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, h.NC.Flush())
	return func(ctx context.Context) {
		t.Helper()
		select {
		case ev := <-reconciled:
			t.Logf("event %s: %s (%s)", ev.Kind, ev.Message, ev.Duration)
		case <-ctx.Done():
			t.Fatalf("no %s event after the %s restart: %v", contracts.EventReconciled, engine, ctx.Err())
		}
	}
}

// requireNetwork fails t unless the network was made:
// requireNetwork(t)(h.MemifNetwork(...)).
func requireNetwork(t *testing.T) func(*harness.Network, error) *harness.Network {
	return func(n *harness.Network, err error) *harness.Network {
		t.Helper()
		require.NoError(t, err)
		return n
	}
}

// phase runs one step of a test and logs its duration.
func phase(t *testing.T, name string, fn func()) {
	t.Helper()
	start := time.Now()
	fn()
	t.Logf("phase %s: %s", name, time.Since(start).Round(time.Millisecond))
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// pods creates n pods and ADDs net to each (ifName), checking the result.
func pods(t *testing.T, ctx context.Context, h *harness.Harness, net *harness.Network, n int) []*harness.Pod {
	t.Helper()
	var ps []*harness.Pod
	for i := range n {
		p, err := h.NewPod(ctx, fmt.Sprintf("pod-%c", 'a'+i))
		require.NoError(t, err)
		res, err := p.Add(ctx, net, ifName)
		require.NoError(t, err)
		require.Len(t, res.Interfaces, 1)
		assert.Equal(t, ifName, res.Interfaces[0].Name)
		assert.Equal(t, p.Netns(), res.Interfaces[0].Sandbox)
		require.Len(t, res.IPs, 1)
		require.NoError(t, p.Check(ctx, net, ifName), "CHECK right after ADD")
		ps = append(ps, p)
	}
	return ps
}

// assertTraffic runs txonly in a and rxonly in b and compares every
// counter on the way exactly.
func assertTraffic(t *testing.T, ctx context.Context, h *harness.Harness, a, b *harness.Pod) harness.Traffic {
	t.Helper()
	tr, err := h.RunTraffic(ctx, a, b, ifName, time.Second)
	require.NoError(t, err)
	t.Logf("traffic: %s (steps: %s)", tr, strings.Join(tr.Steps, ", "))
	require.NotZero(t, tr.Sender.TXPackets, "testpmd A sent nothing")
	assert.Equal(t, tr.Sender.TXPackets, tr.SenderOVS.RXPackets, "OVS received from A exactly what A sent")
	assert.Zero(t, tr.SenderOVS.RXDropped, "OVS dropped on A's port")
	assert.Equal(t, tr.SenderOVS.RXPackets, tr.ReceiverOVS.TXPackets+tr.ReceiverOVS.TXDropped,
		"everything OVS took from A was sent to B or counted as dropped on B's port")
	assert.Equal(t, tr.ReceiverOVS.TXPackets, tr.Receiver.RXPackets, "B received exactly what OVS sent it")
	assert.NotZero(t, tr.Receiver.RXPackets, "B received nothing")
	assert.Zero(t, tr.Receiver.TXPackets, "rxonly B sent packets")
	return tr
}

// assertGone checks that nothing of the pods' attachments of net is left:
// OVS ports (by external_ids), pod data, sockets, links, device info,
// host-local allocations.
func assertGone(t *testing.T, ctx context.Context, h *harness.Harness, net *harness.Network, ps ...*harness.Pod) {
	t.Helper()
	owned, err := h.OwnedPorts(ctx)
	require.NoError(t, err)
	assert.Empty(t, owned, "OVS ports with external_ids:usrsp-owner=%s", harness.Owner)
	for _, p := range ps {
		port, err := h.PortOf(ctx, p.ContainerID, ifName)
		require.NoError(t, err)
		assert.Empty(t, port, "OVS interface of %s", p.Name)
		assert.Empty(t, filesIn(t, p.Dir(), func(fi os.FileInfo) bool {
			return fi.Mode()&os.ModeSocket != 0 || strings.HasPrefix(fi.Name(), "usrsp-")
		}), "sockets and pod data files in %s", p.Dir())
		_, err = os.Stat(p.DeviceInfoFile(ifName))
		assert.True(t, os.IsNotExist(err), "device info of %s: %v", p.Name, err)
	}
	assert.Empty(t, filesIn(t, h.LinkDir(), nil), "links in %s", h.LinkDir())
	assert.Empty(t, ipamAllocations(t, h, net), "host-local allocations of %s", net.Name)
}

// filesIn lists the names in dir matching keep (all if nil); a missing dir
// is empty.
func filesIn(t *testing.T, dir string, keep func(os.FileInfo) bool) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		fi, err := e.Info()
		require.NoError(t, err)
		if keep == nil || keep(fi) {
			names = append(names, e.Name())
		}
	}
	return names
}

// ipamAllocations are host-local's reservation files (named by IP).
func ipamAllocations(t *testing.T, h *harness.Harness, net *harness.Network) []string {
	return filesIn(t, filepath.Join(h.IPAMDir(), net.Name), func(fi os.FileInfo) bool {
		return strings.Count(fi.Name(), ".") == 3 && !strings.HasPrefix(fi.Name(), "last_reserved_ip")
	})
}

// assertNoDPDKLeftovers checks that no usrsp DPDK runtime dir is left.
func assertNoDPDKLeftovers(t *testing.T) {
	left, _ := filepath.Glob("/var/run/dpdk/usrsp-pod-*")
	assert.Empty(t, left, "DPDK runtime dirs of pod apps")
}

func del(t *testing.T, ctx context.Context, net *harness.Network, ps ...*harness.Pod) {
	t.Helper()
	for _, p := range ps {
		require.NoError(t, p.Del(ctx, net, ifName))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// assertVswitchClean checks that the vswitch has nothing of the adapter's
// left: OVS ports with its owner tag and its bridge, or VPP interfaces,
// bridge domains, memif sockets and the adapter's records (the harness's
// VPP is private, so everything on it is the adapter's).
func assertVswitchClean(t *testing.T, ctx context.Context, h *harness.Harness) {
	t.Helper()
	if h.Engine() == contracts.EngineVPP {
		ifs, err := h.VPP.Interfaces(ctx)
		require.NoError(t, err)
		assert.Empty(t, ifs, "host VPP interfaces besides local0")
		bds, err := h.VPP.BridgeDomains(ctx)
		require.NoError(t, err)
		assert.Empty(t, bds, "host VPP bridge domains")
		socks, err := h.VPP.MemifSockets(ctx)
		require.NoError(t, err)
		assert.Empty(t, socks, "host VPP memif sockets besides id 0")
		assert.Empty(t, filesIn(t, h.StateDir(), nil), "vpp-adapter records")
		return
	}
	owned, err := h.OwnedPorts(ctx)
	require.NoError(t, err)
	assert.Empty(t, owned, "OVS ports with external_ids:usrsp-owner=%s", harness.Owner)
	bridges, err := h.Bridges(ctx)
	require.NoError(t, err)
	assert.Empty(t, bridges, "the adapter's bridge is gone once empty")
}
