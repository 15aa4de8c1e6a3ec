package contracts

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// IfType is the kind of userspace interface.
type IfType string

const (
	IfTypeMemif     IfType = "memif"
	IfTypeVhostUser IfType = "vhostuser"
	// IfTypeVeth gives the pod a kernel netdev: cni-entry makes a veth
	// pair, the pod end in CNI_NETNS named CNI_IFNAME, and the adapter
	// plugs the host end (VethSpec.HostIfName) into the vswitch network
	// (OVS "system" port, VPP af_packet). Named after what it is, like
	// memif and vhostuser: a tap would need /dev/vhost-net for VPP.
	IfTypeVeth IfType = "veth"
)

// NetType says what the host side is plugged into.
type NetType string

const (
	NetTypeBridge    NetType = "bridge"    // an L2 bridge (VPP bridge domain, OVS bridge)
	NetTypeInterface NetType = "interface" // L3: the host side gets an address, pod IPs are routed
	NetTypeNone      NetType = "none"      // the interface only, wired by the operator
)

// Memif roles. Userspace CNI configs say master/slave; "server"/"client"
// are accepted as aliases by cni-entry and normalized to these.
const (
	MemifRoleMaster = "master"
	MemifRoleSlave  = "slave"
)

// Memif modes.
const (
	MemifModeEthernet   = "ethernet"
	MemifModeIP         = "ip"
	MemifModeInjectPunt = "inject-punt"
)

// Vhost-user modes: which end creates the socket (the server does).
const (
	VhostModeClient = "client"
	VhostModeServer = "server"
)

// AttachmentKey identifies one attachment everywhere: in adapters' records,
// vswitch tags/external_ids, pod data and logs.
type AttachmentKey struct {
	ContainerID string `json:"containerId"`
	IfName      string `json:"ifName"`
}

func (k AttachmentKey) String() string { return k.ContainerID + "/" + k.IfName }

// ShortID is 12 hex digits of SHA-256("<containerID>/<ifName>"): short
// enough for interface names (IFNAMSIZ), VPP tags and link names, stable
// across re-ADDs and restarts, and the same in every component that names
// something after the attachment.
func (k AttachmentKey) ShortID() string {
	sum := sha256.Sum256([]byte(k.String()))
	return hex.EncodeToString(sum[:6])
}

// PodRef names the Kubernetes pod of an attachment, when known.
type PodRef struct {
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	UID       string `json:"uid,omitempty"`
}

// MemifSpec configures one end of a memif.
type MemifSpec struct {
	Role       string `json:"role"`                 // master | slave
	Mode       string `json:"mode"`                 // ethernet | ip | inject-punt
	ID         uint32 `json:"id"`                   // memif interface id on the socket
	Secret     string `json:"secret,omitempty"`     // optional shared secret
	Queues     int    `json:"queues"`               // rx and tx queue pairs
	RingSize   int    `json:"ringSize"`             // descriptors per ring, a power of two
	BufferSize int    `json:"bufferSize"`           // bytes per buffer
	Netns      string `json:"netns,omitempty"`      // for abstract sockets: the pod's netns path
	SocketFile string `json:"socketFile,omitempty"` // socket file name, without directory
}

// VhostSpec configures one end of a vhost-user interface.
type VhostSpec struct {
	Mode   string `json:"mode"`   // client | server
	Queues int    `json:"queues"` // queue pairs
	// Group is what cni-entry sent before PodAccess (a group name the
	// adapter looked up in its own container). Deprecated: cni-entry now
	// sends HostInterface.PodAccess and leaves Group empty.
	Group      string `json:"group,omitempty"`
	SocketFile string `json:"socketFile,omitempty"`
}

// VethSpec is the host end of a veth pair (iftype veth), made by
// cni-entry; the adapter plugs it in and never deletes the netdev.
type VethSpec struct {
	HostIfName string `json:"hostIfName"` // HostVethName(key)
}

// BridgeSpec says which bridge the host side joins.
type BridgeSpec struct {
	Name string `json:"name,omitempty"` // OVS bridge name
	ID   uint32 `json:"id,omitempty"`   // VPP bridge domain id
	VLAN int    `json:"vlan,omitempty"` // 0: untagged
}

// IPConfig is one address from IPAM.
type IPConfig struct {
	Address string `json:"address"`           // CIDR, e.g. 10.1.1.5/24
	Gateway string `json:"gateway,omitempty"` // plain IP
}

// Route is one route from IPAM.
type Route struct {
	Dst string `json:"dst"`          // CIDR
	GW  string `json:"gw,omitempty"` // plain IP
}

