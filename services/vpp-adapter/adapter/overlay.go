package adapter

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/adapterkit/overlay"
	"usrsp.dev/libs/vpp"
)

// TunnelTagPrefix starts the tag of every VXLAN tunnel the adapter
// creates: TunnelTag. Like loopbacks, tunnels are a network's, not one
// attachment's.
const TunnelTagPrefix = "usrsp-vx:"

// TunnelSHG is the split-horizon group of every tunnel in a bridge
// domain: VPP floods nothing that came in on one member of a group out of
// another, so broadcasts from one peer never reach a third one through
// this node (each node replicates its own to every peer: no loops, no
// duplicates).
const TunnelSHG = 1

// TunnelTag is the tag of the tunnel of network to the peer VTEP remote:
// TunnelTagPrefix + 12 hex digits of sha256("<network>/<remote>").
func TunnelTag(network string, remote netip.Addr) string {
	return TunnelTagPrefix + overlay.ID(network, remote.String())
}

var _ overlay.Dataplane = (*Adapter)(nil)

// SetOverlay makes the adapter tell o whenever local membership or VPP
// changed (after a replay and every successful attach, detach and GC).
// Call it before serving requests.
func (a *Adapter) SetOverlay(o interface{ Changed() }) { a.overlay.Set(o) }

// checkOverlay refuses an overlay network on a node without a VTEP, and
// VXLAN between VPPs carries IPv4 only on routed networks.
func (a *Adapter) checkOverlay(r *contracts.AttachRequest) error {
	if r.Interface.Overlay == nil {
		return nil
	}
	if !a.cfg.VTEP.IsValid() {
		return invalid("interface.overlay: network %s spans nodes (vni %d) but this node's vpp-adapter has no --vtep",
			r.Network, r.Interface.Overlay.VNI)
	}
	if r.Interface.NetType == contracts.NetTypeInterface {
		for i, ip := range r.Interface.IPs {
			if p, err := netip.ParsePrefix(ip.Address); err == nil && p.Addr().Is6() {
				return invalid("interface.ips[%d].address %s: a routed (netType interface) overlay network carries IPv4 only on VPP", i, ip.Address)
			}
		}
	}
	return nil
}

// Members implements overlay.Dataplane: this node's overlay networks, from
// the records.
func (a *Adapter) Members() ([]contracts.OverlayMember, error) {
	recs, _, err := a.records()
	if err != nil {
		return nil, err
	}
	atts := make([]contracts.Attachment, 0, len(recs))
	for _, r := range recs {
		atts = append(atts, r.Attachment)
	}
	return overlay.Members(atts), nil
}

// overlayNet is what the records say of one local overlay network.
type overlayNet struct {
	bridge, vlan uint32 // bridge networks
	l3           *plan  // routed networks: the table and loopback of one attachment
	// local are the addresses of this node's pods on a routed network: a
	// peer announcing one of them gets no route for it (it would become a
	// second path of the local pod's route and take half its traffic).
	local map[netip.Addr]bool
}

// overlayNets reads the local overlay networks from the records.
func (a *Adapter) overlayNets() (map[string]overlayNet, error) {
	recs, _, err := a.records()
	if err != nil {
		return nil, err
	}
	nets := map[string]overlayNet{}
	for _, r := range recs {
		h := r.Attachment.Interface
		if h.Overlay == nil {
			continue
		}
		if n, ok := nets[r.Attachment.Network]; ok {
			addLocal(n.local, h)
			continue
		}
		p, err := planAttach(&contracts.AttachRequest{Key: r.Attachment.Key, Network: r.Attachment.Network, Interface: h}, r.Table != 0)
		if err != nil {
			continue
		}
		n := overlayNet{bridge: p.bridge, vlan: p.vlan, local: map[netip.Addr]bool{}}
		if p.l3 {
			n.l3 = p
		}
		addLocal(n.local, h)
		nets[r.Attachment.Network] = n
	}
	return nets, nil
}

func addLocal(local map[netip.Addr]bool, h contracts.HostInterface) {
	for _, ip := range h.IPs {
		if p, err := netip.ParsePrefix(ip.Address); err == nil {
			local[p.Addr()] = true
		}
	}
}

// ourTunnel is a tunnel the adapter created: its interface (by tag) and
// what VPP says of the tunnel.
type ourTunnel struct {
	ifc vpp.Interface
	tun vpp.Tunnel
	bd  uint32 // bridge domain it is a member of, 0: none
	shg uint8  // its split-horizon group there
}

// tunnelView is what one sync reads of VPP: the tunnels tagged
// TunnelTagPrefix, by tag (tunnels without our tag are never touched), and
// the bridge domains that exist.
type tunnelView struct {
	tunnels map[string]ourTunnel
	bridges map[uint32]bool
}

