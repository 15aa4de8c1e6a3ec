package testkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBufferConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				_, _ = b.Write([]byte("x"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	assert.Len(t, b.String(), 800)
}

func TestGoBuild(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"go.mod":  "module example.test/hello\n\ngo 1.26.0\n",
		"main.go": "package main\n\nfunc main() {}\n",
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644))
	}
	out := filepath.Join(dir, "hello")
	require.NoError(t, GoBuild(context.Background(), dir, ".", out))
	assert.FileExists(t, out)
	assert.ErrorContains(t, GoBuild(context.Background(), dir, "./missing", out), "go build ./missing")

	bin := filepath.Join(dir, "bin")
	require.NoError(t, BuildAll(context.Background(), bin, Binary{Name: "a", Dir: dir, Pkg: "."}, Binary{Name: "b", Dir: dir, Pkg: "."}))
	assert.FileExists(t, filepath.Join(bin, "a"))
	assert.FileExists(t, filepath.Join(bin, "b"))
}

func TestUnshareNetns(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare (util-linux)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := UnshareNetns(ctx)
	if err != nil {
		t.Skipf("no network namespace here: %v", err)
	}
	own, _ := os.Readlink("/proc/self/ns/net")
	ns, err := os.Readlink(n.Path)
	require.NoError(t, err)
	assert.NotEqual(t, own, ns, "the holder is in a namespace of its own")
	require.NoError(t, n.Close())
}

func TestAddDelNetns(t *testing.T) {
	if _, err := exec.LookPath("ip"); err != nil || os.Geteuid() != 0 {
		t.Skip("needs ip (iproute2) and root")
	}
	ctx := context.Background()
	name := fmt.Sprintf("usrsp-testkit-%d", os.Getpid())
	path, err := AddNetns(ctx, name)
	require.NoError(t, err)
	assert.FileExists(t, path)
	require.NoError(t, DelNetns(ctx, name))
	assert.ErrorContains(t, DelNetns(ctx, name), "ip netns delete "+name)
}

func TestExecutableCopy(t *testing.T) {
	bin := ExecutableCopy(t)
	self, err := os.Executable()
	require.NoError(t, err)
	want, err := os.ReadFile(self)
	require.NoError(t, err)
	got, err := os.ReadFile(bin)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	for _, p := range []string{bin, filepath.Dir(bin)} {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm(), p)
	}
}

const echoArg = "testkit-test-echo"

func init() {
	Subcommand(echoArg, func(args []string) error {
		if len(args) == 0 {
			return fmt.Errorf("nothing to echo")
		}
		fmt.Println(strings.Join(args, " "))
		return nil
	})
}

func TestSubcommand(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	out, err := exec.Command(self, echoArg, "a", "b").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "a b\n", string(out))
	out, err = exec.Command(self, echoArg).CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 1, exit.ExitCode())
	assert.Equal(t, "nothing to echo\n", string(out))
}
