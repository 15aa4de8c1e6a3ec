package vppapply

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"go.fd.io/govpp/adapter"
	"go.fd.io/govpp/adapter/mock"
	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/vhost_user"
	"go.fd.io/govpp/codec"
)

// fakeVPP is govpp's mock adapter with a small stateful pod VPP behind it:
// apply runs over real govpp connections, streams and codecs, and tests
// assert the exact message sequence it sends.
type fakeVPP struct {
	*mock.VppAdapter

	mu    sync.Mutex
	cb    adapter.MsgCallback
	types map[string]reflect.Type
	calls []api.Message

	ifs      map[uint32]*fakeIf
	nextIf   uint32
	sockets  map[uint32]string
	nextSock uint32
	routes   map[string]ip.IPRoute
	// peerUp: the other end of every interface is there, so an admin-up
	// interface has its link up.
	peerUp    bool
	failPings bool
}

type fakeIf struct {
	name, tag string
	adminUp   bool
	mtu       uint32
	addrs     []ip_types.AddressWithPrefix
}

var _ adapter.VppAPI = (*fakeVPP)(nil)

func newFakeVPP() *fakeVPP {
	f := &fakeVPP{VppAdapter: mock.NewVppAdapter(), types: map[string]reflect.Type{}, peerUp: true,
		ifs: map[uint32]*fakeIf{0: {name: "local0"}}, nextIf: 1,
		sockets: map[uint32]string{0: "/run/vpp/memif.sock"}, nextSock: 1, routes: map[string]ip.IPRoute{}}
	for _, all := range [][]api.Message{memif.AllMessages(), vhost_user.AllMessages(), interfaces.AllMessages(), ip.AllMessages()} {
		for _, m := range all {
			f.types[m.GetMessageName()] = reflect.TypeOf(m).Elem()
		}
	}
	return f
}

// names returns the request names received so far (control pings left
// out) and clears the log.
func (f *fakeVPP) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.calls))
	for i, c := range f.calls {
		out[i] = c.GetMessageName()
	}
	f.calls = nil
	return out
}

func (f *fakeVPP) SetMsgCallback(cb adapter.MsgCallback) {
	f.mu.Lock()
	f.cb = cb
	f.mu.Unlock()
	f.VppAdapter.SetMsgCallback(cb)
}

