package confine

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
)

// fixture is a root with a pod directory in it and, beside it, an outside
// directory with a file that no action may touch.
type fixture struct {
	roots   *Roots
	root    string
	outside string
	secret  string // a file outside the root
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	base := t.TempDir()
	f := fixture{root: filepath.Join(base, "root"), outside: filepath.Join(base, "outside")}
	require.NoError(t, os.MkdirAll(filepath.Join(f.root, "pod"), 0o755))
	require.NoError(t, os.MkdirAll(f.outside, 0o755))
	f.secret = filepath.Join(f.outside, "secret")
	require.NoError(t, os.WriteFile(f.secret, []byte("keep"), 0o600))
	var err error
	f.roots, err = NewRoots(f.root)
	require.NoError(t, err)
	return f
}

func (f fixture) path(t *testing.T, p string) Path {
	t.Helper()
	cp, err := f.roots.Resolve("socketPath", filepath.Join(f.root, p))
	require.NoError(t, err)
	return cp
}

// assertUntouched fails if the outside file changed in any way.
func (f fixture) assertUntouched(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(f.secret)
	require.NoError(t, err, "the file outside the root is gone")
	assert.Equal(t, "keep", string(b))
	fi, err := os.Stat(f.secret)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "mode of the file outside")
	st := fi.Sys().(*syscall.Stat_t)
	assert.Equal(t, uint32(0), st.Uid, "owner of the file outside")
}

// requireInvalid checks that err is an invalid-config error that names
// field and says want.
func requireInvalid(t *testing.T, err error, field, want string) {
	t.Helper()
	require.Error(t, err)
	assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err))
	assert.Contains(t, err.Error(), field)
	assert.Contains(t, err.Error(), want)
}

func TestResolveByWords(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, path, err string
	}{
		{"inside", f.root + "/pod/sock", ""},
		{"inside after cleaning", f.root + "/pod/../pod//sock", ""},
		{"empty", "", "is empty"},
		{"relative", "pod/sock", "is not absolute"},
		{"NUL byte", f.root + "/pod/so\x00ck", "NUL"},
		{"dot-dot out", f.root + "/pod/../../outside/secret", "outside the directories"},
		{"the root itself", f.root, "outside the directories"},
		{"a sibling with the root as prefix", f.root + "-evil/sock", "outside the directories"},
		{"proc", "/proc/self/root" + f.secret, "outside the directories"},
		{"very long", f.root + "/" + strings.Repeat("a/", MaxPath), "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := f.roots.Resolve("interface.socketPath", tt.path)
			if tt.err == "" {
				require.NoError(t, err)
				assert.Equal(t, f.root, p.Root)
				assert.Equal(t, "pod/sock", p.Rel)
				return
			}
			requireInvalid(t, err, "interface.socketPath", tt.err)
		})
	}
}

