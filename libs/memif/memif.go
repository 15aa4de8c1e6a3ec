// Package memif implements the memif shared-memory packet interface protocol
// (version 2.0) as used by VPP, DPDK's net_memif and OVS-DPDK, in pure Go.
//
// The client (memif "slave") allocates all shared memory and interrupt
// eventfds and announces them to the server (memif "master") over a
// SOCK_SEQPACKET unix socket. Each queue pair is two rings: S2M (client->server)
// and M2S (server->client). Data is copied into/out of the shared buffers, so
// callers keep ownership of their slices.
package memif

import (
	"errors"
	"fmt"

	"usrsp.dev/contracts/limits"
)

// Role selects which side of the memif connection this interface plays.
type Role int

const (
	// RoleClient connects to a socket and owns the shared memory (memif "slave").
	RoleClient Role = iota
	// RoleServer listens on a socket and maps the client's memory (memif "master").
	RoleServer
)

func (r Role) String() string {
	if r == RoleServer {
		return "server"
	}
	return "client"
}

// Config describes one memif interface.
type Config struct {
	Role       Role
	SocketPath string // filesystem path of the control socket (no abstract sockets)
	ID         uint32 // interface id; client and server must agree
	Secret     string // optional shared secret, at most 23 bytes
	Name       string // name announced to the peer, at most 31 bytes

	// NumQueuePairs is the number of queue pairs (default 1). For a server it
	// is the maximum a client may create.
	NumQueuePairs int
	// Log2RingSize is log2 of descriptors per ring (1..14). Client default 10.
	// For a server it is the largest ring accepted (default 14).
	Log2RingSize uint8
	// BufferSize is the size of each packet buffer in bytes (client only,
	// default 2048). Larger packets are chained over several buffers.
	BufferSize uint32
	Mode       Mode
}

// Interface limits are usrsp's shared ones (contracts/limits), so a
// config the edge accepts is one this package accepts. The smallest
// buffer is this package's own: it chains, so 64 bytes work here even
// though vswitches want 128.
const (
	defaultLog2RingSize = 10
	defaultBufferSize   = 2048
	minBufferSize       = 64
	maxQueuePairs       = limits.MaxMemifQueues
	maxBufferSize       = limits.MaxMemifBufferSize
	maxRegionSize       = 1 << 32              // descriptor offsets are uint32
	maxSocketPath       = limits.MaxSocketPath // sizeof(sun_path) - 1
	maxSecret           = limits.MaxMemifSecret
)

// withDefaults validates cfg and fills in defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.SocketPath == "" {
		return cfg, errors.New("memif: Config.SocketPath is empty")
	}
	if len(cfg.SocketPath) > maxSocketPath {
		return cfg, fmt.Errorf("memif: Config.SocketPath is %d bytes, max %d", len(cfg.SocketPath), maxSocketPath)
	}
	if cfg.Role != RoleClient && cfg.Role != RoleServer {
		return cfg, fmt.Errorf("memif: invalid Config.Role %d", cfg.Role)
	}
	if len(cfg.Secret) > maxSecret {
		return cfg, fmt.Errorf("memif: Config.Secret is %d bytes, max %d", len(cfg.Secret), maxSecret)
	}
	if len(cfg.Name) > nameSize-1 {
		return cfg, fmt.Errorf("memif: Config.Name is %d bytes, max %d", len(cfg.Name), nameSize-1)
	}
	if cfg.Mode != ModeEthernet && cfg.Mode != ModeIP {
		return cfg, fmt.Errorf("memif: unsupported Config.Mode %v", cfg.Mode)
	}
	if cfg.NumQueuePairs == 0 {
		cfg.NumQueuePairs = 1
	}
	if cfg.NumQueuePairs < 1 || cfg.NumQueuePairs > maxQueuePairs {
		return cfg, fmt.Errorf("memif: Config.NumQueuePairs %d out of range 1..%d", cfg.NumQueuePairs, maxQueuePairs)
	}
	if cfg.Log2RingSize == 0 {
		cfg.Log2RingSize = defaultLog2RingSize
		if cfg.Role == RoleServer {
			cfg.Log2RingSize = maxLog2RingSize
		}
	}
	if cfg.Log2RingSize > maxLog2RingSize {
		return cfg, fmt.Errorf("memif: Config.Log2RingSize %d out of range 1..%d", cfg.Log2RingSize, maxLog2RingSize)
	}
	if cfg.BufferSize == 0 {
		cfg.BufferSize = defaultBufferSize
	}
	if cfg.BufferSize < minBufferSize || cfg.BufferSize > maxBufferSize {
		return cfg, fmt.Errorf("memif: Config.BufferSize %d out of range %d..%d", cfg.BufferSize, minBufferSize, maxBufferSize)
	}
	if cfg.Name == "" {
		cfg.Name = "usrsp-memif"
	}
	return cfg, nil
}

// Errors returned by the data path and connection management.
var (
	ErrClosed         = errors.New("memif: interface closed")
	ErrNotConnected   = errors.New("memif: interface not connected")
	ErrDisconnected   = errors.New("memif: connection lost")
	ErrConnected      = errors.New("memif: interface already connected")
	ErrEmpty          = errors.New("memif: no packet available")
	ErrRingFull       = errors.New("memif: tx ring full")
	ErrShortBuffer    = errors.New("memif: buffer too small for packet")
	ErrPacketTooLarge = errors.New("memif: packet larger than the whole ring")
	ErrQueueIndex     = errors.New("memif: queue index out of range")
)

// PeerError reports a connection refused or closed by the peer, with the
// reason string it sent in its DISCONNECT message.
type PeerError struct {
	Code   uint32
	Reason string
}

func (e *PeerError) Error() string {
	return fmt.Sprintf("memif: peer disconnected: %s (code %d)", e.Reason, e.Code)
}
