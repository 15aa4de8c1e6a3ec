// Package vpptest provides FakeVPP: govpp's mock adapter (adapter/mock)
// with a small stateful VPP behind it, so code on libs/vpp (vpp-adapter,
// pod-consumer apply) runs against real govpp connections, streams and
// codecs, and tests can assert the exact binary-API message sequence. It
// is the one fake VPP of the tree; real VPPs are vppproc's.
package vpptest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.fd.io/govpp/adapter"
	"go.fd.io/govpp/adapter/mock"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/arp"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/ip6_nd"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/vhost_user"
	"go.fd.io/govpp/binapi/vlib"
	"go.fd.io/govpp/binapi/vpe"
	"go.fd.io/govpp/binapi/vxlan"
	"go.fd.io/govpp/codec"
	"go.fd.io/govpp/core"

	"usrsp.dev/libs/vpp"
)

// Call is one request the fake received.
type Call struct {
	Name string
	Msg  api.Message
}

// Interface is an interface in the fake VPP.
type Interface struct {
	Name, DevType, Tag string
	Up                 bool
	BD                 uint32
	Table              uint32
	Addresses          []string
	MemifSocket        uint32
	MemifID            uint32
	MTU                uint32
	UnnumberedTo       uint32 // sw_if_index whose addresses it uses; 0: none
	ProxyARP, NDProxy  bool
	IP6                bool // sw_interface_ip6_enable_disable
	// VtrOp, VtrDot1q and VtrTag1 are the VLAN tag rewrite
	// (l2_interface_vlan_tag_rewrite), EFP the egress filter.
	VtrOp, VtrTag1 uint32
	VtrDot1q       bool
	EFP            bool
	// Tunnel is set on a VXLAN tunnel (vxlan_add_del_tunnel_v3).
	Tunnel *vpp.Tunnel
	L3     bool // the tunnel's is_l3
}

// BD is a bridge domain in the fake VPP.
type BD struct {
	Tag     string
	Members map[uint32]bool
	SHG     map[uint32]uint8 // members' split-horizon groups (0 left out)
}

// FakeVPP is a VPP for tests. The zero value is not usable; use New.
type FakeVPP struct {
	*mock.VppAdapter

	mu        sync.Mutex
	cb        adapter.MsgCallback
	types     map[string]reflect.Type
	calls     []Call
	fail      map[string]int32
	failPings int
	peerDown  bool

	Ifs       map[uint32]*Interface
	nextIf    uint32
	Sockets   map[uint32]string
	nextSock  uint32
	BDs       map[uint32]*BD
	Routes    map[string]bool       // "table prefix via sw_if_index"
	routes    map[string]ip.IPRoute // by the Routes key: for ip_route_lookup
	Tables    map[string]bool       // "table/ip6"
	Proxies   map[string]bool       // proxy ARP ranges, "table low-high"
	vhostNext int
	loopNext  int
	vxlanNext int
	nodeNext  map[string]uint32 // add_node_next arcs, "node next"
}

var _ adapter.VppAPI = (*FakeVPP)(nil)

// New returns a fake VPP that has just started: it has local0 and the
// default memif socket 0, nothing else.
func New() *FakeVPP {
	f := &FakeVPP{VppAdapter: mock.NewVppAdapter(), types: map[string]reflect.Type{}, fail: map[string]int32{}}
	for _, m := range allMessages() {
		f.types[m.GetMessageName()] = reflect.TypeOf(m).Elem()
	}
	f.resetLocked()
	return f
}

// Dial connects a govpp client to f (one session, no reconnect loop);
// t.Cleanup disconnects.
func (f *FakeVPP) Dial(t testing.TB) (*core.Connection, *vpp.Client) {
	t.Helper()
	conn, err := core.Connect(f)
	require.NoError(t, err)
	t.Cleanup(conn.Disconnect)
	return conn, vpp.NewClient(conn)
}

func (f *FakeVPP) resetLocked() {
	f.Ifs = map[uint32]*Interface{0: {Name: "local0", DevType: "local"}}
	f.nextIf = 1
	f.Sockets = map[uint32]string{0: "/run/vpp/memif.sock"}
	f.nextSock = 1
	f.BDs = map[uint32]*BD{}
	f.Routes = map[string]bool{}
	f.routes = map[string]ip.IPRoute{}
	f.Tables = map[string]bool{}
	f.Proxies = map[string]bool{}
	f.vhostNext, f.loopNext, f.vxlanNext = 0, 0, 0
	f.nodeNext = nil
}

