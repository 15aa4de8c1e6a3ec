package adapter

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"go.fd.io/govpp/binapi/ethernet_types"
	"go.fd.io/govpp/binapi/memif"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/limits"
	"usrsp.dev/libs/confine"
	"usrsp.dev/libs/vpp"
)

// TagPrefix starts the tag of every VPP interface the adapter creates. The
// rest of the tag is 12 hex digits of sha256("<containerID>/<ifName>"):
// VPP keeps at most 63 bytes of tag, so the full key lives in the record.
const TagPrefix = "usrsp:"

// BridgeTag marks bridge domains the adapter created (bd_tag).
const BridgeTag = "usrsp"

// LoopbackTagPrefix starts the tag of the loopback that carries the
// gateway addresses of one L3 network in one table (see LoopbackTag). It
// is not a TagPrefix tag: loopbacks are shared, not one attachment's.
const LoopbackTagPrefix = "usrsp-net:"

// Memif defaults, used when the request leaves a field 0.
const (
	DefaultMemifQueues     = 1
	DefaultMemifRingSize   = 1024
	DefaultMemifBufferSize = 2048
)

// vppLimits are VPP's interface limits (usrsp.dev/contracts/limits, the
// one place cni-entry and contracts check them too).
var vppLimits, _ = limits.For(limits.VPP)

// Tag is the VPP interface tag of attachment k.
func Tag(k contracts.AttachmentKey) string { return TagPrefix + k.ShortID() }

// LoopbackTag is the tag of the loopback of L3 network in table:
// LoopbackTagPrefix + 12 hex digits of sha256("<network>/<table>").
func LoopbackTag(network string, table uint32) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", network, table))
	return LoopbackTagPrefix + hex.EncodeToString(sum[:6])
}

// TableID is the VPP IP table of an L3 network when tables per network are
// on: 1 + fnv32a(network) mod (2^31-1), so it never is the default table 0.
func TableID(network string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(network))
	return 1 + h.Sum32()%(1<<31-1)
}

type ifKind int

const (
	kindMemif ifKind = iota
	kindVhost
	kindAfPacket // af_packet on the host end of the pod's veth (iftype veth)
)

// plan is everything the adapter will ask VPP for one attachment, derived
// from the request alone (no I/O), so it can be fuzzed.
type plan struct {
	kind        ifKind
	memif       vpp.MemifConfig // SocketID filled in at realize time
	memifSocket string          // the filename registered with VPP
	vhost       vpp.VhostConfig
	afPacket    vpp.AfPacketConfig
	podSocket   string // Attachment.SocketPath: a path, or "@name" for abstract
	bridge      uint32 // bridge domain id, 0 for none
	vlan        uint32 // access VLAN in the bridge domain, 0: untagged
	mtu         uint32 // 0: VPP's default
	l3          bool
	table       uint32
	tableName   string
	loopTag     string         // the network's loopback (LoopbackTag)
	gateways    []netip.Prefix // the loopback's addresses: gateway with the pod's prefix length
	subnets4    []netip.Prefix // IPv4 pod subnets: proxy ARP ranges
	pods        []netip.Addr   // pod addresses routed to the interface
	// sock is the socket file confined (confinePlan), when confined.
	sock     confine.Path
	confined bool
}

