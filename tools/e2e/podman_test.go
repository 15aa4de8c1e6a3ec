//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/tools/harness"
	"usrsp.dev/tools/podmantest"
)

// podmanIfName is the interface name podman passes as CNI_IFNAME for a
// pod's first network.
const podmanIfName = "eth0"

// podmanMountPath is where the probe containers mount their pod's socket
// directory; the networks' podMountPath, so the pod data's socket paths
// work unchanged in the container.
const podmanMountPath = "/var/run/usrsp"

// podmanSubnet is shared by a case's memif and veth networks (one vswitch
// network); each network's host-local takes addresses from its own range.
const podmanSubnet = "10.58.0.0/24"

// networks are the case's memif network (the vswitch is the memif master,
// the pods' probes the slaves) and veth network (kernel netdevs), both on
// the same bridge and subnet.
func (c engineCase) networks(t *testing.T, h *harness.Harness) (memif, veth *harness.Network) {
	t.Helper()
	suffix := strings.ReplaceAll(string(c.engine), "-", "")
	mk := func(name string, host map[string]any, first, last string) *harness.Network {
		host["engine"], host["netType"], host["bridge"] = c.engine, contracts.NetTypeBridge, c.bridge
		return rangeNetwork(t, h, name+"-"+suffix, host, podmanSubnet, first, last)
	}
	memif = mk("podman-memif", map[string]any{"iftype": contracts.IfTypeMemif,
		"memif": map[string]any{"role": contracts.MemifRoleMaster, "mode": contracts.MemifModeEthernet}}, "10.58.0.10", "10.58.0.99")
	veth = mk("podman-veth", map[string]any{"iftype": contracts.IfTypeVeth}, "10.58.0.100", "10.58.0.199")
	return memif, veth
}

// TestPodman lets a real runtime drive the plugin (issue 12 item 5):
// Debian's podman with its CNI backend starts pods (infra container: a
// FROM-scratch pause image) on a `type: userspace` memif network,
// `pod-consumer probe` runs as a container in each pod with the pod's
// socket directory mounted, and the pods ping each other; a third pod on a
// veth network (a kernel netdev) on the same bridge pings the first with
// the kernel's ping; removing the pods leaves nothing behind. Once per
// engine: OVS-DPDK, and VPP when USRSP_VPP_BIN is set.
func TestPodman(t *testing.T) {
	pm := podmanFor(t)
	for _, c := range engineCases {
		t.Run(string(c.engine), func(t *testing.T) { testPodman(t, pm, c) })
	}
}

// podmanFor starts a private podman for the test with the pause and
// pod-consumer images built; everything goes in t.Cleanup.
func podmanFor(t *testing.T) *podmantest.Podman {
	t.Helper()
	if r := podmantest.Missing(); r != "" {
		t.Skip(r)
	}
	require.NotEmpty(t, binDir, "binaries not built")
	ctx := ctxFor(t, 2*time.Minute)
	pm, err := podmantest.New(podmantest.Config{CNIPluginDirs: []string{binDir}, Logf: t.Logf})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, pm.Close(), "removing the private podman") })
	phase(t, "build pause + images FROM scratch", func() {
		repo, err := harness.FindRepo()
		require.NoError(t, err)
		pause := filepath.Join(pm.Dir, "pause")
		require.NoError(t, podmantest.BuildPause(ctx, repo, pause))
		require.NoError(t, pm.BuildImages(ctx, pause, filepath.Join(binDir, "pod-consumer")))
	})
	return pm
}

