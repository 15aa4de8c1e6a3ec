package contracts_test

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
)

func TestDerivedMAC(t *testing.T) {
	keys := []contracts.AttachmentKey{
		{ContainerID: "a", IfName: "net1"},
		{ContainerID: "a", IfName: "net2"},
		{ContainerID: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", IfName: "eth0"},
	}
	seen := map[string]bool{}
	for _, k := range keys {
		for _, side := range []string{contracts.SideHost, contracts.SideContainer} {
			t.Run(k.String()+"/"+side, func(t *testing.T) {
				mac := contracts.DerivedMAC(k, side)
				hw, err := net.ParseMAC(mac)
				require.NoError(t, err)
				require.Len(t, hw, 6)
				assert.Zero(t, hw[0]&1, "unicast")
				assert.NotZero(t, hw[0]&2, "locally administered")
				assert.Equal(t, mac, contracts.DerivedMAC(k, side), "deterministic")
				assert.False(t, seen[mac], "distinct per key and side")
				seen[mac] = true
			})
		}
	}
	k := keys[0]
	assert.NotEqual(t, contracts.DerivedMAC(k, contracts.SideHost), contracts.DerivedMAC(k, contracts.SideContainer))
	assert.Equal(t, "02:00:00:00:00:09", contracts.ContainerMAC(k, "02:00:00:00:00:09"), "configured wins")
	assert.Equal(t, contracts.DerivedMAC(k, contracts.SideContainer), contracts.ContainerMAC(k, ""))
}

func TestHostVethName(t *testing.T) {
	k := contracts.AttachmentKey{ContainerID: "a", IfName: "net1"}
	n := contracts.HostVethName(k)
	assert.Len(t, n, contracts.MaxIfNameLen)
	assert.True(t, contracts.ValidIfName(n))
	assert.Equal(t, n, contracts.HostVethName(k))
	assert.NotEqual(t, n, contracts.HostVethName(contracts.AttachmentKey{ContainerID: "a", IfName: "net2"}))
}

func FuzzDerivedMAC(f *testing.F) {
	f.Add("c", "net1")
	f.Fuzz(func(t *testing.T, id, ifName string) {
		k := contracts.AttachmentKey{ContainerID: id, IfName: ifName}
		h, c := contracts.DerivedMAC(k, contracts.SideHost), contracts.DerivedMAC(k, contracts.SideContainer)
		if h == c {
			t.Fatalf("host and container MAC are both %s", h)
		}
		for _, m := range []string{h, c} {
			hw, err := net.ParseMAC(m)
			if err != nil || hw[0]&1 != 0 || hw[0]&2 == 0 {
				t.Fatalf("%s is not a locally administered unicast MAC", m)
			}
		}
	})
}
