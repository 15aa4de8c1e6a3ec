package probe

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pipePort is one end of an in-memory Ethernet cable.
type pipePort struct {
	in, out chan []byte
	drop    func([]byte) bool // frames the cable loses, when set

	mu      sync.Mutex
	written [][]byte
}

var _ Port = (*pipePort)(nil)

// pipe returns two ports wired back to back.
func pipe() (*pipePort, *pipePort) {
	a, b := make(chan []byte, 64), make(chan []byte, 64)
	return &pipePort{in: a, out: b}, &pipePort{in: b, out: a}
}

func (p *pipePort) ReadFrame(ctx context.Context, buf []byte) (int, error) {
	select {
	case f := <-p.in:
		return copy(buf, f), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (p *pipePort) WriteFrame(b []byte) error {
	f := append([]byte(nil), b...)
	p.mu.Lock()
	p.written = append(p.written, f)
	p.mu.Unlock()
	if p.drop != nil && p.drop(f) {
		return nil
	}
	select {
	case p.out <- f:
		return nil
	default:
		return errors.New("pipe full")
	}
}

func mac(last byte) net.HardwareAddr { return net.HardwareAddr{0x02, 0, 0, 0, 0, last} }

// start runs an endpoint until the test ends.
func start(t *testing.T, port Port, cfg Config) *Endpoint {
	t.Helper()
	e, err := New(port, cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return e
}

func opts(count int) PingOptions {
	return PingOptions{Count: count, Interval: time.Millisecond, Timeout: 2 * time.Second, Size: 56}
}

func TestTwoEndpointsPingEachOther(t *testing.T) {
	pa, pb := pipe()
	a := start(t, pa, Config{MAC: mac(1), Addr: netip.MustParsePrefix("10.1.1.1/24")})
	b := start(t, pb, Config{MAC: mac(2), Addr: netip.MustParsePrefix("10.1.1.2/24")})
	ctx := context.Background()

	var replies []Reply
	s, err := a.Ping(ctx, netip.MustParseAddr("10.1.1.2"), opts(3), func(r Reply) { replies = append(replies, r) })
	require.NoError(t, err)
	assert.Equal(t, 3, s.Transmitted)
	assert.Equal(t, 3, s.Received)
	assert.Zero(t, s.LossPercent)
	require.Len(t, replies, 3)
	for i, r := range replies {
		assert.Equal(t, i+1, r.Seq)
		assert.Equal(t, "10.1.1.2", r.From.String())
		assert.Equal(t, 64, r.Bytes)
		assert.Equal(t, uint8(64), r.TTL)
		assert.Positive(t, r.RTT)
	}
	assert.LessOrEqual(t, s.Min, s.Avg)
	assert.LessOrEqual(t, s.Avg, s.Max)
	assert.Equal(t, Stats{ARPAnswered: 1, EchoAnswered: 3}, b.Stats())

	// b learned a's MAC from its ARP request, so it pings back without asking.
	s, err = b.Ping(ctx, netip.MustParseAddr("10.1.1.1"), opts(2), nil)
	require.NoError(t, err)
	assert.Equal(t, 2, s.Received)
	assert.Equal(t, Stats{ARPAnswered: 0, EchoAnswered: 2}, a.Stats())
}

func TestPingViaGatewayAndFailures(t *testing.T) {
	pa, pb := pipe()
	a := start(t, pa, Config{MAC: mac(1), Addr: netip.MustParsePrefix("10.1.1.1/24"), Gateway: netip.MustParseAddr("10.1.1.254")})
	// the "router" answers ARP for the gateway and echo for a remote address
	// on the same MAC: enough to check a's next-hop choice.
	start(t, pb, Config{MAC: mac(9), Addr: netip.MustParsePrefix("10.1.1.254/24")})

	t.Run("outside the subnet goes to the gateway's MAC", func(t *testing.T) {
		_, err := a.Ping(context.Background(), netip.MustParseAddr("192.0.2.7"), PingOptions{Count: 1, Timeout: 50 * time.Millisecond}, nil)
		assert.ErrorIs(t, err, ErrNoReplies, "the router is no 192.0.2.7")
		pa.mu.Lock()
		last := pa.written[len(pa.written)-1]
		pa.mu.Unlock()
		f, ok := parseFrame(last)
		require.True(t, ok)
		assert.Equal(t, mac(9), f.Dst)
		assert.Equal(t, "192.0.2.7", f.Echo.Dst.String())
	})
	t.Run("no route without gateway", func(t *testing.T) {
		pc, _ := pipe()
		c := start(t, pc, Config{MAC: mac(3), Addr: netip.MustParsePrefix("10.1.1.3/24")})
		_, err := c.Ping(context.Background(), netip.MustParseAddr("192.0.2.7"), opts(1), nil)
		assert.ErrorIs(t, err, ErrNoRoute)
	})
	t.Run("no ARP reply", func(t *testing.T) {
		_, err := a.Ping(context.Background(), netip.MustParseAddr("10.1.1.77"), PingOptions{Count: 1, Timeout: 30 * time.Millisecond}, nil)
		assert.ErrorContains(t, err, "no ARP reply from 10.1.1.77")
	})
	t.Run("bad options", func(t *testing.T) {
		_, err := a.Ping(context.Background(), netip.MustParseAddr("10.1.1.254"), PingOptions{Count: 0, Timeout: time.Second}, nil)
		assert.ErrorContains(t, err, "want count >= 1")
	})
}

func TestPingCountsLoss(t *testing.T) {
	pa, pb := pipe()
	n := 0
	pb.drop = func(f []byte) bool { // b's port loses every other echo reply
		if fr, ok := parseFrame(f); ok && fr.Echo != nil {
			n++
			return n%2 == 0
		}
		return false
	}
	a := start(t, pa, Config{MAC: mac(1), Addr: netip.MustParsePrefix("10.1.1.1/24")})
	start(t, pb, Config{MAC: mac(2), Addr: netip.MustParsePrefix("10.1.1.2/24")})
	o := opts(4)
	o.Timeout = 100 * time.Millisecond
	s, err := a.Ping(context.Background(), netip.MustParseAddr("10.1.1.2"), o, nil)
	require.NoError(t, err)
	assert.Equal(t, 4, s.Transmitted)
	assert.Equal(t, 2, s.Received)
	assert.Equal(t, 50.0, s.LossPercent)
}

func TestResponderIgnoresOthers(t *testing.T) {
	pa, pb := pipe()
	start(t, pa, Config{MAC: mac(1), Addr: netip.MustParsePrefix("10.1.1.1/24")})
	me, other := netip.MustParseAddr("10.1.1.2"), netip.MustParseAddr("10.1.1.1")
	frames := map[string][]byte{
		"ARP for another IP":  arpFrame(arpPacket{Op: arpRequest, SenderMAC: mac(2), SenderIP: me, TargetIP: netip.MustParseAddr("10.1.1.9")}),
		"echo to another MAC": echoFrame(mac(7), mac(2), echo{Type: icmpEchoRequest, Src: me, Dst: other}),
		"echo to another IP":  echoFrame(mac(1), mac(2), echo{Type: icmpEchoRequest, Src: me, Dst: netip.MustParseAddr("10.1.1.9")}),
		"runt":                {1, 2, 3},
	}
	for name, f := range frames {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, pb.WriteFrame(f))
		})
	}
	// a valid request last: its reply is the only frame a sends.
	require.NoError(t, pb.WriteFrame(echoFrame(mac(1), mac(2), echo{Type: icmpEchoRequest, ID: 5, Seq: 6, Src: me, Dst: other, Payload: []byte("hi")})))
	buf := make([]byte, maxFrame)
	n, err := pb.ReadFrame(context.Background(), buf)
	require.NoError(t, err)
	f, ok := parseFrame(buf[:n])
	require.True(t, ok)
	require.NotNil(t, f.Echo)
	assert.Equal(t, []any{uint8(icmpEchoReply), uint16(5), uint16(6), "hi", mac(2)}, []any{f.Echo.Type, f.Echo.ID, f.Echo.Seq, string(f.Echo.Payload), f.Dst})
}

