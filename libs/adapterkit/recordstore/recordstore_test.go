package recordstore_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/adapterkit/recordstore"
)

type rec struct {
	Attachment contracts.Attachment `json:"attachment"`
	Extra      string               `json:"extra,omitempty"`
}

func keyOf(r *rec) contracts.AttachmentKey { return r.Attachment.Key }

func newRec(c, i, extra string) *rec {
	return &rec{Attachment: contracts.Attachment{Key: contracts.AttachmentKey{ContainerID: c, IfName: i}, Network: "n"}, Extra: extra}
}

func open(t *testing.T, dir string) *recordstore.Store[*rec] {
	t.Helper()
	s, err := recordstore.Open(dir, keyOf)
	require.NoError(t, err)
	return s
}

func write(t *testing.T, dir, name string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
}

func TestPutGetDeleteList(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := open(t, dir)
	a, b := newRec("bbb", "net1", "x"), newRec("aaa", "net2", "y")
	require.NoError(t, s.Put(a))
	require.NoError(t, s.Put(b))

	got, ok, err := s.Get(a.Attachment.Key)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, a, got)
	_, ok, err = s.Get(contracts.AttachmentKey{ContainerID: "none", IfName: "net1"})
	require.NoError(t, err)
	assert.False(t, ok)

	list, err := s.List()
	require.NoError(t, err)
	assert.Equal(t, []*rec{b, a}, list, "sorted by key")

	a.Extra = "z" // overwrite
	require.NoError(t, s.Put(a))
	got, _, _ = s.Get(a.Attachment.Key)
	assert.Equal(t, "z", got.Extra)

	require.NoError(t, s.Delete(a.Attachment.Key))
	require.NoError(t, s.Delete(a.Attachment.Key), "a missing record is fine")
	list, err = s.List()
	require.NoError(t, err)
	assert.Equal(t, []*rec{b}, list)

	st, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), st.Mode().Perm())
	st, err = os.Stat(filepath.Join(dir, recordstore.FileName(b.Attachment.Key)))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}

func TestValueRecords(t *testing.T) {
	s, err := recordstore.Open(t.TempDir(), func(r rec) contracts.AttachmentKey { return r.Attachment.Key })
	require.NoError(t, err)
	require.NoError(t, s.Put(*newRec("c1", "net1", "v")))
	got, ok, err := s.Get(contracts.AttachmentKey{ContainerID: "c1", IfName: "net1"})
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "v", got.Extra)
}

// TestOpenCleansUp: what a crash or an older adapter left is fixed on Open.
func TestOpenCleansUp(t *testing.T) {
	r := newRec("0123456789ab", "net1", "old")
	k := r.Attachment.Key
	tests := []struct {
		name    string
		files   map[string]any // name -> JSON value ("" string: raw empty file)
		want    []string       // files after Open
		wantErr string
	}{
		{name: "crash leftovers", files: map[string]any{".tmp-123": "", ".tmp-456": r, recordstore.FileName(k): r},
			want: []string{recordstore.FileName(k)}},
		{name: "ovs-adapter's port-named record", files: map[string]any{"usp" + k.ShortID() + ".json": r},
			want: []string{recordstore.FileName(k)}},
		{name: "any other name", files: map[string]any{"whatever.json": r, "notes.txt": "kept"},
			want: []string{recordstore.FileName(k), "notes.txt"}},
		{name: "two files for one key", files: map[string]any{"old.json": r, recordstore.FileName(k): r},
			wantErr: "both hold attachment"},
		{name: "undecodable", files: map[string]any{"bad.json": "not a record"}, wantErr: "bad.json"},
		{name: "no key", files: map[string]any{"nokey.json": map[string]any{"extra": "x"}}, wantErr: "attachment key missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.Chmod(dir, 0o755))
			for name, v := range tt.files {
				if v == "" {
					require.NoError(t, os.WriteFile(filepath.Join(dir, name), nil, 0o600))
					continue
				}
				write(t, dir, name, v)
			}
			s, err := recordstore.Open(dir, keyOf)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			assert.ElementsMatch(t, tt.want, names)
			got, ok, err := s.Get(k)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, "old", got.Extra)
			st, err := os.Stat(filepath.Join(dir, recordstore.FileName(k)))
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
		})
	}
}

// TestVPPNamesStay: vpp-adapter named its records as FileName does, so
// its state dir loads without a rename.
func TestVPPNamesStay(t *testing.T) {
	dir := t.TempDir()
	r := newRec("c1", "net1", "vpp")
	write(t, dir, recordstore.FileName(r.Attachment.Key), r)
	s := open(t, dir)
	list, err := s.List()
	require.NoError(t, err)
	assert.Equal(t, []*rec{r}, list)
	assert.Regexp(t, `^[0-9a-f]{32}\.json$`, recordstore.FileName(r.Attachment.Key))
}

func TestPutWithoutKey(t *testing.T) {
	s := open(t, t.TempDir())
	assert.Error(t, s.Put(&rec{}))
}

func TestConcurrent(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newRec(fmt.Sprintf("c%02d", i), "net1", "")
			for j := range 10 {
				r.Extra = fmt.Sprint(j)
				assert.NoError(t, s.Put(r))
				_, err := s.List()
				assert.NoError(t, err)
			}
			if i%2 == 0 {
				assert.NoError(t, s.Delete(r.Attachment.Key))
			}
		}()
	}
	wg.Wait()
	list, err := s.List()
	require.NoError(t, err)
	assert.Len(t, list, 8)
	for _, r := range list {
		assert.Equal(t, "9", r.Extra)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 8, "no temp files left")
}
