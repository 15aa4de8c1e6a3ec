package bench

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"usrsp.dev/contracts"
)

func TestVPPTag(t *testing.T) {
	// The vpp-adapter README's example tag (services/vpp-adapter: adapter.Tag).
	assert.Equal(t, "usrsp:0d963bad2d11", vppTag(contracts.AttachmentKey{ContainerID: "0123456789abcdef", IfName: "net1"}))
}