func testPodman(t *testing.T, pm *podmantest.Podman, c engineCase) {
	h := c.node(t)
	ctx := ctxFor(t, 2*time.Minute)
	// Registered after the node's cleanup, so it runs first: pods still
	// there after a failure are torn down through CNI while NATS and the
	// adapter still run.
	t.Cleanup(func() {
		ctx := context.Background()
		if t.Failed() {
			names, _ := pm.Run(ctx, "ps", "--all", "--format", "{{.Names}}")
			for _, name := range strings.Fields(names) {
				out, _ := pm.Logs(ctx, name)
				t.Logf("container %s output:\n%s", name, out)
			}
		}
		_, err := pm.Run(ctx, "pod", "rm", "--all", "--force", "--time", "2")
		assert.NoError(t, err)
	})
	memifNet, vethNet := c.networks(t, h)
	addPodmanNetwork(t, pm, memifNet)
	addPodmanNetwork(t, pm, vethNet)

	var a, b, k *podmanPod
	phase(t, "podman pod create + start (CNI ADD) of two memif pods", func() {
		a = createPodmanPod(t, ctx, pm, h, string(c.engine)+"-a", memifNet)
		b = createPodmanPod(t, ctx, pm, h, string(c.engine)+"-b", memifNet)
	})

	phase(t, "probe serve in pod a, probe ping from pod b", func() {
		require.NoError(t, a.Start(ctx, probeContainer(h, a.Pod, "probe", "probe", "serve")))
		// serve says so once its memif is connected; ping would wait for
		// that too, but then a serve that never comes up is named.
		waitLog(t, ctx, pm, a.Name+"-probe", "answering")
		out, err := b.Run(ctx, probeContainer(h, b.Pod, "ping", "probe", "ping", a.IP, "-c", "5", "-i", "200ms", "-W", "2s"))
		t.Logf("probe ping in pod %s:\n%s", b.Name, out)
		require.NoError(t, err, "probe ping exits 0 only when replies came back")
		assert.Contains(t, out, "5 received")
	})

	phase(t, "podman pod create + start of a veth pod, kernel ping → pod a", func() {
		k = createPodmanPod(t, ctx, pm, h, string(c.engine)+"-k", vethNet)
		// The netdev podman was told about is in the pod's netns, named
		// eth0, with the result's MAC and address.
		out, err := inNetnsFile(ctx, k.Infra.SandboxKey, "ip", "-o", "addr", "show", "dev", podmanIfName)
		require.NoError(t, err, out)
		assert.Contains(t, out, "inet "+k.IP+"/24")
		out, err = inNetnsFile(ctx, k.Infra.SandboxKey, "ip", "-o", "link", "show", "dev", podmanIfName)
		require.NoError(t, err, out)
		assert.Contains(t, out, "link/ether "+k.MAC)
		out, err = inNetnsFile(ctx, k.Infra.SandboxKey, "ping", "-c", "5", "-i", "0.2", "-W", "2", a.IP)
		t.Logf("ping in pod %s:\n%s", k.Name, out)
		require.NoError(t, err, "ping exits 0 only when replies came back")
		assert.Contains(t, out, "5 packets transmitted, 5 received")
		// The replies were the probe container's: on SIGTERM it counts
		// what it answered (5 from pod b's probe, 5 from the kernel).
		_, err = pm.Run(ctx, "stop", "--time", "5", a.Name+"-probe")
		require.NoError(t, err)
		out, err = pm.Logs(ctx, a.Name+"-probe")
		require.NoError(t, err)
		assert.Contains(t, out, "and 10 echo requests", "probe serve in pod %s", a.Name)
	})

	phase(t, "podman pod rm (CNI DEL) of the three pods", func() {
		for _, pod := range []*podmanPod{a, b, k} {
			require.NoError(t, pod.Remove(ctx))
		}
	})
	for _, pod := range []*podmanPod{a, b, k} {
		assert.NoFileExists(t, pod.Infra.SandboxKey, "podman's netns of %s", pod.Name)
		assert.NoFileExists(t, libcniCache(pod.Network, pod.InfraID), "libcni's cached result of %s", pod.Name)
		assert.Empty(t, filesIn(t, podDir(h, pod.Pod), nil), "files in %s's directory", pod.Name)
	}
	assertHostVethGone(t, ctx, contracts.AttachmentKey{ContainerID: k.InfraID, IfName: podmanIfName})
	assertVswitchClean(t, ctx, h)
	assert.Empty(t, filesIn(t, h.LinkDir(), nil), "links in %s", h.LinkDir())
	for _, n := range []*harness.Network{memifNet, vethNet} {
		assert.Empty(t, ipamAllocations(t, h, n), "host-local allocations of %s", n.Name)
	}
}

