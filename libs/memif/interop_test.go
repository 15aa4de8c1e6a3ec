package memif

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"usrsp.dev/libs/testkit"
)

// Interop tests against DPDK's net_memif driver in dpdk-testpmd. They run in
// plain `go test` when dpdk-testpmd is installed and we are root, and skip
// otherwise. testpmd runs without hugepages and forwards in macswap mode, so
// every frame we send must come back with source and destination swapped.

type testpmd struct {
	cmd    *exec.Cmd
	out    *testkit.Buffer
	prefix string
	exited chan struct{}
}

func requireTestpmd(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("dpdk-testpmd")
	if err != nil {
		t.Skip("dpdk-testpmd not on PATH: apt-get install dpdk dpdk-dev librte-net-memif23 to run DPDK interop tests")
	}
	if os.Geteuid() != 0 {
		t.Skip("DPDK interop tests need root (dpdk-testpmd EAL)")
	}
	return path
}

func startTestpmd(t testing.TB, ctx context.Context, bin, vdev, fwd string, queues int, extra ...string) *testpmd {
	t.Helper()
	prefix := fmt.Sprintf("memif-go-%d-%s", os.Getpid(), strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()))
	args := []string{
		"-l", "0-1", "--no-pci", "--no-telemetry", "--no-huge", "-m", "256",
		"--file-prefix=" + prefix, "--vdev=" + vdev,
		"--", "--forward-mode=" + fwd, "--port-topology=loop", "--total-num-mbufs=16384",
		fmt.Sprintf("--rxq=%d", queues), fmt.Sprintf("--txq=%d", queues),
	}
	args = append(args, extra...)
	p := &testpmd{out: &testkit.Buffer{}, prefix: prefix, exited: make(chan struct{})}
	// Line-buffered stdout lets us see "Press enter to exit", i.e. forwarding has started.
	if sb, err := exec.LookPath("stdbuf"); err == nil {
		args = append([]string{"-oL", "-eL", bin}, args...)
		bin = sb
	}
	p.cmd = exec.CommandContext(ctx, bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	// testpmd exits when stdin reaches EOF ("Press enter to exit"), so give it
	// a pipe we keep open; SIGINT makes it print final statistics and exit.
	stdin, err := p.cmd.StdinPipe()
	require.NoError(t, err)
	p.cmd.Cancel = func() error { return p.cmd.Process.Kill() }
	p.cmd.WaitDelay = 5 * time.Second
	require.NoError(t, p.cmd.Start())
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		// SIGINT first so a failing test still gets testpmd's statistics.
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		stdin.Close()
		_ = os.RemoveAll(filepath.Join("/var/run/dpdk", prefix))
		if t.Failed() {
			t.Logf("testpmd output:\n%s", p.out.String())
		}
	})
	return p
}

// testpmdServer starts testpmd as the memif server (id 0) of a new socket
// in fwd mode and connects a Go client with cfg to it once it forwards.
func testpmdServer(t testing.TB, ctx context.Context, bin, fwd string, queues int, cfg Config, extra ...string) (*testpmd, *Interface) {
	t.Helper()
	cfg.SocketPath, cfg.ID = filepath.Join(t.TempDir(), "memif.sock"), 0
	p := startTestpmd(t, ctx, bin, fmt.Sprintf("net_memif0,role=server,id=0,socket=%s,socket-abstract=no", cfg.SocketPath), fwd, queues, extra...)
	p.waitReady(t, ctx)
	return p, dialRetry(t, ctx, cfg)
}

