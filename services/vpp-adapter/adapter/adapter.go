// Package adapter is the vpp-adapter's contracts.Adapter: it turns attach
// and detach requests into VPP operations, keeps the durable record of
// desired attachments and replays it whenever VPP (re)connects.
package adapter

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/adapterkit"
	"usrsp.dev/libs/adapterkit/overlay"
	"usrsp.dev/libs/confine"
	"usrsp.dev/libs/vpp"
	"usrsp.dev/services/vpp-adapter/version"
)

// Config configures an Adapter.
type Config struct {
	Store *Store
	// Roots are the directories the adapter may hand VPP and touch (see
	// "Confinement" in the README); nil refuses every path.
	Roots *confine.Roots
	Log   zerolog.Logger
	// Events may be nil.
	Events contracts.EventPublisher
	// Metrics may be nil; the adapter keeps its attachments gauge.
	Metrics *adapterkit.Metrics
	// TablePerNetwork puts L3 (netType interface) attachments of each
	// network into their own VPP IP table (see TableID); off: table 0.
	TablePerNetwork bool
	// UndoTimeout bounds the cleanup after a failed attach.
	UndoTimeout time.Duration
	// ReplayTimeout bounds one replay, so a hung VPP cannot hold requests
	// off forever.
	ReplayTimeout time.Duration
	// VTEP is this node's underlay address (--vtep), the local end of the
	// overlay's VXLAN tunnels; zero refuses overlay networks.
	VTEP netip.Addr
}

// Adapter implements contracts.Adapter on VPP.
type Adapter struct {
	cfg   Config
	store *Store

	// gate lets requests run together but not during a replay or a GC,
	// which need records and VPP to hold still (GC has no key, so
	// contracts/service does not serialize it with anything).
	gate sync.RWMutex
	// shared serializes changes to VPP state that attachments share
	// (memif socket registrations, bridge domains). VPP handles API
	// messages one at a time anyway.
	shared sync.Mutex

	mu         sync.Mutex
	client     *vpp.Client
	ready      bool
	vppVersion string
	lastErr    string
	overlay    overlay.Hook // SetOverlay

	// vtepIf is the VPP interface last found with the VTEP (guarded by
	// shared; a reconnect may renumber it, checkVTEP looks again then).
	vtepIf *uint32
}

var _ contracts.Adapter = (*Adapter)(nil)

// New returns an adapter that waits for a VPP session (see Up).
func New(cfg Config) *Adapter {
	if cfg.UndoTimeout <= 0 {
		cfg.UndoTimeout = 10 * time.Second
	}
	if cfg.ReplayTimeout <= 0 {
		cfg.ReplayTimeout = 2 * time.Minute
	}
	if cfg.Roots == nil {
		cfg.Roots = &confine.Roots{}
	}
	return &Adapter{cfg: cfg, store: cfg.Store, lastErr: "not connected to VPP yet"}
}

// Up takes a new VPP session and replays the desired state on it. It is
// called on the first connect and on every reconnect. It publishes the
// replay's summary (or an error event) first, then one event per
// attachment the replay re-created or failed.
func (a *Adapter) Up(ctx context.Context, s vpp.Session) (ReplaySummary, error) {
	a.gate.Lock()
	defer a.gate.Unlock()
	ctx, cancel := context.WithTimeout(ctx, a.cfg.ReplayTimeout)
	defer cancel()
	running, err := s.Client.Version(ctx)
	if err != nil {
		a.cfg.Log.Warn().Err(err).Msg("cannot read the VPP version")
	}
	a.mu.Lock()
	a.client, a.vppVersion, a.ready = s.Client, running, false
	a.mu.Unlock()
	a.cfg.Log.Info().Str("vpp_version", running).Msg("connected to VPP, replaying desired state")

	sum, err := a.reconcile(ctx, s.Client)
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	a.mu.Lock()
	a.ready, a.lastErr = err == nil, msg
	a.mu.Unlock()
	if err != nil {
		a.cfg.Log.Error().Err(err).Str("summary", sum.String()).Dur("duration", sum.Duration).Msg("replay incomplete")
		a.publish(contracts.ErrorEvent(opReplay, nil, "", sum.Duration, errorf(err, "%s", sum)))
	} else {
		a.cfg.Log.Info().Str("summary", sum.String()).Dur("duration", sum.Duration).Msg("replay done")
		a.publish(contracts.ReconciledEvent(nil, "", sum.Duration, sum.String()))
	}
	for _, e := range sum.events {
		a.publish(e)
	}
	a.overlay.Changed() // VPP lost its tunnels if it restarted
	return sum, err
}

