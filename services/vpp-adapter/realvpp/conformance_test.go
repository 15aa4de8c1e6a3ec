package realvpp_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"usrsp.dev/contracts/contractstest"
)

// TestRealVPPConformance runs the shared adapter suite against the daemon
// on a real VPP, restarts (of the adapter, from its records) included.
func TestRealVPPConformance(t *testing.T) {
	vppEnv(t)
	s := startStack(t)
	contractstest.RunAdapterSuite(t, s.Target(func(t *testing.T) {
		ifs, sockets, bds := ownedState(t, s.host)
		assert.Empty(t, ifs, "interfaces tagged as ours")
		assert.Empty(t, sockets, "memif socket registrations of the pods")
		assert.Empty(t, bds, "bridge domains tagged as ours")
	}))
}
