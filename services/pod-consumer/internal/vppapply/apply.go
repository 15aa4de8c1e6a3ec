// Package vppapply creates the container side of the pod's interfaces in
// the pod's own VPP: memif or vhost-user, MAC, MTU, addresses, routes,
// admin up. Everything it creates carries the tag "usrsp-pod:<ifName>", so
// applying again finds the interface and changes nothing.
package vppapply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/rs/zerolog"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/fib_types"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/vhost_user"

	"usrsp.dev/contracts"
	"usrsp.dev/services/pod-consumer/internal/discovery"
)

// API is the part of VPP's binary API apply uses: govpp's generated
// clients, so tests inject them over govpp's mock adapter.
type API struct {
	Memif      memif.RPCService
	Vhost      vhost_user.RPCService
	Interfaces interfaces.RPCService
	IP         ip.RPCService
}

// NewAPI returns the API over one VPP connection.
func NewAPI(conn api.Connection) API {
	return API{Memif: memif.NewServiceClient(conn), Vhost: vhost_user.NewServiceClient(conn),
		Interfaces: interfaces.NewServiceClient(conn), IP: ip.NewServiceClient(conn)}
}

// Applier applies pod interfaces to one VPP.
type Applier struct {
	API API
	Log zerolog.Logger
	// LinkTimeout bounds the wait for every link to come up; 0 skips it.
	LinkTimeout time.Duration
	// PollInterval is how often the link state is read while waiting.
	PollInterval time.Duration
}

// Result is what apply did for one interface.
type Result struct {
	IfName    string   `json:"ifName"`
	VPPName   string   `json:"vppName"`
	SwIfIndex uint32   `json:"swIfIndex"`
	Created   bool     `json:"created"`
	Changes   []string `json:"changes,omitempty"` // what this run changed, empty when nothing
	LinkUp    bool     `json:"linkUp"`
}

// anyIndex is ~0: "all interfaces" in dumps, "allocate" for socket ids.
const anyIndex = ^uint32(0)

// Apply plans every interface first (so bad pod data touches nothing),
// applies them in order and then waits for their links.
func (a *Applier) Apply(ctx context.Context, ifs []discovery.Interface) ([]Result, error) {
	plans := make([]plan, 0, len(ifs))
	for _, i := range ifs {
		if i.Data == nil {
			return nil, contracts.Errorf(contracts.CodeNotFound,
				"%s: known only from the network-status annotation; apply needs its pod data file (mount the usrsp directory)", i.Name)
		}
		if i.Data.Interface.IfType == contracts.IfTypeVeth {
			continue // a kernel netdev, configured by cni-entry: nothing for the pod's VPP
		}
		p, err := planFor(i.Data)
		if err != nil {
			return nil, err
		}
		plans = append(plans, p)
	}
	existing, err := a.tagged(ctx)
	if err != nil {
		return nil, err
	}
	results := make([]Result, len(plans))
	for n, p := range plans {
		start := time.Now()
		r, err := a.applyOne(ctx, p, existing)
		if err != nil {
			return results[:n], err
		}
		results[n] = r
		a.Log.Info().Str("ifname", p.ifName).Str("engine", string(contracts.EngineVPP)).Uint32("sw_if_index", r.SwIfIndex).
			Strs("changes", r.Changes).Dur("duration", time.Since(start)).Msg("applied")
	}
	if a.LinkTimeout <= 0 {
		return results, nil
	}
	wctx, cancel := context.WithTimeout(ctx, a.LinkTimeout)
	defer cancel()
	for n, p := range plans {
		name, err := a.waitLinkUp(wctx, p, results[n].SwIfIndex)
		results[n].VPPName = name
		if err != nil {
			return results, err
		}
		results[n].LinkUp = true
	}
	return results, nil
}

// ifState is what apply reads back about an interface.
type ifState struct {
	idx   uint32
	name  string
	flags interface_types.IfStatusFlags
	mtu   uint32
}

// tagged dumps the interfaces apply created before, by tag.
func (a *Applier) tagged(ctx context.Context) (map[string]ifState, error) {
	out := map[string]ifState{}
	err := a.dumpInterfaces(ctx, anyIndex, func(d *interfaces.SwInterfaceDetails) {
		if len(d.Tag) > len(TagPrefix) && d.Tag[:len(TagPrefix)] == TagPrefix {
			out[d.Tag] = stateOf(d)
		}
	})
	return out, err
}