func (f *fakeVPP) SendMsg(clientID uint32, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	name, ok := f.GetMsgNameByID(binary.BigEndian.Uint16(data[0:2]))
	if !ok {
		return fmt.Errorf("fake vpp: unknown message id %d", binary.BigEndian.Uint16(data[0:2]))
	}
	if name == "control_ping" {
		if f.failPings {
			return errors.New("fake vpp: gone")
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
	f.calls = append(f.calls, req)
	return f.reply(clientID, f.handle(req)...)
}

func (f *fakeVPP) reply(clientID uint32, msgs ...api.Message) error {
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

func (f *fakeVPP) details(idx uint32, i *fakeIf) *interfaces.SwInterfaceDetails {
	d := &interfaces.SwInterfaceDetails{SwIfIndex: interface_types.InterfaceIndex(idx), InterfaceName: i.name,
		Tag: i.tag, Mtu: []uint32{i.mtu, i.mtu, i.mtu, i.mtu}}
	if i.adminUp {
		d.Flags |= interface_types.IF_STATUS_API_FLAG_ADMIN_UP
		if f.peerUp {
			d.Flags |= interface_types.IF_STATUS_API_FLAG_LINK_UP
		}
	}
	return d
}

func (f *fakeVPP) handle(req api.Message) []api.Message {
	noIf := int32(api.INVALID_SW_IF_INDEX)
	switch m := req.(type) {
	case *interfaces.SwInterfaceDump:
		var out []api.Message
		for idx := range f.nextIf {
			if i, ok := f.ifs[idx]; ok && (uint32(m.SwIfIndex) == anyIndex || uint32(m.SwIfIndex) == idx) {
				out = append(out, f.details(idx, i))
			}
		}
		return append(out, &memclnt.ControlPingReply{})
	case *memif.MemifSocketFilenameDump:
		var out []api.Message
		for id := range f.nextSock {
			if s, ok := f.sockets[id]; ok {
				out = append(out, &memif.MemifSocketFilenameDetails{SocketID: id, SocketFilename: s})
			}
		}
		return append(out, &memclnt.ControlPingReply{})
	case *memif.MemifSocketFilenameAddDelV2:
		id := f.nextSock
		f.nextSock++
		f.sockets[id] = m.SocketFilename
		return []api.Message{&memif.MemifSocketFilenameAddDelV2Reply{SocketID: id}}
	case *memif.MemifCreateV2:
		if _, ok := f.sockets[m.SocketID]; !ok {
			return []api.Message{&memif.MemifCreateV2Reply{Retval: int32(api.INVALID_ARGUMENT)}}
		}
		idx := f.newIf(fmt.Sprintf("memif%d/%d", m.SocketID, m.ID), "")
		return []api.Message{&memif.MemifCreateV2Reply{SwIfIndex: interface_types.InterfaceIndex(idx)}}
	case *memif.MemifDelete:
		delete(f.ifs, uint32(m.SwIfIndex))
		return []api.Message{&memif.MemifDeleteReply{}}
	case *vhost_user.CreateVhostUserIfV2:
		idx := f.newIf(fmt.Sprintf("VirtualEthernet0/0/%d", f.nextIf-1), m.Tag)
		return []api.Message{&vhost_user.CreateVhostUserIfV2Reply{SwIfIndex: interface_types.InterfaceIndex(idx)}}
	case *interfaces.SwInterfaceTagAddDel:
		i, ok := f.ifs[uint32(m.SwIfIndex)]
		if !ok {
			return []api.Message{&interfaces.SwInterfaceTagAddDelReply{Retval: noIf}}
		}
		i.tag = m.Tag
		return []api.Message{&interfaces.SwInterfaceTagAddDelReply{}}
	case *interfaces.SwInterfaceSetMtu:
		f.ifs[uint32(m.SwIfIndex)].mtu = m.Mtu[0]
		return []api.Message{&interfaces.SwInterfaceSetMtuReply{}}
	case *interfaces.SwInterfaceSetFlags:
		f.ifs[uint32(m.SwIfIndex)].adminUp = m.Flags&interface_types.IF_STATUS_API_FLAG_ADMIN_UP != 0
		return []api.Message{&interfaces.SwInterfaceSetFlagsReply{}}
	case *ip.IPAddressDump:
		var out []api.Message
		for _, a := range f.ifs[uint32(m.SwIfIndex)].addrs {
			if (a.Address.Af == ip_types.ADDRESS_IP6) == m.IsIPv6 {
				out = append(out, &ip.IPAddressDetails{SwIfIndex: m.SwIfIndex, Prefix: a})
			}
		}
		return append(out, &memclnt.ControlPingReply{})
	case *interfaces.SwInterfaceAddDelAddress:
		i := f.ifs[uint32(m.SwIfIndex)]
		i.addrs = append(i.addrs, m.Prefix)
		return []api.Message{&interfaces.SwInterfaceAddDelAddressReply{}}
	case *ip.IPRouteLookup:
		r, ok := f.routes[m.Prefix.String()]
		if !ok {
			return []api.Message{&ip.IPRouteLookupReply{Retval: int32(api.NO_SUCH_ENTRY)}}
		}
		return []api.Message{&ip.IPRouteLookupReply{Route: r}}
	case *ip.IPRouteAddDel:
		f.routes[m.Route.Prefix.String()] = m.Route
		return []api.Message{&ip.IPRouteAddDelReply{}}
	}
	panic(fmt.Sprintf("fake vpp: unhandled %T", req))
}

func (f *fakeVPP) newIf(name, tag string) uint32 {
	idx := f.nextIf
	f.nextIf++
	f.ifs[idx] = &fakeIf{name: name, tag: tag, mtu: 9000}
	return idx
}
