package adapter_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/adapterkit/overlay"
	"usrsp.dev/libs/memif"
	"usrsp.dev/libs/ovsdpdk"
	"usrsp.dev/libs/ovsdpdk/ovsdpdktest"
	"usrsp.dev/libs/testkit"
	"usrsp.dev/services/ovs-adapter/adapter"
	"usrsp.dev/services/ovs-adapter/ovs"
)

// realEnv is an adapter on a private OVS-DPDK.
func realEnv(t *testing.T, inst *ovsdpdk.Instance, stateDir string) *env {
	t.Helper()
	c := ovs.NewClient(ovs.Config{Remote: inst.DBRemote()})
	t.Cleanup(func() { _ = c.Close() })
	return buildEnv(t, c, stateDir, inst.RunDir())
}

// startReal starts a private OVS-DPDK and an adapter on it.
func startReal(t *testing.T) (*ovsdpdk.Instance, *env) {
	t.Helper()
	inst := ovsdpdktest.Start(t)
	return inst, realEnv(t, inst, "")
}

func vsctl(t *testing.T, inst *ovsdpdk.Instance, args ...string) string {
	t.Helper()
	out, err := inst.Vsctl(context.Background(), args...)
	require.NoError(t, err)
	return out
}

func TestRealOVSPortKinds(t *testing.T) {
	inst, e := startReal(t)
	ctx := context.Background()

	tests := []struct {
		name  string
		req   *contracts.AttachRequest
		typ   string
		check func(t *testing.T, att contracts.Attachment)
	}{
		{name: "vhostuserclient", req: vhostClientReq(key("c1", "net1"), e.sockDir), typ: ovs.TypeVhostUserClient,
			check: func(t *testing.T, att contracts.Attachment) {
				assert.Equal(t, `"`+att.SocketPath+`"`, vsctl(t, inst, "get", "Interface", att.HostIfName, "options:vhost-server-path"))
				assert.Equal(t, "100", vsctl(t, inst, "get", "Port", att.HostIfName, "tag"))
				assert.Equal(t, "1500", vsctl(t, inst, "get", "Interface", att.HostIfName, "mtu_request"))
			}},
		{name: "dpdkvhostuser", req: vhostServerReq(key("c2", "net1"), e.sockDir), typ: ovs.TypeVhostUser,
			check: func(t *testing.T, att contracts.Attachment) {
				c, err := net.Dial("unix", att.SocketPath)
				require.NoError(t, err, "the pod's path reaches OVS's vhost-user server")
				_ = c.Close()
				assert.FileExists(t, filepath.Join(inst.RunDir(), att.HostIfName))
			}},
		{name: "memif", req: memifReq(key("c3", "net1"), e.sockDir), typ: ovs.TypeDPDK,
			check: func(t *testing.T, att contracts.Attachment) {
				devargs := vsctl(t, inst, "get", "Interface", att.HostIfName, "options:dpdk-devargs")
				assert.Contains(t, devargs, "role=server,id=0,socket="+att.SocketPath+",socket-abstract=no")
				assert.Equal(t, `"2"`, vsctl(t, inst, "get", "Interface", att.HostIfName, "options:n_rxq"))
				fi, err := os.Stat(att.SocketPath)
				require.NoError(t, err, "DPDK's memif server socket is in the pod dir")
				assert.Equal(t, os.ModeSocket, fi.Mode().Type())
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.a.Attach(ctx, tt.req)
			require.NoError(t, err)
			att := resp.Attachment
			assert.Equal(t, tt.typ, vsctl(t, inst, "get", "Interface", att.HostIfName, "type"))
			ext := vsctl(t, inst, "get", "Port", att.HostIfName, "external_ids")
			for _, want := range []string{`usrsp-owner=ovs-adapter`, `usrsp-container-id=` + tt.req.Key.ContainerID, `usrsp-ifname=net1`, `usrsp-network=net-a`} {
				assert.Contains(t, ext, want)
			}
			assert.Positive(t, mustAtoi(t, vsctl(t, inst, "get", "Interface", att.HostIfName, "ofport")))
			tt.check(t, att)

			_, err = e.a.Check(ctx, &contracts.CheckRequest{Key: tt.req.Key, Network: tt.req.Network, Interface: tt.req.Interface})
			require.NoError(t, err)

			det, err := e.a.Detach(ctx, &contracts.DetachRequest{Key: tt.req.Key})
			require.NoError(t, err)
			assert.True(t, det.Removed)
			assert.Empty(t, vsctl(t, inst, "list-br"), "usrsp's bridge is removed when it empties")
			if tt.typ != ovs.TypeVhostUserClient { // the pod's own socket is the pod's
				assert.NoFileExists(t, att.SocketPath)
			}
		})
	}
}

