package vppapply

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"go.fd.io/govpp/binapi/ethernet_types"
	"go.fd.io/govpp/binapi/memif"

	"usrsp.dev/contracts"
)

// TagPrefix marks the interfaces apply creates in the pod's VPP; the rest
// of the tag is the pod interface name.
const TagPrefix = "usrsp-pod:"

// Tag is the VPP interface tag of pod interface ifName.
func Tag(ifName string) string { return TagPrefix + ifName }

// plan is what one pod interface should look like in the pod's VPP. It is
// computed from the pod data alone (no I/O), so it is checked before VPP is
// touched.
type plan struct {
	ifName string
	tag    string
	kind   string // "memif" or "vhost-user", for messages
	socket string // as the pod sees it (for messages)

	memif       *memif.MemifCreateV2 // SocketID filled in at apply time
	memifSocket string               // VPP's socket filename ("abstract:<name>" for abstract sockets)
	vhostServer bool                 // vhost-user: the pod's VPP creates the socket

	mac    *ethernet_types.MacAddress
	mtu    uint32
	addrs  []netip.Prefix
	routes []route
}

type route struct {
	dst netip.Prefix
	gw  netip.Addr // invalid: attached (out of the interface)
}

var memifModes = map[string]memif.MemifMode{
	contracts.MemifModeEthernet:   memif.MEMIF_MODE_API_ETHERNET,
	contracts.MemifModeIP:         memif.MEMIF_MODE_API_IP,
	contracts.MemifModeInjectPunt: memif.MEMIF_MODE_API_PUNT_INJECT,
}

// planFor checks d and returns the plan for its interface.
func planFor(d *contracts.PodData) (plan, error) {
	c := d.Interface
	p := plan{ifName: d.IfName, tag: Tag(d.IfName), socket: c.SocketPath}
	bad := func(format string, args ...any) (plan, error) {
		return plan{}, contracts.Errorf(contracts.CodeInvalidConfig, "%s: "+format, append([]any{d.IfName}, args...)...)
	}
	switch c.IfType {
	case contracts.IfTypeMemif:
		m := c.Memif
		p.kind = "memif"
		if m.Queues < 0 || m.Queues > 255 {
			return bad("interface.memif.queues %d is out of range 1..255", m.Queues)
		}
		if m.BufferSize < 0 || m.BufferSize > 65535 {
			return bad("interface.memif.bufferSize %d is out of range 1..65535", m.BufferSize)
		}
		if m.RingSize < 0 || m.RingSize&(m.RingSize-1) != 0 {
			return bad("interface.memif.ringSize %d is not a power of two", m.RingSize)
		}
		role := memif.MEMIF_ROLE_API_SLAVE
		if m.Role == contracts.MemifRoleMaster {
			role = memif.MEMIF_ROLE_API_MASTER
		}
		queues := uint8(max(m.Queues, 1))
		p.memif = &memif.MemifCreateV2{Role: role, Mode: memifModes[m.Mode], RxQueues: queues, TxQueues: queues,
			ID: m.ID, RingSize: uint32(m.RingSize), BufferSize: uint16(m.BufferSize), Secret: m.Secret}
		// An abstract socket ("@name" in the pod data) needs no netns
		// reference: the pod's VPP already runs in the pod's netns.
		p.memifSocket = c.SocketPath
		if name, ok := strings.CutPrefix(c.SocketPath, "@"); ok {
			p.memifSocket = "abstract:" + name
		}
	case contracts.IfTypeVhostUser:
		p.kind = "vhost-user"
		p.vhostServer = c.Vhost.Mode == contracts.VhostModeServer
	}
	if c.MAC != "" {
		hw, err := net.ParseMAC(c.MAC)
		if err != nil || len(hw) != 6 {
			return bad("interface.mac %q is not an Ethernet MAC", c.MAC)
		}
		mac := ethernet_types.MacAddress(hw)
		p.mac = &mac
	}
	if c.MTU < 0 || c.MTU > 65535 {
		return bad("interface.mtu %d is out of range", c.MTU)
	}
	p.mtu = uint32(c.MTU)
	if d.IPAM == nil {
		return p, nil
	}
	for i, ip := range d.IPAM.IPs {
		pfx, err := netip.ParsePrefix(ip.Address)
		if err != nil {
			return bad("ipam.ips[%d].address %q is not a CIDR address", i, ip.Address)
		}
		p.addrs = append(p.addrs, pfx)
	}
	for i, r := range d.IPAM.Routes {
		dst, err := netip.ParsePrefix(r.Dst)
		if err != nil {
			return bad("ipam.routes[%d].dst %q is not a CIDR prefix", i, r.Dst)
		}
		rt := route{dst: dst.Masked()}
		if r.GW == "" {
			rt.gw = gatewayFor(d.IPAM.IPs, dst.Addr().Is4())
		} else if rt.gw, err = netip.ParseAddr(r.GW); err != nil {
			return bad("ipam.routes[%d].gw %q is not an IP address", i, r.GW)
		}
		if rt.gw.IsValid() && rt.gw.Is4() != dst.Addr().Is4() {
			return bad("ipam.routes[%d]: gw %s and dst %s are of different IP families", i, rt.gw, dst)
		}
		p.routes = append(p.routes, rt)
	}
	return p, nil
}

// gatewayFor is the IPAM gateway of the family, the CNI default for a
// route without gw; invalid when there is none.
func gatewayFor(ips []contracts.IPConfig, ipv4 bool) netip.Addr {
	for _, ip := range ips {
		if gw, err := netip.ParseAddr(ip.Gateway); err == nil && gw.Is4() == ipv4 {
			return gw
		}
	}
	return netip.Addr{}
}

func (p plan) describe() string {
	if p.memif != nil {
		role := "slave"
		if p.memif.Role == memif.MEMIF_ROLE_API_MASTER {
			role = "master"
		}
		return fmt.Sprintf("memif (%s, id %d) on socket %s", role, p.memif.ID, p.socket)
	}
	mode := "client"
	if p.vhostServer {
		mode = "server"
	}
	return fmt.Sprintf("vhost-user (%s) on socket %s", mode, p.socket)
}
