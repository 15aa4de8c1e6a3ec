package poddata_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"usrsp.dev/contracts"
	"usrsp.dev/services/cni-entry/internal/poddata"
)

// outside is a directory beside the pod directories with a file that
// nothing cni-entry does may touch.
type outside struct{ dir, secret string }

func newOutside(t *testing.T, root string) outside {
	t.Helper()
	o := outside{dir: filepath.Join(root, "outside")}
	o.secret = filepath.Join(o.dir, "usrsp-net1.json")
	require.NoError(t, os.MkdirAll(o.dir, 0o755))
	require.NoError(t, os.WriteFile(o.secret, []byte("keep"), 0o600))
	return o
}

// layoutIn is a layout of kind ("sharedDir" or "emptyDir") under root.
func layoutIn(root, kind string) poddata.Layout {
	if kind == "emptyDir" {
		return poddata.Layout{PodVolume: "v", KubeletDir: filepath.Join(root, "kubelet"), LinkDir: filepath.Join(root, "l")}
	}
	return poddata.Layout{SharedDir: filepath.Join(root, "shared"), LinkDir: filepath.Join(root, "l")}
}

// assertUntouched fails if the outside file or directory changed.
func (o outside) assertUntouched(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(o.secret)
	require.NoError(t, err, "the outside file is gone")
	assert.Equal(t, "keep", string(b))
	fi, err := os.Stat(o.secret)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm(), "mode of the outside file")
	assert.Equal(t, uint32(0), fi.Sys().(*syscall.Stat_t).Gid, "group of the outside file")
	fi, err = os.Stat(o.dir)
	require.NoError(t, err)
	assert.Equal(t, fs.ModeDir|0o755, fi.Mode(), "mode of the outside directory")
	assert.Equal(t, uint32(0), fi.Sys().(*syscall.Stat_t).Gid, "group of the outside directory")
	entries, err := os.ReadDir(o.dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "nothing created outside")
}

// TestPodPlantedFiles runs what ADD, CHECK, DEL and a failed ADD's undo do
// in a pod directory after the pod planted a symlink, a hard link or a FIFO
// where the data file goes: the file outside is never read, written,
// re-moded or removed, and nothing blocks.
func TestPodPlantedFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: chown to another group")
	}
	access := &contracts.PodAccess{GID: 4321, Mode: 0o660}
	plants := map[string]func(o outside, file string) error{
		"symlink to an outside file":   func(o outside, file string) error { return os.Symlink(o.secret, file) },
		"hard link of an outside file": func(o outside, file string) error { return os.Link(o.secret, file) },
		"fifo":                         func(_ outside, file string) error { return unix.Mkfifo(file, 0o600) },
	}
	for _, layout := range []string{"sharedDir", "emptyDir"} {
		for name, plant := range plants {
			t.Run(layout+"/"+name, func(t *testing.T) {
				root := t.TempDir()
				o := newOutside(t, root)
				p, err := poddata.Resolve(layoutIn(root, layout), key, uid, "s.sock")
				require.NoError(t, err)
				require.NoError(t, os.MkdirAll(p.PodDir, 0o777))
				file := p.DataFile(key.IfName)
				require.NoError(t, plant(o, file))

				// CHECK reads it: refused, not followed, not blocking.
				_, err = poddata.ReadPodData(p, key.IfName)
				require.Error(t, err)
				// DEL (and a failed ADD's undo) leaves what is not ours.
				require.NoError(t, poddata.Remove(p, key))
				o.assertUntouched(t)

				// ADD replaces it with our file, never writing through it.
				require.NoError(t, poddata.Prepare(p, access))
				data := validData()
				require.NoError(t, poddata.WritePodData(p, data, access))
				fi, err := os.Lstat(file)
				require.NoError(t, err)
				assert.True(t, fi.Mode().IsRegular())
				assert.Equal(t, access.FileMode(), fi.Mode().Perm())
				assert.Equal(t, uint32(access.GID), fi.Sys().(*syscall.Stat_t).Gid)
				got, err := poddata.ReadPodData(p, key.IfName)
				require.NoError(t, err)
				assert.Equal(t, key.ContainerID, got.ContainerID)
				require.NoError(t, poddata.Remove(p, key))
				assert.NoFileExists(t, file)
				o.assertUntouched(t)
			})
		}
	}
}

