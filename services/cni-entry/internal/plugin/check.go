package plugin

import (
	"context"
	"slices"
	"strings"

	current "github.com/containernetworking/cni/pkg/types/100"

	"usrsp.dev/contracts"
	"usrsp.dev/services/cni-entry/internal/poddata"
)

// check is CNI CHECK: IPAM's check, the adapter's check of the attachment,
// then prevResult and the pod data against what the configuration
// expects. A difference is CodeMismatch (101); an attachment the adapter
// does not know is code 3.
func (p *Plugin) check(inv *invocation) error {
	conf, key := inv.conf, inv.key
	prev := conf.Result
	if prev == nil {
		return contracts.Errorf(contracts.CodeInvalidConfig, "prevResult is required for CHECK")
	}
	paths, sock, access, err := inv.podPaths()
	if err != nil {
		return err
	}

	if conf.IPAM.Type != "" {
		ctx, cancel := context.WithTimeout(context.Background(), IPAMTimeout)
		err := p.IPAM.Check(ctx, conf.IPAM.Type, inv.args.StdinData, inv.ipamArgs(key))
		cancel()
		if err != nil {
			return err
		}
	}

	hostSocket := sock.Reported
	resp, err := call(p, inv, contracts.OpCheck, func(a Adapter, ctx context.Context, e contracts.Engine) (*contracts.CheckResponse, error) {
		return a.Check(ctx, e, &contracts.CheckRequest{
			Key: key, Network: conf.Name, Interface: hostInterface(conf, key, sock, ipConfigs(prev), access),
		})
	})
	if err != nil {
		return err
	}
	if resp.Attachment.SocketPath != "" {
		hostSocket = resp.Attachment.SocketPath
	}

	if err := inv.checkPrevResult(prev, hostSocket); err != nil {
		return err
	}
	if err := inv.checkPodData(paths, prev); err != nil {
		return err
	}
	if conf.Veth() { // the netdev itself, as a conformance suite looks at it
		return inv.veth().Verify(prev)
	}
	return nil
}

// checkPrevResult compares prevResult with what ADD returns.
func (inv *invocation) checkPrevResult(prev *current.Result, hostSocket string) error {
	conf, args := inv.conf, inv.args
	idx := slices.IndexFunc(prev.Interfaces, func(i *current.Interface) bool {
		return i.Name == args.IfName && i.Sandbox == args.Netns
	})
	if idx < 0 {
		return mismatch("prevResult has no interface %q in sandbox %q", args.IfName, args.Netns)
	}
	iface := prev.Interfaces[idx]
	if iface.SocketPath != "" && iface.SocketPath != hostSocket {
		return mismatch("prevResult interface %q has socketPath %s, expected %s", iface.Name, iface.SocketPath, hostSocket)
	}
	if iface.Mtu != 0 && iface.Mtu != conf.MTU {
		return mismatch("prevResult interface %q has mtu %d, expected %d", iface.Name, iface.Mtu, conf.MTU)
	}
	want := contracts.ContainerMAC(inv.key, conf.Container.MAC)
	switch {
	case iface.Mac == "" && conf.Container.MAC == "":
		// ADD of a version that reported a MAC only when container.mac was set
	case !strings.EqualFold(iface.Mac, want):
		return mismatch("prevResult interface %q has mac %q, expected %q", iface.Name, iface.Mac, want)
	}
	if conf.IPAM.Type != "" && len(prev.IPs) == 0 {
		return mismatch("prevResult has no IPs although ipam.type %s is set", conf.IPAM.Type)
	}
	for _, ip := range prev.IPs {
		if ip.Interface != nil && *ip.Interface != idx {
			return mismatch("prevResult IP %s belongs to interface %d, not %q", ip.Address.String(), *ip.Interface, iface.Name)
		}
	}
	return nil
}

// checkPodData compares the pod's data file with the configuration and
// prevResult.
func (inv *invocation) checkPodData(paths poddata.Paths, prev *current.Result) error {
	data, err := poddata.ReadPodData(paths, inv.key.IfName)
	if err != nil {
		return mismatch("pod data of %s: %v", inv.key, err)
	}
	want := podSocketPath(inv.conf)
	switch {
	case data.ContainerID != inv.key.ContainerID:
		return mismatch("pod data file %s belongs to container %s", paths.DataFile(inv.key.IfName), data.ContainerID)
	case data.Network != inv.conf.Name:
		return mismatch("pod data file %s is for network %q", paths.DataFile(inv.key.IfName), data.Network)
	case data.Interface.SocketPath != want:
		return mismatch("pod data socketPath is %s, expected %s", data.Interface.SocketPath, want)
	case data.Interface.MTU != inv.conf.MTU: // e.g. an overlay added or its underlayMtu changed
		return mismatch("pod data mtu is %d, expected %d", data.Interface.MTU, inv.conf.MTU)
	}
	var dataIPs []contracts.IPConfig
	if data.IPAM != nil {
		dataIPs = data.IPAM.IPs
	}
	if !slices.Equal(dataIPs, ipConfigs(prev)) {
		return mismatch("pod data IPs %v differ from prevResult %v", dataIPs, ipConfigs(prev))
	}
	return nil
}

func mismatch(format string, args ...any) error {
	return contracts.Errorf(contracts.CodeMismatch, format, args...)
}