func TestRealOVSBridgeOwnership(t *testing.T) {
	inst, e := startReal(t)
	ctx := context.Background()
	vsctl(t, inst, "add-br", "br-op", "--", "set", "Bridge", "br-op", "datapath_type=netdev")

	onOp := vhostClientReq(key("c1", "net1"), e.sockDir)
	onOp.Interface.Bridge.Name = "br-op"
	a1, a2 := vhostClientReq(key("c2", "net1"), e.sockDir), vhostClientReq(key("c3", "net1"), e.sockDir)
	for _, r := range []*contracts.AttachRequest{onOp, a1, a2} {
		_, err := e.a.Attach(ctx, r)
		require.NoError(t, err)
	}
	assert.Equal(t, "br-op\nbr-test", vsctl(t, inst, "list-br"))

	for _, r := range []*contracts.AttachRequest{onOp, a1} {
		_, err := e.a.Detach(ctx, &contracts.DetachRequest{Key: r.Key})
		require.NoError(t, err)
	}
	assert.Equal(t, "br-op\nbr-test", vsctl(t, inst, "list-br"), "never delete an operator's bridge, nor ours while it has ports")
	_, err := e.a.Detach(ctx, &contracts.DetachRequest{Key: a2.Key})
	require.NoError(t, err)
	assert.Equal(t, "br-op", vsctl(t, inst, "list-br"))
	assert.Empty(t, vsctl(t, inst, "list-ports", "br-op"))
}

// TestRealOVSReconcile: after vswitchd crashes (kill -9) memif sockets are
// left behind and the restarted vswitchd cannot bind them; after the
// adapter's state is lost its ports are orphans. Reconcile repairs both.
func TestRealOVSReconcile(t *testing.T) {
	inst, e := startReal(t)
	ctx := context.Background()
	reqs := []*contracts.AttachRequest{memifReq(key("m1", "net1"), e.sockDir), vhostClientReq(key("v1", "net1"), e.sockDir),
		vhostServerReq(key("s1", "net1"), e.sockDir)}
	for _, r := range reqs {
		_, err := e.a.Attach(ctx, r)
		require.NoError(t, err)
	}

	checkAll := func(t *testing.T, a *adapter.Adapter, skip string) {
		t.Helper()
		for _, r := range reqs {
			if adapter.PortName(r.Key) == skip {
				continue
			}
			_, err := a.Check(ctx, &contracts.CheckRequest{Key: r.Key, Network: r.Network, Interface: r.Interface})
			assert.NoError(t, err, "%s", r.Key)
		}
	}

	// kill -9: memif sockets (pod dir) and the dpdkvhostuser socket (OVS
	// run dir) stay behind and the new vswitchd cannot bind them.
	require.NoError(t, inst.RestartVswitchd(ctx, true))
	res, err := e.a.Reconcile(ctx)
	require.NoError(t, err)
	t.Logf("after vswitchd crash: %+v", res)
	assert.Empty(t, res.Removed)
	// OVS 3.1 never unregisters a vhost-user server path whose first bind
	// failed, so that one port can only come back with the next vswitchd
	// (the adapter removed the stale socket for it).
	server := adapter.PortName(reqs[2].Key)
	assert.Subset(t, []string{server}, res.Failed)
	checkAll(t, e.a, server)

	require.NoError(t, inst.RestartVswitchd(ctx, false))
	res, err = e.a.Reconcile(ctx)
	require.NoError(t, err)
	t.Logf("after vswitchd graceful restart: %+v", res)
	assert.Empty(t, res.Failed)
	checkAll(t, e.a, "")

	// State loss: a new adapter with an empty state dir owns nothing, so
	// reconcile removes every usrsp port (and usrsp's bridge), nothing else.
	vsctl(t, inst, "add-br", "br-op", "--", "set", "Bridge", "br-op", "datapath_type=netdev")
	e2 := realEnv(t, inst, "")
	res, err = e2.a.Reconcile(ctx)
	require.NoError(t, err)
	assert.Len(t, res.Removed, 3)
	assert.Equal(t, "br-op", vsctl(t, inst, "list-br"))

	// And a restarted adapter with its state re-creates them all.
	e3 := e.restart(t)
	res, err = e3.a.Reconcile(ctx)
	require.NoError(t, err)
	assert.Len(t, res.Recreated, 3)
	checkAll(t, e3.a, "")
}