// TestActionsNeverLeaveTheRoot plants what a pod could plant in its own
// directory and runs every action through it.
func TestActionsNeverLeaveTheRoot(t *testing.T) {
	type plant func(t *testing.T, f fixture)
	symlinkDir := func(t *testing.T, f fixture) { // pod/dir -> outside
		require.NoError(t, os.Symlink(f.outside, filepath.Join(f.root, "pod", "dir")))
	}
	symlinkFile := func(t *testing.T, f fixture) { // pod/dir/secret -> outside/secret
		require.NoError(t, os.Mkdir(filepath.Join(f.root, "pod", "dir"), 0o755))
		require.NoError(t, os.Symlink(f.secret, filepath.Join(f.root, "pod", "dir", "secret")))
	}
	hardLink := func(t *testing.T, f fixture) { // pod/dir/secret is outside/secret's inode
		require.NoError(t, os.Mkdir(filepath.Join(f.root, "pod", "dir"), 0o755))
		require.NoError(t, os.Link(f.secret, filepath.Join(f.root, "pod", "dir", "secret")))
	}
	procLink := func(t *testing.T, f fixture) { // pod/dir -> /proc/self/root/<outside>
		require.NoError(t, os.Symlink("/proc/self/root"+f.outside, filepath.Join(f.root, "pod", "dir")))
	}
	actions := map[string]func(p, inside Path) error{
		"Remove":       func(p, _ Path) error { return Remove(p) },
		"RemoveSocket": func(p, _ Path) error { return RemoveSocket(p) },
		"Chown":        func(p, _ Path) error { return Chown(p, 1234, 1234, 0o666) },
		"Link onto":    func(p, inside Path) error { return Link(inside, p) },
		"Link from":    func(p, inside Path) error { return Link(p, inside) },
		"MkdirAll":     func(p, _ Path) error { return MkdirAll(Path{Root: p.Root, Rel: p.Rel + "/sub"}, 0o755) },
		"CreateFile":   func(p, _ Path) error { return CreateFile(p, 0o600) },
		"BindMount onto": func(p, inside Path) error {
			err := BindMount(inside, p)
			if err == nil {
				_, _ = Unmount(p)
			}
			return err
		},
		"BindMount from": func(p, inside Path) error {
			err := BindMount(p, inside)
			if err == nil {
				_, _ = Unmount(inside)
			}
			return err
		},
		"Unmount":     func(p, _ Path) error { _, err := Unmount(p); return err },
		"SocketInUse": func(p, _ Path) error { _, err := SocketInUse(p); return err },
		"ProcPath": func(p, _ Path) error {
			_, file, err := ProcPath(p)
			if file != nil {
				_ = file.Close()
			}
			return err
		},
	}
	plants := map[string]plant{"symlinked dir": symlinkDir, "symlinked file": symlinkFile, "hard link": hardLink, "proc link": procLink}
	for pname, pl := range plants {
		for aname, act := range actions {
			t.Run(pname+"/"+aname, func(t *testing.T) {
				f := newFixture(t)
				require.NoError(t, os.WriteFile(filepath.Join(f.root, "pod", "new"), nil, 0o600))
				pl(t, f)
				_ = act(f.path(t, "pod/dir/secret"), f.path(t, "pod/new"))
				f.assertUntouched(t)
				_, err := os.Stat(filepath.Join(f.outside, "sub"))
				assert.True(t, os.IsNotExist(err), "MkdirAll created a directory outside")
			})
		}
	}
}

func TestRemoveSocketOnlyRemovesSockets(t *testing.T) {
	f := newFixture(t)
	sock := filepath.Join(f.root, "pod", "memif.sock")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	require.NoError(t, l.Close())
	file := filepath.Join(f.root, "pod", "data.json")
	require.NoError(t, os.WriteFile(file, []byte("{}"), 0o600))

	inUse, err := SocketInUse(f.path(t, "pod/memif.sock"))
	require.NoError(t, err)
	assert.False(t, inUse, "nobody listens")
	_, err = SocketInUse(f.path(t, "pod/data.json"))
	require.ErrorIs(t, err, ErrNotSocket)
	live := filepath.Join(f.root, "pod", "live.sock")
	ll, err := net.Listen("unixpacket", live)
	require.NoError(t, err)
	defer ll.Close()
	inUse, err = SocketInUse(f.path(t, "pod/live.sock"))
	require.NoError(t, err)
	assert.True(t, inUse, "a seqpacket listener is in use")

	require.NoError(t, RemoveSocket(f.path(t, "pod/memif.sock")))
	assert.NoFileExists(t, sock)
	require.NoError(t, RemoveSocket(f.path(t, "pod/memif.sock")), "a missing socket is not an error")
	require.Error(t, RemoveSocket(f.path(t, "pod/data.json")))
	assert.FileExists(t, file)
}

func TestChownAndMkdirAllInside(t *testing.T) {
	f := newFixture(t)
	dir := f.path(t, "pod/a/b")
	require.NoError(t, MkdirAll(dir, 0o750))
	require.NoError(t, MkdirAll(dir, 0o750), "MkdirAll is idempotent")
	require.NoError(t, Chown(dir, -1, 4321, 0o2770))
	fi, err := os.Stat(dir.String())
	require.NoError(t, err)
	assert.Equal(t, uint32(4321), fi.Sys().(*syscall.Stat_t).Gid)
	assert.Equal(t, os.FileMode(0o770), fi.Mode().Perm())

	require.NoError(t, os.WriteFile(filepath.Join(dir.String(), "f"), nil, 0o600))
	require.NoError(t, Link(f.path(t, "pod/a/b/f"), f.path(t, "pod/g")))
	assert.FileExists(t, filepath.Join(f.root, "pod", "g"))
	require.NoError(t, Remove(f.path(t, "pod/g")))
	require.NoError(t, Remove(f.path(t, "pod/g")), "removal is idempotent")
	require.NoError(t, RemoveDir(f.path(t, "pod/missing")))
}

