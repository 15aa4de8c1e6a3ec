package vppapply

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"go.fd.io/govpp/binapi/memif"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/limits"
	"usrsp.dev/libs/vpp"
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

	memif       *vpp.MemifConfig // SocketID filled in at apply time
	memifSocket string           // VPP's socket filename ("abstract:<name>" for abstract sockets)
	vhost       *vpp.VhostConfig // Server: the pod's VPP creates the socket

	mtu    uint32
	addrs  []netip.Prefix
	routes []route
}

type route struct {
	dst netip.Prefix
	gw  netip.Addr // invalid: attached (out of the interface)
}

func (r route) String() string {
	if r.gw.IsValid() {
		return "route " + r.dst.String() + " via " + r.gw.String()
	}
	return "route " + r.dst.String()
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
	if err := checkLimits(c); err != nil {
		return bad("%v", err)
	}
	switch c.IfType {
	case contracts.IfTypeMemif:
		m := c.Memif
		p.kind = "memif"
		p.memif = &vpp.MemifConfig{Master: m.Role == contracts.MemifRoleMaster, Mode: memifModes[m.Mode],
			Queues: uint8(max(m.Queues, 1)), ID: m.ID, RingSize: uint32(m.RingSize), BufferSize: uint16(m.BufferSize), Secret: m.Secret}
		// An abstract socket ("@name" in the pod data) needs no netns
		// reference: the pod's VPP already runs in the pod's netns.
		p.memifSocket = c.SocketPath
		if name, ok := strings.CutPrefix(c.SocketPath, "@"); ok {
			p.memifSocket = "abstract:" + name
		}
	case contracts.IfTypeVhostUser:
		p.kind = "vhost-user"
		p.vhost = &vpp.VhostConfig{Server: c.Vhost.Mode == contracts.VhostModeServer, Socket: c.SocketPath, Tag: p.tag}
	default:
		return bad("interface.ifType %q: apply configures memif and vhost-user interfaces", c.IfType)
	}
	mac, err := vpp.ParseMAC(c.MAC)
	if err != nil {
		return bad("interface.mac %q is not an Ethernet MAC", c.MAC)
	}
	if p.memif != nil {
		p.memif.MAC = mac
	} else {
		p.vhost.MAC = mac
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

// checkLimits checks the interface against VPP's limits: the pod's
// dataplane is a VPP, whatever the host's engine. 0 means VPP's default.
func checkLimits(c contracts.ContainerInterface) error {
	lim, _ := limits.For(limits.VPP)
	var errs []error
	if c.MTU != 0 {
		errs = append(errs, lim.MTU("interface.mtu", c.MTU))
	}
	if m := c.Memif; c.IfType == contracts.IfTypeMemif {
		if m.Queues != 0 {
			errs = append(errs, lim.MemifQueues("interface.memif.queues", m.Queues))
		}
		if m.RingSize != 0 {
			errs = append(errs, lim.MemifRingSize("interface.memif.ringSize", m.RingSize))
		}
		if m.BufferSize != 0 {
			errs = append(errs, lim.MemifBufferSize("interface.memif.bufferSize", m.BufferSize))
		}
		errs = append(errs, lim.MemifSecret("interface.memif.secret", m.Secret))
	}
	return errors.Join(errs...)
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
		if p.memif.Master {
			role = "master"
		}
		return fmt.Sprintf("memif (%s, id %d) on socket %s", role, p.memif.ID, p.socket)
	}
	mode := "client"
	if p.vhost.Server {
		mode = "server"
	}
	return fmt.Sprintf("vhost-user (%s) on socket %s", mode, p.socket)
}