// planAttach checks an attach request and derives what to create. Errors
// name the request field.
func planAttach(r *contracts.AttachRequest, tablePerNetwork bool) (*plan, error) {
	h := r.Interface
	p := &plan{}
	if h.PodAccess != nil {
		if err := h.PodAccess.Check("interface.podAccess"); err != nil {
			return nil, err
		}
	}
	mac, err := parseMAC(h.MAC)
	if err != nil {
		return nil, err
	}
	switch h.IfType {
	case contracts.IfTypeMemif:
		if err := planMemif(p, r, mac); err != nil {
			return nil, err
		}
	case contracts.IfTypeVhostUser:
		if h.Vhost == nil {
			return nil, invalid("interface.vhost is missing for ifType vhostuser")
		}
		if err := checkSocketPath("interface.socketPath", h.SocketPath); err != nil {
			return nil, err
		}
		p.kind = kindVhost
		p.vhost = vpp.VhostConfig{Server: h.Vhost.Mode == contracts.VhostModeServer, Socket: h.SocketPath, MAC: mac}
		p.podSocket = h.SocketPath
	case contracts.IfTypeVeth:
		if err := planAfPacket(p, r, mac); err != nil {
			return nil, err
		}
	default:
		return nil, invalid("interface.ifType %q is not memif, vhostuser or veth", h.IfType)
	}
	if h.MTU != 0 {
		if err := limit(vppLimits.MTU("interface.mtu", h.MTU)); err != nil {
			return nil, err
		}
	}
	p.mtu = uint32(h.MTU)
	switch h.NetType {
	case contracts.NetTypeBridge:
		if h.Bridge == nil {
			return nil, invalid("interface.bridge is missing for netType bridge")
		}
		if err := limit(vppLimits.BridgeID("interface.bridge.id", uint64(h.Bridge.ID))); err != nil {
			return nil, err // 0 is VPP's default domain, never ours
		}
		if h.Bridge.VLAN != 0 {
			if err := limit(vppLimits.VLAN("interface.bridge.vlan", h.Bridge.VLAN)); err != nil {
				return nil, err
			}
		}
		if p.kind == kindMemif && p.memif.Mode == memif.MEMIF_MODE_API_IP {
			return nil, invalid("interface.memif.mode ip cannot join bridge domain %d: an L2 bridge needs mode ethernet", h.Bridge.ID)
		}
		p.bridge, p.vlan = h.Bridge.ID, uint32(h.Bridge.VLAN)
	case contracts.NetTypeInterface, contracts.NetTypeNone:
		if h.Bridge != nil && h.Bridge.VLAN != 0 {
			return nil, invalid("interface.bridge.vlan %d needs netType bridge: a VLAN tags frames in a bridge domain", h.Bridge.VLAN)
		}
		if h.NetType == contracts.NetTypeInterface {
			if err := planL3(p, r, tablePerNetwork); err != nil {
				return nil, err
			}
		}
	default:
		return nil, invalid("interface.netType %q is not bridge, interface or none", h.NetType)
	}
	return p, nil
}

func planMemif(p *plan, r *contracts.AttachRequest, mac *ethernet_types.MacAddress) error {
	m := r.Interface.Memif
	if m == nil {
		return invalid("interface.memif is missing for ifType memif")
	}
	p.kind = kindMemif
	cfg := vpp.MemifConfig{ID: m.ID, Secret: m.Secret, MAC: mac}
	var err error
	switch m.Role {
	case contracts.MemifRoleMaster:
		cfg.Master = true
	case contracts.MemifRoleSlave:
	default:
		return invalid("interface.memif.role %q is not master or slave", m.Role)
	}
	switch m.Mode {
	case contracts.MemifModeEthernet:
		cfg.Mode = memif.MEMIF_MODE_API_ETHERNET
		if cfg.MAC == nil {
			// The host side's derived MAC, not VPP's random one: after a
			// VPP restart the replay makes the same interface, so the
			// pod's neighbour entries for it (its gateway, proxy-ARP'd
			// peers) stay valid.
			if cfg.MAC, err = parseMAC(contracts.DerivedMAC(r.Key, contracts.SideHost)); err != nil {
				return err
			}
		}
	case contracts.MemifModeIP:
		cfg.Mode = memif.MEMIF_MODE_API_IP
		cfg.MAC = nil // an IP-mode memif has no MAC
	case contracts.MemifModeInjectPunt:
		cfg.Mode = memif.MEMIF_MODE_API_PUNT_INJECT
	default:
		return invalid("interface.memif.mode %q is not ethernet, ip or inject-punt", m.Mode)
	}
	queues, ring, buf := orDefault(m.Queues, DefaultMemifQueues), orDefault(m.RingSize, DefaultMemifRingSize), orDefault(m.BufferSize, DefaultMemifBufferSize)
	if err := limit(vppLimits.MemifQueues("interface.memif.queues", queues),
		vppLimits.MemifRingSize("interface.memif.ringSize", ring),
		vppLimits.MemifBufferSize("interface.memif.bufferSize", buf),
		vppLimits.MemifSecret("interface.memif.secret", m.Secret)); err != nil {
		return err
	}
	cfg.Queues, cfg.RingSize, cfg.BufferSize = uint8(queues), uint32(ring), uint16(buf)
	p.memif = cfg

	if m.Netns == "" {
		if err := checkSocketPath("interface.socketPath", r.Interface.SocketPath); err != nil {
			return err
		}
		p.memifSocket, p.podSocket = r.Interface.SocketPath, r.Interface.SocketPath
		return nil
	}
	// Abstract socket inside the pod's network namespace: VPP (clib socket)
	// accepts "abstract:<name>,netns_name=<path>"; the pod sees "@<name>".
	name := m.SocketFile
	if name == "" {
		name = "usrsp/memif-" + r.Key.IfName
	}
	if !socketChars(name) || len(name) > limits.MaxSocketPath-1 {
		return invalid("interface.memif.socketFile %q is not a usable abstract socket name (1..%d of [A-Za-z0-9/._-])", name, limits.MaxSocketPath-1)
	}
	if !strings.HasPrefix(m.Netns, "/") || !socketChars(m.Netns) {
		return invalid("interface.memif.netns %q must be an absolute path of [A-Za-z0-9/._-] (VPP's socket parser stops at anything else)", m.Netns)
	}
	p.memifSocket = "abstract:" + name + ",netns_name=" + m.Netns
	p.podSocket = "@" + name
	return nil
}