func FuzzResolve(f *testing.F) {
	for _, s := range []string{"/r/pod/sock", "/r/../etc/passwd", "/r/./a//b/", "r/x", "/r/a\x00b", "/proc/1/root/r", "/r"} {
		f.Add(s)
	}
	roots := &Roots{dirs: []root{{name: "/r", real: "/r"}}}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := roots.Resolve("f", s)
		if err != nil {
			return
		}
		if p.Root != "/r" || p.Rel == "" || p.Rel == "." || p.Rel == ".." || strings.HasPrefix(p.Rel, "../") || filepath.IsAbs(p.Rel) ||
			strings.ContainsRune(p.Rel, 0) || filepath.Clean(p.Rel) != p.Rel {
			t.Fatalf("Resolve(%q) = %+v escapes /r", s, p)
		}
		if !strings.HasPrefix(p.String(), "/r/") {
			t.Fatalf("Resolve(%q).String() = %q", s, p.String())
		}
	})
}

func TestPodSocket(t *testing.T) {
	base := t.TempDir()
	l := Layout{SharedDir: filepath.Join(base, "shared"), LinkDir: filepath.Join(base, "run", "l"),
		KubeletPodsDir: filepath.Join(base, "pods"), Own: []string{t.TempDir()}}
	empty := filepath.Join(l.KubeletPodsDir, "uid1", "volumes", "kubernetes.io~empty-dir", "vol")
	require.NoError(t, os.MkdirAll(empty, 0o755))
	roots, err := l.Roots()
	require.NoError(t, err)
	require.DirExists(t, l.SharedDir, "Roots creates the shared dir")
	require.DirExists(t, l.LinkDir, "Roots creates the link dir")
	pod := filepath.Join(l.SharedDir, "pod1")
	require.NoError(t, os.Mkdir(pod, 0o750))
	outside := t.TempDir()
	link := func(name, target string) string {
		require.NoError(t, os.Symlink(target, filepath.Join(l.LinkDir, name)))
		return filepath.Join(l.LinkDir, name)
	}
	toPod, toEmpty := link("aaaaaaaaaaaa", pod), link("bbbbbbbbbbbb", empty)
	toOutside, toRel := link("cccccccccccc", outside), link("dddddddddddd", "../../shared/pod1")
	toDeep, toProc := link("eeeeeeeeeeee", filepath.Join(pod, "sub")), link("ffffffffffff", "/proc/self/root"+pod)
	toLink := link("gggggggggggg", toPod)
	require.NoError(t, os.Mkdir(filepath.Join(l.LinkDir, "plaindir"), 0o755))
	tests := []struct {
		name, path string
		root, rel  string // "" when refused
	}{
		{"shared pod dir", pod + "/memif.sock", l.SharedDir, "pod1/memif.sock"},
		{"emptyDir", empty + "/vhu.sock", l.KubeletPodsDir, "uid1/volumes/kubernetes.io~empty-dir/vol/vhu.sock"},
		{"link to pod dir", toPod + "/memif.sock", l.SharedDir, "pod1/memif.sock"},
		{"link to emptyDir", toEmpty + "/s", l.KubeletPodsDir, "uid1/volumes/kubernetes.io~empty-dir/vol/s"},
		{"the pod dir itself", pod, "", ""},
		{"deeper in the pod dir", pod + "/sub/memif.sock", "", ""},
		{"shared dir itself", l.SharedDir + "/memif.sock", "", ""},
		{"kubelet pod but not an emptyDir", filepath.Join(l.KubeletPodsDir, "uid1", "volumes", "x", "vol", "s"), "", ""},
		{"link to outside", toOutside + "/secret", "", ""},
		{"relative link", toRel + "/s", "", ""},
		{"link deeper than a pod dir", toDeep + "/s", "", ""},
		{"link through /proc", toProc + "/s", "", ""},
		{"link to a link", toLink + "/s", "", ""},
		{"missing link", l.LinkDir + "/000000000000/s", "", ""},
		{"a directory, not a link", l.LinkDir + "/plaindir/s", "", ""},
		{"deeper below a link", toPod + "/sub/s", "", ""},
		{"own dir", l.Own[0] + "/x/s", "", ""},
		{"dot-dot out of the pod dir", pod + "/../../../etc/shadow", "", ""},
		{"outside", "/etc/shadow", "", ""},
		{"NUL", pod + "/a\x00b", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := roots.PodSocket("interface.socketPath", tt.path)
			if tt.root == "" {
				require.Error(t, err, "got %+v", p)
				assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err))
				assert.Contains(t, err.Error(), "interface.socketPath")
				return
			}
			require.NoError(t, err)
			real, err := filepath.EvalSymlinks(tt.root)
			require.NoError(t, err)
			assert.Equal(t, Path{Root: real, Rel: tt.rel}, p)
		})
	}
}