// TestRealOVSTestpmdLinkUp: a testpmd "pod" on each port kind brings the
// OVS interface's link up, which proves the socket, mode and queue options.
func TestRealOVSTestpmdLinkUp(t *testing.T) {
	inst, e := startReal(t)
	ctx := context.Background()
	tests := []struct {
		name string
		req  *contracts.AttachRequest
		vdev func(att contracts.Attachment) string
		args []string
	}{
		{name: "vhostuserclient", req: vhostClientReq(key("p1", "net1"), e.sockDir),
			vdev: func(att contracts.Attachment) string { return ovsdpdk.VirtioUserServer(att.SocketPath) }},
		{name: "dpdkvhostuser", req: vhostServerReq(key("p2", "net1"), e.sockDir),
			vdev: func(att contracts.Attachment) string { return ovsdpdk.VirtioUserClient(att.SocketPath) }},
		{name: "memif", req: memifReq(key("p3", "net1"), e.sockDir),
			vdev: func(att contracts.Attachment) string { return ovsdpdk.MemifClient(att.SocketPath) }, args: []string{"--rxq=2", "--txq=2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.a.Attach(ctx, tt.req)
			require.NoError(t, err)
			att := resp.Attachment
			pmd, err := ovsdpdk.StartTestpmd(tt.vdev(att), append([]string{"--forward-mode=rxonly"}, tt.args...)...)
			require.NoError(t, err)
			t.Cleanup(func() {
				if out := pmd.Stop(); t.Failed() {
					t.Logf("testpmd output:\n%s", out)
				}
			})
			_, err = inst.Vsctl(ctx, "--timeout=20", "wait-until", "Interface", att.HostIfName, "link_state=up")
			require.NoError(t, err, "link of %s (%s) did not come up", att.HostIfName, tt.name)
			_, err = e.a.Detach(ctx, &contracts.DetachRequest{Key: tt.req.Key})
			require.NoError(t, err)
			if tt.req.Interface.IfType == contracts.IfTypeVhostUser {
				_ = os.Remove(att.SocketPath)
			}
		})
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, r := range strings.TrimSpace(s) {
		require.True(t, r >= '0' && r <= '9', "not a number: %q", s)
		n = n*10 + int(r-'0')
	}
	return n
}

// TestRealOVSConcurrent: parallel attaches create one bridge together and
// parallel detaches remove it exactly when the last port goes.
func TestRealOVSConcurrent(t *testing.T) {
	inst, e := startReal(t)
	ctx := context.Background()
	const n = 8
	run := func(f func(i int) error) {
		errs := make(chan error, n)
		for i := range n {
			go func() { errs <- f(i) }()
		}
		for range n {
			assert.NoError(t, <-errs)
		}
	}
	req := func(i int) *contracts.AttachRequest {
		if i%2 == 0 {
			return memifReq(key("cc"+strconv.Itoa(i), "net1"), e.sockDir)
		}
		return vhostClientReq(key("cc"+strconv.Itoa(i), "net1"), e.sockDir)
	}
	run(func(i int) error { _, err := e.a.Attach(ctx, req(i)); return err })
	assert.Equal(t, "br-test", vsctl(t, inst, "list-br"))
	assert.Len(t, strings.Fields(vsctl(t, inst, "list-ports", "br-test")), n)
	run(func(i int) error { _, err := e.a.Detach(ctx, &contracts.DetachRequest{Key: req(i).Key}); return err })
	assert.Empty(t, vsctl(t, inst, "list-br"))
}

// vethPod is a network namespace with the pod end of a veth pair, made
// the way cni-entry makes it for iftype veth; removed when the test ends.
type vethPod struct {
	key   contracts.AttachmentKey
	netns string
	host  string // host end, contracts.HostVethName(key)
}

func newVethPod(t *testing.T, k contracts.AttachmentKey, cidr string) vethPod {
	t.Helper()
	p := vethPod{key: k, netns: "usrsp-ot-" + k.ContainerID, host: contracts.HostVethName(k)}
	ip := func(args ...string) {
		t.Helper()
		out, err := exec.Command("ip", args...).CombinedOutput()
		require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
	}
	ip("netns", "add", p.netns)
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", p.host).Run() // gone with the netns if it was still paired
		_ = exec.Command("ip", "netns", "del", p.netns).Run()
	})
	ip("link", "add", p.host, "type", "veth", "peer", "name", k.IfName, "netns", p.netns)
	ip("link", "set", p.host, "up")
	ip("-n", p.netns, "addr", "add", cidr, "dev", k.IfName)
	ip("-n", p.netns, "link", "set", k.IfName, "up")
	return p
}

