package adapter_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/ovsdpdk"
	"usrsp.dev/libs/ovsdpdk/ovsdpdktest"
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
