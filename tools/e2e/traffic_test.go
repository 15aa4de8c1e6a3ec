//go:build e2e

package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/tools/harness"
)

// Two pods on one bridge, each with a port of kind, testpmd txonly in one
// and rxonly in the other; then DEL and nothing is left (including the
// bridge the adapter created).
func TestTraffic(t *testing.T) {
	for _, tc := range []struct {
		name    string
		network func(h *harness.Harness) (*harness.Network, error)
	}{
		{"vhostuser", func(h *harness.Harness) (*harness.Network, error) {
			return h.VhostUserNetwork("vhost-net", "br-vhost", "10.61.0.0/24")
		}},
		{"memif", func(h *harness.Harness) (*harness.Network, error) {
			return h.MemifNetwork("memif-net", "br-memif", "10.62.0.0/24")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := node(t)
			ctx := ctxFor(t, 2*time.Minute)
			net, err := tc.network(h)
			require.NoError(t, err)
			var ps []*harness.Pod
			phase(t, tc.name+" ADD+CHECK two pods", func() { ps = pods(t, ctx, h, net, 2) })
			phase(t, tc.name+" traffic", func() { assertTraffic(t, ctx, h, ps[0], ps[1]) })
			phase(t, tc.name+" DEL", func() { del(t, ctx, net, ps...) })
			assertGone(t, ctx, h, net, ps...)
			bridges, err := h.Bridges(ctx)
			require.NoError(t, err)
			assert.Empty(t, bridges, "the adapter removes the bridge it created once empty")
		})
	}
}