func vethReq(k contracts.AttachmentKey) *contracts.AttachRequest {
	return &contracts.AttachRequest{Key: k, Network: "net-a", Interface: contracts.HostInterface{
		IfType: contracts.IfTypeVeth, NetType: contracts.NetTypeBridge,
		Veth:   &contracts.VethSpec{HostIfName: contracts.HostVethName(k)},
		Bridge: &contracts.BridgeSpec{Name: "br-test"},
	}}
}

// TestRealOVSVeth: two kernel pods' veths become OVS system ports on one
// netdev (userspace datapath) bridge and ping each other through it;
// CHECK sees the ports; DETACH removes the ports and never the netdevs
// (cni-entry made them); GC by external_ids finds a system port.
func TestRealOVSVeth(t *testing.T) {
	inst, e := startReal(t)
	ctx := context.Background()
	a := newVethPod(t, key("vetha", "net1"), "10.77.0.1/24")
	b := newVethPod(t, key("vethb", "net1"), "10.77.0.2/24")

	for _, p := range []vethPod{a, b} {
		resp, err := e.a.Attach(ctx, vethReq(p.key))
		require.NoError(t, err)
		assert.Equal(t, p.host, resp.Attachment.HostIfName)
		assert.Equal(t, ovs.TypeSystem, vsctl(t, inst, "get", "Interface", p.host, "type"))
		assert.NotEqual(t, "-1", vsctl(t, inst, "get", "Interface", p.host, "ofport"))
		_, err = e.a.Check(ctx, &contracts.CheckRequest{Key: p.key, Network: "net-a", Interface: vethReq(p.key).Interface})
		require.NoError(t, err)
	}
	out, err := exec.Command("ip", "netns", "exec", a.netns, "ping", "-c", "3", "-i", "0.2", "-W", "5", "10.77.0.2").CombinedOutput()
	require.NoError(t, err, "ping through OVS: %s", out)
	assert.Contains(t, string(out), "3 received")

	_, err = e.a.Attach(ctx, vethReq(a.key))
	require.NoError(t, err, "a replay is success")

	other := vethReq(key("vethc", "net1"))
	other.Interface.Veth.HostIfName = a.host
	_, err = e.a.Attach(ctx, other)
	assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err), "a veth not named after its own key is refused")

	resp, err := e.a.Detach(ctx, &contracts.DetachRequest{Key: a.key})
	require.NoError(t, err)
	assert.True(t, resp.Removed)
	ports, err := e.ovs.Ports(ctx, []string{a.host})
	require.NoError(t, err)
	assert.Empty(t, ports)
	require.NoError(t, exec.Command("ip", "link", "show", a.host).Run(), "the netdev is cni-entry's: left alone")

	gc, err := e.a.GC(ctx, &contracts.GCRequest{Network: "net-a"})
	require.NoError(t, err)
	assert.Equal(t, []contracts.AttachmentKey{b.key}, gc.Removed)
	owned, err := e.ovs.OwnedPorts(ctx)
	require.NoError(t, err)
	assert.Empty(t, owned)
}

