package adapter

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"usrsp.dev/contracts"
)

// removeStaleSocket removes the unix socket at path if nobody listens on
// it (left by a vswitchd that died). A listened-on socket is a conflict;
// anything that is not a socket is never touched.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return contracts.Errorf(contracts.CodeIO, "socket %s: %v", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return contracts.Errorf(contracts.CodeConflict, "%s exists and is not a socket; not removing it", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if errors.Is(err, syscall.EPROTOTYPE) { // memif sockets are SOCK_SEQPACKET
		c, err = net.DialTimeout("unixpacket", path, time.Second)
	}
	if err == nil {
		_ = c.Close()
		return contracts.Errorf(contracts.CodeConflict, "socket %s is in use by another process", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return contracts.Errorf(contracts.CodeIO, "probe socket %s: %v", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return contracts.Errorf(contracts.CodeIO, "remove stale socket %s: %v", path, err)
	}
	return nil
}

// exposeSocket makes OVS's dpdkvhostuser socket reachable at podPath: a
// hard link (connect(2) on a link reaches the same socket), or a bind
// mount when the pod directory is on another file system. An existing
// link to an older socket (OVS restarted) is replaced.
func exposeSocket(ovsPath, podPath, group string) error {
	src, err := os.Stat(ovsPath)
	if err != nil {
		return contracts.Errorf(contracts.CodeVswitch, "OVS did not create vhost-user socket %s: %v", ovsPath, err)
	}
	if dst, err := os.Stat(podPath); err == nil {
		if os.SameFile(src, dst) {
			return nil
		}
		if err := unexposeSocket(podPath); err != nil {
			return err
		}
	}
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return contracts.Errorf(contracts.CodeInvalidConfig, "interface.vhost.group %q: %v", group, err)
		}
		gid, _ := strconv.Atoi(g.Gid)
		if err := errors.Join(os.Chown(ovsPath, -1, gid), os.Chmod(ovsPath, 0o660)); err != nil {
			return contracts.Errorf(contracts.CodeIO, "give socket %s to group %s: %v", ovsPath, group, err)
		}
	}
	err = os.Link(ovsPath, podPath)
	if errors.Is(err, syscall.EXDEV) {
		err = bindMount(ovsPath, podPath)
	}
	if err != nil {
		return contracts.Errorf(contracts.CodeIO, "expose vhost-user socket %s at %s: %v", ovsPath, podPath, err)
	}
	return nil
}

func bindMount(src, dst string) error {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_ = f.Close()
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		_ = os.Remove(dst)
		return err
	}
	return nil
}

// unexposeSocket removes what exposeSocket made (missing is fine).
func unexposeSocket(podPath string) error {
	_ = unix.Unmount(podPath, unix.MNT_DETACH) // EINVAL when it is a link, not a mount
	if err := os.Remove(podPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return contracts.Errorf(contracts.CodeIO, "remove vhost-user socket link %s: %v", podPath, err)
	}
	return nil
}

// socketExposed reports whether podPath is (a link to) the socket at ovsPath.
func socketExposed(ovsPath, podPath string) bool {
	src, err1 := os.Stat(ovsPath)
	dst, err2 := os.Stat(podPath)
	return err1 == nil && err2 == nil && os.SameFile(src, dst)
}
