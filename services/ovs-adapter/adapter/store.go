package adapter

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"usrsp.dev/contracts"
	"usrsp.dev/services/ovs-adapter/ovs"
)

// Record is the adapter's durable record of one attachment: enough to
// answer List and Check without OVS and to re-create the port after OVS
// lost it.
type Record struct {
	Attachment contracts.Attachment `json:"attachment"`
	// Requested is the interface as the request gave it; Check and replayed
	// attaches compare against it (Attachment.Interface is what was made).
	Requested contracts.HostInterface `json:"requested"`
	// Port is the OVS port as created (dpdk-devargs include the memif index).
	Port ovs.PortSpec `json:"port"`
	// OVSSocket is where OVS serves a dpdkvhostuser socket; the pod's
	// SocketPath is a hard link (or bind mount) of it.
	OVSSocket string `json:"ovsSocket,omitempty"`
}

// Store keeps one JSON file per attachment in a directory, named after the
// attachment's port name. Writes are atomic (temp file, fsync, rename,
// fsync of the directory), so a crash leaves the old or the new record.
type Store struct{ dir string }

// OpenStore creates dir if needed.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, contracts.Errorf(contracts.CodeIO, "state dir %s: %v", dir, err)
	}
	return &Store{dir: dir}, nil
}

func (s *Store) path(k contracts.AttachmentKey) string {
	return filepath.Join(s.dir, PortName(k)+".json")
}

// Put writes rec atomically.
func (s *Store) Put(rec Record) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return contracts.Errorf(contracts.CodeInternal, "encode record %s: %v", rec.Attachment.Key, err)
	}
	if err := writeAtomic(s.dir, s.path(rec.Attachment.Key), b); err != nil {
		return contracts.Errorf(contracts.CodeIO, "write record %s: %v", rec.Attachment.Key, err)
	}
	return nil
}

func writeAtomic(dir, path string, b []byte) error {
	f, err := os.CreateTemp(dir, ".tmp-*")
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
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// Delete removes k's record; a missing one is fine.
func (s *Store) Delete(k contracts.AttachmentKey) error {
	if err := os.Remove(s.path(k)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return contracts.Errorf(contracts.CodeIO, "delete record %s: %v", k, err)
	}
	return nil
}

// All reads every record. A file that does not decode is an error naming
// it: silently dropping it would make reconcile delete a live port.
func (s *Store) All() ([]Record, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, contracts.Errorf(contracts.CodeIO, "read state dir %s: %v", s.dir, err)
	}
	var out []Record
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(s.dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, contracts.Errorf(contracts.CodeIO, "read record %s: %v", path, err)
		}
		var rec Record
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, contracts.Errorf(contracts.CodeDecode, "record %s: %v", path, err)
		}
		if want := PortName(rec.Attachment.Key) + ".json"; want != e.Name() {
			return nil, contracts.Errorf(contracts.CodeDecode, "record %s holds attachment %s (expected file %s)", path, rec.Attachment.Key, want)
		}
		out = append(out, rec)
	}
	return out, nil
}

// Dir is the state directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) String() string { return fmt.Sprintf("store(%s)", s.dir) }
