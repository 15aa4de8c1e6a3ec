// Package probe is a tiny IPv4 host on a raw Ethernet port: it answers ARP
// and ICMP echo for its address and pings peers. With a memif port it lets
// an operator (or an e2e test) check a userspace network from inside a pod
// without VPP or DPDK.
package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Port sends and receives whole Ethernet frames.
type Port interface {
	// ReadFrame blocks until a frame is copied into buf, ctx ends or the
	// port fails, and returns the frame length.
	ReadFrame(ctx context.Context, buf []byte) (int, error)
	// WriteFrame sends one frame; the port does not keep p.
	WriteFrame(p []byte) error
}

// Config is the endpoint's identity on the wire.
type Config struct {
	MAC     net.HardwareAddr
	Addr    netip.Prefix // own address and its subnet (IPv4)
	Gateway netip.Addr   // next hop for destinations outside Addr's subnet; optional
}

// Stats counts what the endpoint answered.
type Stats struct {
	ARPAnswered  uint64 `json:"arpAnswered"`
	EchoAnswered uint64 `json:"echoAnswered"`
}

// Endpoint answers ARP and ICMP echo on a port and runs pings. Run must be
// running for Resolve and Ping to see replies.
type Endpoint struct {
	port Port
	cfg  Config

	mu        sync.Mutex
	neighbors map[netip.Addr]net.HardwareAddr
	learned   chan struct{}             // closed and replaced when a neighbor is learned
	pending   map[uint32]chan echoReply // id<<16|seq -> waiting Ping

	arpAnswered, echoAnswered atomic.Uint64
}

type echoReply struct {
	from  netip.Addr
	ttl   uint8
	bytes int
}

// New checks cfg and returns an endpoint on port.
func New(port Port, cfg Config) (*Endpoint, error) {
	if len(cfg.MAC) != 6 || cfg.MAC[0]&1 != 0 {
		return nil, fmt.Errorf("probe: MAC %q is not a unicast Ethernet address", cfg.MAC)
	}
	if !cfg.Addr.IsValid() || !cfg.Addr.Addr().Is4() {
		return nil, fmt.Errorf("probe: address %q is not an IPv4 prefix (IPv6 is not supported yet)", cfg.Addr)
	}
	if cfg.Gateway.IsValid() && !cfg.Gateway.Is4() {
		return nil, fmt.Errorf("probe: gateway %s is not IPv4", cfg.Gateway)
	}
	return &Endpoint{port: port, cfg: cfg, neighbors: map[netip.Addr]net.HardwareAddr{},
		learned: make(chan struct{}), pending: map[uint32]chan echoReply{}}, nil
}

// Config returns the endpoint's configuration.
func (e *Endpoint) Config() Config { return e.cfg }

// Stats returns the counters.
func (e *Endpoint) Stats() Stats {
	return Stats{ARPAnswered: e.arpAnswered.Load(), EchoAnswered: e.echoAnswered.Load()}
}

// maxFrame is the largest frame Run reads (memif chains buffers up to this).
const maxFrame = 1 << 16

// Run reads frames until ctx ends (returning nil) or the port fails.
func (e *Endpoint) Run(ctx context.Context) error {
	buf := make([]byte, maxFrame)
	for {
		n, err := e.port.ReadFrame(ctx, buf)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("probe: read: %w", err)
		}
		if err := e.handle(buf[:n]); err != nil {
			return fmt.Errorf("probe: write: %w", err)
		}
	}
}

// handle answers or records one frame. Only write errors are returned.
func (e *Endpoint) handle(b []byte) error {
	f, ok := parseFrame(b)
	if !ok || !(isBroadcast(f.Dst) || equalMAC(f.Dst, e.cfg.MAC)) {
		return nil
	}
	me := e.cfg.Addr.Addr()
	switch {
	case f.ARP != nil:
		a := f.ARP
		if a.SenderIP.IsValid() && !a.SenderIP.IsUnspecified() && (a.Op == arpReply || a.TargetIP == me) {
			e.learn(a.SenderIP, a.SenderMAC)
		}
		if a.Op == arpRequest && a.TargetIP == me {
			e.arpAnswered.Add(1)
			return e.port.WriteFrame(arpFrame(arpPacket{Op: arpReply, SenderMAC: e.cfg.MAC, SenderIP: me,
				TargetMAC: a.SenderMAC, TargetIP: a.SenderIP}))
		}
	case f.Echo != nil && f.Echo.Dst == me:
		m := f.Echo
		if m.Type == icmpEchoRequest {
			e.echoAnswered.Add(1)
			return e.port.WriteFrame(echoFrame(f.Src, e.cfg.MAC, echo{Type: icmpEchoReply, ID: m.ID, Seq: m.Seq,
				Src: me, Dst: m.Src, Payload: m.Payload}))
		}
		e.mu.Lock()
		ch, ok := e.pending[uint32(m.ID)<<16|uint32(m.Seq)]
		e.mu.Unlock()
		if ok {
			select {
			case ch <- echoReply{from: m.Src, ttl: m.TTL, bytes: icmpHeaderLen + len(m.Payload)}:
			default: // a duplicate reply
			}
		}
	}
	return nil
}

func (e *Endpoint) learn(ip netip.Addr, mac net.HardwareAddr) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if old, ok := e.neighbors[ip]; ok && equalMAC(old, mac) {
		return
	}
	e.neighbors[ip] = append(net.HardwareAddr(nil), mac...)
	close(e.learned)
	e.learned = make(chan struct{})
}

// ErrNoRoute says a destination is outside the subnet and there is no gateway.
var ErrNoRoute = errors.New("no route")

// NextHop is the address whose MAC frames to dst go to.
func (e *Endpoint) NextHop(dst netip.Addr) (netip.Addr, error) {
	if !dst.Is4() {
		return netip.Addr{}, fmt.Errorf("probe: %s is not an IPv4 address", dst)
	}
	if e.cfg.Addr.Contains(dst) {
		return dst, nil
	}
	if e.cfg.Gateway.IsValid() {
		return e.cfg.Gateway, nil
	}
	return netip.Addr{}, fmt.Errorf("probe: %s is outside %s and there is no gateway: %w", dst, e.cfg.Addr.Masked(), ErrNoRoute)
}

// Resolve returns ip's MAC, sending an ARP request every retry until a reply
// arrives or ctx ends.
func (e *Endpoint) Resolve(ctx context.Context, ip netip.Addr, retry time.Duration) (net.HardwareAddr, error) {
	req := arpFrame(arpPacket{Op: arpRequest, SenderMAC: e.cfg.MAC, SenderIP: e.cfg.Addr.Addr(), TargetIP: ip})
	for {
		e.mu.Lock()
		mac, ok := e.neighbors[ip]
		learned := e.learned
		e.mu.Unlock()
		if ok {
			return mac, nil
		}
		if err := e.port.WriteFrame(req); err != nil {
			return nil, fmt.Errorf("probe: send ARP request for %s: %w", ip, err)
		}
		t := time.NewTimer(retry)
		select {
		case <-learned:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("probe: no ARP reply from %s: %w", ip, ctx.Err())
		}
		t.Stop()
	}
}

func isBroadcast(m net.HardwareAddr) bool { return equalMAC(m, broadcastMAC) }

func equalMAC(a, b net.HardwareAddr) bool { return string(a) == string(b) }
