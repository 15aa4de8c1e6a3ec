package memif

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"usrsp.dev/libs/testkit"
)

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