// waitReady waits until testpmd has started forwarding. Before that,
// testpmd flushes (drops) whatever its rx queues hold, and net_memif in server
// role must not be connected to before its port is configured and started.
func (p *testpmd) waitReady(t testing.TB, ctx context.Context) {
	t.Helper()
	for i := 0; !strings.Contains(p.out.String(), "Press enter to exit"); i++ {
		select {
		case <-p.exited:
			t.Fatalf("testpmd exited early:\n%s", p.out.String())
		case <-ctx.Done():
			t.Fatalf("testpmd did not start forwarding:\n%s", p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop interrupts testpmd and returns its accumulated RX/TX packet counts.
func (p *testpmd) stop(t testing.TB) (rx, tx int) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("testpmd did not exit after SIGINT:\n%s", p.out.String())
	}
	out := p.out.String()
	m := regexp.MustCompile(`Accumulated forward statistics for all ports\+*\s+RX-packets:\s+(\d+).*\s+TX-packets:\s+(\d+)`).FindStringSubmatch(out)
	require.NotNil(t, m, "no final statistics in testpmd output:\n%s", out)
	rx, _ = strconv.Atoi(m[1])
	tx, _ = strconv.Atoi(m[2])
	return rx, tx
}

func macSwapped(t *testing.T) func(sent, got []byte) {
	return func(sent, got []byte) {
		require.Len(t, got, len(sent))
		require.Equal(t, sent[0:6], got[6:12], "src MAC must be the sent dst MAC")
		require.Equal(t, sent[6:12], got[0:6], "dst MAC must be the sent src MAC")
		require.Equal(t, sent[12:], got[12:], "payload")
	}
}

var interopCases = []struct {
	name   string
	queues int
	log2   uint8
}{
	{"1qp/ring1024", 1, 10},
	{"1qp/ring16384", 1, 14},
	{"2qp/ring1024", 2, 10},
	{"2qp/ring16384", 2, 14},
}

const interopPackets = 20000

// pingPongAll runs pingPong on every queue pair of ifc.
func pingPongAll(t *testing.T, ctx context.Context, ifc *Interface, queues int) {
	for q := 0; q < queues; q++ {
		tx, rx := queues2(t, ifc, q)
		pingPongQ(t, ctx, tx, rx, interopPackets/queues, 32, macSwapped(t))
	}
}

func TestInteropGoClientTestpmdServer(t *testing.T) {
	bin := requireTestpmd(t)
	for _, tc := range interopCases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			p, cli := testpmdServer(t, ctx, bin, "macswap", tc.queues, Config{Name: "go-client", NumQueuePairs: tc.queues, Log2RingSize: tc.log2})
			require.Equal(t, tc.queues, cli.NumQueuePairs())
			pingPongAll(t, ctx, cli, tc.queues)
			// Stop testpmd while connected: its port statistics reset on disconnect.
			rx, tx := p.stop(t)
			require.NoError(t, cli.Close())
			require.Equal(t, interopPackets, rx, "testpmd received")
			require.Equal(t, interopPackets, tx, "testpmd sent")
		})
	}
}

func TestInteropTestpmdClientGoServer(t *testing.T) {
	bin := requireTestpmd(t)
	for _, tc := range interopCases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			sock := filepath.Join(t.TempDir(), "memif.sock")
			srv, err := Listen(Config{SocketPath: sock, ID: 3, Name: "go-server", NumQueuePairs: tc.queues, Secret: "interop"})
			require.NoError(t, err)
			t.Cleanup(func() { srv.Close() })
			vdev := fmt.Sprintf("net_memif0,role=client,id=3,secret=interop,rsize=%d,socket=%s,socket-abstract=no", tc.log2, sock)
			p := startTestpmd(t, ctx, bin, vdev, "macswap", tc.queues)
			require.NoError(t, srv.WaitUp(ctx))
			p.waitReady(t, ctx)
			require.Equal(t, tc.queues, srv.NumQueuePairs())
			pingPongAll(t, ctx, srv, tc.queues)
			rx, tx := p.stop(t)
			require.Equal(t, interopPackets, rx, "testpmd received")
			require.Equal(t, interopPackets, tx, "testpmd sent")
			// testpmd closing its port disconnects us cleanly.
			require.Error(t, srv.WaitDown(ctx))
			require.NoError(t, srv.Close())
		})
	}
}

