package confine

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestPathIn(t *testing.T) {
	assert.Equal(t, Path{Root: "/a/b", Rel: "pod"}, PathIn("/a/b/pod"))
	assert.Equal(t, Path{Root: "/a/b", Rel: "pod/f.json"}, PathIn("/a/b/pod", "f.json"))
	assert.Equal(t, "/a/b/pod/f.json", PathIn("/a/b/pod", "f.json").String())
}

// plant puts what a pod could into the pod directory under name.
func plant(t *testing.T, f fixture, kind, name string) {
	t.Helper()
	p := filepath.Join(f.root, "pod", name)
	switch kind {
	case "symlink":
		require.NoError(t, os.Symlink(f.secret, p))
	case "hard link":
		require.NoError(t, os.Link(f.secret, p))
	case "fifo":
		require.NoError(t, unix.Mkfifo(p, 0o600))
	case "directory":
		require.NoError(t, os.Mkdir(p, 0o755))
	}
}

func TestWriteFileReplacesWhatAPodPlanted(t *testing.T) {
	for _, kind := range []string{"nothing", "symlink", "hard link", "fifo"} {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t)
			plant(t, f, kind, "data.json")
			p := PathIn(filepath.Join(f.root, "pod"), "data.json")
			require.NoError(t, WriteFile(p, []byte("{}\n"), 4321, 0o640))

			fi, err := os.Lstat(p.String())
			require.NoError(t, err)
			assert.True(t, fi.Mode().IsRegular(), "a new regular file replaced the %s", kind)
			assert.Equal(t, fs.FileMode(0o640), fi.Mode().Perm())
			st := fi.Sys().(*syscall.Stat_t)
			assert.Equal(t, uint32(4321), st.Gid)
			assert.Equal(t, uint64(1), uint64(st.Nlink))
			b, err := ReadFile(p, 100)
			require.NoError(t, err)
			assert.Equal(t, "{}\n", string(b))
			entries, err := os.ReadDir(filepath.Join(f.root, "pod"))
			require.NoError(t, err)
			assert.Len(t, entries, 1, "no temporary file left")
			f.assertUntouched(t)
		})
	}
}

func TestWriteFileRefusesASymlinkedDirectory(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, os.Remove(filepath.Join(f.root, "pod")))
	require.NoError(t, os.Symlink(f.outside, filepath.Join(f.root, "pod")))
	p := PathIn(filepath.Join(f.root, "pod"), "secret")
	require.ErrorIs(t, WriteFile(p, []byte("x"), -1, 0o644), unix.ELOOP)
	require.Error(t, SetDirAccess(PathIn(filepath.Join(f.root, "pod")), 4321, 0o2777))
	_, err := ReadFile(p, 100)
	require.ErrorIs(t, err, unix.ELOOP)
	assert.False(t, IsDir(PathIn(filepath.Join(f.root, "pod"))))
	f.assertUntouched(t)
	fi, err := os.Stat(f.outside)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o755), fi.Mode().Perm(), "the outside directory keeps its mode")
	entries, err := os.ReadDir(f.outside)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "nothing created outside")
}

func TestReadFileRefusesWhatAPodPlanted(t *testing.T) {
	tests := []struct {
		kind string
		err  error
	}{
		{"symlink", unix.ELOOP},
		{"hard link", ErrNotRegular},
		{"fifo", ErrNotRegular}, // opened without blocking, then refused
		{"directory", ErrNotRegular},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			f := newFixture(t)
			plant(t, f, tt.kind, "data.json")
			done := make(chan error, 1)
			go func() {
				_, err := ReadFile(PathIn(filepath.Join(f.root, "pod"), "data.json"), 100)
				done <- err
			}()
			select {
			case err := <-done:
				require.ErrorIs(t, err, tt.err)
			case <-time.After(5 * time.Second):
				t.Fatal("ReadFile blocked")
			}
			f.assertUntouched(t)
		})
	}
}

func TestReadFileLimit(t *testing.T) {
	f := newFixture(t)
	p := PathIn(filepath.Join(f.root, "pod"), "big")
	require.NoError(t, os.WriteFile(p.String(), make([]byte, 101), 0o600))
	_, err := ReadFile(p, 100)
	require.ErrorContains(t, err, "more than 100")
	b, err := ReadFile(p, 101)
	require.NoError(t, err)
	assert.Len(t, b, 101)
}

func TestSetDirAccess(t *testing.T) {
	f := newFixture(t)
	p := PathIn(filepath.Join(f.root, "pod"))
	require.NoError(t, SetDirAccess(p, 4321, fs.ModeSetgid|0o770))
	fi, err := os.Stat(p.String())
	require.NoError(t, err)
	assert.Equal(t, fs.ModeDir|fs.ModeSetgid|0o770, fi.Mode())
	assert.Equal(t, uint32(4321), fi.Sys().(*syscall.Stat_t).Gid)
	assert.True(t, IsDir(p))
	assert.False(t, IsDir(PathIn(filepath.Join(f.root, "missing"))))
}
