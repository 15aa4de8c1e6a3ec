package memif

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// pair starts a server and a connected client on a socket in t.TempDir().
func pair(t testing.TB, srvCfg, cliCfg Config) (srv, cli *Interface) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "memif.sock")
	srvCfg.SocketPath, cliCfg.SocketPath = sock, sock
	srv, err := Listen(srvCfg)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	ctx := testCtx(t)
	cli, err = Dial(ctx, cliCfg)
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close() })
	require.NoError(t, srv.WaitUp(ctx))
	return srv, cli
}

// makePacket builds a frame of size bytes whose content encodes seq.
func makePacket(seq, size int) []byte {
	p := make([]byte, size)
	for i := range p {
		p[i] = byte(seq + i)
	}
	if size >= 8 {
		binary.BigEndian.PutUint64(p, uint64(seq))
	}
	return p
}

// transfer sends count packets from tx to rx, interleaving bursts in one
// goroutine, and checks each arrives intact and in order.
func transfer(t *testing.T, tx *TxQueue, rx *RxQueue, count int, size func(i int) int) {
	t.Helper()
	pkts := make([][]byte, count)
	for i := range pkts {
		pkts[i] = makePacket(i, size(i))
	}
	rxBufs := make([][]byte, 32)
	for i := range rxBufs {
		rxBufs[i] = make([]byte, 16384)
	}
	sent, got := 0, 0
	for iter := 0; got < count; iter++ {
		require.Less(t, iter, 1_000_000, "transfer made no progress: sent %d got %d", sent, got)
		if sent < count {
			n, err := tx.TxBurst(pkts[sent:min(count, sent+32)])
			require.NoError(t, err)
			sent += n
		}
		bufs := rxBufs[:]
		for i := range bufs {
			bufs[i] = bufs[i][:cap(bufs[i])]
		}
		n, err := rx.RxBurst(bufs)
		require.NoError(t, err)
		for _, b := range bufs[:n] {
			require.Equal(t, pkts[got], b, "packet %d", got)
			got++
		}
		if n == 0 {
			runtime.Gosched()
		}
	}
	assert.Equal(t, count, sent)
}

func TestExchange(t *testing.T) {
	tests := []struct {
		name    string
		qp      int
		log2    uint8
		bufSize uint32
		size    func(i int) int
	}{
		{"1qp/ring256/64B", 1, 8, 2048, func(int) int { return 64 }},
		{"4qp/ring1024/mixed", 4, 10, 2048, func(i int) int { return 60 + i%1455 }},
		{"1qp/ring4096", 1, 12, 2048, func(i int) int { return 64 + i%100 }},
		{"4qp/ring8192", 4, 13, 2048, func(int) int { return 128 }},
		// 2^14 descriptors x 2048 B = 32 MiB per ring: far beyond 64 KiB offsets.
		{"2qp/ring16384", 2, 14, 2048, func(i int) int { return 64 + i%1400 }},
		{"chained/buf128", 2, 9, 128, func(i int) int { return 60 + i%1500 }},
		{"jumbo/buf9216", 1, 8, 9216, func(i int) int { return 9000 }},
		{"buf64/tiny", 1, 6, 64, func(i int) int { return 1 + i%300 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := pair(t,
				Config{ID: 7, NumQueuePairs: tc.qp, Name: "srv"},
				Config{ID: 7, NumQueuePairs: tc.qp, Log2RingSize: tc.log2, BufferSize: tc.bufSize, Name: "cli"})
			require.Equal(t, tc.qp, cli.NumQueuePairs())
			require.Equal(t, tc.qp, srv.NumQueuePairs())
			assert.Equal(t, "srv", cli.PeerName())
			assert.Equal(t, "cli", srv.PeerName())
			count := 3 << tc.log2 // wrap every ring several times
			for q := 0; q < tc.qp; q++ {
				stx, srx := queues2(t, cli, q)
				ptx, prx := queues2(t, srv, q)
				t.Run(fmt.Sprintf("q%d/client-to-server", q), func(t *testing.T) { transfer(t, stx, prx, count, tc.size) })
				t.Run(fmt.Sprintf("q%d/server-to-client", q), func(t *testing.T) { transfer(t, ptx, srx, count, tc.size) })
			}
		})
	}
}

