// Package confinetest plays the attacker of issue 11 for an adapter's
// tests: a node layout (shared, link and state dirs), a directory outside
// every root with a file standing for /etc/shadow and a socket file, what a
// pod plants in its directory to reach them (symlinks, a hard link, bad
// link-dir entries), the crafted paths that use them, and a check that
// nothing outside changed.
package confinetest

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/confine"
)

// Node is a node's layout: Shared/<pod>, Link/<hex> links, the daemon's
// State dir, and Pod, one pod directory in Shared.
type Node struct {
	Shared, Link, State, Pod string
}

// NewNode makes a fresh layout under a short temporary directory (a unix
// socket path has at most 107 bytes), removed when t ends.
func NewNode(t testing.TB) Node {
	t.Helper()
	base, err := os.MkdirTemp("", "confine-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	n := Node{Shared: filepath.Join(base, "s"), Link: filepath.Join(base, "l"), State: filepath.Join(base, "state")}
	n.Pod = filepath.Join(n.Shared, "pod1")
	for _, d := range []string{n.Pod, n.Link, n.State} {
		require.NoError(t, os.MkdirAll(d, 0o750))
	}
	return n
}

// Roots are n's roots, as an adapter configured with n has them.
func (n Node) Roots(t testing.TB) *confine.Roots {
	t.Helper()
	r, err := confine.Layout{SharedDir: n.Shared, LinkDir: n.Link, KubeletPodsDir: filepath.Join(n.State, "no-kubelet"), Own: []string{n.State}}.Roots()
	require.NoError(t, err)
	return r
}

// Outside is the directory outside every root and what was planted to
// reach it.
type Outside struct {
	Dir    string // outside every root
	Secret string // Dir/shadow, a regular file
	Socket string // Dir/m.sock, a unix socket file nobody listens on
	before map[string]fileState
}

type fileState struct {
	mode       fs.FileMode
	uid, gid   uint32
	nlink      uint64
	size       int64
	sum        [32]byte
	mtime, ino int64
}

// Planted link-dir entries (names are 12 hex digits, like cni-entry's).
const (
	LinkToOutside   = "aaaaaaaaaaaa" // -> Dir
	LinkToEvil      = "bbbbbbbbbbbb" // -> Shared/evil, a symlinked "pod directory"
	LinkThroughProc = "cccccccccccc" // -> /proc/self/root + Dir
	LinkRelative    = "dddddddddddd" // -> ../s/evil
	LinkToPod       = "eeeeeeeeeeee" // -> Pod: the sound one
)

// Plant makes the outside directory (under dir, which must be outside
// every root of n) and plants in n: Shared/evil -> Dir; in Pod
// symlink.sock -> Secret, symsock.sock -> Socket, hardlink.sock a hard link
// of Secret (dir must be on Pod's file system); the link-dir entries
// above. It records the state AssertUntouched compares with.
func Plant(t testing.TB, n Node, dir string) *Outside {
	t.Helper()
	o := &Outside{Dir: dir, Secret: filepath.Join(dir, "shadow"), Socket: filepath.Join(dir, "m.sock")}
	require.NoError(t, os.MkdirAll(dir, 0o750))
	require.NoError(t, os.WriteFile(o.Secret, []byte("root:$6$secret"), 0o600))
	l, err := net.Listen("unix", o.Socket)
	require.NoError(t, err)
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	require.NoError(t, l.Close())
	require.NoError(t, os.Symlink(dir, filepath.Join(n.Shared, "evil")))
	require.NoError(t, os.Symlink(o.Secret, filepath.Join(n.Pod, "symlink.sock")))
	require.NoError(t, os.Symlink(o.Socket, filepath.Join(n.Pod, "symsock.sock")))
	require.NoError(t, os.Link(o.Secret, filepath.Join(n.Pod, "hardlink.sock")))
	for name, target := range map[string]string{
		LinkToOutside: dir, LinkToEvil: filepath.Join(n.Shared, "evil"), LinkThroughProc: "/proc/self/root" + dir,
		LinkRelative: "../s/evil", LinkToPod: n.Pod,
	} {
		require.NoError(t, os.Symlink(target, filepath.Join(n.Link, name)))
	}
	o.before = o.snapshot(t)
	return o
}

func (o *Outside) snapshot(t testing.TB) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	require.NoError(t, filepath.WalkDir(o.Dir, func(p string, _ fs.DirEntry, err error) error {
		require.NoError(t, err)
		fi, err := os.Lstat(p)
		require.NoError(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		s := fileState{mode: fi.Mode(), uid: st.Uid, gid: st.Gid, nlink: st.Nlink, size: fi.Size(), mtime: st.Mtim.Nano(), ino: int64(st.Ino)}
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			s.sum = sha256.Sum256(b)
		}
		out[p] = s
		return nil
	}))
	return out
}

// AssertUntouched fails t if anything outside changed: a file removed,
// added, written, chmod'ed, chown'ed, linked or unlinked.
func (o *Outside) AssertUntouched(t testing.TB) {
	t.Helper()
	assert.Equal(t, o.before, o.snapshot(t), "files outside the roots changed")
}

// Attack is a crafted path and the CNI code a request with it must fail
// with: Code for every kind, or, where it is 0, ServerCode for the kinds
// the vswitch creates the socket of (0 too: a kind the vswitch only
// connects with may succeed, its connect fails).
type Attack struct {
	Name             string
	Path             string
	Code, ServerCode contracts.Code
}

