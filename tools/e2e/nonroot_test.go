//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/libs/testkit"
	"usrsp.dev/tools/harness"
)

// connectArg makes this test binary, exec'd as the pod's app, a plain
// vhost-user client: connect(2) to the socket and exit 0, else print why
// and exit 1 (see init).
const connectArg = "usrsp-e2e-connect"

func init() {
	testkit.Subcommand(connectArg, func(args []string) error {
		c, err := net.DialTimeout("unix", args[0], 5*time.Second)
		if err != nil {
			return err
		}
		_ = c.Close()
		fmt.Println("connected")
		return nil
	})
}

// nonRoot runs programs in pods as the unprivileged app: after the pod's
// mount (harness.Pod.Command, as root), setpriv drops to testkit.AppUID
// with AppGID as its only group. The binaries are copied where that uid
// can execute them.
type nonRoot struct {
	pc, self string // pod-consumer and this test binary
	mount    string // the pods' podMountPath
}

func newNonRoot(t *testing.T, h *harness.Harness) nonRoot {
	t.Helper()
	self := testkit.ExecutableCopy(t)
	n := nonRoot{pc: filepath.Join(filepath.Dir(self), "pod-consumer"), self: self, mount: h.PodMountPath()}
	testkit.CopyExecutable(t, filepath.Join(h.Bin, "pod-consumer"), n.pc)
	// The pod's app reaches its mount through the harness directory (a
	// container sees it at its root).
	require.NoError(t, os.Chmod(h.Dir, 0o711))
	return n
}

func (n nonRoot) argv(name string, args ...string) []string {
	g := strconv.Itoa(testkit.AppGID)
	return append([]string{"--reuid=" + strconv.Itoa(testkit.AppUID), "--regid=" + g, "--groups=" + g, "--", name}, args...)
}

// podConsumer runs pod-consumer as the app in p.
func (n nonRoot) podConsumer(ctx context.Context, p *harness.Pod, args ...string) (string, error) {
	return p.Run(ctx, "setpriv", n.argv(n.pc, append(args, "--dir", n.mount, "--annotations", "")...)...)
}

// startPodConsumer starts pod-consumer as the app in p.
func (n nonRoot) startPodConsumer(ctx context.Context, p *harness.Pod, args ...string) (*harness.Proc, error) {
	return p.Start(ctx, "setpriv", n.argv(n.pc, append(args, "--dir", n.mount, "--annotations", "")...)...)
}

// connect connects to the socket file in p's directory as the app.
func (n nonRoot) connect(ctx context.Context, p *harness.Pod, file string) (string, error) {
	return p.Run(ctx, "setpriv", n.argv(n.self, connectArg, filepath.Join(n.mount, file))...)
}

