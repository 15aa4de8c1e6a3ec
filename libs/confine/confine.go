// Package confine lets a root daemon act on paths that come from requests
// without ever touching anything outside the directories it was configured
// with.
//
// A request path is first checked by words (Roots.Resolve: absolute, no NUL,
// not too long, beneath one root after cleaning) and then every action
// resolves it again in the kernel, beneath an fd of that root, with
// openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS): a
// directory or file a pod swapped for a symlink, or a ".." that the kernel
// would resolve differently from the words, fails with ELOOP or EXDEV
// instead of leading out. The last component is acted on through its
// parent's fd (unlinkat, linkat, mkdirat) or through an O_PATH fd of
// itself (fchownat, fchmodat2 with AT_EMPTY_PATH), so it is never followed
// either.
package confine

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"usrsp.dev/contracts"
)

// MaxPath is the longest path accepted (the kernel's PATH_MAX less its NUL).
const MaxPath = unix.PathMax - 1

// resolveFlags keep every lookup beneath its root and off every symlink.
const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// Roots are the directories a daemon may touch. Each is the operator's
// configuration, so it is resolved once (symlinks in the root itself are
// the operator's choice, e.g. /var/run -> /run); a request path may name a
// root by its configured or its resolved name.
type Roots struct {
	dirs []root
}

type root struct {
	name, real string // as configured (clean, absolute) and resolved
	role       role
}

type role int

const (
	roleOwn     role = iota // the daemon's own (state dir, vswitch run dir)
	roleShared              // <shared>/<pod>/<socket>
	roleLink                // <link>/<hex> -> a pod directory
	roleKubelet             // <pods>/<uid>/volumes/kubernetes.io~empty-dir/<name>/<socket>
)

