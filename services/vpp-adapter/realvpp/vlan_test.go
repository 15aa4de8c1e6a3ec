package realvpp_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/memif"
)

// etherType of the test frames: IEEE's "local experimental" type, so no
// VPP feature (ARP, IP, LLDP) takes them for itself.
const testEtherType = 0x88b5

var broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// goPort is a pure-Go memif client (libs/memif) on a socket the host VPP
// serves as memif master: it plays a pod, or an uplink.
type goPort struct {
	t   *testing.T
	mac net.HardwareAddr
	ifc *memif.Interface
	tx  *memif.TxQueue
	rx  *memif.RxQueue
}

func dialGoPort(t *testing.T, name, socket string, last byte) *goPort {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ifc, err := memif.Dial(c, memif.Config{SocketPath: socket, Name: name, Log2RingSize: 8})
	require.NoError(t, err, "%s: memif client on %s", name, socket)
	t.Cleanup(func() { _ = ifc.Close() })
	tx, err := ifc.TxQueue(0)
	require.NoError(t, err)
	rx, err := ifc.RxQueue(0)
	require.NoError(t, err)
	return &goPort{t: t, mac: net.HardwareAddr{0x02, 0, 0, 0, 0, last}, ifc: ifc, tx: tx, rx: rx}
}

// zeroPrefix starts every payload. VPP 25.10's post-rewrite EFP check
// (l2-efp-filter) reads the two 16-bit words after an untagged frame's
// EtherType as VLAN ids and indexes 4096-entry tables with them unmasked
// (see the README's VLAN section): with zeros there, the test measures the
// VLAN semantics, not that out-of-bounds read.
const zeroPrefix = "\x00\x00\x00\x00\x00\x00"

// frame builds an Ethernet frame from src to dst, 802.1Q-tagged with vid
// unless vid is 0, carrying zeroPrefix and payload (padded to the 60-byte
// minimum).
func frame(dst, src net.HardwareAddr, vid uint16, payload string) []byte {
	b := append(append([]byte{}, dst...), src...)
	if vid != 0 {
		b = binary.BigEndian.AppendUint16(b, 0x8100)
		b = binary.BigEndian.AppendUint16(b, vid)
	}
	b = binary.BigEndian.AppendUint16(b, testEtherType)
	b = append(b, zeroPrefix+payload...)
	for len(b) < 60 {
		b = append(b, 0)
	}
	return b
}

// describeFrame is a frame in words, for assertions that print well.
func describeFrame(b []byte) string {
	if len(b) < 14 {
		return fmt.Sprintf("runt %x", b)
	}
	dst, src, rest := net.HardwareAddr(b[0:6]), net.HardwareAddr(b[6:12]), b[12:]
	tag := "untagged"
	if binary.BigEndian.Uint16(rest) == 0x8100 && len(rest) >= 4 {
		tag = fmt.Sprintf("vlan %d", binary.BigEndian.Uint16(rest[2:])&0x0fff)
		rest = rest[4:]
	}
	if len(rest) < 2 {
		return fmt.Sprintf("%s>%s %s truncated", src, dst, tag)
	}
	return fmt.Sprintf("%s>%s %s type %#04x %q", src, dst, tag, binary.BigEndian.Uint16(rest), bytes.Trim(rest[2:], "\x00"))
}

// tag inserts an 802.1Q tag with vid after the MACs, as VPP's push-1 does.
func tag(f []byte, vid uint16) []byte {
	out := append([]byte{}, f[:12]...)
	out = binary.BigEndian.AppendUint16(out, 0x8100)
	out = binary.BigEndian.AppendUint16(out, vid)
	return append(out, f[12:]...)
}

// untag removes the outer 802.1Q tag, as VPP's pop-1 does.
func untag(f []byte) []byte {
	return append(append([]byte{}, f[:12]...), f[16:]...)
}

func (p *goPort) send(f []byte) {
	p.t.Helper()
	require.NoError(p.t, p.tx.WritePacket(f))
}

// recvUntil reads frames until one equal to marker arrives and returns
// (described) the frames that came before it. VPP handles the frames of
// one input in order, so a marker sent after the frames under test bounds
// the wait without a sleep.
func (p *goPort) recvUntil(marker []byte) []string {
	p.t.Helper()
	// A bound, not a sleep: generous because VPP shares two cores with
	// everything else on the build machine.
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var before []string
	buf := make([]byte, 2048)
	for {
		n, err := p.rx.ReadPacket(buf)
		if errors.Is(err, memif.ErrEmpty) {
			require.NoError(p.t, p.rx.Wait(c), "waiting for %s; got before it: %q", describeFrame(marker), before)
			continue
		}
		require.NoError(p.t, err)
		if bytes.Equal(buf[:n], marker) {
			return before
		}
		before = append(before, describeFrame(buf[:n]))
	}
}

