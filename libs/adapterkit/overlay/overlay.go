// Package overlay is the engine-independent half of networks that span
// nodes: peer discovery over NATS and the set of VXLAN tunnels it implies.
// The engine (Dataplane) says which overlay networks have pods on this
// node and makes the vswitch's tunnels match the set the Manager computes.
//
// Discovery is plain NATS publish/subscribe, not a JetStream bucket: every
// adapter publishes an Announcement on its node's subject
// (contracts.DiscoverySubject) every Interval and at once on a change, and
// subscribes to every node's. Only node N's adapter identity may publish
// on N's subject (libs/natsauth), so a node cannot announce for another.
// A peer is forgotten when it says it is leaving, or when 3 of its
// intervals pass without a word. Nothing is stored in NATS, so there is
// no stream or bucket to size, replicate or repair; a restarted adapter
// learns every peer within one round trip because peers answer a new
// epoch at once.
package overlay

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"usrsp.dev/contracts"
)

// DefaultInterval is how often an adapter announces itself. A peer that
// stops is forgotten after HoldIntervals of its intervals.
const DefaultInterval = 5 * time.Second

// coalesce is how long the Manager gathers local changes before it looks
// at them: a burst of attaches costs one read of the members, not one per
// pod.
const coalesce = 100 * time.Millisecond

// HoldIntervals is how many of a peer's intervals may pass silently
// before it is forgotten and its tunnels removed.
const HoldIntervals = 3

// Tunnel is one VXLAN tunnel the vswitch should have: from this node's
// VTEP to a peer's, for one local overlay network.
type Tunnel struct {
	Network string // the local network (the records' network name)
	NetType contracts.NetType
	VNI     uint32
	Port    uint16
	Local   netip.Addr // this node's VTEP
	Remote  netip.Addr // the peer's VTEP
	Peer    string     // the peer's node name
	// Routes are the peer's pod addresses on a routed network (netType
	// interface), to route into this tunnel.
	Routes []netip.Prefix
}

// ID names the tunnel of network to the peer VTEP remote in the vswitch
// (VPP's tag, OVS's port name): 12 hex digits of
// SHA-256("<network>/<remote>"), stable across restarts and short enough
// for an interface name.
func ID(network, remote string) string {
	sum := sha256.Sum256([]byte(network + "/" + remote))
	return hex.EncodeToString(sum[:6])
}

func (t Tunnel) String() string {
	return fmt.Sprintf("%s vni %d -> %s (%s)", t.Network, t.VNI, t.Remote, t.Peer)
}

// Dataplane is the engine's part of the overlay.
type Dataplane interface {
	// Members lists this node's overlay networks that have at least one
	// attachment, from the adapter's records.
	// An error keeps the last announcement: a passing read error must
	// not make every peer drop its tunnels to this node.
	Members() ([]contracts.OverlayMember, error)
	// SyncTunnels makes the tunnels the adapter created on the vswitch
	// (and only those) exactly want. With prune false it only adds and
	// updates: the Manager has not listened long enough to know that a
	// tunnel it does not want is stale.
	SyncTunnels(ctx context.Context, want []Tunnel, prune bool) error
}

// Config configures a Manager.
type Config struct {
	NC     *nats.Conn
	Node   string
	Engine contracts.Engine
	// VTEP is this node's underlay address, the local end of its tunnels.
	VTEP      netip.Addr
	Interval  time.Duration // default DefaultInterval
	Dataplane Dataplane
	Log       zerolog.Logger
	// OnSync, if set, is told the outcome of every tunnel sync (the
	// daemon's metrics and readiness).
	OnSync func(tunnels int, err error)
}

// Peer is another node's adapter as last announced.
type Peer struct {
	Node     string
	VTEP     netip.Addr
	Networks []contracts.OverlayMember
	Expires  time.Time
	epoch    int64
	seq      uint64
}

// Manager announces this node and keeps the vswitch's tunnels in step
// with its peers. Run it with Run; tell it about local changes with
// Changed.
type Manager struct {
	cfg   Config
	log   zerolog.Logger
	nudge chan struct{}
	epoch int64

	mu    sync.Mutex
	peers map[string]*Peer // by node name
	seq   uint64
	// lastMembers is what was announced last, to announce at once on a
	// change.
	lastMembers []contracts.OverlayMember
	// left is the epoch each peer announced leaving with: a late copy of
	// an older announcement of that run must not bring it back.
	left map[string]int64
}