// NewRoots resolves dirs, the daemon's own directories; each must be an
// existing directory. Pod sockets are never accepted in them (see Layout).
func NewRoots(dirs ...string) (*Roots, error) {
	rs := &Roots{}
	for _, d := range dirs {
		if err := rs.add(d, roleOwn); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

func (rs *Roots) add(d string, r role) error {
	if d == "" {
		return nil
	}
	abs, err := filepath.Abs(d)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return fmt.Errorf("confine: root %s: %w", d, err)
	}
	if fi, err := os.Stat(real); err != nil || !fi.IsDir() {
		return fmt.Errorf("confine: root %s is not a directory", d)
	}
	rs.dirs = append(rs.dirs, root{name: abs, real: real, role: r})
	return nil
}

// Layout is a node's pod directories (what cni-entry makes, see its
// poddata package) and the daemon's own directories.
type Layout struct {
	SharedDir      string   // per-pod directories <SharedDir>/<pod>; created if missing
	LinkDir        string   // <LinkDir>/<hex>: symlinks to a pod directory; created if missing
	KubeletPodsDir string   // emptyDirs <KubeletPodsDir>/<uid>/volumes/kubernetes.io~empty-dir/<name>; skipped if missing
	Own            []string // the daemon's own: state dir, vswitch run dir (must exist)
}

// Roots creates the missing shared and link directories (root only, 0750,
// as cni-entry would) and resolves the roots.
func (l Layout) Roots() (*Roots, error) {
	rs, err := NewRoots(l.Own...)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{l.SharedDir, l.LinkDir} {
		if d != "" {
			if err := os.MkdirAll(d, 0o750); err != nil {
				return nil, fmt.Errorf("confine: %w", err)
			}
		}
	}
	if err := errors.Join(rs.add(l.SharedDir, roleShared), rs.add(l.LinkDir, roleLink)); err != nil {
		return nil, err
	}
	if _, err := os.Stat(l.KubeletPodsDir); err == nil {
		if err := rs.add(l.KubeletPodsDir, roleKubelet); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

// Dirs are the resolved roots.
func (rs *Roots) Dirs() []string {
	out := make([]string, 0, len(rs.dirs))
	for _, r := range rs.dirs {
		out = append(out, r.real)
	}
	return out
}

// Path is a request path confined beneath one of the roots.
type Path struct {
	Root string // the root it is beneath (resolved)
	Rel  string // clean, relative to Root, never "." or starting with ".."
}

// String is the absolute path.
func (p Path) String() string { return filepath.Join(p.Root, p.Rel) }

// Resolve checks a request's path by words and returns it confined. field
// names the request field for the error (CNI code 7, invalid config), e.g.
// "interface.socketPath".
func (rs *Roots) Resolve(field, p string) (Path, error) {
	r, rel, err := rs.match(field, p)
	if err != nil {
		return Path{}, err
	}
	return Path{Root: r.real, Rel: rel}, nil
}

// words checks what needs no file system: not empty, no NUL, not too long,
// absolute. It returns the cleaned path.
func words(field, p string) (string, error) {
	switch {
	case p == "":
		return "", invalid(field, p, "is empty")
	case strings.IndexByte(p, 0) >= 0:
		return "", invalid(field, p, "contains a NUL byte")
	case len(p) > MaxPath:
		return "", invalid(field, p, fmt.Sprintf("is %d bytes, longer than %d", len(p), MaxPath))
	case !filepath.IsAbs(p):
		return "", invalid(field, p, "is not absolute")
	}
	return filepath.Clean(p), nil
}

// match finds the root p is beneath, by words.
func (rs *Roots) match(field, p string) (root, string, error) {
	clean, err := words(field, p)
	if err != nil {
		return root{}, "", err
	}
	best, bestRel := -1, ""
	for i, r := range rs.dirs {
		for _, dir := range []string{r.real, r.name} {
			rel, err := filepath.Rel(dir, clean)
			if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
				continue
			}
			if best < 0 || len(rel) < len(bestRel) { // the innermost root (a link dir inside the shared dir)
				best, bestRel = i, rel
			}
		}
	}
	if best >= 0 {
		return rs.dirs[best], bestRel, nil
	}
	return root{}, "", invalid(field, p, "is outside the directories this adapter may touch ("+strings.Join(rs.Dirs(), ", ")+")")
}

// PodSocket confines a request's socket path: it must be a file directly in
// a pod directory, <SharedDir>/<pod>/<file>, a kubelet emptyDir
// <KubeletPodsDir>/<uid>/volumes/kubernetes.io~empty-dir/<name>/<file>, or
// <LinkDir>/<hex>/<file> where <hex> is a symlink to one of those (the one
// symlink followed: it is read, its target checked by words, and the
// result confined beneath the shared or kubelet root). Every directory on
// the way is then one a pod cannot rename or replace (it sees only the
// inside of its own directory), so a vswitch handed the path looks up the
// same directory again.
func (rs *Roots) PodSocket(field, p string) (Path, error) {
	r, rel, err := rs.match(field, p)
	if err != nil {
		return Path{}, err
	}
	dir, file := filepath.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	switch r.role {
	case roleShared, roleKubelet:
		if podDir(r.role, dir) {
			return Path{Root: r.real, Rel: rel}, nil
		}
	case roleLink:
		if dir != "" && !strings.Contains(dir, "/") {
			target, err := rs.follow(field, p, r, dir)
			if err != nil {
				return Path{}, err
			}
			return Path{Root: target.Root, Rel: filepath.Join(target.Rel, file)}, nil
		}
	}
	return Path{}, invalid(field, p, "is not a file directly in a pod directory (<sharedDir>/<pod>/<file>, <linkDir>/<link>/<file> or <kubelet pods>/<uid>/volumes/kubernetes.io~empty-dir/<volume>/<file>)")
}

// podDir reports whether rel (beneath a shared or kubelet root) is a pod
// directory.
func podDir(r role, rel string) bool {
	parts := strings.Split(rel, "/")
	switch r {
	case roleShared:
		return rel != "" && len(parts) == 1
	case roleKubelet:
		return len(parts) == 4 && parts[1] == "volumes" && parts[2] == "kubernetes.io~empty-dir"
	}
	return false
}

// follow reads the link <r>/<name> (never a path through it) and confines
// its target as a pod directory.
func (rs *Roots) follow(field, p string, r root, name string) (Path, error) {
	fd, err := open(r.real, "", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return Path{}, err
	}
	defer unix.Close(fd)
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, name, buf)
	if err != nil {
		return Path{}, invalid(field, p, fmt.Sprintf("names link %s, which cannot be read: %v", name, err))
	}
	target := string(buf[:n])
	tr, rel, err := rs.match(field+" (link target)", target)
	if err != nil || filepath.Clean(target) != target || !podDir(tr.role, rel) {
		return Path{}, invalid(field, p, fmt.Sprintf("names link %s whose target %q is not a pod directory under the shared dir or a kubelet emptyDir", name, target))
	}
	return Path{Root: tr.real, Rel: rel}, nil
}

func invalid(field, p, why string) error {
	if len(p) > 128 {
		p = p[:128] + "…"
	}
	return contracts.Errorf(contracts.CodeInvalidConfig, "%s %q %s", field, p, why)
}

// open opens rel beneath root without following any symlink.
func open(root, rel string, flags uint64) (int, error) { return openMode(root, rel, flags, 0) }

// openMode is open with the mode of a created file.
func openMode(root, rel string, flags, mode uint64) (int, error) {
	rootFD, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rootFD)
	if rel == "" || rel == "." {
		return unix.Dup(rootFD)
	}
	fd, err := unix.Openat2(rootFD, rel, &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Mode: mode, Resolve: resolveFlags})
	if err != nil {
		return -1, &os.PathError{Op: "openat2", Path: filepath.Join(root, rel), Err: err}
	}
	return fd, nil
}

