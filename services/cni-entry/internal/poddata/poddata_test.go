package poddata_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/services/cni-entry/internal/poddata"
)

const uid = "5f2c1a3e-1111-2222-3333-444455556666"

var key = contracts.AttachmentKey{ContainerID: "0123456789abcdef0123", IfName: "net1"}

func TestResolve(t *testing.T) {
	link := "/run/usrsp/l/" + poddata.LinkName(key)
	tests := []struct {
		name   string
		layout poddata.Layout
		uid    string
		file   string
		want   poddata.Paths
		code   contracts.Code
	}{
		{"sharedDir with pod uid", poddata.Layout{SharedDir: "/var/lib/cni/usrspcni", LinkDir: "/run/usrsp/l"}, uid, "memif-net1.sock",
			poddata.Paths{PodDir: "/var/lib/cni/usrspcni/" + uid, OwnPodDir: true}, 0},
		{"sharedDir without pod uid: old layout", poddata.Layout{SharedDir: "/var/lib/cni/usrspcni", LinkDir: "/run/usrsp/l"}, "", "memif-net1.sock",
			poddata.Paths{PodDir: "/var/lib/cni/usrspcni/0123456789ab", OwnPodDir: true}, 0},
		{"long sharedDir path goes through the link", poddata.Layout{SharedDir: "/" + strings.Repeat("d", 60), LinkDir: "/run/usrsp/l"}, uid, "memif-net1.sock",
			poddata.Paths{PodDir: "/" + strings.Repeat("d", 60) + "/" + uid, OwnPodDir: true, Link: link}, 0},
		{"emptyDir always links", poddata.Layout{PodVolume: "sockets", KubeletDir: "/var/lib/kubelet", LinkDir: "/run/usrsp/l"}, uid, "s.sock",
			poddata.Paths{PodDir: "/var/lib/kubelet/pods/" + uid + "/volumes/kubernetes.io~empty-dir/sockets", Link: link}, 0},
		{"abstract socket: emptyDir holds only the data, no link", poddata.Layout{PodVolume: "sockets", KubeletDir: "/var/lib/kubelet", LinkDir: "/run/usrsp/l"}, uid, "",
			poddata.Paths{PodDir: "/var/lib/kubelet/pods/" + uid + "/volumes/kubernetes.io~empty-dir/sockets"}, 0},
		{"abstract socket: long sharedDir needs no link", poddata.Layout{SharedDir: "/" + strings.Repeat("d", 120), LinkDir: "/run/usrsp/l"}, uid, "",
			poddata.Paths{PodDir: "/" + strings.Repeat("d", 120) + "/" + uid, OwnPodDir: true}, 0},
		{"emptyDir needs the pod uid", poddata.Layout{PodVolume: "sockets", KubeletDir: "/var/lib/kubelet", LinkDir: "/run/usrsp/l"}, "", "s.sock",
			poddata.Paths{}, contracts.CodeInvalidEnv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := poddata.Resolve(tt.layout, key, tt.uid, tt.file)
			if tt.code != 0 {
				assert.Equal(t, tt.code, contracts.CodeOf(err))
				assert.Contains(t, err.Error(), "K8S_POD_UID")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			if tt.file != "" {
				assert.LessOrEqual(t, len(got.SocketPath(tt.file)), contracts.MaxSocketPathLen)
			}
		})
	}
	t.Run("bad container id", func(t *testing.T) {
		_, err := poddata.Resolve(poddata.Layout{SharedDir: "/x"}, contracts.AttachmentKey{ContainerID: "../x", IfName: "net1"}, "", "s")
		assert.Equal(t, contracts.CodeInvalidEnv, contracts.CodeOf(err))
	})
}

func TestLinkName(t *testing.T) {
	a := poddata.LinkName(key)
	assert.Len(t, a, 12)
	assert.Equal(t, a, poddata.LinkName(key), "stable")
	assert.NotEqual(t, a, poddata.LinkName(contracts.AttachmentKey{ContainerID: key.ContainerID, IfName: "net2"}))
}

