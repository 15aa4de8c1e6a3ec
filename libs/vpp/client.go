package vpp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/af_packet"
	"go.fd.io/govpp/binapi/arp"
	"go.fd.io/govpp/binapi/ethernet_types"
	"go.fd.io/govpp/binapi/fib_types"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/ip6_nd"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/vhost_user"
	"go.fd.io/govpp/binapi/vlib"
	"go.fd.io/govpp/binapi/vpe"
	"go.fd.io/govpp/binapi/vxlan"
)

// anyID asks VPP to allocate an id (memif socket id) or means "all"
// in dumps.
const anyID = ^uint32(0)

// Client is one VPP connection's API, one small method per operation, for
// the node's VPP (vpp-adapter) and a pod's (pod-consumer apply). It holds
// govpp's generated RPC clients, so tests can inject any of them.
type Client struct {
	Memif      memif.RPCService
	AfPacket   af_packet.RPCService
	Vhost      vhost_user.RPCService
	Interfaces interfaces.RPCService
	L2         l2.RPCService
	IP         ip.RPCService
	ARP        arp.RPCService
	IP6ND      ip6_nd.RPCService
	VPE        vpe.RPCService
	VXLAN      vxlan.RPCService
	VLib       vlib.RPCService
}

// NewClient returns a Client whose services all use conn.
func NewClient(conn api.Connection) *Client {
	return &Client{
		Memif:      memif.NewServiceClient(conn),
		AfPacket:   af_packet.NewServiceClient(conn),
		Vhost:      vhost_user.NewServiceClient(conn),
		Interfaces: interfaces.NewServiceClient(conn),
		L2:         l2.NewServiceClient(conn),
		IP:         ip.NewServiceClient(conn),
		ARP:        arp.NewServiceClient(conn),
		IP6ND:      ip6_nd.NewServiceClient(conn),
		VPE:        vpe.NewServiceClient(conn),
		VXLAN:      vxlan.NewServiceClient(conn),
		VLib:       vlib.NewServiceClient(conn),
	}
}

// Version returns the running VPP's version string.
func (c *Client) Version(ctx context.Context) (string, error) {
	r, err := c.VPE.ShowVersion(ctx, &vpe.ShowVersion{})
	if err != nil {
		return "", Error("show_version", "", err)
	}
	return r.Version, nil
}

// Interface is what a dump tells about a VPP interface.
type Interface struct {
	SwIfIndex uint32
	Name      string
	DevType   string
	Tag       string
	MAC       string
	MTU       uint32 // L3 MTU (sw_interface_details.mtu[0])
	AdminUp   bool
	LinkUp    bool
	// Rewrite is the interface's ingress VLAN tag rewrite (l2vtr_get).
	Rewrite TagRewrite
}

// TagRewrite is an interface's VLAN tag rewrite as VPP reports it in
// sw_interface_details (vtr_op, vtr_push_dot1q, vtr_tag1).
type TagRewrite struct {
	Op    uint32 // L2_VTR_*: 0 disabled, VtrPush1 push one tag, ...
	Dot1q bool   // the pushed tag is 802.1Q (0x8100), not 802.1ad
	Tag1  uint32
}

// VtrPush1 is VPP's L2_VTR_PUSH_1 (src/vnet/l2/l2_vtr.h): push one tag on
// ingress and, derived by VPP, pop one on egress.
const VtrPush1 = 1

// AccessVLAN reports the VLAN an interface is an access port of: the
// 802.1Q tag its rewrite pushes, 0 when it pushes none.
func (r TagRewrite) AccessVLAN() uint32 {
	if r.Op == VtrPush1 && r.Dot1q {
		return r.Tag1
	}
	return 0
}

// InterfacesTagged lists the interfaces whose tag starts with prefix.
func (c *Client) InterfacesTagged(ctx context.Context, prefix string) ([]Interface, error) {
	return c.interfaces(ctx, anyID, prefix)
}

// Interface returns interface swIfIndex, found false when VPP has none.
// One message, whatever the number of interfaces: attach and replay use it
// where a full dump per attachment made 1000 attachments quadratic.
func (c *Client) Interface(ctx context.Context, swIfIndex uint32) (Interface, bool, error) {
	ifs, err := c.interfaces(ctx, swIfIndex, "")
	if err != nil || len(ifs) == 0 {
		return Interface{}, false, err
	}
	return ifs[0], true, nil
}