// dialArg makes this test binary, exec'd as the app, a client of a socket
// (kind and path follow) that exits 0 once connected, else prints why and
// exits 1: kind "memif" is a memif client (libs/memif) that waits for the
// link to come up (DPDK's memif server mishandles a bare connect and
// close), "vhost" a plain connect(2) to a vhost-user server.
const dialArg = "usrsp-test-dial"

func init() { testkit.Subcommand(dialArg, dialAs) }

// dialAs is the app's side of dialArg: args are the kind and the path.
func dialAs(args []string) error {
	kind, path := args[0], args[1]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if kind == "vhost" {
		c, err := (&net.Dialer{}).DialContext(ctx, "unix", path)
		if err != nil {
			return err
		}
		return c.Close()
	}
	ifc, err := memif.Dial(ctx, memif.Config{SocketPath: path, Name: "nonroot-app"})
	if err != nil {
		return err
	}
	defer ifc.Close()
	return ifc.WaitUp(ctx)
}

// appDialer dials sockets as the app (testkit.AppUID, with AppGID as its
// only group), from a copy of this test binary the app may execute.
type appDialer struct{ bin string }

func newAppDialer(t *testing.T) appDialer {
	t.Helper()
	return appDialer{bin: testkit.ExecutableCopy(t)}
}

