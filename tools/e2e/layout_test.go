//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/tools/harness"
	"usrsp.dev/tools/podmantest"
)

// TestDeployedLayoutOVS (issue 14 item 6): OVS vhost-user server mode in
// the layout deploy/k8s/nodes/ovs-dpdk/daemonset.yaml ships. The built
// ovs-adapter and nats-server images (`make images`) run with podman on
// the host network; the adapter, privileged, gets the DaemonSet's volumes
// at the host's paths: OVS's run dir, the state dir and the link dir
// without propagation, the pod-directory root (the harness's sharedDir,
// the node's /var/lib/cni/usrspcni) rshared, i.e. Bidirectional. OVS's run
// dir and the pod directory are two mounts in the container, so the hard
// link fails with EXDEV and the adapter bind-mounts OVS's socket into the
// pod directory. With Bidirectional that mount reaches the host and the
// pods (their volumes are rbound, as runtimes do) and two pods' testpmds
// pass traffic through OVS; with the old layout's propagation (none,
// rprivate) the pod finds only the empty placeholder file.
func TestDeployedLayoutOVS(t *testing.T) {
	if r := skipReason(); r != "" {
		t.Skip(r)
	}
	if r := podmantest.Missing(); r != "" {
		t.Skip(r)
	}
	require.NotEmpty(t, binDir, "binaries not built")
	ctx := ctxFor(t, 5*time.Minute)
	pm, err := podmantest.System(podmantest.Config{Logf: t.Logf})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, pm.Close()) })

	repo, err := harness.FindRepo()
	require.NoError(t, err)
	adapterImage := "localhost/usrsp/ovs-adapter:" + readVersion(t, repo)
	natsImage := "localhost/usrsp/nats-server:" + pinnedNATS(t, repo)
	for _, img := range []string{adapterImage, natsImage} {
		if _, err := pm.Run(ctx, "image", "exists", img); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not built (make e2e runs make test-images first): %v", img, err)
			}
			t.Skipf("%s not built: run `make images`", img)
		}
	}
	suffix := randHex(t)
	// Every container this test starts; removed after the node is closed
	// (registered first, so it runs last).
	var containers []string
	t.Cleanup(func() {
		if len(containers) > 0 {
			_, err := pm.Run(context.Background(), append([]string{"rm", "--force", "--ignore", "--time", "2"}, containers...)...)
			assert.NoError(t, err)
		}
	})

	natsName := "usrsp-layout-nats-" + suffix
	containers = append(containers, natsName)
	natsURL := startNATSImage(t, ctx, pm, natsImage, natsName)

	// The adapter's container: a new one per start, with the volumes its
	// directory flags name (as the DaemonSet mounts them) and propagation
	// on the pod-directory root; podman runs in the foreground as the
	// harness's adapter process and passes its SIGTERM on.
	propagation := "rshared" // Bidirectional
	adapterCmd := func(name string, args []string) *exec.Cmd {
		require.Equal(t, "ovs-adapter", name)
		ctr := fmt.Sprintf("usrsp-layout-adapter-%s-%d", suffix, len(containers))
		containers = append(containers, ctr)
		run := []string{"run", "--rm", "--name", ctr, "--pull=never", "--network", "host", "--privileged"}
		for i := 0; i+1 < len(args); i++ {
			switch args[i] {
			case "--ovs-rundir", "--state-dir", "--link-dir":
				run = append(run, "--volume", args[i+1]+":"+args[i+1])
			case "--shared-dir":
				run = append(run, "--volume", args[i+1]+":"+args[i+1]+":"+propagation)
			}
		}
		return pm.Command(append(append(run, adapterImage), args...)...)
	}

	t.Cleanup(func() { assertNoDPDKLeftovers(t) })
	h, err := harness.New(ctx, harness.Config{BinDir: binDir, Logf: t.Logf, NATSURL: natsURL,
		SharedMount: true, AdapterCommand: adapterCmd})
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("adapter log (tail):\n%s", h.AdapterLogTail(30))
			t.Logf("ovs-vswitchd log (tail):\n%s", h.OVS.VswitchdLogTail(20))
		}
		assert.NoError(t, h.Close())
	})
	vnet := requireNetwork(t)(h.Network("layout-vhost", "10.74.0.0/24", map[string]any{
		"engine": "ovs-dpdk", "iftype": "vhostuser", "netType": "bridge",
		"vhost": map[string]any{"mode": "server"}, "bridge": map[string]any{"bridgeName": "br-layout"}}))
	sockFile := "vhostuser-" + ifName + ".sock"
	// podView is what the pod's app finds at the socket's path (stat %F).
	podView := func(p *harness.Pod) string {
		out, err := p.Run(ctx, "stat", "-c", "%F", filepath.Join(h.PodMountPath(), sockFile))
		require.NoError(t, err)
		return strings.TrimSpace(out)
	}

	var ps []*harness.Pod
	phase(t, "ADD+CHECK two vhost-user server pods", func() { ps = pods(t, ctx, h, vnet, 2) })
	for _, p := range ps {
		fi, err := os.Lstat(filepath.Join(p.Dir(), sockFile))
		require.NoError(t, err)
		assert.NotZero(t, fi.Mode()&os.ModeSocket, "the host sees OVS's socket in %s: %v", p.Dir(), fi.Mode())
		assert.Equal(t, "socket", podView(p), "what pod %s sees", p.Name)
	}
	// testpmd's counters only: OVS 3.1 has none for dpdkvhostuser ports.
	phase(t, "traffic", func() {
		tr, err := h.RunTrafficAppCounters(ctx, ps[0], ps[1], ifName, time.Second)
		require.NoError(t, err)
		t.Logf("traffic: testpmd A sent %d, testpmd B received %d (steps: %s)",
			tr.Sender.TXPackets, tr.Receiver.RXPackets, strings.Join(tr.Steps, ", "))
		require.NotZero(t, tr.Sender.TXPackets, "testpmd A sent nothing")
		assert.NotZero(t, tr.Receiver.RXPackets, "testpmd B received nothing")
		assert.LessOrEqual(t, tr.Receiver.RXPackets, tr.Sender.TXPackets, "B received only what A sent")
		assert.Zero(t, tr.Receiver.TXPackets, "rxonly B sent packets")
	})
	phase(t, "DEL", func() { del(t, ctx, vnet, ps...) })
	assertGone(t, ctx, h, vnet, ps...)
	assert.Empty(t, mountsUnder(t, h.SharedDir()), "the adapter's unmounts reached the host")

	// And two pods pinging each other through the same containers: memif
	// probes (OVS makes their sockets at the pods' host paths itself).
	mnet := requireNetwork(t)(h.MemifNetwork("layout-memif", "br-layout-m", "10.75.0.0/24"))
	var mps []*harness.Pod
	phase(t, "ADD+CHECK two memif probe pods", func() { mps = pods(t, ctx, h, mnet, 2) })
	phase(t, "probe ping", func() {
		servedIP, err := mps[0].IPv4(ifName)
		require.NoError(t, err)
		probeServeAndPing(t, ctx, mps[0], mps[1], servedIP)
	})
	phase(t, "memif DEL", func() { del(t, ctx, mnet, mps...) })
	assertGone(t, ctx, h, mnet, mps...)

	// The DaemonSet before issue 14 mounted the pod-directory roots
	// without propagation (podman's default for a volume: rprivate).
	propagation = "rprivate"
	phase(t, "restart the adapter container without propagation", func() { require.NoError(t, h.StartAdapter(ctx)) })
	phase(t, "negative control: no propagation, the socket stays in the adapter's container", func() {
		p, err := h.NewPod(ctx, "pod-old")
		require.NoError(t, err)
		if _, err := p.Add(ctx, vnet, ifName); err != nil {
			t.Logf("ADD without propagation failed: %v", err)
		} else {
			fi, err := os.Lstat(filepath.Join(p.Dir(), sockFile))
			require.NoError(t, err)
			assert.Zero(t, fi.Mode()&os.ModeSocket, "on the host the socket is only the placeholder: %v", fi.Mode())
			assert.Equal(t, "regular empty file", podView(p), "what the pod sees")
			require.NoError(t, p.Del(ctx, vnet, ifName))
		}
		assertGone(t, ctx, h, vnet, p)
		require.NoError(t, p.Close())
	})
}