// opReplay and opConnection name what failed in error events that are not
// a request's.
const (
	opReplay     contracts.Op = "replay"
	opConnection contracts.Op = "connection"
)

// Down forgets the VPP session after the connection was lost or failed.
func (a *Adapter) Down(err error) {
	a.mu.Lock()
	wasUp := a.client != nil
	a.client, a.ready, a.lastErr = nil, false, err.Error()
	var ie *vpp.IncompatibleError
	if errors.As(err, &ie) {
		a.vppVersion = ie.Found // status' vswitch: the VPP that runs, not the last compatible one
	}
	a.mu.Unlock()
	a.cfg.Log.Warn().Err(err).Bool("was_connected", wasUp).Msg("VPP connection down")
	if wasUp {
		a.publish(contracts.ErrorEvent(opConnection, nil, "", 0, errorf(err, "VPP connection lost")))
	}
}

// Ready reports whether VPP is connected and the desired state replayed,
// with the reason when not.
func (a *Adapter) Ready() (bool, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ready, a.lastErr
}

func (a *Adapter) session() (*vpp.Client, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.client == nil {
		return nil, contracts.Errorf(contracts.CodeTryAgainLater, "VPP is not connected: %s", a.lastErr)
	}
	return a.client, nil
}

// Attach implements contracts.Adapter. An existing attachment with the same
// spec whose interface VPP still has is success without any change.
// It publishes an attached event that says what the pod got, or an
// error event.
func (a *Adapter) Attach(ctx context.Context, r *contracts.AttachRequest) (*contracts.AttachResponse, error) {
	start := time.Now()
	resp, err := a.attach(ctx, r)
	if err != nil {
		a.publish(contracts.ErrorEvent(contracts.OpAttach, &r.Key, r.Network, time.Since(start), err))
		return nil, err
	}
	a.publish(contracts.AttachedEvent(r.Key, r.Network, time.Since(start), describe(resp.Attachment)))
	a.overlay.Changed()
	return resp, nil
}

func (a *Adapter) attach(ctx context.Context, r *contracts.AttachRequest) (*contracts.AttachResponse, error) {
	p, err := planAttach(r, a.cfg.TablePerNetwork)
	if err != nil {
		return nil, err
	}
	if err := a.checkOverlay(r); err != nil {
		return nil, err
	}
	// Confined before VPP is asked anything.
	if err := a.confinePlan(p, r.Interface); err != nil {
		return nil, err
	}
	a.gate.RLock()
	defer a.gate.RUnlock()
	c, err := a.session()
	if err != nil {
		return nil, err
	}
	rec, found, err := a.record(r.Key)
	if err != nil {
		return nil, err
	}
	if found {
		if !sameSpec(rec.Attachment, r.Network, r.Interface) {
			return nil, contracts.Errorf(contracts.CodeConflict, "attachment %s exists with another configuration; detach it first", r.Key)
		}
		ifs, err := tagged(ctx, c, rec.Tag)
		if err != nil {
			return nil, err
		}
		if len(ifs) > 0 {
			return &contracts.AttachResponse{Attachment: rec.Attachment}, nil
		}
		// The record outlived the interface (VPP restarted before the
		// replay, or a failed attach): create it again.
	}
	rec = &Record{Tag: Tag(r.Key), Attachment: contracts.Attachment{
		Key: r.Key, Network: r.Network, Engine: contracts.EngineVPP, Pod: r.Pod, Interface: r.Interface,
		SocketPath: p.podSocket, CreatedAt: time.Now().UTC(),
	}, Table: p.table}
	// Desired state first: if the adapter dies half way, the replay
	// finishes or the detach cleans up by tag.
	if err := a.store.Put(rec); err != nil {
		return nil, err
	}
	if err := a.realize(ctx, c, rec, p, nil); err != nil {
		if !found {
			if derr := a.store.Delete(r.Key); derr != nil {
				a.keyLog(r.Key).Error().Err(derr).Msg("cannot drop the record of a failed attach")
			}
		}
		return nil, err
	}
	a.refreshOwned()
	return &contracts.AttachResponse{Attachment: rec.Attachment}, nil
}

