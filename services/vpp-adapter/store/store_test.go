package store_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/services/vpp-adapter/store"
)

func TestPutGetListDelete(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s, err := store.Open(dir)
	require.NoError(t, err)
	k1 := contracts.AttachmentKey{ContainerID: "b", IfName: "net1"}
	k2 := contracts.AttachmentKey{ContainerID: "a", IfName: "net1"}
	for _, k := range []contracts.AttachmentKey{k1, k2} {
		require.NoError(t, s.Put(&store.Record{Tag: "usrsp:x", Attachment: contracts.Attachment{Key: k, Network: "n"}}))
	}
	r, found, err := s.Get(k1)
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, k1, r.Attachment.Key)

	all, err := s.List()
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.Equal(t, k2, all[0].Attachment.Key, "sorted by key")

	require.NoError(t, s.Delete(k1))
	require.NoError(t, s.Delete(k1), "deleting twice is fine")
	_, found, err = s.Get(k1)
	require.NoError(t, err)
	assert.False(t, found)

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temp files left behind")
}

func TestCorruptRecordIsReported(t *testing.T) {
	dir := t.TempDir()
	s, err := store.Open(dir)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "broken.json"), []byte("{"), 0o600))
	_, err = s.List()
	assert.Equal(t, contracts.CodeDecode, contracts.CodeOf(err))
	assert.Contains(t, err.Error(), "broken.json")
}
