package contracts

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Overlay types (HostInterface.Overlay.Type).
const OverlayVXLAN = "vxlan"

// VXLAN constants.
const (
	// DefaultVXLANPort is the IANA VXLAN UDP port.
	DefaultVXLANPort = 4789
	// MaxVNI is the largest 24-bit VXLAN network identifier.
	MaxVNI = 1<<24 - 1
	// VXLANOverhead is what VXLAN over IPv4 adds to an inner frame's IP
	// MTU: outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14.
	VXLANOverhead = 50
)

// Overlay says that a network spans nodes: its pods on every node share
// one VXLAN segment, keyed by VNI (and UDP port). cni-entry sends it with
// every attach of the network; the adapter announces the network on its
// node's discovery subject and tunnels to every peer that announces the
// same VNI.
type Overlay struct {
	Type string `json:"type"`           // "vxlan"
	VNI  uint32 `json:"vni"`            // 1..MaxVNI
	Port uint16 `json:"port,omitempty"` // UDP destination port; 0: DefaultVXLANPort
}

// UDPPort is the overlay's UDP port, defaulted.
func (o Overlay) UDPPort() uint16 {
	if o.Port == 0 {
		return DefaultVXLANPort
	}
	return o.Port
}

// Check validates the overlay; errors name field.
func (o Overlay) Check(field string) error {
	if o.Type != OverlayVXLAN {
		return Errorf(CodeInvalidConfig, "%s.type %q is not %q", field, o.Type, OverlayVXLAN)
	}
	if o.VNI < 1 || o.VNI > MaxVNI {
		return Errorf(CodeInvalidConfig, "%s.vni %d is not in 1..%d", field, o.VNI, MaxVNI)
	}
	return nil
}

// DiscoverySubject is where node's adapters publish their announcements:
// usrsp.v1.<node>.discovery. Only node's adapter identity may publish
// there (libs/natsauth); every adapter reads AllDiscoverySubject. Four
// tokens, so no request or event pattern matches it.
func DiscoverySubject(node string) string {
	return SubjectRoot + "." + NodeToken(node) + ".discovery"
}

// AllDiscoverySubject matches every node's announcements.
const AllDiscoverySubject = SubjectRoot + ".*.discovery"

// Announcement bounds, checked by DecodeAnnouncement.
const (
	MinAnnounceInterval  = 100 * time.Millisecond
	MaxAnnounceInterval  = 5 * time.Minute
	MaxOverlayMembers    = 4096
	MaxRoutesPerMember   = 4096
	MaxAnnouncementBytes = 1 << 20
)

// Announcement is one adapter's view of itself, published on its node's
// DiscoverySubject every Interval and at once on every change. Receivers
// forget a sender they have not heard from in 3 intervals, and at once
// when Leaving. Networks lists only the overlay networks with pods on the
// sender's node: a node with none of a network's pods gets no tunnels.
type Announcement struct {
	Node   string `json:"node"`
	Engine Engine `json:"engine"`
	// Epoch identifies one run of the sender (its start time in ns): a new
	// epoch tells receivers the sender restarted and wants to hear from
	// them now rather than at their next interval.
	Epoch int64 `json:"epoch"`
	// Seq grows with every announcement of one epoch; receivers drop
	// older or repeated ones (NATS may reorder across a cluster).
	Seq uint64 `json:"seq"`
	// VTEP is the sender's underlay address, the tunnels' remote end.
	VTEP string `json:"vtep"`
	// IntervalMS is the sender's announcement interval in milliseconds.
	IntervalMS int64           `json:"intervalMs"`
	Leaving    bool            `json:"leaving,omitempty"`
	Networks   []OverlayMember `json:"networks,omitempty"`
}

// OverlayMember is one overlay network on the announcing node.
type OverlayMember struct {
	Network string  `json:"network"`
	NetType NetType `json:"netType"`
	VNI     uint32  `json:"vni"`
	Port    uint16  `json:"port"`
	// Routes are the pod addresses (as /32 or /128 prefixes) on the
	// sender for a routed network (netType interface): receivers route
	// them into the tunnel to the sender. Empty for bridge networks.
	Routes []string `json:"routes,omitempty"`
}

// Interval is IntervalMS as a duration.
func (a *Announcement) Interval() time.Duration {
	return time.Duration(a.IntervalMS) * time.Millisecond
}

// DecodeAnnouncement parses and checks an announcement received on
// subject. The subject's node token must be the announcement's node: NATS
// permissions let only node N publish on N's subject, so a node cannot
// speak for another even through its own subject.
func DecodeAnnouncement(subject string, b []byte) (*Announcement, error) {
	if len(b) > MaxAnnouncementBytes {
		return nil, Errorf(CodeDecode, "announcement on %s is %d bytes, more than %d", subject, len(b), MaxAnnouncementBytes)
	}
	var a Announcement
	if err := decodeStrict(b, &a, "announcement"); err != nil {
		return nil, err
	}
	if a.Node == "" || subject != DiscoverySubject(a.Node) {
		return nil, Errorf(CodeInvalidConfig, "announcement for node %q arrived on %s, not on that node's subject", a.Node, subject)
	}
	if !a.Engine.Valid() {
		return nil, Errorf(CodeInvalidConfig, "announcement of %s: engine %q is unknown", a.Node, a.Engine)
	}
	if iv := a.Interval(); iv < MinAnnounceInterval || iv > MaxAnnounceInterval {
		return nil, Errorf(CodeInvalidConfig, "announcement of %s: intervalMs %d is not in %v..%v", a.Node, a.IntervalMS, MinAnnounceInterval, MaxAnnounceInterval)
	}
	if a.Leaving {
		return &a, nil
	}
	if vtep, err := netip.ParseAddr(a.VTEP); err != nil || !vtep.IsGlobalUnicast() {
		return nil, Errorf(CodeInvalidConfig, "announcement of %s: vtep %q is not a unicast address", a.Node, a.VTEP)
	}
	if len(a.Networks) > MaxOverlayMembers {
		return nil, Errorf(CodeInvalidConfig, "announcement of %s: %d networks, more than %d", a.Node, len(a.Networks), MaxOverlayMembers)
	}
	for i, m := range a.Networks {
		if err := m.check(); err != nil {
			return nil, fmt.Errorf("announcement of %s: networks[%d]: %w", a.Node, i, err)
		}
	}
	return &a, nil
}

func (m OverlayMember) check() error {
	if m.Network == "" || strings.ContainsRune(m.Network, 0) {
		return Errorf(CodeInvalidConfig, "network %q is empty or has a NUL", m.Network)
	}
	if err := (Overlay{Type: OverlayVXLAN, VNI: m.VNI}).Check("overlay"); err != nil {
		return err
	}
	if m.Port == 0 {
		return Errorf(CodeInvalidConfig, "port is 0")
	}
	switch m.NetType {
	case NetTypeBridge:
		if len(m.Routes) > 0 {
			return Errorf(CodeInvalidConfig, "routes are set for netType bridge")
		}
	case NetTypeInterface:
	default:
		return Errorf(CodeInvalidConfig, "netType %q is not bridge or interface", m.NetType)
	}
	if len(m.Routes) > MaxRoutesPerMember {
		return Errorf(CodeInvalidConfig, "%d routes, more than %d", len(m.Routes), MaxRoutesPerMember)
	}
	for j, r := range m.Routes {
		p, err := netip.ParsePrefix(r)
		if err != nil || p.Bits() != p.Addr().BitLen() {
			return Errorf(CodeInvalidConfig, "routes[%d] %q is not a host prefix (/32 or /128)", j, r)
		}
	}
	return nil
}
