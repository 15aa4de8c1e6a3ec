// Package recordstore is the adapters' durable record store: one JSON file
// per attachment in a directory (0700, files 0600), written atomically
// (temp file, fsync, rename, fsync of the directory), so a crash leaves
// the old or the new record, never half of one.
package recordstore

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"usrsp.dev/contracts"
)

const tmpPrefix = ".tmp-"

// FileName is the file of k's record: 32 hex digits of
// SHA-256("<containerID>/<ifName>") (128 bits: unlike ShortID's 48, no
// two keys of a node will ever share a file) and ".json".
func FileName(k contracts.AttachmentKey) string {
	sum := sha256.Sum256([]byte(k.String()))
	return hex.EncodeToString(sum[:16]) + ".json"
}

// Store is a directory of records of type R (a struct or a pointer to
// one); keyOf says which attachment a record is of. It is safe for
// concurrent use.
type Store[R any] struct {
	dir   string
	keyOf func(R) contracts.AttachmentKey
	mu    sync.Mutex
}

// Open creates dir if needed and makes it private (0700), removes the temp
// files a crash left in it, and renames records whose file name is not
// FileName of their key (older adapters named them differently). A record
// that does not decode is an error naming its file: skipping it would make
// reconcile delete a live interface.
func Open[R any](dir string, keyOf func(R) contracts.AttachmentKey) (*Store[R], error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, contracts.Errorf(contracts.CodeIO, "state dir %s: %v", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, contracts.Errorf(contracts.CodeIO, "state dir %s: %v", dir, err)
	}
	s := &Store[R]{dir: dir, keyOf: keyOf}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, contracts.Errorf(contracts.CodeIO, "read state dir %s: %v", dir, err)
	}
	changed := false
	for _, e := range entries {
		name := e.Name()
		switch {
		case e.IsDir():
		case strings.HasPrefix(name, tmpPrefix):
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, contracts.Errorf(contracts.CodeIO, "remove crash leftover %s: %v", filepath.Join(dir, name), err)
			}
			changed = true
		case isRecord(name):
			moved, err := s.adopt(name)
			if err != nil {
				return nil, err
			}
			changed = changed || moved
		}
	}
	if changed {
		if err := syncDir(dir); err != nil {
			return nil, contracts.Errorf(contracts.CodeIO, "state dir %s: %v", dir, err)
		}
	}
	return s, nil
}

// adopt checks one record file and gives it its canonical name and mode.
func (s *Store[R]) adopt(name string) (moved bool, err error) {
	path := filepath.Join(s.dir, name)
	r, err := s.read(path)
	if err != nil {
		return false, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return false, contracts.Errorf(contracts.CodeIO, "record %s: %v", path, err)
	}
	k := s.keyOf(r)
	want := FileName(k)
	if name == want {
		return false, nil
	}
	dst := filepath.Join(s.dir, want)
	if _, err := os.Stat(dst); err == nil {
		return false, contracts.Errorf(contracts.CodeDecode, "records %s and %s both hold attachment %s", path, dst, k)
	}
	if err := os.Rename(path, dst); err != nil {
		return false, contracts.Errorf(contracts.CodeIO, "rename record %s to %s: %v", path, dst, err)
	}
	return true, nil
}

func isRecord(name string) bool {
	return strings.HasSuffix(name, ".json") && !strings.HasPrefix(name, ".")
}

// Dir is the store's directory.
func (s *Store[R]) Dir() string { return s.dir }

func (s *Store[R]) path(k contracts.AttachmentKey) string { return filepath.Join(s.dir, FileName(k)) }

// Get returns k's record and whether there is one.
func (s *Store[R]) Get(k contracts.AttachmentKey) (R, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.read(s.path(k))
	if errors.Is(err, fs.ErrNotExist) {
		var zero R
		return zero, false, nil
	}
	if err != nil {
		var zero R
		return zero, false, err
	}
	return r, true, nil
}

// Put writes r atomically under its key.
func (s *Store[R]) Put(r R) error {
	k := s.keyOf(r)
	if k.ContainerID == "" || k.IfName == "" {
		return contracts.Errorf(contracts.CodeInternal, "record without attachment key")
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return contracts.Errorf(contracts.CodeInternal, "encode record %s: %v", k, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := writeAtomic(s.dir, s.path(k), b); err != nil {
		return contracts.Errorf(contracts.CodeIO, "write record %s: %v", k, err)
	}
	return nil
}

// Delete removes k's record; a missing one is success.
func (s *Store[R]) Delete(k contracts.AttachmentKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := os.Remove(s.path(k))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = syncDir(s.dir)
	}
	if err != nil {
		return contracts.Errorf(contracts.CodeIO, "delete record %s: %v", k, err)
	}
	return nil
}

// List returns every record, sorted by key.
func (s *Store[R]) List() ([]R, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, contracts.Errorf(contracts.CodeIO, "read state dir %s: %v", s.dir, err)
	}
	var out []R
	for _, e := range entries {
		if e.IsDir() || !isRecord(e.Name()) {
			continue
		}
		r, err := s.read(filepath.Join(s.dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return s.keyOf(out[i]).String() < s.keyOf(out[j]).String() })
	return out, nil
}

// read decodes the record in path; it must name its attachment.
func (s *Store[R]) read(path string) (R, error) {
	var r R
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, err
	}
	if err != nil {
		return r, contracts.Errorf(contracts.CodeIO, "read record %s: %v", path, err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, contracts.Errorf(contracts.CodeDecode, "record %s: %v", path, err)
	}
	if k := s.keyOf(r); k.ContainerID == "" || k.IfName == "" {
		return r, contracts.Errorf(contracts.CodeDecode, "record %s: attachment key missing", path)
	}
	return r, nil
}

func writeAtomic(dir, path string, b []byte) error {
	f, err := os.CreateTemp(dir, tmpPrefix+"*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