func queues2(t testing.TB, ifc *Interface, i int) (*TxQueue, *RxQueue) {
	t.Helper()
	tx, err := ifc.TxQueue(i)
	require.NoError(t, err)
	rx, err := ifc.RxQueue(i)
	require.NoError(t, err)
	return tx, rx
}

func TestRingFullAndShortBuffer(t *testing.T) {
	srv, cli := pair(t, Config{ID: 1}, Config{ID: 1, Log2RingSize: 4})
	for _, dir := range []struct {
		name string
		from *Interface
		to   *Interface
	}{{"client-to-server", cli, srv}, {"server-to-client", srv, cli}} {
		t.Run(dir.name, func(t *testing.T) {
			tx, _ := queues2(t, dir.from, 0)
			_, rx := queues2(t, dir.to, 0)
			p := makePacket(1, 100)
			sent := 0
			for ; sent < 100; sent++ {
				if err := tx.WritePacket(p); err != nil {
					require.ErrorIs(t, err, ErrRingFull)
					break
				}
			}
			require.Equal(t, 16, sent, "ring of 16 descriptors")
			_, err := rx.ReadPacket(make([]byte, 10))
			require.ErrorIs(t, err, ErrShortBuffer)
			buf := make([]byte, 2048)
			for i := 0; i < sent; i++ {
				n, err := rx.ReadPacket(buf)
				require.NoError(t, err)
				require.Equal(t, p, buf[:n])
			}
			_, err = rx.ReadPacket(buf)
			require.ErrorIs(t, err, ErrEmpty)
			require.NoError(t, tx.WritePacket(p), "ring has room again")
			_, err = rx.ReadPacket(buf)
			require.NoError(t, err)
		})
	}
	tx, _ := queues2(t, cli, 0)
	_, err := tx.TxBurst([][]byte{make([]byte, 17*2048)})
	require.ErrorIs(t, err, ErrPacketTooLarge)
}

func TestHandshakeRejected(t *testing.T) {
	tests := []struct {
		name   string
		srv    Config
		cli    Config
		reason string
	}{
		{"secret mismatch", Config{ID: 1, Secret: "s3cret"}, Config{ID: 1, Secret: "wrong"}, "Incorrect secret"},
		{"missing secret", Config{ID: 1, Secret: "s3cret"}, Config{ID: 1}, "Incorrect secret"},
		{"unknown id", Config{ID: 1}, Config{ID: 2}, "ID mismatch"},
		{"mode mismatch", Config{ID: 1, Mode: ModeIP}, Config{ID: 1}, "Mode mismatch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "m.sock")
			tc.srv.SocketPath, tc.cli.SocketPath = sock, sock
			srv, err := Listen(tc.srv)
			require.NoError(t, err)
			defer srv.Close()
			_, err = Dial(testCtx(t), tc.cli)
			require.Error(t, err)
			var pe *PeerError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tc.reason, pe.Reason)
			assert.False(t, srv.Up())
		})
	}
}

func TestSecretMatch(t *testing.T) {
	_, cli := pair(t, Config{ID: 3, Secret: "s3cret"}, Config{ID: 3, Secret: "s3cret"})
	assert.True(t, cli.Up())
}

func TestClientAdaptsToServerLimits(t *testing.T) {
	// The server allows 2 queue pairs and rings of 2^9; the client asks for more.
	srv, cli := pair(t, Config{ID: 1, NumQueuePairs: 2, Log2RingSize: 9}, Config{ID: 1, NumQueuePairs: 4, Log2RingSize: 12})
	assert.Equal(t, 2, cli.NumQueuePairs())
	assert.Equal(t, 2, srv.NumQueuePairs())
	tx, _ := queues2(t, cli, 1)
	_, rx := queues2(t, srv, 1)
	transfer(t, tx, rx, 2000, func(int) int { return 64 })
}

