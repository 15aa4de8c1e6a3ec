package adapter

import (
	"fmt"
	"math/bits"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/limits"
	"usrsp.dev/services/ovs-adapter/ovs"
)

// DefaultBridge is the OVS bridge used when a request names none.
const DefaultBridge = "br-usrsp"

// ovsLimits are OVS-DPDK's interface limits (usrsp.dev/contracts/limits).
var ovsLimits, _ = limits.For(limits.OVSDPDK)

// invalid makes a limits error a request error.
func invalid(err error) error { return contracts.Errorf(contracts.CodeInvalidConfig, "%v", err) }

// PortName is the OVS port (and interface) name of an attachment: "usp"
// and the first 12 hex digits of SHA-256("<containerID>/<ifName>"). It is
// deterministic, so a restarted adapter or a replayed request finds the
// same port, and 15 bytes long, within IFNAMSIZ-1 and OVS's limits.
func PortName(k contracts.AttachmentKey) string { return "usp" + k.ShortID() }

// portNames are the names k's port can have: PortName for memif and
// vhost-user, the host veth's own name for veth (a system port is named
// after its netdev). Deletes by key try both; only owned ports go.
func portNames(k contracts.AttachmentKey) []string {
	return []string{PortName(k), contracts.HostVethName(k)}
}

// portPlan is a validated attach request turned into what to create.
type portPlan struct {
	kind       portKind
	spec       ovs.PortSpec // without the memif index in dpdk-devargs
	socketPath string       // the socket as the pod sees it on the host ("" only for vhost server without a path)
	memifArgs  string       // dpdk-devargs after "net_memif<N>,"
	queues     int          // memif: rx/tx queues the pod must use
	hostMAC    string       // memif: the MAC OVS will report ("" for vhost-user)
}

type portKind int

const (
	kindVhostClient portKind = iota // OVS dpdkvhostuserclient: the pod serves the socket
	kindVhostServer                 // OVS dpdkvhostuser: OVS serves it in its run dir
	kindMemif                       // OVS dpdk + net_memif
	kindSystem                      // OVS system port on the host end of the pod's veth
)

// planPort validates r and plans its port. It is pure (no I/O) so that it
// can be fuzzed; pmds is the number of PMD threads of the switch.
func planPort(r *contracts.AttachRequest, pmds int) (*portPlan, error) {
	h := r.Interface
	if h.NetType != contracts.NetTypeBridge {
		return nil, contracts.Errorf(contracts.CodeInvalidConfig, "interface.netType %q: the ovs-dpdk adapter only supports %q", h.NetType, contracts.NetTypeBridge)
	}
	bridge, vlan := DefaultBridge, 0
	if h.Bridge != nil {
		if h.Bridge.Name != "" {
			bridge = h.Bridge.Name
		}
		vlan = h.Bridge.VLAN
	}
	if len(bridge) > 15 || strings.ContainsAny(bridge, "/ \t\n,=") {
		return nil, contracts.Errorf(contracts.CodeInvalidConfig, "interface.bridge.name %q is not a usable OVS bridge name (1-15 bytes, no '/', ',', '=' or spaces)", bridge)
	}
	if vlan != 0 {
		if err := ovsLimits.VLAN("interface.bridge.vlan", vlan); err != nil {
			return nil, invalid(err)
		}
	}
	if h.MTU != 0 {
		if err := ovsLimits.MTU("interface.mtu", h.MTU); err != nil {
			return nil, invalid(err)
		}
	}
	if h.MAC != "" {
		if _, err := net.ParseMAC(h.MAC); err != nil || len(h.MAC) != 17 {
			return nil, contracts.Errorf(contracts.CodeInvalidConfig, "interface.mac %q is not a MAC address like 02:00:00:00:00:01", h.MAC)
		}
	}
	if h.SocketPath != "" && (!filepath.IsAbs(h.SocketPath) || filepath.Clean(h.SocketPath) != h.SocketPath) {
		return nil, contracts.Errorf(contracts.CodeInvalidConfig, "interface.socketPath %q is not a clean absolute path", h.SocketPath)
	}
	name := PortName(r.Key)
	p := &portPlan{socketPath: h.SocketPath, spec: ovs.PortSpec{
		Name: name, Bridge: bridge, Tag: vlan, MTU: h.MTU,
		ExternalIDs: map[string]string{
			ovs.ExtOwner: ovs.OwnerValue, ovs.ExtContainerID: r.Key.ContainerID,
			ovs.ExtIfName: r.Key.IfName, ovs.ExtNetwork: r.Network,
		},
	}}
	switch h.IfType {
	case contracts.IfTypeVhostUser:
		if h.Vhost == nil {
			return nil, contracts.Errorf(contracts.CodeInvalidConfig, "interface.vhost is missing for ifType vhostuser")
		}
		switch h.Vhost.Mode {
		case contracts.VhostModeClient:
			if h.SocketPath == "" {
				return nil, contracts.Errorf(contracts.CodeInvalidConfig, "interface.socketPath is required for vhost-user client mode (the pod serves it)")
			}
			p.kind, p.spec.Type = kindVhostClient, ovs.TypeVhostUserClient
			p.spec.Options = map[string]string{"vhost-server-path": h.SocketPath}
		case contracts.VhostModeServer:
			p.kind, p.spec.Type = kindVhostServer, ovs.TypeVhostUser
			p.spec.Options = map[string]string{}
		default:
			return nil, contracts.Errorf(contracts.CodeInvalidConfig, "interface.vhost.mode %q is not client or server", h.Vhost.Mode)
		}
	case contracts.IfTypeVeth:
		// Only the veth cni-entry made for this attachment: a request can
		// never plug another netdev (eth0) into the bridge.
		if h.Veth == nil || h.Veth.HostIfName != contracts.HostVethName(r.Key) {
			return nil, contracts.Errorf(contracts.CodeInvalidConfig, "interface.veth.hostIfName must be %s for attachment %s", contracts.HostVethName(r.Key), r.Key)
		}
		if h.MAC != "" {
			return nil, contracts.Errorf(contracts.CodeUnsupportedField, "interface.mac is not supported for ifType veth (the host end keeps the kernel's MAC)")
		}
		p.kind, p.spec.Type, p.spec.Name = kindSystem, ovs.TypeSystem, h.Veth.HostIfName
		p.spec.Options = map[string]string{}
	case contracts.IfTypeMemif:
		mac := h.MAC
		if mac == "" {
			// Known before the port exists (the record is written while
			// vswitchd makes it), and the same after a re-create, unlike
			// the random one DPDK would pick.
			mac = contracts.DerivedMAC(r.Key, contracts.SideHost)
		}
		args, err := memifArgs(h, mac, pmds)
		if err != nil {
			return nil, err
		}
		p.kind, p.spec.Type, p.memifArgs, p.queues = kindMemif, ovs.TypeDPDK, args, pmds+1
		p.hostMAC = strings.ToLower(mac) // as OVS reports it
		p.spec.Options = map[string]string{"n_rxq": strconv.Itoa(p.queues)}
	default:
		return nil, contracts.Errorf(contracts.CodeInvalidConfig, "interface.ifType %q is not memif, vhostuser or veth", h.IfType)
	}
	return p, nil
}