func stateOf(d *interfaces.SwInterfaceDetails) ifState {
	s := ifState{idx: uint32(d.SwIfIndex), name: d.InterfaceName, flags: d.Flags}
	if len(d.Mtu) > 0 {
		s.mtu = d.Mtu[0]
	}
	return s
}

func (a *Applier) dumpInterfaces(ctx context.Context, idx uint32, each func(*interfaces.SwInterfaceDetails)) error {
	stream, err := a.API.Interfaces.SwInterfaceDump(ctx, &interfaces.SwInterfaceDump{SwIfIndex: interface_types.InterfaceIndex(idx)})
	if err != nil {
		return vppError("sw_interface_dump", "", err)
	}
	for {
		d, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return vppError("sw_interface_dump", "", err)
		}
		each(d)
	}
}

// applyOne makes one interface match its plan.
func (a *Applier) applyOne(ctx context.Context, p plan, existing map[string]ifState) (Result, error) {
	r := Result{IfName: p.ifName}
	st, found := existing[p.tag]
	if !found {
		idx, err := a.create(ctx, p)
		if err != nil {
			return r, err
		}
		st = ifState{idx: idx}
		r.Created = true
		r.Changes = append(r.Changes, "created "+p.kind)
	}
	r.SwIfIndex, r.VPPName = st.idx, st.name
	swIf := interface_types.InterfaceIndex(st.idx)
	res := fmt.Sprintf("%s (sw_if_index %d)", p.ifName, st.idx)

	if p.mtu > 0 && st.mtu != p.mtu {
		_, err := a.API.Interfaces.SwInterfaceSetMtu(ctx, &interfaces.SwInterfaceSetMtu{SwIfIndex: swIf, Mtu: []uint32{p.mtu, p.mtu, p.mtu, p.mtu}})
		if err != nil {
			return r, vppError("sw_interface_set_mtu", res, err)
		}
		r.Changes = append(r.Changes, fmt.Sprintf("mtu %d", p.mtu))
	}
	added, err := a.ensureAddresses(ctx, st.idx, p.addrs)
	if err != nil {
		return r, vppError("sw_interface_add_del_address", res, err)
	}
	r.Changes = append(r.Changes, added...)
	added, err = a.ensureRoutes(ctx, st.idx, p.routes)
	if err != nil {
		return r, vppError("ip_route_add_del", res, err)
	}
	r.Changes = append(r.Changes, added...)
	if st.flags&interface_types.IF_STATUS_API_FLAG_ADMIN_UP == 0 {
		_, err := a.API.Interfaces.SwInterfaceSetFlags(ctx, &interfaces.SwInterfaceSetFlags{SwIfIndex: swIf,
			Flags: interface_types.IF_STATUS_API_FLAG_ADMIN_UP})
		if err != nil {
			return r, vppError("sw_interface_set_flags", res, err)
		}
		r.Changes = append(r.Changes, "admin up")
	}
	return r, nil
}

// create creates and tags the interface; if tagging fails the interface is
// deleted again, so nothing untagged (which a later run could not find)
// is left behind.
func (a *Applier) create(ctx context.Context, p plan) (idx uint32, err error) {
	if p.memif != nil {
		idx, err = a.createMemif(ctx, p)
	} else {
		idx, err = a.createVhost(ctx, p)
	}
	if err != nil {
		return 0, err
	}
	success := false
	defer func() {
		if !success {
			a.deleteCreated(p, idx)
		}
	}()
	_, err = a.API.Interfaces.SwInterfaceTagAddDel(ctx, &interfaces.SwInterfaceTagAddDel{IsAdd: true,
		SwIfIndex: interface_types.InterfaceIndex(idx), Tag: p.tag})
	if err != nil {
		return 0, vppError("sw_interface_tag_add_del", fmt.Sprintf("%s tag %q", p.ifName, p.tag), err)
	}
	success = true
	return idx, nil
}