func (d appDialer) dial(kind, path string) error {
	cmd := exec.Command(d.bin, dialArg, kind, path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: testkit.AppUID, Gid: testkit.AppGID, Groups: []uint32{testkit.AppGID}}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// TestRealOVSPodAccess (issue 11): the sockets OVS-DPDK creates (a memif
// server socket in the pod directory, a dpdkvhostuser socket hard-linked
// into it) get the request's podAccess group and mode, so an unprivileged
// app in that group connects; again after ovs-vswitchd restarted and made
// them anew. Without podAccess the same app is refused.
func TestRealOVSPodAccess(t *testing.T) {
	inst, e := startReal(t)
	ctx := context.Background()
	app := newAppDialer(t)
	// The pod directory as cni-entry leaves it with podAccess (2770
	// root:group); the app reaches it as a pod would through its mount.
	for _, d := range []string{e.base, e.dirs.SharedDir} {
		require.NoError(t, os.Chmod(d, 0o711))
	}
	require.NoError(t, os.Chown(e.sockDir, 0, testkit.AppGID))
	require.NoError(t, os.Chmod(e.sockDir, 0o770|os.ModeSetgid))

	access := &contracts.PodAccess{GID: testkit.AppGID, Mode: 0o660}
	mreq := memifReq(key("m1", "net1"), e.sockDir)
	mreq.Interface.PodAccess = access
	server := vhostServerReq(key("s1", "net1"), e.sockDir)
	server.Interface.PodAccess = access
	plain := memifReq(key("m2", "net1"), e.sockDir) // no podAccess
	// An older cni-entry sent a group name in interface.vhost.group.
	old := vhostServerReq(key("s2", "net1"), e.sockDir)
	old.Interface.Vhost.Group = "nogroup"
	oldGroup, err := user.LookupGroup("nogroup")
	if err != nil {
		t.Skipf("no group nogroup here: %v", err)
	}
	for _, r := range []*contracts.AttachRequest{mreq, server, plain, old} {
		_, err := e.a.Attach(ctx, r)
		require.NoError(t, err)
	}

	asApp := func(t *testing.T) {
		t.Helper()
		for _, s := range []struct{ kind, path string }{
			{"memif", mreq.Interface.SocketPath},
			{"vhost", server.Interface.SocketPath},
		} {
			fi, err := os.Stat(s.path)
			require.NoError(t, err)
			assert.Equal(t, uint32(testkit.AppGID), fi.Sys().(*syscall.Stat_t).Gid, "group of %s", s.path)
			assert.Equal(t, os.FileMode(0o660), fi.Mode().Perm(), "mode of %s", s.path)
			assert.NoError(t, app.dial(s.kind, s.path), "the app connects to %s", s.path)
		}
		err := app.dial("memif", plain.Interface.SocketPath)
		require.Error(t, err, "without podAccess the app is refused")
		assert.Contains(t, err.Error(), "permission denied")
		fi, err := os.Stat(old.Interface.SocketPath)
		require.NoError(t, err)
		assert.Equal(t, oldGroup.Gid, strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Gid)), "the deprecated vhost group")
		assert.Equal(t, os.FileMode(0o660), fi.Mode().Perm())
	}
	asApp(t)

	// A restarted vswitchd makes every socket anew (root's, 0755 less
	// umask); reconcile gives them to the pod again.
	require.NoError(t, inst.RestartVswitchd(ctx, false))
	res, err := e.a.Reconcile(ctx)
	require.NoError(t, err)
	require.Empty(t, res.Failed)
	asApp(t)

	for _, r := range []*contracts.AttachRequest{mreq, server, plain, old} {
		_, err := e.a.Check(ctx, &contracts.CheckRequest{Key: r.Key, Network: r.Network, Interface: r.Interface})
		require.NoError(t, err)
		_, err = e.a.Detach(ctx, &contracts.DetachRequest{Key: r.Key})
		require.NoError(t, err)
	}
}

// overlayNode is one "node" of TestRealOVSOverlay: a private OVS-DPDK
// whose vswitchd runs in netns, the OVS userspace-tunneling underlay
// (br-phy with the underlay veth, the VTEP address on br-phy's internal
// port) and an adapter with that VTEP.
type overlayNode struct {
	inst  *ovsdpdk.Instance
	e     *env
	netns string
	vtep  string
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
}

// underlay sets up n's br-phy (docs.openvswitch.org, howto/userspace-tunneling).
func (n overlayNode) underlay(t *testing.T, veth string) {
	t.Helper()
	vsctl(t, n.inst, "add-br", "br-phy", "--", "set", "Bridge", "br-phy", "datapath_type=netdev")
	vsctl(t, n.inst, "add-port", "br-phy", veth)
	ipCmd(t, "-n", n.netns, "addr", "add", n.vtep+"/24", "dev", "br-phy")
	ipCmd(t, "-n", n.netns, "link", "set", "br-phy", "up")
	ipCmd(t, "-n", n.netns, "link", "set", veth, "up")
}

// memifPod is a pod's memif client (libs/memif) on an OVS memif port.
type memifPod struct {
	ifc *memif.Interface
	mac net.HardwareAddr
}

