package ovsdpdk_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/libs/ovsdpdk"
	"usrsp.dev/libs/ovsdpdk/ovsdpdktest"
	"usrsp.dev/libs/testkit"
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

// TestTwoNodesInNetns: one holder of the lock runs two instances at once,
// each ovs-vswitchd in its own network namespace, where its bridges'
// internal ports appear.
func TestTwoNodesInNetns(t *testing.T) {
	ovsdpdktest.Require(t)
	ctx := context.Background()
	nsA, nsB := ovsdpdktest.Netns(t, "uvo-"), ovsdpdktest.Netns(t, "uvo-")
	insts := ovsdpdktest.StartNodes(t, ovsdpdk.Config{Netns: nsA}, ovsdpdk.Config{Netns: nsB})
	for i, ns := range []string{nsA, nsB} {
		inst := insts[i]
		want, err := os.Stat(filepath.Join(testkit.NetnsDir, ns))
		require.NoError(t, err)
		got, err := os.Stat("/proc/" + strconv.Itoa(inst.VswitchdPID()) + "/ns/net")
		require.NoError(t, err)
		assert.True(t, os.SameFile(want, got), "ovs-vswitchd of %s runs in netns %s", inst.RunDir(), ns)

		_, err = inst.Vsctl(ctx, "add-br", "br-phy", "--", "set", "Bridge", "br-phy", "datapath_type=netdev")
		require.NoError(t, err)
		out, err := exec.Command("ip", "-n", ns, "link", "show", "br-phy").CombinedOutput()
		require.NoError(t, err, "br-phy's internal port is in %s: %s", ns, out)

		require.NoError(t, inst.RestartVswitchd(ctx, true))
		got, err = os.Stat("/proc/" + strconv.Itoa(inst.VswitchdPID()) + "/ns/net")
		require.NoError(t, err)
		assert.True(t, os.SameFile(want, got), "a restarted ovs-vswitchd runs in %s again", ns)
	}
	_, err := exec.Command("ip", "link", "show", "br-phy").CombinedOutput()
	assert.Error(t, err, "no br-phy in the test's own netns")
}

func TestStartRejectsMissingNetns(t *testing.T) {
	_, err := ovsdpdk.Start(context.Background(), ovsdpdk.Config{Dir: t.TempDir(), Netns: "uvo-missing"})
	require.ErrorContains(t, err, `Config.Netns "uvo-missing"`)
}
