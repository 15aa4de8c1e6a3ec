package adapter_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/vhost_user"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/confine"
	"usrsp.dev/libs/confine/confinetest"
	"usrsp.dev/libs/vpp/vpptest"
	"usrsp.dev/services/vpp-adapter/adapter"
	"usrsp.dev/services/vpp-adapter/daemon/daemontest"
)

// confEnv is an adapter on the fake VPP with a node layout of its own and
// the attacker's outside directory (libs/confine/confinetest).
type confEnv struct {
	*harness
	confinetest.Node
	roots *confine.Roots
	out   *confinetest.Outside
}

func newConfEnv(t testing.TB) *confEnv {
	t.Helper()
	n := confinetest.NewNode(t)
	e := &confEnv{Node: n, roots: n.Roots(t)}
	e.harness = newHarnessIn(t, n.State, withRoots(e.roots))
	e.out = confinetest.Plant(t, n, filepath.Join(filepath.Dir(n.Shared), "out"))
	return e
}

func withRoots(r *confine.Roots) option { return func(c *adapter.Config) { c.Roots = r } }

// vppPaths are the socket paths VPP was handed (registrations added,
// vhost-user interfaces created) since the last Calls.
func vppPaths(calls []vpptest.Call) []string {
	var out []string
	for _, c := range calls {
		switch m := c.Msg.(type) {
		case *memif.MemifSocketFilenameAddDelV2:
			if m.IsAdd {
				out = append(out, m.SocketFilename)
			}
		case *vhost_user.CreateVhostUserIfV2:
			out = append(out, m.SockFilename)
		}
	}
	return out
}

// assertVPPPathsInside checks that every path VPP was handed is a file
// in a pod directory, or an abstract socket in a network namespace.
func (e *confEnv) assertVPPPathsInside(t testing.TB) {
	t.Helper()
	for _, p := range vppPaths(e.fake.Messages()) {
		if rest, ok := strings.CutPrefix(p, "abstract:"); ok {
			_, ns, _ := strings.Cut(rest, ",netns_name=")
			assert.NoError(t, confine.Netns("netns", ns), "VPP was handed %q", p)
			continue
		}
		_, err := e.roots.PodSocket("path", p)
		assert.NoError(t, err, "VPP was handed %q", p)
	}
}

// TestAttacks (issue 11): every crafted path, with every kind, is refused
// before VPP is asked anything (code 7 naming the field, or a conflict),
// and nothing outside the roots changes, through detach and GC too.
func TestAttacks(t *testing.T) {
	e := newConfEnv(t)
	c := context.Background()
	try := func(t *testing.T, req *contracts.AttachRequest, code contracts.Code, field string) {
		t.Helper()
		e.fake.Calls()
		_, err := e.a.Attach(c, req)
		if code != 0 {
			require.Error(t, err)
			assert.Equal(t, code, contracts.CodeOf(err), "%v", err)
			assert.Contains(t, err.Error(), field)
			assert.Empty(t, e.fake.Calls(), "VPP is asked nothing")
		} else if err != nil {
			t.Logf("refused: %v", err)
		}
		e.assertVPPPathsInside(t)
		_, err = e.a.Detach(c, &contracts.DetachRequest{Key: req.Key, Network: req.Network})
		require.NoError(t, err)
		e.out.AssertUntouched(t)
	}
	daemontest.RunAttacks(t, e.Node, e.out, try)
	t.Run("a network namespace is accepted", func(t *testing.T) {
		_, err := e.a.Attach(c, daemontest.NetnsRequest(contracts.AttachmentKey{ContainerID: "netns-ok", IfName: "net1"}, confinetest.Netns()))
		require.NoError(t, err)
		e.assertVPPPathsInside(t)
	})
	_, err := e.a.GC(c, &contracts.GCRequest{Network: "vpp-net"})
	require.NoError(t, err)
	e.out.AssertUntouched(t)
}

// TestLinkDirPath: the project's own link, <linkDir>/<hex> -> a pod
// directory, is the one symlink followed: VPP is handed the link path, and
// the adapter acts (removes the master's leftover socket file) beneath
// the pod directory.
func TestLinkDirPath(t *testing.T) {
	e := newConfEnv(t)
	c := context.Background()
	req := daemontest.Kinds[0].Request(key, filepath.Join(e.Link, confinetest.LinkToPod, "memif-net1.sock"))
	e.fake.Calls()
	_, err := e.a.Attach(c, req)
	require.NoError(t, err)
	assert.Equal(t, []string{req.Interface.SocketPath}, vppPaths(e.fake.Messages()))
	sock := filepath.Join(e.Pod, "memif-net1.sock") // VPP's leftover listener file
	l, err := net.Listen("unixpacket", sock)
	require.NoError(t, err)
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	require.NoError(t, l.Close())
	_, err = e.a.Detach(c, &contracts.DetachRequest{Key: key})
	require.NoError(t, err)
	assert.NoFileExists(t, sock)
	e.out.AssertUntouched(t)
}