func dialPod(t *testing.T, att contracts.Attachment, mac string) memifPod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ifc, err := memif.Dial(ctx, memif.Config{SocketPath: att.SocketPath, Name: "uvo-pod", NumQueuePairs: att.Interface.Memif.Queues})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ifc.Close() })
	require.NoError(t, ifc.WaitUp(ctx))
	hw, err := net.ParseMAC(mac)
	require.NoError(t, err)
	return memifPod{ifc: ifc, mac: hw}
}

// frame is an Ethernet frame of the local experimental ethertype 0x88b5
// carrying size bytes (payload, then zeros).
func frame(dst, src net.HardwareAddr, payload string, size int) []byte {
	b := append(append(append([]byte{}, dst...), src...), 0x88, 0xb5)
	b = append(b, payload...)
	return append(b, make([]byte, max(0, 14+size-len(b)))...)
}

// sendUntilSeen sends f from p every 100 ms until q reads a frame holding
// payload (the first frames go while OVS resolves the peer VTEP's MAC);
// it returns the frame q read.
func sendUntilSeen(t *testing.T, p, q memifPod, f []byte, payload string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := p.ifc.TxQueue(0)
	require.NoError(t, err)
	var rxs []*memif.RxQueue
	for i := range q.ifc.NumQueuePairs() {
		rx, err := q.ifc.RxQueue(i)
		require.NoError(t, err)
		rxs = append(rxs, rx)
	}
	buf := make([]byte, 2048)
	for {
		_ = tx.WritePacket(f) // a full ring is retried with the next
		wait, stop := context.WithTimeout(ctx, 100*time.Millisecond)
		for wait.Err() == nil {
			for _, rx := range rxs {
				if n, err := rx.ReadPacket(buf); err == nil && strings.Contains(string(buf[:n]), payload) {
					stop()
					return slices.Clone(buf[:n])
				}
			}
			_ = memif.WaitAny(wait, rxs...)
		}
		stop()
		require.NoError(t, ctx.Err(), "no frame with %q crossed the overlay", payload)
	}
}

