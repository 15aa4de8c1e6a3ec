package contracts

import (
	"crypto/sha256"
	"net"
)

// Attachment sides, for the MACs derived from an attachment key.
const (
	SideHost      = "host"
	SideContainer = "container"
)

// DerivedMAC is the MAC of one side of attachment k when the
// configuration names none: locally administered unicast, from SHA-256 of
// the side and the key, so it is the same after a re-ADD, a replay or an
// adapter restart, and known before anything exists. The two sides differ
// (the last byte is flipped on a collision). Every component derives MACs
// here, so the result, the pod data and the vswitch agree.
func DerivedMAC(k AttachmentKey, side string) string {
	return net.HardwareAddr(derivedMAC(k, side)).String()
}

func derivedMAC(k AttachmentKey, side string) []byte {
	prefix := "mac/" // the host side keeps the MAC ovs-adapter derived before this function existed
	if side != SideHost {
		prefix = "mac/" + side + "/"
	}
	sum := sha256.Sum256([]byte(prefix + k.String()))
	mac := sum[:6]
	mac[0] = mac[0]&^1 | 2 // unicast, locally administered
	if side != SideHost {
		if string(mac) == string(derivedMAC(k, SideHost)) {
			mac[5] ^= 1
		}
	}
	return mac
}

// ContainerMAC is the container side's MAC: configured, else derived.
func ContainerMAC(k AttachmentKey, configured string) string {
	if configured != "" {
		return configured
	}
	return DerivedMAC(k, SideContainer)
}

// HostVethName is the host end of the veth pair of attachment k (iftype
// veth): "usv" and 12 hex digits of SHA-256("<containerID>/<ifName>"), 15
// bytes (IFNAMSIZ-1), so cni-entry, the adapters and a reader of `ip link`
// all find it from the key alone.
func HostVethName(k AttachmentKey) string { return "usv" + k.ShortID() }
