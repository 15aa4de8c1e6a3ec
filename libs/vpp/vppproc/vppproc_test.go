package vppproc_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/libs/vpp/vppproc"
	"usrsp.dev/libs/vpp/vpptest"
)

func TestMissing(t *testing.T) {
	noMemif := t.TempDir()
	cases := []struct {
		name, bin, plugins, want string
	}{
		{"no binary named", "", "", "set USRSP_VPP_BIN to a VPP 25.10 binary"},
		{"binary not there", "/nonexistent/vpp", "", "USRSP_VPP_BIN=/nonexistent/vpp: no such file"},
		{"plugins without memif", "/bin/true", noMemif, "USRSP_VPP_PLUGIN_PATH=" + noMemif + ": no memif_plugin.so there"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(vppproc.EnvBin, tc.bin)
			t.Setenv(vppproc.EnvPluginPath, tc.plugins)
			assert.Contains(t, vppproc.Missing(), tc.want)
			_, err := vppproc.New(vppproc.Config{Name: "x", Dir: t.TempDir()})
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

func TestPingReplies(t *testing.T) {
	cases := []struct {
		out     string
		replies int
		ok      bool
	}{
		{"116 bytes from 10.56.0.2: icmp_seq=1 ttl=64 time=.2 ms\n\nStatistics: 5 sent, 4 received, 20% packet loss\n", 4, true},
		{"Statistics: 5 sent, 0 received, 100% packet loss", 0, true},
		{"unknown input `ping 10.0.0.1'", 0, false},
	}
	for _, tc := range cases {
		replies, ok := vppproc.PingReplies(tc.out)
		assert.Equal(t, tc.replies, replies, tc.out)
		assert.Equal(t, tc.ok, ok, tc.out)
	}
}

// fakeBin points USRSP_VPP_BIN at bin and USRSP_VPP_PLUGIN_PATH at a
// plugin directory with (empty) memif and dpdk plugins.
func fakeBin(t *testing.T, bin string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("vppproc needs root")
	}
	plugins := t.TempDir()
	for _, p := range []string{"memif_plugin.so", "dpdk_plugin.so"} {
		require.NoError(t, os.WriteFile(filepath.Join(plugins, p), nil, 0o644))
	}
	t.Setenv(vppproc.EnvBin, bin)
	t.Setenv(vppproc.EnvPluginPath, plugins)
	return plugins
}

func TestStartupConf(t *testing.T) {
	plugins := fakeBin(t, "/bin/true")
	dir := t.TempDir()
	v, err := vppproc.New(vppproc.Config{Name: "conf", Dir: dir, MainCore: 0})
	require.NoError(t, err)
	conf, err := os.ReadFile(v.Conf())
	require.NoError(t, err)
	for _, want := range []string{"nodaemon", "cli-listen " + dir + "/cli.sock", "socksvr { socket-name " + dir + "/api.sock }",
		"log " + dir + "/vpp.log", "main-heap-page-size 4k", "cpu { main-core 0 }", "path " + plugins,
		"plugin dpdk_plugin.so { disable }"} {
		assert.Contains(t, string(conf), want)
	}
	assert.Equal(t, filepath.Join(dir, "api.sock"), v.APISock)
	assert.Equal(t, filepath.Join(dir, "cli.sock"), v.CLISock)
	assert.Zero(t, v.PID())
	assert.NotContains(t, string(conf), "startup-config", "no StartupCLI")
	assert.NoFileExists(t, filepath.Join(dir, "startup.cli"))
}

func TestStartupCLI(t *testing.T) {
	fakeBin(t, "/bin/true")
	dir := t.TempDir()
	v, err := vppproc.New(vppproc.Config{Name: "cli", Dir: dir, StartupCLI: []string{"create loopback interface", "set interface state loop0 up"}})
	require.NoError(t, err)
	conf, err := os.ReadFile(v.Conf())
	require.NoError(t, err)
	assert.Contains(t, string(conf), "startup-config "+filepath.Join(dir, "startup.cli"))
	cli, err := os.ReadFile(filepath.Join(dir, "startup.cli"))
	require.NoError(t, err)
	assert.Equal(t, "create loopback interface\nset interface state loop0 up\n", string(cli))
}

func TestStartFailsWhenVPPExits(t *testing.T) {
	fakeBin(t, "/bin/false")
	v, err := vppproc.New(vppproc.Config{Name: "gone", Dir: t.TempDir()})
	require.NoError(t, err)
	err = v.Start(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "gone: VPP exited during start-up")
	assert.Contains(t, err.Error(), "--- stdout.log")
	assert.Zero(t, v.PID())
	assert.NoError(t, v.Stop(), "stopping a stopped VPP is a no-op")
}

// TestRealVPP starts, restarts and stops the VPP of USRSP_VPP_BIN.
func TestRealVPP(t *testing.T) {
	vpptest.NeedVPP(t)
	dir, err := os.MkdirTemp("", "usrsp-vppproc-") // short: socket paths
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	v, err := vppproc.New(vppproc.Config{Name: "real", Dir: dir, MainCore: 1,
		StartupCLI: []string{"create loopback interface", "set interface state loop0 up"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = v.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	require.NoError(t, v.Start(ctx), v.LogTail(20))
	awaitLoopUp(t, ctx, v)
	first := v.PID()
	require.NotZero(t, first)
	assert.ErrorContains(t, v.Start(ctx), "already running")
	require.NoError(t, v.Restart(ctx))
	assert.NotEqual(t, first, v.PID(), "a new process")
	awaitLoopUp(t, ctx, v) // StartupCLI again
	require.NoError(t, v.Kill(syscall.SIGTERM))
	assert.Zero(t, v.PID())
	require.NoError(t, v.Stop())
	shm, _ := filepath.Glob("/dev/shm/usrsp*")
	for _, f := range shm {
		assert.False(t, strings.HasPrefix(filepath.Base(f), "usrsp"+strconv.Itoa(os.Getpid())+"-"), "shared memory left: %s", f)
	}
}

// awaitLoopUp waits until the StartupCLI's loopback is up: VPP runs the
// startup config shortly after its API answers, with no event to wait for,
// so this polls vppctl (bounded by ctx).
func awaitLoopUp(t *testing.T, ctx context.Context, v *vppproc.VPP) {
	t.Helper()
	vppctl := filepath.Join(filepath.Dir(v.Bin), "vppctl")
	for {
		out, _ := exec.CommandContext(ctx, vppctl, "-s", v.CLISock, "show interface loop0").CombinedOutput()
		if strings.Contains(string(out), " up ") {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("loop0 of the startup CLI not up: %v\n%s", ctx.Err(), out)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