// realize creates everything p asks for, updates rec and stores it. On
// failure it undoes what it did, in reverse order.
// known is nil for an attach, which asks VPP; the replay passes what it
// read once for its whole pass.
func (a *Adapter) realize(ctx context.Context, c *vpp.Client, rec *Record, p *plan, known *replayView) error {
	a.shared.Lock()
	defer a.shared.Unlock()
	success := false
	var undo []func(context.Context) error
	defer func() {
		if success {
			return
		}
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.UndoTimeout)
		defer cancel()
		for i := len(undo) - 1; i >= 0; i-- {
			if err := undo[i](uctx); err != nil {
				a.keyLog(rec.Attachment.Key).Error().Err(err).Msg("undo after failed attach")
			}
		}
	}()

	var sw uint32
	switch p.kind {
	case kindMemif:
		id, found, err := known.memifSocketID(ctx, c, p.memifSocket)
		if err != nil {
			return err
		}
		if !found {
			if id, err = c.AddMemifSocket(ctx, p.memifSocket); err != nil {
				return err
			}
			known.addSocket(p.memifSocket, id)
			undo = append(undo, func(ctx context.Context) error { return c.DeleteMemifSocket(ctx, id, p.memifSocket) })
		}
		rec.MemifSocketFile, rec.MemifSocketID, rec.MemifSocketAdded = p.memifSocket, id, !found
		m := p.memif
		m.SocketID = id
		if sw, err = c.CreateMemif(ctx, m); err != nil {
			return err
		}
		undo = append(undo, func(ctx context.Context) error { return c.DeleteMemif(ctx, sw) })
		if err := giveSocket(p, rec.Attachment.Interface.PodAccess); err != nil {
			return err
		}
	case kindVhost:
		var err error
		if sw, err = c.CreateVhost(ctx, p.vhost); err != nil {
			return err
		}
		undo = append(undo, func(ctx context.Context) error { return c.DeleteVhost(ctx, sw) })
		if err := giveSocket(p, rec.Attachment.Interface.PodAccess); err != nil {
			return err
		}
	case kindAfPacket:
		var err error
		if sw, err = c.CreateAfPacket(ctx, p.afPacket); err != nil {
			return err
		}
		undo = append(undo, func(ctx context.Context) error { return c.DeleteAfPacket(ctx, p.afPacket.HostIfName) })
	}
	rec.SwIfIndex = sw
	if err := c.SetTag(ctx, sw, rec.Tag); err != nil {
		return err
	}
	if p.mtu != 0 {
		if err := c.SetMTU(ctx, sw, p.mtu); err != nil {
			return err
		}
	}
	if p.bridge != 0 {
		created, err := a.ensureBridge(ctx, c, p.bridge, known)
		if err != nil {
			return err
		}
		if created {
			undo = append(undo, func(ctx context.Context) error { return a.releaseBridge(ctx, c, p.bridge) })
		}
		rec.BridgeCreated = created
		if err := c.SetBridge(ctx, sw, p.bridge, true); err != nil {
			return err
		}
		// Undo runs in reverse: leave the domain before it may be deleted.
		undo = append(undo, func(ctx context.Context) error { return c.SetBridge(ctx, sw, p.bridge, false) })
		if p.vlan != 0 {
			// After joining: the rewrite is an L2 feature of a bridged
			// interface. Disabling is harmless if enabling half failed.
			undo = append(undo, func(ctx context.Context) error { return c.SetAccessVLAN(ctx, sw, p.vlan, false) })
			if err := c.SetAccessVLAN(ctx, sw, p.vlan, true); err != nil {
				return err
			}
		}
	}
	if p.l3 {
		if err := a.configureL3(ctx, c, rec.Attachment.Key, sw, p, &undo); err != nil {
			return err
		}
		rec.Table = p.table
	}
	if err := c.AdminUp(ctx, sw); err != nil {
		return err
	}
	ifc, found, err := c.Interface(ctx, sw)
	if err != nil {
		return err
	}
	if found && ifc.Tag == rec.Tag {
		rec.Attachment.HostIfName = ifc.Name
		if p.kind == kindVhost || p.memif.Mode == 0 {
			rec.Attachment.HostMAC = ifc.MAC
		}
	}
	if err := a.store.Put(rec); err != nil {
		return err
	}
	success = true
	return nil
}