func TestPrepareWriteRemove(t *testing.T) {
	t.Run("sharedDir with link", func(t *testing.T) {
		root := t.TempDir()
		l := poddata.Layout{SharedDir: filepath.Join(root, "shared", strings.Repeat("s", 80)), LinkDir: filepath.Join(root, "l")}
		p, err := poddata.Resolve(l, key, uid, "memif-net1.sock")
		require.NoError(t, err)
		require.NotEmpty(t, p.Link)
		require.NoError(t, poddata.Prepare(p, nil))
		require.NoError(t, poddata.Prepare(p, nil), "idempotent")

		target, err := os.Readlink(p.Link)
		require.NoError(t, err)
		assert.Equal(t, p.PodDir, target)
		fi, err := os.Stat(p.PodDir)
		require.NoError(t, err)
		assert.Equal(t, poddata.DirPerm, fi.Mode().Perm())

		data := &contracts.PodData{Version: contracts.PodDataVersion, ContainerID: key.ContainerID, IfName: key.IfName, Network: "n",
			Interface: contracts.ContainerInterface{IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeNone, SocketPath: "/var/run/usrsp/memif-net1.sock",
				Memif: &contracts.MemifSpec{Role: "slave", Mode: "ethernet"}}}
		require.NoError(t, poddata.WritePodData(p, data, nil))
		fi, err = os.Stat(p.DataFile(key.IfName))
		require.NoError(t, err)
		assert.Equal(t, poddata.FilePerm, fi.Mode().Perm())
		entries, err := os.ReadDir(p.PodDir)
		require.NoError(t, err)
		assert.Len(t, entries, 1, "no temporary file left behind")

		got, err := poddata.ReadPodData(p, key.IfName)
		require.NoError(t, err)
		assert.Equal(t, data, got)

		// Found again through the link, even without the pod UID.
		located, err := poddata.Locate(l, key, "", "")
		require.NoError(t, err)
		assert.Equal(t, p, located)

		require.NoError(t, poddata.Remove(p, key))
		require.NoError(t, poddata.Remove(p, key), "idempotent")
		assert.NoFileExists(t, p.DataFile(key.IfName))
		assert.NoDirExists(t, p.PodDir)
		_, err = os.Lstat(p.Link)
		assert.True(t, os.IsNotExist(err))
	})

	t.Run("another container's data and other interfaces stay", func(t *testing.T) {
		root := t.TempDir()
		p, err := poddata.Resolve(poddata.Layout{SharedDir: root, LinkDir: filepath.Join(root, "l")}, key, uid, "s.sock")
		require.NoError(t, err)
		require.NoError(t, poddata.Prepare(p, nil))
		other := &contracts.PodData{Version: contracts.PodDataVersion, ContainerID: "newsandbox", IfName: key.IfName}
		require.NoError(t, poddata.WritePodData(p, other, nil))
		require.NoError(t, os.WriteFile(filepath.Join(p.PodDir, "usrsp-net2.json"), []byte("{}"), 0o640))

		require.NoError(t, poddata.Remove(p, key))
		assert.FileExists(t, p.DataFile(key.IfName), "a restarted sandbox's file is not ours")
		assert.DirExists(t, p.PodDir, "not empty")
	})

	t.Run("emptyDir must exist and is never removed", func(t *testing.T) {
		root := t.TempDir()
		l := poddata.Layout{PodVolume: "sockets", KubeletDir: filepath.Join(root, "kubelet"), LinkDir: filepath.Join(root, "l")}
		p, err := poddata.Resolve(l, key, uid, "s.sock")
		require.NoError(t, err)
		err = poddata.Prepare(p, nil)
		assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err))
		assert.Contains(t, err.Error(), "podVolume")

		require.NoError(t, os.MkdirAll(p.PodDir, 0o777))
		require.NoError(t, poddata.Prepare(p, nil))
		require.NoError(t, poddata.Remove(p, key))
		assert.DirExists(t, p.PodDir)
	})

	t.Run("remove of nothing", func(t *testing.T) {
		root := t.TempDir()
		p, err := poddata.Resolve(poddata.Layout{SharedDir: root, LinkDir: filepath.Join(root, "l")}, key, "", "s.sock")
		require.NoError(t, err)
		require.NoError(t, poddata.Remove(p, key))
		require.NoError(t, poddata.RemoveFile(filepath.Join(root, "missing.json")))
		require.NoError(t, poddata.RemoveFile(""))
	})
}