func (a *Applier) deleteCreated(p plan, idx uint32) {
	// Undo on a fresh context: the caller's may be what failed.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	swIf := interface_types.InterfaceIndex(idx)
	var err error
	if p.memif != nil {
		_, err = a.API.Memif.MemifDelete(ctx, &memif.MemifDelete{SwIfIndex: swIf})
	} else {
		_, err = a.API.Vhost.DeleteVhostUserIf(ctx, &vhost_user.DeleteVhostUserIf{SwIfIndex: swIf})
	}
	if err != nil {
		a.Log.Warn().Err(err).Str("ifname", p.ifName).Uint32("sw_if_index", idx).Msg("undo: could not delete the untagged interface")
	}
}

func (a *Applier) createMemif(ctx context.Context, p plan) (uint32, error) {
	sockID, err := a.memifSocketID(ctx, p.memifSocket)
	if err != nil {
		return 0, err
	}
	req := *p.memif
	req.SocketID = sockID
	if p.mac != nil {
		req.HwAddr = *p.mac
	}
	r, err := a.API.Memif.MemifCreateV2(ctx, &req)
	if err != nil {
		return 0, vppError("memif_create_v2", fmt.Sprintf("%s: memif id %d on %s", p.ifName, req.ID, p.memifSocket), err)
	}
	return uint32(r.SwIfIndex), nil
}

// memifSocketID returns the id of filename in VPP's memif socket table,
// registering it when it is not there yet.
func (a *Applier) memifSocketID(ctx context.Context, filename string) (uint32, error) {
	stream, err := a.API.Memif.MemifSocketFilenameDump(ctx, &memif.MemifSocketFilenameDump{})
	if err != nil {
		return 0, vppError("memif_socket_filename_dump", filename, err)
	}
	var id uint32
	found := false
	for {
		d, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, vppError("memif_socket_filename_dump", filename, err)
		}
		if !found && d.SocketFilename == filename {
			id, found = d.SocketID, true
		}
	}
	if found {
		return id, nil
	}
	r, err := a.API.Memif.MemifSocketFilenameAddDelV2(ctx, &memif.MemifSocketFilenameAddDelV2{IsAdd: true,
		SocketID: anyIndex, SocketFilename: filename})
	if err != nil {
		return 0, vppError("memif_socket_filename_add_del_v2", filename, err)
	}
	return r.SocketID, nil
}

func (a *Applier) createVhost(ctx context.Context, p plan) (uint32, error) {
	req := &vhost_user.CreateVhostUserIfV2{IsServer: p.vhostServer, SockFilename: p.socket, Tag: p.tag}
	if p.mac != nil {
		req.UseCustomMac, req.MacAddress = true, *p.mac
	}
	r, err := a.API.Vhost.CreateVhostUserIfV2(ctx, req)
	if err != nil {
		return 0, vppError("create_vhost_user_if_v2", fmt.Sprintf("%s: %s", p.ifName, p.socket), err)
	}
	return uint32(r.SwIfIndex), nil
}

// ensureAddresses adds the addresses the interface does not have yet.
func (a *Applier) ensureAddresses(ctx context.Context, idx uint32, want []netip.Prefix) ([]string, error) {
	have := map[netip.Prefix]bool{}
	for _, v6 := range []bool{false, true} {
		if !hasFamily(want, v6) {
			continue
		}
		stream, err := a.API.IP.IPAddressDump(ctx, &ip.IPAddressDump{SwIfIndex: interface_types.InterfaceIndex(idx), IsIPv6: v6})
		if err != nil {
			return nil, err
		}
		for {
			d, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, err
			}
			have[prefixFrom(ip_types.Prefix(d.Prefix))] = true
		}
	}
	var added []string
	for _, p := range want {
		if have[p] {
			continue
		}
		_, err := a.API.Interfaces.SwInterfaceAddDelAddress(ctx, &interfaces.SwInterfaceAddDelAddress{
			SwIfIndex: interface_types.InterfaceIndex(idx), IsAdd: true, Prefix: ip_types.AddressWithPrefix(toPrefix(p))})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		added = append(added, "address "+p.String())
	}
	return added, nil
}

func hasFamily(ps []netip.Prefix, v6 bool) bool {
	for _, p := range ps {
		if p.Addr().Is6() == v6 {
			return true
		}
	}
	return false
}