// configureL3 routes the pod addresses to interface sw: sw borrows the
// addresses of the network's loopback (IP unnumbered), answers ARP/ND for
// the subnet (proxy), and each pod address gets an attached host route
// through sw. See "netType interface (L3)" in the README for why.
func (a *Adapter) configureL3(ctx context.Context, c *vpp.Client, key contracts.AttachmentKey, sw uint32, p *plan, undo *[]func(context.Context) error) error {
	lo, err := a.ensureNetwork(ctx, c, key, p, undo)
	if err != nil {
		return err
	}
	if p.table != 0 {
		// The unnumbered interface must be in the table of the loopback.
		for _, v6 := range []bool{false, true} {
			if err := c.SetTable(ctx, sw, p.table, v6); err != nil {
				return err
			}
		}
	}
	if err := c.SetUnnumbered(ctx, lo, sw, true); err != nil {
		return err
	}
	*undo = append(*undo, func(ctx context.Context) error { return c.SetUnnumbered(ctx, lo, sw, false) })
	v4, v6 := p.families()
	if v4 {
		if err := c.ProxyARP(ctx, sw, true); err != nil {
			return err
		}
		*undo = append(*undo, func(ctx context.Context) error { return c.ProxyARP(ctx, sw, false) })
	}
	if v6 {
		if err := c.IP6(ctx, sw, true); err != nil {
			return err
		}
		*undo = append(*undo, func(ctx context.Context) error { return c.IP6(ctx, sw, false) })
		if err := c.NDProxy(ctx, sw, true); err != nil {
			return err
		}
		*undo = append(*undo, func(ctx context.Context) error { return c.NDProxy(ctx, sw, false) })
	}
	for _, pod := range p.pods {
		if err := c.Route(ctx, true, p.table, sw, pod); err != nil {
			return err
		}
		*undo = append(*undo, func(ctx context.Context) error { return c.Route(ctx, false, p.table, sw, pod) })
	}
	return nil
}

// ensureNetwork returns the network's loopback (p.loopTag), creating it on
// first use: tagged, in the network's table, admin up. It adds the
// gateways of p the loopback lacks and the proxy ARP ranges of p's IPv4
// subnets (VPP treats a repeated range as success).
func (a *Adapter) ensureNetwork(ctx context.Context, c *vpp.Client, key contracts.AttachmentKey, p *plan, undo *[]func(context.Context) error) (uint32, error) {
	loops, err := tagged(ctx, c, p.loopTag)
	if err != nil {
		return 0, err
	}
	// Whether created here or found, a failed attach releases the loopback
	// if no other record wants it.
	*undo = append(*undo, func(ctx context.Context) error { return a.releaseNetwork(ctx, c, key, p) })
	have := map[netip.Prefix]bool{}
	var lo uint32
	if len(loops) > 0 {
		lo = loops[0].SwIfIndex
		v4, v6 := gatewayFamilies(p.gateways)
		for _, fam := range []struct{ on, v6 bool }{{v4, false}, {v6, true}} {
			if !fam.on {
				continue
			}
			addrs, err := c.Addresses(ctx, lo, fam.v6)
			if err != nil {
				return 0, err
			}
			for _, ad := range addrs {
				have[ad] = true
			}
		}
	} else {
		if lo, err = c.CreateLoopback(ctx); err != nil {
			return 0, err
		}
		if err := c.SetTag(ctx, lo, p.loopTag); err != nil {
			_ = c.DeleteLoopback(ctx, lo) // untagged: nothing else would find it
			return 0, err
		}
		if p.table != 0 {
			for _, v6 := range []bool{false, true} {
				if err := c.AddTable(ctx, p.table, v6, p.tableName); err != nil {
					return 0, err
				}
				if err := c.SetTable(ctx, lo, p.table, v6); err != nil {
					return 0, err
				}
			}
		}
		// Admin up first: VPP installs the connected and local routes of
		// an address only while its interface is up.
		if err := c.AdminUp(ctx, lo); err != nil {
			return 0, err
		}
		a.keyLog(key).Info().Str("tag", p.loopTag).Uint32("sw_if_index", lo).Uint32("table", p.table).Msg("created the network's loopback")
	}
	for _, gw := range p.gateways {
		if have[gw] {
			continue
		}
		if err := c.AddAddress(ctx, lo, gw); err != nil {
			return 0, err
		}
	}
	for _, subnet := range p.subnets4 {
		low, high := proxyRange(subnet)
		if err := c.ProxyARPRange(ctx, true, p.table, low, high); err != nil {
			return 0, err
		}
	}
	return lo, nil
}

