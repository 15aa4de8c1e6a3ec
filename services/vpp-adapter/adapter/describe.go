package adapter

import (
	"fmt"
	"strings"

	"usrsp.dev/contracts"
)

// describe says in words what attachment att is on VPP, for event
// messages, e.g. "memif1/0 (memif master) in bridge domain 4, access port
// of VLAN 100" or "vhost-user server VirtualEthernet0/0/0 in bridge domain 4".
func describe(att contracts.Attachment) string {
	h := att.Interface
	name := att.HostIfName
	if name == "" {
		name = "the interface tagged " + Tag(att.Key)
	}
	var b strings.Builder
	switch {
	case h.IfType == contracts.IfTypeMemif && h.Memif != nil:
		fmt.Fprintf(&b, "%s (memif %s", name, h.Memif.Role)
		if h.Memif.Mode != "" && h.Memif.Mode != contracts.MemifModeEthernet {
			fmt.Fprintf(&b, ", %s mode", h.Memif.Mode)
		}
		fmt.Fprintf(&b, ") on %s", att.SocketPath)
	case h.IfType == contracts.IfTypeVhostUser && h.Vhost != nil:
		fmt.Fprintf(&b, "vhost-user %s %s on %s", h.Vhost.Mode, name, att.SocketPath)
	default:
		fmt.Fprintf(&b, "%s (%s)", name, h.IfType)
	}
	switch {
	case h.NetType == contracts.NetTypeBridge && h.Bridge != nil:
		fmt.Fprintf(&b, " in bridge domain %d", h.Bridge.ID)
		if h.Bridge.VLAN != 0 {
			fmt.Fprintf(&b, ", access port of VLAN %d", h.Bridge.VLAN)
		}
	case h.NetType == contracts.NetTypeInterface:
		addrs := make([]string, 0, len(h.IPs))
		for _, ip := range h.IPs {
			addrs = append(addrs, ip.Address)
		}
		fmt.Fprintf(&b, ", routed to %s", strings.Join(addrs, " "))
	default:
		fmt.Fprintf(&b, ", netType %s", h.NetType)
	}
	if h.MTU != 0 {
		fmt.Fprintf(&b, ", MTU %d", h.MTU)
	}
	return b.String()
}
