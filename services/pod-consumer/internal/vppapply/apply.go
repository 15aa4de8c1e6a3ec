// Package vppapply creates the container side of the pod's interfaces in
// the pod's own VPP: memif or vhost-user, MAC, MTU, addresses, routes,
// admin up. Everything it creates carries the tag "usrsp-pod:<ifName>", so
// applying again finds the interface and changes nothing. It talks to VPP
// through libs/vpp, the client vpp-adapter uses for the node's VPP.
package vppapply

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"go.fd.io/govpp/adapter"
	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/vhost_user"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/vpp"
	"usrsp.dev/services/pod-consumer/internal/discovery"
)

// Applier applies pod interfaces to one VPP.
type Applier struct {
	VPP *vpp.Client
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

// Watch returns the loop behind `apply --watch`: on every connect to the
// pod's VPP (the first, and each after VPP restarted) it checks the
// messages apply uses and runs apply; when apply fails or VPP stops
// answering it tells onError and dials again, with backoff.
func Watch(newAdapter func() adapter.VppAPI, apply func(context.Context, *vpp.Client) error, onError func(error)) *vpp.Loop {
	return &vpp.Loop{NewAdapter: newAdapter, Messages: messages(),
		Setup: func(ctx context.Context, s vpp.Session) error { return apply(ctx, s.Client) },
		Down:  onError, MinBackoff: 500 * time.Millisecond, MaxBackoff: 10 * time.Second,
		ProbeInterval: 2 * time.Second, ProbeTimeout: 2 * time.Second}
}

// messages are the requests and replies apply uses (and the loop's
// control ping): a pod's VPP need not know what only vpp-adapter sends.
func messages() []api.Message {
	return []api.Message{&memclnt.ControlPing{}, &memclnt.ControlPingReply{}, &ip.IPAddressDump{}, &ip.IPAddressDetails{},
		&ip.IPRouteLookup{}, &ip.IPRouteLookupReply{}, &ip.IPRouteAddDel{}, &ip.IPRouteAddDelReply{},
		&memif.MemifSocketFilenameDump{}, &memif.MemifSocketFilenameDetails{}, &memif.MemifSocketFilenameAddDelV2{},
		&memif.MemifSocketFilenameAddDelV2Reply{}, &memif.MemifCreateV2{}, &memif.MemifCreateV2Reply{}, &memif.MemifDelete{},
		&memif.MemifDeleteReply{}, &vhost_user.CreateVhostUserIfV2{}, &vhost_user.CreateVhostUserIfV2Reply{},
		&vhost_user.DeleteVhostUserIf{}, &vhost_user.DeleteVhostUserIfReply{}, &interfaces.SwInterfaceDump{},
		&interfaces.SwInterfaceDetails{}, &interfaces.SwInterfaceTagAddDel{}, &interfaces.SwInterfaceTagAddDelReply{},
		&interfaces.SwInterfaceSetFlags{}, &interfaces.SwInterfaceSetFlagsReply{}, &interfaces.SwInterfaceSetMtu{},
		&interfaces.SwInterfaceSetMtuReply{}, &interfaces.SwInterfaceAddDelAddress{}, &interfaces.SwInterfaceAddDelAddressReply{}}
}

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
	tagged, err := a.VPP.InterfacesTagged(ctx, TagPrefix)
	if err != nil {
		return nil, err
	}
	existing := map[string]vpp.Interface{}
	for _, i := range tagged {
		existing[i.Tag] = i
	}
	results := make([]Result, len(plans))
	for n, p := range plans {
		start := time.Now()
		r, err := a.applyOne(ctx, p, existing)
		if err != nil {
			return results[:n], fmt.Errorf("%s: %w", p.ifName, err)
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

// applyOne makes one interface match its plan.
func (a *Applier) applyOne(ctx context.Context, p plan, existing map[string]vpp.Interface) (Result, error) {
	r := Result{IfName: p.ifName}
	st, found := existing[p.tag]
	if !found {
		idx, err := a.create(ctx, p)
		if err != nil {
			return r, err
		}
		st = vpp.Interface{SwIfIndex: idx}
		r.Created = true
		r.Changes = append(r.Changes, "created "+p.kind)
	}
	r.SwIfIndex, r.VPPName = st.SwIfIndex, st.Name
	if p.mtu > 0 && st.MTU != p.mtu {
		if err := a.VPP.SetMTU(ctx, st.SwIfIndex, p.mtu); err != nil {
			return r, err
		}
		r.Changes = append(r.Changes, fmt.Sprintf("mtu %d", p.mtu))
	}
	added, err := a.ensureAddresses(ctx, st.SwIfIndex, p.addrs)
	r.Changes = append(r.Changes, added...)
	if err != nil {
		return r, err
	}
	added, err = a.ensureRoutes(ctx, st.SwIfIndex, p.routes)
	r.Changes = append(r.Changes, added...)
	if err != nil {
		return r, err
	}
	if !st.AdminUp {
		if err := a.VPP.AdminUp(ctx, st.SwIfIndex); err != nil {
			return r, err
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
		idx, err = a.VPP.CreateVhost(ctx, *p.vhost)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p.describe(), err)
	}
	if err := a.VPP.SetTag(ctx, idx, p.tag); err != nil {
		a.deleteCreated(p, idx)
		return 0, err
	}
	return idx, nil
}

func (a *Applier) deleteCreated(p plan, idx uint32) {
	// Undo on a fresh context: the caller's may be what failed.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	if p.memif != nil {
		err = a.VPP.DeleteMemif(ctx, idx)
	} else {
		err = a.VPP.DeleteVhost(ctx, idx)
	}
	if err != nil {
		a.Log.Warn().Err(err).Str("ifname", p.ifName).Uint32("sw_if_index", idx).Msg("undo: could not delete the untagged interface")
	}
}

// createMemif registers the memif's socket in VPP's socket table unless
// it is there, and creates the memif on it.
func (a *Applier) createMemif(ctx context.Context, p plan) (uint32, error) {
	id, found, err := a.VPP.MemifSocketID(ctx, p.memifSocket)
	if err != nil {
		return 0, err
	}
	if !found {
		if id, err = a.VPP.AddMemifSocket(ctx, p.memifSocket); err != nil {
			return 0, err
		}
	}
	cfg := *p.memif
	cfg.SocketID = id
	return a.VPP.CreateMemif(ctx, cfg)
}

// ensureAddresses adds the addresses the interface does not have yet.
func (a *Applier) ensureAddresses(ctx context.Context, idx uint32, want []netip.Prefix) ([]string, error) {
	var have []netip.Prefix
	for _, v6 := range []bool{false, true} {
		if !slices.ContainsFunc(want, func(p netip.Prefix) bool { return p.Addr().Is6() == v6 }) {
			continue
		}
		got, err := a.VPP.Addresses(ctx, idx, v6)
		if err != nil {
			return nil, err
		}
		have = append(have, got...)
	}
	var added []string
	for _, p := range want {
		if slices.Contains(have, p) {
			continue
		}
		if err := a.VPP.AddAddress(ctx, idx, p); err != nil {
			return added, err
		}
		added = append(added, "address "+p.String())
	}
	return added, nil
}

// ensureRoutes adds each route unless an exact lookup shows it already goes
// out of this interface (to the same next hop).
func (a *Applier) ensureRoutes(ctx context.Context, idx uint32, want []route) ([]string, error) {
	var added []string
	for _, r := range want {
		path := vpp.Path{SwIfIndex: idx, Via: r.gw}
		have, err := a.VPP.RoutePaths(ctx, 0, r.dst)
		if err != nil {
			return added, err
		}
		if slices.Contains(have, path) {
			continue
		}
		if err := a.VPP.AddRoute(ctx, 0, r.dst, path); err != nil {
			return added, err
		}
		added = append(added, r.String())
	}
	return added, nil
}

// waitLinkUp polls the interface until VPP reports its link up, or ctx
// (bounded by LinkTimeout) ends, with a message naming the interface and
// its socket. It returns VPP's interface name.
func (a *Applier) waitLinkUp(ctx context.Context, p plan, idx uint32) (string, error) {
	var name string
	for {
		i, _, err := a.VPP.Interface(ctx, idx)
		if i.Name != "" {
			name = i.Name
		}
		if i.LinkUp {
			return name, nil
		}
		if err != nil && ctx.Err() == nil {
			return name, fmt.Errorf("%s: %w", p.ifName, err)
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