// BenchmarkInteropTestpmdTxonlyToGoClient measures how fast a Go client
// receives 64-byte frames from testpmd (server, txonly mode).
func BenchmarkInteropTestpmdTxonlyToGoClient(b *testing.B) {
	bin := requireTestpmd(b)
	p, cli := testpmdServer(b, testCtx(b), bin, "txonly", 1, Config{Log2RingSize: 12}, "--txpkts=64")
	_, rx := queues2(b, cli, 0)
	_, bufs := benchFrames()
	start := startBench(b)
	for got := 0; got < b.N; {
		n, err := rx.RxBurst(bufs)
		if err != nil {
			b.Fatal(err)
		}
		got += n
	}
	reportPps(b, start)
	b.StopTimer()
	p.stop(b)
}

// BenchmarkInteropGoClientToTestpmdRxonly measures how fast a Go client
// transmits 64-byte frames into testpmd (server, rxonly mode).
func BenchmarkInteropGoClientToTestpmdRxonly(b *testing.B) {
	bin := requireTestpmd(b)
	p, cli := testpmdServer(b, testCtx(b), bin, "rxonly", 1, Config{Log2RingSize: 12})
	tx, _ := queues2(b, cli, 0)
	pkts, _ := benchFrames()
	start := startBench(b)
	for sent := 0; sent < b.N; {
		n, err := tx.TxBurst(pkts[:min(benchBurst, b.N-sent)])
		if err != nil {
			b.Fatal(err)
		}
		sent += n
	}
	reportPps(b, start)
	b.StopTimer()
	rxd, _ := p.stop(b)
	if rxd > b.N {
		b.Fatalf("testpmd received %d frames, we sent %d", rxd, b.N)
	}
}

// echo sends every packet it receives on queue 0 back until count packets
// were echoed or ctx ends.
func echo(ctx context.Context, ifc *Interface, count int) error {
	tx, err := ifc.TxQueue(0)
	if err != nil {
		return err
	}
	rx, err := ifc.RxQueue(0)
	if err != nil {
		return err
	}
	bufs := make([][]byte, 32)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	for done := 0; done < count; {
		if err := rx.Wait(ctx); err != nil {
			return err
		}
		for i := range bufs {
			bufs[i] = bufs[i][:cap(bufs[i])]
		}
		n, err := rx.RxBurst(bufs)
		if err != nil {
			return err
		}
		for sent := 0; sent < n; {
			m, err := tx.TxBurst(bufs[sent:n])
			if err != nil {
				return err
			}
			sent += m
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		done += n
	}
	return nil
}

// pingPong sends count distinct frames through queue 0 in windows and waits
// for each window to come back. check compares what was sent with what came
// back (an echoing peer may rewrite headers).
func pingPong(t *testing.T, ctx context.Context, ifc *Interface, count, window int, check func(sent, got []byte)) {
	t.Helper()
	tx, rx := queues2(t, ifc, 0)
	pingPongQ(t, ctx, tx, rx, count, window, check)
}

func pingPongQ(t *testing.T, ctx context.Context, tx *TxQueue, rx *RxQueue, count, window int, check func(sent, got []byte)) {
	t.Helper()
	buf := make([][]byte, window)
	for i := range buf {
		buf[i] = make([]byte, 2048)
	}
	for base := 0; base < count; base += window {
		w := min(window, count-base)
		pkts := make([][]byte, w)
		for i := range pkts {
			pkts[i] = makeFrame(base+i, 64)
		}
		for sent := 0; sent < w; {
			n, err := tx.TxBurst(pkts[sent:])
			require.NoError(t, err)
			sent += n
			require.NoError(t, ctx.Err(), "sending window at %d", base)
		}
		for got := 0; got < w; {
			if err := rx.Wait(ctx); err != nil {
				t.Fatalf("waiting for echo of packet %d: %v\n%s%s", base+got, err, ringState("tx", &tx.q), ringState("rx", &rx.q))
			}
			bs := buf[:w-got]
			for i := range bs {
				bs[i] = bs[i][:cap(bs[i])]
			}
			n, err := rx.RxBurst(bs)
			require.NoError(t, err)
			for _, b := range bs[:n] {
				check(pkts[got], b)
				got++
			}
		}
	}
}

// makeFrame builds an Ethernet frame with distinct MACs and a sequence number.
func makeFrame(seq, size int) []byte {
	p := makePacket(seq, size)
	copy(p[0:6], []byte{0x02, 0, 0, 0, 0, 0x02})  // dst
	copy(p[6:12], []byte{0x02, 0, 0, 0, 0, 0x01}) // src
	p[12], p[13] = 0x88, 0xb5                     // local experimental ethertype
	p[14], p[15], p[16], p[17] = byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq)
	return p
}

