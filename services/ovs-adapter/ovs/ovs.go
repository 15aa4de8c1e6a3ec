// Package ovs is the adapter's narrow view of Open vSwitch: add, delete and
// list the ports (and bridges) usrsp owns. The real implementation talks
// OVSDB JSON-RPC directly (one write transaction per batch of ports); tests
// use ovstest.Fake.
package ovs

import (
	"context"
	"maps"
)

// External IDs usrsp writes on the Port and Interface rows it creates, and
// on the Bridge rows it creates (owner only).
const (
	ExtOwner       = "usrsp-owner"        // always OwnerValue
	ExtContainerID = "usrsp-container-id" // AttachmentKey.ContainerID
	ExtIfName      = "usrsp-ifname"       // AttachmentKey.IfName
	ExtNetwork     = "usrsp-network"      // AttachRequest.Network
	OwnerValue     = "ovs-adapter"
	// On the VXLAN ports of overlay networks (with ExtOwner, ExtNetwork):
	ExtRemote = "usrsp-vxlan-remote" // the peer's VTEP address
	ExtPeer   = "usrsp-vxlan-peer"   // the peer's node name
)

// Interface types the adapter creates.
const (
	TypeVhostUserClient = "dpdkvhostuserclient" // OVS connects; the pod app serves the socket
	TypeVhostUser       = "dpdkvhostuser"       // OVS serves the socket in its run dir
	TypeDPDK            = "dpdk"                // net_memif through options:dpdk-devargs
	// TypeSystem is a kernel netdev (the host end of a pod's veth): the
	// netdev datapath reads and writes it through an AF_PACKET socket.
	TypeSystem = "system"
	// TypeVXLAN is a VXLAN tunnel port of an overlay network; the netdev
	// datapath encapsulates in userspace (OVS userspace tunneling).
	TypeVXLAN = "vxlan"
)

// PortSpec is one port with its single interface, as the adapter wants it.
type PortSpec struct {
	Name        string            // Port and Interface name
	Bridge      string            // created (datapath_type=netdev, owned) if missing
	Type        string            // Interface type
	Options     map[string]string // Interface options
	ExternalIDs map[string]string // on Port and Interface; must carry ExtOwner
	Tag         int               // VLAN access tag, 0: none
	MTU         int               // Interface mtu_request, 0: default
	MAC         string            // Interface mac, "": default
	// Protected is the Port's protected column: the NORMAL action never
	// forwards from one protected port to another (split horizon between
	// the VXLAN ports of an overlay network).
	Protected bool
}

// IsTunnel reports whether the spec is one of usrsp's VXLAN ports.
func (s PortSpec) IsTunnel() bool { return s.Owned() && s.ExternalIDs[ExtRemote] != "" }

// Owned reports whether the spec's external_ids mark it as usrsp's.
func (s PortSpec) Owned() bool { return s.ExternalIDs[ExtOwner] == OwnerValue }

// Clone returns a deep copy.
func (s PortSpec) Clone() PortSpec {
	s.Options, s.ExternalIDs = maps.Clone(s.Options), maps.Clone(s.ExternalIDs)
	return s
}

// Port is a port as it is in OVS.
type Port struct {
	PortSpec
	// OFPort is the OpenFlow port number: -1 when vswitchd failed to
	// create the interface, 0 when it has not processed it yet.
	OFPort int
	// Error is the Interface's error column (why vswitchd failed).
	Error string
	// MACInUse is the MAC vswitchd reports for the interface.
	MACInUse string
}

// Broken reports whether vswitchd failed to create the port.
func (p Port) Broken() bool { return p.Error != "" || p.OFPort < 0 }

// Info describes the switch.
type Info struct {
	Version         string // ovs_version
	DPDKInitialized bool
	PMDs            int // PMD threads from other_config:pmd-cpu-mask (1 when unset)
}

// OVS is what the adapter needs from the switch. Errors are *contracts.Error:
// CodeTryAgainLater when OVSDB is unreachable, CodeVswitch naming the port
// or bridge otherwise, CodeConflict for a name held by someone else.
type OVS interface {
	// AddPorts creates the ports, creating missing bridges (marked as
	// usrsp's), in one transaction, then waits until vswitchd has
	// processed them. A port of the same name that usrsp owns is replaced;
	// one it does not own is a conflict. It returns the ports as vswitchd
	// made them; a port vswitchd failed to create is an error naming it,
	// and the ports stay for the caller to inspect or delete.
	AddPorts(ctx context.Context, specs []PortSpec) ([]Port, error)
	// DeletePorts deletes the named ports that usrsp owns (missing ones are
	// fine, unowned ones are left alone) and then every bridge usrsp
	// created that has no port left, in one transaction. It returns the
	// names it deleted.
	DeletePorts(ctx context.Context, names []string) ([]string, error)
	// Ports returns the named ports that exist (owned or not).
	Ports(ctx context.Context, names []string) ([]Port, error)
	// OwnedPorts returns every port whose external_ids mark it as usrsp's.
	OwnedPorts(ctx context.Context) ([]Port, error)
	// Sync waits until vswitchd has applied the current database.
	Sync(ctx context.Context) error
	// Info reads the switch's version and readiness.
	Info(ctx context.Context) (Info, error)
}

// Conn is an OVS connection as the daemon watches it: the adapter's OVS
// plus liveness. *Client is one; ovstest.Fake is one for tests.
type Conn interface {
	OVS
	// Ping checks that OVSDB answers (dialing if needed).
	Ping(ctx context.Context) error
	// Generation grows each time the connection was made again.
	Generation() uint64
	Close() error
}

var _ Conn = (*Client)(nil)