// New checks cfg and returns a Manager.
func New(cfg Config) (*Manager, error) {
	switch {
	case cfg.NC == nil || cfg.Dataplane == nil:
		return nil, errors.New("overlay: NC and Dataplane are required")
	case cfg.Node == "" || !cfg.Engine.Valid():
		return nil, errors.New("overlay: node and engine are required")
	case !cfg.VTEP.IsValid() || !cfg.VTEP.IsGlobalUnicast():
		return nil, contracts.Errorf(contracts.CodeInvalidConfig, "overlay: VTEP %q is not a unicast address", cfg.VTEP)
	case !cfg.VTEP.Is4():
		// Pod MTUs leave room for VXLAN over IPv4 (contracts.VXLANOverhead);
		// over IPv6 the outer header is 20 bytes longer.
		return nil, contracts.Errorf(contracts.CodeInvalidConfig, "overlay: VTEP %s is not IPv4; overlays need an IPv4 underlay", cfg.VTEP)
	}
	cfg.Interval = cmp.Or(cfg.Interval, DefaultInterval)
	if cfg.Interval < contracts.MinAnnounceInterval || cfg.Interval > contracts.MaxAnnounceInterval {
		return nil, contracts.Errorf(contracts.CodeInvalidConfig, "overlay: interval %v is not in %v..%v",
			cfg.Interval, contracts.MinAnnounceInterval, contracts.MaxAnnounceInterval)
	}
	return &Manager{cfg: cfg, log: cfg.Log.With().Str("component", "overlay").Logger(),
		nudge: make(chan struct{}, 1), epoch: time.Now().UnixNano(), peers: map[string]*Peer{}, left: map[string]int64{}}, nil
}

// VTEP is this node's underlay address.
func (m *Manager) VTEP() netip.Addr { return m.cfg.VTEP }

// Changed tells the Manager that local membership or the vswitch changed
// (an attach, detach or GC, a reconnect and replay): it announces a
// change at once and syncs the tunnels. It never blocks.
func (m *Manager) Changed() {
	select {
	case m.nudge <- struct{}{}:
	default:
	}
}

// Peers returns the peers known now, sorted by node.
func (m *Manager) Peers() []Peer {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Peer, 0, len(m.peers))
	for _, p := range m.peers {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b Peer) int { return strings.Compare(a.Node, b.Node) })
	return out
}