// releaseNetwork deletes the loopback of p's network and its proxy ARP
// ranges unless a record other than key's still wants it. Records are the
// desired state: an attach in flight has stored its record before it
// waits for a.shared, so its loopback is kept.
func (a *Adapter) releaseNetwork(ctx context.Context, c *vpp.Client, key contracts.AttachmentKey, p *plan) error {
	recs, _, err := a.records()
	if err != nil {
		return err
	}
	inUse := map[netip.Prefix]bool{} // proxy ranges other networks of the table need
	for _, r := range recs {
		if r.Attachment.Key == key || loopTagOf(r) == "" {
			continue
		}
		if loopTagOf(r) == p.loopTag {
			return nil
		}
		if other, err := planAttach(&contracts.AttachRequest{Key: r.Attachment.Key, Network: r.Attachment.Network,
			Interface: r.Attachment.Interface}, r.Table != 0); err == nil && other.table == p.table {
			for _, s := range other.subnets4 {
				inUse[s] = true
			}
		}
	}
	loops, err := tagged(ctx, c, p.loopTag)
	if err != nil {
		return err
	}
	for _, lo := range loops {
		if err := deleteLoopback(ctx, c, lo); err != nil {
			return err
		}
		a.keyLog(key).Info().Str("tag", p.loopTag).Uint32("sw_if_index", lo.SwIfIndex).Msg("deleted the network's loopback: its last L3 attachment went")
	}
	for _, subnet := range p.subnets4 {
		if inUse[subnet] {
			continue
		}
		low, high := proxyRange(subnet)
		if err := c.ProxyARPRange(ctx, false, p.table, low, high); err != nil {
			return err
		}
	}
	return nil
}

// deleteLoopback deletes a loopback the adapter created (by its tag).
func deleteLoopback(ctx context.Context, c *vpp.Client, lo vpp.Interface) error {
	if !strings.HasPrefix(lo.Tag, LoopbackTagPrefix) || !strings.HasPrefix(lo.Name, "loop") {
		return contracts.Errorf(contracts.CodeVswitch, "interface %s (sw_if_index %d, tag %q) is not a usrsp loopback; not deleting it",
			lo.Name, lo.SwIfIndex, lo.Tag)
	}
	return c.DeleteLoopback(ctx, lo.SwIfIndex)
}

// loopTagOf is the loopback tag an L3 record needs, "" for other records.
func loopTagOf(r *Record) string {
	if r.Attachment.Interface.NetType != contracts.NetTypeInterface {
		return ""
	}
	return LoopbackTag(r.Attachment.Network, r.Table)
}

func gatewayFamilies(gws []netip.Prefix) (v4, v6 bool) {
	for _, g := range gws {
		v4, v6 = v4 || g.Addr().Is4(), v6 || g.Addr().Is6()
	}
	return v4, v6
}

// ensureBridge creates bridge domain id unless it exists; true if it did.
func (a *Adapter) ensureBridge(ctx context.Context, c *vpp.Client, id uint32, known *replayView) (bool, error) {
	exists, err := known.bridgeExists(ctx, c, id)
	if err != nil || exists {
		return false, err
	}
	created, err := c.AddBridgeDomain(ctx, id, BridgeTag)
	if err == nil {
		known.addBridge(id)
	}
	return created, err
}

// releaseBridge deletes bridge domain id if the adapter created it (tag)
// and no interface is left in it.
func (a *Adapter) releaseBridge(ctx context.Context, c *vpp.Client, id uint32) error {
	bds, err := c.BridgeDomains(ctx, id)
	if err != nil {
		return err
	}
	if len(bds) != 1 || bds[0].Tag != BridgeTag || bds[0].Members > 0 {
		return nil
	}
	return c.DeleteBridgeDomain(ctx, id)
}

// Detach implements contracts.Adapter. Without a VPP connection it only
// drops the record: the replay on reconnect removes the then undesired
// interface by its tag. It publishes a detached event when something was
// removed, or an error event.
func (a *Adapter) Detach(ctx context.Context, r *contracts.DetachRequest) (*contracts.DetachResponse, error) {
	start := time.Now()
	a.gate.RLock()
	d, err := a.detach(ctx, r.Key)
	if err == nil {
		a.refreshOwned()
	}
	a.gate.RUnlock()
	network := cmp.Or(r.Network, d.network)
	switch {
	case err != nil:
		a.publish(contracts.ErrorEvent(contracts.OpDetach, &r.Key, network, time.Since(start), err))
		return nil, err
	case d.removed:
		a.publish(contracts.DetachedEvent(r.Key, network, time.Since(start), d.what))
	}
	a.overlay.Changed()
	return &contracts.DetachResponse{Removed: d.removed}, nil
}

// detached is what one detach did, for its event.
type detached struct {
	removed bool
	network string // from the record, if there was one
	what    string // event detail
}

