package ovs_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/ovsdpdk/ovsdpdktest"
	"usrsp.dev/services/ovs-adapter/ovs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func owned(extra map[string]string) map[string]string {
	m := map[string]string{ovs.ExtOwner: ovs.OwnerValue}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func TestClientAgainstRealOVS(t *testing.T) {
	inst := ovsdpdktest.Start(t)
	ctx := context.Background()
	c := ovs.NewClient(ovs.Config{Remote: inst.DBRemote()})
	t.Cleanup(func() { _ = c.Close() })
	sockDir := t.TempDir()

	info, err := c.Info(ctx)
	require.NoError(t, err)
	assert.True(t, info.DPDKInitialized)
	assert.Equal(t, 1, info.PMDs)
	assert.NotEmpty(t, info.Version)

	spec := ovs.PortSpec{Name: "usp000000000001", Bridge: "br-usrsp", Type: ovs.TypeVhostUserClient,
		Options:     map[string]string{"vhost-server-path": filepath.Join(sockDir, "vh.sock")},
		ExternalIDs: owned(map[string]string{ovs.ExtContainerID: "c1", ovs.ExtIfName: "net1"}), Tag: 42, MTU: 2000}
	ports, err := c.AddPorts(ctx, []ovs.PortSpec{spec})
	require.NoError(t, err)
	require.Len(t, ports, 1)
	p := ports[0]
	assert.Positive(t, p.OFPort)
	assert.Equal(t, spec.Options, p.Options)
	assert.Equal(t, 42, p.Tag)
	assert.Equal(t, 2000, p.MTU)
	assert.Equal(t, "br-usrsp", p.Bridge)

	out, err := inst.Vsctl(ctx, "get", "Bridge", "br-usrsp", "datapath_type", "external_ids")
	require.NoError(t, err)
	assert.Contains(t, out, "netdev")
	assert.Contains(t, out, `usrsp-owner=ovs-adapter`)

	// Replaying the add replaces our own port, in place.
	_, err = c.AddPorts(ctx, []ovs.PortSpec{spec})
	require.NoError(t, err)
	listed, err := inst.Vsctl(ctx, "list-ports", "br-usrsp")
	require.NoError(t, err)
	assert.Equal(t, spec.Name, listed)
	one, err := c.Ports(ctx, []string{spec.Name})
	require.NoError(t, err)
	require.Len(t, one, 1)
	assert.Equal(t, "br-usrsp", one[0].Bridge)
	assert.Equal(t, 42, one[0].Tag)
	assert.Positive(t, one[0].OFPort)
	none, err := c.Ports(ctx, []string{"usp00000000dead"})
	require.NoError(t, err)
	assert.Empty(t, none)

	// An operator's port of the same name is never taken over.
	_, err = inst.Vsctl(ctx, "add-br", "br-op", "--", "set", "Bridge", "br-op", "datapath_type=netdev",
		"--", "add-port", "br-op", "opport", "--", "set", "Interface", "opport", "type=internal")
	require.NoError(t, err)
	_, err = c.AddPorts(ctx, []ovs.PortSpec{{Name: "opport", Bridge: "br-op", Type: ovs.TypeVhostUserClient,
		Options: map[string]string{"vhost-server-path": filepath.Join(sockDir, "x.sock")}, ExternalIDs: owned(nil)}})
	assert.Equal(t, contracts.CodeConflict, contracts.CodeOf(err), "%v", err)

	all, err := c.OwnedPorts(ctx)
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, spec.Name, all[0].Name)

	// One name at a time (a detach): a second port keeps our bridge; an
	// operator's port and a missing one are left alone.
	second := spec.Clone()
	second.Name, second.Options = "usp000000000002", map[string]string{"vhost-server-path": filepath.Join(sockDir, "vh2.sock")}
	second.Protected = true
	_, err = c.AddPorts(ctx, []ovs.PortSpec{second})
	require.NoError(t, err)
	both, err := c.Ports(ctx, []string{spec.Name, second.Name})
	require.NoError(t, err)
	require.Len(t, both, 2)
	assert.False(t, both[0].Protected)
	assert.True(t, both[1].Protected, "Port.protected is written and read back")
	for _, name := range []string{"opport", "missing"} {
		deleted, err := c.DeletePorts(ctx, []string{name})
		require.NoError(t, err)
		assert.Empty(t, deleted, name)
	}
	deleted, err := c.DeletePorts(ctx, []string{second.Name})
	require.NoError(t, err)
	assert.Equal(t, []string{second.Name}, deleted)
	listed, err = inst.Vsctl(ctx, "list-ports", "br-usrsp")
	require.NoError(t, err)
	assert.Equal(t, spec.Name, listed)

	deleted, err = c.DeletePorts(ctx, []string{spec.Name, "opport", "missing"})
	require.NoError(t, err)
	assert.Equal(t, []string{spec.Name}, deleted)
	brs, err := inst.Vsctl(ctx, "list-br")
	require.NoError(t, err)
	assert.Equal(t, "br-op", brs, "our emptied bridge is gone, the operator's stays")
	opPorts, err := inst.Vsctl(ctx, "list-ports", "br-op")
	require.NoError(t, err)
	assert.Equal(t, "opport", opPorts)

	require.NoError(t, c.Sync(ctx))
	_ = os.Remove(filepath.Join(sockDir, "vh.sock"))
}