func TestResolveByConfiguredAndRealName(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "run")
	require.NoError(t, os.Mkdir(real, 0o755))
	require.NoError(t, os.Symlink(real, filepath.Join(base, "varrun"))) // like /var/run -> /run
	roots, err := NewRoots(filepath.Join(base, "varrun"))
	require.NoError(t, err)
	for _, p := range []string{filepath.Join(base, "varrun", "s"), filepath.Join(real, "s")} {
		got, err := roots.Resolve("f", p)
		require.NoError(t, err)
		assert.Equal(t, Path{Root: real, Rel: "s"}, got)
	}
}

func TestBindMountAndUnmount(t *testing.T) {
	f := newFixture(t)
	src := filepath.Join(f.root, "pod", "src")
	require.NoError(t, os.WriteFile(src, []byte("socket stand-in"), 0o600))
	dst := f.path(t, "pod/dst")
	require.NoError(t, CreateFile(dst, 0o600))
	require.Error(t, CreateFile(dst, 0o600), "CreateFile never reuses a file")
	require.NoError(t, BindMount(f.path(t, "pod/src"), dst))
	b, err := os.ReadFile(dst.String())
	require.NoError(t, err)
	assert.Equal(t, "socket stand-in", string(b))
	was, err := Unmount(dst)
	require.NoError(t, err)
	assert.True(t, was)
	b, err = os.ReadFile(dst.String())
	require.NoError(t, err)
	assert.Empty(t, b, "the placeholder is back")
	was, err = Unmount(dst)
	require.NoError(t, err)
	assert.False(t, was, "a plain file is no mount")
	was, err = Unmount(f.path(t, "pod/missing"))
	require.NoError(t, err)
	assert.False(t, was)
}

func TestNetns(t *testing.T) {
	self := "/proc/" + strconv.Itoa(os.Getpid()) + "/ns/net"
	tests := []struct {
		name, path, err string
	}{
		{"a process's namespace", self, ""},
		{"self is not a pid", "/proc/self/ns/net", "is not a network namespace under"},
		{"another namespace kind", "/proc/" + strconv.Itoa(os.Getpid()) + "/ns/mnt", "is not a network namespace under"},
		{"a file", "/etc/hostname", "is not a network namespace under"},
		{"dot-dot out of /var/run/netns", "/var/run/netns/../../etc/shadow", "is not a clean path"},
		{"missing named namespace", "/var/run/netns/usrsp-no-such-ns", "cannot be opened"},
		{"missing process", "/proc/999999999/ns/net", "cannot be opened"},
		{"NUL", "/var/run/netns/a\x00b", "NUL"},
		{"relative", "netns/a", "not absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Netns("interface.memif.netns", tt.path)
			if tt.err == "" {
				require.NoError(t, err)
				return
			}
			requireInvalid(t, err, "interface.memif.netns", tt.err)
		})
	}
}

// TestNetnsNamed: a named namespace passes; a regular file or a symlink
// planted in /run/netns does not.
func TestNetnsNamed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to bind a namespace under /run/netns")
	}
	require.NoError(t, os.MkdirAll("/run/netns", 0o755))
	name := "usrsp-confine-" + strconv.Itoa(os.Getpid())
	ns := filepath.Join("/run/netns", name)
	require.NoError(t, os.WriteFile(ns, nil, 0o444))
	t.Cleanup(func() { _ = syscall.Unmount(ns, syscall.MNT_DETACH); _ = os.Remove(ns) })
	err := Netns("netns", "/var/run/netns/"+name)
	assert.ErrorContains(t, err, "(nsfs)", "a plain file is no namespace")
	require.NoError(t, syscall.Mount("/proc/self/ns/net", ns, "", syscall.MS_BIND, ""))
	assert.NoError(t, Netns("netns", "/var/run/netns/"+name))
	assert.NoError(t, Netns("netns", "/run/netns/"+name))
	link := ns + "-link"
	require.NoError(t, os.Symlink(ns, link))
	t.Cleanup(func() { _ = os.Remove(link) })
	assert.ErrorContains(t, Netns("netns", link), "(nsfs)", "a symlink is not followed")
}