// SocketAttacks are the crafted socket paths of issue 11 against n.
func (o *Outside) SocketAttacks(n Node) []Attack {
	bad := contracts.CodeInvalidConfig
	return []Attack{
		{Name: "the crafted request: socketPath names a file outside", Path: o.Secret, Code: bad},
		{Name: "dot-dot out of the pod directory", Path: n.Pod + "/../../../../../.." + o.Secret, Code: bad},
		{Name: "/proc path to the file", Path: "/proc/self/root" + o.Secret, Code: bad},
		{Name: "/proc path through a cwd", Path: "/proc/1/cwd/shadow", Code: bad},
		{Name: "very long path", Path: n.Pod + "/" + strings.Repeat("a/", 3000) + "s", Code: bad},
		{Name: "NUL byte", Path: n.Pod + "/x.sock\x00" + o.Secret, Code: bad},
		{Name: "relative path", Path: "pod1/x.sock", Code: bad},
		{Name: "pod directory replaced by a symlink to outside", Path: filepath.Join(n.Shared, "evil", "m.sock"), Code: bad},
		{Name: "socket path is a symlink to the file", Path: filepath.Join(n.Pod, "symlink.sock"), Code: bad},
		{Name: "socket path is a symlink to a socket outside", Path: filepath.Join(n.Pod, "symsock.sock"), Code: bad},
		{Name: "link dir entry to outside", Path: filepath.Join(n.Link, LinkToOutside, "m.sock"), Code: bad},
		{Name: "link dir entry to a symlinked pod directory", Path: filepath.Join(n.Link, LinkToEvil, "m.sock"), Code: bad},
		{Name: "link dir entry through /proc", Path: filepath.Join(n.Link, LinkThroughProc, "m.sock"), Code: bad},
		{Name: "relative link dir entry", Path: filepath.Join(n.Link, LinkRelative, "m.sock"), Code: bad},
		{Name: "the state dir", Path: filepath.Join(n.State, "x.sock"), Code: bad},
		{Name: "the shared dir itself", Path: filepath.Join(n.Shared, "x.sock"), Code: bad},
		{Name: "a subdirectory of the pod directory", Path: filepath.Join(n.Pod, "sub", "x.sock"), Code: bad},
		// A hard link of the file where the vswitch would make its socket:
		// refused as a conflict (never replaced); a client's connect fails.
		{Name: "socket path is a hard link of the file", Path: filepath.Join(n.Pod, "hardlink.sock"), ServerCode: contracts.CodeConflict},
	}
}

// NetnsAttacks are crafted network namespace paths (a vswitch told to
// make a socket "in" one would enter whatever it names). As root it
// plants a regular file, a directory and a symlink to a real namespace in
// /run/netns, removed when t ends.
func (o *Outside) NetnsAttacks(t testing.TB, n Node) []Attack {
	t.Helper()
	bad := contracts.CodeInvalidConfig
	pid := os.Getpid()
	out := []Attack{
		{Name: "a regular file outside", Path: o.Secret, Code: bad},
		{Name: "a directory", Path: "/proc/1/ns", Code: bad},
		{Name: "/proc/self/ns/mnt", Path: "/proc/self/ns/mnt", Code: bad},
		{Name: "a mount namespace of a pid", Path: fmt.Sprintf("/proc/%d/ns/mnt", pid), Code: bad},
		{Name: "/proc/self is not a pid", Path: "/proc/self/ns/net", Code: bad},
		{Name: "dot-dot", Path: fmt.Sprintf("/proc/%d/ns/../ns/net", pid), Code: bad},
		{Name: "relative", Path: "proc/1/ns/net", Code: bad},
		{Name: "a file in the pod directory", Path: filepath.Join(n.Pod, "hardlink.sock"), Code: bad},
		{Name: "missing under /var/run/netns", Path: "/var/run/netns/usrsp-no-such-netns", Code: bad},
		{Name: "/var/run/netns itself", Path: "/var/run/netns", Code: bad},
		{Name: "a subdirectory of /run/netns", Path: "/run/netns/x/y", Code: bad},
	}
	if os.Geteuid() != 0 || os.MkdirAll("/run/netns", 0o755) != nil {
		return out
	}
	base := fmt.Sprintf("usrsp-conftest-%d-%d-", pid, len(o.before))
	p := func(s string) string { return filepath.Join("/run/netns", base+s) }
	require.NoError(t, os.WriteFile(p("file"), nil, 0o600))
	require.NoError(t, os.Mkdir(p("dir"), 0o700))
	require.NoError(t, os.Symlink(fmt.Sprintf("/proc/%d/ns/net", pid), p("link")))
	t.Cleanup(func() {
		for _, s := range []string{"file", "dir", "link"} {
			_ = os.Remove(p(s))
		}
	})
	return append(out,
		Attack{Name: "a regular file in /run/netns", Path: "/var/run/netns/" + base + "file", Code: bad},
		Attack{Name: "a directory in /run/netns", Path: p("dir"), Code: bad},
		Attack{Name: "a symlink in /run/netns to a network namespace", Path: p("link"), Code: bad},
	)
}

// Netns is a network namespace path every check accepts: this process's.
func Netns() string { return fmt.Sprintf("/proc/%d/ns/net", os.Getpid()) }
