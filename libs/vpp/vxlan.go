package vpp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"go.fd.io/govpp/adapter"
	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/binapi/vlib"
	"go.fd.io/govpp/binapi/vxlan"

	"usrsp.dev/contracts"
)

// OverlayMessages are the requests and replies of the overlay (VXLAN
// tunnels and what they need). Like af_packet they are not in Messages():
// the vxlan plugin is optional, so a VPP without it still connects and
// only a tunnel sync fails, naming vxlan_plugin.so.
func OverlayMessages() []api.Message {
	return []api.Message{
		&vxlan.VxlanAddDelTunnelV3{}, &vxlan.VxlanAddDelTunnelV3Reply{},
		&vxlan.VxlanTunnelV2Dump{}, &vxlan.VxlanTunnelV2Details{},
		&vlib.AddNodeNext{}, &vlib.AddNodeNextReply{},
		&ip.IPRouteDump{}, &ip.IPRouteDetails{},
		&interfaces.SwInterfaceGetTable{}, &interfaces.SwInterfaceGetTableReply{},
	}
}

// Tunnel is a VXLAN tunnel as VPP reports it (vxlan_tunnel_v2_details).
type Tunnel struct {
	SwIfIndex      uint32
	Src, Dst       netip.Addr
	SrcPort        uint16
	DstPort        uint16
	VNI            uint32
	DecapNextIndex uint32
}

// TunnelConfig is a VXLAN tunnel to create.
type TunnelConfig struct {
	Src, Dst netip.Addr
	// Port is the UDP destination port, also registered as the source
	// (the port VPP listens on for this tunnel).
	Port uint16
	VNI  uint32
	// L3 makes a routed tunnel: no MAC, inner IPv4 packets without an
	// Ethernet header, decapsulated straight to ip4-input. Otherwise the
	// tunnel is an Ethernet interface that decapsulates to l2-input (a
	// bridge domain member).
	L3 bool
}

// vxlanInput is the decapsulating node of the outer family.
func vxlanInput(src netip.Addr) string {
	if src.Is4() {
		return "vxlan4-input"
	}
	return "vxlan6-input"
}

// DecapNext is the next index of the graph node a tunnel of cfg hands
// decapsulated packets to: l2-input, or ip4-input for L3. add_node_next
// returns the existing arc when there is one, so asking is idempotent.
func (c *Client) DecapNext(ctx context.Context, cfg TunnelConfig) (uint32, error) {
	next := "l2-input"
	if cfg.L3 {
		next = "ip4-input"
	}
	r, err := c.VLib.AddNodeNext(ctx, &vlib.AddNodeNext{NodeName: vxlanInput(cfg.Src), NextName: next})
	if err != nil {
		return 0, overlayError("add_node_next", vxlanInput(cfg.Src)+" -> "+next, err)
	}
	return r.NextIndex, nil
}

// CreateTunnel creates a VXLAN tunnel and returns its sw_if_index.
func (c *Client) CreateTunnel(ctx context.Context, cfg TunnelConfig) (uint32, error) {
	next, err := c.DecapNext(ctx, cfg)
	if err != nil {
		return 0, err
	}
	r, err := c.VXLAN.VxlanAddDelTunnelV3(ctx, &vxlan.VxlanAddDelTunnelV3{IsAdd: true, Instance: anyID,
		SrcAddress: address(cfg.Src), DstAddress: address(cfg.Dst), SrcPort: cfg.Port, DstPort: cfg.Port,
		McastSwIfIndex: interface_types.InterfaceIndex(anyID), DecapNextIndex: next, Vni: cfg.VNI, IsL3: cfg.L3})
	if err != nil {
		return 0, overlayError("vxlan_add_del_tunnel_v3", fmt.Sprintf("%s -> %s vni %d", cfg.Src, cfg.Dst, cfg.VNI), err)
	}
	return uint32(r.SwIfIndex), nil
}

// DeleteTunnel deletes the tunnel t (VPP finds it by its addresses, port
// and VNI); a missing one is success.
func (c *Client) DeleteTunnel(ctx context.Context, t Tunnel) error {
	_, err := c.VXLAN.VxlanAddDelTunnelV3(ctx, &vxlan.VxlanAddDelTunnelV3{IsAdd: false, Instance: anyID,
		SrcAddress: address(t.Src), DstAddress: address(t.Dst), SrcPort: t.SrcPort, DstPort: t.DstPort,
		McastSwIfIndex: interface_types.InterfaceIndex(anyID), DecapNextIndex: t.DecapNextIndex, Vni: t.VNI})
	if err == nil || isGone(err) {
		return nil
	}
	return overlayError("vxlan_add_del_tunnel_v3 (delete)", fmt.Sprintf("sw_if_index %d %s -> %s vni %d", t.SwIfIndex, t.Src, t.Dst, t.VNI), err)
}

