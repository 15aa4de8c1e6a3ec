package adapter_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/confine/confinetest"
	"usrsp.dev/libs/ovsdpdk/ovsdpdktest"
	"usrsp.dev/services/ovs-adapter/adapter"
	"usrsp.dev/services/ovs-adapter/ovs/ovstest"
)

// node is e's layout as confinetest sees it.
func (e *env) node() confinetest.Node {
	return confinetest.Node{Shared: e.dirs.SharedDir, Link: e.dirs.LinkDir, State: e.store.Dir(), Pod: e.sockDir}
}

// plantOutside makes a directory outside every root of e and plants in
// e's pod directories what a pod would to reach it (confinetest.Plant).
func plantOutside(t testing.TB, e *env) *confinetest.Outside {
	t.Helper()
	return confinetest.Plant(t, e.node(), filepath.Join(e.base, "outside"))
}

// attackKind is one kind of port, its socket path set by the attack;
// server: OVS creates the socket (confinetest.Attack.ServerCode applies).
type attackKind struct {
	name   string
	build  func(k contracts.AttachmentKey, sockDir string) *contracts.AttachRequest
	server bool
}

func (ak attackKind) req(k contracts.AttachmentKey, path string) *contracts.AttachRequest {
	r := ak.build(k, "")
	r.Interface.SocketPath = path
	return r
}

func memifSlaveReq(k contracts.AttachmentKey, sockDir string) *contracts.AttachRequest {
	r := memifReq(k, sockDir)
	r.Interface.Memif.Role = contracts.MemifRoleSlave
	return r
}

var attackKinds = []attackKind{
	{"vhost-user server", vhostServerReq, true}, {"vhost-user client", vhostClientReq, false},
	{"memif master", memifReq, true}, {"memif slave", memifSlaveReq, false},
}

// attacks are confinetest's socket attacks on e, and OVS's run dir.
func attacks(e *env, o *confinetest.Outside) []confinetest.Attack {
	return append(o.SocketAttacks(e.node()), confinetest.Attack{Name: "the OVS run dir (vswitchd's own sockets)",
		Path: filepath.Join(e.runDir, "db.sock"), Code: contracts.CodeInvalidConfig})
}

// runAttacks attaches every attack with every kind, then detaches and
// garbage-collects, and checks that nothing outside changed. play makes
// the fake vswitchd's dpdkvhostuser socket (real OVS makes its own).
func runAttacks(t *testing.T, e *env, play bool) {
	ctx := context.Background()
	o := plantOutside(t, e)
	n := 0
	for _, at := range attacks(e, o) {
		for _, kind := range attackKinds {
			t.Run(at.Name+"/"+kind.name, func(t *testing.T) {
				n++
				k := key(fmt.Sprintf("attack%03d", n), "net1")
				if play {
					l, err := net.Listen("unix", filepath.Join(e.runDir, adapter.PortName(k)))
					require.NoError(t, err)
					defer l.Close()
				}
				_, err := e.a.Attach(ctx, kind.req(k, at.Path))
				code := at.Code
				if code == 0 && kind.server {
					code = at.ServerCode
				}
				if code != 0 {
					require.Error(t, err)
					assert.Equal(t, code, contracts.CodeOf(err), "%v", err)
					if at.Code != 0 {
						assert.Contains(t, err.Error(), "interface.socketPath")
					}
				} else if err != nil {
					t.Logf("refused: %v", err)
					assert.NotEqual(t, contracts.CodeInternal, contracts.CodeOf(err))
				}
				if err != nil {
					ports, perr := e.ovs.Ports(ctx, []string{adapter.PortName(k)})
					require.NoError(t, perr)
					assert.Empty(t, ports, "a refused attach leaves no port")
				}
				_, err = e.a.Detach(ctx, &contracts.DetachRequest{Key: k, Network: "net-a"})
				require.NoError(t, err)
				o.AssertUntouched(t)
			})
		}
	}
	_, err := e.a.GC(ctx, &contracts.GCRequest{Network: "net-a"})
	require.NoError(t, err)
	o.AssertUntouched(t)
}

func TestAttacksFakeOVS(t *testing.T) {
	runAttacks(t, newEnv(t, nil, ""), true)
}