func TestDisconnectReconnect(t *testing.T) {
	srv, cli := pair(t, Config{ID: 9}, Config{ID: 9, Log2RingSize: 6})
	ctx := testCtx(t)
	for round := 0; round < 3; round++ {
		tx, _ := queues2(t, cli, 0)
		_, rx := queues2(t, srv, 0)
		transfer(t, tx, rx, 300, func(int) int { return 64 })

		if round%2 == 0 {
			cli.Disconnect() // client side goes away
			var pe *PeerError
			require.ErrorAs(t, srv.WaitDown(ctx), &pe)
		} else {
			srv.Disconnect() // server kicks the client
			var pe *PeerError
			require.ErrorAs(t, cli.WaitDown(ctx), &pe)
			require.NoError(t, srv.WaitDown(ctx))
		}
		require.False(t, cli.Up())
		// Old queue handles fail cleanly instead of touching unmapped memory.
		require.ErrorIs(t, tx.WritePacket([]byte("x")), ErrDisconnected)
		_, err := rx.ReadPacket(make([]byte, 64))
		require.ErrorIs(t, err, ErrDisconnected)
		_, err = cli.TxQueue(0)
		require.ErrorIs(t, err, ErrNotConnected)

		require.NoError(t, cli.Connect(ctx))
		require.NoError(t, srv.WaitUp(ctx))
		require.ErrorIs(t, cli.Connect(ctx), ErrConnected)
	}
}

func TestServerCloseDisconnectsClient(t *testing.T) {
	srv, cli := pair(t, Config{ID: 1}, Config{ID: 1})
	require.NoError(t, srv.Close())
	require.Error(t, cli.WaitDown(testCtx(t)))
	assert.False(t, cli.Up())
	_, err := os.Stat(srv.Config().SocketPath)
	assert.ErrorIs(t, err, os.ErrNotExist, "server removes its socket file")
}

func TestWait(t *testing.T) {
	srv, cli := pair(t, Config{ID: 1}, Config{ID: 1})
	for _, dir := range []struct {
		name     string
		from, to *Interface
	}{{"client-to-server", cli, srv}, {"server-to-client", srv, cli}} {
		t.Run(dir.name, func(t *testing.T) {
			tx, _ := queues2(t, dir.from, 0)
			_, rx := queues2(t, dir.to, 0)
			ctx := testCtx(t)
			done := make(chan error, 1)
			go func() { done <- rx.Wait(ctx) }()
			require.NoError(t, tx.WritePacket(makePacket(5, 64)))
			require.NoError(t, <-done)
			buf := make([]byte, 2048)
			n, err := rx.ReadPacket(buf)
			require.NoError(t, err)
			require.Equal(t, makePacket(5, 64), buf[:n])

			cctx, cancel := context.WithCancel(ctx)
			cancel()
			require.ErrorIs(t, rx.Wait(cctx), context.Canceled)
		})
	}
	_, rx := queues2(t, cli, 0)
	done := make(chan error, 1)
	go func() { done <- rx.Wait(context.Background()) }()
	cli.Close()
	require.ErrorIs(t, <-done, ErrDisconnected)
}

func openFds(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

func TestCloseReleasesEverything(t *testing.T) {
	before := openFds(t)
	sock := filepath.Join(t.TempDir(), "m.sock")
	srv, err := Listen(Config{SocketPath: sock, ID: 1, NumQueuePairs: 4})
	require.NoError(t, err)
	cli, err := Dial(testCtx(t), Config{SocketPath: sock, ID: 1, NumQueuePairs: 4})
	require.NoError(t, err)
	require.NoError(t, srv.WaitUp(testCtx(t)))
	assert.Greater(t, openFds(t), before)
	require.NoError(t, cli.Close())
	require.NoError(t, srv.Close())
	require.NoError(t, cli.Close(), "Close is idempotent")
	_, err = os.Stat(sock)
	require.ErrorIs(t, err, os.ErrNotExist)
	goleak.VerifyNone(t)
	require.Equal(t, before, openFds(t), "all fds released")
	_, err = cli.TxQueue(0)
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, cli.Connect(testCtx(t)), ErrClosed)
}

func TestMultipleInterfacesOneSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "m.sock")
	s, err := NewServer(sock)
	require.NoError(t, err)
	defer s.Close()
	a, err := s.Add(Config{ID: 1})
	require.NoError(t, err)
	b, err := s.Add(Config{ID: 2})
	require.NoError(t, err)
	_, err = s.Add(Config{ID: 2})
	require.Error(t, err)
	ctx := testCtx(t)
	ca, err := Dial(ctx, Config{SocketPath: sock, ID: 1})
	require.NoError(t, err)
	defer ca.Close()
	cb, err := Dial(ctx, Config{SocketPath: sock, ID: 2})
	require.NoError(t, err)
	defer cb.Close()
	require.NoError(t, a.WaitUp(ctx))
	require.NoError(t, b.WaitUp(ctx))
	_, err = Dial(ctx, Config{SocketPath: sock, ID: 2})
	var pe *PeerError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "Already connected", pe.Reason)
	tx, _ := queues2(t, cb, 0)
	_, rx := queues2(t, b, 0)
	transfer(t, tx, rx, 100, func(int) int { return 64 })
}

func TestStaleSocketReplaced(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "m.sock")
	s1, err := NewServer(sock)
	require.NoError(t, err)
	_, err = NewServer(sock)
	require.ErrorContains(t, err, "in use")
	s1.ln.SetUnlinkOnClose(false) // simulate a crashed server leaving its file
	require.NoError(t, s1.Close())
	s2, err := NewServer(sock)
	require.NoError(t, err)
	require.NoError(t, s2.Close())
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no socket", Config{}, "SocketPath is empty"},
		{"long secret", Config{SocketPath: "/x", Secret: "012345678901234567890123"}, "Secret"},
		{"long name", Config{SocketPath: "/x", Name: "0123456789012345678901234567890123"}, "Name"},
		{"ring too big", Config{SocketPath: "/x", Log2RingSize: 15}, "Log2RingSize"},
		{"queues", Config{SocketPath: "/x", NumQueuePairs: 1000}, "NumQueuePairs"},
		{"buffer", Config{SocketPath: "/x", BufferSize: 10}, "BufferSize"},
		{"mode", Config{SocketPath: "/x", Mode: 7}, "Mode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := planLayout(256, 256, 14, 65536)
	require.ErrorContains(t, err, "4 GiB")
}

// TestLayoutDisjoint guards against the gomemif v0.1.0 bug: 16-bit offsets and
// buffers indexed qid*size+j so that rx and tx rings shared buffers.
func TestLayoutDisjoint(t *testing.T) {
	l, err := planLayout(4, 4, 14, 2048)
	require.NoError(t, err)
	type span struct{ start, end uint64 }
	var spans []span
	for k := 0; k < 8; k++ {
		assert.Less(t, l.ringOffset(k)+ringBytes(14), l.bufStart+1)
		spans = append(spans, span{l.bufBase(k), l.bufBase(k) + (1<<14)*2048})
	}
	for i := range spans {
		require.LessOrEqual(t, spans[i].end, l.size)
		for j := i + 1; j < len(spans); j++ {
			require.LessOrEqual(t, spans[i].end, spans[j].start, "ring %d and %d buffers overlap", i, j)
		}
	}
	require.Greater(t, l.size, uint64(1<<16))
}