// startNATSImage runs the nats-server image on the host network, on a
// free loopback port, and returns its URL once it answers.
func startNATSImage(t *testing.T, ctx context.Context, pm *podmantest.Podman, image, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	_, err = pm.Run(ctx, "run", "--detach", "--rm", "--name", name, "--pull=never", "--network", "host",
		image, "-a", "127.0.0.1", "-p", fmt.Sprint(port))
	require.NoError(t, err)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	// The server starts in the background: retry, bounded.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		nc, err := nats.Connect(url)
		if err == nil {
			nc.Close()
			return url
		}
		select {
		case <-wctx.Done():
			logs, _ := pm.Logs(context.Background(), name)
			t.Fatalf("nats-server container %s does not answer: %v\n%s", name, err, logs)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// mountsUnder lists the mount points strictly beneath dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

// readVersion is the ovs-adapter module's version (its image tag).
func readVersion(t *testing.T, repo string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, "services", "ovs-adapter", "version", "VERSION"))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

// pinnedNATS is the nats-server version tools/go.mod pins (its image tag).
func pinnedNATS(t *testing.T, repo string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, "tools", "go.mod"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^\s*github\.com/nats-io/nats-server/v2 v(\S+)`).FindSubmatch(b)
	require.NotNil(t, m, "tools/go.mod requires no nats-server")
	return string(m[1])
}

func randHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}
