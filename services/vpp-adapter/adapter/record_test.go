package adapter_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/services/vpp-adapter/adapter"
)

// A state dir written by the vpp-adapter before libs/adapterkit/recordstore
// (0750, files 0640 named hex(sha256(key))[:32], a crash's temp file) loads
// as it is, and the adapter replays from it.
func TestStateDirOfOlderVersionLoads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	require.NoError(t, os.Mkdir(dir, 0o750))
	sum := sha256.Sum256([]byte(key.String()))
	name := fmt.Sprintf("%x.json", sum[:16])
	old := `{"attachment": {"key": {"containerId": "0123456789abcdef", "ifName": "net1"}, "network": "vpp-net", "engine": "vpp",
	  "interface": {"ifType": "memif", "netType": "bridge", "socketPath": "` + podBase + `/0123456789abcdef/memif-net1.sock",
	    "memif": {"role": "master", "mode": "ethernet"}, "bridge": {"id": 4}}},
	  "tag": "` + adapter.Tag(key) + `", "swIfIndex": 3, "memifSocketFile": "` + podBase + `/0123456789abcdef/memif-net1.sock",
	  "memifSocketId": 1, "memifSocketAdded": true, "bridgeCreated": true}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(old), 0o640))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".tmp-123"), []byte("{"), 0o640))

	fake, _, evs := looped(t, dir)
	ev := evs.WaitFor(t, contracts.EventReconciled)
	assert.Contains(t, ev.Message, "desired 1, present 0, recreated 1, failed 0")
	assert.Equal(t, uint32(4), byTag(t, fake, key).BD, "the memif is back in its bridge domain")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "the crash's temp file is gone")
	assert.Equal(t, name, entries[0].Name())
}
