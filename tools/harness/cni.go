package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// CNIVersion is the version of the network configs (GC needs 1.1.0).
const CNIVersion = "1.1.0"

// Network is a CNI network list with one `type: userspace` plugin.
type Network struct {
	Name string
	List *libcni.NetworkConfigList
}

// VhostUserNetwork is an ovs-dpdk vhost-user network on bridge (OVS
// dpdkvhostuserclient; the pod's app serves the socket).
func (h *Harness) VhostUserNetwork(name, bridge, subnet string) (*Network, error) {
	return h.Network(name, subnet, map[string]any{
		"engine": "ovs-dpdk", "iftype": "vhostuser", "netType": "bridge",
		"vhost": map[string]any{"mode": "client"}, "bridge": map[string]any{"bridgeName": bridge},
	})
}

// MemifNetwork is an ovs-dpdk memif network on bridge (OVS is the memif
// server through DPDK net_memif; the pod is the client).
func (h *Harness) MemifNetwork(name, bridge, subnet string) (*Network, error) {
	return h.Network(name, subnet, map[string]any{
		"engine": "ovs-dpdk", "iftype": "memif", "netType": "bridge",
		"memif": map[string]any{"role": "master", "mode": "ethernet"}, "bridge": map[string]any{"bridgeName": bridge},
	})
}

// VPPMemifNetwork is the old Userspace CNI README's vpp-memif-ping network
// on bridge domain bridgeName (a number): memif master in the host VPP's
// bridge, slave in the pod's VPP used as an L3 interface, default route.
func (h *Harness) VPPMemifNetwork(name, bridgeName, subnet string) (*Network, error) {
	return h.NetworkJSON(fmt.Sprintf(`{"type":"userspace","name":%q,`+
		`"host":{"engine":"vpp","iftype":"memif","netType":"bridge","memif":{"role":"master","mode":"ethernet"},"bridge":{"bridgeName":%q}},`+
		`"container":{"engine":"vpp","iftype":"memif","netType":"interface","memif":{"role":"slave","mode":"ethernet"}},`+
		`"ipam":{"type":"host-local","subnet":%q,"routes":[{"dst":"0.0.0.0/0"}]}}`, name, bridgeName, subnet))
}

// VPPMemifL3Network is a VPP memif network with netType interface: the host
// VPP routes the pods' addresses (IPAM gateway on an adapter loopback).
func (h *Harness) VPPMemifL3Network(name, subnet string) (*Network, error) {
	return h.NetworkJSON(fmt.Sprintf(`{"type":"userspace","name":%q,`+
		`"host":{"engine":"vpp","iftype":"memif","netType":"interface","memif":{"role":"master","mode":"ethernet"}},`+
		`"container":{"engine":"vpp","iftype":"memif","netType":"interface","memif":{"role":"slave","mode":"ethernet"}},`+
		`"ipam":{"type":"host-local","subnet":%q,"routes":[{"dst":"0.0.0.0/0"}]}}`, name, subnet))
}

// Network is a network named name with the given `host` block and
// host-local IPAM on subnet, everything else pointing into the harness's
// directory and NATS.
func (h *Harness) Network(name, subnet string, host map[string]any) (*Network, error) {
	return h.NetworkFrom(map[string]any{
		"type": "userspace", "name": name, "host": host,
		"ipam": map[string]any{"type": "host-local", "subnet": subnet},
	})
}

// NetworkJSON is NetworkFrom of a userspace plugin config as users write
// it (e.g. one copied from a NetworkAttachmentDefinition).
func (h *Harness) NetworkJSON(conf string) (*Network, error) {
	var plugin map[string]any
	if err := json.Unmarshal([]byte(conf), &plugin); err != nil {
		return nil, fmt.Errorf("network config: %w", err)
	}
	return h.NetworkFrom(plugin)
}

