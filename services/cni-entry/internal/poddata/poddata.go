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
)

// Permissions of what we create: sockets and data are for root and the
// vswitch; the pod sees them through its own mount.
const (
	DirPerm  fs.FileMode = 0o750
	FilePerm fs.FileMode = 0o640
)

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
func (p Paths) DataFile(ifName string) string {
	return filepath.Join(p.PodDir, contracts.PodDataFileName(ifName))
}

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
	if target, err := os.Readlink(link); err == nil {
		own := l.SharedDir != "" && strings.HasPrefix(target, l.SharedDir+string(filepath.Separator))
		return Paths{PodDir: target, OwnPodDir: own, Link: link}, nil
	}
	return Resolve(l, key, podUID, socketFile)
}

// Prepare makes PodDir and the link exist. An emptyDir must already exist:
// kubelet creates it before the sandbox.
func Prepare(p Paths) error {
	if p.OwnPodDir {
		if err := os.MkdirAll(p.PodDir, DirPerm); err != nil {
			return contracts.Errorf(contracts.CodeIO, "create pod directory: %v", err)
		}
	} else if fi, err := os.Stat(p.PodDir); err != nil || !fi.IsDir() {
		return contracts.Errorf(contracts.CodeInvalidConfig,
			"podVolume directory %s does not exist: does the pod declare that emptyDir volume?", p.PodDir)
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

// WriteJSON writes v to path atomically: a temporary file in the same
// directory, then renamed over path (see below for why without fsync).
func WriteJSON(path string, v any, perm fs.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return contracts.Errorf(contracts.CodeInternal, "encode %s: %v", filepath.Base(path), err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, DirPerm); err != nil {
		return contracts.Errorf(contracts.CodeIO, "create %s: %v", dir, err)
	}
	// A leading dot keeps the temporary file out of contracts.PodDataGlob.
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return contracts.Errorf(contracts.CodeIO, "write %s: %v", path, err)
	}
	tmp := f.Name()
	// No fsync: the rename already makes readers see all or nothing, and the
	// file lives no longer than its sandbox, which a node crash ends anyway
	// (the runtime's next ADD writes it again). Two fsyncs cost ~1 ms of
	// every ADD here.
	err = errors.Join(f.Chmod(perm), write(f, b), f.Close())
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return contracts.Errorf(contracts.CodeIO, "write %s: %v", path, err)
	}
	return nil
}

func write(f *os.File, b []byte) error {
	_, err := f.Write(append(b, '\n'))
	return err
}

// ReadPodData reads and checks ifName's pod data file.
func ReadPodData(p Paths, ifName string) (*contracts.PodData, error) {
	b, err := os.ReadFile(p.DataFile(ifName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, contracts.Errorf(contracts.CodeNotFound, "pod data file %s does not exist", p.DataFile(ifName))
	}
	if err != nil {
		return nil, contracts.Errorf(contracts.CodeIO, "read pod data: %v", err)
	}
	return contracts.DecodePodData(b)
}

// Remove removes what ADD created for key: the pod data file (only if it is
// key's: a restarted sandbox of the same pod reuses the directory), the
// link, and PodDir if it is ours and empty. Missing files are fine.
func Remove(p Paths, key contracts.AttachmentKey) error {
	var errs []error
	file := p.DataFile(key.IfName)
	if b, err := os.ReadFile(file); err == nil {
		var d contracts.PodData
		if json.Unmarshal(b, &d) != nil || d.ContainerID == key.ContainerID {
			errs = append(errs, removeIfExists(file))
		}
	}
	if p.Link != "" {
		if fi, err := os.Lstat(p.Link); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			errs = append(errs, removeIfExists(p.Link))
		}
	}
	if p.OwnPodDir {
		// Other interfaces of the pod may still use it: ENOTEMPTY is fine.
		if err := os.Remove(p.PodDir); err != nil && !errors.Is(err, fs.ErrNotExist) && !isNotEmpty(err) {
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