// tamper rewrites k's record with edit, as an attacker with the state dir
// would.
func tamper(t *testing.T, st *adapter.Store, k contracts.AttachmentKey, edit func(r *adapter.Record)) {
	t.Helper()
	r, ok, err := st.Get(k)
	require.NoError(t, err)
	require.True(t, ok)
	edit(r)
	require.NoError(t, st.Put(r))
}

// TestTamperedRecords: records that name paths outside the roots are left
// out when loaded: the replay hands VPP none of their paths (and would
// remove their interfaces), detach and GC touch none of their files. A
// sound record whose pod directory was swapped for a symlink is not
// re-created, does not keep the adapter unready, and its files are not
// touched either.
func TestTamperedRecords(t *testing.T) {
	e := newConfEnv(t)
	c := context.Background()
	master := daemontest.Kinds[0].Request
	setPath := func(p string) func(r *adapter.Record) {
		return func(r *adapter.Record) {
			r.Attachment.SocketPath, r.Attachment.Interface.SocketPath = p, p
			if r.MemifSocketFile != "" {
				r.MemifSocketFile = p
			}
		}
	}
	tests := []struct {
		name string
		req  func(k contracts.AttachmentKey, path string) *contracts.AttachRequest
		edit func(r *adapter.Record)
	}{
		{"memif socket moved onto the outside socket", master, setPath(e.out.Socket)},
		{"memif socket file alone moved outside", master, func(r *adapter.Record) { r.MemifSocketFile = e.out.Socket }},
		{"vhost-user server socket moved outside", daemontest.Kinds[2].Request, setPath(e.out.Secret)},
		{"memif socket into /proc", master, setPath("/proc/self/root" + e.out.Socket)},
		{"memif socket with dot-dot", master, setPath(e.Pod + "/../../../.." + e.out.Socket)},
		{"vhost-user client socket in the state dir", daemontest.Kinds[3].Request, setPath(filepath.Join(e.State, "x.sock"))},
		{"netns moved to a mount namespace", func(k contracts.AttachmentKey, _ string) *contracts.AttachRequest {
			return daemontest.NetnsRequest(k, confinetest.Netns())
		}, func(r *adapter.Record) { r.Attachment.Interface.Memif.Netns = "/proc/self/ns/mnt" }},
		{"another key's tag", master, func(r *adapter.Record) { r.Tag = adapter.Tag(key) }},
	}
	var keys []contracts.AttachmentKey
	for i, tt := range tests {
		k := contracts.AttachmentKey{ContainerID: fmt.Sprintf("tamper%02d", i), IfName: "net1"}
		keys = append(keys, k)
		_, err := e.a.Attach(c, tt.req(k, filepath.Join(e.Pod, fmt.Sprintf("s%d.sock", i))))
		require.NoError(t, err, tt.name)
		tamper(t, e.store, k, tt.edit)
	}
	// A sound record whose pod directory is swapped for a symlink to
	// outside after the attach, its socket named like the outside socket.
	swapped := contracts.AttachmentKey{ContainerID: "swapped", IfName: "net1"}
	pod2 := filepath.Join(e.Shared, "pod2")
	require.NoError(t, os.Mkdir(pod2, 0o750))
	_, err := e.a.Attach(c, master(swapped, filepath.Join(pod2, "m.sock")))
	require.NoError(t, err)
	require.NoError(t, os.RemoveAll(pod2))
	require.NoError(t, os.Symlink(e.out.Dir, pod2))

	// VPP and the adapter restart: the replay hands VPP none of it.
	fake, a, evs := looped(t, e.State, withRoots(e.roots))
	ev := evs.WaitFor(t, contracts.EventReconciled)
	assert.Contains(t, ev.Message, "desired 1, present 0, recreated 0, failed 1")
	assert.Contains(t, ev.Message, fmt.Sprintf("records ignored %d", len(tests)))
	for _, ifc := range fake.Snapshot() {
		assert.NotContains(t, ifc.Tag, adapter.TagPrefix, "no interface re-created")
	}
	assert.Empty(t, vppPaths(fake.Messages()))
	ready, why := a.Ready()
	assert.True(t, ready, "one pod's directory does not keep the node unready: %s", why)
	for _, k := range keys {
		_, err := a.Check(c, &contracts.CheckRequest{Key: k, Network: "vpp-net"})
		assert.Equal(t, contracts.CodeNotFound, contracts.CodeOf(err), "a tampered record is not loaded")
	}
	e.out.AssertUntouched(t)
	_, err = a.GC(c, &contracts.GCRequest{Network: "vpp-net"})
	require.NoError(t, err)
	e.out.AssertUntouched(t)
	recs, err := e.store.List()
	require.NoError(t, err)
	assert.Empty(t, recs, "GC dropped the tampered records too")
}