// HostInterface is what an adapter creates on the vswitch for one attachment.
type HostInterface struct {
	IfType     IfType      `json:"ifType"`
	NetType    NetType     `json:"netType"`
	SocketPath string      `json:"socketPath,omitempty"` // absolute host path of the unix socket
	MTU        int         `json:"mtu,omitempty"`
	MAC        string      `json:"mac,omitempty"` // host side MAC, optional
	Memif      *MemifSpec  `json:"memif,omitempty"`
	Vhost      *VhostSpec  `json:"vhost,omitempty"`
	Veth       *VethSpec   `json:"veth,omitempty"`
	Bridge     *BridgeSpec `json:"bridge,omitempty"`
	// IPs are the pod's addresses: an L3 (netType interface) host side routes
	// them to this interface and takes the gateway as its own address.
	IPs []IPConfig `json:"ips,omitempty"`
	// PodAccess, when set, is the group and mode the adapter gives the
	// sockets it (or its vswitch) creates, again whenever the vswitch
	// re-creates them; nil leaves them as created.
	PodAccess *PodAccess `json:"podAccess,omitempty"`
	// Overlay, when set, makes the network span nodes (see Overlay): the
	// adapter tunnels its bridge (or, for netType interface, routes its
	// pod addresses) to every node that announces the same VNI.
	Overlay *Overlay `json:"overlay,omitempty"`
}

// AttachRequest asks an adapter to create (or confirm) an attachment.
// Replaying it is safe: an existing attachment with the same spec is success.
type AttachRequest struct {
	Key       AttachmentKey `json:"key"`
	Network   string        `json:"network"`
	Netns     string        `json:"netns,omitempty"`
	Pod       PodRef        `json:"pod,omitempty"`
	Interface HostInterface `json:"interface"`
}

// Attachment is an adapter's record of what it created.
type Attachment struct {
	Key     AttachmentKey `json:"key"`
	Network string        `json:"network"`
	Engine  Engine        `json:"engine"`
	Pod     PodRef        `json:"pod,omitempty"`
	// Interface is what was made. It can differ from the request where the
	// vswitch imposes a value (OVS-DPDK memif serves one queue per PMD
	// thread plus one); the pod must use these values.
	Interface HostInterface `json:"interface"`
	// HostIfName is the vswitch's name for the host side (OVS port, VPP
	// interface name).
	HostIfName string `json:"hostIfName"`
	// SocketPath is where the socket really is; it differs from the request
	// when the vswitch chooses the path (e.g. OVS dpdkvhostuser).
	SocketPath string    `json:"socketPath,omitempty"`
	HostMAC    string    `json:"hostMac,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
}

// AttachResponse answers AttachRequest.
type AttachResponse struct {
	Attachment Attachment `json:"attachment"`
}

// DetachRequest asks an adapter to remove an attachment. Unknown
// attachments are success (Removed false).
type DetachRequest struct {
	Key     AttachmentKey `json:"key"`
	Network string        `json:"network,omitempty"`
}

// DetachResponse answers DetachRequest.
type DetachResponse struct {
	Removed bool `json:"removed"`
}

// CheckRequest asks whether an attachment exists and still matches the
// interface it was created with. Absent: CodeNotFound; different:
// CodeMismatch.
type CheckRequest struct {
	Key       AttachmentKey `json:"key"`
	Network   string        `json:"network"`
	Interface HostInterface `json:"interface"`
}

// CheckResponse answers CheckRequest.
type CheckResponse struct {
	Attachment Attachment `json:"attachment"`
}

// ListRequest lists an adapter's attachments, of one network or all.
type ListRequest struct {
	Network string `json:"network,omitempty"`
}

// ListResponse answers ListRequest.
type ListResponse struct {
	Attachments []Attachment `json:"attachments"`
}

// GCRequest asks an adapter to remove every attachment of Network that is
// not in Valid (CNI GC semantics).
type GCRequest struct {
	Network string          `json:"network"`
	Valid   []AttachmentKey `json:"valid"`
}

// GCResponse answers GCRequest.
type GCResponse struct {
	Removed []AttachmentKey `json:"removed"`
}

// StatusRequest asks whether an adapter is ready to attach.
type StatusRequest struct{}

// StatusResponse answers StatusRequest. Ready false means the adapter runs
// but its vswitch is not usable (CNI code 50/51 at cni-entry).
type StatusResponse struct {
	Ready       bool   `json:"ready"`
	Engine      Engine `json:"engine"`
	Version     string `json:"version"`
	Vswitch     string `json:"vswitch,omitempty"` // vswitch name and version
	Message     string `json:"message,omitempty"`
	Attachments int    `json:"attachments"`
}
