// Package poddata decides where an attachment's socket and pod data live
// on the host, and writes and removes those files atomically.
//
// Two layouts exist. With sharedDir the pod's directory is
// <sharedDir>/<pod UID> (or <sharedDir>/<containerID[:12]> without a pod
// UID, as the old plugin did), created by us. With podVolume it is the
// pod's emptyDir, <kubeletDir>/pods/<UID>/volumes/kubernetes.io~empty-dir/<name>,
// created by kubelet. sun_path holds only 107 bytes, so when the direct
// path is too long (always for emptyDir) the adapter is given
// <linkDir>/<link name>/<socket file>, where <link name> is a symlink to the
// pod's directory.
package poddata

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/confine"
)

// Permissions of what we create without podAccess: sockets and data are
// for root and the vswitch; the pod sees them through its own mount. With
// podAccess (contracts.PodAccess) the pod directory and the data file get
// its group and its DirMode and FileMode.
const (
	DirPerm  fs.FileMode = 0o750
	FilePerm fs.FileMode = 0o640
)

// MaxDataFile bounds what is read back of a pod data file: the directory
// is the pod's, and so may be what is there.
const MaxDataFile = 1 << 20

// The pod directory is writable by the pod (an emptyDir always; a shared
// directory once podAccess lets the group write), so anything in it may
// be a symlink, a hard link to a file outside, or a FIFO. Every read,
// write and removal in it goes through libs/confine beneath the
// directory's parent (kubelet's or the sharedDir, which the pod cannot
// change), never following a symlink, the directory itself included.

// Layout is the part of the configuration that places pod directories.
type Layout struct {
	SharedDir  string // base of per-pod directories; "" with PodVolume
	PodVolume  string // emptyDir volume name; "" with SharedDir
	KubeletDir string
	LinkDir    string
}

// Paths are the host locations of one attachment.
type Paths struct {
	PodDir    string // real directory of the socket and the pod data
	OwnPodDir bool   // PodDir was created by us and is removed when empty
	Link      string // symlink to PodDir handed to the adapter; "" if unused
}

// SocketDir is the directory the adapter is told the socket is in.
func (p Paths) SocketDir() string {
	if p.Link != "" {
		return p.Link
	}
	return p.PodDir
}

// SocketPath is the host socket path of file, as the adapter gets it.
func (p Paths) SocketPath(file string) string { return filepath.Join(p.SocketDir(), file) }

// DataFile is the pod data file of ifName.
func (p Paths) DataFile(ifName string) string { return p.dataFile(ifName).String() }

// LinkName is the short, stable name of key's link: 12 hex characters of
// sha256("<containerID>/<ifName>").
func LinkName(key contracts.AttachmentKey) string { return key.ShortID() }

// Resolve computes key's paths without touching the file system.
// socketFile decides whether the direct path fits sun_path; "" means no
// socket lives in the directory (an abstract memif socket), so no link is
// needed: the directory holds only the pod data.
func Resolve(l Layout, key contracts.AttachmentKey, podUID, socketFile string) (Paths, error) {
	if !contracts.ValidContainerID(key.ContainerID) {
		return Paths{}, contracts.Errorf(contracts.CodeInvalidEnv, "CNI_CONTAINERID %q is not a valid container id", key.ContainerID)
	}
	link := filepath.Join(l.LinkDir, LinkName(key))
	if l.PodVolume != "" {
		if podUID == "" {
			return Paths{}, contracts.Errorf(contracts.CodeInvalidEnv,
				"CNI_ARGS K8S_POD_UID is required to find podVolume %q (is the runtime Kubernetes?)", l.PodVolume)
		}
		dir := filepath.Join(l.KubeletDir, "pods", podUID, "volumes", "kubernetes.io~empty-dir", l.PodVolume)
		if socketFile == "" {
			return Paths{PodDir: dir}, nil
		}
		return Paths{PodDir: dir, Link: link}, nil
	}
	sub := podUID
	if sub == "" {
		sub = key.ContainerID[:min(12, len(key.ContainerID))]
	}
	p := Paths{PodDir: filepath.Join(l.SharedDir, sub), OwnPodDir: true}
	if socketFile != "" && len(filepath.Join(p.PodDir, socketFile)) > contracts.MaxSocketPathLen {
		p.Link = link
	}
	return p, nil
}