// memifArgs builds the net_memif devargs after the device name. OVS
// transmits on one queue per PMD thread plus one, so n_rxq (and the pod's
// --rxq/--txq) is pmds+1 whatever the request says.
func memifArgs(h contracts.HostInterface, mac string, pmds int) (string, error) {
	m := h.Memif
	if m == nil {
		return "", contracts.Errorf(contracts.CodeInvalidConfig, "interface.memif is missing for ifType memif")
	}
	if h.SocketPath == "" || strings.ContainsAny(h.SocketPath, ",=") {
		return "", contracts.Errorf(contracts.CodeInvalidConfig, "interface.socketPath %q: memif needs a socket path without ',' or '='", h.SocketPath)
	}
	role := map[string]string{contracts.MemifRoleMaster: "server", contracts.MemifRoleSlave: "client"}[m.Role]
	if role == "" {
		return "", contracts.Errorf(contracts.CodeInvalidConfig, "interface.memif.role %q is not master or slave", m.Role)
	}
	if m.Mode != "" && m.Mode != contracts.MemifModeEthernet {
		return "", contracts.Errorf(contracts.CodeInvalidConfig, "interface.memif.mode %q: DPDK's net_memif only supports ethernet", m.Mode)
	}
	args := fmt.Sprintf("role=%s,id=%d,socket=%s,socket-abstract=no", role, m.ID, h.SocketPath)
	if m.RingSize != 0 {
		if err := ovsLimits.MemifRingSize("interface.memif.ringSize", m.RingSize); err != nil {
			return "", invalid(err)
		}
		args += ",rsize=" + strconv.Itoa(bits.TrailingZeros(uint(m.RingSize)))
	}
	if m.BufferSize != 0 {
		if err := ovsLimits.MemifBufferSize("interface.memif.bufferSize", m.BufferSize); err != nil {
			return "", invalid(err)
		}
		args += ",bsize=" + strconv.Itoa(m.BufferSize)
	}
	if m.Secret != "" {
		if err := ovsLimits.MemifSecret("interface.memif.secret", m.Secret); err != nil {
			return "", invalid(err)
		}
		if strings.ContainsAny(m.Secret, ",= \t\n") { // they would end the devargs value
			return "", contracts.Errorf(contracts.CodeInvalidConfig, "interface.memif.secret must not contain ',', '=' or spaces")
		}
		args += ",secret=" + m.Secret
	}
	args += ",mac=" + mac
	if pmds < 1 {
		return "", contracts.Errorf(contracts.CodeInternal, "switch reports %d PMD threads", pmds)
	}
	return args, nil
}

// specWithMemif returns the port spec, completing dpdk-devargs with the
// memif device index for memif ports.
func (p *portPlan) specWithMemif(index int) ovs.PortSpec {
	s := p.spec.Clone()
	if p.kind == kindMemif {
		s.Options["dpdk-devargs"] = "net_memif" + strconv.Itoa(index) + "," + p.memifArgs
	}
	return s
}

// memifIndex extracts N from a net_memif<N> devargs ("-1, false" if none).
func memifIndex(s ovs.PortSpec) (int, bool) {
	dev, _, _ := strings.Cut(s.Options["dpdk-devargs"], ",")
	n, err := strconv.Atoi(strings.TrimPrefix(dev, "net_memif"))
	if !strings.HasPrefix(dev, "net_memif") || err != nil || n < 0 {
		return -1, false
	}
	return n, true
}
