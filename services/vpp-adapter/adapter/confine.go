package adapter

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/confine"
)

// Every file the adapter touches, and every path it hands to VPP, is
// confined with libs/confine before VPP is asked anything: a request's (or
// a record's) socket path must be a file directly in a pod directory
// (confine.Roots.PodSocket), a memif netns a network namespace
// (confine.Netns), and the adapter's own actions on those files (removing
// a master's listener socket, giving a socket the pod's group and mode)
// act beneath the root's fd without following a symlink.

const (
	socketField = "interface.socketPath"
	netnsField  = "interface.memif.netns"
)

// confinePlan checks the paths of p against the roots and the file system
// and fills in p.sock. A path VPP creates a socket at (memif master,
// vhost-user server) must not be a symlink or anything but a socket: VPP
// 25.10's vhost-user server unlinks whatever is there (a pod's hard link
// of a file outside would lose a link), its memif refuses it. A path VPP
// connects to (memif slave, vhost-user client) must not be a symlink.
func (a *Adapter) confinePlan(p *plan, h contracts.HostInterface) error {
	switch {
	case p.kind == kindMemif && h.Memif != nil && h.Memif.Netns != "":
		return confine.Netns(netnsField, h.Memif.Netns)
	case p.kind == kindMemif || p.kind == kindVhost:
	default:
		return nil // af_packet: no path
	}
	sock, err := a.cfg.Roots.PodSocket(socketField, h.SocketPath)
	if err != nil {
		return err
	}
	st, err := confine.CheckSocketPath(socketField, h.SocketPath, sock)
	if err != nil {
		return err
	}
	if st != nil && p.serves() && st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return contracts.Errorf(contracts.CodeConflict, "%s %q exists and is not a socket; VPP would replace it", socketField, h.SocketPath)
	}
	p.sock, p.confined = sock, true
	return nil
}

// serves reports whether VPP creates (listens on) p's socket file.
func (p *plan) serves() bool {
	return p.kind == kindMemif && p.memif.Master || p.kind == kindVhost && p.vhost.Server
}

// socketWait bounds the wait for the socket VPP creates: it makes it
// while it handles the create call, so it is normally there at once.
const socketWait = time.Second

// giveSocket gives the socket VPP created for p the pod's group and mode
// (podAccess), through libs/confine: after an attach and after every
// replay, since a restarted VPP makes it anew, root's. Sockets the pod
// serves (memif slave, vhost-user client) are the pod's own.
func giveSocket(p *plan, acc *contracts.PodAccess) error {
	if acc == nil || !p.confined || !p.serves() {
		return nil
	}
	return confine.GiveSocket(p.sock, *acc, socketWait, "VPP")
}

// removeListenerSocket removes the socket file a master memif made VPP
// create: VPP closes its listener but leaves the file, which kept the
// pod's directory from being removed on DEL (seen on VPP 25.10). The path
// is confined again (a record's path that no longer confines is left
// alone) and only a socket is removed; a failure is logged, not returned:
// the VPP side is clean.
func (a *Adapter) removeListenerSocket(rec *Record) {
	if rec.Attachment.Interface.Memif != nil && rec.Attachment.Interface.Memif.Netns != "" {
		return // abstract: no file
	}
	sock, err := a.cfg.Roots.PodSocket(socketField, rec.MemifSocketFile)
	if err == nil {
		err = confine.RemoveSocket(sock)
	}
	if err != nil {
		a.keyLog(rec.Attachment.Key).Warn().Err(err).Str("socket", rec.MemifSocketFile).Msg("not removing the memif socket file")
	}
}

// checkRecord checks what a record loaded from the state dir names, by
// words: its tag is its key's, it plans, its socket paths are the plan's
// and beneath the roots. A record that fails (a tampered state file) is
// treated as absent: no file of it is touched and VPP is not handed its
// paths; the replay removes its interface (its tag is then unwanted) and
// a detach or GC drops the file. Actions confine the paths again
// (confinePlan, removeListenerSocket).
func (a *Adapter) checkRecord(r *Record) error {
	k := r.Attachment.Key
	bad := func(format string, args ...any) error {
		return invalid("record of attachment %s: %s; ignoring it", k, fmt.Sprintf(format, args...))
	}
	if r.Tag != Tag(k) {
		return bad("tag %q is not the key's", r.Tag)
	}
	p, err := planAttach(&contracts.AttachRequest{Key: k, Network: r.Attachment.Network, Interface: r.Attachment.Interface}, r.Table != 0)
	if err != nil {
		return bad("%v", err)
	}
	// Older records may lack either; what they hold must be the plan's.
	if r.Attachment.SocketPath != "" && r.Attachment.SocketPath != p.podSocket || r.MemifSocketFile != "" && r.MemifSocketFile != p.memifSocket {
		return bad("socket %q (memif %q) is not its interface's", r.Attachment.SocketPath, r.MemifSocketFile)
	}
	switch h := r.Attachment.Interface; {
	case p.kind == kindAfPacket:
	case p.kind == kindMemif && h.Memif.Netns != "":
		if err := confine.Netns(netnsField, h.Memif.Netns); err != nil {
			return bad("%v", err)
		}
	default:
		if _, err := a.cfg.Roots.PodSocket(socketField, h.SocketPath); err != nil {
			return bad("%v", err)
		}
	}
	return nil
}

// record is k's record if it holds up (checkRecord); one that does not is
// logged and treated as absent.
func (a *Adapter) record(k contracts.AttachmentKey) (*Record, bool, error) {
	rec, found, err := a.store.Get(k)
	if err != nil || !found {
		return nil, false, err
	}
	if err := a.checkRecord(rec); err != nil {
		a.keyLog(k).Warn().Err(err).Msg("record left out")
		return nil, false, nil
	}
	return rec, true, nil
}

// records are the records that hold up (checkRecord) and, apart, those
// that do not, with why.
func (a *Adapter) records() (good []*Record, bad map[*Record]error, err error) {
	all, err := a.store.List()
	if err != nil {
		return nil, nil, err
	}
	for _, r := range all {
		if err := a.checkRecord(r); err != nil {
			if bad == nil {
				bad = map[*Record]error{}
			}
			bad[r] = err
			continue
		}
		good = append(good, r)
	}
	return good, bad, nil
}
