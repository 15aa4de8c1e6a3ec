package contracts

import (
	"fmt"
	"io/fs"
)

// PodAccess says who in the pod may use an attachment's files: the pod's
// directory, its data file and the sockets get group GID and modes derived
// from Mode. cni-entry resolves the NetConf's group name on the host (the
// adapters run in containers whose /etc/group differs), so the wire
// carries a number. Owners stay as they are (root, or the vswitch's user
// for the sockets it creates).
type PodAccess struct {
	GID int `json:"gid"`
	// Mode is the sockets' permission bits: read/write only, owner rw
	// always (e.g. 0o660, or 0o666 for every uid in the pod). JSON carries
	// it as a number (0o660 is 432).
	Mode fs.FileMode `json:"mode"`
}

// MaxGID is the largest gid: (uid_t)-1 means "unchanged" to chown(2).
const MaxGID = 1<<32 - 2

// SocketMode is the permission of a socket: Mode.
func (a PodAccess) SocketMode() fs.FileMode { return a.Mode }

// FileMode is the permission of the pod data file: Mode without write for
// group and others (the pod reads its data, never writes it).
func (a PodAccess) FileMode() fs.FileMode { return a.Mode &^ 0o022 }

// DirMode is the permission of the pod's directory: every class that may
// read or write also gets search (x), and setgid makes files created in it
// (a pod's vhost-user server socket, our temp files) inherit the group.
func (a PodAccess) DirMode() fs.FileMode {
	m := a.Mode | 0o700 | fs.ModeSetgid
	if a.Mode&0o060 != 0 {
		m |= 0o010
	}
	if a.Mode&0o006 != 0 {
		m |= 0o001
	}
	return m
}

// Check reports why a is not usable (CNI code 7 naming field), or nil.
func (a PodAccess) Check(field string) error {
	switch {
	case a.GID < 0 || a.GID > MaxGID:
		return Errorf(CodeInvalidConfig, "%s.gid %d is not a gid (0-%d)", field, a.GID, MaxGID)
	case a.Mode&^0o666 != 0:
		return Errorf(CodeInvalidConfig, "%s.mode %#o may only hold read/write bits (0666): no execute, setuid, setgid, sticky or file type", field, uint32(a.Mode))
	case a.Mode&0o600 != 0o600:
		return Errorf(CodeInvalidConfig, "%s.mode %#o must keep read/write for the owner (0600)", field, uint32(a.Mode))
	}
	return nil
}

// String is "gid <n> mode <octal>", for logs and errors.
func (a PodAccess) String() string { return fmt.Sprintf("gid %d mode %#o", a.GID, uint32(a.Mode)) }