// ensureRoutes adds each route unless an exact lookup shows it already goes
// out of this interface (to the same next hop).
func (a *Applier) ensureRoutes(ctx context.Context, idx uint32, want []route) ([]string, error) {
	var added []string
	for _, r := range want {
		path := fibPath(idx, r)
		lr, err := a.API.IP.IPRouteLookup(ctx, &ip.IPRouteLookup{Exact: 1, Prefix: toPrefix(r.dst)})
		if err == nil && hasPath(lr.Route.Paths, path) {
			continue
		}
		if err != nil && !errors.Is(err, api.NO_SUCH_ENTRY) && !errors.Is(err, api.NO_SUCH_FIB) {
			return nil, fmt.Errorf("lookup %s: %w", r.dst, err)
		}
		_, err = a.API.IP.IPRouteAddDel(ctx, &ip.IPRouteAddDel{IsAdd: true, Route: ip.IPRoute{
			Prefix: toPrefix(r.dst), Paths: []fib_types.FibPath{path}}})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.dst, err)
		}
		desc := "route " + r.dst.String()
		if r.gw.IsValid() {
			desc += " via " + r.gw.String()
		}
		added = append(added, desc)
	}
	return added, nil
}

func fibPath(idx uint32, r route) fib_types.FibPath {
	p := fib_types.FibPath{SwIfIndex: idx, Weight: 1, Type: fib_types.FIB_API_PATH_TYPE_NORMAL,
		Proto: fib_types.FIB_API_PATH_NH_PROTO_IP4}
	if r.dst.Addr().Is6() {
		p.Proto = fib_types.FIB_API_PATH_NH_PROTO_IP6
	}
	if r.gw.IsValid() {
		p.Nh.Address = toAddress(r.gw).Un
	}
	return p
}

func hasPath(paths []fib_types.FibPath, want fib_types.FibPath) bool {
	for _, p := range paths {
		if p.SwIfIndex == want.SwIfIndex && p.Nh.Address == want.Nh.Address {
			return true
		}
	}
	return false
}

// waitLinkUp polls the interface until VPP reports its link up, or ctx
// (bounded by LinkTimeout) ends, with a message naming the interface and
// its socket. It returns VPP's interface name.
func (a *Applier) waitLinkUp(ctx context.Context, p plan, idx uint32) (string, error) {
	var name string
	for {
		up := false
		err := a.dumpInterfaces(ctx, idx, func(d *interfaces.SwInterfaceDetails) {
			name = d.InterfaceName
			up = d.Flags&interface_types.IF_STATUS_API_FLAG_LINK_UP != 0
		})
		if up {
			return name, nil
		}
		if err != nil && ctx.Err() == nil {
			return name, err
		}
		select {
		case <-ctx.Done():
			return name, contracts.Errorf(contracts.CodeTryAgainLater,
				"%s: link of %s (VPP %s, sw_if_index %d) did not come up within %s: is the host side attached and the socket shared with the pod's VPP?",
				p.ifName, p.describe(), name, idx, a.LinkTimeout)
		case <-time.After(a.PollInterval):
		}
	}
}

func toAddress(a netip.Addr) ip_types.Address {
	if a.Is4() {
		return ip_types.Address{Af: ip_types.ADDRESS_IP4, Un: ip_types.AddressUnionIP4(a.As4())}
	}
	return ip_types.Address{Af: ip_types.ADDRESS_IP6, Un: ip_types.AddressUnionIP6(a.As16())}
}

func toPrefix(p netip.Prefix) ip_types.Prefix {
	return ip_types.Prefix{Address: toAddress(p.Addr()), Len: uint8(p.Bits())}
}

func prefixFrom(p ip_types.Prefix) netip.Prefix {
	var a netip.Addr
	if p.Address.Af == ip_types.ADDRESS_IP6 {
		a = netip.AddrFrom16(p.Address.Un.GetIP6())
	} else {
		a = netip.AddrFrom4(p.Address.Un.GetIP4())
	}
	return netip.PrefixFrom(a, int(p.Len))
}

// vppError gives a failed VPP call a code and a message naming the
// operation and the resource.
func vppError(op, resource string, err error) error {
	if err == nil {
		return nil
	}
	code := contracts.CodeTryAgainLater // transport: VPP gone or not answering
	var ve api.VPPApiError
	if errors.As(err, &ve) {
		code = contracts.CodeVswitch
	}
	return &contracts.Error{Code: code, Message: fmt.Sprintf("vpp %s %s: %v", op, resource, err)}
}