// TestPodDirectoryReplacedBySymlink: a pod directory that is a symlink
// (to a directory outside) is neither created through, re-moded, written
// nor cleaned.
func TestPodDirectoryReplacedBySymlink(t *testing.T) {
	access := &contracts.PodAccess{GID: 4321, Mode: 0o660}
	for _, layout := range []string{"sharedDir", "emptyDir"} {
		t.Run(layout, func(t *testing.T) {
			root := t.TempDir()
			o := newOutside(t, root)
			p, err := poddata.Resolve(layoutIn(root, layout), key, uid, "s.sock")
			require.NoError(t, err)
			require.NoError(t, os.MkdirAll(filepath.Dir(p.PodDir), 0o755))
			require.NoError(t, os.Symlink(o.dir, p.PodDir))

			require.Error(t, poddata.Prepare(p, access))
			data := validData()
			require.Error(t, poddata.WritePodData(p, data, access))
			_, err = poddata.ReadPodData(p, key.IfName)
			require.Error(t, err)
			require.NoError(t, poddata.Remove(p, key), "DEL succeeds: nothing there is ours")
			_, err = os.Lstat(p.PodDir)
			require.NoError(t, err, "the pod's symlink stays")
			o.assertUntouched(t)
		})
	}
}

// TestLocateFollowsOnlyPodDirectories: DEL finds the pod directory through
// <linkDir>/<hex>, but only a target that is a pod directory of the layout.
func TestLocateFollowsOnlyPodDirectories(t *testing.T) {
	root := t.TempDir()
	o := newOutside(t, root)
	shared := layoutIn(root, "sharedDir")
	empty := layoutIn(root, "emptyDir")
	emptyDir := filepath.Join(empty.KubeletDir, "pods", uid, "volumes", "kubernetes.io~empty-dir", "v")
	tests := []struct {
		name, target string
		layout       poddata.Layout
		follows      bool
	}{
		{"a pod directory", filepath.Join(shared.SharedDir, "other-pod"), shared, true},
		{"an emptyDir", emptyDir, empty, true},
		{"outside", o.dir, shared, false},
		{"dot-dot", shared.SharedDir + "/../outside", shared, false},
		{"the shared dir itself", shared.SharedDir, shared, false},
		{"deeper than a pod directory", filepath.Join(shared.SharedDir, "pod", "x"), shared, false},
		{"another volume", filepath.Join(filepath.Dir(emptyDir), "w"), empty, false},
		{"relative", "other-pod", shared, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.layout
			require.NoError(t, os.MkdirAll(l.LinkDir, 0o750))
			link := filepath.Join(l.LinkDir, poddata.LinkName(key))
			_ = os.Remove(link)
			require.NoError(t, os.Symlink(tt.target, link))
			p, err := poddata.Locate(l, key, uid, "s.sock")
			require.NoError(t, err)
			if tt.follows {
				assert.Equal(t, tt.target, p.PodDir)
			} else {
				want, err := poddata.Resolve(l, key, uid, "s.sock")
				require.NoError(t, err)
				assert.Equal(t, want.PodDir, p.PodDir, "the link is not followed")
			}
			require.NoError(t, poddata.Remove(p, key))
			o.assertUntouched(t)
		})
	}
}

func TestPrepareWithPodAccess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: chown to another group")
	}
	access := &contracts.PodAccess{GID: 4321, Mode: 0o660}
	root := t.TempDir()
	p, err := poddata.Resolve(poddata.Layout{SharedDir: filepath.Join(root, "shared"), LinkDir: filepath.Join(root, "l")}, key, uid, "s.sock")
	require.NoError(t, err)
	require.NoError(t, poddata.Prepare(p, access))
	fi, err := os.Stat(p.PodDir)
	require.NoError(t, err)
	assert.Equal(t, fs.ModeDir|fs.ModeSetgid|0o770, fi.Mode())
	assert.Equal(t, uint32(4321), fi.Sys().(*syscall.Stat_t).Gid)
	require.NoError(t, poddata.WritePodData(p, validData(), access))
	fi, err = os.Stat(p.DataFile(key.IfName))
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o640), fi.Mode())
	assert.Equal(t, uint32(4321), fi.Sys().(*syscall.Stat_t).Gid)
}

func validData() *contracts.PodData {
	return &contracts.PodData{Version: contracts.PodDataVersion, ContainerID: key.ContainerID, IfName: key.IfName, Network: "n",
		Interface: contracts.ContainerInterface{IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeNone, SocketPath: "/var/run/usrsp/s.sock",
			Memif: &contracts.MemifSpec{Role: "slave", Mode: "ethernet"}}}
}