// podmanPod is a started podman pod with what podman says about its one
// network.
type podmanPod struct {
	*podmantest.Pod
	Network string
	Infra   *podmantest.Infra
	IP, MAC string
}

// createPodmanPod creates and starts a pod on net and checks that podman
// took the CNI result: an address and a MAC on that network.
func createPodmanPod(t *testing.T, ctx context.Context, pm *podmantest.Podman, h *harness.Harness, name string, net *harness.Network) *podmanPod {
	t.Helper()
	pod, err := pm.CreatePod(ctx, name, net.Name)
	require.NoError(t, err)
	infra, err := pod.Infra(ctx)
	require.NoError(t, err)
	att, ok := infra.Networks[net.Name]
	require.True(t, ok, "podman has no %s network on %s: %+v", net.Name, name, infra.Networks)
	require.NotEmpty(t, att.IPAddress, "podman's IP of %s", name)
	require.NotEmpty(t, att.MacAddress, "podman's MAC of %s", name)
	t.Logf("pod %s: infra %s, netns %s, %s/%d %s", name, pod.InfraID[:12], infra.SandboxKey, att.IPAddress, att.IPPrefixLen, att.MacAddress)
	// The pod data cni-entry wrote (in <sharedDir>/<infra id[:12]>, as
	// podman passes no pod UID) agrees with what podman took.
	b, err := os.ReadFile(filepath.Join(podDir(h, pod), contracts.PodDataFileName(podmanIfName)))
	require.NoError(t, err, "pod data of %s", name)
	d, err := contracts.DecodePodData(b)
	require.NoError(t, err)
	assert.Equal(t, att.MacAddress, d.Interface.MAC, "MAC of %s: podman vs pod data", name)
	return &podmanPod{Pod: pod, Network: net.Name, Infra: infra, IP: att.IPAddress, MAC: att.MacAddress}
}

// addPodmanNetwork writes net as a podman network: cniVersion 1.0.0
// (podman 4.3's libcni speaks up to 1.0.0) and podMountPath
// podmanMountPath, where the probe containers mount the pod's directory.
func addPodmanNetwork(t *testing.T, pm *podmantest.Podman, net *harness.Network) {
	t.Helper()
	var list map[string]any
	require.NoError(t, json.Unmarshal(net.List.Bytes, &list))
	list["cniVersion"] = "1.0.0"
	for _, p := range list["plugins"].([]any) {
		p.(map[string]any)["podMountPath"] = podmanMountPath
	}
	b, err := json.Marshal(list)
	require.NoError(t, err)
	require.NoError(t, pm.AddNetwork(net.Name, b))
	t.Cleanup(func() { assert.NoError(t, pm.RemoveNetwork(net.Name)) })
}

// podDir is the pod's socket directory on the host. podman passes no
// K8S_POD_UID, so cni-entry uses <sharedDir>/<CNI_CONTAINERID[:12]>, and
// the CNI container id is the infra container's.
func podDir(h *harness.Harness, pod *podmantest.Pod) string {
	return filepath.Join(h.SharedDir(), pod.InfraID[:12])
}

// probeContainer is `pod-consumer <args>` as container <pod>-<suffix> in
// the pod, with the pod's directory mounted at podmanMountPath.
func probeContainer(h *harness.Harness, pod *podmantest.Pod, suffix string, args ...string) podmantest.Container {
	return podmantest.Container{
		Name:   pod.Name + "-" + suffix,
		Image:  podmantest.PodConsumerImage,
		Mounts: map[string]string{podDir(h, pod): podmanMountPath},
		Args:   append(args, "--annotations", ""),
	}
}

// waitLog polls a container's output until it contains want.
func waitLog(t *testing.T, ctx context.Context, pm *podmantest.Podman, name, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		out, err := pm.Logs(ctx, name)
		if err == nil && strings.Contains(out, want) {
			return
		}
		select {
		case <-ctx.Done():
			require.Failf(t, "container output", "%s never said %q: %v\n%s", name, want, err, out)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// libcniCache is where podman's libcni caches an attachment's result.
func libcniCache(network, containerID string) string {
	return filepath.Join("/var/lib/cni/results", network+"-"+containerID+"-"+podmanIfName)
}