// detach removes key's attachment; the caller holds the gate.
func (a *Adapter) detach(ctx context.Context, key contracts.AttachmentKey) (detached, error) {
	var d detached
	rec, found, err := a.record(key)
	if err != nil {
		return d, err
	}
	if found {
		d.network = rec.Attachment.Network
		d.what = describe(rec.Attachment)
	} else {
		d.what = "the interface tagged " + Tag(key) + " (it had no record)"
	}
	c, err := a.session()
	if err == nil {
		var removed bool
		if removed, err = a.teardown(ctx, c, Tag(key), rec); err != nil {
			return d, err
		}
		found = found || removed
	} else {
		a.keyLog(key).Warn().Err(err).Msg("detach while VPP is away: dropping the record, the replay removes the interface")
		d.what = "record dropped while VPP is unreachable; the replay removes its interface (tag " + Tag(key) + ")"
	}
	if err := a.store.Delete(key); err != nil {
		return d, err
	}
	d.removed = found
	return d, nil
}

// teardown removes the interface tagged tag and, when rec is known, its
// routes and L3 settings, the network's loopback (if no other L3
// attachment wants it), its bridge domain (if ours and empty) and its memif
// socket registration (if ours and unused). It reports whether an
// interface went.
func (a *Adapter) teardown(ctx context.Context, c *vpp.Client, tag string, rec *Record) (bool, error) {
	a.shared.Lock()
	defer a.shared.Unlock()
	owned, err := c.InterfacesTagged(ctx, BridgeTag) // "usrsp": attachments' and loopbacks' tags
	if err != nil {
		return false, err
	}
	ifs := withTag(owned, tag)
	var p *plan
	if rec != nil {
		p, _ = planAttach(&contracts.AttachRequest{Key: rec.Attachment.Key, Network: rec.Attachment.Network,
			Interface: rec.Attachment.Interface}, rec.Table != 0)
	}
	for _, ifc := range ifs {
		if p != nil && p.l3 {
			if err := unconfigureL3(ctx, c, ifc.SwIfIndex, withTag(owned, p.loopTag), p); err != nil {
				return false, err
			}
		}
		if p != nil && p.vlan != 0 {
			// VPP keeps an interface's L2 output config (rewrite, filter)
			// by sw_if_index, which a later interface may reuse.
			if err := c.SetAccessVLAN(ctx, ifc.SwIfIndex, p.vlan, false); err != nil {
				return false, err
			}
		}
		if p != nil && p.bridge != 0 {
			if err := c.SetBridge(ctx, ifc.SwIfIndex, p.bridge, false); err != nil {
				return false, err
			}
		}
		if err := deleteInterface(ctx, c, ifc); err != nil {
			return false, err
		}
	}
	if rec != nil && rec.Attachment.Interface.Overlay != nil {
		// The network's tunnels go before its bridge domain or loopback.
		last, err := a.lastOfNetwork(rec)
		if err != nil {
			return false, err
		}
		if last {
			if err := a.removeNetworkTunnels(ctx, c, rec.Attachment.Network); err != nil {
				return false, err
			}
		}
	}
	if p != nil && p.l3 {
		if err := a.releaseNetwork(ctx, c, rec.Attachment.Key, p); err != nil {
			return false, err
		}
	}
	if p != nil && p.bridge != 0 {
		if err := a.releaseBridge(ctx, c, p.bridge); err != nil {
			return false, err
		}
	}
	if rec != nil && rec.MemifSocketAdded {
		if err := releaseMemifSocket(ctx, c, rec.MemifSocketFile); err != nil {
			return false, err
		}
		if p != nil && p.memif.Master {
			a.removeListenerSocket(rec)
		}
	}
	return len(ifs) > 0, nil
}

// unconfigureL3 undoes configureL3 on interface sw before it is deleted:
// VPP keeps API routes through a deleted interface, and per-interface
// feature state (proxy ARP) would outlive it under a reused sw_if_index.
func unconfigureL3(ctx context.Context, c *vpp.Client, sw uint32, loops []vpp.Interface, p *plan) error {
	for _, pod := range p.pods {
		if err := c.Route(ctx, false, p.table, sw, pod); err != nil {
			return err
		}
	}
	v4, v6 := p.families()
	if v4 {
		if err := c.ProxyARP(ctx, sw, false); err != nil {
			return err
		}
	}
	if v6 {
		if err := c.NDProxy(ctx, sw, false); err != nil {
			return err
		}
		if err := c.IP6(ctx, sw, false); err != nil {
			return err
		}
	}
	for _, lo := range loops {
		if err := c.SetUnnumbered(ctx, lo.SwIfIndex, sw, false); err != nil {
			return err
		}
	}
	return nil
}

// releaseMemifSocket removes the registration of filename when no memif
// uses it any more. It looks the id up again: VPP may have restarted and
// given the id to another file.
func releaseMemifSocket(ctx context.Context, c *vpp.Client, filename string) error {
	id, found, err := c.MemifSocketID(ctx, filename)
	if err != nil || !found {
		return err
	}
	used, err := c.MemifSocketInUse(ctx, id)
	if err != nil || used {
		return err
	}
	return c.DeleteMemifSocket(ctx, id, filename)
}