// NetworkFrom makes a network list of one userspace plugin config, adding
// what points it at this node: node name, NATS, the harness's shared, link,
// pod mount and log directories, the device-info capability and
// host-local's dataDir. Its "name" names the network.
func (h *Harness) NetworkFrom(plugin map[string]any) (*Network, error) {
	name, _ := plugin["name"].(string)
	if name == "" {
		return nil, errors.New("network config without a name")
	}
	p := map[string]any{}
	for k, v := range plugin {
		if k != "name" && k != "cniVersion" {
			p[k] = v
		}
	}
	for k, v := range map[string]any{
		"capabilities": map[string]bool{"CNIDeviceInfoFile": true},
		"nodeName":     h.cfg.Node,
		"sharedDir":    h.SharedDir(),
		"linkDir":      h.LinkDir(),
		"podMountPath": h.PodMountPath(),
		"logFile":      filepath.Join(h.LogDir(), "userspace.log"),
		"logLevel":     "debug",
		"nats":         map[string]any{"url": h.NATSURL(), "timeout": "2s"},
	} {
		p[k] = v
	}
	if ipam, ok := p["ipam"].(map[string]any); ok && ipam["type"] == "host-local" {
		ipam["dataDir"] = h.IPAMDir()
	}
	b, err := json.Marshal(map[string]any{"cniVersion": CNIVersion, "name": name, "plugins": []any{p}})
	if err != nil {
		return nil, err
	}
	list, err := libcni.NetworkConfFromBytes(b)
	if err != nil {
		return nil, err
	}
	return &Network{Name: name, List: list}, nil
}

// cni is a libcni runtime as Multus uses it; plugin stderr (their logs) is
// appended to log/plugins.stderr.
func (h *Harness) cni() (*libcni.CNIConfig, func(), error) {
	f, err := os.OpenFile(filepath.Join(h.LogDir(), "plugins.stderr"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	exec := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: f}, PluginDecoder: version.PluginDecoder{}}
	return libcni.NewCNIConfigWithCacheDir([]string{h.Bin}, h.CacheDir(), exec), func() { _ = f.Close() }, nil
}

// RuntimeConf is what kubelet and Multus pass for the pod's interface ifName.
func (p *Pod) RuntimeConf(ifName string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: p.ContainerID, NetNS: p.Netns(), IfName: ifName,
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", p.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", p.ContainerID}, {"K8S_POD_UID", p.UID}},
		CapabilityArgs: map[string]any{"CNIDeviceInfoFile": p.DeviceInfoFile(ifName)},
	}
}

// DeviceInfoFile is where Multus would have cni-entry write device info.
func (p *Pod) DeviceInfoFile(ifName string) string {
	return filepath.Join(p.h.Dir, "devinfo", p.ContainerID[:12]+"-"+ifName+"-device.json")
}

// Add runs CNI ADD of net for the pod's interface ifName.
func (p *Pod) Add(ctx context.Context, net *Network, ifName string) (*current.Result, error) {
	var res types.Result
	err := p.runCNI("ADD", net, ifName, func(c *libcni.CNIConfig, rt *libcni.RuntimeConf) (err error) {
		res, err = c.AddNetworkList(ctx, net.List, rt)
		return err
	})
	if err != nil {
		return nil, err
	}
	return current.NewResultFromResult(res)
}

// Check runs CNI CHECK (with the cached ADD result as prevResult).
func (p *Pod) Check(ctx context.Context, net *Network, ifName string) error {
	return p.runCNI("CHECK", net, ifName, func(c *libcni.CNIConfig, rt *libcni.RuntimeConf) error {
		return c.CheckNetworkList(ctx, net.List, rt)
	})
}

// Del runs CNI DEL. The error keeps the plugin's *types.Error (see Code).
func (p *Pod) Del(ctx context.Context, net *Network, ifName string) error {
	return p.runCNI("DEL", net, ifName, func(c *libcni.CNIConfig, rt *libcni.RuntimeConf) error {
		return c.DelNetworkList(ctx, net.List, rt)
	})
}

// runCNI runs one verb of net for the pod's interface ifName through the
// harness's libcni runtime, naming verb, network, pod and interface in its
// error.
func (p *Pod) runCNI(verb string, net *Network, ifName string, fn func(*libcni.CNIConfig, *libcni.RuntimeConf) error) error {
	c, done, err := p.h.cni()
	if err != nil {
		return err
	}
	defer done()
	if err := fn(c, p.RuntimeConf(ifName)); err != nil {
		return fmt.Errorf("CNI %s %s %s/%s: %w", verb, net.Name, p.Name, ifName, err)
	}
	return nil
}

// GC runs CNI GC of net with the given valid attachments.
func (h *Harness) GC(ctx context.Context, net *Network, valid []types.GCAttachment) error {
	c, done, err := h.cni()
	if err != nil {
		return err
	}
	defer done()
	if err := c.GCNetworkList(ctx, net.List, &libcni.GCArgs{ValidAttachments: valid}); err != nil {
		return fmt.Errorf("CNI GC %s: %w", net.Name, err)
	}
	return nil
}

// Code is the CNI error code of err (0 if err carries none).
func Code(err error) uint {
	var e *types.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}
