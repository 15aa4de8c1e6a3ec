package adapter

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/adapterkit/overlay"
	"usrsp.dev/services/ovs-adapter/ovs"
)

// Overlay networks on OVS-DPDK are bridge networks whose bridge gets one
// VXLAN port per peer node (OVS userspace tunneling: the operator's
// underlay bridge br-phy carries the encapsulated frames, see README).

var _ overlay.Dataplane = (*Adapter)(nil)

// SetOverlay makes the adapter tell o (the node's overlay discovery) when
// its overlay membership or the vswitch changed: after every successful
// attach, detach, GC and reconcile. nil stops that. Call it before
// serving.
func (a *Adapter) SetOverlay(o interface{ Changed() }) { a.overlay.Set(o) }

// checkOverlay refuses an overlay network on a node without a VTEP.
func (a *Adapter) checkOverlay(h contracts.HostInterface) error {
	if h.Overlay != nil && !a.cfg.VTEP.IsValid() {
		return contracts.Errorf(contracts.CodeInvalidConfig,
			"interface.overlay: this ovs-dpdk adapter has no --vtep (underlay address), so it serves no overlay networks")
	}
	return nil
}

// Members implements overlay.Dataplane: the overlay networks with an
// attachment on this node.
func (a *Adapter) Members() ([]contracts.OverlayMember, error) {
	recs := a.snapshot()
	atts := make([]contracts.Attachment, len(recs))
	for i, r := range recs {
		atts[i] = r.Attachment
	}
	return overlay.Members(atts), nil
}

// TunnelName is the OVS port name of the VXLAN port of network to the
// peer VTEP remote: "usx" and the first 12 hex digits of
// SHA-256("<network>/<remote>"), 15 bytes like PortName.
func TunnelName(network, remote string) string { return "usx" + overlay.ID(network, remote) }

// overlayBridge is where an overlay network's tunnels go: the bridge and
// VLAN of its attachments.
type overlayBridge struct {
	bridge string
	tag    int
}

// overlayBridges maps each overlay network with a record to its bridge
// (the first record's by key, should two disagree).
func (a *Adapter) overlayBridges() map[string]overlayBridge {
	recs := a.snapshot()
	slices.SortFunc(recs, func(x, y Record) int { return strings.Compare(x.Attachment.Key.String(), y.Attachment.Key.String()) })
	out := map[string]overlayBridge{}
	for _, r := range recs {
		n := r.Attachment.Network
		if _, seen := out[n]; !seen && r.Attachment.Interface.Overlay != nil {
			out[n] = overlayBridge{bridge: r.Port.Bridge, tag: r.Port.Tag}
		}
	}
	return out
}

// tunnelSpec is the VXLAN port of t on b.
func tunnelSpec(t overlay.Tunnel, b overlayBridge) ovs.PortSpec {
	remote := t.Remote.String()
	return ovs.PortSpec{
		Name: TunnelName(t.Network, remote), Bridge: b.bridge, Type: ovs.TypeVXLAN, Tag: b.tag, Protected: true,
		Options: map[string]string{
			"remote_ip": remote, "local_ip": t.Local.String(),
			"key": strconv.FormatUint(uint64(t.VNI), 10), "dst_port": strconv.Itoa(int(t.Port)),
		},
		ExternalIDs: map[string]string{
			ovs.ExtOwner: ovs.OwnerValue, ovs.ExtNetwork: t.Network, ovs.ExtRemote: remote, ovs.ExtPeer: t.Peer,
		},
	}
}

// sameTunnel reports whether the live port is spec (its peer name aside:
// a renamed node keeps its tunnel).
func sameTunnel(spec ovs.PortSpec, p ovs.Port) bool {
	return !p.Broken() && p.Bridge == spec.Bridge && p.Type == spec.Type && p.Tag == spec.Tag &&
		p.Protected && maps.Equal(p.Options, spec.Options)
}

