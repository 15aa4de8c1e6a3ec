// Package config parses and validates the userspace CNI network
// configuration. LoadNetConf is pure (no I/O) so it can be fuzzed; every
// rejection is a *types.Error whose message names the offending field.
package config

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"usrsp.dev/contracts"
)

// Defaults. They are documented in the README's NetConf reference.
const (
	DefaultSharedDir    = "/var/lib/cni/usrspcni" // the old plugin's default
	DefaultKubeletDir   = "/var/lib/kubelet"
	DefaultLinkDir      = "/run/usrsp/l"
	DefaultPodMountPath = "/var/run/usrsp"
	DefaultNATSURL      = "nats://127.0.0.1:4222"
	DefaultNATSTimeout  = 3 * time.Second
	DefaultOVSBridge    = "br0" // the old plugin's OVS default
	DefaultQueues       = 1
	DefaultRingSize     = 1024
	DefaultBufferSize   = 2048
	// DefaultUnderlayMTU is the node network's MTU an overlay assumes
	// (overlay.underlayMtu): Ethernet's.
	DefaultUnderlayMTU = 1500
)

// Memif socket types (host.memif.socketType).
const (
	// SocketTypeFile is a unix socket file in the pod's directory.
	SocketTypeFile = "file"
	// SocketTypeAbstract is a Linux abstract socket that VPP creates inside
	// the pod's network namespace: no host directory, no link, no sun_path
	// problem. The pod sees it as "@<socketfile>".
	SocketTypeAbstract = "abstract"
)

// Memif is a memif block of a side.
type Memif struct {
	Role       string `json:"role,omitempty"` // master|slave (server|client accepted)
	Mode       string `json:"mode,omitempty"` // ethernet|ip|inject-punt
	SocketFile string `json:"socketfile,omitempty"`
	SocketType string `json:"socketType,omitempty"` // file|abstract
	ID         uint32 `json:"id,omitempty"`
	Queues     int    `json:"queues,omitempty"`
	RingSize   int    `json:"ringSize,omitempty"`
	BufferSize int    `json:"bufferSize,omitempty"`
	Secret     string `json:"secret,omitempty"`
}

// Vhost is a vhost block of a side.
type Vhost struct {
	Mode       string `json:"mode,omitempty"` // client|server
	Group      string `json:"group,omitempty"`
	SocketFile string `json:"socketfile,omitempty"`
	Queues     int    `json:"queues,omitempty"`
}

// Bridge is a bridge block of a side. Old configs carry the VPP bridge
// domain as a number or a numeric string in bridgeId, or as a numeric
// bridgeName; BridgeID is that raw value, ID the parsed one.
type Bridge struct {
	BridgeName string          `json:"bridgeName,omitempty"`
	BridgeID   json.RawMessage `json:"bridgeId,omitempty"`
	VlanID     int             `json:"vlanId,omitempty"`

	// ID is the VPP bridge domain id, set by LoadNetConf for engine vpp.
	ID uint32 `json:"-"`
}

// Side is the host or the container block.
type Side struct {
	Engine  string  `json:"engine,omitempty"`
	IfType  string  `json:"iftype,omitempty"`
	NetType string  `json:"netType,omitempty"`
	Memif   *Memif  `json:"memif,omitempty"`
	Vhost   *Vhost  `json:"vhost,omitempty"`
	Bridge  *Bridge `json:"bridge,omitempty"`
	MAC     string  `json:"mac,omitempty"`
}

// Overlay is the overlay block: the network spans nodes over VXLAN. The
// numbers are ints so that an out-of-range value is an error naming its
// field rather than a JSON decode error.
type Overlay struct {
	Type string `json:"type,omitempty"` // vxlan
	VNI  int    `json:"vni,omitempty"`  // 1..contracts.MaxVNI
	Port int    `json:"port,omitempty"` // UDP; default contracts.DefaultVXLANPort
	// UnderlayMTU is the MTU of the node network the tunnels cross; the
	// pod MTU defaults to it minus contracts.VXLANOverhead.
	UnderlayMTU int `json:"underlayMtu,omitempty"`
}

// NATS says how cni-entry reaches the adapters.
type NATS struct {
	URL             string `json:"url,omitempty"`
	CredentialsFile string `json:"credentialsFile,omitempty"`
	Timeout         string `json:"timeout,omitempty"` // Go duration
	// TLS names PEM files on the host (nats.tls.caFile, certFile, keyFile).
	TLS contracts.TLSFiles `json:"tls"`

	// TimeoutDuration is Timeout parsed.
	TimeoutDuration time.Duration `json:"-"`
}

// RuntimeConfig holds the capability arguments cni-entry understands.
type RuntimeConfig struct {
	CNIDeviceInfoFile string `json:"CNIDeviceInfoFile,omitempty"`
}

// K8sArgs are the Kubernetes CNI_ARGS.
type K8sArgs struct {
	types.CommonArgs
	K8S_POD_NAMESPACE          types.UnmarshallableString //nolint:revive // CNI_ARGS key
	K8S_POD_NAME               types.UnmarshallableString //nolint:revive
	K8S_POD_UID                types.UnmarshallableString //nolint:revive
	K8S_POD_INFRA_CONTAINER_ID types.UnmarshallableString //nolint:revive
}

