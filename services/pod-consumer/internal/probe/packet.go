package probe

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// Frame layout constants (Ethernet II, ARP for IPv4 over Ethernet, IPv4
// without options on transmit, ICMP echo).
const (
	ethHeaderLen  = 14
	arpLen        = 28
	ipv4HeaderLen = 20
	icmpHeaderLen = 8

	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806

	arpRequest = 1
	arpReply   = 2

	protoICMP       = 1
	icmpEchoReply   = 0
	icmpEchoRequest = 8

	defaultTTL = 64
)

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// arpPacket is an ARP message for IPv4 over Ethernet.
type arpPacket struct {
	Op        uint16
	SenderMAC net.HardwareAddr
	SenderIP  netip.Addr
	TargetMAC net.HardwareAddr
	TargetIP  netip.Addr
}

// echo is an ICMP echo request or reply inside an IPv4 packet.
type echo struct {
	Type    uint8
	ID, Seq uint16
	Src     netip.Addr
	Dst     netip.Addr
	TTL     uint8
	Payload []byte // aliases the frame
}

// frame is a decoded Ethernet frame: at most one of ARP and Echo is set.
type frame struct {
	Dst, Src net.HardwareAddr // alias the frame
	ARP      *arpPacket
	Echo     *echo
}

// parseFrame decodes the frames the probe cares about. Anything else
// (other ethertypes, IPv4 fragments, other ICMP, bad checksums) returns
// ok false; parseFrame never panics on any input.
func parseFrame(b []byte) (f frame, ok bool) {
	if len(b) < ethHeaderLen {
		return f, false
	}
	f.Dst, f.Src = net.HardwareAddr(b[0:6]), net.HardwareAddr(b[6:12])
	p := b[ethHeaderLen:]
	switch binary.BigEndian.Uint16(b[12:14]) {
	case etherTypeARP:
		a, ok := parseARP(p)
		f.ARP = a
		return f, ok
	case etherTypeIPv4:
		e, ok := parseEcho(p)
		f.Echo = e
		return f, ok
	}
	return f, false
}

func parseARP(p []byte) (*arpPacket, bool) {
	// hardware type 1 (Ethernet), protocol IPv4, lengths 6 and 4.
	if len(p) < arpLen || binary.BigEndian.Uint16(p[0:2]) != 1 || binary.BigEndian.Uint16(p[2:4]) != etherTypeIPv4 ||
		p[4] != 6 || p[5] != 4 {
		return nil, false
	}
	return &arpPacket{
		Op:        binary.BigEndian.Uint16(p[6:8]),
		SenderMAC: net.HardwareAddr(p[8:14]),
		SenderIP:  netip.AddrFrom4([4]byte(p[14:18])),
		TargetMAC: net.HardwareAddr(p[18:24]),
		TargetIP:  netip.AddrFrom4([4]byte(p[24:28])),
	}, true
}

func parseEcho(p []byte) (*echo, bool) {
	if len(p) < ipv4HeaderLen || p[0]>>4 != 4 {
		return nil, false
	}
	ihl := int(p[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(p[2:4]))
	fragment := binary.BigEndian.Uint16(p[6:8])&0x3fff != 0 // MF flag or offset
	if ihl < ipv4HeaderLen || total < ihl+icmpHeaderLen || total > len(p) || fragment || p[9] != protoICMP ||
		checksum(p[:ihl]) != 0 {
		return nil, false
	}
	icmp := p[ihl:total]
	if checksum(icmp) != 0 || icmp[1] != 0 || (icmp[0] != icmpEchoRequest && icmp[0] != icmpEchoReply) {
		return nil, false
	}
	return &echo{
		Type: icmp[0], ID: binary.BigEndian.Uint16(icmp[4:6]), Seq: binary.BigEndian.Uint16(icmp[6:8]),
		Src: netip.AddrFrom4([4]byte(p[12:16])), Dst: netip.AddrFrom4([4]byte(p[16:20])), TTL: p[8],
		Payload: icmp[icmpHeaderLen:],
	}, true
}

// appendEthernet appends an Ethernet II header.
func appendEthernet(b []byte, dst, src net.HardwareAddr, etherType uint16) []byte {
	b = append(b, dst[:6]...)
	b = append(b, src[:6]...)
	return binary.BigEndian.AppendUint16(b, etherType)
}

// arpFrame builds a whole ARP frame. A request goes to broadcast with a
// zero target MAC.
func arpFrame(a arpPacket) []byte {
	dst, target := a.TargetMAC, a.TargetMAC
	if a.Op == arpRequest {
		dst, target = broadcastMAC, make(net.HardwareAddr, 6)
	}
	b := appendEthernet(make([]byte, 0, ethHeaderLen+arpLen), dst, a.SenderMAC, etherTypeARP)
	b = binary.BigEndian.AppendUint16(b, 1)
	b = binary.BigEndian.AppendUint16(b, etherTypeIPv4)
	b = append(b, 6, 4)
	b = binary.BigEndian.AppendUint16(b, a.Op)
	b = append(b, a.SenderMAC[:6]...)
	s4 := a.SenderIP.As4()
	b = append(b, s4[:]...)
	b = append(b, target[:6]...)
	t4 := a.TargetIP.As4()
	return append(b, t4[:]...)
}

// echoFrame builds an Ethernet frame with an IPv4 ICMP echo message.
func echoFrame(dst, src net.HardwareAddr, e echo) []byte {
	total := ipv4HeaderLen + icmpHeaderLen + len(e.Payload)
	b := appendEthernet(make([]byte, 0, ethHeaderLen+total), dst, src, etherTypeIPv4)
	ip := len(b)
	ttl := e.TTL
	if ttl == 0 {
		ttl = defaultTTL
	}
	b = append(b, 0x45, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(total))
	b = binary.BigEndian.AppendUint16(b, e.Seq)  // identification
	b = binary.BigEndian.AppendUint16(b, 0x4000) // don't fragment
	b = append(b, ttl, protoICMP, 0, 0)
	s4, d4 := e.Src.As4(), e.Dst.As4()
	b = append(b, s4[:]...)
	b = append(b, d4[:]...)
	binary.BigEndian.PutUint16(b[ip+10:], checksum(b[ip:]))
	icmp := len(b)
	b = append(b, e.Type, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, e.ID)
	b = binary.BigEndian.AppendUint16(b, e.Seq)
	b = append(b, e.Payload...)
	binary.BigEndian.PutUint16(b[icmp+2:], checksum(b[icmp:]))
	return b
}

// checksum is the Internet checksum (RFC 1071); it is 0 over data that
// carries a correct checksum.
func checksum(b []byte) uint16 {
	var sum uint32
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
