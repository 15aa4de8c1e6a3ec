package probe

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/libs/memif"
)

// Two probe endpoints over a real memif pair (libs/memif server and client
// in one process) ping each other.
func TestProbesPingOverMemif(t *testing.T) {
	for _, queues := range []int{1, 2} {
		t.Run(map[int]string{1: "one queue pair", 2: "two queue pairs"}[queues], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sock := filepath.Join(t.TempDir(), "memif.sock")
			srv, err := memif.Listen(memif.Config{SocketPath: sock, ID: 1, NumQueuePairs: queues})
			require.NoError(t, err)
			t.Cleanup(func() { srv.Close() })
			cli, err := memif.Dial(ctx, memif.Config{SocketPath: sock, ID: 1, NumQueuePairs: queues, Log2RingSize: 8})
			require.NoError(t, err)
			t.Cleanup(func() { cli.Close() })
			require.NoError(t, srv.WaitUp(ctx))

			a := start(t, MemifPort{Ifc: srv}, Config{MAC: mac(1), Addr: netip.MustParsePrefix("10.2.0.1/24")})
			b := start(t, MemifPort{Ifc: cli}, Config{MAC: mac(2), Addr: netip.MustParsePrefix("10.2.0.2/24")})

			s, err := a.Ping(ctx, netip.MustParseAddr("10.2.0.2"), opts(3), nil)
			require.NoError(t, err)
			assert.Equal(t, 3, s.Received)
			s, err = b.Ping(ctx, netip.MustParseAddr("10.2.0.1"), PingOptions{Count: 3, Timeout: 2 * time.Second, Size: 1400}, nil)
			require.NoError(t, err)
			assert.Equal(t, 3, s.Received)
		})
	}
}