func TestPacketRoundTrip(t *testing.T) {
	a := arpPacket{Op: arpReply, SenderMAC: mac(1), SenderIP: netip.MustParseAddr("10.0.0.1"), TargetMAC: mac(2), TargetIP: netip.MustParseAddr("10.0.0.2")}
	f, ok := parseFrame(arpFrame(a))
	require.True(t, ok)
	assert.Equal(t, a, *f.ARP)

	e := echo{Type: icmpEchoRequest, ID: 1, Seq: 2, Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), TTL: 64, Payload: []byte{1, 2, 3}}
	b := echoFrame(mac(2), mac(1), e)
	f, ok = parseFrame(b)
	require.True(t, ok)
	assert.Equal(t, e, *f.Echo)

	b[len(b)-1] ^= 0xff
	_, ok = parseFrame(b)
	assert.False(t, ok, "a bad ICMP checksum is dropped")
}

func FuzzParseFrame(f *testing.F) {
	f.Add(arpFrame(arpPacket{Op: arpRequest, SenderMAC: mac(1), SenderIP: netip.MustParseAddr("10.0.0.1"), TargetIP: netip.MustParseAddr("10.0.0.2")}))
	f.Add(echoFrame(mac(2), mac(1), echo{Type: icmpEchoRequest, Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), Payload: []byte("x")}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, ok := parseFrame(b)
		if ok && fr.Echo != nil {
			// what parses re-encodes to a frame that parses the same way
			again, ok := parseFrame(echoFrame(fr.Dst, fr.Src, *fr.Echo))
			if !ok || again.Echo.Seq != fr.Echo.Seq || string(again.Echo.Payload) != string(fr.Echo.Payload) {
				t.Fatalf("echo did not round-trip: %+v", fr.Echo)
			}
		}
	})
}
