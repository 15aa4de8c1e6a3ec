package adapter

import (
	"go.fd.io/govpp/binapi/ethernet_types"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/vpp"
)

// planAfPacket plans the VPP side of iftype veth: an af_packet interface
// ("host-<veth>") on the host end of the veth pair cni-entry made. Only
// that veth: a request can never make VPP take over another netdev
// (eth0). Its MAC is the host side's derived one unless the request names
// one, so a replay after a VPP restart makes the same interface.
func planAfPacket(p *plan, r *contracts.AttachRequest, mac *ethernet_types.MacAddress) error {
	h := r.Interface
	want := contracts.HostVethName(r.Key)
	if h.Veth == nil || h.Veth.HostIfName != want {
		return invalid("interface.veth.hostIfName must be %s for attachment %s", want, r.Key)
	}
	if mac == nil {
		derived, err := parseMAC(contracts.DerivedMAC(r.Key, contracts.SideHost))
		if err != nil {
			return err
		}
		mac = derived
	}
	p.kind = kindAfPacket
	p.afPacket = vpp.AfPacketConfig{HostIfName: want, MAC: mac}
	return nil
}