// Restart makes the fake behave like a VPP that was restarted: all
// configuration is lost and the next liveness probe fails, so a
// connection loop (vpp.Loop) reconnects.
func (f *FakeVPP) Restart() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resetLocked()
	f.failPings = 1
}

// Wipe drops all configuration like a restart, without failing the next
// liveness probe: for tests that hand the code a new session themselves.
func (f *FakeVPP) Wipe() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resetLocked()
}

// SetPeerUp says whether the other end of every interface is there (it
// is at first): an admin-up interface has its link up only then.
func (f *FakeVPP) SetPeerUp(up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peerDown = !up
}

// FailNext makes the next request called name answer with retval.
func (f *FakeVPP) FailNext(name string, retval api.VPPApiError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[name] = int32(retval)
}

// Calls returns the names of the requests received so far (control pings,
// which end every dump and probe liveness, left out) and clears the log.
func (f *FakeVPP) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	names := make([]string, len(f.calls))
	for i, c := range f.calls {
		names[i] = c.Name
	}
	f.calls = nil
	return names
}

// Messages returns the requests received so far without clearing the log.
func (f *FakeVPP) Messages() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// AddInterface adds an interface the code under test did not create.
func (f *FakeVPP) AddInterface(i Interface) uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	idx := f.nextIf
	f.nextIf++
	f.Ifs[idx] = &i
	return idx
}

// AddBD adds a bridge domain the code under test did not create.
func (f *FakeVPP) AddBD(id uint32, tag string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.BDs[id] = &BD{Tag: tag, Members: map[uint32]bool{}, SHG: map[uint32]uint8{}}
}

// Snapshot returns a copy of the interfaces by name, for assertions.
func (f *FakeVPP) Snapshot() map[string]Interface {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]Interface{}
	for _, i := range f.Ifs {
		out[i.Name] = *i
	}
	return out
}

// State returns sorted views of sockets, bridge domains and routes.
func (f *FakeVPP) State() (sockets []string, bds []string, routes []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, s := range f.Sockets {
		sockets = append(sockets, fmt.Sprintf("%d=%s", id, s))
	}
	for id, bd := range f.BDs {
		bds = append(bds, fmt.Sprintf("%d tag=%q members=%d", id, bd.Tag, len(bd.Members)))
	}
	for r := range f.Routes {
		routes = append(routes, r)
	}
	sort.Strings(sockets)
	sort.Strings(bds)
	sort.Strings(routes)
	return sockets, bds, routes
}

