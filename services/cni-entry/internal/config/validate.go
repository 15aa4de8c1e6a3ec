package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/limits"
)

// Limits of the config file itself; interface limits (memif, MTU, VLAN,
// bridge domain) are the engine's, from package limits, so what passes
// here passes the adapter.
const (
	MinNATSTimeout   = 100 * time.Millisecond
	MaxNATSTimeout   = time.Minute
	LinkNameLen      = 12 // hex characters of the per-attachment link name
	MaxSocketFileLen = 64
	// MaxAbstractNameLen bounds an abstract socket name: sun_path is 108
	// bytes, the first is the NUL that marks the abstract namespace, and
	// VPP keeps a terminating NUL (vpp-adapter accepts the same length).
	MaxAbstractNameLen = contracts.MaxSocketPathLen - 1
)

// engineLimits returns the limits of a validated engine.
func engineLimits(engine string) limits.Limits {
	l, _ := limits.For(limits.Engine(engine))
	return l
}

// invalid wraps a limits check error as an invalid config.
func invalid(err error) error {
	if err == nil {
		return nil
	}
	return errorf(contracts.CodeInvalidConfig, "%v", err)
}

// normalize applies defaults and validates, in the order the fields
// depend on each other.
func normalize(c *NetConf, ifName string) error {
	if err := checkTopLevel(c); err != nil {
		return err
	}
	if err := normalizeHost(c, ifName); err != nil {
		return err
	}
	if err := normalizePodAccess(c); err != nil {
		return err
	}
	if err := normalizeOverlay(c); err != nil {
		return err
	}
	// The MTU applies to the host side: the host engine's bound.
	if c.MTU != 0 {
		if err := invalid(engineLimits(c.Host.Engine).MTU("mtu", c.MTU)); err != nil {
			return err
		}
	}
	if err := deriveContainer(c); err != nil {
		return err
	}
	return checkSocketPaths(c)
}

// normalizeOverlay checks the overlay block against the host side and
// makes the pod MTU leave room for the VXLAN header on the underlay.
func normalizeOverlay(c *NetConf) error {
	o := c.Overlay
	if o == nil {
		return nil
	}
	if o.Type != contracts.OverlayVXLAN {
		return errorf(contracts.CodeInvalidConfig, "overlay.type %q is not %q", o.Type, contracts.OverlayVXLAN)
	}
	if o.VNI < 1 || o.VNI > contracts.MaxVNI {
		return errorf(contracts.CodeInvalidConfig, "overlay.vni %d is not in 1-%d", o.VNI, contracts.MaxVNI)
	}
	o.Port = orDefaultInt(o.Port, contracts.DefaultVXLANPort)
	if o.Port < 1 || o.Port > 65535 {
		return errorf(contracts.CodeInvalidConfig, "overlay.port %d is not a UDP port (1-65535)", o.Port)
	}
	o.UnderlayMTU = orDefaultInt(o.UnderlayMTU, DefaultUnderlayMTU)
	minUnderlay := limits.MinMTU + contracts.VXLANOverhead
	if o.UnderlayMTU < minUnderlay || o.UnderlayMTU > limits.Wire.MaxMTU {
		return errorf(contracts.CodeInvalidConfig, "overlay.underlayMtu %d is not in %d-%d (the pod MTU is %d bytes less and at least %d)",
			o.UnderlayMTU, minUnderlay, limits.Wire.MaxMTU, contracts.VXLANOverhead, limits.MinMTU)
	}
	switch contracts.NetType(c.Host.NetType) {
	case contracts.NetTypeBridge:
	case contracts.NetTypeInterface:
		if c.Engine() == contracts.EngineOVSDPDK {
			return errorf(contracts.CodeUnsupportedField, "overlay needs host.netType bridge with engine ovs-dpdk (netType is interface): OVS-DPDK overlays are bridge-only")
		}
		// A routed overlay routes the pods' addresses between nodes.
		if c.IPAM.Type == "" {
			return errorf(contracts.CodeInvalidConfig, "overlay with host.netType interface needs ipam.type: the pod addresses are what other nodes route to")
		}
	default:
		return errorf(contracts.CodeInvalidConfig, "overlay needs host.netType bridge or interface, not %q", c.Host.NetType)
	}
	podMTU := o.UnderlayMTU - contracts.VXLANOverhead
	switch {
	case c.MTU == 0:
		c.MTU = podMTU
		field := fmt.Sprintf("mtu (overlay.underlayMtu %d - %d)", o.UnderlayMTU, contracts.VXLANOverhead)
		return invalid(engineLimits(c.Host.Engine).MTU(field, c.MTU))
	case c.MTU > podMTU:
		return errorf(contracts.CodeInvalidConfig, "mtu %d is more than overlay.underlayMtu %d minus the %d bytes of VXLAN overhead (%d)",
			c.MTU, o.UnderlayMTU, contracts.VXLANOverhead, podMTU)
	}
	return nil
}