// TestRealOVSOverlay (issue 13): two nodes, each a private OVS-DPDK with
// ovs-vswitchd in its own netns, joined by a veth underlay; a memif pod
// on each on one overlay network; SyncTunnels with the other's VTEP makes
// the VXLAN ports, and frames cross both ways (a full 1450-byte broadcast,
// then unicast to the learned MAC); ofproto/trace shows split horizon
// with a third peer. Detach of the last pod removes the tunnel ports.
func TestRealOVSOverlay(t *testing.T) {
	ovsdpdktest.Require(t)
	ctx := context.Background()
	nsA, nsB := ovsdpdktest.Netns(t, "uvo-"), ovsdpdktest.Netns(t, "uvo-")
	vethA, vethB := nsA+"u", nsB+"u" // deleted with their netns
	ipCmd(t, "link", "add", vethA, "netns", nsA, "type", "veth", "peer", "name", vethB, "netns", nsB)
	insts := ovsdpdktest.StartNodes(t, ovsdpdk.Config{Netns: nsA}, ovsdpdk.Config{Netns: nsB})
	nodes := []overlayNode{{inst: insts[0], netns: nsA, vtep: vtepA}, {inst: insts[1], netns: nsB, vtep: vtepB}}
	for i, veth := range []string{vethA, vethB} {
		nodes[i].underlay(t, veth)
		nodes[i].e = realEnv(t, nodes[i].inst, "").withVTEP(t, nodes[i].vtep)
	}

	pods := make([]memifPod, 2)
	atts := make([]contracts.Attachment, 2)
	for i, n := range nodes {
		k := key("ovl"+strconv.Itoa(i), "net1")
		req := overlayReq(k, n.e.sockDir, 0)
		req.Interface.MTU = 1450
		resp, err := n.e.a.Attach(ctx, req)
		require.NoError(t, err)
		atts[i] = resp.Attachment
		peer := nodes[1-i]
		want := []overlay.Tunnel{tunnel(n.vtep, peer.vtep, "node-"+strconv.Itoa(1-i))}
		require.NoError(t, n.e.a.SyncTunnels(ctx, want, true))
		name := adapter.TunnelName(ovlNet, peer.vtep)
		assert.Equal(t, "vxlan", vsctl(t, n.inst, "get", "Interface", name, "type"))
		assert.Equal(t, "true", vsctl(t, n.inst, "get", "Port", name, "protected"))
		assert.Equal(t, `"`+peer.vtep+`"`, vsctl(t, n.inst, "get", "Interface", name, "options:remote_ip"))
		assert.Equal(t, `"5001"`, vsctl(t, n.inst, "get", "Interface", name, "options:key"))
		assert.Positive(t, mustAtoi(t, vsctl(t, n.inst, "get", "Interface", name, "ofport")))
		require.NoError(t, n.e.a.SyncTunnels(ctx, want, true), "a second sync is a no-op")
	}
	for i := range nodes {
		pods[i] = dialPod(t, atts[i], "02:00:00:00:23:0"+strconv.Itoa(i+1))
	}

	// Pod MTU 1450 (cni-entry's default: underlay 1500 - 50): a full frame
	// fits the 1500-byte veth once encapsulated.
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	got := sendUntilSeen(t, pods[0], pods[1], frame(bcast, pods[0].mac, "usrsp-overlay-hello", 1450), "usrsp-overlay-hello")
	assert.Equal(t, []byte(pods[0].mac), got[6:12], "node B's pod got node A's broadcast")
	assert.Len(t, got, 14+1450)
	got = sendUntilSeen(t, pods[1], pods[0], frame(pods[0].mac, pods[1].mac, "usrsp-overlay-reply", 46), "usrsp-overlay-reply")
	assert.Equal(t, []byte(pods[0].mac), got[:6], "node A's pod got node B's unicast")
	// Split horizon, as OVS decides it: with a second peer (node C, never
	// up) a broadcast from node B's tunnel reaches the pod only, while the
	// pod's broadcast is sent into both tunnels.
	a := nodes[0]
	require.NoError(t, a.e.a.SyncTunnels(ctx, []overlay.Tunnel{tunnel(vtepA, vtepC, "node-c")}, false))
	trace := func(flow string) string {
		out, err := a.inst.Appctl(ctx, "ofproto/trace", "br-ovl", flow+",dl_dst=ff:ff:ff:ff:ff:ff")
		require.NoError(t, err)
		return out
	}
	fromB := trace("in_port=" + adapter.TunnelName(ovlNet, vtepB) + ",tun_id=5001,tun_src=" + vtepB + ",tun_dst=" + vtepA + ",dl_src=" + pods[1].mac.String())
	assert.Contains(t, fromB, "between protected ports, skipping output")
	assert.NotContains(t, fromB, "native tunnel", "nothing from one tunnel goes into another")
	fromPod := trace("in_port=" + atts[0].HostIfName + ",dl_src=" + pods[0].mac.String())
	for _, vtep := range []string{vtepB, vtepC} {
		assert.Contains(t, fromPod, "tunneling to "+vtep, "head-end replication to every peer")
	}

	for i, n := range nodes {
		neigh, err := n.inst.Appctl(ctx, "tnl/neigh/show")
		require.NoError(t, err)
		assert.Contains(t, neigh, nodes[1-i].vtep, "OVS resolved the peer VTEP to tunnel to it")
	}

	for i, n := range nodes {
		_, err := n.e.a.Detach(ctx, &contracts.DetachRequest{Key: atts[i].Key, Network: ovlNet})
		require.NoError(t, err)
		owned, err := n.e.ovs.OwnedPorts(ctx)
		require.NoError(t, err)
		assert.Empty(t, owned, "no tunnel port is left")
		assert.Equal(t, "br-phy", vsctl(t, n.inst, "list-br"), "usrsp's bridge went with its ports; the operator's br-phy stays")
	}
}