// Run announces and syncs until ctx ends, then announces that this node
// is leaving (peers drop their tunnels to it at once). It returns nil
// when ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	msgs := make(chan *nats.Msg, 256)
	sub, err := m.cfg.NC.ChanSubscribe(contracts.AllDiscoverySubject, msgs)
	if err != nil {
		return fmt.Errorf("overlay: subscribe %s: %w", contracts.AllDiscoverySubject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := m.cfg.NC.FlushTimeout(5 * time.Second); err != nil {
		m.log.Warn().Err(err).Msg("flush after subscribing to discovery")
	}
	m.log.Info().Str("vtep", m.cfg.VTEP.String()).Dur("interval", m.cfg.Interval).
		Str("subject", contracts.DiscoverySubject(m.cfg.Node)).Msg("overlay discovery started")

	// hold is how long this node listens before it may prune tunnels it
	// does not want: a restarted adapter must not tear down tunnels its
	// peers will confirm within their next announcement.
	hold := HoldIntervals * m.cfg.Interval
	// connectedSince is when the NATS connection last came up: peers are
	// not expired, and nothing is pruned, while this node cannot hear
	// them, nor for one hold after (an adapter that restarts while its
	// NATS is cut off keeps its tunnels).
	connectedSince := time.Now()
	tick := time.NewTicker(m.cfg.Interval)
	defer tick.Stop()
	// In a NATS cluster this node's new subscription reaches the other
	// servers a moment after it is made, so peers' answers to the first
	// announcement can miss it: announce once more soon after, to be
	// answered again, rather than wait a whole interval.
	again := time.NewTimer(min(m.cfg.Interval/2, time.Second))
	defer again.Stop()
	local := m.members()
	m.announce(local)
	m.sync(ctx, local, connectedSince, hold)
	for {
		select {
		case <-ctx.Done():
			m.leave()
			_ = m.cfg.NC.FlushTimeout(2 * time.Second)
			m.log.Info().Msg("overlay discovery stopped; announced leaving")
			return nil
		case <-tick.C:
			// Announcements that queued while a sync blocked are newer
			// than the deadlines expire would judge (a peer that asked to
			// be answered is, by the announcement below).
			m.receiveQueued(msgs)
			now := time.Now()
			if !m.cfg.NC.IsConnected() {
				connectedSince = now.Add(m.cfg.Interval) // not before the next tick
			} else if now.Sub(connectedSince) >= hold {
				m.expire(now)
			}
			local = m.members()
			m.announce(local)
		case <-again.C:
			m.announceAsNew(m.members())
			continue
		case <-m.nudge:
			// A burst of attaches nudges once per pod; reading the
			// members once per coalesce window bounds the cost.
			select {
			case <-time.After(coalesce):
			case <-ctx.Done():
				continue
			}
			select {
			case <-m.nudge:
			default:
			}
			local = m.members()
			if m.changedSinceAnnounced(local) {
				m.announce(local)
			}
		case msg := <-msgs:
			c, a := m.receive(msg)
			changed, answer := m.receiveQueued(msgs)
			changed, answer = changed || c, answer || a
			if !changed && !answer {
				continue
			}
			local = m.members()
			if answer {
				m.announce(local)
			}
			if !changed {
				continue
			}
		}
		m.sync(ctx, local, connectedSince, hold)
	}
}

// receive applies one announcement. changed: the peer set or a peer's
// networks changed; answer: the sender is new or restarted and should
// hear from this node now.
func (m *Manager) receive(msg *nats.Msg) (changed, answer bool) {
	a, err := contracts.DecodeAnnouncement(msg.Subject, msg.Data)
	if err != nil {
		m.log.Warn().Err(err).Str("subject", msg.Subject).Msg("ignoring announcement")
		return false, false
	}
	if a.Node == m.cfg.Node || a.Engine != m.cfg.Engine {
		return false, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.peers[a.Node]
	if old != nil && a.Epoch == old.epoch && a.Seq <= old.seq {
		return false, false // a repeat or a reordered older one
	}
	if old != nil && a.Epoch < old.epoch {
		return false, false // from a run that was replaced
	}
	if e, ok := m.left[a.Node]; ok && a.Epoch <= e {
		return false, false // from a run that said it left
	}
	if a.Leaving {
		if old == nil {
			return false, false
		}
		delete(m.peers, a.Node)
		m.left[a.Node] = a.Epoch
		m.log.Info().Str("peer", a.Node).Msg("peer left")
		return true, false
	}
	vtep, _ := netip.ParseAddr(a.VTEP) // checked by DecodeAnnouncement
	p := &Peer{Node: a.Node, VTEP: vtep, Networks: a.Networks, epoch: a.Epoch, seq: a.Seq,
		Expires: time.Now().Add(HoldIntervals * a.Interval())}
	m.peers[a.Node] = p
	if old == nil || old.epoch != a.Epoch {
		ev := m.log.Info()
		if old != nil {
			ev = m.log.Debug()
		}
		ev.Str("peer", a.Node).Str("vtep", a.VTEP).Int("networks", len(a.Networks)).Int64("epoch", a.Epoch).Msg("peer up")
		return true, true
	}
	return old.VTEP != vtep || !equalMembers(old.Networks, a.Networks), false
}

// receiveQueued applies every announcement already queued, so one sync
// follows a burst.
func (m *Manager) receiveQueued(msgs <-chan *nats.Msg) (changed, answer bool) {
	for {
		select {
		case msg := <-msgs:
			c, a := m.receive(msg)
			changed, answer = changed || c, answer || a
		default:
			return changed, answer
		}
	}
}

// expire forgets peers whose hold time passed.
func (m *Manager) expire(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for node, p := range m.peers {
		if now.After(p.Expires) {
			delete(m.peers, node)
			m.log.Warn().Str("peer", node).Str("vtep", p.VTEP.String()).Msg("peer silent for too long: forgotten, its tunnels go")
		}
	}
}

// changedSinceAnnounced reports whether local differs from what was
// announced last.
func (m *Manager) changedSinceAnnounced(local []contracts.OverlayMember) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !equalMembers(local, m.lastMembers)
}

// members is this node's overlay networks, sorted by name, one per VNI
// and port: a second local network on the same VNI would get a second
// tunnel to the same peers, and traffic could reach only one of them.
func (m *Manager) members() []contracts.OverlayMember {
	ms, err := m.cfg.Dataplane.Members()
	if err != nil {
		m.log.Warn().Err(err).Msg("cannot read this node's overlay networks; keeping the last announced")
		m.mu.Lock()
		defer m.mu.Unlock()
		return slices.Clone(m.lastMembers)
	}
	slices.SortFunc(ms, func(a, b contracts.OverlayMember) int { return strings.Compare(a.Network, b.Network) })
	type wire struct {
		vni  uint32
		port uint16
	}
	first := map[wire]string{}
	return slices.DeleteFunc(ms, func(x contracts.OverlayMember) bool {
		k := wire{x.VNI, x.Port}
		if other, dup := first[k]; dup {
			m.log.Warn().Str("network", x.Network).Str("other", other).Uint32("vni", x.VNI).
				Msg("two networks on this node share a VNI and port; only the first is carried across nodes")
			return true
		}
		first[k] = x.Network
		return false
	})
}

// announceAsNew announces local under a new epoch, which every peer
// answers.
func (m *Manager) announceAsNew(local []contracts.OverlayMember) {
	m.mu.Lock()
	m.epoch = max(m.epoch+1, time.Now().UnixNano())
	m.mu.Unlock()
	m.announce(local)
}

// announce publishes this node's announcement of its networks local (best
// effort: the next tick repeats it).
func (m *Manager) announce(local []contracts.OverlayMember) { m.publish(local, false) }

// leave announces that this node is leaving.
func (m *Manager) leave() { m.publish(nil, true) }

func (m *Manager) publish(networks []contracts.OverlayMember, leaving bool) {
	a := contracts.Announcement{Node: m.cfg.Node, Engine: m.cfg.Engine, VTEP: m.cfg.VTEP.String(),
		IntervalMS: m.cfg.Interval.Milliseconds(), Leaving: leaving, Networks: networks}
	m.mu.Lock()
	a.Epoch = m.epoch
	m.seq++
	a.Seq = m.seq
	m.lastMembers = a.Networks
	m.mu.Unlock()
	b, err := json.Marshal(a)
	if err == nil {
		err = m.cfg.NC.Publish(contracts.DiscoverySubject(m.cfg.Node), b)
	}
	if err != nil {
		m.log.Warn().Err(err).Msg("announce")
	}
}

// sync hands the dataplane the tunnels the peers imply for the local
// networks, allowed to prune once this node has heard its peers for a
// hold since listening.
func (m *Manager) sync(ctx context.Context, local []contracts.OverlayMember, listening time.Time, hold time.Duration) {
	want := m.tunnels(local)
	prune := m.cfg.NC.IsConnected() && time.Since(listening) >= hold
	// Bounded: a hung vswitch call must not stop announcing and expiry;
	// the next interval tries again.
	ctx, cancel := context.WithTimeout(ctx, max(hold, 10*time.Second))
	defer cancel()
	err := m.cfg.Dataplane.SyncTunnels(ctx, want, prune)
	if err != nil && ctx.Err() == nil {
		m.log.Warn().Err(err).Int("tunnels", len(want)).Msg("tunnel sync failed; retried at the next interval")
	}
	if m.cfg.OnSync != nil {
		m.cfg.OnSync(len(want), err)
	}
}

// Tunnels is the set of tunnels the current peers imply: one per local
// overlay network and peer that announces the same VNI and port. Peers
// are untrusted beyond their own name: a peer host route that is a local
// pod's address, or that an earlier peer (by node name) already claims,
// is dropped, so no peer can draw a pod's traffic away from it.
func (m *Manager) Tunnels() []Tunnel { return m.tunnels(m.members()) }

func (m *Manager) tunnels(local []contracts.OverlayMember) []Tunnel {
	peers := m.Peers()
	var out []Tunnel
	seen := map[[2]string]string{} // (network, remote VTEP) -> peer
	for _, l := range local {
		// owner of each routed address on l: "" for this node's pods.
		owner := map[netip.Prefix]string{}
		for _, s := range l.Routes {
			if pfx, err := netip.ParsePrefix(s); err == nil {
				owner[pfx] = ""
			}
		}
		for _, p := range peers {
			if p.VTEP == m.cfg.VTEP {
				m.log.Warn().Str("peer", p.Node).Str("vtep", p.VTEP.String()).Msg("peer announces this node's own VTEP; no tunnel")
				continue
			}
			if p.VTEP.Is4() != m.cfg.VTEP.Is4() {
				m.log.Warn().Str("peer", p.Node).Str("vtep", p.VTEP.String()).Msg("peer VTEP is of another address family; no tunnel")
				continue
			}
			for _, r := range p.Networks {
				if r.VNI != l.VNI || r.Port != l.Port {
					continue
				}
				if r.NetType != l.NetType {
					m.log.Warn().Str("network", l.Network).Str("peer", p.Node).Uint32("vni", l.VNI).
						Msg("peer has the VNI as another netType; no tunnel")
					continue
				}
				k := [2]string{l.Network, p.VTEP.String()}
				if other, dup := seen[k]; dup {
					m.log.Warn().Str("peer", p.Node).Str("other", other).Str("vtep", k[1]).Msg("two peers announce one VTEP; one tunnel")
					continue
				}
				seen[k] = p.Node
				t := Tunnel{Network: l.Network, NetType: l.NetType, VNI: l.VNI, Port: l.Port,
					Local: m.cfg.VTEP, Remote: p.VTEP, Peer: p.Node}
				for _, s := range r.Routes {
					pfx, err := netip.ParsePrefix(s)
					if err != nil {
						continue
					}
					if o, taken := owner[pfx]; taken {
						if o == p.Node {
							continue // announced twice
						}
						m.log.Warn().Str("network", l.Network).Str("peer", p.Node).Str("route", s).Str("owner", cmp.Or(o, m.cfg.Node)).
							Msg("peer announces an address that is another node's; route ignored")
						continue
					}
					owner[pfx] = p.Node
					t.Routes = append(t.Routes, pfx)
				}
				out = append(out, t)
			}
		}
	}
	return out
}

func equalMembers(a, b []contracts.OverlayMember) bool {
	return slices.EqualFunc(a, b, func(x, y contracts.OverlayMember) bool {
		return x.Network == y.Network && x.NetType == y.NetType && x.VNI == y.VNI && x.Port == y.Port && slices.Equal(x.Routes, y.Routes)
	})
}

// Members folds attachments (an adapter's records) into this node's
// overlay members: one per network with an overlay; a routed network
// (netType interface) carries its pods' addresses as host routes.
func Members(atts []contracts.Attachment) []contracts.OverlayMember {
	byNet := map[string]*contracts.OverlayMember{}
	var order []string
	for _, a := range atts {
		o := a.Interface.Overlay
		if o == nil {
			continue
		}
		m := byNet[a.Network]
		if m == nil {
			m = &contracts.OverlayMember{Network: a.Network, NetType: a.Interface.NetType, VNI: o.VNI, Port: o.UDPPort()}
			byNet[a.Network] = m
			order = append(order, a.Network)
		}
		if a.Interface.NetType != contracts.NetTypeInterface {
			continue
		}
		for _, ip := range a.Interface.IPs {
			if p, err := netip.ParsePrefix(ip.Address); err == nil {
				m.Routes = append(m.Routes, netip.PrefixFrom(p.Addr(), p.Addr().BitLen()).String())
			}
		}
	}
	slices.Sort(order)
	out := make([]contracts.OverlayMember, 0, len(order))
	for _, n := range order {
		m := byNet[n]
		slices.Sort(m.Routes)
		m.Routes = slices.Compact(m.Routes)
		out = append(out, *m)
	}
	return out
}

// Hook is an adapter's link to its overlay: it holds the node's Manager
// (anything with Changed), or nothing, and passes local changes on. The
// zero value has none; Changed never blocks.
type Hook struct {
	mu sync.Mutex
	o  interface{ Changed() }
}

// Set makes Changed reach o (nil: nothing).
func (h *Hook) Set(o interface{ Changed() }) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.o = o
}

// Changed tells the overlay, if any, that local membership or the
// vswitch changed.
func (h *Hook) Changed() {
	h.mu.Lock()
	o := h.o
	h.mu.Unlock()
	if o != nil {
		o.Changed()
	}
}