// deleteInterface deletes an interface the adapter created, by its kind.
func deleteInterface(ctx context.Context, c *vpp.Client, ifc vpp.Interface) error {
	switch {
	case strings.HasPrefix(ifc.Name, "memif"):
		return c.DeleteMemif(ctx, ifc.SwIfIndex)
	case strings.HasPrefix(ifc.Name, "VirtualEthernet"):
		return c.DeleteVhost(ctx, ifc.SwIfIndex)
	case strings.HasPrefix(ifc.Name, vpp.AfPacketPrefix): // only the VPP interface: the netdev is cni-entry's
		return c.DeleteAfPacket(ctx, strings.TrimPrefix(ifc.Name, vpp.AfPacketPrefix))
	}
	return contracts.Errorf(contracts.CodeVswitch, "interface %s (sw_if_index %d, tag %q) is not memif, vhost-user or af_packet; not deleting it",
		ifc.Name, ifc.SwIfIndex, ifc.Tag)
}

// tagged returns the interfaces whose tag is exactly tag.
func tagged(ctx context.Context, c *vpp.Client, tag string) ([]vpp.Interface, error) {
	all, err := c.InterfacesTagged(ctx, tag)
	if err != nil {
		return nil, err
	}
	return withTag(all, tag), nil
}

// withTag returns the interfaces of ifs whose tag is exactly tag.
func withTag(ifs []vpp.Interface, tag string) []vpp.Interface {
	var out []vpp.Interface
	for _, i := range ifs {
		if i.Tag == tag {
			out = append(out, i)
		}
	}
	return out
}

// Check implements contracts.Adapter; a failed check is an error event.
func (a *Adapter) Check(ctx context.Context, r *contracts.CheckRequest) (*contracts.CheckResponse, error) {
	start := time.Now()
	resp, err := a.check(ctx, r)
	if err != nil {
		a.publish(contracts.ErrorEvent(contracts.OpCheck, &r.Key, r.Network, time.Since(start), err))
	}
	return resp, err
}

func (a *Adapter) check(ctx context.Context, r *contracts.CheckRequest) (*contracts.CheckResponse, error) {
	a.gate.RLock()
	defer a.gate.RUnlock()
	rec, found, err := a.record(r.Key)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, contracts.Errorf(contracts.CodeNotFound, "attachment %s not found on vpp", r.Key)
	}
	if !sameSpec(rec.Attachment, r.Network, r.Interface) {
		return nil, contracts.Errorf(contracts.CodeMismatch, "attachment %s differs from its configuration", r.Key)
	}
	c, err := a.session()
	if err != nil {
		return nil, err
	}
	ifs, err := tagged(ctx, c, rec.Tag)
	if err != nil {
		return nil, err
	}
	if len(ifs) == 0 {
		return nil, contracts.Errorf(contracts.CodeNotFound, "attachment %s: VPP has no interface tagged %s", r.Key, rec.Tag)
	}
	if want := uint32(r.Interface.MTU); want != 0 && ifs[0].MTU != want {
		return nil, contracts.Errorf(contracts.CodeMismatch, "attachment %s: VPP interface %s has MTU %d, interface.mtu says %d",
			r.Key, ifs[0].Name, ifs[0].MTU, want)
	}
	if err := checkRewrite(r, ifs[0]); err != nil {
		return nil, err
	}
	return &contracts.CheckResponse{Attachment: rec.Attachment}, nil
}

// checkRewrite compares the VLAN tag rewrite VPP reports for ifc with the
// access VLAN of r (none outside a bridge domain, or with vlan 0).
func checkRewrite(r *contracts.CheckRequest, ifc vpp.Interface) error {
	var want uint32
	if b := r.Interface.Bridge; b != nil && r.Interface.NetType == contracts.NetTypeBridge {
		want = uint32(b.VLAN)
	}
	got := ifc.Rewrite
	if want == 0 && got.Op == 0 || want != 0 && got.AccessVLAN() == want {
		return nil
	}
	have := "no VLAN tag rewrite"
	if got.Op != 0 {
		have = fmt.Sprintf("VLAN tag rewrite op %d tag %d (dot1q %v)", got.Op, got.Tag1, got.Dot1q)
	}
	if want == 0 {
		return contracts.Errorf(contracts.CodeMismatch, "attachment %s: VPP interface %s has %s, the configuration is untagged",
			r.Key, ifc.Name, have)
	}
	return contracts.Errorf(contracts.CodeMismatch, "attachment %s: VPP interface %s has %s, interface.bridge.vlan says push-1 dot1q %d",
		r.Key, ifc.Name, have, want)
}

