package plugin

import (
	"path/filepath"

	current "github.com/containernetworking/cni/pkg/types/100"

	"usrsp.dev/contracts"
	"usrsp.dev/services/cni-entry/internal/config"
	"usrsp.dev/services/cni-entry/internal/poddata"
	"usrsp.dev/services/cni-entry/internal/sandbox"
)

// socket says where an attachment's socket is.
type socket struct {
	// HostPath is the host socket path the adapter is given; "" for an
	// abstract socket, which has no file.
	HostPath string
	// Netns is the pod's network namespace the adapter creates an abstract
	// socket in; "" for a file.
	Netns string
	// Reported is the result's socketPath unless the adapter reports
	// another: HostPath, or "@<name>" for an abstract socket.
	Reported string
}

// podPaths resolves the pod's directory, the socket this invocation's
// interface uses and who in the pod may use it (ADD and CHECK).
func (inv *invocation) podPaths() (poddata.Paths, socket, *contracts.PodAccess, error) {
	paths, err := poddata.Resolve(inv.layout(), inv.key, inv.conf.Pod.UID, dirSocketFile(inv.conf))
	if err != nil {
		return paths, socket{}, nil, err
	}
	sock, err := socketOf(inv.conf, paths, inv.args.Netns)
	if err != nil {
		return paths, sock, nil, err
	}
	access, err := config.ResolvePodAccess(inv.conf.PodAccess)
	return paths, sock, access, err
}

// socketOf places c's socket for the attachment at paths in the pod's
// network namespace netns (CNI_NETNS). ADD and CHECK both use it, so the
// adapter is asked for the same interface both times.
func socketOf(c *config.NetConf, paths poddata.Paths, netns string) (socket, error) {
	if c.Veth() {
		return socket{}, nil // a kernel netdev has no socket
	}
	if !c.AbstractSocket() {
		p := paths.SocketPath(c.SocketFile())
		return socket{HostPath: p, Reported: p}, nil
	}
	if err := config.CheckAbstractNetns(netns); err != nil {
		return socket{}, err
	}
	return socket{Netns: netns, Reported: podSocketPath(c)}, nil
}

// dirSocketFile is the socket file in the pod's directory, "" for an
// abstract socket (so poddata makes no link for it).
func dirSocketFile(c *config.NetConf) string {
	if c.AbstractSocket() {
		return ""
	}
	return c.SocketFile()
}

// hostInterface is what the adapter is asked to create (and later to
// confirm: ADD and CHECK must build the same value). access is podAccess
// resolved on this host: the adapter gives it to the sockets it makes.
func hostInterface(c *config.NetConf, key contracts.AttachmentKey, sock socket, ips []contracts.IPConfig, access *contracts.PodAccess) contracts.HostInterface {
	h := c.Host
	hi := contracts.HostInterface{
		IfType: contracts.IfType(h.IfType), NetType: contracts.NetType(h.NetType),
		SocketPath: sock.HostPath, MTU: c.MTU, MAC: h.MAC, PodAccess: access, Overlay: c.ContractsOverlay(),
	}
	if c.Veth() {
		hi.Veth = &contracts.VethSpec{HostIfName: contracts.HostVethName(key)}
	}
	if m := h.Memif; m != nil {
		hi.Memif = &contracts.MemifSpec{Role: m.Role, Mode: m.Mode, ID: m.ID, Secret: m.Secret,
			Queues: m.Queues, RingSize: m.RingSize, BufferSize: m.BufferSize, SocketFile: m.SocketFile, Netns: sock.Netns}
	}
	if v := h.Vhost; v != nil {
		hi.Vhost = &contracts.VhostSpec{Mode: v.Mode, Queues: v.Queues, SocketFile: v.SocketFile} // Group: in PodAccess
	}
	switch {
	case h.Bridge == nil:
	case c.Engine() == contracts.EngineOVSDPDK:
		hi.Bridge = &contracts.BridgeSpec{Name: h.Bridge.BridgeName, VLAN: h.Bridge.VlanID}
	case hi.NetType == contracts.NetTypeBridge:
		hi.Bridge = &contracts.BridgeSpec{ID: h.Bridge.ID, VLAN: h.Bridge.VlanID}
	}
	if hi.NetType == contracts.NetTypeInterface {
		hi.IPs = ips
	}
	return hi
}