// drain reads the replies of a dump stream (opened with err) until its
// end, handing each to each.
func drain[D any](stream interface{ Recv() (D, error) }, err error, each func(D)) error {
	for err == nil {
		var d D
		if d, err = stream.Recv(); err == nil {
			each(d)
		}
	}
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

func (c *Client) interfaces(ctx context.Context, swIfIndex uint32, prefix string) ([]Interface, error) {
	var out []Interface
	stream, err := c.Interfaces.SwInterfaceDump(ctx, &interfaces.SwInterfaceDump{SwIfIndex: interface_types.InterfaceIndex(swIfIndex)})
	err = drain(stream, err, func(d *interfaces.SwInterfaceDetails) {
		if !strings.HasPrefix(d.Tag, prefix) {
			return
		}
		out = append(out, Interface{SwIfIndex: uint32(d.SwIfIndex), Name: d.InterfaceName,
			DevType: d.InterfaceDevType, Tag: d.Tag, MAC: d.L2Address.String(), MTU: l3MTU(d.Mtu),
			AdminUp: d.Flags&interface_types.IF_STATUS_API_FLAG_ADMIN_UP != 0,
			LinkUp:  d.Flags&interface_types.IF_STATUS_API_FLAG_LINK_UP != 0,
			Rewrite: TagRewrite{Op: d.VtrOp, Dot1q: d.VtrPushDot1q != 0, Tag1: d.VtrTag1}})
	})
	switch {
	case err != nil && swIfIndex != anyID && isGone(err):
		return nil, nil
	case err != nil:
		return nil, Error("sw_interface_dump", "", err)
	}
	return out, nil
}

// MemifSocketID returns the id under which filename is registered, if it is.
func (c *Client) MemifSocketID(ctx context.Context, filename string) (uint32, bool, error) {
	sockets, err := c.MemifSockets(ctx)
	if err != nil {
		return 0, false, err
	}
	id, found := sockets[filename]
	return id, found, nil
}

// MemifSockets returns every memif socket registration, filename to id (the
// first id when a filename is registered twice).
func (c *Client) MemifSockets(ctx context.Context) (map[string]uint32, error) {
	sockets := map[string]uint32{}
	stream, err := c.Memif.MemifSocketFilenameDump(ctx, &memif.MemifSocketFilenameDump{})
	err = drain(stream, err, func(d *memif.MemifSocketFilenameDetails) {
		if _, dup := sockets[d.SocketFilename]; !dup {
			sockets[d.SocketFilename] = d.SocketID
		}
	})
	if err != nil {
		return nil, Error("memif_socket_filename_dump", "memif sockets", err)
	}
	return sockets, nil
}

// AddMemifSocket registers filename and returns the id VPP allocated.
func (c *Client) AddMemifSocket(ctx context.Context, filename string) (uint32, error) {
	r, err := c.Memif.MemifSocketFilenameAddDelV2(ctx, &memif.MemifSocketFilenameAddDelV2{
		IsAdd: true, SocketID: anyID, SocketFilename: filename})
	if err != nil {
		return 0, Error("memif_socket_filename_add_del_v2", filename, err)
	}
	return r.SocketID, nil
}

// DeleteMemifSocket removes a socket registration; a missing one is success.
func (c *Client) DeleteMemifSocket(ctx context.Context, id uint32, filename string) error {
	_, err := c.Memif.MemifSocketFilenameAddDelV2(ctx, &memif.MemifSocketFilenameAddDelV2{SocketID: id, SocketFilename: filename})
	if err == nil || isGone(err) || errors.Is(err, api.INVALID_ARGUMENT) { // VPP says INVALID_ARGUMENT for an unknown id
		return nil
	}
	return Error("memif_socket_filename_add_del_v2 (delete)", fmt.Sprintf("socket id %d (%s)", id, filename), err)
}

// MemifSocketInUse reports whether any memif uses socket id.
func (c *Client) MemifSocketInUse(ctx context.Context, id uint32) (bool, error) {
	used := false
	stream, err := c.Memif.MemifDump(ctx, &memif.MemifDump{})
	err = drain(stream, err, func(d *memif.MemifDetails) { used = used || d.SocketID == id })
	if err != nil {
		return false, Error("memif_dump", "", err)
	}
	return used, nil
}

// MemifConfig is a memif to create.
type MemifConfig struct {
	SocketID   uint32
	ID         uint32
	Master     bool
	Mode       memif.MemifMode
	Queues     uint8
	RingSize   uint32
	BufferSize uint16
	Secret     string
	MAC        *ethernet_types.MacAddress
}

// CreateMemif creates a memif and returns its sw_if_index.
func (c *Client) CreateMemif(ctx context.Context, m MemifConfig) (uint32, error) {
	req := &memif.MemifCreateV2{
		Role: memif.MEMIF_ROLE_API_SLAVE, Mode: m.Mode, RxQueues: m.Queues, TxQueues: m.Queues,
		ID: m.ID, SocketID: m.SocketID, RingSize: m.RingSize, BufferSize: m.BufferSize, Secret: m.Secret,
	}
	if m.Master {
		req.Role = memif.MEMIF_ROLE_API_MASTER
	}
	if m.MAC != nil {
		req.HwAddr = *m.MAC
	}
	r, err := c.Memif.MemifCreateV2(ctx, req)
	if err != nil {
		return 0, Error("memif_create_v2", fmt.Sprintf("memif id %d on socket id %d", m.ID, m.SocketID), err)
	}
	return uint32(r.SwIfIndex), nil
}

// DeleteMemif deletes a memif; a missing one is success.
func (c *Client) DeleteMemif(ctx context.Context, swIfIndex uint32) error {
	_, err := c.Memif.MemifDelete(ctx, &memif.MemifDelete{SwIfIndex: interface_types.InterfaceIndex(swIfIndex)})
	return undoError("memif_delete", fmt.Sprintf("sw_if_index %d", swIfIndex), true, err)
}

// VhostConfig is a vhost-user interface to create.
type VhostConfig struct {
	Server bool // VPP creates and listens on Socket; false: VPP connects to it
	Socket string
	MAC    *ethernet_types.MacAddress
	Tag    string // set with the creation, so the interface is never untagged
}

// CreateVhost creates a vhost-user interface and returns its sw_if_index.
func (c *Client) CreateVhost(ctx context.Context, v VhostConfig) (uint32, error) {
	req := &vhost_user.CreateVhostUserIfV2{IsServer: v.Server, SockFilename: v.Socket, Tag: v.Tag}
	if v.MAC != nil {
		req.UseCustomMac, req.MacAddress = true, *v.MAC
	}
	r, err := c.Vhost.CreateVhostUserIfV2(ctx, req)
	if err != nil {
		return 0, Error("create_vhost_user_if_v2", v.Socket, err)
	}
	return uint32(r.SwIfIndex), nil
}

// DeleteVhost deletes a vhost-user interface; a missing one is success.
func (c *Client) DeleteVhost(ctx context.Context, swIfIndex uint32) error {
	_, err := c.Vhost.DeleteVhostUserIf(ctx, &vhost_user.DeleteVhostUserIf{SwIfIndex: interface_types.InterfaceIndex(swIfIndex)})
	return undoError("delete_vhost_user_if", fmt.Sprintf("sw_if_index %d", swIfIndex), true, err)
}

// SetTag tags an interface (VPP keeps at most 63 bytes).
func (c *Client) SetTag(ctx context.Context, swIfIndex uint32, tag string) error {
	_, err := c.Interfaces.SwInterfaceTagAddDel(ctx, &interfaces.SwInterfaceTagAddDel{
		IsAdd: true, SwIfIndex: interface_types.InterfaceIndex(swIfIndex), Tag: tag})
	return Error("sw_interface_tag_add_del", fmt.Sprintf("sw_if_index %d tag %q", swIfIndex, tag), err)
}

// AdminUp sets an interface administratively up.
func (c *Client) AdminUp(ctx context.Context, swIfIndex uint32) error {
	_, err := c.Interfaces.SwInterfaceSetFlags(ctx, &interfaces.SwInterfaceSetFlags{
		SwIfIndex: interface_types.InterfaceIndex(swIfIndex), Flags: interface_types.IF_STATUS_API_FLAG_ADMIN_UP})
	return Error("sw_interface_set_flags", fmt.Sprintf("sw_if_index %d", swIfIndex), err)
}

// BridgeDomain is what a dump tells about a bridge domain.
type BridgeDomain struct {
	ID      uint32
	Tag     string
	Members int
	Ports   []BridgePort
}

// BridgePort is one member of a bridge domain and its split-horizon group.
type BridgePort struct {
	SwIfIndex uint32
	SHG       uint8
}

// BridgeDomains dumps one bridge domain (id) or all (id ^0).
func (c *Client) BridgeDomains(ctx context.Context, id uint32) ([]BridgeDomain, error) {
	var out []BridgeDomain
	stream, err := c.L2.BridgeDomainDump(ctx, &l2.BridgeDomainDump{BdID: id, SwIfIndex: interface_types.InterfaceIndex(anyID)})
	err = drain(stream, err, func(d *l2.BridgeDomainDetails) {
		bd := BridgeDomain{ID: d.BdID, Tag: d.BdTag, Members: len(d.SwIfDetails)}
		for _, p := range d.SwIfDetails {
			bd.Ports = append(bd.Ports, BridgePort{SwIfIndex: uint32(p.SwIfIndex), SHG: p.Shg})
		}
		out = append(out, bd)
	})
	if err != nil {
		return nil, Error("bridge_domain_dump", fmt.Sprintf("bridge domain %d", id), err)
	}
	return out, nil
}

// AddBridgeDomain creates a learning, flooding, forwarding bridge domain
// tagged tag. It returns false if the domain already existed.
func (c *Client) AddBridgeDomain(ctx context.Context, id uint32, tag string) (bool, error) {
	_, err := c.L2.BridgeDomainAddDelV2(ctx, &l2.BridgeDomainAddDelV2{
		BdID: id, Flood: true, UuFlood: true, Forward: true, Learn: true, BdTag: tag, IsAdd: true})
	if errors.Is(err, api.BD_ALREADY_EXISTS) {
		return false, nil
	}
	if err != nil {
		return false, Error("bridge_domain_add_del_v2", fmt.Sprintf("bridge domain %d", id), err)
	}
	return true, nil
}

// DeleteBridgeDomain deletes a bridge domain; a missing one is success.
func (c *Client) DeleteBridgeDomain(ctx context.Context, id uint32) error {
	_, err := c.L2.BridgeDomainAddDelV2(ctx, &l2.BridgeDomainAddDelV2{BdID: id, IsAdd: false})
	return undoError("bridge_domain_add_del_v2 (delete)", fmt.Sprintf("bridge domain %d", id), true, err)
}

// SetBridge adds an interface to (enable) or removes it from a bridge domain.
func (c *Client) SetBridge(ctx context.Context, swIfIndex, bdID uint32, enable bool) error {
	_, err := c.L2.SwInterfaceSetL2Bridge(ctx, &l2.SwInterfaceSetL2Bridge{
		RxSwIfIndex: interface_types.InterfaceIndex(swIfIndex), BdID: bdID,
		PortType: l2.L2_API_PORT_TYPE_NORMAL, Enable: enable})
	return undoError("sw_interface_set_l2_bridge", fmt.Sprintf("sw_if_index %d bridge domain %d", swIfIndex, bdID), !enable, err)
}

// SetAccessVLAN makes an interface in a bridge domain an access port of
// VLAN vlan (enable) or an untagged port again: l2_interface_vlan_tag_rewrite
// push-1 dot1q <vlan> tags what the interface receives and pops the tag of
// what it sends, and l2_interface_efp_filter drops, before that pop, every
// frame whose outer tag is not <vlan> (untagged ones included). Without the
// filter a port would get every VLAN's frames with their tag popped.
// Disabling on an interface that is gone is success.
func (c *Client) SetAccessVLAN(ctx context.Context, swIfIndex, vlan uint32, enable bool) error {
	res := fmt.Sprintf("sw_if_index %d vlan %d", swIfIndex, vlan)
	vtr := &l2.L2InterfaceVlanTagRewrite{SwIfIndex: interface_types.InterfaceIndex(swIfIndex)} // L2_VTR_DISABLED
	if enable {
		vtr.VtrOp, vtr.PushDot1q, vtr.Tag1 = VtrPush1, 1, vlan
		if _, err := c.L2.L2InterfaceVlanTagRewrite(ctx, vtr); err != nil {
			return Error("l2_interface_vlan_tag_rewrite (push-1 dot1q)", res, err)
		}
		_, err := c.L2.L2InterfaceEfpFilter(ctx, &l2.L2InterfaceEfpFilter{SwIfIndex: vtr.SwIfIndex, EnableDisable: true})
		return Error("l2_interface_efp_filter (enable)", res, err)
	}
	// Reverse order: the filter goes first, then the rewrite.
	_, err := c.L2.L2InterfaceEfpFilter(ctx, &l2.L2InterfaceEfpFilter{SwIfIndex: vtr.SwIfIndex, EnableDisable: false})
	if err != nil && !isGone(err) {
		return Error("l2_interface_efp_filter (disable)", res, err)
	}
	_, err = c.L2.L2InterfaceVlanTagRewrite(ctx, vtr)
	if err != nil && !isGone(err) {
		return Error("l2_interface_vlan_tag_rewrite (disable)", res, err)
	}
	return nil
}

// AddTable creates (or confirms) an IP table.
func (c *Client) AddTable(ctx context.Context, id uint32, ipv6 bool, name string) error {
	_, err := c.IP.IPTableAddDel(ctx, &ip.IPTableAddDel{IsAdd: true, Table: ip.IPTable{TableID: id, IsIP6: ipv6, Name: name}})
	return Error("ip_table_add_del", fmt.Sprintf("table %d %q", id, name), err)
}

// SetTable binds an interface to an IP table.
func (c *Client) SetTable(ctx context.Context, swIfIndex, table uint32, ipv6 bool) error {
	_, err := c.Interfaces.SwInterfaceSetTable(ctx, &interfaces.SwInterfaceSetTable{
		SwIfIndex: interface_types.InterfaceIndex(swIfIndex), IsIPv6: ipv6, VrfID: table})
	return Error("sw_interface_set_table", fmt.Sprintf("sw_if_index %d table %d", swIfIndex, table), err)
}

// AddAddress puts an address (with its prefix length) on an interface.
func (c *Client) AddAddress(ctx context.Context, swIfIndex uint32, p netip.Prefix) error {
	_, err := c.Interfaces.SwInterfaceAddDelAddress(ctx, &interfaces.SwInterfaceAddDelAddress{
		SwIfIndex: interface_types.InterfaceIndex(swIfIndex), IsAdd: true,
		Prefix: ip_types.AddressWithPrefix(prefix(p))})
	return Error("sw_interface_add_del_address", fmt.Sprintf("%s on sw_if_index %d", p, swIfIndex), err)
}

// Route adds or deletes the attached host route to a pod address through
// an interface (no next-hop address). VPP turns it into an attached
// next hop with FIB_ROUTE_PATH_ATTACHED (fib_table_route_path_fixup), so
// the entry is flagged attached, which arp_reply requires of an ARP
// sender. Deleting a missing route is success.
func (c *Client) Route(ctx context.Context, add bool, table, swIfIndex uint32, pod netip.Addr) error {
	host := netip.PrefixFrom(pod, pod.BitLen())
	_, err := c.IP.IPRouteAddDel(ctx, &ip.IPRouteAddDel{IsAdd: add, Route: ip.IPRoute{
		TableID: table, Prefix: prefix(host), Paths: []fib_types.FibPath{fibPath(table, pod.Is6(), Path{SwIfIndex: swIfIndex})}}})
	return undoError("ip_route_add_del ("+verb(add)+")", fmt.Sprintf("%s via sw_if_index %d table %d", host, swIfIndex, table), !add, err)
}

// Path is one path of a route: out of SwIfIndex to the next hop Via, or
// attached (to the destination itself) when Via is the zero Addr.
type Path struct {
	SwIfIndex uint32
	Via       netip.Addr
}

func (p Path) String() string {
	if p.Via.IsValid() {
		return fmt.Sprintf("via %s sw_if_index %d", p.Via, p.SwIfIndex)
	}
	return fmt.Sprintf("via sw_if_index %d", p.SwIfIndex)
}

// AddRoute adds a path to the route to dst in table (0: the default
// table). Adding a path the route already has is success in VPP.
func (c *Client) AddRoute(ctx context.Context, table uint32, dst netip.Prefix, p Path) error {
	_, err := c.IP.IPRouteAddDel(ctx, &ip.IPRouteAddDel{IsAdd: true, Route: ip.IPRoute{
		TableID: table, Prefix: prefix(dst), Paths: []fib_types.FibPath{fibPath(table, dst.Addr().Is6(), p)}}})
	return Error("ip_route_add_del (add)", fmt.Sprintf("%s %s table %d", dst, p, table), err)
}

// RoutePaths returns the paths of the route to exactly dst in table, none
// when there is no such route (or table).
func (c *Client) RoutePaths(ctx context.Context, table uint32, dst netip.Prefix) ([]Path, error) {
	r, err := c.IP.IPRouteLookup(ctx, &ip.IPRouteLookup{TableID: table, Exact: 1, Prefix: prefix(dst)})
	if errors.Is(err, api.NO_SUCH_ENTRY) || errors.Is(err, api.NO_SUCH_FIB) {
		return nil, nil
	}
	if err != nil {
		return nil, Error("ip_route_lookup", fmt.Sprintf("%s table %d", dst, table), err)
	}
	out := make([]Path, 0, len(r.Route.Paths))
	for _, fp := range r.Route.Paths {
		var via netip.Addr
		if fp.Proto == fib_types.FIB_API_PATH_NH_PROTO_IP6 {
			via = netip.AddrFrom16(fp.Nh.Address.GetIP6())
		} else {
			via = netip.AddrFrom4(fp.Nh.Address.GetIP4())
		}
		if via.IsUnspecified() {
			via = netip.Addr{}
		}
		out = append(out, Path{SwIfIndex: fp.SwIfIndex, Via: via})
	}
	return out, nil
}

func fibPath(table uint32, ipv6 bool, p Path) fib_types.FibPath {
	fp := fib_types.FibPath{SwIfIndex: p.SwIfIndex, TableID: table, Weight: 1, Proto: fib_types.FIB_API_PATH_NH_PROTO_IP4,
		Type: fib_types.FIB_API_PATH_TYPE_NORMAL}
	if ipv6 {
		fp.Proto = fib_types.FIB_API_PATH_NH_PROTO_IP6
	}
	if p.Via.IsValid() {
		fp.Nh.Address = address(p.Via).Un
	}
	return fp
}

// CreateLoopback creates a loopback interface (VPP picks instance and MAC).
func (c *Client) CreateLoopback(ctx context.Context) (uint32, error) {
	r, err := c.Interfaces.CreateLoopback(ctx, &interfaces.CreateLoopback{})
	if err != nil {
		return 0, Error("create_loopback", "", err)
	}
	return uint32(r.SwIfIndex), nil
}

// DeleteLoopback deletes a loopback; a missing one is success.
func (c *Client) DeleteLoopback(ctx context.Context, swIfIndex uint32) error {
	_, err := c.Interfaces.DeleteLoopback(ctx, &interfaces.DeleteLoopback{SwIfIndex: interface_types.InterfaceIndex(swIfIndex)})
	return undoError("delete_loopback", fmt.Sprintf("sw_if_index %d", swIfIndex), true, err)
}

// SetUnnumbered makes swIfIndex use the addresses of ipSwIfIndex (add) or
// stops it. Removing it from an interface that is gone is success.
func (c *Client) SetUnnumbered(ctx context.Context, ipSwIfIndex, swIfIndex uint32, add bool) error {
	_, err := c.Interfaces.SwInterfaceSetUnnumbered(ctx, &interfaces.SwInterfaceSetUnnumbered{
		SwIfIndex: interface_types.InterfaceIndex(ipSwIfIndex), UnnumberedSwIfIndex: interface_types.InterfaceIndex(swIfIndex), IsAdd: add})
	return undoError("sw_interface_set_unnumbered ("+verb(add)+")", fmt.Sprintf("sw_if_index %d unnumbered to %d", swIfIndex, ipSwIfIndex), !add, err)
}

// Addresses lists the addresses of one family on an interface.
func (c *Client) Addresses(ctx context.Context, swIfIndex uint32, ipv6 bool) ([]netip.Prefix, error) {
	var out []netip.Prefix
	stream, err := c.IP.IPAddressDump(ctx, &ip.IPAddressDump{SwIfIndex: interface_types.InterfaceIndex(swIfIndex), IsIPv6: ipv6})
	err = drain(stream, err, func(d *ip.IPAddressDetails) {
		if p, err := netip.ParsePrefix(d.Prefix.String()); err == nil {
			out = append(out, p)
		}
	})
	if err != nil {
		return nil, Error("ip_address_dump", fmt.Sprintf("sw_if_index %d", swIfIndex), err)
	}
	return out, nil
}

// ProxyARPRange adds or deletes a proxy ARP range (low..high) in a table.
// Adding an existing range is success in VPP; deleting a missing one is
// success here.
func (c *Client) ProxyARPRange(ctx context.Context, add bool, table uint32, low, high netip.Addr) error {
	_, err := c.ARP.ProxyArpAddDel(ctx, &arp.ProxyArpAddDel{IsAdd: add, Proxy: arp.ProxyArp{
		TableID: table, Low: ip_types.IP4Address(low.As4()), Hi: ip_types.IP4Address(high.As4())}})
	return undoError("proxy_arp_add_del ("+verb(add)+")", fmt.Sprintf("%s-%s table %d", low, high, table), !add, err)
}

// ProxyARP enables or disables answering ARP for proxied ranges on an
// interface. Disabling it on an interface that is gone is success.
func (c *Client) ProxyARP(ctx context.Context, swIfIndex uint32, enable bool) error {
	_, err := c.ARP.ProxyArpIntfcEnableDisable(ctx, &arp.ProxyArpIntfcEnableDisable{
		SwIfIndex: interface_types.InterfaceIndex(swIfIndex), Enable: enable})
	return undoError("proxy_arp_intfc_enable_disable", fmt.Sprintf("sw_if_index %d enable %v", swIfIndex, enable), !enable, err)
}

// IP6 enables or disables IPv6 on an interface. VPP 25.10 does not enable
// it on an interface made unnumbered to one with IPv6 addresses: without
// it, ip6-input drops the pod's neighbor solicitations (multicast RPF).
// Disabling it on an interface that is gone is success.
func (c *Client) IP6(ctx context.Context, swIfIndex uint32, enable bool) error {
	_, err := c.IP.SwInterfaceIP6EnableDisable(ctx, &ip.SwInterfaceIP6EnableDisable{
		SwIfIndex: interface_types.InterfaceIndex(swIfIndex), Enable: enable})
	return undoError("sw_interface_ip6_enable_disable", fmt.Sprintf("sw_if_index %d enable %v", swIfIndex, enable), !enable, err)
}

// NDProxy enables or disables IPv6 ND proxy on an interface: VPP answers
// every neighbor solicitation with a global source that arrives on it
// (ip6-{unicast,multicast}-nd-proxy). Disabling it on an interface that is
// gone is success.
func (c *Client) NDProxy(ctx context.Context, swIfIndex uint32, enable bool) error {
	_, err := c.IP6ND.IP6ndProxyEnableDisable(ctx, &ip6_nd.IP6ndProxyEnableDisable{
		SwIfIndex: interface_types.InterfaceIndex(swIfIndex), IsEnable: enable})
	return undoError("ip6nd_proxy_enable_disable", fmt.Sprintf("sw_if_index %d enable %v", swIfIndex, enable), !enable, err)
}

// SetMTU sets the L3, IPv4, IPv6 and MPLS MTU of an interface
// (sw_interface_set_mtu: a software setting VPP accepts for every
// interface type; hw_interface_set_mtu needs an ethernet interface whose
// driver can change its frame size).
func (c *Client) SetMTU(ctx context.Context, swIfIndex, mtu uint32) error {
	_, err := c.Interfaces.SwInterfaceSetMtu(ctx, &interfaces.SwInterfaceSetMtu{
		SwIfIndex: interface_types.InterfaceIndex(swIfIndex), Mtu: []uint32{mtu, mtu, mtu, mtu}})
	return Error("sw_interface_set_mtu", fmt.Sprintf("sw_if_index %d mtu %d", swIfIndex, mtu), err)
}

func l3MTU(mtu []uint32) uint32 {
	if len(mtu) == 0 {
		return 0
	}
	return mtu[0]
}

func verb(add bool) string {
	if add {
		return "add"
	}
	return "delete"
}

func address(a netip.Addr) ip_types.Address {
	if a.Is4() {
		return ip_types.Address{Af: ip_types.ADDRESS_IP4, Un: ip_types.AddressUnionIP4(a.As4())}
	}
	return ip_types.Address{Af: ip_types.ADDRESS_IP6, Un: ip_types.AddressUnionIP6(a.As16())}
}

func prefix(p netip.Prefix) ip_types.Prefix {
	return ip_types.Prefix{Address: address(p.Addr()), Len: uint8(p.Bits())}
}
