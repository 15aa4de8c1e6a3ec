package vpp

import (
	"context"
	"errors"

	"go.fd.io/govpp/adapter"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/af_packet"
	"go.fd.io/govpp/binapi/ethernet_types"

	"usrsp.dev/contracts"
)

// AfPacketPrefix starts the VPP name of an af_packet interface:
// "host-<netdev>".
const AfPacketPrefix = "host-"

// The af_packet messages are not in Messages(): the plugin is optional
// (memif and vhost-user need none of it), so a VPP without it still
// connects, and only an iftype veth attach fails, naming af_packet.

// AfPacketConfig is an af_packet interface to create.
type AfPacketConfig struct {
	HostIfName string                     // the host netdev VPP reads and writes
	MAC        *ethernet_types.MacAddress // nil: VPP picks a random one
}

// CreateAfPacket creates a VPP host interface (af_packet) on a host netdev
// and returns its sw_if_index. VPP names it AfPacketPrefix + HostIfName.
func (c *Client) CreateAfPacket(ctx context.Context, a AfPacketConfig) (uint32, error) {
	req := &af_packet.AfPacketCreateV3{Mode: af_packet.AF_PACKET_API_MODE_ETHERNET, HostIfName: a.HostIfName,
		UseRandomHwAddr: a.MAC == nil, NumRxQueues: 1, NumTxQueues: 1}
	if a.MAC != nil {
		req.HwAddr = *a.MAC
	}
	r, err := c.AfPacket.AfPacketCreateV3(ctx, req)
	var unknown *adapter.UnknownMsgError
	if errors.As(err, &unknown) { // not a transport problem: retrying will not help
		return 0, contracts.Errorf(contracts.CodeVswitch, "vpp af_packet_create_v3 %s: VPP does not know the message: iftype veth needs af_packet_plugin.so", a.HostIfName)
	}
	if err != nil {
		return 0, Error("af_packet_create_v3", a.HostIfName, err)
	}
	return uint32(r.SwIfIndex), nil
}

// DeleteAfPacket deletes the af_packet interface on hostIfName; a missing
// one is success (VPP answers SYSCALL_ERROR_1 for an unknown name).
func (c *Client) DeleteAfPacket(ctx context.Context, hostIfName string) error {
	_, err := c.AfPacket.AfPacketDelete(ctx, &af_packet.AfPacketDelete{HostIfName: hostIfName})
	if err == nil || isGone(err) || errors.Is(err, api.SYSCALL_ERROR_1) {
		return nil
	}
	return Error("af_packet_delete", hostIfName, err)
}