func checkTopLevel(c *NetConf) error {
	if c.Name == "" {
		return errorf(contracts.CodeInvalidConfig, "name is required")
	}
	if strings.ContainsAny(c.IPAM.Type, `/\`) || c.IPAM.Type == "." || c.IPAM.Type == ".." {
		return errorf(contracts.CodeInvalidConfig, "ipam.type %q must be a plugin name, not a path", c.IPAM.Type)
	}
	if c.PodVolume != "" && c.SharedDir != "" {
		return errorf(contracts.CodeInvalidConfig, "podVolume and sharedDir are exclusive: set one")
	}
	if c.PodVolume != "" && !validDNSLabel(c.PodVolume) {
		return errorf(contracts.CodeInvalidConfig, "podVolume %q is not a volume name (DNS-1123 label)", c.PodVolume)
	}
	if c.PodVolume == "" && c.SharedDir == "" {
		c.SharedDir = DefaultSharedDir
	}
	c.KubeletDir = orDefault(c.KubeletDir, DefaultKubeletDir)
	c.LinkDir = orDefault(c.LinkDir, DefaultLinkDir)
	c.PodMountPath = orDefault(c.PodMountPath, DefaultPodMountPath)
	for _, p := range []struct {
		field string
		value *string
	}{
		{"sharedDir", &c.SharedDir},
		{"kubeletDir", &c.KubeletDir},
		{"linkDir", &c.LinkDir},
		{"podMountPath", &c.PodMountPath},
		{"deviceInfoDir", &c.DeviceInfoDir},
		{"logFile", &c.LogFile},
		{"nats.credentialsFile", &c.NATS.CredentialsFile},
		{"nats.tls.caFile", &c.NATS.TLS.CAFile},
		{"nats.tls.certFile", &c.NATS.TLS.CertFile},
		{"nats.tls.keyFile", &c.NATS.TLS.KeyFile},
		{"runtimeConfig.CNIDeviceInfoFile", &c.RuntimeConfig.CNIDeviceInfoFile},
	} {
		clean, err := cleanAbsPath(p.field, *p.value)
		if err != nil {
			return err
		}
		*p.value = clean
	}
	level, err := normalizeLogLevel(c.LogLevel)
	if err != nil {
		return err
	}
	c.LogLevel = level
	return checkNATS(&c.NATS)
}

func checkNATS(n *NATS) error {
	n.URL = orDefault(n.URL, DefaultNATSURL)
	for _, one := range strings.Split(n.URL, ",") {
		u, err := url.Parse(strings.TrimSpace(one))
		if err != nil {
			return errorf(contracts.CodeInvalidConfig, "nats.url %q: %v", one, err)
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return errorf(contracts.CodeInvalidConfig, "nats.url %q: scheme must be nats, tls, ws or wss", one)
		}
		if u.Host == "" {
			return errorf(contracts.CodeInvalidConfig, "nats.url %q has no host", one)
		}
	}
	if (n.TLS.CertFile == "") != (n.TLS.KeyFile == "") {
		return errorf(contracts.CodeInvalidConfig, "nats.tls.certFile and nats.tls.keyFile must be set together")
	}
	n.TimeoutDuration = DefaultNATSTimeout
	if n.Timeout != "" {
		d, err := time.ParseDuration(n.Timeout)
		if err != nil {
			return errorf(contracts.CodeInvalidConfig, "nats.timeout %q is not a duration like \"3s\"", n.Timeout)
		}
		if d < MinNATSTimeout || d > MaxNATSTimeout {
			return errorf(contracts.CodeInvalidConfig, "nats.timeout: %s is outside %s-%s", d, MinNATSTimeout, MaxNATSTimeout)
		}
		n.TimeoutDuration = d
	}
	return nil
}

func normalizeHost(c *NetConf, ifName string) error {
	h := &c.Host
	switch contracts.Engine(h.Engine) {
	case contracts.EngineVPP, contracts.EngineOVSDPDK:
	case "":
		return errorf(contracts.CodeInvalidConfig, "host.engine is required (vpp or ovs-dpdk)")
	default:
		return errorf(contracts.CodeInvalidConfig, "host.engine %q is not vpp or ovs-dpdk", h.Engine)
	}
	if err := checkIfType("host", h); err != nil {
		return err
	}
	switch contracts.NetType(h.NetType) {
	case contracts.NetTypeBridge, contracts.NetTypeInterface, contracts.NetTypeNone:
	case "":
		return errorf(contracts.CodeInvalidConfig, "host.netType is required (bridge, interface or none)")
	default:
		return errorf(contracts.CodeInvalidConfig, "host.netType %q is not bridge, interface or none", h.NetType)
	}
	switch contracts.IfType(h.IfType) {
	case contracts.IfTypeMemif:
		m := ensure(&h.Memif)
		m.Role = orDefault(m.Role, contracts.MemifRoleMaster)
		m.Mode = orDefault(m.Mode, contracts.MemifModeEthernet)
		m.Queues = orDefaultInt(m.Queues, DefaultQueues)
		m.RingSize = orDefaultInt(m.RingSize, DefaultRingSize)
		m.BufferSize = orDefaultInt(m.BufferSize, DefaultBufferSize)
		m.SocketType = orDefault(m.SocketType, SocketTypeFile)
		if m.SocketFile == "" && ifName != "" {
			m.SocketFile = "memif-" + ifName + ".sock"
		}
		if err := checkMemif("host.memif", m, engineLimits(h.Engine)); err != nil {
			return err
		}
		// OVS's DPDK lives in the host network namespace: it cannot reach
		// a socket in the pod's.
		if m.SocketType == SocketTypeAbstract && h.Engine != string(contracts.EngineVPP) {
			return errorf(contracts.CodeUnsupportedField, "host.memif.socketType %q is not supported with engine %s: only vpp creates sockets in the pod's network namespace", m.SocketType, h.Engine)
		}
	case contracts.IfTypeVhostUser:
		v := ensure(&h.Vhost)
		// OVS plugs dpdkvhostuserclient ports (the pod app is the server);
		// VPP creates the socket itself.
		defaultMode := contracts.VhostModeServer
		if h.Engine == string(contracts.EngineOVSDPDK) {
			defaultMode = contracts.VhostModeClient
		}
		v.Mode = orDefault(v.Mode, defaultMode)
		v.Queues = orDefaultInt(v.Queues, DefaultQueues)
		if v.SocketFile == "" && ifName != "" {
			v.SocketFile = "vhostuser-" + ifName + ".sock"
		}
		if err := checkVhost("host.vhost", v, engineLimits(h.Engine)); err != nil {
			return err
		}
	}
	if err := normalizeHostBridge(h); err != nil {
		return err
	}
	// The host end of a veth keeps the kernel's MAC: the vswitch never
	// answers as it (it is a switch port, not an endpoint).
	if h.IfType == string(contracts.IfTypeVeth) && h.MAC != "" {
		return errorf(contracts.CodeUnsupportedField, "host.mac is not supported with iftype veth: set container.mac for the pod's interface")
	}
	return checkMAC("host.mac", h.MAC)
}

// checkIfType checks iftype and that only the matching block is present.
func checkIfType(side string, s *Side) error {
	switch contracts.IfType(s.IfType) {
	case contracts.IfTypeMemif:
		if s.Vhost != nil {
			return errorf(contracts.CodeInvalidConfig, "%s.vhost is set but %s.iftype is memif", side, side)
		}
	case contracts.IfTypeVhostUser:
		if s.Memif != nil {
			return errorf(contracts.CodeInvalidConfig, "%s.memif is set but %s.iftype is vhostuser", side, side)
		}
	case contracts.IfTypeVeth:
		if s.Memif != nil || s.Vhost != nil {
			return errorf(contracts.CodeInvalidConfig, "%s.memif and %s.vhost must not be set for %s.iftype veth (a kernel netdev has no socket)", side, side, side)
		}
	case "":
		return errorf(contracts.CodeInvalidConfig, "%s.iftype is required (memif, vhostuser or veth)", side)
	default:
		return errorf(contracts.CodeInvalidConfig, "%s.iftype %q is not memif, vhostuser or veth", side, s.IfType)
	}
	return nil
}

func normalizeHostBridge(h *Side) error {
	switch contracts.Engine(h.Engine) {
	case contracts.EngineOVSDPDK:
		// An OVS port always lives on a bridge, whatever the netType.
		b := ensure(&h.Bridge)
		if len(b.BridgeID) > 0 {
			return errorf(contracts.CodeUnsupportedField, "host.bridge.bridgeId is not supported with engine ovs-dpdk: use bridgeName")
		}
		b.BridgeName = orDefault(b.BridgeName, DefaultOVSBridge)
		if !contracts.ValidIfName(b.BridgeName) {
			return errorf(contracts.CodeInvalidConfig, "host.bridge.bridgeName %q is not an OVS bridge name (1-15 bytes, no '/', ':' or spaces)", b.BridgeName)
		}
	case contracts.EngineVPP:
		if h.Bridge == nil {
			if h.NetType == string(contracts.NetTypeBridge) {
				return errorf(contracts.CodeInvalidConfig, "host.bridge.bridgeId is required for netType bridge with engine vpp")
			}
			return nil
		}
		id, err := vppBridgeID(h.Bridge)
		if err != nil {
			return err
		}
		if id == 0 && h.NetType == string(contracts.NetTypeBridge) {
			return errorf(contracts.CodeInvalidConfig, "host.bridge.bridgeId is required for netType bridge with engine vpp")
		}
		h.Bridge.ID = id
		// VPP tags in a bridge domain (an access port, like OVS's tag); an
		// L3 or unconnected interface has nothing to tag for.
		if h.Bridge.VlanID != 0 && h.NetType != string(contracts.NetTypeBridge) {
			return errorf(contracts.CodeInvalidConfig, "host.bridge.vlanId %d needs netType bridge with engine vpp (netType is %s)", h.Bridge.VlanID, h.NetType)
		}
	}
	return checkVLAN("host.bridge.vlanId", h.Bridge)
}

// vppBridgeID reads the bridge domain from bridgeId (number or numeric
// string) or a numeric bridgeName; 0 means none given.
func vppBridgeID(b *Bridge) (uint32, error) {
	maxID := uint64(engineLimits(string(contracts.EngineVPP)).MaxBridgeID)
	var fromID, fromName uint64
	if raw := bytes.TrimSpace(b.BridgeID); len(raw) > 0 && string(raw) != "null" {
		text := string(raw)
		var s string
		if json.Unmarshal(raw, &s) == nil {
			text = s
		}
		n, err := strconv.ParseUint(strings.TrimSpace(text), 10, 64)
		if err != nil || n == 0 || n > maxID {
			return 0, errorf(contracts.CodeInvalidConfig, "host.bridge.bridgeId %s is not a VPP bridge domain id (1-%d)", text, maxID)
		}
		fromID = n
	}
	if b.BridgeName != "" {
		n, err := strconv.ParseUint(b.BridgeName, 10, 64)
		if err != nil || n == 0 || n > maxID {
			return 0, errorf(contracts.CodeInvalidConfig, "host.bridge.bridgeName %q is not numeric: engine vpp needs a bridge domain id (1-%d)", b.BridgeName, maxID)
		}
		fromName = n
	}
	if fromID != 0 && fromName != 0 && fromID != fromName {
		return 0, errorf(contracts.CodeInvalidConfig, "host.bridge.bridgeId %d and host.bridge.bridgeName %q name different bridge domains", fromID, b.BridgeName)
	}
	return uint32(max(fromID, fromName)), nil
}

func checkVLAN(field string, b *Bridge) error {
	if b == nil || b.VlanID == 0 {
		return nil
	}
	return invalid(limits.Wire.VLAN(field, b.VlanID))
}

// checkMemif checks a memif block against the limits of the engine on
// its side.
func checkMemif(field string, m *Memif, l limits.Limits) error {
	switch m.Role {
	case "server":
		m.Role = contracts.MemifRoleMaster
	case "client":
		m.Role = contracts.MemifRoleSlave
	case contracts.MemifRoleMaster, contracts.MemifRoleSlave:
	default:
		return errorf(contracts.CodeInvalidConfig, "%s.role %q is not master or slave (or server/client)", field, m.Role)
	}
	switch m.Mode {
	case contracts.MemifModeEthernet, contracts.MemifModeIP, contracts.MemifModeInjectPunt:
	default:
		return errorf(contracts.CodeInvalidConfig, "%s.mode %q is not ethernet, ip or inject-punt", field, m.Mode)
	}
	for _, err := range []error{
		l.MemifQueues(field+".queues", m.Queues),
		l.MemifRingSize(field+".ringSize", m.RingSize),
		l.MemifBufferSize(field+".bufferSize", m.BufferSize),
		l.MemifSecret(field+".secret", m.Secret),
	} {
		if err != nil {
			return invalid(err)
		}
	}
	switch m.SocketType {
	case SocketTypeFile:
		return checkSocketFile(field+".socketfile", m.SocketFile)
	case SocketTypeAbstract:
		return checkAbstractName(field+".socketfile", m.SocketFile)
	}
	return errorf(contracts.CodeInvalidConfig, "%s.socketType %q is not file or abstract", field, m.SocketType)
}

// checkAbstractName accepts what VPP's socket parser takes as an abstract
// socket name: it stops at anything outside [A-Za-z0-9/._-]. The name is
// not a path, so '/' is fine and the directory limits do not apply.
func checkAbstractName(field, name string) error {
	if name == "" {
		return nil // default derived per interface
	}
	if len(name) > MaxAbstractNameLen {
		return errorf(contracts.CodeInvalidConfig, "%s is %d bytes, an abstract socket name has at most %d", field, len(name), MaxAbstractNameLen)
	}
	if !abstractNameChars(name) {
		return errorf(contracts.CodeInvalidConfig, "%s %q: an abstract socket name may only contain A-Z a-z 0-9 / . _ -", field, name)
	}
	return nil
}

func abstractNameChars(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-", r)) {
			return false
		}
	}
	return true
}

// CheckAbstractNetns checks CNI_NETNS for an abstract socket: VPP is
// given "abstract:<name>,netns_name=<netns>" and its parser needs an
// absolute path of [A-Za-z0-9/._-].
func CheckAbstractNetns(netns string) error {
	if netns == "" {
		return errorf(contracts.CodeInvalidEnv, "CNI_NETNS is required: host.memif.socketType abstract puts the socket in the pod's network namespace")
	}
	if !filepath.IsAbs(netns) || !abstractNameChars(netns) {
		return errorf(contracts.CodeInvalidEnv, "CNI_NETNS %q must be an absolute path of A-Z a-z 0-9 / . _ - for VPP to open it (host.memif.socketType abstract)", netns)
	}
	return nil
}

func checkVhost(field string, v *Vhost, l limits.Limits) error {
	if v.Mode != contracts.VhostModeClient && v.Mode != contracts.VhostModeServer {
		return errorf(contracts.CodeInvalidConfig, "%s.mode %q is not client or server", field, v.Mode)
	}
	if err := invalid(l.VhostQueues(field+".queues", v.Queues)); err != nil {
		return err
	}
	if v.Group != "" && !validGroup(v.Group) {
		return errorf(contracts.CodeInvalidConfig, "%s.group %q is not a unix group name or gid", field, v.Group)
	}
	return checkSocketFile(field+".socketfile", v.SocketFile)
}

// checkSocketFile accepts a plain file name only: the directory is ours.
func checkSocketFile(field, name string) error {
	if name == "" {
		return nil // default derived per interface
	}
	if filepath.IsAbs(name) {
		return errorf(contracts.CodeInvalidConfig, "%s %q must be a file name, not an absolute path", field, name)
	}
	if name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return errorf(contracts.CodeInvalidConfig, "%s %q must be a file name without '/' or '..'", field, name)
	}
	if len(name) > MaxSocketFileLen {
		return errorf(contracts.CodeInvalidConfig, "%s is %d bytes, at most %d", field, len(name), MaxSocketFileLen)
	}
	return nil
}

// deriveContainer fills the container side from the host side and checks
// that both ends of the one socket agree.
func deriveContainer(c *NetConf) error {
	h, ct := &c.Host, &c.Container
	ct.Engine = orDefault(ct.Engine, h.Engine)
	if !contracts.Engine(ct.Engine).Valid() {
		return errorf(contracts.CodeInvalidConfig, "container.engine %q is not vpp or ovs-dpdk", ct.Engine)
	}
	ct.IfType = orDefault(ct.IfType, h.IfType)
	if err := checkIfType("container", ct); err != nil {
		return err
	}
	if ct.IfType != h.IfType {
		return errorf(contracts.CodeInvalidConfig, "container.iftype %q differs from host.iftype %q: both ends share one socket", ct.IfType, h.IfType)
	}
	ct.NetType = orDefault(ct.NetType, h.NetType)
	switch contracts.NetType(ct.NetType) {
	case contracts.NetTypeBridge, contracts.NetTypeInterface, contracts.NetTypeNone:
	default:
		return errorf(contracts.CodeInvalidConfig, "container.netType %q is not bridge, interface or none", ct.NetType)
	}
	switch contracts.IfType(ct.IfType) {
	case contracts.IfTypeMemif:
		if err := deriveContainerMemif(h.Memif, ct); err != nil {
			return err
		}
	case contracts.IfTypeVhostUser:
		if err := deriveContainerVhost(h.Vhost, ct); err != nil {
			return err
		}
	}
	if err := checkVLAN("container.bridge.vlanId", ct.Bridge); err != nil {
		return err
	}
	return checkMAC("container.mac", ct.MAC)
}

// opposite is the container's end of a two-ended setting: own when set,
// else whichever of a and b the host's end is not.
func opposite(own, host, a, b string) string {
	switch {
	case own != "":
		return own
	case host == a:
		return b
	}
	return a
}

// ensure is *p, set to a new zero T first where it is nil.
func ensure[T any](p **T) *T {
	if *p == nil {
		*p = new(T)
	}
	return *p
}

func deriveContainerMemif(hm *Memif, ct *Side) error {
	m := ensure(&ct.Memif)
	m.Role = opposite(m.Role, hm.Role, contracts.MemifRoleMaster, contracts.MemifRoleSlave)
	m.Mode = orDefault(m.Mode, hm.Mode)
	m.Queues = orDefaultInt(m.Queues, hm.Queues)
	m.RingSize = orDefaultInt(m.RingSize, hm.RingSize)
	m.BufferSize = orDefaultInt(m.BufferSize, hm.BufferSize)
	m.Secret = orDefault(m.Secret, hm.Secret)
	m.SocketFile = orDefault(m.SocketFile, hm.SocketFile)
	m.SocketType = orDefault(m.SocketType, hm.SocketType)
	if m.ID == 0 {
		m.ID = hm.ID
	}
	if err := checkMemif("container.memif", m, engineLimits(ct.Engine)); err != nil {
		return err
	}
	switch {
	case m.Role == hm.Role:
		return errorf(contracts.CodeInvalidConfig, "container.memif.role %q equals host.memif.role: one end must be master, the other slave", m.Role)
	case m.Mode != hm.Mode:
		return errorf(contracts.CodeInvalidConfig, "container.memif.mode %q differs from host.memif.mode %q", m.Mode, hm.Mode)
	case m.SocketFile != hm.SocketFile:
		return errorf(contracts.CodeInvalidConfig, "container.memif.socketfile %q differs from host.memif.socketfile %q: both ends share one socket", m.SocketFile, hm.SocketFile)
	case m.SocketType != hm.SocketType:
		return errorf(contracts.CodeInvalidConfig, "container.memif.socketType %q differs from host.memif.socketType %q: both ends share one socket", m.SocketType, hm.SocketType)
	case m.ID != hm.ID:
		return errorf(contracts.CodeInvalidConfig, "container.memif.id %d differs from host.memif.id %d", m.ID, hm.ID)
	case m.Secret != hm.Secret:
		return errorf(contracts.CodeInvalidConfig, "container.memif.secret differs from host.memif.secret")
	}
	return nil
}

func deriveContainerVhost(hv *Vhost, ct *Side) error {
	v := ensure(&ct.Vhost)
	v.Mode = opposite(v.Mode, hv.Mode, contracts.VhostModeServer, contracts.VhostModeClient)
	v.Queues = orDefaultInt(v.Queues, hv.Queues)
	v.SocketFile = orDefault(v.SocketFile, hv.SocketFile)
	if err := checkVhost("container.vhost", v, engineLimits(ct.Engine)); err != nil {
		return err
	}
	switch {
	case v.Mode == hv.Mode:
		return errorf(contracts.CodeInvalidConfig, "container.vhost.mode %q equals host.vhost.mode: one end must be client, the other server", v.Mode)
	case v.SocketFile != hv.SocketFile:
		return errorf(contracts.CodeInvalidConfig, "container.vhost.socketfile %q differs from host.vhost.socketfile %q: both ends share one socket", v.SocketFile, hv.SocketFile)
	}
	return nil
}

// checkSocketPaths rejects socket files whose paths cannot fit sun_path:
// inside the pod, and on the host even through the short link directory
// (the direct host path is chosen per attachment by poddata). An abstract
// socket has no path: checkAbstractName bounds its name.
func checkSocketPaths(c *NetConf) error {
	file := c.SocketFile()
	if file == "" || c.AbstractSocket() {
		return nil
	}
	field := "host.memif.socketfile"
	if c.Host.Vhost != nil {
		field = "host.vhost.socketfile"
	}
	if p := filepath.Join(c.PodMountPath, file); len(p) > contracts.MaxSocketPathLen {
		return errorf(contracts.CodeInvalidConfig, "%s: the pod's socket path %s is %d bytes, the unix limit is %d (shorten podMountPath or the file name)", field, p, len(p), contracts.MaxSocketPathLen)
	}
	linked := len(c.LinkDir) + 1 + LinkNameLen + 1 + len(file)
	if linked > contracts.MaxSocketPathLen {
		return errorf(contracts.CodeInvalidConfig, "%s: the host socket path under linkDir %s is %d bytes, the unix limit is %d (shorten linkDir or the file name)", field, c.LinkDir, linked, contracts.MaxSocketPathLen)
	}
	return nil
}

func checkMAC(field, mac string) error {
	if mac == "" {
		return nil
	}
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return errorf(contracts.CodeInvalidConfig, "%s %q is not a MAC address like 02:00:00:00:00:01", field, mac)
	}
	if hw[0]&1 != 0 {
		return errorf(contracts.CodeInvalidConfig, "%s %q is a multicast address", field, mac)
	}
	return nil
}

// cleanAbsPath requires an absolute path without ".." elements ("" stays "").
func cleanAbsPath(field, p string) (string, error) {
	if p == "" {
		return "", nil
	}
	if !filepath.IsAbs(p) {
		return "", errorf(contracts.CodeInvalidConfig, "%s %q must be an absolute path", field, p)
	}
	if strings.ContainsRune(p, 0) {
		return "", errorf(contracts.CodeInvalidConfig, "%s contains a NUL byte", field)
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return "", errorf(contracts.CodeInvalidConfig, "%s %q must not contain '..'", field, p)
		}
	}
	return filepath.Clean(p), nil
}

// normalizeLogLevel maps the old plugin's and zerolog's level names to
// zerolog's; "" stays "" (per-writer defaults apply).
func normalizeLogLevel(l string) (string, error) {
	switch strings.ToLower(l) {
	case "":
		return "", nil
	case "trace", "verbose":
		return "trace", nil
	case "debug", "info", "error", "fatal", "panic", "disabled":
		return strings.ToLower(l), nil
	case "warn", "warning":
		return "warn", nil
	}
	return "", errorf(contracts.CodeInvalidConfig, "logLevel %q is not one of trace, debug, info, warn, error, panic, disabled", l)
}

// validPodUID accepts what kubelet uses: UUIDs and, for static pods, hex hashes.
func validPodUID(uid string) bool {
	if len(uid) > 64 {
		return false
	}
	for _, r := range uid {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-') {
			return false
		}
	}
	return uid != ""
}

func validDNSLabel(s string) bool {
	if len(s) > 63 || s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

func validGroup(g string) bool {
	if _, err := strconv.ParseUint(g, 10, 32); err == nil {
		return true
	}
	if len(g) > 32 || g[0] == '-' {
		return false
	}
	for _, r := range g {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func orDefaultInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