// parent opens p's directory (O_PATH) and returns its fd and p's last
// component, which the caller acts on with an *at call that does not follow it.
func parent(p Path) (fd int, base string, err error) {
	fd, err = open(p.Root, filepath.Dir(p.Rel), unix.O_PATH|unix.O_DIRECTORY)
	return fd, filepath.Base(p.Rel), err
}

// Lstat describes p itself (a symlink is described, not followed).
func Lstat(p Path) (unix.Stat_t, error) {
	var st unix.Stat_t
	dir, base, err := parent(p)
	if err != nil {
		return st, err
	}
	defer unix.Close(dir)
	if err := unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return st, &os.PathError{Op: "lstat", Path: p.String(), Err: err}
	}
	return st, nil
}

// Remove unlinks p (a file, socket or symlink; a symlink is removed, its
// target is not touched). A missing p is not an error: removal is idempotent.
func Remove(p Path) error { return unlink(p, 0, "unlink") }

// unlink is unlinkat of p's last component in its parent; a missing p is
// not an error.
func unlink(p Path, flags int, op string) error {
	dir, base, err := parent(p)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	if err := unix.Unlinkat(dir, base, flags); err != nil && !errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: op, Path: p.String(), Err: err}
	}
	return nil
}

// RemoveSocket unlinks p only if it is a unix socket: a request that names
// a regular file where a socket belongs must not delete it.
func RemoveSocket(p Path) error {
	st, err := Lstat(p)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return &os.PathError{Op: "remove socket", Path: p.String(), Err: ErrNotSocket}
	}
	return Remove(p)
}

// RemoveDir removes the empty directory p; a missing p is not an error.
func RemoveDir(p Path) error { return unlink(p, unix.AT_REMOVEDIR, "rmdir") }

// MkdirAll creates p and its missing parents beneath the root with mode
// perm, never following a symlink on the way.
func MkdirAll(p Path, perm os.FileMode) error {
	dir, err := open(p.Root, "", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	for _, name := range strings.Split(p.Rel, "/") {
		if err := unix.Mkdirat(dir, name, uint32(perm.Perm())); err != nil && !errors.Is(err, unix.EEXIST) {
			unix.Close(dir)
			return &os.PathError{Op: "mkdir", Path: p.String(), Err: err}
		}
		next, err := unix.Openat2(dir, name, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: resolveFlags})
		unix.Close(dir)
		if err != nil {
			return &os.PathError{Op: "mkdir", Path: p.String(), Err: err}
		}
		dir = next
	}
	unix.Close(dir)
	return nil
}

