package memif

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"usrsp.dev/contracts/limits"
)

// Wire constants from the memif protocol (libmemif memif.h, DPDK drivers/net/memif/memif.h).
const (
	cookie       = 0x3E31F20
	versionMajor = 2
	versionMinor = 0
	version      = versionMajor<<8 | versionMinor

	msgSize    = 128 // every control message is exactly 128 bytes
	nameSize   = 32
	secretSize = limits.MemifSecretSize // with its NUL
	reasonSize = 96

	addRingFlagS2M  = 1 // ADD_RING: ring carries slave->master traffic
	descFlagNext    = 1 // descriptor is continued in the next slot
	ringFlagMaskInt = 1 // consumer polls; producer must not signal the eventfd

	// Ring header: cookie(4) flags(2) head(2) on cache line 0, tail on cache line 1,
	// descriptors from cache line 2.
	ringHeadWordOff = 4 // 32-bit word holding flags (low half) and head (high half)
	ringTailOff     = 64
	ringDescOff     = 128
	descSize        = 16

	maxLog2RingSize = limits.MaxMemifLog2Ring // DPDK and VPP refuse larger rings
)

type msgType uint16

const (
	msgNone msgType = iota
	msgAck
	msgHello
	msgInit
	msgAddRegion
	msgAddRing
	msgConnect
	msgConnected
	msgDisconnect
)

func (t msgType) String() string {
	names := [...]string{"NONE", "ACK", "HELLO", "INIT", "ADD_REGION", "ADD_RING", "CONNECT", "CONNECTED", "DISCONNECT"}
	if int(t) < len(names) {
		return names[t]
	}
	return fmt.Sprintf("UNKNOWN(%d)", uint16(t))
}

// Mode is the interface mode carried in the INIT message.
type Mode uint8

const (
	ModeEthernet Mode = 0
	ModeIP       Mode = 1
)

func (m Mode) String() string {
	switch m {
	case ModeEthernet:
		return "ethernet"
	case ModeIP:
		return "ip"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// Message bodies. Offsets below are relative to the start of the 128-byte
// message; the body starts at 2, right after the 16-bit type (packed).

type helloMsg struct {
	Name            string
	MinVersion      uint16
	MaxVersion      uint16
	MaxRegion       uint16
	MaxM2SRing      uint16
	MaxS2MRing      uint16
	MaxLog2RingSize uint8
}

type initMsg struct {
	Version uint16
	ID      uint32
	Mode    Mode
	Secret  string
	Name    string
}

type addRegionMsg struct {
	Index uint16
	Size  uint64
}

type addRingMsg struct {
	Flags          uint16
	Index          uint16
	Region         uint16
	Offset         uint32
	Log2RingSize   uint8
	PrivateHdrSize uint16
}

type connectMsg struct{ Name string }
type connectedMsg struct{ Name string }

type disconnectMsg struct {
	Code   uint32
	Reason string
}

type ackMsg struct{}

var le = binary.LittleEndian

// putString writes s NUL-padded into dst, truncating so a NUL always remains
// (peers use strlcpy and expect a terminator).
func putString(dst []byte, s string) {
	n := copy(dst[:len(dst)-1], s)
	clear(dst[n:])
}

func getString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// encodeMsg serialises one control message into its 128-byte wire form.
func encodeMsg(m any) [msgSize]byte {
	var b [msgSize]byte
	p := b[2:]
	var t msgType
	switch m := m.(type) {
	case ackMsg:
		t = msgAck
	case helloMsg:
		t = msgHello
		putString(p[0:32], m.Name)
		le.PutUint16(p[32:], m.MinVersion)
		le.PutUint16(p[34:], m.MaxVersion)
		le.PutUint16(p[36:], m.MaxRegion)
		le.PutUint16(p[38:], m.MaxM2SRing)
		le.PutUint16(p[40:], m.MaxS2MRing)
		p[42] = m.MaxLog2RingSize
	case initMsg:
		t = msgInit
		le.PutUint16(p[0:], m.Version)
		le.PutUint32(p[2:], m.ID)
		p[6] = uint8(m.Mode)
		putString(p[7:7+secretSize], m.Secret)
		putString(p[31:31+nameSize], m.Name)
	case addRegionMsg:
		t = msgAddRegion
		le.PutUint16(p[0:], m.Index)
		le.PutUint64(p[2:], m.Size)
	case addRingMsg:
		t = msgAddRing
		le.PutUint16(p[0:], m.Flags)
		le.PutUint16(p[2:], m.Index)
		le.PutUint16(p[4:], m.Region)
		le.PutUint32(p[6:], m.Offset)
		p[10] = m.Log2RingSize
		le.PutUint16(p[11:], m.PrivateHdrSize)
	case connectMsg:
		t = msgConnect
		putString(p[0:nameSize], m.Name)
	case connectedMsg:
		t = msgConnected
		putString(p[0:nameSize], m.Name)
	case disconnectMsg:
		t = msgDisconnect
		le.PutUint32(p[0:], m.Code)
		putString(p[4:4+reasonSize], m.Reason)
	default:
		panic(fmt.Sprintf("memif: encodeMsg: unsupported type %T", m))
	}
	le.PutUint16(b[0:], uint16(t))
	return b
}

// decodeMsg parses one control message received from a peer. It never trusts
// the input: wrong sizes and unknown types are errors, not panics.
func decodeMsg(b []byte) (any, error) {
	if len(b) != msgSize {
		return nil, fmt.Errorf("memif: control message is %d bytes, want %d", len(b), msgSize)
	}
	t := msgType(le.Uint16(b))
	p := b[2:]
	switch t {
	case msgAck:
		return ackMsg{}, nil
	case msgHello:
		return helloMsg{
			Name:            getString(p[0:32]),
			MinVersion:      le.Uint16(p[32:]),
			MaxVersion:      le.Uint16(p[34:]),
			MaxRegion:       le.Uint16(p[36:]),
			MaxM2SRing:      le.Uint16(p[38:]),
			MaxS2MRing:      le.Uint16(p[40:]),
			MaxLog2RingSize: p[42],
		}, nil
	case msgInit:
		return initMsg{
			Version: le.Uint16(p[0:]),
			ID:      le.Uint32(p[2:]),
			Mode:    Mode(p[6]),
			Secret:  getString(p[7 : 7+secretSize]),
			Name:    getString(p[31 : 31+nameSize]),
		}, nil
	case msgAddRegion:
		return addRegionMsg{Index: le.Uint16(p[0:]), Size: le.Uint64(p[2:])}, nil
	case msgAddRing:
		return addRingMsg{
			Flags:          le.Uint16(p[0:]),
			Index:          le.Uint16(p[2:]),
			Region:         le.Uint16(p[4:]),
			Offset:         le.Uint32(p[6:]),
			Log2RingSize:   p[10],
			PrivateHdrSize: le.Uint16(p[11:]),
		}, nil
	case msgConnect:
		return connectMsg{Name: getString(p[0:nameSize])}, nil
	case msgConnected:
		return connectedMsg{Name: getString(p[0:nameSize])}, nil
	case msgDisconnect:
		return disconnectMsg{Code: le.Uint32(p[0:]), Reason: getString(p[4 : 4+reasonSize])}, nil
	}
	return nil, fmt.Errorf("memif: unknown control message type %v", t)
}