// TestNonRootPod (issue 11): with podAccess, an app running as an
// unprivileged uid in the group reads its pod data (`pod-consumer list`),
// pings through OVS-DPDK memif with `pod-consumer probe`, and connects to
// a vhost-user socket OVS created (dpdkvhostuser, hard-linked into the pod
// directory), also after ovs-vswitchd was killed and re-created every
// socket; without podAccess the same uid is refused.
func TestNonRootPod(t *testing.T) {
	h := node(t)
	ctx := ctxFor(t, 4*time.Minute)
	app := newNonRoot(t, h)
	access := map[string]any{"group": strconv.Itoa(testkit.AppGID), "mode": "0660"}
	memif := map[string]any{"engine": "ovs-dpdk", "iftype": "memif", "netType": "bridge",
		"memif": map[string]any{"role": "master", "mode": "ethernet"}, "bridge": map[string]any{"bridgeName": "br-nonroot"}}
	vhost := map[string]any{"engine": "ovs-dpdk", "iftype": "vhostuser", "netType": "bridge",
		"vhost": map[string]any{"mode": "server"}, "bridge": map[string]any{"bridgeName": "br-nonroot-v"}}
	network := func(name, subnet string, host map[string]any, access map[string]any) *harness.Network {
		plugin := map[string]any{"type": "userspace", "name": name, "host": host,
			"ipam": map[string]any{"type": "host-local", "subnet": subnet}}
		if access != nil {
			plugin["podAccess"] = access
		}
		return requireNetwork(t)(h.NetworkFrom(plugin))
	}
	mnet := network("nonroot-memif", "10.71.0.0/24", memif, access)
	vnet := network("nonroot-vhost", "10.72.0.0/24", vhost, access)
	plain := network("root-memif", "10.73.0.0/24", memif, nil)

	var mps, vps, cps []*harness.Pod
	phase(t, "ADD memif pair, vhost-user server pod, a pod without podAccess", func() {
		mps = pods(t, ctx, h, mnet, 2)
		vps = pods(t, ctx, h, vnet, 1)
		cps = pods(t, ctx, h, plain, 1)
	})
	all := append(append(append([]*harness.Pod(nil), mps...), vps...), cps...)
	servedIP, err := mps[0].IPv4(ifName)
	require.NoError(t, err)

	asApp := func(stage string) {
		t.Helper()
		phase(t, "as uid "+strconv.Itoa(testkit.AppUID)+": pod-consumer list "+stage, func() {
			for _, p := range append(mps, vps...) {
				out, err := app.podConsumer(ctx, p, "list")
				require.NoError(t, err, out)
				assert.Contains(t, out, ifName, "pod %s lists its interface", p.Name)
			}
		})
		phase(t, "as uid "+strconv.Itoa(testkit.AppUID)+": probe ping over memif "+stage, func() {
			serve, err := app.startPodConsumer(ctx, mps[0], "probe", "serve")
			require.NoError(t, err)
			require.NoError(t, serve.WaitOutput(ctx, "answering ARP and ping"), serve.Output())
			out, err := app.podConsumer(ctx, mps[1], "probe", "ping", servedIP, "-c", "3", "-i", "100ms", "-W", "2s")
			require.NoError(t, err, "probe ping as a non-root app\n%s", out)
			assert.Contains(t, out, "3 packets transmitted, 3 received")
			require.NoError(t, serve.Stop(syscall.SIGTERM))
		})
		phase(t, "as uid "+strconv.Itoa(testkit.AppUID)+": connect to the vhost-user socket "+stage, func() {
			out, err := app.connect(ctx, vps[0], "vhostuser-"+ifName+".sock")
			require.NoError(t, err, out)
			assert.Contains(t, out, "connected")
		})
	}
	asApp("after ADD")

	phase(t, "without podAccess the same uid is refused", func() {
		out, err := app.podConsumer(ctx, cps[0], "list")
		require.Error(t, err, "pod-consumer list read a root-only pod directory:\n%s", out)
		assert.Contains(t, err.Error(), "permission denied")
		out, err = app.podConsumer(ctx, cps[0], "probe", "ping", servedIP, "-c", "1", "-W", "1s")
		require.Error(t, err, out)
		// The socket itself refuses too, even where the directory lets the app through.
		sock := filepath.Join(cps[0].Dir(), "memif-"+ifName+".sock")
		fi, err := os.Stat(sock)
		require.NoError(t, err)
		assert.Zero(t, fi.Mode().Perm()&0o002, "the memif socket of a root network is not writable by others: %v", fi.Mode())
	})

	awaitReconciled := subscribeReconciled(t, h, h.Engine())
	before := portsOf(t, h, all)
	phase(t, "kill -9 and restart ovs-vswitchd: every socket is new", func() {
		require.NoError(t, h.OVS.RestartVswitchd(ctx, true))
		awaitReconciled(ctxFor(t, 30*time.Second))
		require.NoError(t, h.AwaitPortsReady(ctx, before...))
	})
	for _, p := range append(mps, vps...) {
		assertSocketAccess(t, p.Dir())
	}
	asApp("after the ovs-vswitchd restart")

	phase(t, "DEL all", func() {
		del(t, ctx, mnet, mps...)
		del(t, ctx, vnet, vps...)
		del(t, ctx, plain, cps...)
	})
	assertGone(t, ctx, h, mnet, mps...)
	assertGone(t, ctx, h, vnet, vps...)
	assertGone(t, ctx, h, plain, cps...)
}

// assertSocketAccess checks the group and mode of every socket in dir.
func assertSocketAccess(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	n := 0
	for _, e := range entries {
		fi, err := os.Lstat(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		if fi.Mode()&os.ModeSocket == 0 {
			continue
		}
		n++
		assert.Equal(t, uint32(testkit.AppGID), fi.Sys().(*syscall.Stat_t).Gid, "group of %s", e.Name())
		assert.Equal(t, os.FileMode(0o660), fi.Mode().Perm(), "mode of %s", e.Name())
	}
	assert.NotZero(t, n, "sockets in %s: %s", dir, strings.Join(names(entries), " "))
}

func names(entries []os.DirEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