// List implements contracts.Adapter.
func (a *Adapter) List(_ context.Context, r *contracts.ListRequest) (*contracts.ListResponse, error) {
	recs, _, err := a.records()
	if err != nil {
		a.publish(contracts.ErrorEvent(contracts.OpList, nil, r.Network, 0, err))
		return nil, err
	}
	out := []contracts.Attachment{}
	for _, rec := range recs {
		if r.Network == "" || rec.Attachment.Network == r.Network {
			out = append(out, rec.Attachment)
		}
	}
	return &contracts.ListResponse{Attachments: out}, nil
}

// GC implements contracts.Adapter: it detaches every attachment of the
// network that is not valid, with one detached event per attachment
// removed (and an error event per one that could not be). It holds the
// gate exclusively, like a replay: an attach in flight for a key not (yet)
// in Valid finishes first, and its record is then judged like any other.
func (a *Adapter) GC(ctx context.Context, r *contracts.GCRequest) (*contracts.GCResponse, error) {
	a.gate.Lock()
	defer a.gate.Unlock()
	// Records that do not hold up (checkRecord) go too: detach then
	// removes by tag and drops the file, touching no path they name.
	recs, err := a.store.List()
	if err != nil {
		a.publish(contracts.ErrorEvent(contracts.OpGC, nil, r.Network, 0, err))
		return nil, err
	}
	valid := map[contracts.AttachmentKey]bool{}
	for _, k := range r.Valid {
		valid[k] = true
	}
	out := &contracts.GCResponse{Removed: []contracts.AttachmentKey{}}
	var errs []error
	for _, rec := range recs {
		k := rec.Attachment.Key
		if rec.Attachment.Network != r.Network || valid[k] {
			continue
		}
		start := time.Now()
		d, err := a.detach(ctx, k)
		if err != nil {
			a.publish(contracts.ErrorEvent(contracts.OpGC, &k, r.Network, time.Since(start), err))
			errs = append(errs, err)
			continue
		}
		a.publish(contracts.GCEvent(k, r.Network, time.Since(start), d.what))
		out.Removed = append(out.Removed, k)
	}
	if len(out.Removed) > 0 {
		a.refreshOwned() // once: it reads and checks every record
		defer a.overlay.Changed()
	}
	if len(errs) > 0 {
		return nil, contracts.Errorf(contracts.CodeOf(errs[0]), "gc of network %s: %d of %d removals failed: %v",
			r.Network, len(errs), len(errs)+len(out.Removed), errors.Join(errs...))
	}
	return out, nil
}

// Status implements contracts.Adapter.
func (a *Adapter) Status(context.Context, *contracts.StatusRequest) (*contracts.StatusResponse, error) {
	recs, _, err := a.records()
	if err != nil {
		a.publish(contracts.ErrorEvent(contracts.OpStatus, nil, "", 0, err))
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s := &contracts.StatusResponse{Ready: a.ready, Engine: contracts.EngineVPP, Version: version.Version,
		Attachments: len(recs), Message: a.lastErr}
	if a.vppVersion != "" {
		s.Vswitch = "VPP " + a.vppVersion
	}
	return s, nil
}

func sameSpec(a contracts.Attachment, network string, h contracts.HostInterface) bool {
	x, err1 := json.Marshal(a.Interface)
	y, err2 := json.Marshal(h)
	return err1 == nil && err2 == nil && string(x) == string(y) && a.Network == network
}

// refreshOwned sets the attachments gauge from the records.
func (a *Adapter) refreshOwned() {
	if recs, _, err := a.records(); err == nil {
		a.cfg.Metrics.SetAttachments(len(recs))
	}
}

func (a *Adapter) publish(ev contracts.Event) {
	if a.cfg.Events == nil {
		return
	}
	if err := a.cfg.Events.Publish(ev); err != nil {
		a.cfg.Log.Debug().Err(err).Str("kind", string(ev.Kind)).Msg("event not published")
	}
}

func (a *Adapter) keyLog(k contracts.AttachmentKey) *zerolog.Logger {
	l := a.cfg.Log.With().Str("container_id", k.ContainerID).Str("ifname", k.IfName).Logger()
	return &l
}

// errorf is fmt.Errorf for messages that keep the code of err.
func errorf(err error, format string, args ...any) error {
	return contracts.Errorf(contracts.CodeOf(err), "%s: %v", fmt.Sprintf(format, args...), err)
}
