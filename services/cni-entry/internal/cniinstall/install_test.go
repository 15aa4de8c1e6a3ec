package cniinstall

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeFile(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, b, mode))
}

// TestInstall: the binary lands as dir/name, 0755, whatever was there;
// stale temporaries go, other files stay; bad arguments name the flag.
func TestInstall(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, src, dir string) // before install
		as      string
		wantErr string
	}{
		{name: "fresh", as: "userspace"},
		{name: "replaces", as: "userspace", setup: func(t *testing.T, _, dir string) {
			writeFile(t, filepath.Join(dir, "userspace"), []byte("old"), 0o644)
		}},
		{name: "stale temporaries", as: "userspace", setup: func(t *testing.T, _, dir string) {
			writeFile(t, filepath.Join(dir, ".userspace.tmp-123"), []byte("half"), 0o600)
		}},
		{name: "missing dest", as: "userspace", wantErr: "--dest", setup: func(t *testing.T, _, dir string) {
			require.NoError(t, os.RemoveAll(dir))
		}},
		{name: "dest is a file", as: "userspace", wantErr: "bin: not a directory", setup: func(t *testing.T, _, dir string) {
			require.NoError(t, os.RemoveAll(dir))
			writeFile(t, dir, []byte("x"), 0o644)
		}},
		{name: "missing src", as: "userspace", wantErr: "--src", setup: func(t *testing.T, src, _ string) {
			require.NoError(t, os.Remove(src))
		}},
		{name: "src is a directory", as: "userspace", wantErr: "not a regular file", setup: func(t *testing.T, src, _ string) {
			require.NoError(t, os.Remove(src))
			require.NoError(t, os.Mkdir(src, 0o755))
		}},
		{name: "name with a slash", as: "../userspace", wantErr: "--name"},
		{name: "hidden name", as: ".userspace", wantErr: "--name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			src, dir := filepath.Join(base, "src"), filepath.Join(base, "bin")
			require.NoError(t, os.Mkdir(dir, 0o755))
			writeFile(t, src, []byte("new binary"), 0o644)
			writeFile(t, filepath.Join(dir, "host-local"), []byte("theirs"), 0o755)
			if tc.setup != nil {
				tc.setup(t, src, dir)
			}
			err := Install(src, dir, tc.as)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			b, err := os.ReadFile(filepath.Join(dir, tc.as))
			require.NoError(t, err)
			assert.Equal(t, "new binary", string(b))
			fi, err := os.Stat(filepath.Join(dir, tc.as))
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm())
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			assert.ElementsMatch(t, []string{"host-local", tc.as}, names, "only the installed file is new; temporaries are gone")
		})
	}
}

// TestInstallAtomic: a reader polling the installed path while it is
// replaced again and again only ever sees one of the binaries, whole.
func TestInstallAtomic(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "bin")
	require.NoError(t, os.Mkdir(dir, 0o755))
	srcs := map[string][]byte{
		filepath.Join(base, "a"): bytes.Repeat([]byte("a"), 256<<10),
		filepath.Join(base, "b"): bytes.Repeat([]byte("b"), 384<<10),
	}
	var paths []string
	for p, b := range srcs {
		writeFile(t, p, b, 0o644)
		paths = append(paths, p)
	}
	require.NoError(t, Install(paths[0], dir, "userspace"))

	stop := make(chan struct{})
	bad := make(chan int, 1)
	reads := make(chan int, 1)
	go func() {
		n := 0
		defer func() { reads <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := os.ReadFile(filepath.Join(dir, "userspace"))
			n++
			if err != nil || !(bytes.Equal(b, srcs[paths[0]]) || bytes.Equal(b, srcs[paths[1]])) {
				bad <- len(b)
				return
			}
		}
	}()
	for i := range 100 {
		require.NoError(t, Install(paths[i%2], dir, "userspace"))
	}
	close(stop)
	n := <-reads
	select {
	case size := <-bad:
		t.Fatalf("a reader saw a partial or missing binary (%d bytes)", size)
	default:
	}
	t.Logf("%d whole reads during 100 installs", n)
}