// ProxyRanges returns the proxy ARP ranges, sorted.
func (f *FakeVPP) ProxyRanges() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for r := range f.Proxies {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// SetMsgCallback keeps govpp's callback so the fake can send several
// replies (dump details) to one request.
func (f *FakeVPP) SetMsgCallback(cb adapter.MsgCallback) {
	f.mu.Lock()
	f.cb = cb
	f.mu.Unlock()
	f.VppAdapter.SetMsgCallback(cb)
}

// SendMsg answers one request like VPP would.
func (f *FakeVPP) SendMsg(clientID uint32, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	name, ok := f.GetMsgNameByID(binary.BigEndian.Uint16(data[0:2]))
	if !ok {
		return fmt.Errorf("fake vpp: unknown message id %d", binary.BigEndian.Uint16(data[0:2]))
	}
	if name == "control_ping" {
		if f.failPings > 0 {
			f.failPings--
			return errors.New("fake vpp: restarting")
		}
		return f.reply(clientID, &memclnt.ControlPingReply{})
	}
	t := f.types[name]
	if t == nil {
		return fmt.Errorf("fake vpp: no handler for %s", name)
	}
	req := reflect.New(t).Interface().(api.Message)
	if err := codec.DefaultCodec.DecodeMsg(data, req); err != nil {
		return err
	}
	f.calls = append(f.calls, Call{Name: name, Msg: req})
	if rv, ok := f.fail[name]; ok {
		delete(f.fail, name)
		return f.reply(clientID, retvalReply(req, rv))
	}
	return f.reply(clientID, f.handle(req)...)
}

func (f *FakeVPP) reply(clientID uint32, msgs ...api.Message) error {
	for _, m := range msgs {
		b, err := f.ReplyBytes(mock.MessageDTO{ClientID: clientID}, m)
		if err != nil {
			return err
		}
		id, _ := f.GetMsgID(m.GetMessageName(), m.GetCrcString())
		f.cb(id, b)
	}
	return nil
}

// retvalReply is the reply type of req with Retval set.
func retvalReply(req api.Message, rv int32) api.Message {
	name := req.GetMessageName() + "_reply"
	for _, m := range allMessages() {
		if m.GetMessageName() == name {
			r := reflect.New(reflect.TypeOf(m).Elem())
			r.Elem().FieldByName("Retval").SetInt(int64(rv))
			return r.Interface().(api.Message)
		}
	}
	panic("fake vpp: no reply type for " + req.GetMessageName())
}

func (f *FakeVPP) newIf(i *Interface) uint32 {
	idx := f.nextIf
	f.nextIf++
	f.Ifs[idx] = i
	return idx
}

// handle applies one request and returns the replies (details for dumps).
func (f *FakeVPP) handle(req api.Message) []api.Message {
	switch m := req.(type) {
	case *vpe.ShowVersion:
		return []api.Message{&vpe.ShowVersionReply{Program: "vpe", Version: "25.10-fake"}}
	case *memif.MemifSocketFilenameDump:
		var out []api.Message
		for _, id := range sortedKeys(f.Sockets) {
			out = append(out, &memif.MemifSocketFilenameDetails{SocketID: id, SocketFilename: f.Sockets[id]})
		}
		return out
	case *memif.MemifSocketFilenameAddDelV2:
		if !m.IsAdd {
			if _, ok := f.Sockets[m.SocketID]; !ok || m.SocketID == 0 {
				return []api.Message{&memif.MemifSocketFilenameAddDelV2Reply{Retval: int32(api.INVALID_ARGUMENT)}}
			}
			for _, i := range f.Ifs {
				if i.DevType == "memif" && i.MemifSocket == m.SocketID {
					return []api.Message{&memif.MemifSocketFilenameAddDelV2Reply{Retval: int32(api.UNEXPECTED_INTF_STATE)}}
				}
			}
			delete(f.Sockets, m.SocketID)
			return []api.Message{&memif.MemifSocketFilenameAddDelV2Reply{}}
		}
		id := m.SocketID
		if id == ^uint32(0) {
			id = f.nextSock
			f.nextSock++
		}
		f.Sockets[id] = m.SocketFilename
		return []api.Message{&memif.MemifSocketFilenameAddDelV2Reply{SocketID: id}}
	case *memif.MemifCreateV2:
		if _, ok := f.Sockets[m.SocketID]; !ok {
			return []api.Message{&memif.MemifCreateV2Reply{Retval: int32(api.INVALID_ARGUMENT)}}
		}
		for _, i := range f.Ifs {
			if i.DevType == "memif" && i.MemifSocket == m.SocketID && i.MemifID == m.ID {
				return []api.Message{&memif.MemifCreateV2Reply{Retval: int32(api.SUBIF_ALREADY_EXISTS)}}
			}
		}
		idx := f.newIf(&Interface{Name: fmt.Sprintf("memif%d/%d", m.SocketID, m.ID), DevType: "memif", MemifSocket: m.SocketID, MemifID: m.ID})
		return []api.Message{&memif.MemifCreateV2Reply{SwIfIndex: interface_types.InterfaceIndex(idx)}}
	case *memif.MemifDelete:
		if i, ok := f.Ifs[uint32(m.SwIfIndex)]; !ok || i.DevType != "memif" {
			return []api.Message{&memif.MemifDeleteReply{Retval: int32(api.INVALID_SW_IF_INDEX)}}
		}
		f.deleteIf(uint32(m.SwIfIndex))
		return []api.Message{&memif.MemifDeleteReply{}}
	case *memif.MemifDump:
		var out []api.Message
		for _, idx := range sortedKeys(f.Ifs) {
			if i := f.Ifs[idx]; i.DevType == "memif" {
				out = append(out, &memif.MemifDetails{SwIfIndex: interface_types.InterfaceIndex(idx), ID: i.MemifID, SocketID: i.MemifSocket, IfName: i.Name})
			}
		}
		return out
	case *vhost_user.CreateVhostUserIfV2:
		idx := f.newIf(&Interface{Name: fmt.Sprintf("VirtualEthernet0/0/%d", f.vhostNext), DevType: "VhostEthernet", Tag: m.Tag})
		f.vhostNext++
		return []api.Message{&vhost_user.CreateVhostUserIfV2Reply{SwIfIndex: interface_types.InterfaceIndex(idx)}}
	case *vhost_user.DeleteVhostUserIf:
		if i, ok := f.Ifs[uint32(m.SwIfIndex)]; !ok || i.DevType != "VhostEthernet" {
			return []api.Message{&vhost_user.DeleteVhostUserIfReply{Retval: int32(api.INVALID_SW_IF_INDEX)}}
		}
		f.deleteIf(uint32(m.SwIfIndex))
		return []api.Message{&vhost_user.DeleteVhostUserIfReply{}}
	case *interfaces.SwInterfaceDump:
		var out []api.Message
		for _, idx := range sortedKeys(f.Ifs) {
			if m.SwIfIndex != ^interface_types.InterfaceIndex(0) && uint32(m.SwIfIndex) != idx {
				continue
			}
			i := f.Ifs[idx]
			d := &interfaces.SwInterfaceDetails{SwIfIndex: interface_types.InterfaceIndex(idx),
				InterfaceName: i.Name, InterfaceDevType: i.DevType, Tag: i.Tag, Mtu: []uint32{i.MTU, i.MTU, i.MTU, i.MTU},
				VtrOp: i.VtrOp, VtrPushDot1q: boolU32(i.VtrDot1q), VtrTag1: i.VtrTag1}
			if i.Up {
				d.Flags |= interface_types.IF_STATUS_API_FLAG_ADMIN_UP
				if !f.peerDown {
					d.Flags |= interface_types.IF_STATUS_API_FLAG_LINK_UP
				}
			}
			out = append(out, d)
		}
		return out
	case *interfaces.SwInterfaceTagAddDel:
		i, ok := f.Ifs[uint32(m.SwIfIndex)]
		if !ok {
			return []api.Message{&interfaces.SwInterfaceTagAddDelReply{Retval: int32(api.INVALID_SW_IF_INDEX)}}
		}
		i.Tag = m.Tag
		if !m.IsAdd {
			i.Tag = ""
		}
		return []api.Message{&interfaces.SwInterfaceTagAddDelReply{}}
	case *interfaces.SwInterfaceSetFlags:
		i, ok := f.Ifs[uint32(m.SwIfIndex)]
		if !ok {
			return []api.Message{&interfaces.SwInterfaceSetFlagsReply{Retval: int32(api.INVALID_SW_IF_INDEX)}}
		}
		i.Up = m.Flags&interface_types.IF_STATUS_API_FLAG_ADMIN_UP != 0
		return []api.Message{&interfaces.SwInterfaceSetFlagsReply{}}
	case *interfaces.SwInterfaceAddDelAddress:
		i, ok := f.Ifs[uint32(m.SwIfIndex)]
		if !ok {
			return []api.Message{&interfaces.SwInterfaceAddDelAddressReply{Retval: int32(api.INVALID_SW_IF_INDEX)}}
		}
		// Like VPP: no overlapping prefix on two interfaces of one table.
		add := netip.MustParsePrefix(m.Prefix.String())
		for idx, o := range f.Ifs {
			for _, x := range o.Addresses {
				have := netip.MustParsePrefix(x)
				switch {
				case idx == uint32(m.SwIfIndex) && have == add:
					return []api.Message{&interfaces.SwInterfaceAddDelAddressReply{Retval: int32(api.DUPLICATE_IF_ADDRESS)}}
				case idx != uint32(m.SwIfIndex) && o.Table == i.Table && have.Overlaps(add):
					return []api.Message{&interfaces.SwInterfaceAddDelAddressReply{Retval: int32(api.ADDRESS_IN_USE)}}
				}
			}
		}
		i.Addresses = append(i.Addresses, add.String())
		return []api.Message{&interfaces.SwInterfaceAddDelAddressReply{}}
	case *ip.IPAddressDump:
		i, ok := f.Ifs[uint32(m.SwIfIndex)]
		if !ok {
			return nil
		}
		var out []api.Message
		for _, a := range i.Addresses {
			p := netip.MustParsePrefix(a)
			if p.Addr().Is6() != m.IsIPv6 {
				continue
			}
			wp, _ := ip_types.ParseAddressWithPrefix(a)
			out = append(out, &ip.IPAddressDetails{SwIfIndex: m.SwIfIndex, Prefix: wp})
		}
		return out
	case *interfaces.CreateLoopback:
		idx := f.newIf(&Interface{Name: fmt.Sprintf("loop%d", f.loopNext), DevType: "Loopback"})
		f.loopNext++
		return []api.Message{&interfaces.CreateLoopbackReply{SwIfIndex: interface_types.InterfaceIndex(idx)}}
	case *interfaces.DeleteLoopback:
		if i, ok := f.Ifs[uint32(m.SwIfIndex)]; !ok || i.DevType != "Loopback" {
			return []api.Message{&interfaces.DeleteLoopbackReply{Retval: int32(api.INVALID_SW_IF_INDEX)}}
		}
		f.deleteIf(uint32(m.SwIfIndex))
		return []api.Message{&interfaces.DeleteLoopbackReply{}}
	case *interfaces.SwInterfaceSetUnnumbered:
		i, ok := f.Ifs[uint32(m.UnnumberedSwIfIndex)]
		if !ok {
			return []api.Message{&interfaces.SwInterfaceSetUnnumberedReply{Retval: int32(api.INVALID_SW_IF_INDEX_2)}}
		}
		if _, ok := f.Ifs[uint32(m.SwIfIndex)]; !ok && m.IsAdd {
			return []api.Message{&interfaces.SwInterfaceSetUnnumberedReply{Retval: int32(api.INVALID_SW_IF_INDEX)}}
		}
		i.UnnumberedTo = 0
		if m.IsAdd {
			i.UnnumberedTo = uint32(m.SwIfIndex)
		}
		return []api.Message{&interfaces.SwInterfaceSetUnnumberedReply{}}
	case *interfaces.SwInterfaceSetMtu:
		i, ok := f.Ifs[uint32(m.SwIfIndex)]
		if !ok {
			return []api.Message{&interfaces.SwInterfaceSetMtuReply{Retval: int32(api.INVALID_SW_IF_INDEX)}}
		}
		i.MTU = m.Mtu[0]
		return []api.Message{&interfaces.SwInterfaceSetMtuReply{}}
	case *arp.ProxyArpAddDel:
		key := fmt.Sprintf("table %d %s-%s", m.Proxy.TableID, m.Proxy.Low, m.Proxy.Hi)
		if !m.IsAdd {
			if !f.Proxies[key] {
				return []api.Message{&arp.ProxyArpAddDelReply{Retval: int32(api.NO_SUCH_ENTRY)}}
			}
			delete(f.Proxies, key)
			return []api.Message{&arp.ProxyArpAddDelReply{}}
		}
		f.Proxies[key] = true
		return []api.Message{&arp.ProxyArpAddDelReply{}}
	case *arp.ProxyArpIntfcEnableDisable:
		i, ok := f.Ifs[uint32(m.SwIfIndex)]
		if !ok {
			return []api.Message{&arp.ProxyArpIntfcEnableDisableReply{Retval: int32(api.INVALID_SW_IF_INDEX)}}
		}
		i.ProxyARP = m.Enable
		return []api.Message{&arp.ProxyArpIntfcEnableDisableReply{}}
	case *ip.SwInterfaceIP6EnableDisable:
		i, ok := f.Ifs[uint32(m.SwIfIndex)]
		if !ok {
			return []api.Message{&ip.SwInterfaceIP6EnableDisableReply{Retval: int32(api.INVALID_SW_IF_INDEX)}}
		}
		i.IP6 = m.Enable
		return []api.Message{&ip.SwInterfaceIP6EnableDisableReply{}}
	case *ip6_nd.IP6ndProxyEnableDisable:
		i, ok := f.Ifs[uint32(m.SwIfIndex)]
		if !ok {
			return []api.Message{&ip6_nd.IP6ndProxyEnableDisableReply{Retval: int32(api.INVALID_SW_IF_INDEX)}}
		}
		i.NDProxy = m.IsEnable
		return []api.Message{&ip6_nd.IP6ndProxyEnableDisableReply{}}
	case *interfaces.SwInterfaceSetTable:
		if i, ok := f.Ifs[uint32(m.SwIfIndex)]; ok {
			i.Table = m.VrfID
		}
		return []api.Message{&interfaces.SwInterfaceSetTableReply{}}
	case *ip.IPTableAddDel:
		f.Tables[fmt.Sprintf("%d/%v", m.Table.TableID, m.Table.IsIP6)] = m.IsAdd
		return []api.Message{&ip.IPTableAddDelReply{}}
	case *ip.IPRouteAddDel:
		key := fmt.Sprintf("table %d %s via %d", m.Route.TableID, m.Route.Prefix, m.Route.Paths[0].SwIfIndex)
		if !m.IsAdd {
			if !f.Routes[key] {
				return []api.Message{&ip.IPRouteAddDelReply{Retval: int32(api.NO_SUCH_ENTRY)}}
			}
			delete(f.Routes, key)
			delete(f.routes, key)
			return []api.Message{&ip.IPRouteAddDelReply{}}
		}
		f.Routes[key] = true
		f.routes[key] = m.Route
		return []api.Message{&ip.IPRouteAddDelReply{}}
	case *ip.IPRouteLookup:
		// Exact lookups only: the paths of every route to the prefix.
		r := ip.IPRoute{TableID: m.TableID, Prefix: m.Prefix}
		for _, have := range f.routes {
			if have.TableID == m.TableID && have.Prefix == m.Prefix {
				r.Paths = append(r.Paths, have.Paths...)
			}
		}
		if len(r.Paths) == 0 {
			return []api.Message{&ip.IPRouteLookupReply{Retval: int32(api.NO_SUCH_ENTRY)}}
		}
		r.NPaths = uint8(len(r.Paths))
		return []api.Message{&ip.IPRouteLookupReply{Route: r}}
	case *l2.BridgeDomainDump:
		var out []api.Message
		for _, id := range sortedKeys(f.BDs) {
			if m.BdID != ^uint32(0) && m.BdID != id {
				continue
			}
			bd := f.BDs[id]
			d := &l2.BridgeDomainDetails{BdID: id, BdTag: bd.Tag}
			for _, sw := range sortedKeys(bd.Members) {
				d.SwIfDetails = append(d.SwIfDetails, l2.BridgeDomainSwIf{SwIfIndex: interface_types.InterfaceIndex(sw), Shg: bd.SHG[sw]})
			}
			d.NSwIfs = uint32(len(d.SwIfDetails))
			out = append(out, d)
		}
		return out
	case *l2.BridgeDomainAddDelV2:
		if m.IsAdd {
			if _, ok := f.BDs[m.BdID]; ok {
				return []api.Message{&l2.BridgeDomainAddDelV2Reply{Retval: int32(api.BD_ALREADY_EXISTS)}}
			}
			f.BDs[m.BdID] = &BD{Tag: m.BdTag, Members: map[uint32]bool{}, SHG: map[uint32]uint8{}}
			return []api.Message{&l2.BridgeDomainAddDelV2Reply{BdID: m.BdID}}
		}
		bd, ok := f.BDs[m.BdID]
		if !ok {
			return []api.Message{&l2.BridgeDomainAddDelV2Reply{Retval: int32(api.NO_SUCH_ENTRY)}}
		}
		if len(bd.Members) > 0 {
			return []api.Message{&l2.BridgeDomainAddDelV2Reply{Retval: int32(api.BD_IN_USE)}}
		}
		delete(f.BDs, m.BdID)
		return []api.Message{&l2.BridgeDomainAddDelV2Reply{}}
	case *l2.L2InterfaceVlanTagRewrite:
		i, ok := f.Ifs[uint32(m.SwIfIndex)]
		if !ok {
			return []api.Message{&l2.L2InterfaceVlanTagRewriteReply{Retval: int32(api.INVALID_SW_IF_INDEX)}}
		}
		if i.DevType == "Loopback" || i.DevType == "local" {
			// Like l2vtr_configure: only ethernet-class interfaces (a
			// loopback is one in VPP, but the adapter never tags it).
			return []api.Message{&l2.L2InterfaceVlanTagRewriteReply{Retval: int32(api.INVALID_INTERFACE)}}
		}
		i.VtrOp, i.VtrDot1q, i.VtrTag1 = m.VtrOp, m.PushDot1q != 0, m.Tag1
		if m.VtrOp == 0 {
			i.VtrDot1q, i.VtrTag1 = false, 0
		}
		return []api.Message{&l2.L2InterfaceVlanTagRewriteReply{}}
	case *l2.L2InterfaceEfpFilter:
		i, ok := f.Ifs[uint32(m.SwIfIndex)]
		if !ok {
			return []api.Message{&l2.L2InterfaceEfpFilterReply{Retval: int32(api.INVALID_SW_IF_INDEX)}}
		}
		i.EFP = m.EnableDisable
		return []api.Message{&l2.L2InterfaceEfpFilterReply{}}
	case *l2.SwInterfaceSetL2Bridge:
		i, ok := f.Ifs[uint32(m.RxSwIfIndex)]
		bd, bdOK := f.BDs[m.BdID]
		if !ok || (m.Enable && !bdOK) {
			return []api.Message{&l2.SwInterfaceSetL2BridgeReply{Retval: int32(api.NO_SUCH_ENTRY)}}
		}
		if old, ok := f.BDs[i.BD]; ok && i.BD != 0 { // like VPP: one bridge domain per interface
			delete(old.Members, uint32(m.RxSwIfIndex))
			delete(old.SHG, uint32(m.RxSwIfIndex))
		}
		i.BD = 0
		if m.Enable {
			bd.Members[uint32(m.RxSwIfIndex)] = true
			if m.Shg != 0 {
				bd.SHG[uint32(m.RxSwIfIndex)] = m.Shg
			}
			i.BD = m.BdID
		}
		return []api.Message{&l2.SwInterfaceSetL2BridgeReply{}}
	}
	if out := f.handleOverlay(req); out != nil {
		return out
	}
	panic(fmt.Sprintf("fake vpp: unhandled %T", req))
}

func allMessages() []api.Message { return append(vpp.Messages(), vpp.OverlayMessages()...) }

// decapNext are the graph arcs of vxlan4-input the fake knows, like VPP's
// (error-drop 0, l2-input 1); add_node_next adds more.
var decapNext = map[string]uint32{"error-drop": 0, "l2-input": 1}

// handleOverlay handles the overlay's messages (vpp.OverlayMessages), nil
// for any other.
func (f *FakeVPP) handleOverlay(req api.Message) []api.Message {
	switch m := req.(type) {
	case *vlib.AddNodeNext:
		key := m.NodeName + " " + m.NextName
		if f.nodeNext == nil {
			f.nodeNext = map[string]uint32{}
		}
		n, ok := f.nodeNext[key]
		if !ok {
			if n, ok = decapNext[m.NextName]; !ok {
				n = uint32(len(decapNext) + len(f.nodeNext))
			}
			f.nodeNext[key] = n
		}
		return []api.Message{&vlib.AddNodeNextReply{NextIndex: n}}
	case *vxlan.VxlanAddDelTunnelV3:
		src, dst := netip.MustParseAddr(m.SrcAddress.String()), netip.MustParseAddr(m.DstAddress.String())
		for idx, i := range f.Ifs {
			if t := i.Tunnel; t != nil && t.Src == src && t.Dst == dst && t.VNI == m.Vni && t.DstPort == m.DstPort {
				if m.IsAdd {
					return []api.Message{&vxlan.VxlanAddDelTunnelV3Reply{Retval: int32(api.TUNNEL_EXIST)}}
				}
				f.deleteIf(idx)
				return []api.Message{&vxlan.VxlanAddDelTunnelV3Reply{}}
			}
		}
		if !m.IsAdd {
			return []api.Message{&vxlan.VxlanAddDelTunnelV3Reply{Retval: int32(api.NO_SUCH_ENTRY)}}
		}
		t := &vpp.Tunnel{Src: src, Dst: dst, SrcPort: m.SrcPort, DstPort: m.DstPort, VNI: m.Vni, DecapNextIndex: m.DecapNextIndex}
		idx := f.newIf(&Interface{Name: fmt.Sprintf("vxlan_tunnel%d", f.vxlanNext), DevType: "VXLAN", Tunnel: t, L3: m.IsL3})
		t.SwIfIndex = idx
		f.vxlanNext++
		return []api.Message{&vxlan.VxlanAddDelTunnelV3Reply{SwIfIndex: interface_types.InterfaceIndex(idx)}}
	case *vxlan.VxlanTunnelV2Dump:
		out := []api.Message{} // non-nil: handled, even when empty
		for _, idx := range sortedKeys(f.Ifs) {
			t := f.Ifs[idx].Tunnel
			if t == nil {
				continue
			}
			sa, _ := ip_types.ParseAddress(t.Src.String())
			da, _ := ip_types.ParseAddress(t.Dst.String())
			out = append(out, &vxlan.VxlanTunnelV2Details{SwIfIndex: interface_types.InterfaceIndex(idx), SrcAddress: sa, DstAddress: da,
				SrcPort: t.SrcPort, DstPort: t.DstPort, Vni: t.VNI, DecapNextIndex: t.DecapNextIndex,
				McastSwIfIndex: ^interface_types.InterfaceIndex(0)})
		}
		return out
	case *interfaces.SwInterfaceGetTable:
		i, ok := f.Ifs[uint32(m.SwIfIndex)]
		if !ok {
			return []api.Message{&interfaces.SwInterfaceGetTableReply{Retval: int32(api.INVALID_SW_IF_INDEX)}}
		}
		return []api.Message{&interfaces.SwInterfaceGetTableReply{VrfID: i.Table}}
	case *ip.IPRouteDump:
		out := []api.Message{}
		keys := make([]string, 0, len(f.routes))
		for k := range f.routes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			r := f.routes[k]
			if r.TableID == m.Table.TableID && (r.Prefix.Address.Af == ip_types.ADDRESS_IP6) == m.Table.IsIP6 {
				r.NPaths = uint8(len(r.Paths))
				out = append(out, &ip.IPRouteDetails{Route: r})
			}
		}
		return out
	}
	return nil
}