// SyncTunnels implements overlay.Dataplane: one VXLAN port per wanted
// (network, peer VTEP) on the network's bridge; usrsp's VXLAN ports not
// wanted go when prune is set, and those of networks without an
// attachment here go always (this node knows it has no pods there).
// Ports usrsp did not make are never touched.
func (a *Adapter) SyncTunnels(ctx context.Context, want []overlay.Tunnel, prune bool) error {
	a.gate.RLock()
	defer a.gate.RUnlock()
	a.tunnelMu.Lock()
	defer a.tunnelMu.Unlock()
	if !a.cfg.VTEP.IsValid() {
		return contracts.Errorf(contracts.CodeInvalidConfig, "tunnels: this ovs-dpdk adapter has no --vtep")
	}
	bridges := a.overlayBridges()
	live, err := a.tunnels(ctx)
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	var add []ovs.PortSpec
	for _, t := range want {
		b, ok := bridges[t.Network]
		if !ok || t.NetType != contracts.NetTypeBridge {
			continue // its last pod just went, or routed: not on OVS
		}
		spec := tunnelSpec(t, b)
		if keep[spec.Name] {
			continue
		}
		keep[spec.Name] = true
		if p, ok := live[spec.Name]; !ok || !sameTunnel(spec, p) {
			add = append(add, spec)
		}
	}
	var doomed []string
	for name, p := range live {
		_, local := bridges[p.ExternalIDs[ovs.ExtNetwork]]
		if !keep[name] && (prune || !local) {
			doomed = append(doomed, name)
		}
	}
	slices.Sort(doomed)
	if len(doomed) > 0 {
		if _, err := a.cfg.OVS.DeletePorts(ctx, doomed); err != nil {
			return fmt.Errorf("tunnels: %w", err)
		}
	}
	if len(add) > 0 {
		if _, err := a.cfg.OVS.AddPorts(ctx, add); err != nil {
			return fmt.Errorf("tunnels: %w", err)
		}
	}
	return nil
}

// tunnels reads usrsp's VXLAN ports by name.
func (a *Adapter) tunnels(ctx context.Context) (map[string]ovs.Port, error) {
	owned, err := a.cfg.OVS.OwnedPorts(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]ovs.Port{}
	for _, p := range owned {
		if p.IsTunnel() {
			out[p.Name] = p
		}
	}
	return out, nil
}

// dropTunnels removes the VXLAN ports of network if it has no attachment
// left here (after a detach or GC removed the last one), so their bridge
// goes too if usrsp made it. The caller holds the gate.
func (a *Adapter) dropTunnels(ctx context.Context, network string) error {
	a.tunnelMu.Lock()
	defer a.tunnelMu.Unlock()
	if _, local := a.overlayBridges()[network]; local {
		return nil // not the last attachment
	}
	live, err := a.tunnels(ctx)
	if err != nil {
		return err
	}
	var doomed []string
	for name, p := range live {
		if p.ExternalIDs[ovs.ExtNetwork] == network {
			doomed = append(doomed, name)
		}
	}
	if len(doomed) == 0 {
		return nil
	}
	slices.Sort(doomed)
	_, err = a.cfg.OVS.DeletePorts(ctx, doomed)
	return err
}

// dropTunnelsAfter drops the VXLAN ports of rec's overlay network when
// rec (forgotten already) was its last attachment here. A failure does
// not fail op, whose port is gone: it is published, and the next tunnel
// sync removes the ports (their network is not local any more).
func (a *Adapter) dropTunnelsAfter(ctx context.Context, op contracts.Op, rec Record) {
	n := rec.Attachment.Network
	if rec.Attachment.Interface.Overlay == nil {
		return
	}
	if err := a.dropTunnels(ctx, n); err != nil {
		k := rec.Attachment.Key
		a.publish(contracts.ErrorEvent(op, &k, n, 0, fmt.Errorf("VXLAN ports of network %s left for the next tunnel sync: %w", n, err)))
	}
}
