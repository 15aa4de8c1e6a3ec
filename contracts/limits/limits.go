// Package limits is the one place for the limits of an interface spec:
// memif secret, queues, ring and buffer sizes, MTU, bridge domain id and
// VLAN. cni-entry validates with it, contracts' decoders check the
// engine-independent bounds (Wire), each adapter checks its engine's
// (For), and libs/memif sizes its protocol fields from it, so a value
// accepted at the edge is accepted everywhere. Every value is the
// strictest true one among the implementations an engine talks to (VPP
// 25.10, DPDK's net_memif PMD under OVS-DPDK, libmemif).
//
// It imports nothing outside the standard library, so libraries that must
// not link nats.go (libs/memif) can use it.
package limits

import "fmt"

// Engine names a vswitch; the values are contracts.Engine's, which
// converts to and from it.
type Engine string

const (
	VPP     Engine = "vpp"
	OVSDPDK Engine = "ovs-dpdk"
)

// Limits that are the same on every engine.
const (
	// MemifSecretSize is the secret field of the memif INIT message; its
	// last byte is always the NUL (VPP's string[24], DPDK's strlcpy into
	// char[ETH_MEMIF_SECRET_SIZE]), so a secret has at most 23 bytes.
	MemifSecretSize = 24
	MaxMemifSecret  = MemifSecretSize - 1
	// MaxMemifQueues: VPP's memif_create takes u8 queue counts, DPDK's
	// ETH_MEMIF_MAX_NUM_Q_PAIRS and libmemif's MEMIF_MAX_*_RING are 255.
	MaxMemifQueues = 255
	// MaxMemifLog2Ring: MEMIF_MAX_LOG2_RING_SIZE (VPP, libmemif) and
	// ETH_MEMIF_MAX_LOG2_RING_SIZE (DPDK) are 14.
	MaxMemifLog2Ring = 14
	MaxMemifRingSize = 1 << MaxMemifLog2Ring
	// Buffer sizes: VPP's memif_create and DPDK's bsize take a u16; 128
	// leaves room for one minimal frame with headroom (a smaller buffer
	// chains nearly every packet).
	MinMemifBufferSize = 128
	MaxMemifBufferSize = 1<<16 - 1
	// MaxVhostQueues is usrsp's cap on vhost-user queue pairs, which are
	// negotiated between the ends; no vswitch is configured with it.
	MaxVhostQueues = 64
	MinMTU         = 68 // the IPv4 minimum
	// VLAN ids: 802.1Q reserves 0 (0 means untagged in a spec) and 4095.
	MinVLAN = 1
	MaxVLAN = 4094
	// MaxSocketPath: sun_path is 108 bytes including the NUL.
	MaxSocketPath = 107
)

// Limits are the bounds one engine accepts.
type Limits struct {
	Engine Engine
	// MinMemifRingSize is the smallest memif ring (a power of two).
	MinMemifRingSize int
	// MaxMTU is the largest interface MTU.
	MaxMTU int
	// MaxBridgeID is the largest bridge domain id; 0 when the engine
	// names its bridges instead (OVS).
	MaxBridgeID uint32
}

var engines = map[Engine]Limits{
	// VPP: bridge domain ids are 24 bits (L2_BD_ID_MAX); memif takes
	// MTU 65535 (checked on VPP 25.10). VPP also creates rings of 2 and 4
	// descriptors; usrsp keeps the floor of 8 vpp-adapter always had, as
	// nothing smaller is tested with traffic.
	VPP: {Engine: VPP, MinMemifRingSize: 8, MaxMTU: 65535, MaxBridgeID: 1<<24 - 1},
	// OVS-DPDK: DPDK's rsize is log2 1..14; netdev-dpdk's largest frame
	// is 9728 bytes, MTU 9702.
	OVSDPDK: {Engine: OVSDPDK, MinMemifRingSize: 2, MaxMTU: 9702},
}

// Wire is the widest of every engine's limits: what contracts' decoders
// check before an adapter applies its engine's (For).
var Wire = Limits{MinMemifRingSize: 2, MaxMTU: 65535, MaxBridgeID: 1<<32 - 1}

// For returns the limits of engine e; false for an unknown engine.
func For(e Engine) (Limits, bool) {
	l, ok := engines[e]
	return l, ok
}

// Engines lists the engines For knows.
func Engines() []Engine { return []Engine{VPP, OVSDPDK} }

// The checks below return an error naming field ("host.memif.queues",
// "interface.mtu", ...) in one shape: "<field>: <value> is ...". Callers
// wrap it in their error type (contracts.CodeInvalidConfig).

// MemifQueues checks a memif queue count (1-255).
func (l Limits) MemifQueues(field string, n int) error {
	return inRange(field, n, 1, MaxMemifQueues)
}

// VhostQueues checks a vhost-user queue pair count.
func (l Limits) VhostQueues(field string, n int) error {
	return inRange(field, n, 1, MaxVhostQueues)
}

// MemifRingSize checks descriptors per ring: a power of two within the
// engine's bounds.
func (l Limits) MemifRingSize(field string, n int) error {
	if n < l.MinMemifRingSize || n > MaxMemifRingSize || n&(n-1) != 0 {
		return fmt.Errorf("%s: %d is not a power of two in %d-%d", field, n, l.MinMemifRingSize, MaxMemifRingSize)
	}
	return nil
}

// MemifBufferSize checks bytes per memif buffer.
func (l Limits) MemifBufferSize(field string, n int) error {
	return inRange(field, n, MinMemifBufferSize, MaxMemifBufferSize)
}

// MemifSecret checks a memif secret's length (at most 23 bytes).
func (l Limits) MemifSecret(field, s string) error {
	if len(s) > MaxMemifSecret {
		return fmt.Errorf("%s: %d bytes is more than the memif limit of %d", field, len(s), MaxMemifSecret)
	}
	return nil
}

// MTU checks an interface MTU (0, "the vswitch's default", is the
// caller's to allow).
func (l Limits) MTU(field string, n int) error {
	return inRange(field, n, MinMTU, l.MaxMTU)
}

// BridgeID checks a bridge domain id (1-MaxBridgeID; VPP's domain 0 is
// its default domain, never ours).
func (l Limits) BridgeID(field string, id uint64) error {
	if l.MaxBridgeID == 0 {
		return fmt.Errorf("%s: engine %s has no numeric bridge domains", field, l.Engine)
	}
	if id < 1 || id > uint64(l.MaxBridgeID) {
		return fmt.Errorf("%s: %d is outside 1-%d", field, id, l.MaxBridgeID)
	}
	return nil
}

// VLAN checks a VLAN id (1-4094; 0, untagged, is the caller's to allow).
func (l Limits) VLAN(field string, v int) error {
	return inRange(field, v, MinVLAN, MaxVLAN)
}

func inRange(field string, n, lo, hi int) error {
	if n < lo || n > hi {
		return fmt.Errorf("%s: %d is outside %d-%d", field, n, lo, hi)
	}
	return nil
}