func TestDecodeRoundTrip(t *testing.T) {
	msgs := []any{
		ackMsg{},
		helloMsg{Name: "vpp", MinVersion: version, MaxVersion: version, MaxRegion: 255, MaxM2SRing: 3, MaxS2MRing: 5, MaxLog2RingSize: 14},
		initMsg{Version: version, ID: 0xdeadbeef, Mode: ModeIP, Secret: "secret", Name: "client"},
		addRegionMsg{Index: 2, Size: 1 << 40},
		addRingMsg{Flags: addRingFlagS2M, Index: 3, Region: 1, Offset: 0xfffff000, Log2RingSize: 14, PrivateHdrSize: 7},
		connectMsg{Name: "a"},
		connectedMsg{Name: "b"},
		disconnectMsg{Code: 5, Reason: "bye"},
	}
	for _, m := range msgs {
		t.Run(fmt.Sprintf("%T", m), func(t *testing.T) {
			b := encodeMsg(m)
			got, err := decodeMsg(b[:])
			require.NoError(t, err)
			require.Equal(t, m, got)
		})
	}
	// Field offsets checked against the C layout (packed, type is 16 bits).
	b := encodeMsg(initMsg{Version: 0x0200, ID: 0x01020304, Mode: 1, Secret: "S", Name: "N"})
	assert.Equal(t, []byte{3, 0, 0x00, 0x02, 4, 3, 2, 1, 1, 'S'}, b[:10])
	assert.Equal(t, byte('N'), b[2+31])
	b = encodeMsg(addRingMsg{Flags: 1, Index: 2, Region: 3, Offset: 4, Log2RingSize: 5, PrivateHdrSize: 6})
	assert.Equal(t, []byte{5, 0, 1, 0, 2, 0, 3, 0, 4, 0, 0, 0, 5, 6, 0}, b[:15])

	_, err := decodeMsg(make([]byte, 127))
	require.Error(t, err)
	bad := make([]byte, 128)
	bad[0] = 99
	_, err = decodeMsg(bad)
	require.ErrorContains(t, err, "unknown")
}

func FuzzDecodeMsg(f *testing.F) {
	for _, m := range []any{
		ackMsg{}, helloMsg{Name: "x", MaxLog2RingSize: 14}, initMsg{Version: version, Secret: "s"},
		addRegionMsg{Size: 4096}, addRingMsg{Flags: 1}, connectMsg{Name: "c"}, disconnectMsg{Reason: "r"},
	} {
		b := encodeMsg(m)
		f.Add(b[:])
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMsg(b)
		if err != nil {
			return
		}
		// Encoding always NUL-terminates strings (C peers strlcpy them), so a
		// full-width name may lose its last byte once; after that the
		// message must survive encode/decode unchanged.
		enc := encodeMsg(m)
		m2, err := decodeMsg(enc[:])
		if err != nil {
			t.Fatalf("re-decode of %T failed: %v", m, err)
		}
		enc2 := encodeMsg(m2)
		m3, err := decodeMsg(enc2[:])
		if err != nil {
			t.Fatalf("second re-decode of %T failed: %v", m, err)
		}
		if fmt.Sprintf("%#v", m2) != fmt.Sprintf("%#v", m3) || enc != enc2 {
			t.Fatalf("encode/decode not stable: %#v -> %#v", m2, m3)
		}
	})
}

func TestWaitAny(t *testing.T) {
	srv, cli := pair(t, Config{ID: 1, NumQueuePairs: 3}, Config{ID: 1, NumQueuePairs: 3})
	rxs := make([]*RxQueue, 3)
	for i := range rxs {
		_, rxs[i] = queues2(t, cli, i)
	}
	for _, qid := range []int{2, 0, 1} {
		t.Run(fmt.Sprintf("queue %d", qid), func(t *testing.T) {
			tx, _ := queues2(t, srv, qid)
			done := make(chan error, 1)
			go func() { done <- WaitAny(testCtx(t), rxs...) }()
			require.NoError(t, tx.WritePacket(makePacket(qid, 64)))
			require.NoError(t, <-done)
			n, err := rxs[qid].ReadPacket(make([]byte, 2048))
			require.NoError(t, err)
			require.Equal(t, 64, n)
		})
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	cancel()
	require.ErrorIs(t, WaitAny(ctx, rxs...), context.Canceled)
	require.ErrorIs(t, WaitAny(ctx), context.Canceled)
}
