package contracts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"usrsp.dev/contracts/limits"
)

// Limits of keys and paths shared by every producer and consumer of these
// messages. Interface limits (memif, MTU, VLAN, bridge domain) are in
// package limits.
const (
	MaxIfNameLen      = 15                   // Linux IFNAMSIZ-1; Multus passes kernel-style names
	MaxContainerIDLen = 256                  // generous; runtimes use 64 hex chars
	MaxSocketPathLen  = limits.MaxSocketPath // sun_path is 108 bytes including the NUL
)

// decodeStrict unmarshals one JSON object and rejects trailing data, so a
// truncated or concatenated message never half-applies.
func decodeStrict(b []byte, v any, what string) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return Errorf(CodeDecode, "%s: %v", what, err)
	}
	if dec.More() {
		return Errorf(CodeDecode, "%s: trailing data after the JSON object", what)
	}
	return nil
}

// ValidContainerID reports whether id is usable as a container id: the CNI
// spec allows alphanumerics plus '_', '.', '-', starting alphanumeric.
func ValidContainerID(id string) bool {
	if id == "" || len(id) > MaxContainerIDLen {
		return false
	}
	for i, r := range id {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || (r != '_' && r != '.' && r != '-')) {
			return false
		}
	}
	return true
}

// ValidIfName reports whether name is a usable interface name: like a
// Linux interface name (1-15 bytes, no '/', ':', white space, not "." or "..").
func ValidIfName(name string) bool {
	if name == "" || len(name) > MaxIfNameLen || name == "." || name == ".." {
		return false
	}
	return !strings.ContainsAny(name, "/: \t\n\r\x00")
}

func checkKey(k AttachmentKey) error {
	if !ValidContainerID(k.ContainerID) {
		return Errorf(CodeInvalidConfig, "key.containerId %q is not a valid container id", k.ContainerID)
	}
	if !ValidIfName(k.IfName) {
		return Errorf(CodeInvalidConfig, "key.ifName %q is not a valid interface name", k.IfName)
	}
	return nil
}

func checkIfSpecs(t IfType, m *MemifSpec, v *VhostSpec) error {
	switch t {
	case IfTypeMemif:
		if m == nil {
			return Errorf(CodeInvalidConfig, "interface.memif is missing for ifType memif")
		}
		if m.Role != MemifRoleMaster && m.Role != MemifRoleSlave {
			return Errorf(CodeInvalidConfig, "interface.memif.role %q is not master or slave", m.Role)
		}
		switch m.Mode {
		case MemifModeEthernet, MemifModeIP, MemifModeInjectPunt:
		default:
			return Errorf(CodeInvalidConfig, "interface.memif.mode %q is not ethernet, ip or inject-punt", m.Mode)
		}
		if err := checkMemifLimits(m); err != nil {
			return err
		}
	case IfTypeVhostUser:
		if v == nil {
			return Errorf(CodeInvalidConfig, "interface.vhost is missing for ifType vhostuser")
		}
		if v.Mode != VhostModeClient && v.Mode != VhostModeServer {
			return Errorf(CodeInvalidConfig, "interface.vhost.mode %q is not client or server", v.Mode)
		}
		if err := unlessZero("interface.vhost.queues", v.Queues, limits.Wire.VhostQueues); err != nil {
			return Errorf(CodeInvalidConfig, "%v", err)
		}
	case IfTypeVeth:
		if m != nil || v != nil {
			return Errorf(CodeInvalidConfig, "interface.memif and interface.vhost must be empty for ifType veth")
		}
	default:
		return Errorf(CodeInvalidConfig, "interface.ifType %q is not memif, vhostuser or veth", t)
	}
	return nil
}

// checkMemifLimits checks what every engine bounds the same way
// (limits.Wire); 0 leaves a value to the adapter's default.
func checkMemifLimits(m *MemifSpec) error {
	l := limits.Wire
	for _, err := range []error{
		unlessZero("interface.memif.queues", m.Queues, l.MemifQueues),
		unlessZero("interface.memif.ringSize", m.RingSize, l.MemifRingSize),
		unlessZero("interface.memif.bufferSize", m.BufferSize, l.MemifBufferSize),
		l.MemifSecret("interface.memif.secret", m.Secret),
	} {
		if err != nil {
			return Errorf(CodeInvalidConfig, "%v", err)
		}
	}
	return nil
}

// unlessZero runs check unless v is 0 (the default, or untagged).
func unlessZero(field string, v int, check func(string, int) error) error {
	if v == 0 {
		return nil
	}
	return check(field, v)
}

