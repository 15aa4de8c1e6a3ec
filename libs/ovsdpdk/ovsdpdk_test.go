package ovsdpdk_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/libs/ovsdpdk"
	"usrsp.dev/libs/ovsdpdk/ovsdpdktest"
)

func TestStartRestartStop(t *testing.T) {
	ovsdpdktest.Require(t)
	ovsdpdktest.Lock(t)
	ctx := context.Background()
	dir := t.TempDir()
	inst, err := ovsdpdk.Start(ctx, ovsdpdk.Config{Dir: dir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = inst.Stop() })

	out, err := inst.Vsctl(ctx, "get", "Open_vSwitch", ".", "dpdk_initialized")
	require.NoError(t, err)
	assert.Equal(t, "true", out)
	extra, err := inst.Vsctl(ctx, "get", "Open_vSwitch", ".", "other_config:dpdk-extra")
	require.NoError(t, err)
	assert.Contains(t, extra, "--file-prefix="+inst.FilePrefix())
	assert.FileExists(t, inst.DBSocket())
	assert.DirExists(t, filepath.Join("/var/run/dpdk", inst.FilePrefix()))

	_, err = inst.Vsctl(ctx, "add-br", "br0", "--", "set", "Bridge", "br0", "datapath_type=netdev")
	require.NoError(t, err)

	for _, crash := range []bool{true, false} {
		t.Run("restart crash="+strconv.FormatBool(crash), func(t *testing.T) {
			old := inst.VswitchdPID()
			require.NoError(t, inst.RestartVswitchd(ctx, crash))
			assert.NotEqual(t, old, inst.VswitchdPID())
			assert.NoDirExists(t, "/proc/"+strconv.Itoa(old), "old vswitchd still running")
			br, err := inst.Vsctl(ctx, "list-br")
			require.NoError(t, err)
			assert.Equal(t, "br0", br, "the database survives a vswitchd restart")
			_, err = inst.Appctl(ctx, "version")
			require.NoError(t, err)
		})
	}

	pids := []int{inst.VswitchdPID(), inst.OVSDBPID()}
	require.NoError(t, inst.Stop())
	for _, pid := range pids {
		assert.NoDirExists(t, "/proc/"+strconv.Itoa(pid))
	}
	for _, d := range []string{inst.RunDir(), inst.LogDir(), filepath.Join("/var/run/dpdk", inst.FilePrefix())} {
		_, err := os.Stat(d)
		assert.True(t, os.IsNotExist(err), "%s left behind", d)
	}
	require.NoError(t, inst.Stop(), "Stop twice")
}

func TestStartRejectsEmptyDir(t *testing.T) {
	_, err := ovsdpdk.Start(context.Background(), ovsdpdk.Config{})
	require.ErrorContains(t, err, "Dir")
}