// Link makes newp a hard link of oldp. Neither is followed if it is a
// symlink (linkat without AT_SYMLINK_FOLLOW).
func Link(oldp, newp Path) error {
	od, obase, err := parent(oldp)
	if err != nil {
		return err
	}
	defer unix.Close(od)
	nd, nbase, err := parent(newp)
	if err != nil {
		return err
	}
	defer unix.Close(nd)
	if err := unix.Linkat(od, obase, nd, nbase, 0); err != nil {
		return &os.LinkError{Op: "link", Old: oldp.String(), New: newp.String(), Err: err}
	}
	return nil
}

// Chown sets p's owner and group (-1 keeps one) and, if mode is not 0, its
// permission bits. p must not be a symlink, and a regular file with more
// than one link is refused: it may be a pod's hard link to a file outside.
func Chown(p Path, uid, gid int, mode os.FileMode) error {
	fd, err := open(p.Root, p.Rel, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "stat", Path: p.String(), Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return &os.PathError{Op: "chown", Path: p.String(), Err: unix.ELOOP}
	case unix.S_IFREG:
		if st.Nlink > 1 {
			return &os.PathError{Op: "chown", Path: p.String(), Err: errors.New("file has other hard links")}
		}
	}
	if uid >= 0 || gid >= 0 {
		if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
			return &os.PathError{Op: "chown", Path: p.String(), Err: err}
		}
	}
	if mode != 0 {
		err := unix.Fchmodat(fd, "", unixMode(mode), unix.AT_EMPTY_PATH)
		if errors.Is(err, unix.EOPNOTSUPP) { // no fchmodat2 before Linux 6.6: the fd's magic link is the same inode
			err = unix.Chmod(fmt.Sprintf("/proc/self/fd/%d", fd), unixMode(mode))
		}
		if err != nil {
			return &os.PathError{Op: "chmod", Path: p.String(), Err: err}
		}
	}
	return nil
}

// ProcPath is a path of the kernel's magic /proc/self/fd link of p, opened
// O_PATH beneath its root: what mount(2) or a vswitch can be handed so that
// no path component is looked up again. Close the returned file when done.
func ProcPath(p Path) (path string, f *os.File, err error) {
	fd, err := open(p.Root, p.Rel, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return "", nil, err
	}
	f = os.NewFile(uintptr(fd), p.String())
	return fmt.Sprintf("/proc/self/fd/%d", fd), f, nil
}

// CreateFile creates p as an empty regular file (O_EXCL: never an existing
// file, never through a symlink), e.g. the target of a bind mount.
func CreateFile(p Path, perm os.FileMode) error {
	fd, err := openMode(p.Root, p.Rel, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW, uint64(perm.Perm()))
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// BindMount bind-mounts src onto dst (an existing file). Both are opened
// beneath their roots and handed to mount(2) as /proc/self/fd paths, so no
// path component is looked up again.
func BindMount(src, dst Path) error {
	sp, sf, err := ProcPath(src)
	if err != nil {
		return err
	}
	defer sf.Close()
	dp, df, err := ProcPath(dst)
	if err != nil {
		return err
	}
	defer df.Close()
	if err := unix.Mount(sp, dp, "", unix.MS_BIND, ""); err != nil {
		return &os.LinkError{Op: "bind mount", Old: src.String(), New: dst.String(), Err: err}
	}
	return nil
}

// Unmount detaches the mount at p and reports whether there was one (false
// for a plain file or a missing p).
func Unmount(p Path) (bool, error) {
	pp, f, err := ProcPath(p)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	switch err := unix.Unmount(pp, unix.MNT_DETACH); {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EINVAL): // not a mount point
		return false, nil
	default:
		return false, &os.PathError{Op: "umount", Path: p.String(), Err: err}
	}
}

// ErrNotSocket is returned by SocketInUse for anything but a unix socket.
var ErrNotSocket = errors.New("not a socket")