// TestVLANOnRealVPP proves bridge.vlan on the real VPP: a tagged port is an
// access port of its VLAN, like an OVS port with tag N. An untagged port
// of the same bridge domain is a trunk (here an "uplink").
func TestVLANOnRealVPP(t *testing.T) {
	vppEnv(t)
	s := startStack(t)
	c := ctx(t)
	const bd = 10
	trunkReq, a100Req, b100Req, c200Req := s.memifPod("trunk", bd), s.memifPod("vlan100a", bd),
		s.memifPod("vlan100b", bd), s.memifPod("vlan200", bd)
	a100Req.Interface.Bridge.VLAN, b100Req.Interface.Bridge.VLAN, c200Req.Interface.Bridge.VLAN = 100, 100, 200
	reqs := []*contracts.AttachRequest{trunkReq, a100Req, b100Req, c200Req}
	for _, r := range reqs {
		resp, err := s.Client.Attach(c, contracts.EngineVPP, r)
		require.NoError(t, err, "attach %s", r.Key)
		t.Logf("attached %s (vlan %d) as %s", r.Key.ContainerID, r.Interface.Bridge.VLAN, resp.Attachment.HostIfName)
	}
	bdOut := s.host.cli(fmt.Sprintf("show bridge-domain %d detail", bd))
	assert.Contains(t, bdOut, "push-1 dot1q 100")
	assert.Contains(t, bdOut, "push-1 dot1q 200")

	t.Cleanup(func() {
		if t.Failed() && s.host.Client != nil {
			for _, cmd := range []string{"show errors", "show interface", "show memif", fmt.Sprintf("show bridge-domain %d detail", bd)} {
				s.host.cli(cmd)
			}
		}
	})
	trunk := dialGoPort(t, "trunk", trunkReq.Interface.SocketPath, 0x01)
	a100 := dialGoPort(t, "vlan100a", a100Req.Interface.SocketPath, 0x0a)
	b100 := dialGoPort(t, "vlan100b", b100Req.Interface.SocketPath, 0x0b)
	c200 := dialGoPort(t, "vlan200", c200Req.Interface.SocketPath, 0x0c)
	s.host.cli("show memif")

	// Each step ends with a marker frame every receiver is allowed to get,
	// sent once the frames under test went through VPP: what a receiver
	// got before its marker is everything it got.
	const n = 5

	t.Run("a pod's untagged frames reach the trunk tagged 100 and the other vlan 100 pod untagged, never vlan 200", func(t *testing.T) {
		var sent, onTrunk []string
		for i := range n {
			f := frame(broadcast, a100.mac, 0, fmt.Sprintf("a100 broadcast %d", i))
			a100.send(f)
			sent = append(sent, describeFrame(f))
			onTrunk = append(onTrunk, describeFrame(tag(f, 100)))
		}
		marker := frame(broadcast, a100.mac, 0, "step 1 marker")
		a100.send(marker)
		assert.Equal(t, onTrunk, trunk.recvUntil(tag(marker, 100)), "the trunk gets exactly the pod's frames, tagged 100")
		assert.Equal(t, sent, b100.recvUntil(marker), "the other vlan 100 pod gets them untagged")
		marker200 := frame(broadcast, trunk.mac, 200, "step 1 marker")
		trunk.send(marker200)
		assert.Empty(t, c200.recvUntil(untag(marker200)), "vlan 200 gets none of vlan 100's broadcast")
	})

	t.Run("the trunk reaches a vlan by tagging: 100 to the vlan 100 pods, 200 to the vlan 200 pod, untagged and 300 to none", func(t *testing.T) {
		var want100, want200 []string
		for i := range n {
			for _, vid := range []uint16{100, 200, 0, 300} {
				f := frame(broadcast, trunk.mac, vid, fmt.Sprintf("trunk vid %d #%d", vid, i))
				trunk.send(f)
				switch vid {
				case 100:
					want100 = append(want100, describeFrame(untag(f)))
				case 200:
					want200 = append(want200, describeFrame(untag(f)))
				}
			}
		}
		m100, m200 := frame(broadcast, trunk.mac, 100, "step 2 marker"), frame(broadcast, trunk.mac, 200, "step 2 marker")
		trunk.send(m100)
		trunk.send(m200)
		assert.Equal(t, want100, a100.recvUntil(untag(m100)), "vlan 100 pod a: exactly the vlan 100 frames, tag popped")
		assert.Equal(t, want100, b100.recvUntil(untag(m100)), "vlan 100 pod b: the same")
		assert.Equal(t, want200, c200.recvUntil(untag(m200)), "vlan 200 pod: exactly the vlan 200 frames")
	})

	t.Run("unicast from vlan 100 to the vlan 200 pod's MAC is dropped, to the vlan 100 pod's delivered", func(t *testing.T) {
		// The bridge domain learns MACs from frames, per bridge domain, not
		// per VLAN: the EFP filter is what keeps the VLANs apart.
		hello200 := frame(broadcast, c200.mac, 0, "c200 hello")
		c200.send(hello200)
		assert.Empty(t, trunk.recvUntil(tag(hello200, 200)))
		hello100 := frame(broadcast, b100.mac, 0, "b100 hello")
		b100.send(hello100)
		assert.Empty(t, trunk.recvUntil(tag(hello100, 100)))
		assert.Empty(t, a100.recvUntil(hello100))
		s.host.cli(fmt.Sprintf("show l2fib bd_id %d", bd))

		var want []string
		for i := range n {
			a100.send(frame(c200.mac, a100.mac, 0, fmt.Sprintf("a100 to c200 #%d", i)))
			f := frame(b100.mac, a100.mac, 0, fmt.Sprintf("a100 to b100 #%d", i))
			a100.send(f)
			want = append(want, describeFrame(f))
		}
		marker := frame(b100.mac, a100.mac, 0, "step 3 marker")
		a100.send(marker)
		assert.Equal(t, want, b100.recvUntil(marker), "unicast within vlan 100 arrives, untagged")
		m200 := frame(broadcast, trunk.mac, 200, "step 3 marker")
		trunk.send(m200)
		assert.Empty(t, c200.recvUntil(untag(m200)), "no frame crosses from vlan 100 to the vlan 200 pod")
		errs := s.host.cli("show errors")
		assert.Contains(t, errs, "L2 EFP filter pre-rewrite drops", "VPP counted what its EFP filter dropped")
		assert.NotContains(t, errs, "post-rewrite drops", "no frame fell to the post-rewrite check (see zeroPrefix)")
	})

	t.Run("a pod's own 802.1Q frame stays in VLAN 100: QinQ on the trunk, its own tag for the other vlan 100 pod", func(t *testing.T) {
		// OVS drops a tagged frame arriving on an access port; VPP's push-1
		// tunnels it (see the README). It still never leaves VLAN 100.
		f := frame(broadcast, a100.mac, 7, "a100 tagged 7")
		a100.send(f)
		marker := frame(broadcast, a100.mac, 0, "step 4 marker")
		a100.send(marker)
		assert.Equal(t, []string{describeFrame(tag(f, 100))}, trunk.recvUntil(tag(marker, 100)), "outer 100, inner 7")
		assert.Equal(t, []string{describeFrame(f)}, b100.recvUntil(marker), "the pod's own tag, unchanged")
		m200 := frame(broadcast, trunk.mac, 200, "step 4 marker")
		trunk.send(m200)
		assert.Empty(t, c200.recvUntil(untag(m200)))
	})

	t.Run("check reads the rewrite back; after a restart of VPP the replay restores it", func(t *testing.T) {
		for _, r := range reqs {
			_, err := s.Client.Check(c, contracts.EngineVPP, &contracts.CheckRequest{Key: r.Key, Network: r.Network, Interface: r.Interface})
			require.NoError(t, err, "check %s", r.Key)
		}
		s.host.kill9()
		s.host.start()
		ev := s.WaitFor(t, contracts.EventReconciled)
		assert.Contains(t, ev.Message, "recreated 4")
		for _, r := range reqs {
			_, err := s.Client.Check(c, contracts.EngineVPP, &contracts.CheckRequest{Key: r.Key, Network: r.Network, Interface: r.Interface})
			require.NoError(t, err, "check %s after the replay", r.Key)
		}
		assert.Contains(t, s.host.cli(fmt.Sprintf("show bridge-domain %d detail", bd)), "push-1 dot1q 100")
	})

	for _, r := range reqs {
		_, err := s.Client.Detach(c, contracts.EngineVPP, &contracts.DetachRequest{Key: r.Key})
		require.NoError(t, err)
	}
	ifs, sockets, bds := ownedState(t, s.host)
	assert.Empty(t, ifs)
	assert.Empty(t, sockets)
	assert.Empty(t, bds)
}
