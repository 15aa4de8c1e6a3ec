package realvpp_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/confine/confinetest"
	"usrsp.dev/libs/memif"
	"usrsp.dev/services/vpp-adapter/adapter"
	"usrsp.dev/services/vpp-adapter/daemon/daemontest"
)

// TestRealVPPAttacks (issue 11) sends every crafted path of
// libs/confine/confinetest over NATS to the daemon on a real VPP, with
// every kind: each is refused (code 7 naming the field, or a conflict),
// VPP holds nothing of it, and nothing outside the roots changed, through
// detach and GC too.
func TestRealVPPAttacks(t *testing.T) {
	vppEnv(t)
	s := startStack(t)
	c := ctx(t)
	n := confinetest.Node{Shared: s.PodDir, Link: s.LinkDir, State: s.StateDir, Pod: filepath.Join(s.PodDir, "pod1")}
	require.NoError(t, os.Mkdir(n.Pod, 0o750))
	outDir, err := os.MkdirTemp("", "usrsp-out-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(outDir) })
	out := confinetest.Plant(t, n, outDir)

	try := func(t *testing.T, req *contracts.AttachRequest, code contracts.Code, field string) {
		t.Helper()
		_, err := s.Client.Attach(c, contracts.EngineVPP, req)
		if code != 0 {
			require.Error(t, err)
			assert.Equal(t, code, contracts.CodeOf(err), "%v", err)
			assert.Contains(t, err.Error(), field)
			ifs, _, _ := ownedState(t, s.host)
			assert.Empty(t, ifs, "VPP made nothing")
		} else if err != nil {
			t.Logf("refused: %v", err)
		}
		_, err = s.Client.Detach(c, contracts.EngineVPP, &contracts.DetachRequest{Key: req.Key, Network: req.Network})
		require.NoError(t, err)
		out.AssertUntouched(t)
	}
	daemontest.RunAttacks(t, n, out, try)
	t.Run("a tampered record through a daemon restart", func(t *testing.T) {
		k := contracts.AttachmentKey{ContainerID: "tampered", IfName: "net1"}
		_, err := s.Client.Attach(c, contracts.EngineVPP, daemontest.Kinds[0].Request(k, filepath.Join(n.Pod, "t.sock")))
		require.NoError(t, err)
		st, err := adapter.OpenStore(n.State)
		require.NoError(t, err)
		rec, ok, err := st.Get(k)
		require.NoError(t, err)
		require.True(t, ok)
		rec.MemifSocketFile, rec.Attachment.SocketPath, rec.Attachment.Interface.SocketPath = out.Socket, out.Socket, out.Socket
		require.NoError(t, st.Put(rec))
		s.Restart(t)
		ifs, _, _ := ownedState(t, s.host)
		assert.Empty(t, ifs, "the replay removed the interface of the record it left out")
		_, err = s.Client.Detach(c, contracts.EngineVPP, &contracts.DetachRequest{Key: k})
		require.NoError(t, err)
		out.AssertUntouched(t)
	})
	_, err = s.Client.GC(c, contracts.EngineVPP, &contracts.GCRequest{Network: "vpp-net"})
	require.NoError(t, err)
	out.AssertUntouched(t)
	ifs, _, _ := ownedState(t, s.host)
	assert.Empty(t, ifs)
}

// The pod's non-root app: uid nobody, in podGID only.
const (
	appUID = 65534
	podGID = 4321
)

// appEnv makes this test binary, run as the app, connect to a socket
// instead of running tests (see TestMain): "memif:<path>" is a memif
// client (libs/memif) that waits for the link, "unix:<path>" a connect(2).
const appEnv = "USRSP_TEST_APP_CONNECT"

// TestMain runs the app's connect when the test binary was exec'd as the
// app (appEnv), else the tests.
func TestMain(m *testing.M) {
	if target := os.Getenv(appEnv); target != "" {
		if err := appConnect(target); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// connectAsApp runs the app's connect as uid appUID in group podGID only.
// It execs /proc/self/exe: the magic link reaches the test binary without
// a search of go test's private build directory.
func connectAsApp(target string) error {
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), appEnv+"="+target)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: appUID, Gid: podGID, Groups: []uint32{podGID}}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// appConnect is the app's side of connectAsApp.
func appConnect(target string) error {
	kind, path, _ := strings.Cut(target, ":")
	if kind == "unix" {
		c, err := net.DialTimeout("unix", path, 10*time.Second)
		if err == nil {
			err = c.Close()
		}
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ifc, err := memif.Dial(ctx, memif.Config{SocketPath: path, Name: "nonroot-app"})
	if err == nil {
		defer ifc.Close()
		err = ifc.WaitUp(ctx)
	}
	return err
}

// TestRealVPPPodAccess (issue 11): the sockets VPP creates for a pod (a
// memif master's listener, a vhost-user server's socket) get the
// request's podAccess group and mode, so an unprivileged app in that group
// connects; again after VPP was killed and the replay made them anew.
// Without podAccess the same app is refused.
func TestRealVPPPodAccess(t *testing.T) {
	vppEnv(t)
	if os.Geteuid() != 0 {
		t.Skip("running the app as another uid needs root")
	}
	s := startStack(t)
	c := ctx(t)
	// The pod directory as cni-entry leaves it with podAccess (2770
	// root:group); the app reaches it as a pod would through its mount.
	require.NoError(t, os.Chmod(s.PodDir, 0o711))
	pod := filepath.Join(s.PodDir, "nonroot")
	require.NoError(t, os.Mkdir(pod, 0o770))
	require.NoError(t, os.Chown(pod, 0, podGID))
	require.NoError(t, os.Chmod(pod, 0o770|os.ModeSetgid))

	access := &contracts.PodAccess{GID: podGID, Mode: 0o660}
	master := daemontest.Kinds[0].Request(contracts.AttachmentKey{ContainerID: "nonroot-m", IfName: "net1"}, filepath.Join(pod, "memif-net1.sock"))
	master.Interface.PodAccess = access
	server := daemontest.Kinds[2].Request(contracts.AttachmentKey{ContainerID: "nonroot-v", IfName: "net2"}, filepath.Join(pod, "vhost-net2.sock"))
	server.Interface.PodAccess = access
	// Without podAccess: a vhost-user server in the same directory (VPP
	// makes it 0755: the group may not write), and a memif master in a
	// directory without the pod's group (VPP makes memif sockets 0775, so
	// in the setgid directory the group could write it).
	plainDir := filepath.Join(s.PodDir, "plain")
	require.NoError(t, os.Mkdir(plainDir, 0o711))
	plainVhost := daemontest.Kinds[2].Request(contracts.AttachmentKey{ContainerID: "nonroot-pv", IfName: "net3"}, filepath.Join(pod, "vhost-net3.sock"))
	plainMemif := daemontest.Kinds[0].Request(contracts.AttachmentKey{ContainerID: "nonroot-pm", IfName: "net1"}, filepath.Join(plainDir, "memif-net1.sock"))
	all := []*contracts.AttachRequest{master, server, plainVhost, plainMemif}
	for _, r := range all {
		_, err := s.Client.Attach(c, contracts.EngineVPP, r)
		require.NoError(t, err, "attach %s", r.Key)
	}
	asApp := func(t *testing.T) {
		t.Helper()
		for _, target := range []string{"memif:" + master.Interface.SocketPath, "unix:" + server.Interface.SocketPath} {
			_, path, _ := strings.Cut(target, ":")
			fi, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, uint32(podGID), fi.Sys().(*syscall.Stat_t).Gid, "group of %s", path)
			assert.Equal(t, os.FileMode(0o660), fi.Mode().Perm(), "mode of %s", path)
			assert.NoError(t, connectAsApp(target), "the app connects to %s", target)
		}
		for _, target := range []string{"unix:" + plainVhost.Interface.SocketPath, "memif:" + plainMemif.Interface.SocketPath} {
			err := connectAsApp(target)
			require.Error(t, err, "without podAccess the app is refused: %s", target)
			assert.Contains(t, err.Error(), "permission denied")
		}
	}
	t.Run("after attach", asApp)
	t.Run("after VPP was killed and the replay re-created the sockets", func(t *testing.T) {
		s.host.kill9()
		s.host.start()
		ev := s.WaitFor(t, contracts.EventReconciled)
		require.Contains(t, ev.Message, "recreated 4")
		asApp(t)
	})
	for _, r := range all {
		_, err := s.Client.Detach(c, contracts.EngineVPP, &contracts.DetachRequest{Key: r.Key})
		require.NoError(t, err)
	}
}