// NetConf is the userspace plugin configuration.
type NetConf struct {
	types.NetConf

	Host      Side `json:"host"`
	Container Side `json:"container"`

	SharedDir     string        `json:"sharedDir,omitempty"`
	PodVolume     string        `json:"podVolume,omitempty"`
	KubeletDir    string        `json:"kubeletDir,omitempty"`
	LinkDir       string        `json:"linkDir,omitempty"`
	PodMountPath  string        `json:"podMountPath,omitempty"`
	DeviceInfoDir string        `json:"deviceInfoDir,omitempty"`
	LogFile       string        `json:"logFile,omitempty"`
	LogLevel      string        `json:"logLevel,omitempty"`
	NATS          NATS          `json:"nats"`
	NodeName      string        `json:"nodeName,omitempty"`
	MTU           int           `json:"mtu,omitempty"`
	Overlay       *Overlay      `json:"overlay,omitempty"`
	PodAccess     *PodAccess    `json:"podAccess,omitempty"`
	RuntimeConfig RuntimeConfig `json:"runtimeConfig"`

	// Pod is the pod from CNI_ARGS (empty outside Kubernetes).
	Pod contracts.PodRef `json:"-"`
	// Result is prevResult converted to the current version (nil if absent).
	Result *current.Result `json:"-"`
}

// Env is the per-invocation input LoadNetConf needs besides stdin.
type Env struct {
	IfName string // CNI_IFNAME; empty for GC and STATUS
	Args   string // CNI_ARGS
}

// LoadNetConf parses stdin and env, applies defaults, derives the container
// side from the host side and validates everything. It does no I/O.
func LoadNetConf(stdin []byte, env Env) (*NetConf, error) {
	conf := &NetConf{}
	if err := json.Unmarshal(stdin, conf); err != nil {
		return nil, errorf(contracts.CodeDecode, "network config: %v", err)
	}
	if err := version.ParsePrevResult(&conf.NetConf); err != nil {
		return nil, errorf(contracts.CodeDecode, "prevResult: %v", err)
	}
	if conf.PrevResult != nil {
		r, err := current.NewResultFromResult(conf.PrevResult)
		if err != nil {
			return nil, errorf(contracts.CodeDecode, "prevResult: %v", err)
		}
		conf.Result = r
	}
	if err := loadArgs(conf, env.Args); err != nil {
		return nil, err
	}
	if err := normalize(conf, env.IfName); err != nil {
		return nil, err
	}
	return conf, nil
}

func loadArgs(conf *NetConf, args string) error {
	k := K8sArgs{}
	k.IgnoreUnknown = true
	if args != "" {
		if err := types.LoadArgs(args, &k); err != nil {
			return errorf(contracts.CodeInvalidEnv, "CNI_ARGS: %v", err)
		}
	}
	conf.Pod = contracts.PodRef{
		Namespace: string(k.K8S_POD_NAMESPACE),
		Name:      string(k.K8S_POD_NAME),
		UID:       string(k.K8S_POD_UID),
	}
	if conf.Pod.UID != "" && !validPodUID(conf.Pod.UID) {
		return errorf(contracts.CodeInvalidEnv, "CNI_ARGS K8S_POD_UID %q is not a pod UID", conf.Pod.UID)
	}
	return nil
}

// Engine is the host engine as a contracts value.
func (c *NetConf) Engine() contracts.Engine { return contracts.Engine(c.Host.Engine) }

// SocketFile is the socket file name of the attachment (host and container
// share one socket).
func (c *NetConf) SocketFile() string {
	if c.Host.Memif != nil {
		return c.Host.Memif.SocketFile
	}
	if c.Host.Vhost != nil {
		return c.Host.Vhost.SocketFile
	}
	return ""
}

// AbstractSocket reports whether the memif socket is an abstract socket
// in the pod's network namespace rather than a file.
func (c *NetConf) AbstractSocket() bool {
	return c.Host.Memif != nil && c.Host.Memif.SocketType == SocketTypeAbstract
}

// Veth reports whether the pod gets a kernel netdev (iftype veth).
func (c *NetConf) Veth() bool { return c.Host.IfType == string(contracts.IfTypeVeth) }

// ContractsOverlay is the overlay as adapters are sent it; nil without one.
func (c *NetConf) ContractsOverlay() *contracts.Overlay {
	if c.Overlay == nil {
		return nil
	}
	o := c.Overlay
	return &contracts.Overlay{Type: o.Type, VNI: uint32(o.VNI), Port: uint16(o.Port)}
}

// Timeout is the NATS timeout (dial and each request).
func (c *NetConf) Timeout() time.Duration { return c.NATS.TimeoutDuration }

// UsesPodVolume reports whether sockets live in a pod emptyDir volume.
func (c *NetConf) UsesPodVolume() bool { return c.PodVolume != "" }

func errorf(code contracts.Code, format string, args ...any) *types.Error {
	return types.NewError(code.CNICode(), fmt.Sprintf(format, args...), "")
}