// Locate finds key's paths for removal: an existing link says where the pod
// directory really is (DEL and GC may lack the pod UID); otherwise Resolve.
func Locate(l Layout, key contracts.AttachmentKey, podUID, socketFile string) (Paths, error) {
	link := filepath.Join(l.LinkDir, LinkName(key))
	if target, err := os.Readlink(link); err == nil && l.podDir(target) {
		own := l.SharedDir != "" && filepath.Dir(target) == l.SharedDir
		return Paths{PodDir: target, OwnPodDir: own, Link: link}, nil
	}
	return Resolve(l, key, podUID, socketFile)
}

// podDir reports whether dir is a pod directory of l, as Resolve makes
// them: a link whose target is anything else is not followed.
func (l Layout) podDir(dir string) bool {
	if filepath.Clean(dir) != dir { // no "..", "." or "//" left to resolve differently
		return false
	}
	if l.SharedDir != "" {
		return filepath.Dir(dir) == l.SharedDir
	}
	emptyDirs := filepath.Join(l.KubeletDir, "pods") + "/"
	rel, ok := strings.CutPrefix(dir, emptyDirs)
	parts := strings.Split(rel, "/")
	return ok && len(parts) == 4 && parts[1] == "volumes" && parts[2] == "kubernetes.io~empty-dir" && parts[3] == l.PodVolume
}

// Prepare makes PodDir and the link exist, and gives PodDir access's
// group and mode (nil: ours stay root's, an emptyDir stays as kubelet made
// it). An emptyDir must already exist: kubelet creates it before the
// sandbox.
func Prepare(p Paths, access *contracts.PodAccess) error {
	dir := confine.PathIn(p.PodDir)
	if p.OwnPodDir {
		// The sharedDir is the operator's: created as configured.
		if err := os.MkdirAll(filepath.Dir(p.PodDir), DirPerm); err != nil {
			return contracts.Errorf(contracts.CodeIO, "create sharedDir: %v", err)
		}
		if err := confine.MkdirAll(dir, DirPerm); err != nil {
			return contracts.Errorf(contracts.CodeIO, "create pod directory: %v", err)
		}
	} else if !confine.IsDir(dir) {
		return contracts.Errorf(contracts.CodeInvalidConfig,
			"podVolume directory %s does not exist (or is a symlink): does the pod declare that emptyDir volume?", p.PodDir)
	}
	if access != nil {
		if err := confine.SetDirAccess(dir, access.GID, access.DirMode()); err != nil {
			return contracts.Errorf(contracts.CodeIO, "give pod directory to %s: %v", access, err)
		}
	}
	if p.Link == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p.Link), DirPerm); err != nil {
		return contracts.Errorf(contracts.CodeIO, "create linkDir: %v", err)
	}
	if target, err := os.Readlink(p.Link); err == nil && target == p.PodDir {
		return nil
	}
	// Symlink to a temporary name, then rename over: never a missing link.
	tmp := fmt.Sprintf("%s.tmp%d", p.Link, os.Getpid())
	_ = os.Remove(tmp)
	if err := os.Symlink(p.PodDir, tmp); err != nil {
		return contracts.Errorf(contracts.CodeIO, "create socket link: %v", err)
	}
	if err := os.Rename(tmp, p.Link); err != nil {
		_ = os.Remove(tmp)
		return contracts.Errorf(contracts.CodeIO, "create socket link: %v", err)
	}
	return nil
}