// SocketInUse reports whether a process listens on the unix socket p. It
// connects through p's O_PATH fd, so the path is not looked up again and a
// symlink is never followed; stream and seqpacket (memif) sockets both
// answer.
func SocketInUse(p Path) (bool, error) {
	pp, f, err := ProcPath(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false, &os.PathError{Op: "stat", Path: p.String(), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return false, &os.PathError{Op: "probe socket", Path: p.String(), Err: ErrNotSocket}
	}
	c, err := net.DialTimeout("unix", pp, time.Second)
	if errors.Is(err, unix.EPROTOTYPE) {
		c, err = net.DialTimeout("unixpacket", pp, time.Second)
	}
	switch {
	case err == nil:
		_ = c.Close()
		return true, nil
	case errors.Is(err, unix.ECONNREFUSED):
		return false, nil
	default:
		return false, &os.PathError{Op: "probe socket", Path: p.String(), Err: err}
	}
}

// CheckSocketPath refuses a request's socket path p (shown as the request
// named it, in field) that leads through a symlink or is one: a pod may
// plant either in its directory, and a vswitch handed the path would
// follow it. It describes what is at p; nil when nothing is there yet.
func CheckSocketPath(field, shown string, p Path) (*unix.Stat_t, error) {
	st, err := Lstat(p)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, nil
	case errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV):
		return nil, contracts.Errorf(contracts.CodeInvalidConfig, "%s %q leads through a symlink", field, shown)
	case err != nil:
		return nil, contracts.Errorf(contracts.CodeIO, "%s %q: %v", field, shown, err)
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return nil, contracts.Errorf(contracts.CodeInvalidConfig, "%s %q is a symlink", field, shown)
	}
	return &st, nil
}

// GiveSocket gives the unix socket a vswitch (maker, named in errors)
// creates at p the pod's group and mode (acc), waiting up to wait for it
// to appear: a vswitch has no event for it. Anything but a socket there
// is a conflict, never changed.
func GiveSocket(p Path, acc contracts.PodAccess, wait time.Duration, maker string) error {
	deadline := time.Now().Add(wait)
	for {
		st, err := Lstat(p)
		switch {
		case err == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK:
			if err := Chown(p, -1, acc.GID, acc.SocketMode()); err != nil {
				return contracts.Errorf(contracts.CodeIO, "give socket %s to %s: %v", p, acc, err)
			}
			return nil
		case err == nil:
			return contracts.Errorf(contracts.CodeConflict, "%s is not a socket; not giving it to the pod", p)
		case !errors.Is(err, unix.ENOENT):
			return contracts.Errorf(contracts.CodeIO, "socket %s: %v", p, err)
		case time.Now().After(deadline):
			return contracts.Errorf(contracts.CodeVswitch, "%s did not create socket %s", maker, p)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// nsfsMagic is the file system type of network namespace files.
const nsfsMagic = 0x6e736673

// Netns checks a request's network namespace path: a name under
// /var/run/netns (/run/netns), beneath it without a symlink, or
// /proc/<pid>/ns/net; either way the file must be a namespace (nsfs), so a
// vswitch told to make sockets "in" it cannot be pointed at another file.
// CNI code 7 naming field otherwise.
func Netns(field, p string) error {
	clean, err := words(field, p)
	if err != nil {
		return err
	}
	var fd int
	switch dir, name := filepath.Split(clean); {
	case clean != p:
		return invalid(field, p, "is not a clean path")
	case (dir == "/var/run/netns/" || dir == "/run/netns/") && name != "":
		fd, err = open("/run/netns", name, unix.O_PATH|unix.O_NOFOLLOW)
	case procNetns(clean):
		fd, err = unix.Open(clean, unix.O_PATH|unix.O_CLOEXEC, 0) // the magic link is the point
	default:
		return invalid(field, p, "is not a network namespace under /var/run/netns or /proc/<pid>/ns/net")
	}
	if err != nil {
		return invalid(field, p, fmt.Sprintf("cannot be opened: %v", err))
	}
	defer unix.Close(fd)
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil || sfs.Type != nsfsMagic {
		return invalid(field, p, "is not a network namespace (nsfs)")
	}
	return nil
}

// procNetns reports whether p is /proc/<pid>/ns/net.
func procNetns(p string) bool {
	parts := strings.Split(p, "/") // "", "proc", pid, "ns", "net"
	if len(parts) != 5 || parts[1] != "proc" || parts[3] != "ns" || parts[4] != "net" || parts[2] == "" {
		return false
	}
	for _, c := range parts[2] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
