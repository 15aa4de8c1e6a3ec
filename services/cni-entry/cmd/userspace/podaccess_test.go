package main_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"usrsp.dev/contracts"
)

// podGID is the group of the pod's non-root app in these tests.
const podGID = 4321

// statOf is the mode and group of path (not followed).
func statOf(t *testing.T, path string) (fs.FileMode, uint32) {
	t.Helper()
	fi, err := os.Lstat(path)
	require.NoError(t, err)
	return fi.Mode(), fi.Sys().(*syscall.Stat_t).Gid
}

// TestPodAccess: podAccess (or the deprecated host.vhost.group) gives the
// pod's directory and data file the group, and the adapter is sent the
// gid and mode for its sockets, the same on ADD and CHECK.
func TestPodAccess(t *testing.T) {
	needRoot(t)
	vhost := map[string]any{"engine": "vpp", "iftype": "vhostuser", "netType": "bridge",
		"vhost": map[string]any{"mode": "server", "group": "4321"}, "bridge": map[string]any{"bridgeId": 4}}
	tests := []struct {
		name     string
		patch    map[string]any
		want     contracts.PodAccess
		dir      fs.FileMode
		dataFile fs.FileMode
	}{
		{"podAccess", map[string]any{"podAccess": map[string]any{"group": "4321"}},
			contracts.PodAccess{GID: podGID, Mode: 0o660}, fs.ModeSetgid | 0o770, 0o640},
		{"podAccess for everybody in the pod", map[string]any{"podAccess": map[string]any{"group": "4321", "mode": "0666"}},
			contracts.PodAccess{GID: podGID, Mode: 0o666}, fs.ModeSetgid | 0o777, 0o644},
		{"host.vhost.group, the deprecated alias", map[string]any{"host": vhost, "container": nil},
			contracts.PodAccess{GID: podGID, Mode: 0o660}, fs.ModeSetgid | 0o770, 0o640},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			list := e.confList("1.1.0", tt.patch)
			id := newContainerID(t)
			rt := e.rt(id, "net1", podUID)
			_, err := e.cni.AddNetworkList(ctx, list, rt)
			require.NoError(t, err)

			atts := e.fake.Attachments()
			require.Len(t, atts, 1)
			require.NotNil(t, atts[0].Interface.PodAccess)
			assert.Equal(t, tt.want, *atts[0].Interface.PodAccess)
			if v := atts[0].Interface.Vhost; v != nil {
				assert.Empty(t, v.Group, "the group goes as a gid in podAccess")
			}
			podDir := filepath.Join(e.sharedDir(), podUID)
			mode, gid := statOf(t, podDir)
			assert.Equal(t, fs.ModeDir|tt.dir, mode)
			assert.Equal(t, uint32(podGID), gid)
			mode, gid = statOf(t, filepath.Join(podDir, contracts.PodDataFileName("net1")))
			assert.Equal(t, tt.dataFile, mode)
			assert.Equal(t, uint32(podGID), gid)

			require.NoError(t, e.cni.CheckNetworkList(ctx, list, rt), "CHECK sends the same podAccess")
			require.NoError(t, e.cni.DelNetworkList(ctx, list, rt))
			assert.NoDirExists(t, podDir)
		})
	}

	t.Run("a group unknown on this host", func(t *testing.T) {
		e := newEnv(t)
		id := newContainerID(t)
		_, err := e.cni.AddNetworkList(context.Background(), e.confList("1.1.0", map[string]any{"podAccess": map[string]any{"group": "no-such-group-usrsp"}}), e.rt(id, "net1", podUID))
		assert.Equal(t, uint(7), cniCode(t, err))
		assert.ErrorContains(t, err, "podAccess.group")
		e.assertUndone(id, "net1")
	})
}

// TestPodPlantedFilesInEmptyDir: an emptyDir is the pod's to write. What
// it plants where cni-entry writes its data file (a symlink or a hard link
// to a file outside, a FIFO) is replaced by ADD, left alone by DEL and by
// a failed ADD's undo, and the file outside is never touched; the emptyDir
// itself is never removed.
func TestPodPlantedFilesInEmptyDir(t *testing.T) {
	needRoot(t)
	plants := map[string]func(secret, file string) error{
		"symlink":   func(secret, file string) error { return os.Symlink(secret, file) },
		"hard link": func(secret, file string) error { return os.Link(secret, file) },
		"fifo":      func(_, file string) error { return unix.Mkfifo(file, 0o600) },
	}
	for name, plant := range plants {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			kubelet := filepath.Join(e.root, "kubelet")
			list := e.confList("1.1.0", map[string]any{"sharedDir": nil, "podVolume": "sockets", "kubeletDir": kubelet,
				"podAccess": map[string]any{"group": "4321"}})
			emptyDir := filepath.Join(kubelet, "pods", podUID, "volumes", "kubernetes.io~empty-dir", "sockets")
			require.NoError(t, os.MkdirAll(emptyDir, 0o777))
			outside := filepath.Join(e.root, "outside")
			require.NoError(t, os.MkdirAll(outside, 0o755))
			secret := filepath.Join(outside, "shadow")
			require.NoError(t, os.WriteFile(secret, []byte("keep"), 0o600))
			untouched := func() {
				t.Helper()
				b, err := os.ReadFile(secret)
				require.NoError(t, err)
				assert.Equal(t, "keep", string(b))
				mode, gid := statOf(t, secret)
				assert.Equal(t, fs.FileMode(0o600), mode)
				assert.Equal(t, uint32(0), gid)
			}
			dataFile := filepath.Join(emptyDir, contracts.PodDataFileName("net1"))

			// A failed ADD: its undo leaves the planted file and what it names.
			require.NoError(t, plant(secret, dataFile))
			id := newContainerID(t)
			e.fake.FailNext(contracts.OpAttach, contracts.Errorf(contracts.CodeVswitch, "no"))
			_, err := e.cni.AddNetworkList(ctx, list, e.rt(id, "net1", podUID))
			assert.Equal(t, uint(100), cniCode(t, err))
			untouched()
			_, err = os.Lstat(dataFile)
			require.NoError(t, err, "the pod's own file stays")

			// DEL with the planted file there: left alone.
			require.NoError(t, e.cni.DelNetworkList(ctx, list, e.rt(id, "net1", podUID)))
			untouched()

			// ADD replaces it by our file; DEL removes ours.
			id = newContainerID(t)
			rt := e.rt(id, "net1", podUID)
			_, err = e.cni.AddNetworkList(ctx, list, rt)
			require.NoError(t, err)
			mode, gid := statOf(t, dataFile)
			assert.Equal(t, fs.FileMode(0o640), mode, "a regular file of ours")
			assert.Equal(t, uint32(podGID), gid)
			require.NoError(t, e.cni.CheckNetworkList(ctx, list, rt))
			untouched()
			require.NoError(t, e.cni.DelNetworkList(ctx, list, rt))
			assert.NoFileExists(t, dataFile)
			assert.DirExists(t, emptyDir)
			untouched()
		})
	}
}
