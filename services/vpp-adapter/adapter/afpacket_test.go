package adapter

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
)

func vethRequest(k contracts.AttachmentKey) *contracts.AttachRequest {
	return &contracts.AttachRequest{Key: k, Network: "kern-net", Interface: contracts.HostInterface{
		IfType: contracts.IfTypeVeth, NetType: contracts.NetTypeBridge,
		Veth:   &contracts.VethSpec{HostIfName: contracts.HostVethName(k)},
		Bridge: &contracts.BridgeSpec{ID: 7}}}
}

func TestPlanAfPacket(t *testing.T) {
	k := contracts.AttachmentKey{ContainerID: "c1", IfName: "net1"}
	tests := []struct {
		name   string
		mutate func(*contracts.AttachRequest)
		check  func(*testing.T, *plan)
		code   contracts.Code
	}{
		{name: "bridge: af_packet on the derived host end, derived MAC", check: func(t *testing.T, p *plan) {
			assert.Equal(t, kindAfPacket, p.kind)
			assert.Equal(t, contracts.HostVethName(k), p.afPacket.HostIfName)
			require.NotNil(t, p.afPacket.MAC)
			assert.Equal(t, contracts.DerivedMAC(k, contracts.SideHost), p.afPacket.MAC.String())
			assert.Equal(t, uint32(7), p.bridge)
			assert.Empty(t, p.podSocket)
		}},
		{name: "the request's MAC", mutate: func(r *contracts.AttachRequest) { r.Interface.MAC = "02:00:00:00:00:42" },
			check: func(t *testing.T, p *plan) { assert.Equal(t, "02:00:00:00:00:42", p.afPacket.MAC.String()) }},
		{name: "another netdev", mutate: func(r *contracts.AttachRequest) { r.Interface.Veth.HostIfName = "eth0" }, code: contracts.CodeInvalidConfig},
		{name: "no veth block", mutate: func(r *contracts.AttachRequest) { r.Interface.Veth = nil }, code: contracts.CodeInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := vethRequest(k)
			if tt.mutate != nil {
				tt.mutate(r)
			}
			p, err := planAttach(r, false)
			if tt.code != 0 {
				assert.Equal(t, tt.code, contracts.CodeOf(err), "%v", err)
				return
			}
			require.NoError(t, err)
			tt.check(t, p)
		})
	}
}