// WriteJSON writes v to path atomically (see confine.WriteFile): a file
// outside pod directories, e.g. the device info, whose directory is the
// runtime's or the operator's (followed as configured).
func WriteJSON(path string, v any, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, DirPerm); err != nil {
		return contracts.Errorf(contracts.CodeIO, "create %s: %v", dir, err)
	}
	return writeJSON(confine.Path{Root: dir, Rel: filepath.Base(path)}, v, -1, perm)
}

// WritePodData writes the pod data file of d.IfName into PodDir, with
// access's group and FileMode (nil: root's, FilePerm).
func WritePodData(p Paths, d *contracts.PodData, access *contracts.PodAccess) error {
	gid, perm := -1, FilePerm
	if access != nil {
		gid, perm = access.GID, access.FileMode()
	}
	return writeJSON(p.dataFile(d.IfName), d, gid, perm)
}

// writeJSON writes v atomically, without fsync: the rename already makes
// readers see all or nothing, and the files live no longer than their
// sandbox, which a node crash ends anyway (the runtime's next ADD writes
// them again). Two fsyncs cost ~1 ms of every ADD here.
func writeJSON(p confine.Path, v any, gid int, perm fs.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return contracts.Errorf(contracts.CodeInternal, "encode %s: %v", filepath.Base(p.Rel), err)
	}
	if err := confine.WriteFile(p, append(b, '\n'), gid, perm); err != nil {
		return contracts.Errorf(contracts.CodeIO, "write %s: %v", p, err)
	}
	return nil
}

// dataFile is the pod data file of ifName, confined to PodDir.
func (p Paths) dataFile(ifName string) confine.Path {
	return confine.PathIn(p.PodDir, contracts.PodDataFileName(ifName))
}

// ReadPodData reads and checks ifName's pod data file.
func ReadPodData(p Paths, ifName string) (*contracts.PodData, error) {
	b, err := readPodData(p, ifName)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, contracts.Errorf(contracts.CodeNotFound, "pod data file %s does not exist", p.DataFile(ifName))
	}
	if err != nil {
		return nil, contracts.Errorf(contracts.CodeIO, "read pod data: %v", err)
	}
	return contracts.DecodePodData(b)
}

func readPodData(p Paths, ifName string) ([]byte, error) {
	return confine.ReadFile(p.dataFile(ifName), MaxDataFile)
}

// Remove removes what ADD created for key: the pod data file (only if it is
// key's: a restarted sandbox of the same pod reuses the directory), the
// link, and PodDir if it is ours and empty. Missing files are fine.
func Remove(p Paths, key contracts.AttachmentKey) error {
	var errs []error
	// Only a regular file of ours (or a damaged one): a planted symlink,
	// hard link or FIFO stays, and goes with the pod's directory.
	if b, err := readPodData(p, key.IfName); err == nil {
		var d contracts.PodData
		if json.Unmarshal(b, &d) != nil || d.ContainerID == key.ContainerID {
			errs = append(errs, confine.Remove(p.dataFile(key.IfName)))
		}
	}
	if p.Link != "" {
		if fi, err := os.Lstat(p.Link); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			errs = append(errs, removeIfExists(p.Link))
		}
	}
	if p.OwnPodDir {
		// Other interfaces of the pod may still use it: ENOTEMPTY is fine;
		// so is ENOTDIR: whatever replaced our directory is not ours, and a
		// DEL that fails on it would fail forever.
		if err := confine.RemoveDir(confine.PathIn(p.PodDir)); err != nil && !errors.Is(err, fs.ErrNotExist) && !isNotEmpty(err) && !errors.Is(err, syscall.ENOTDIR) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return contracts.Errorf(contracts.CodeIO, "remove pod data of %s: %v", key, err)
	}
	return nil
}

// RemoveFile removes path; a missing file is success.
func RemoveFile(path string) error {
	if path == "" {
		return nil
	}
	if err := removeIfExists(path); err != nil {
		return contracts.Errorf(contracts.CodeIO, "remove %s: %v", path, err)
	}
	return nil
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func isNotEmpty(err error) bool {
	return errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST)
}