func readTunnels(ctx context.Context, c *vpp.Client) (tunnelView, error) {
	v := tunnelView{tunnels: map[string]ourTunnel{}, bridges: map[uint32]bool{}}
	bds, err := c.BridgeDomains(ctx, ^uint32(0))
	if err != nil {
		return v, err
	}
	type membership struct {
		bd  uint32
		shg uint8
	}
	bdOf := map[uint32]membership{}
	for _, bd := range bds {
		v.bridges[bd.ID] = true
		for _, p := range bd.Ports {
			bdOf[p.SwIfIndex] = membership{bd.ID, p.SHG}
		}
	}
	ifs, err := c.InterfacesTagged(ctx, TunnelTagPrefix)
	if err != nil || len(ifs) == 0 {
		return v, err
	}
	tuns, err := c.Tunnels(ctx)
	if err != nil {
		return v, err
	}
	out := v.tunnels
	for _, ifc := range ifs {
		i := slices.IndexFunc(tuns, func(t vpp.Tunnel) bool { return t.SwIfIndex == ifc.SwIfIndex })
		if i < 0 {
			continue // tagged by us but not a VXLAN tunnel: not ours to delete
		}
		m := bdOf[ifc.SwIfIndex]
		out[ifc.Tag] = ourTunnel{ifc: ifc, tun: tuns[i], bd: m.bd, shg: m.shg}
	}
	return v, nil
}

// SyncTunnels implements overlay.Dataplane: it makes the tunnels tagged
// ours exactly want (with prune; without, it only adds and updates). It
// takes the locks an attach takes, so it never races one on the same
// bridge domain or loopback.
func (a *Adapter) SyncTunnels(ctx context.Context, want []overlay.Tunnel, prune bool) error {
	a.gate.RLock()
	defer a.gate.RUnlock()
	c, err := a.session()
	if err != nil {
		return err
	}
	a.shared.Lock()
	defer a.shared.Unlock()
	nets, err := a.overlayNets()
	if err != nil {
		return err
	}
	view, err := readTunnels(ctx, c)
	if err != nil {
		return err
	}
	have := view.tunnels
	if len(want) > 0 {
		if err := a.checkVTEP(ctx, c); err != nil {
			return err
		}
	}
	keep := map[string]bool{}
	var errs []error
	for _, t := range want {
		n, ok := nets[t.Network]
		if !ok {
			continue // its last attachment went meanwhile
		}
		tag := TunnelTag(t.Network, t.Remote)
		keep[tag] = true
		if n.l3 == nil && !view.bridges[n.bridge] {
			// The first attach has stored its record but not yet made its
			// bridge domain; it calls Changed when done.
			continue
		}
		if err := a.syncTunnel(ctx, c, t, tag, n, have); err != nil {
			errs = append(errs, fmt.Errorf("tunnel %s: %w", t, err))
			if transportError(err) {
				break // VPP is away: every call would wait out its timeout holding a.shared
			}
		}
	}
	if prune && !slices.ContainsFunc(errs, transportError) {
		for tag, ot := range have {
			if keep[tag] {
				continue
			}
			if err := a.removeTunnel(ctx, c, ot); err != nil {
				errs = append(errs, err)
				if transportError(err) {
					break
				}
				continue
			}
			a.cfg.Log.Info().Str("tag", tag).Str("remote", ot.tun.Dst.String()).Uint32("vni", ot.tun.VNI).Msg("removed a VXLAN tunnel no peer wants")
		}
	}
	if len(errs) > 0 {
		return errorf(errors.Join(errs...), "overlay sync of %d tunnels", len(want))
	}
	return nil
}

// transportError reports whether err is VPP not answering (a timeout, a
// lost socket) rather than VPP refusing one request.
func transportError(err error) bool {
	return contracts.CodeOf(err) == contracts.CodeTryAgainLater || errors.Is(err, context.DeadlineExceeded)
}

// checkVTEP fails, naming --vtep, unless the VTEP is an address of a VPP
// interface (the operator's uplink): VPP sends VXLAN from there. The
// caller holds a.shared, which guards vtepIf.
func (a *Adapter) checkVTEP(ctx context.Context, c *vpp.Client) error {
	vtep := a.cfg.VTEP
	has := func(p netip.Prefix) bool { return p.Addr() == vtep }
	// The uplink found last time first: one message instead of one per
	// interface (a node has as many as it has pods).
	if a.vtepIf != nil {
		addrs, err := c.Addresses(ctx, *a.vtepIf, vtep.Is6())
		if err != nil {
			return err
		}
		if slices.ContainsFunc(addrs, has) {
			return nil
		}
		a.vtepIf = nil
	}
	ifc, found, err := c.InterfaceWithAddress(ctx, vtep)
	if err != nil {
		return err
	}
	if !found {
		return contracts.Errorf(contracts.CodeInvalidConfig,
			"--vtep %s is not an address of any VPP interface: give the uplink interface this address (set interface ip address <uplink> %s/<len>)", vtep, vtep)
	}
	a.vtepIf = &ifc.SwIfIndex
	return nil
}