func TestAttacksRealOVS(t *testing.T) {
	inst := ovsdpdktest.Start(t)
	runAttacks(t, realEnv(t, inst, ""), false)
}

// tamper rewrites k's record with edit, as an attacker with the state
// dir would.
func tamper(t *testing.T, e *env, k contracts.AttachmentKey, edit func(r *adapter.Record)) {
	t.Helper()
	r, ok, err := e.store.Get(k)
	require.NoError(t, err)
	require.True(t, ok)
	edit(&r)
	require.NoError(t, e.store.Put(r))
}

// TestTamperedRecords: records that name paths outside the roots (or a
// port that is not the one the interface plans) are left out on load, so
// reconcile, detach, GC and the stale-socket sweep never act on them, and
// vswitchd is never handed their paths.
func TestTamperedRecords(t *testing.T) {
	for _, real := range []bool{false, true} {
		name := "fake OVS"
		if real {
			name = "real OVS"
		}
		t.Run(name, func(t *testing.T) { testTamperedRecords(t, real) })
	}
}

func testTamperedRecords(t *testing.T, real bool) {
	ctx := context.Background()
	var e *env
	var fake *ovstest.Fake
	if real {
		e = realEnv(t, ovsdpdktest.Start(t), "")
	} else {
		fake = ovstest.New()
		e = newEnv(t, fake, "")
	}
	o := plantOutside(t, e)
	setPath := func(r *adapter.Record, p string) {
		r.Requested.SocketPath, r.Attachment.SocketPath, r.Attachment.Interface.SocketPath = p, p, p
		for k, v := range r.Port.Options {
			switch k {
			case "vhost-server-path":
				r.Port.Options[k] = p
			case "dpdk-devargs":
				old := r.Attachment.SocketPath
				r.Port.Options[k] = strings.Replace(v, "socket="+old, "socket="+p, 1)
			}
		}
	}
	tests := []struct {
		name string
		req  func(k contracts.AttachmentKey) *contracts.AttachRequest
		edit func(r *adapter.Record)
	}{
		{"memif socket moved outside", func(k contracts.AttachmentKey) *contracts.AttachRequest { return memifReq(k, e.sockDir) },
			func(r *adapter.Record) {
				r.Port.Options["dpdk-devargs"] = strings.Replace(r.Port.Options["dpdk-devargs"], "socket="+r.Attachment.SocketPath, "socket="+o.Secret, 1)
				r.Requested.SocketPath, r.Attachment.SocketPath = o.Secret, o.Secret
			}},
		{"vhost-user client path moved outside", func(k contracts.AttachmentKey) *contracts.AttachRequest { return vhostClientReq(k, e.sockDir) },
			func(r *adapter.Record) { setPath(r, o.Secret) }},
		{"vhost-user client path into /proc", func(k contracts.AttachmentKey) *contracts.AttachRequest { return vhostClientReq(k, e.sockDir) },
			func(r *adapter.Record) { setPath(r, "/proc/self/root"+o.Secret) }},
		{"memif socket with dot-dot", func(k contracts.AttachmentKey) *contracts.AttachRequest { return memifReq(k, e.sockDir) },
			func(r *adapter.Record) { setPath(r, e.sockDir+"/../../../../../.."+o.Secret) }},
		{"OVS socket outside the run dir", func(k contracts.AttachmentKey) *contracts.AttachRequest { return vhostClientReq(k, e.sockDir) },
			func(r *adapter.Record) { r.OVSSocket = o.Secret }},
		{"a port option that opens a file", func(k contracts.AttachmentKey) *contracts.AttachRequest { return memifReq(k, e.sockDir) },
			func(r *adapter.Record) { r.Port.Options["dpdk-devargs"] = "net_pcap0,tx_pcap=" + o.Secret }},
		{"a second socket= in the devargs", func(k contracts.AttachmentKey) *contracts.AttachRequest { return memifReq(k, e.sockDir) },
			func(r *adapter.Record) { r.Port.Options["dpdk-devargs"] += ",socket=" + o.Secret }},
		{"an abstract memif socket", func(k contracts.AttachmentKey) *contracts.AttachRequest { return memifReq(k, e.sockDir) },
			func(r *adapter.Record) {
				r.Port.Options["dpdk-devargs"] = strings.Replace(r.Port.Options["dpdk-devargs"], "socket-abstract=no", "socket-abstract=yes", 1)
			}},
		{"vhost-server-path added to a memif port", func(k contracts.AttachmentKey) *contracts.AttachRequest { return memifReq(k, e.sockDir) },
			func(r *adapter.Record) { r.Port.Options["vhost-server-path"] = o.Secret }},
		{"another port name", func(k contracts.AttachmentKey) *contracts.AttachRequest { return vhostClientReq(k, e.sockDir) },
			func(r *adapter.Record) { r.Port.Name = "eth0" }},
	}
	var keys []contracts.AttachmentKey
	for i, tt := range tests {
		k := key("tamper"+string(rune('a'+i)), "net1")
		keys = append(keys, k)
		_, err := e.a.Attach(ctx, tt.req(k))
		require.NoError(t, err, tt.name)
		tamper(t, e, k, tt.edit)
	}
	// The pod directory of one more (a sound record) is swapped for a
	// symlink to outside after the attach, its socket named like the file.
	swapped := key("swapped", "net1")
	pod2 := filepath.Join(e.dirs.SharedDir, "pod2")
	require.NoError(t, os.Mkdir(pod2, 0o750))
	req := memifReq(swapped, pod2)
	req.Interface.SocketPath = filepath.Join(pod2, "shadow")
	_, err := e.a.Attach(ctx, req)
	require.NoError(t, err)
	_, err = e.ovs.DeletePorts(ctx, []string{adapter.PortName(swapped)}) // lost: reconcile would re-create it
	require.NoError(t, err)
	require.NoError(t, os.RemoveAll(pod2))
	require.NoError(t, os.Symlink(o.Dir, pod2))

	e2 := e.restart(t)
	for i, tt := range tests {
		_, err := e2.a.Check(ctx, &contracts.CheckRequest{Key: keys[i], Network: "net-a", Interface: tt.req(keys[i]).Interface})
		assert.Equal(t, contracts.CodeNotFound, contracts.CodeOf(err), "%s: the tampered record is not loaded", tt.name)
	}
	_, _, err = e2.a.RemoveStaleSockets()
	require.NoError(t, err)
	res, err := e2.a.Reconcile(ctx)
	require.NoError(t, err)
	assert.Len(t, res.Removed, len(tests), "the ports of the tampered records are removed")
	assert.Equal(t, []string{adapter.PortName(swapped)}, res.Failed, "the swapped pod's port is not handed to vswitchd again")
	o.AssertUntouched(t)
	if fake != nil {
		for _, p := range fake.All() {
			assertOptionsInside(t, e, p.Options)
		}
	}
	_, err = e2.a.GC(ctx, &contracts.GCRequest{Network: "net-a"})
	require.NoError(t, err)
	for _, k := range append(keys, swapped) {
		_, err := e2.a.Detach(ctx, &contracts.DetachRequest{Key: k, Network: "net-a"})
		require.NoError(t, err)
	}
	o.AssertUntouched(t)
	ports, err := e2.ovs.OwnedPorts(ctx)
	require.NoError(t, err)
	assert.Empty(t, ports)
}

