package adapter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/vpp"
)

// ReplaySummary counts what a replay did.
type ReplaySummary struct {
	Desired, Present, Recreated, Failed, StaleRemoved, BridgesRemoved, LoopbacksRemoved int
	// Ignored counts records that do not hold up (checkRecord), e.g. a
	// tampered state file: neither re-created nor desired.
	Ignored  int
	Duration time.Duration
	// events say what the replay did to which attachment; Up publishes
	// them after the summary, so a waiter for "reconciled" gets the summary.
	events []contracts.Event
}

func (s *ReplaySummary) note(ev contracts.Event) { s.events = append(s.events, ev) }

func (s ReplaySummary) String() string {
	return fmt.Sprintf("desired %d, present %d, recreated %d, failed %d, stale removed %d, bridge domains removed %d, loopbacks removed %d, records ignored %d",
		s.Desired, s.Present, s.Recreated, s.Failed, s.StaleRemoved, s.BridgesRemoved, s.LoopbacksRemoved, s.Ignored)
}

// reconcile makes VPP match the records: it recreates desired attachments
// VPP does not have (it lost them when it restarted), removes interfaces
// tagged as ours that no record wants, then the L3 network loopbacks no
// record wants and our empty bridge domains. Interfaces and bridge domains
// without our tags are never touched.
func (a *Adapter) reconcile(ctx context.Context, c *vpp.Client) (sum ReplaySummary, err error) {
	start := time.Now()
	defer func() { sum.Duration = time.Since(start) }()
	recs, bad, err := a.records()
	if err != nil {
		return sum, err
	}
	for r, why := range bad {
		sum.Ignored++
		k := r.Attachment.Key
		a.keyLog(k).Error().Err(why).Msg("record left out of the replay")
		sum.note(contracts.ErrorEvent(opReplay, &k, r.Attachment.Network, 0, why))
	}
	all, err := c.InterfacesTagged(ctx, BridgeTag) // "usrsp": attachments' and loopbacks' tags
	if err != nil {
		return sum, err
	}
	var owned, loops []vpp.Interface
	present := map[string]bool{}
	hasTunnels := false
	for _, i := range all {
		switch {
		case strings.HasPrefix(i.Tag, TagPrefix):
			owned = append(owned, i)
			present[i.Tag] = true
		case strings.HasPrefix(i.Tag, LoopbackTagPrefix):
			loops = append(loops, i)
		case strings.HasPrefix(i.Tag, TunnelTagPrefix):
			hasTunnels = true
		}
	}
	view, err := newReplayView(ctx, c)
	if err != nil {
		return sum, err
	}
	desired := map[string]bool{}
	wantLoop := map[string]bool{}
	wantBridge := map[uint32]bool{}
	var errs []error
	for _, rec := range recs {
		sum.Desired++
		desired[rec.Tag] = true
		k := rec.Attachment.Key
		p, err := planAttach(&contracts.AttachRequest{Key: k, Network: rec.Attachment.Network, Pod: rec.Attachment.Pod,
			Interface: rec.Attachment.Interface}, a.cfg.TablePerNetwork)
		if err != nil {
			sum.Failed++
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
			sum.note(contracts.ErrorEvent(opReplay, &k, rec.Attachment.Network, 0, errorf(err, "the record cannot be planned")))
			continue
		}
		if p.bridge != 0 {
			wantBridge[p.bridge] = true
		}
		if p.l3 {
			wantLoop[p.loopTag] = true
		}
		if present[rec.Tag] {
			sum.Present++
			continue
		}
		// Confined again before VPP gets the paths. A pod directory that no
		// longer confines is that pod's problem: reported, but it does not
		// fail the replay (the node stays ready for every other pod).
		if err := a.confinePlan(p, rec.Attachment.Interface); err != nil {
			sum.Failed++
			a.keyLog(k).Error().Err(err).Msg("replay of attachment refused: its paths no longer confine")
			sum.note(contracts.ErrorEvent(opReplay, &k, rec.Attachment.Network, 0, err))
			continue
		}
		if err := a.realize(ctx, c, rec, p, view); err != nil {
			view = nil
			sum.Failed++
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
			a.keyLog(k).Error().Err(err).Msg("replay of attachment failed")
			sum.note(contracts.ErrorEvent(opReplay, &k, rec.Attachment.Network, 0, err))
			continue
		}
		sum.Recreated++
		sum.note(contracts.ReconciledEvent(&k, rec.Attachment.Network, 0, "re-created "+describe(rec.Attachment)))
		a.keyLog(k).Info().Str("tag", rec.Tag).Uint32("sw_if_index", rec.SwIfIndex).Msg("attachment recreated by replay")
	}
	for _, ifc := range owned {
		if desired[ifc.Tag] {
			continue
		}
		if _, err := a.teardown(ctx, c, ifc.Tag, nil); err != nil {
			errs = append(errs, fmt.Errorf("stale interface %s (tag %s): %w", ifc.Name, ifc.Tag, err))
			continue
		}
		sum.StaleRemoved++
		sum.note(contracts.ReconciledEvent(nil, "", 0, fmt.Sprintf("removed %s (tag %s): no attachment record wants it", ifc.Name, ifc.Tag)))
		a.cfg.Log.Info().Str("tag", ifc.Tag).Str("vpp_interface", ifc.Name).Msg("removed stale interface no record wants")
	}
	// Before the stale loopbacks and empty bridge domains: a tunnel is
	// unnumbered to the one and a member of the other.
	if hasTunnels {
		if err := a.removeStaleTunnels(ctx, c, recs, bad, &sum); err != nil {
			errs = append(errs, err)
		}
	}
	// Proxy ARP ranges of a stale loopback stay: its network's subnets are
	// not known without a record (they answer only on interfaces with proxy
	// ARP enabled, and those went with their attachments).
	for _, lo := range loops {
		if wantLoop[lo.Tag] {
			continue
		}
		if err := deleteLoopback(ctx, c, lo); err != nil {
			errs = append(errs, fmt.Errorf("stale loopback %s (tag %s): %w", lo.Name, lo.Tag, err))
			continue
		}
		sum.LoopbacksRemoved++
		sum.note(contracts.ReconciledEvent(nil, "", 0, fmt.Sprintf("removed L3 network loopback %s (tag %s): no attachment of its network is left", lo.Name, lo.Tag)))
		a.cfg.Log.Info().Str("tag", lo.Tag).Str("vpp_interface", lo.Name).Msg("removed stale L3 network loopback no record wants")
	}
	bds, err := c.BridgeDomains(ctx, ^uint32(0))
	if err != nil {
		errs = append(errs, err)
	}
	for _, bd := range bds {
		if bd.Tag != BridgeTag || bd.Members > 0 || wantBridge[bd.ID] {
			continue
		}
		if err := c.DeleteBridgeDomain(ctx, bd.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		sum.BridgesRemoved++
		sum.note(contracts.ReconciledEvent(nil, "", 0, fmt.Sprintf("removed empty bridge domain %d (tag %s): no attachment wants it", bd.ID, bd.Tag)))
	}
	a.cfg.Metrics.SetAttachments(sum.Desired)
	if len(errs) > 0 {
		return sum, errorf(errors.Join(errs...), "replay of %d records", len(recs))
	}
	return sum, nil
}

// replayView is what a replay pass knows of VPP's memif socket
// registrations and bridge domains: read once per pass instead of once per
// record, which made replaying 1000 memifs take ~25 s (every record dumped
// every registration and its bridge domain's members). Only the replay
// changes VPP while it runs (it holds the gate), and it notes what it adds.
// A nil view asks VPP every time, as an attach does. After a failed record
// the pass drops its view: that record's undo may have removed what the
// view says exists.
type replayView struct {
	sockets map[string]uint32
	bridges map[uint32]bool
}

func newReplayView(ctx context.Context, c *vpp.Client) (*replayView, error) {
	sockets, err := c.MemifSockets(ctx)
	if err != nil {
		return nil, err
	}
	bds, err := c.BridgeDomains(ctx, ^uint32(0))
	if err != nil {
		return nil, err
	}
	v := &replayView{sockets: sockets, bridges: map[uint32]bool{}}
	for _, bd := range bds {
		v.bridges[bd.ID] = true
	}
	return v, nil
}

func (v *replayView) memifSocketID(ctx context.Context, c *vpp.Client, filename string) (uint32, bool, error) {
	if v == nil {
		return c.MemifSocketID(ctx, filename)
	}
	id, found := v.sockets[filename]
	return id, found, nil
}

func (v *replayView) addSocket(filename string, id uint32) {
	if v != nil {
		v.sockets[filename] = id
	}
}

func (v *replayView) bridgeExists(ctx context.Context, c *vpp.Client, id uint32) (bool, error) {
	if v == nil {
		bds, err := c.BridgeDomains(ctx, id)
		return len(bds) > 0, err
	}
	return v.bridges[id], nil
}

func (v *replayView) addBridge(id uint32) {
	if v != nil {
		v.bridges[id] = true
	}
}