func sameFrame(t *testing.T) func(sent, got []byte) {
	return func(sent, got []byte) { require.Equal(t, sent, got) }
}

const helperEnv = "MEMIF_TEST_HELPER"

// TestHelperProcess is the peer for TestCrossProcess when re-executed.
func TestHelperProcess(t *testing.T) {
	role := os.Getenv(helperEnv)
	if role == "" {
		t.Skip("only runs as a child of TestCrossProcess")
	}
	sock := os.Getenv("MEMIF_TEST_SOCK")
	count, _ := strconv.Atoi(os.Getenv("MEMIF_TEST_COUNT"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := Config{SocketPath: sock, ID: 42, Secret: "xproc", Name: "child-" + role}
	var ifc *Interface
	var err error
	if role == "server" {
		ifc, err = Listen(cfg)
		require.NoError(t, err)
		require.NoError(t, ifc.WaitUp(ctx))
	} else {
		ifc, err = Dial(ctx, cfg)
		require.NoError(t, err)
	}
	defer ifc.Close()
	require.NoError(t, echo(ctx, ifc, count))
	// Let the parent finish reading before the connection goes away.
	err = ifc.WaitDown(ctx)
	require.False(t, errors.Is(err, context.DeadlineExceeded), "parent never disconnected")
}

func TestCrossProcess(t *testing.T) {
	for _, childRole := range []string{"client", "server"} {
		t.Run("child-is-"+childRole, func(t *testing.T) {
			ctx := testCtx(t)
			sock := filepath.Join(t.TempDir(), "x.sock")
			const count = 5000
			cfg := Config{SocketPath: sock, ID: 42, Secret: "xproc", Name: "parent"}
			var parent *Interface
			var err error
			if childRole == "client" {
				parent, err = Listen(cfg)
				require.NoError(t, err)
			}
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
			cmd.Env = append(os.Environ(), helperEnv+"="+childRole, "MEMIF_TEST_SOCK="+sock, fmt.Sprintf("MEMIF_TEST_COUNT=%d", count))
			out := &testkit.Buffer{}
			cmd.Stdout, cmd.Stderr = out, out
			require.NoError(t, cmd.Start())
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			})
			if childRole == "client" {
				require.NoError(t, parent.WaitUp(ctx))
			} else {
				parent = dialRetry(t, ctx, cfg)
			}
			require.Equal(t, "child-"+childRole, parent.PeerName())
			pingPong(t, ctx, parent, count, 64, sameFrame(t))
			require.NoError(t, parent.Close())
			err = cmd.Wait()
			require.NoError(t, err, "child output:\n%s", out.String())
		})
	}
}

// dialRetry connects to a server that may not have created its socket yet.
func dialRetry(t testing.TB, ctx context.Context, cfg Config) *Interface {
	t.Helper()
	for i := 0; ; i++ {
		ifc, err := Dial(ctx, cfg)
		if err == nil {
			t.Cleanup(func() { ifc.Close() })
			return ifc
		}
		require.Less(t, i, 300, "server socket never came up: %v", err)
		select {
		case <-ctx.Done():
			t.Fatalf("dial: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