// assertOptionsInside checks that every path a port hands to vswitchd is
// in a pod directory of e.
func assertOptionsInside(t *testing.T, e *env, opts map[string]string) {
	t.Helper()
	var paths []string
	if p, ok := opts["vhost-server-path"]; ok {
		paths = append(paths, p)
	}
	if d, ok := opts["dpdk-devargs"]; ok {
		if !strings.HasPrefix(d, "net_memif") {
			t.Errorf("dpdk-devargs %q is not a memif", d)
		}
		for _, kv := range strings.Split(d, ",") {
			if v, ok := strings.CutPrefix(kv, "socket="); ok {
				paths = append(paths, v)
			}
		}
	}
	for k := range opts {
		switch k {
		case "vhost-server-path", "dpdk-devargs", "n_rxq":
		default:
			t.Errorf("unexpected option %s handed to vswitchd", k)
		}
	}
	for _, p := range paths {
		_, err := e.roots.Resolve("path", p)
		assert.NoError(t, err, "vswitchd was handed %q", p)
		assert.NotContains(t, p, "\x00")
	}
}

// FuzzAttach is the property: for any decoded attach request (and its
// detach and GC), no file outside the roots is touched and every path
// handed to vswitchd is beneath them. Paths in the input may use
// $POD, $SHARED, $LINK, $RUN and $OUT for the test's directories.
func FuzzAttach(f *testing.F) {
	fake := ovstest.New()
	e := buildEnv(f, fake, "", f.TempDir())
	for _, s := range []string{
		`{"key":{"containerId":"c1","ifName":"net1"},"network":"net-a","interface":{"ifType":"vhostuser","netType":"bridge","socketPath":"$POD/v.sock","vhost":{"mode":"server"}}}`,
		`{"key":{"containerId":"c1","ifName":"net1"},"network":"net-a","interface":{"ifType":"vhostuser","netType":"bridge","socketPath":"$OUT/shadow","vhost":{"mode":"server"}}}`,
		`{"key":{"containerId":"c2","ifName":"net1"},"network":"net-a","interface":{"ifType":"vhostuser","netType":"bridge","socketPath":"$POD/hardlink.sock","vhost":{"mode":"server"}}}`,
		`{"key":{"containerId":"c2","ifName":"net1"},"network":"net-a","interface":{"ifType":"vhostuser","netType":"bridge","socketPath":"$POD/symlink.sock","vhost":{"mode":"client"}}}`,
		`{"key":{"containerId":"c3","ifName":"net1"},"network":"net-a","interface":{"ifType":"memif","netType":"bridge","socketPath":"$SHARED/evil/shadow","memif":{"role":"master","mode":"ethernet"}}}`,
		`{"key":{"containerId":"c3","ifName":"net1"},"network":"net-a","interface":{"ifType":"memif","netType":"bridge","socketPath":"$LINK/aaaaaaaaaaaa/shadow","memif":{"role":"master","mode":"ethernet"}}}`,
		`{"key":{"containerId":"c3","ifName":"net1"},"network":"net-a","interface":{"ifType":"memif","netType":"bridge","socketPath":"$LINK/eeeeeeeeeeee/m.sock","memif":{"role":"slave","mode":"ethernet"}}}`,
		`{"key":{"containerId":"c4","ifName":"net1"},"network":"net-a","interface":{"ifType":"memif","netType":"bridge","socketPath":"$POD/../../../..$OUT/shadow","memif":{"role":"master","mode":"ethernet"}}}`,
		`{"key":{"containerId":"c4","ifName":"net1"},"network":"net-a","interface":{"ifType":"memif","netType":"bridge","socketPath":"/proc/self/root$OUT/shadow","memif":{"role":"master","mode":"ethernet"}}}`,
		`{"key":{"containerId":"c5","ifName":"net1"},"network":"net-a","interface":{"ifType":"vhostuser","netType":"bridge","socketPath":"$RUN/db.sock","vhost":{"mode":"client"}}}`,
		`{"key":{"containerId":"c5","ifName":"net1"},"network":"net-a","interface":{"ifType":"vhostuser","netType":"bridge","socketPath":"$POD/x\u0000$OUT/shadow","vhost":{"mode":"server"}}}`,
	} {
		f.Add([]byte(s))
	}
	o := plantOutside(f, e)
	for _, c := range []string{"c1", "c2", "c3", "c4", "c5"} { // play vswitchd's dpdkvhostuser sockets for the seeds' keys
		l, err := net.Listen("unix", filepath.Join(e.runDir, adapter.PortName(key(c, "net1"))))
		require.NoError(f, err)
		f.Cleanup(func() { _ = l.Close() })
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := strings.NewReplacer("$POD", e.sockDir, "$SHARED", e.dirs.SharedDir, "$LINK", e.dirs.LinkDir,
			"$RUN", e.runDir, "$OUT", o.Dir).Replace(string(b))
		req, err := contracts.DecodeAttachRequest([]byte(s))
		if err != nil {
			return
		}
		ctx := context.Background()
		_, _ = e.a.Attach(ctx, req)
		for _, p := range fake.All() {
			assertOptionsInside(t, e, p.Options)
		}
		_, _ = e.a.Detach(ctx, &contracts.DetachRequest{Key: req.Key, Network: req.Network})
		_, _ = e.a.GC(ctx, &contracts.GCRequest{Network: req.Network})
		o.AssertUntouched(t)
	})
}