func checkHostInterface(h HostInterface) error {
	if err := checkIfSpecs(h.IfType, h.Memif, h.Vhost); err != nil {
		return err
	}
	switch {
	case h.IfType == IfTypeVeth && (h.Veth == nil || !ValidIfName(h.Veth.HostIfName)):
		return Errorf(CodeInvalidConfig, "interface.veth.hostIfName must name the host end of the veth pair for ifType veth")
	case h.IfType != IfTypeVeth && h.Veth != nil:
		return Errorf(CodeInvalidConfig, "interface.veth is set but interface.ifType is %q", h.IfType)
	case h.IfType == IfTypeVeth && h.SocketPath != "":
		return Errorf(CodeInvalidConfig, "interface.socketPath must be empty for ifType veth")
	}
	switch h.NetType {
	case NetTypeBridge:
		if h.Bridge == nil {
			return Errorf(CodeInvalidConfig, "interface.bridge is missing for netType bridge")
		}
	case NetTypeInterface, NetTypeNone:
	default:
		return Errorf(CodeInvalidConfig, "interface.netType %q is not bridge, interface or none", h.NetType)
	}
	if err := unlessZero("interface.mtu", h.MTU, limits.Wire.MTU); err != nil {
		return Errorf(CodeInvalidConfig, "%v", err)
	}
	if h.Bridge != nil {
		if err := unlessZero("interface.bridge.vlan", h.Bridge.VLAN, limits.Wire.VLAN); err != nil {
			return Errorf(CodeInvalidConfig, "%v", err)
		}
	}
	if h.PodAccess != nil {
		if err := h.PodAccess.Check("interface.podAccess"); err != nil {
			return err
		}
	}
	if h.Overlay != nil {
		if err := h.Overlay.Check("interface.overlay"); err != nil {
			return err
		}
		if h.NetType != NetTypeBridge && h.NetType != NetTypeInterface {
			return Errorf(CodeInvalidConfig, "interface.overlay needs netType bridge or interface, not %q", h.NetType)
		}
	}
	if len(h.SocketPath) > MaxSocketPathLen {
		return Errorf(CodeInvalidConfig, "interface.socketPath is %d bytes, the unix limit is %d", len(h.SocketPath), MaxSocketPathLen)
	}
	return nil
}

// DecodeAttachRequest parses and checks an AttachRequest.
func DecodeAttachRequest(b []byte) (*AttachRequest, error) {
	return decodeChecked(b, "attach request", func(r *AttachRequest) error { return checkKeyAndInterface(r.Key, r.Interface) })
}

// DecodeDetachRequest parses and checks a DetachRequest.
func DecodeDetachRequest(b []byte) (*DetachRequest, error) {
	return decodeChecked(b, "detach request", func(r *DetachRequest) error { return checkKey(r.Key) })
}

// DecodeCheckRequest parses and checks a CheckRequest.
func DecodeCheckRequest(b []byte) (*CheckRequest, error) {
	return decodeChecked(b, "check request", func(r *CheckRequest) error { return checkKeyAndInterface(r.Key, r.Interface) })
}

func checkKeyAndInterface(k AttachmentKey, h HostInterface) error {
	if err := checkKey(k); err != nil {
		return err
	}
	return checkHostInterface(h)
}

// decodeChecked parses a message and checks it with check.
func decodeChecked[T any](b []byte, what string, check func(*T) error) (*T, error) {
	var r T
	if err := decodeStrict(b, &r, what); err != nil {
		return nil, err
	}
	if err := check(&r); err != nil {
		return nil, err
	}
	return &r, nil
}

// DecodeListRequest parses a ListRequest (an empty body is fine).
func DecodeListRequest(b []byte) (*ListRequest, error) {
	return decodeOptional[ListRequest](b, "list request")
}

// DecodeGCRequest parses and checks a GCRequest.
func DecodeGCRequest(b []byte) (*GCRequest, error) {
	return decodeChecked(b, "gc request", func(r *GCRequest) error {
		if r.Network == "" {
			return Errorf(CodeInvalidConfig, "gc request: network is empty")
		}
		for i, k := range r.Valid {
			if err := checkKey(k); err != nil {
				return fmt.Errorf("gc request: valid[%d]: %w", i, err)
			}
		}
		return nil
	})
}

// DecodeStatusRequest parses a StatusRequest (an empty body is fine).
func DecodeStatusRequest(b []byte) (*StatusRequest, error) {
	return decodeOptional[StatusRequest](b, "status request")
}

// decodeOptional parses a message whose empty body is its zero value.
func decodeOptional[T any](b []byte, what string) (*T, error) {
	var r T
	if len(bytes.TrimSpace(b)) == 0 {
		return &r, nil
	}
	return &r, decodeStrict(b, &r, what)
}

// DecodeEvent parses an Event.
func DecodeEvent(b []byte) (*Event, error) {
	var e Event
	return &e, decodeStrict(b, &e, "event")
}