// syncTunnel creates or repairs the tunnel t (tag) of local network n.
func (a *Adapter) syncTunnel(ctx context.Context, c *vpp.Client, t overlay.Tunnel, tag string, n overlayNet, have map[string]ourTunnel) error {
	cfg := vpp.TunnelConfig{Src: t.Local, Dst: t.Remote, Port: t.Port, VNI: t.VNI, L3: n.l3 != nil}
	next, err := c.DecapNext(ctx, cfg)
	if err != nil {
		return err
	}
	ot, exists := have[tag]
	if exists && (ot.tun.Src != cfg.Src || ot.tun.Dst != cfg.Dst || ot.tun.DstPort != cfg.Port || ot.tun.VNI != cfg.VNI || ot.tun.DecapNextIndex != next) {
		// Another VNI, port or kind under the same network and peer.
		if err := a.removeTunnel(ctx, c, ot); err != nil {
			return err
		}
		exists = false
	}
	sw := ot.ifc.SwIfIndex
	if !exists {
		if sw, err = c.CreateTunnel(ctx, cfg); err != nil {
			return err
		}
		if err := c.SetTag(ctx, sw, tag); err != nil {
			_ = c.DeleteTunnel(ctx, vpp.Tunnel{SwIfIndex: sw, Src: cfg.Src, Dst: cfg.Dst, SrcPort: cfg.Port, DstPort: cfg.Port, VNI: cfg.VNI, DecapNextIndex: next}) // untagged: nothing else would find it
			return err
		}
		a.cfg.Log.Info().Str("network", t.Network).Str("peer", t.Peer).Str("remote", t.Remote.String()).Uint32("vni", t.VNI).
			Uint32("sw_if_index", sw).Str("tag", tag).Msg("created a VXLAN tunnel")
	}
	// The settings below are idempotent in VPP: the routed ones are applied
	// on every sync, the bridge membership when it is not as wanted (a
	// split-horizon group lost would let broadcasts loop), which heals what
	// was changed behind the adapter's back.
	if n.l3 != nil {
		if err := a.routeTunnel(ctx, c, sw, t, n); err != nil {
			return err
		}
	} else if !exists || ot.bd != n.bridge || ot.shg != TunnelSHG {
		if err := c.JoinBridge(ctx, sw, n.bridge, TunnelSHG); err != nil {
			return err
		}
		if n.vlan != 0 {
			// The tunnel carries the access VLAN's frames untagged, like a
			// pod's port: VLANs sharing the bridge domain stay apart.
			if err := c.SetAccessVLAN(ctx, sw, n.vlan, true); err != nil {
				return err
			}
		}
	}
	return c.AdminUp(ctx, sw)
}