// testLinkDir: the project's own link, <linkDir>/<hex> -> a pod
// directory, is the one symlink followed; the vswitch is handed the short
// link path and the adapter acts beneath the pod directory.
func testLinkDir(t *testing.T, e *env, play bool) {
	ctx := context.Background()
	link := filepath.Join(e.dirs.LinkDir, "0123456789ab")
	require.NoError(t, os.Symlink(e.sockDir, link))
	k := key("linked", "net1")
	if play {
		l, err := net.Listen("unix", filepath.Join(e.runDir, adapter.PortName(k)))
		require.NoError(t, err)
		defer l.Close()
	}
	req := vhostServerReq(k, link)
	att, err := e.a.Attach(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, req.Interface.SocketPath, att.Attachment.SocketPath)
	c, err := net.Dial("unix", filepath.Join(e.sockDir, filepath.Base(req.Interface.SocketPath)))
	require.NoError(t, err, "the socket is exposed in the pod directory")
	_ = c.Close()
	_, err = e.a.Check(ctx, &contracts.CheckRequest{Key: k, Network: req.Network, Interface: req.Interface})
	require.NoError(t, err)
	_, err = e.a.Detach(ctx, &contracts.DetachRequest{Key: k, Network: req.Network})
	require.NoError(t, err)
	assert.NoFileExists(t, filepath.Join(e.sockDir, filepath.Base(req.Interface.SocketPath)))

	m := memifReq(key("linked2", "net1"), link)
	_, err = e.a.Attach(ctx, m)
	require.NoError(t, err)
	ports, err := e.ovs.Ports(ctx, []string{adapter.PortName(m.Key)})
	require.NoError(t, err)
	require.Len(t, ports, 1)
	assert.Contains(t, ports[0].Options["dpdk-devargs"], "socket="+m.Interface.SocketPath+",", "vswitchd gets the short link path")
	_, err = e.a.Detach(ctx, &contracts.DetachRequest{Key: m.Key, Network: m.Network})
	require.NoError(t, err)
}