func planL3(p *plan, r *contracts.AttachRequest, tablePerNetwork bool) error {
	p.l3 = true
	if tablePerNetwork {
		p.table = TableID(r.Network)
		p.tableName = truncate(TagPrefix+r.Network, 63)
	}
	p.loopTag = LoopbackTag(r.Network, p.table)
	for i, c := range r.Interface.IPs {
		pod, err := netip.ParsePrefix(c.Address)
		if err != nil {
			return invalid("interface.ips[%d].address %q is not a CIDR address", i, c.Address)
		}
		p.pods = append(p.pods, pod.Addr())
		if subnet := pod.Masked(); pod.Addr().Is4() && !slices.Contains(p.subnets4, subnet) {
			p.subnets4 = append(p.subnets4, subnet)
		}
		if c.Gateway == "" {
			continue
		}
		gw, err := netip.ParseAddr(c.Gateway)
		if err != nil || gw.Is4() != pod.Addr().Is4() {
			return invalid("interface.ips[%d].gateway %q is not an address of the same family as %s", i, c.Gateway, c.Address)
		}
		if gw == pod.Addr() {
			return invalid("interface.ips[%d].gateway %s equals the pod address", i, c.Gateway)
		}
		if gp := netip.PrefixFrom(gw, pod.Bits()); !slices.Contains(p.gateways, gp) {
			p.gateways = append(p.gateways, gp)
		}
	}
	return nil
}

// proxyRange is the ARP proxy range of an IPv4 subnet: its host
// addresses (all of it for /31 and /32).
func proxyRange(subnet netip.Prefix) (low, high netip.Addr) {
	low = subnet.Masked().Addr()
	b := low.As4()
	n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	last := n | (1<<(32-subnet.Bits()) - 1)
	if subnet.Bits() < 31 {
		n, last = n+1, last-1
	}
	return addr4(n), addr4(last)
}

func addr4(n uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// families says which address families an L3 plan uses.
func (p *plan) families() (v4, v6 bool) {
	for _, a := range p.pods {
		v4, v6 = v4 || a.Is4(), v6 || a.Is6()
	}
	return v4, v6
}

func checkSocketPath(field, path string) error {
	if !strings.HasPrefix(path, "/") {
		return invalid("%s %q must be an absolute host path", field, path)
	}
	if len(path) > limits.MaxSocketPath {
		return invalid("%s is %d bytes, longer than a unix socket path (%d)", field, len(path), limits.MaxSocketPath)
	}
	if filepath.Clean(path) != path {
		return invalid("%s %q is not a clean path (VPP would resolve it differently)", field, path)
	}
	if !socketChars(path) {
		return invalid("%s %q may only hold [A-Za-z0-9/._-]: VPP's socket parser stops at anything else", field, path)
	}
	return nil
}

// socketChars reports whether s only holds characters VPP's clib socket
// parser accepts in a path or abstract name.
func socketChars(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-", r)
		if !ok {
			return false
		}
	}
	return true
}

func parseMAC(s string) (*ethernet_types.MacAddress, error) {
	mac, err := vpp.ParseMAC(s)
	if err != nil {
		return nil, invalid("interface.mac %q is not a 48-bit MAC address", s)
	}
	return mac, nil
}

func orDefault(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func invalid(format string, args ...any) error {
	return contracts.Errorf(contracts.CodeInvalidConfig, format, args...)
}

// limit makes the first failed limits check an invalid-config error.
func limit(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return invalid("%v", err)
		}
	}
	return nil
}
