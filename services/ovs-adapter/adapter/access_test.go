package adapter_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/memif"
	"usrsp.dev/libs/testkit"
)

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