// routeTunnel makes tunnel sw an L3 interface of the routed network n
// (its table, unnumbered to its loopback, proxy ARP) and routes exactly
// t.Routes into it, except IPv6 ones and this node's own pod addresses.
func (a *Adapter) routeTunnel(ctx context.Context, c *vpp.Client, sw uint32, t overlay.Tunnel, n overlayNet) error {
	p := n.l3
	loops, err := tagged(ctx, c, p.loopTag)
	if err != nil {
		return err
	}
	if len(loops) == 0 {
		// The first attach has stored its record but not yet made the
		// loopback; it calls Changed when done.
		return nil
	}
	if p.table != 0 {
		for _, v6 := range []bool{false, true} {
			if err := c.SetTable(ctx, sw, p.table, v6); err != nil {
				return err
			}
		}
	}
	if err := c.SetUnnumbered(ctx, loops[0].SwIfIndex, sw, true); err != nil {
		return err
	}
	if err := c.ProxyARP(ctx, sw, true); err != nil {
		return err
	}
	have, err := c.RoutesVia(ctx, p.table, false, sw)
	if err != nil {
		return err
	}
	var want []netip.Prefix
	for _, r := range t.Routes {
		switch {
		case !r.Addr().Is4():
			a.cfg.Log.Warn().Str("network", t.Network).Str("route", r.String()).Msg("IPv6 is not routed over VPP's VXLAN; route left out")
		case n.local[r.Addr()]:
			a.cfg.Log.Warn().Str("network", t.Network).Str("peer", t.Peer).Str("route", r.String()).
				Msg("peer announces the address of a pod on this node (duplicate address? the network needs a cluster-wide IPAM); route left out")
		default:
			want = append(want, r)
		}
	}
	for _, r := range want {
		if slices.Contains(have, r) {
			continue
		}
		if err := c.Route(ctx, true, p.table, sw, r.Addr()); err != nil {
			return err
		}
	}
	for _, r := range have {
		if !slices.Contains(want, r) {
			if err := c.Route(ctx, false, p.table, sw, r.Addr()); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeTunnel undoes a tunnel: its routes and L3 settings (VPP keeps API
// routes through a deleted interface, and per-interface state under a
// reused sw_if_index), its bridge membership, then the tunnel itself.
func (a *Adapter) removeTunnel(ctx context.Context, c *vpp.Client, ot ourTunnel) error {
	if !strings.HasPrefix(ot.ifc.Tag, TunnelTagPrefix) {
		return contracts.Errorf(contracts.CodeVswitch, "interface %s (tag %q) is not a usrsp tunnel; not deleting it", ot.ifc.Name, ot.ifc.Tag)
	}
	sw := ot.ifc.SwIfIndex
	table, err := c.InterfaceTable(ctx, sw, false)
	if err != nil {
		return err
	}
	routes, err := c.RoutesVia(ctx, table, false, sw)
	if err != nil {
		return err
	}
	for _, r := range routes {
		if err := c.Route(ctx, false, table, sw, r.Addr()); err != nil {
			return err
		}
	}
	if err := c.ProxyARP(ctx, sw, false); err != nil {
		return err
	}
	if err := c.SetUnnumbered(ctx, sw, sw, false); err != nil {
		return err
	}
	if ot.bd != 0 {
		if err := c.SetAccessVLAN(ctx, sw, 0, false); err != nil {
			return err
		}
		if err := c.SetBridge(ctx, sw, ot.bd, false); err != nil {
			return err
		}
	}
	return c.DeleteTunnel(ctx, ot.tun)
}

// removeNetworkTunnels removes the tunnels of network (when its last
// attachment goes), before its bridge domain or loopback is released.
func (a *Adapter) removeNetworkTunnels(ctx context.Context, c *vpp.Client, network string) error {
	view, err := readTunnels(ctx, c)
	if err != nil {
		return err
	}
	for tag, ot := range view.tunnels {
		if tag != TunnelTag(network, ot.tun.Dst) {
			continue
		}
		if err := a.removeTunnel(ctx, c, ot); err != nil {
			return err
		}
		a.cfg.Log.Info().Str("network", network).Str("remote", ot.tun.Dst.String()).Msg("removed a VXLAN tunnel: the network's last attachment on this node went")
	}
	return nil
}

// removeStaleTunnels removes, in the replay, the tunnels of networks no
// record has: their last attachment was detached while VPP was away, so
// no teardown removed them. Left to the overlay's prune they would keep
// their bridge domain (it has members) past this replay, and be
// unnumbered to a loopback the replay deletes. A record left out of the
// replay (bad) still keeps its network's tunnels: they are only deleted
// when nothing may want them.
func (a *Adapter) removeStaleTunnels(ctx context.Context, c *vpp.Client, recs []*Record, bad map[*Record]error, sum *ReplaySummary) error {
	view, err := readTunnels(ctx, c)
	if err != nil || len(view.tunnels) == 0 {
		return err
	}
	networks := map[string]bool{}
	for _, r := range recs {
		networks[r.Attachment.Network] = true
	}
	for r := range bad {
		networks[r.Attachment.Network] = true
	}
	var errs []error
outer:
	for tag, ot := range view.tunnels {
		for n := range networks {
			if tag == TunnelTag(n, ot.tun.Dst) {
				continue outer
			}
		}
		if err := a.removeTunnel(ctx, c, ot); err != nil {
			errs = append(errs, fmt.Errorf("stale tunnel %s (tag %s): %w", ot.ifc.Name, tag, err))
			continue
		}
		sum.note(contracts.ReconciledEvent(nil, "", 0, fmt.Sprintf("removed VXLAN tunnel %s to %s (tag %s): no attachment of its network is left", ot.ifc.Name, ot.tun.Dst, tag)))
		a.cfg.Log.Info().Str("tag", tag).Str("remote", ot.tun.Dst.String()).Msg("removed stale VXLAN tunnel no record wants")
	}
	return errors.Join(errs...)
}

// lastOfNetwork reports whether rec is the only record of its network.
func (a *Adapter) lastOfNetwork(rec *Record) (bool, error) {
	recs, _, err := a.records()
	if err != nil {
		return false, err
	}
	for _, r := range recs {
		if r.Attachment.Key != rec.Attachment.Key && r.Attachment.Network == rec.Attachment.Network {
			return false, nil
		}
	}
	return true, nil
}
