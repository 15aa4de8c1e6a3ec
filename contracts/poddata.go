package contracts

import (
	"encoding/json"
	"fmt"
)

// PodDataVersion is the schema version of the pod data file.
const PodDataVersion = "usrsp/v1"

// PodDataFileName is the name of the data file cni-entry writes into the
// pod's socket directory for interface ifName.
func PodDataFileName(ifName string) string { return "usrsp-" + ifName + ".json" }

// PodDataGlob matches every pod data file in a pod's socket directory.
const PodDataGlob = "usrsp-*.json"

// PodData is everything the pod needs to consume one interface, with paths
// as the pod sees them. cni-entry writes it; pod-consumer reads it.
type PodData struct {
	Version     string `json:"version"`
	ContainerID string `json:"containerId"`
	IfName      string `json:"ifName"`
	Network     string `json:"network"`
	Pod         PodRef `json:"pod,omitempty"`
	// HostEngine is the vswitch on the host end.
	HostEngine Engine `json:"hostEngine"`
	// Interface is the pod's end: the engine the pod runs (vpp, ovs-dpdk,
	// or empty for "any DPDK/memif app") and the container-side settings.
	Interface ContainerInterface `json:"interface"`
	// IPAM is the IPAM result, when the network has IPAM.
	IPAM *IPAMResult `json:"ipam,omitempty"`
	// DeviceInfo is the same device information Multus publishes.
	DeviceInfo *DeviceInfo `json:"deviceInfo,omitempty"`
}

// ContainerInterface is the pod's end of an attachment.
type ContainerInterface struct {
	Engine     Engine     `json:"engine,omitempty"`
	IfType     IfType     `json:"ifType"`
	NetType    NetType    `json:"netType"`
	SocketPath string     `json:"socketPath"` // as seen inside the pod; "" for veth
	MTU        int        `json:"mtu,omitempty"`
	MAC        string     `json:"mac,omitempty"` // the pod side's MAC (ContainerMAC)
	Memif      *MemifSpec `json:"memif,omitempty"`
	Vhost      *VhostSpec `json:"vhost,omitempty"`
}

// IPAMResult is the part of a CNI IPAM result the pod needs, independent
// of CNI library types so pod-side code needs nothing but contracts.
type IPAMResult struct {
	IPs    []IPConfig `json:"ips,omitempty"`
	Routes []Route    `json:"routes,omitempty"`
	DNS    *DNS       `json:"dns,omitempty"`
}

// DNS mirrors the CNI DNS block.
type DNS struct {
	Nameservers []string `json:"nameservers,omitempty"`
	Domain      string   `json:"domain,omitempty"`
	Search      []string `json:"search,omitempty"`
	Options     []string `json:"options,omitempty"`
}

// DeviceInfoVersion is the k8snetworkplumbingwg device-info spec version.
const DeviceInfoVersion = "1.1.0"

// DeviceInfo follows the k8snetworkplumbingwg device-info spec. It describes
// the pod's side: for vhost-user, mode "client" means the host created the
// socket; for memif, role is the pod application's role.
type DeviceInfo struct {
	Type      string           `json:"type"` // "memif" | "vhost-user"
	Version   string           `json:"version"`
	Memif     *DeviceInfoMemif `json:"memif,omitempty"`
	VhostUser *DeviceInfoVhost `json:"vhost-user,omitempty"`
}

// DeviceInfoMemif is the "memif" block of DeviceInfo. MAC (the pod
// side's) is a usrsp addition to the spec's fields.
type DeviceInfoMemif struct {
	Role string `json:"role"`
	Path string `json:"path"`
	Mode string `json:"mode"`
	MAC  string `json:"mac,omitempty"`
}

// DeviceInfoVhost is the "vhost-user" block of DeviceInfo. MAC (the pod
// side's) is a usrsp addition to the spec's fields.
type DeviceInfoVhost struct {
	Mode string `json:"mode"`
	Path string `json:"path"`
	MAC  string `json:"mac,omitempty"`
}

// NewDeviceInfo describes the pod's side of an interface; nil for veth
// (a kernel netdev: the spec has no device type for it, the CNI result
// describes it).
func NewDeviceInfo(c ContainerInterface) *DeviceInfo {
	switch c.IfType {
	case IfTypeMemif:
		if c.Memif == nil {
			return nil
		}
		return &DeviceInfo{Type: "memif", Version: DeviceInfoVersion,
			Memif: &DeviceInfoMemif{Role: c.Memif.Role, Path: c.SocketPath, Mode: c.Memif.Mode, MAC: c.MAC}}
	case IfTypeVhostUser:
		if c.Vhost == nil {
			return nil
		}
		return &DeviceInfo{Type: "vhost-user", Version: DeviceInfoVersion,
			VhostUser: &DeviceInfoVhost{Mode: c.Vhost.Mode, Path: c.SocketPath, MAC: c.MAC}}
	}
	return nil
}

// DecodePodData parses and checks a pod data file.
func DecodePodData(b []byte) (*PodData, error) {
	var d PodData
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, Errorf(CodeDecode, "pod data: %v", err)
	}
	if d.Version != PodDataVersion {
		return nil, Errorf(CodeDecode, "pod data: version %q, want %q", d.Version, PodDataVersion)
	}
	if err := checkKey(AttachmentKey{ContainerID: d.ContainerID, IfName: d.IfName}); err != nil {
		return nil, fmt.Errorf("pod data: %w", err)
	}
	if err := checkContainerInterface(d.Interface); err != nil {
		return nil, fmt.Errorf("pod data: %w", err)
	}
	return &d, nil
}

func checkContainerInterface(c ContainerInterface) error {
	switch {
	case c.IfType == IfTypeVeth && c.SocketPath != "":
		return Errorf(CodeDecode, "interface.socketPath must be empty for ifType veth (a kernel netdev has no socket)")
	case c.IfType != IfTypeVeth && c.SocketPath == "":
		return Errorf(CodeDecode, "interface.socketPath is empty")
	}
	return checkIfSpecs(c.IfType, c.Memif, c.Vhost)
}