// FuzzAttach is the property: for any decoded attach request (and its
// detach and GC), no file outside the roots is touched and every path
// VPP is handed is a file in a pod directory or an abstract socket in a
// network namespace. Paths may use $POD, $SHARED, $LINK, $STATE, $OUT
// and $PID for the test's directories and pid.
func FuzzAttach(f *testing.F) {
	for _, s := range []string{
		`{"key":{"containerId":"c1","ifName":"net1"},"network":"n","interface":{"ifType":"vhostuser","netType":"bridge","socketPath":"$POD/v.sock","vhost":{"mode":"server"},"bridge":{"id":4}}}`,
		`{"key":{"containerId":"c1","ifName":"net1"},"network":"n","interface":{"ifType":"vhostuser","netType":"bridge","socketPath":"$OUT/shadow","vhost":{"mode":"server"},"bridge":{"id":4}}}`,
		`{"key":{"containerId":"c2","ifName":"net1"},"network":"n","interface":{"ifType":"vhostuser","netType":"bridge","socketPath":"$POD/hardlink.sock","vhost":{"mode":"server"},"bridge":{"id":4}}}`,
		`{"key":{"containerId":"c2","ifName":"net1"},"network":"n","interface":{"ifType":"vhostuser","netType":"none","socketPath":"$POD/symlink.sock","vhost":{"mode":"client"}}}`,
		`{"key":{"containerId":"c3","ifName":"net1"},"network":"n","interface":{"ifType":"memif","netType":"none","socketPath":"$SHARED/evil/m.sock","memif":{"role":"master","mode":"ethernet"}}}`,
		`{"key":{"containerId":"c3","ifName":"net1"},"network":"n","interface":{"ifType":"memif","netType":"none","socketPath":"$LINK/aaaaaaaaaaaa/m.sock","memif":{"role":"master","mode":"ethernet"}}}`,
		`{"key":{"containerId":"c3","ifName":"net1"},"network":"n","interface":{"ifType":"memif","netType":"none","socketPath":"$LINK/eeeeeeeeeeee/m.sock","memif":{"role":"slave","mode":"ethernet"}}}`,
		`{"key":{"containerId":"c4","ifName":"net1"},"network":"n","interface":{"ifType":"memif","netType":"none","socketPath":"$POD/../../../..$OUT/m.sock","memif":{"role":"master","mode":"ethernet"}}}`,
		`{"key":{"containerId":"c4","ifName":"net1"},"network":"n","interface":{"ifType":"memif","netType":"none","socketPath":"/proc/self/root$OUT/m.sock","memif":{"role":"master","mode":"ethernet"}}}`,
		`{"key":{"containerId":"c5","ifName":"net1"},"network":"n","interface":{"ifType":"memif","netType":"none","memif":{"role":"master","mode":"ethernet","netns":"/proc/$PID/ns/net","socketFile":"m"}}}`,
		`{"key":{"containerId":"c5","ifName":"net1"},"network":"n","interface":{"ifType":"memif","netType":"none","memif":{"role":"master","mode":"ethernet","netns":"/proc/$PID/ns/mnt","socketFile":"m"}}}`,
		`{"key":{"containerId":"c6","ifName":"net1"},"network":"n","interface":{"ifType":"vhostuser","netType":"bridge","socketPath":"$STATE/x.sock","vhost":{"mode":"client"},"bridge":{"id":4}}}`,
		`{"key":{"containerId":"c6","ifName":"net1"},"network":"n","interface":{"ifType":"vhostuser","netType":"bridge","socketPath":"$POD/x\u0000$OUT/shadow","vhost":{"mode":"server"},"bridge":{"id":4}}}`,
	} {
		f.Add([]byte(s))
	}
	e := newConfEnv(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		s := strings.NewReplacer("$POD", e.Pod, "$SHARED", e.Shared, "$LINK", e.Link, "$STATE", e.State,
			"$OUT", e.out.Dir, "$PID", fmt.Sprint(os.Getpid())).Replace(string(b))
		req, err := contracts.DecodeAttachRequest([]byte(s))
		if err != nil {
			return
		}
		c := context.Background()
		e.fake.Calls()
		_, _ = e.a.Attach(c, req)
		e.assertVPPPathsInside(t)
		_, _ = e.a.Detach(c, &contracts.DetachRequest{Key: req.Key, Network: req.Network})
		_, _ = e.a.GC(c, &contracts.GCRequest{Network: req.Network})
		e.out.AssertUntouched(t)
	})
}