// Tunnels dumps every VXLAN tunnel.
func (c *Client) Tunnels(ctx context.Context) ([]Tunnel, error) {
	var out []Tunnel
	stream, err := c.VXLAN.VxlanTunnelV2Dump(ctx, &vxlan.VxlanTunnelV2Dump{SwIfIndex: interface_types.InterfaceIndex(anyID)})
	err = drain(stream, err, func(d *vxlan.VxlanTunnelV2Details) {
		out = append(out, Tunnel{SwIfIndex: uint32(d.SwIfIndex), Src: addr(d.SrcAddress), Dst: addr(d.DstAddress),
			SrcPort: d.SrcPort, DstPort: d.DstPort, VNI: d.Vni, DecapNextIndex: d.DecapNextIndex})
	})
	if err != nil {
		return nil, overlayError("vxlan_tunnel_v2_dump", "", err)
	}
	return out, nil
}

// JoinBridge adds an interface to a bridge domain in split-horizon group
// shg (0: none). VPP never floods a frame out of a member of the group it
// came in on, so tunnels in one group do not relay each other's broadcasts.
func (c *Client) JoinBridge(ctx context.Context, swIfIndex, bdID uint32, shg uint8) error {
	_, err := c.L2.SwInterfaceSetL2Bridge(ctx, &l2.SwInterfaceSetL2Bridge{
		RxSwIfIndex: interface_types.InterfaceIndex(swIfIndex), BdID: bdID,
		PortType: l2.L2_API_PORT_TYPE_NORMAL, Shg: shg, Enable: true})
	return Error("sw_interface_set_l2_bridge", fmt.Sprintf("sw_if_index %d bridge domain %d shg %d", swIfIndex, bdID, shg), err)
}

// InterfaceTable returns the IP table an interface is bound to.
func (c *Client) InterfaceTable(ctx context.Context, swIfIndex uint32, ipv6 bool) (uint32, error) {
	r, err := c.Interfaces.SwInterfaceGetTable(ctx, &interfaces.SwInterfaceGetTable{
		SwIfIndex: interface_types.InterfaceIndex(swIfIndex), IsIPv6: ipv6})
	if err != nil {
		return 0, Error("sw_interface_get_table", fmt.Sprintf("sw_if_index %d", swIfIndex), err)
	}
	return r.VrfID, nil
}

// RoutesVia lists the prefixes of table that have a path out of
// swIfIndex (one family).
func (c *Client) RoutesVia(ctx context.Context, table uint32, ipv6 bool, swIfIndex uint32) ([]netip.Prefix, error) {
	var out []netip.Prefix
	stream, err := c.IP.IPRouteDump(ctx, &ip.IPRouteDump{Table: ip.IPTable{TableID: table, IsIP6: ipv6}})
	err = drain(stream, err, func(d *ip.IPRouteDetails) {
		for _, p := range d.Route.Paths {
			if p.SwIfIndex == swIfIndex {
				if pfx, err := netip.ParsePrefix(d.Route.Prefix.String()); err == nil {
					out = append(out, pfx)
				}
				return
			}
		}
	})
	if err != nil {
		return nil, Error("ip_route_dump", fmt.Sprintf("table %d", table), err)
	}
	return out, nil
}

// overlayError is Error, except that a message VPP does not know means
// its vxlan plugin is missing (not a transport problem: retrying will not
// help).
func overlayError(op, resource string, err error) error {
	var unknown *adapter.UnknownMsgError
	if errors.As(err, &unknown) {
		return contracts.Errorf(contracts.CodeVswitch, "vpp %s %s: VPP does not know the message: overlay networks need vxlan_plugin.so", op, resource)
	}
	return Error(op, resource, err)
}

func addr(a interface{ String() string }) netip.Addr {
	p, _ := netip.ParseAddr(a.String())
	return p
}

// InterfaceWithAddress returns the interface that has address a (in any
// table), found false when none has.
func (c *Client) InterfaceWithAddress(ctx context.Context, a netip.Addr) (Interface, bool, error) {
	ifs, err := c.interfaces(ctx, anyID, "")
	if err != nil {
		return Interface{}, false, err
	}
	for _, ifc := range ifs {
		addrs, err := c.Addresses(ctx, ifc.SwIfIndex, a.Is6())
		if err != nil {
			return Interface{}, false, err
		}
		for _, p := range addrs {
			if p.Addr() == a {
				return ifc, true, nil
			}
		}
	}
	return Interface{}, false, nil
}
