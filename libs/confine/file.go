package confine

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Files a pod could have planted in its directory, as cni-entry (root)
// reads and writes its data file there: a symlink or a hard link to a file
// outside, a FIFO that blocks an open, a file too big to read.

// ErrNotRegular is returned by ReadFile for anything but a regular file
// with one link.
var ErrNotRegular = errors.New("not a regular file with a single link")

// PathIn is name in dir, confined beneath dir's parent: dir itself (a pod
// directory) is then opened without following a symlink either. dir is
// the daemon's own choice, clean and absolute.
func PathIn(dir string, name ...string) Path {
	return Path{Root: filepath.Dir(dir), Rel: filepath.Join(append([]string{filepath.Base(dir)}, name...)...)}
}

// ReadFile reads p, at most max bytes. It opens p without following a
// symlink and without blocking (a FIFO), and refuses anything but a
// regular file with a single link: a pod's hard link may name a file
// outside that root could read.
func ReadFile(p Path, max int64) ([]byte, error) {
	fd, err := open(p.Root, p.Rel, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), p.String())
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: p.String(), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 1 {
		return nil, &os.PathError{Op: "read", Path: p.String(), Err: ErrNotRegular}
	}
	if st.Size > max {
		return nil, &os.PathError{Op: "read", Path: p.String(), Err: fmt.Errorf("%d bytes, more than %d", st.Size, max)}
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err == nil && int64(len(b)) > max {
		err = fmt.Errorf("more than %d bytes", max)
	}
	if err != nil {
		return nil, &os.PathError{Op: "read", Path: p.String(), Err: err}
	}
	return b, nil
}

// WriteFile replaces p atomically with data: a new temporary file beside
// it (O_EXCL, never an existing file or a symlink) gets group gid (-1
// keeps the directory's) and perm through its fd, then is renamed over p.
// Whatever p was (a planted symlink or hard link) is replaced, never
// written through. No fsync: callers' files live no longer than a sandbox.
func WriteFile(p Path, data []byte, gid int, perm fs.FileMode) error {
	dir, base, err := parent(p)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	// A leading dot keeps the temporary file out of globs of the real names.
	tmp := "." + base + ".tmp" + hex.EncodeToString(rnd[:])
	fd, err := unix.Openat2(dir, tmp, &unix.OpenHow{
		Flags: unix.O_CREAT | unix.O_EXCL | unix.O_WRONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC, Mode: 0o600, Resolve: resolveFlags,
	})
	if err != nil {
		return &os.PathError{Op: "create", Path: filepath.Join(p.Root, filepath.Dir(p.Rel), tmp), Err: err}
	}
	f := os.NewFile(uintptr(fd), tmp)
	err = errors.Join(setAccess(fd, gid, perm), writeAll(f, data), f.Close())
	if err == nil {
		err = unix.Renameat(dir, tmp, dir, base)
	}
	if err != nil {
		_ = unix.Unlinkat(dir, tmp, 0)
		return &os.PathError{Op: "write", Path: p.String(), Err: err}
	}
	return nil
}

func writeAll(f *os.File, b []byte) error {
	_, err := f.Write(b)
	return err
}

// setAccess sets an open file's group (gid -1 keeps it) and mode.
func setAccess(fd, gid int, perm fs.FileMode) error {
	if gid >= 0 {
		if err := unix.Fchown(fd, -1, gid); err != nil {
			return err
		}
	}
	// After chown, which clears setgid.
	return unix.Fchmod(fd, unixMode(perm))
}

// unixMode is perm's permission, setuid, setgid and sticky bits as
// chmod(2) takes them (fs.FileMode keeps the latter elsewhere).
func unixMode(perm fs.FileMode) uint32 {
	m := uint32(perm.Perm())
	if perm&fs.ModeSetuid != 0 {
		m |= unix.S_ISUID
	}
	if perm&fs.ModeSetgid != 0 {
		m |= unix.S_ISGID
	}
	if perm&fs.ModeSticky != 0 {
		m |= unix.S_ISVTX
	}
	return m
}

// SetDirAccess gives the directory p group gid (-1 keeps it) and mode perm
// (fs.ModeSetgid included). p is opened as a directory beneath its root
// without following a symlink, and changed through that fd.
func SetDirAccess(p Path, gid int, perm fs.FileMode) error {
	fd, err := open(p.Root, p.Rel, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := setAccess(fd, gid, perm); err != nil {
		return &os.PathError{Op: "chmod", Path: p.String(), Err: err}
	}
	return nil
}

// IsDir reports whether p is a directory, reached without following a
// symlink.
func IsDir(p Path) bool {
	fd, err := open(p.Root, p.Rel, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}
