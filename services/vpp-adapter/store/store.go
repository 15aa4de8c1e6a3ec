// Package store keeps the vpp-adapter's durable record of desired
// attachments: one JSON file per attachment, written atomically, so the
// adapter can replay them after it or VPP restarts.
package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"usrsp.dev/contracts"
)

// Record is one desired attachment and what the adapter created for it.
type Record struct {
	Attachment contracts.Attachment `json:"attachment"`
	// Tag is the VPP interface tag that marks the host side as ours.
	Tag string `json:"tag"`
	// SwIfIndex is the last known sw_if_index (VPP renumbers on restart;
	// the tag is what finds the interface).
	SwIfIndex uint32 `json:"swIfIndex"`
	// MemifSocketFile is the filename registered with VPP; MemifSocketAdded
	// says the adapter registered it (and so may remove it).
	MemifSocketFile  string `json:"memifSocketFile,omitempty"`
	MemifSocketID    uint32 `json:"memifSocketId,omitempty"`
	MemifSocketAdded bool   `json:"memifSocketAdded,omitempty"`
	// BridgeCreated says this attachment created its bridge domain.
	BridgeCreated bool `json:"bridgeCreated,omitempty"`
	// Table is the IP table (VRF) of an L3 attachment.
	Table uint32 `json:"table,omitempty"`
}

// Store is a directory of records.
type Store struct {
	dir string
	mu  sync.Mutex
}

// Open creates dir if needed and returns its store.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, contracts.Errorf(contracts.CodeIO, "state dir %s: %v", dir, err)
	}
	return &Store{dir: dir}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(k contracts.AttachmentKey) string {
	sum := sha256.Sum256([]byte(k.String()))
	return filepath.Join(s.dir, hex.EncodeToString(sum[:16])+".json")
}

// Get returns the record of k, if there is one.
func (s *Store) Get(k contracts.AttachmentKey) (*Record, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := readRecord(s.path(k))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return r, true, nil
}

// Put writes r atomically: a temp file, fsync, rename, fsync of the dir.
func (s *Store) Put(r *Record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return contracts.Errorf(contracts.CodeInternal, "encode record %s: %v", r.Attachment.Key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dst := s.path(r.Attachment.Key)
	tmp, err := os.CreateTemp(s.dir, ".tmp-*")
	if err != nil {
		return contracts.Errorf(contracts.CodeIO, "write record %s: %v", r.Attachment.Key, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err == nil {
		err = syncDir(s.dir)
	}
	if err != nil {
		return contracts.Errorf(contracts.CodeIO, "write record %s to %s: %v", r.Attachment.Key, dst, err)
	}
	return nil
}

// Delete removes the record of k; a missing record is success.
func (s *Store) Delete(k contracts.AttachmentKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(s.path(k)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return contracts.Errorf(contracts.CodeIO, "delete record %s: %v", k, err)
	}
	if err := syncDir(s.dir); err != nil {
		return contracts.Errorf(contracts.CodeIO, "delete record %s: %v", k, err)
	}
	return nil
}

// List returns every record, sorted by key. A file that cannot be read is
// reported, not skipped: replaying half the state silently is worse.
func (s *Store) List() ([]*Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, contracts.Errorf(contracts.CodeIO, "read state dir %s: %v", s.dir, err)
	}
	var out []*Record
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		r, err := readRecord(filepath.Join(s.dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Attachment.Key.String() < out[j].Attachment.Key.String() })
	return out, nil
}

func readRecord(path string) (*Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, contracts.Errorf(contracts.CodeDecode, "record %s: %v", path, err)
	}
	if r.Attachment.Key.ContainerID == "" || r.Tag == "" {
		return nil, contracts.Errorf(contracts.CodeDecode, "record %s: key or tag missing", path)
	}
	return &r, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	return d.Sync()
}