// containerInterface is the pod's end, with the socket path as the pod
// sees it and its MAC (container.mac, else derived from the key).
func containerInterface(c *config.NetConf, key contracts.AttachmentKey) contracts.ContainerInterface {
	s := c.Container
	ci := contracts.ContainerInterface{
		Engine: contracts.Engine(s.Engine), IfType: contracts.IfType(s.IfType), NetType: contracts.NetType(s.NetType),
		SocketPath: podSocketPath(c), MTU: c.MTU, MAC: contracts.ContainerMAC(key, s.MAC),
	}
	if m := s.Memif; m != nil {
		ci.Memif = &contracts.MemifSpec{Role: m.Role, Mode: m.Mode, ID: m.ID, Secret: m.Secret,
			Queues: m.Queues, RingSize: m.RingSize, BufferSize: m.BufferSize, SocketFile: m.SocketFile}
	}
	if v := s.Vhost; v != nil {
		ci.Vhost = &contracts.VhostSpec{Mode: v.Mode, Queues: v.Queues, Group: v.Group, SocketFile: v.SocketFile}
	}
	return ci
}

// adoptHostQueues makes the pod's memif queue count the one the host side
// really serves: a vswitch may impose its own (OVS-DPDK transmits on one
// queue per PMD thread plus one), and a pod with fewer queues silently
// loses packets.
func adoptHostQueues(ci *contracts.ContainerInterface, made contracts.HostInterface) {
	if ci.Memif != nil && made.Memif != nil && made.Memif.Queues > 0 {
		ci.Memif.Queues = made.Memif.Queues
	}
}

// podSocketPath is the socket path inside the pod: under podMountPath, or
// "@<name>" for an abstract socket (the notation of libmemif, DPDK's
// socket-abstract and the pod-consumer); "" for veth.
func podSocketPath(c *config.NetConf) string {
	if c.Veth() {
		return ""
	}
	if c.AbstractSocket() {
		return "@" + c.SocketFile()
	}
	return filepath.Join(c.PodMountPath, c.SocketFile())
}

// ipamResult is the IPAM part of a CNI result in contracts terms; nil
// when r is nil.
func ipamResult(r *current.Result) *contracts.IPAMResult {
	if r == nil {
		return nil
	}
	out := &contracts.IPAMResult{IPs: ipConfigs(r)}
	for _, rt := range r.Routes {
		route := contracts.Route{Dst: rt.Dst.String()}
		if rt.GW != nil {
			route.GW = rt.GW.String()
		}
		out.Routes = append(out.Routes, route)
	}
	if d := r.DNS; len(d.Nameservers)+len(d.Search)+len(d.Options) > 0 || d.Domain != "" {
		out.DNS = &contracts.DNS{Nameservers: d.Nameservers, Domain: d.Domain, Search: d.Search, Options: d.Options}
	}
	return out
}

// ipConfigs are r's addresses in contracts terms.
func ipConfigs(r *current.Result) []contracts.IPConfig {
	if r == nil {
		return nil
	}
	var out []contracts.IPConfig
	for _, ip := range r.IPs {
		c := contracts.IPConfig{Address: ip.Address.String()}
		if ip.Gateway != nil {
			c.Gateway = ip.Gateway.String()
		}
		out = append(out, c)
	}
	return out
}

// cniResult is the ADD result: the pod's interface (interface 0: its
// name, MAC, MTU, sandbox and, for memif/vhost-user, the host socket path)
// and IPAM's addresses on it, routes and DNS.
func cniResult(c *config.NetConf, key contracts.AttachmentKey, netns, socketPath string, ipam *current.Result) *current.Result {
	r := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{{
			Name: key.IfName, Mac: contracts.ContainerMAC(key, c.Container.MAC), Mtu: c.MTU, Sandbox: netns, SocketPath: socketPath,
		}},
	}
	if ipam != nil {
		for _, ip := range ipam.IPs {
			ip := *ip
			ip.Interface = current.Int(0)
			r.IPs = append(r.IPs, &ip)
		}
		r.Routes = ipam.Routes
		r.DNS = ipam.DNS
	}
	return r
}

// veth is the attachment's veth pair (iftype veth).
func (inv *invocation) veth() sandbox.Veth {
	return sandbox.Veth{Netns: inv.args.Netns, IfName: inv.key.IfName, HostName: contracts.HostVethName(inv.key),
		MAC: contracts.ContainerMAC(inv.key, inv.conf.Container.MAC), MTU: inv.conf.MTU}
}