// deleteIf removes an interface and everything VPP removes with it.
func (f *FakeVPP) deleteIf(idx uint32) {
	for _, bd := range f.BDs {
		delete(bd.Members, idx)
		delete(bd.SHG, idx)
	}
	suffix := fmt.Sprintf(" via %d", idx)
	for r := range f.Routes {
		if strings.HasSuffix(r, suffix) {
			delete(f.Routes, r)
			delete(f.routes, r)
		}
	}
	for _, i := range f.Ifs {
		if i.UnnumberedTo == idx {
			i.UnnumberedTo = 0
		}
	}
	delete(f.Ifs, idx)
}

func boolU32(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// SetRewrite changes an interface's VLAN tag rewrite behind the back of
// the code under test (an operator's CLI, say), for CHECK tests.
func (f *FakeVPP) SetRewrite(name string, op, tag1 uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, i := range f.Ifs {
		if i.Name == name {
			i.VtrOp, i.VtrDot1q, i.VtrTag1 = op, op != 0, tag1
		}
	}
}

func sortedKeys[V any](m map[uint32]V) []uint32 {
	keys := make([]uint32, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

// InterfaceAt returns a copy of interface idx.
func (f *FakeVPP) InterfaceAt(idx uint32) (Interface, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, ok := f.Ifs[idx]
	if !ok {
		return Interface{}, false
	}
	return *i, true
}

// BridgePorts returns the members of bridge domain id and their
// split-horizon groups.
func (f *FakeVPP) BridgePorts(id uint32) map[uint32]uint8 {
	f.mu.Lock()
	defer f.mu.Unlock()
	bd, ok := f.BDs[id]
	if !ok {
		return nil
	}
	out := map[uint32]uint8{}
	for sw := range bd.Members {
		out[sw] = bd.SHG[sw]
	}
	return out
}