func TestLinkDirFakeOVS(t *testing.T) { testLinkDir(t, newEnv(t, nil, ""), true) }

func TestLinkDirRealOVS(t *testing.T) {
	testLinkDir(t, realEnv(t, ovsdpdktest.Start(t), ""), false)
}

// TestRealOVSBindMount: a pod directory on another file system than OVS's
// run dir gets the dpdkvhostuser socket by a bind mount (through
// /proc/self/fd paths), which detach unmounts and removes.
func TestRealOVSBindMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	e := realEnv(t, ovsdpdktest.Start(t), "")
	require.NoError(t, syscall.Mount("tmpfs", e.sockDir, "tmpfs", 0, "size=1m,mode=0750"))
	t.Cleanup(func() { _ = syscall.Unmount(e.sockDir, syscall.MNT_DETACH) })
	ctx := context.Background()
	k := key("bound", "net1")
	req := vhostServerReq(k, e.sockDir)
	att, err := e.a.Attach(ctx, req)
	require.NoError(t, err)
	c, err := net.Dial("unix", att.Attachment.SocketPath)
	require.NoError(t, err, "the bind mount reaches OVS's socket")
	_ = c.Close()
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	assert.Contains(t, string(mounts), att.Attachment.SocketPath)
	_, err = e.a.Check(ctx, &contracts.CheckRequest{Key: k, Network: req.Network, Interface: req.Interface})
	require.NoError(t, err)
	_, err = e.a.Detach(ctx, &contracts.DetachRequest{Key: k, Network: req.Network})
	require.NoError(t, err)
	assert.NoFileExists(t, att.Attachment.SocketPath)
	mounts, err = os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	assert.NotContains(t, string(mounts), att.Attachment.SocketPath)
}
