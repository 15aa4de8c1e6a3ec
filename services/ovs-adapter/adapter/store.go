package adapter

import (
	"fmt"
	"slices"
	"strings"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/adapterkit/recordstore"
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

// Store is the directory of records (libs/adapterkit/recordstore).
type Store = recordstore.Store[Record]

// OpenStore opens the records in dir. Records of older adapters, named
// after the port (usp….json), are renamed to recordstore's names.
func OpenStore(dir string) (*Store, error) {
	return recordstore.Open(dir, func(r Record) contracts.AttachmentKey { return r.Attachment.Key })
}

// checkRecord checks what a loaded record names: a port name of its key,
// OVS's socket in the run dir, a socket path beneath the roots, and port
// options that are the adapter's own and name no other path (no option a
// tampered state file adds, e.g. another dpdk-devargs device, reaches
// vswitchd). It checks only what touches files, so records of older
// versions still load. Actions re-confine the socket path when they use
// it (podSocket).
func (a *Adapter) checkRecord(r Record) error {
	k := r.Attachment.Key
	bad := func(what string) error {
		return contracts.Errorf(contracts.CodeInvalidConfig, "record of attachment %s: %s; ignoring it (reconcile removes its port)", k, what)
	}
	if err := a.checkKey(k); err != nil {
		return bad(err.Error())
	}
	if !slices.Contains(portNames(k), r.Port.Name) {
		return bad("port " + r.Port.Name + " is not the attachment's")
	}
	sock := r.Attachment.SocketPath
	if r.OVSSocket != "" && (r.OVSSocket != a.ovsSocketPath(r.Port.Name) || r.Port.Type != ovs.TypeVhostUser) {
		return bad("OVS socket " + r.OVSSocket + " is not its port's in the OVS run dir")
	}
	if sock != "" && sock != r.OVSSocket {
		if _, err := a.cfg.Roots.Resolve(socketField, sock); err != nil {
			return bad(err.Error())
		}
	}
	if !slices.Contains([]string{ovs.TypeVhostUser, ovs.TypeVhostUserClient, ovs.TypeDPDK, ovs.TypeSystem}, r.Port.Type) {
		return bad("port type " + r.Port.Type + " is not one the adapter makes")
	}
	for opt, v := range r.Port.Options {
		switch {
		case opt == "n_rxq":
		case opt == "vhost-server-path" && r.Port.Type == ovs.TypeVhostUserClient && v == sock:
		case opt == "dpdk-devargs" && r.Port.Type == ovs.TypeDPDK && memifDevargs(v, sock):
		default:
			return bad(fmt.Sprintf("options:%s=%q is not what the adapter sets for its socket path", opt, v))
		}
	}
	return nil
}

// memifDevargs reports whether d is net_memif devargs as memifArgs makes
// them, with sock as the socket.
func memifDevargs(d, sock string) bool {
	if _, ok := memifIndex(ovs.PortSpec{Options: map[string]string{"dpdk-devargs": d}}); !ok {
		return false
	}
	kvs := strings.Split(d, ",")[1:]
	for _, kv := range kvs {
		switch k, v, _ := strings.Cut(kv, "="); k {
		case "role", "id", "rsize", "bsize", "secret", "mac":
		case "socket":
			if v != sock || sock == "" {
				return false
			}
		case "socket-abstract":
			if v != "no" {
				return false
			}
		default:
			return false
		}
	}
	return slices.Contains(kvs, "socket="+sock) && slices.Contains(kvs, "socket-abstract=no")
}
