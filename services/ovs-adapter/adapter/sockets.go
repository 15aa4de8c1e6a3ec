package adapter

import (
	"errors"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/confine"
)

// Every file the adapter touches is a confine.Path: a request's socket
// path is confined to a pod directory (confine.Roots.PodSocket) before
// anything is done, OVS's own sockets to its run dir, and every unlink,
// link, chown, chmod, mount and umount acts beneath the root's fd without
// following a symlink (see libs/confine).

// socketField names the socket path in errors.
const socketField = "interface.socketPath"

// podSocket confines a request's or record's socket path.
func (a *Adapter) podSocket(p string) (confine.Path, error) {
	return a.cfg.Roots.PodSocket(socketField, p)
}

// ovsSocketPath is where vswitchd serves port's dpdkvhostuser socket.
func (a *Adapter) ovsSocketPath(port string) string { return filepath.Join(a.cfg.OVSRunDir, port) }

// ovsSocket confines it (the run dir is one of the roots).
func (a *Adapter) ovsSocket(port string) (confine.Path, error) {
	return a.cfg.Roots.Resolve("ovs-rundir", a.ovsSocketPath(port))
}

// removeStaleSocket removes the unix socket at p if nobody listens on it
// (left by a vswitchd that died). A listened-on socket is a conflict;
// anything that is not a socket is never touched.
func removeStaleSocket(p confine.Path) error {
	inUse, err := confine.SocketInUse(p)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, confine.ErrNotSocket):
		return contracts.Errorf(contracts.CodeConflict, "%s exists and is not a socket; not removing it", p)
	case errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV):
		return contracts.Errorf(contracts.CodeInvalidConfig, "socket %s leads through a symlink; not removing it", p)
	case err != nil:
		return contracts.Errorf(contracts.CodeIO, "probe socket %s: %v", p, err)
	case inUse:
		return contracts.Errorf(contracts.CodeConflict, "socket %s is in use by another process", p)
	}
	if err := confine.RemoveSocket(p); err != nil {
		return contracts.Errorf(contracts.CodeIO, "remove stale socket %s: %v", p, err)
	}
	return nil
}

// isInUse reports whether err is removeStaleSocket's "in use" conflict.
func isInUse(err error) bool {
	return contracts.CodeOf(err) == contracts.CodeConflict && strings.Contains(err.Error(), "in use")
}

// exposeSocket makes OVS's dpdkvhostuser socket reachable at pod: a hard
// link (connect(2) on a link reaches the same socket), or a bind mount
// when the pod directory is on another file system. An existing link to
// an older socket (OVS restarted) is replaced; anything else there that is
// not a socket is refused, never removed. The pod's group and mode are
// the socket's own (giveSockets), which the link shares.
func exposeSocket(ovsSock, pod confine.Path) error {
	src, err := confine.Lstat(ovsSock)
	if err != nil || src.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return contracts.Errorf(contracts.CodeVswitch, "OVS did not create vhost-user socket %s: %v", ovsSock, cmpErr(err, "not a socket"))
	}
	dst, err := confine.CheckSocketPath(socketField, pod.String(), pod)
	if err != nil {
		return err
	}
	if dst != nil {
		if sameFile(src, *dst) {
			return nil
		}
		if err := unexposeSocket(pod); err != nil {
			return err
		}
	}
	err = confine.Link(ovsSock, pod)
	if errors.Is(err, unix.EXDEV) {
		err = bindMount(ovsSock, pod)
	}
	if err != nil {
		return contracts.Errorf(contracts.CodeIO, "expose vhost-user socket %s at %s: %v", ovsSock, pod, err)
	}
	return nil
}

// socketAccess is the group and mode the sockets of h get: its podAccess,
// or for a request of an older cni-entry the deprecated vhost group name,
// looked up here as before (mode 0660); nil leaves them as vswitchd made
// them.
func socketAccess(h contracts.HostInterface) (*contracts.PodAccess, error) {
	if h.PodAccess != nil || h.Vhost == nil || h.Vhost.Group == "" {
		return h.PodAccess, nil
	}
	g, err := user.LookupGroup(h.Vhost.Group)
	if err != nil {
		return nil, contracts.Errorf(contracts.CodeInvalidConfig, "interface.vhost.group %q: %v", h.Vhost.Group, err)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return nil, contracts.Errorf(contracts.CodeInvalidConfig, "interface.vhost.group %q has gid %q", h.Vhost.Group, g.Gid)
	}
	return &contracts.PodAccess{GID: gid, Mode: 0o660}, nil
}

// socketWait bounds how long attach waits for vswitchd's socket: DPDK
// creates it while vswitchd applies the port, so it is normally there
// when AddPorts returns.
const socketWait = 2 * time.Second

// giveSockets gives the sockets vswitchd serves for rec (memif server,
// dpdkvhostuser) the pod's group and mode (socketAccess), through
// libs/confine: on attach, and on every reconcile, since a restarted
// vswitchd makes them anew, root's. It waits up to wait for a socket to
// appear.
func (a *Adapter) giveSockets(rec Record, wait time.Duration) error {
	acc, err := socketAccess(rec.Requested)
	if err != nil || acc == nil {
		return err
	}
	for _, p := range a.vswitchdSockets(rec) {
		if err := confine.GiveSocket(p, *acc, wait, "ovs-vswitchd"); err != nil {
			return err
		}
	}
	return nil
}

func bindMount(src, dst confine.Path) error {
	if err := confine.CreateFile(dst, 0o600); err != nil {
		return err
	}
	if err := confine.BindMount(src, dst); err != nil {
		_ = confine.Remove(dst)
		return err
	}
	return nil
}

// unexposeSocket removes what exposeSocket made (missing is fine): the
// bind mount and its placeholder, or the hard link. Anything else is
// refused (a pod's file, maybe a hard link to a file outside).
func unexposeSocket(pod confine.Path) error {
	mounted, err := confine.Unmount(pod)
	if err == nil && mounted {
		err = confine.Remove(pod)
	} else if err == nil {
		err = confine.RemoveSocket(pod)
	}
	if errors.Is(err, confine.ErrNotSocket) {
		return contracts.Errorf(contracts.CodeConflict, "%s exists and is not a socket; not removing it", pod)
	}
	if err != nil {
		return contracts.Errorf(contracts.CodeIO, "remove vhost-user socket link %s: %v", pod, err)
	}
	return nil
}

// socketExposed reports whether pod is (a link to) the socket ovsSock.
func socketExposed(ovsSock, pod confine.Path) bool {
	src, err1 := confine.Lstat(ovsSock)
	dst, err2 := confine.Lstat(pod)
	return err1 == nil && err2 == nil && sameFile(src, dst)
}

func sameFile(a, b unix.Stat_t) bool { return a.Dev == b.Dev && a.Ino == b.Ino }

func cmpErr(err error, otherwise string) string {
	if err != nil {
		return err.Error()
	}
	return otherwise
}
