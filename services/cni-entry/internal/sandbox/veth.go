package sandbox

import (
	"errors"
	"strings"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/ipam"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/safchain/ethtool"
	"github.com/vishvananda/netlink"

	"usrsp.dev/contracts"
)

// Veth is the veth pair of one attachment with iftype veth: the pod end
// IfName in Netns, the host end HostName (contracts.HostVethName) in the
// host's network namespace, where the adapter plugs it into the vswitch.
type Veth struct {
	Netns    string // CNI_NETNS
	IfName   string // CNI_IFNAME
	HostName string
	MAC      string // the pod end's
	MTU      int    // 0: the kernel's default
}

// Setup makes the pair the way the bridge plugin does (created in the
// pod's namespace, the host end moved out and set up), then gives the pod
// end its MAC and applies r's addresses and routes (ipam.ConfigureIface;
// r.Interfaces[0] must be the pod end). A host end left by a crashed ADD
// of the same attachment is removed first: its name is ours alone.
func (v Veth) Setup(r *current.Result) error {
	if err := v.Remove(); err != nil {
		return err
	}
	hostNS, err := ns.GetCurrentNS()
	if err != nil {
		return contracts.Errorf(contracts.CodeIO, "host network namespace: %v", err)
	}
	defer hostNS.Close()
	err = ns.WithNetNSPath(v.Netns, func(ns.NetNS) error {
		if _, err := netlink.LinkByName(v.IfName); err == nil {
			return contracts.Errorf(contracts.CodeConflict, "CNI_NETNS %s already has an interface %s", v.Netns, v.IfName)
		}
		if _, _, err := ip.SetupVethWithName(v.IfName, v.HostName, v.MTU, v.MAC, hostNS); err != nil {
			return contracts.Errorf(contracts.CodeIO, "veth %s/%s: %v", v.IfName, v.HostName, err)
		}
		if err := txChecksumOff(v.IfName); err != nil {
			return contracts.Errorf(contracts.CodeIO, "veth %s: checksum offload: %v", v.IfName, err)
		}
		if err := ipam.ConfigureIface(v.IfName, r); err != nil {
			return contracts.Errorf(contracts.CodeIO, "configure %s in %s: %v", v.IfName, v.Netns, err)
		}
		return nil
	})
	if err != nil {
		if rmErr := v.Remove(); rmErr != nil {
			err = errors.Join(err, rmErr)
		}
		return asContractsError(err, v)
	}
	return nil
}

// Remove deletes the pair through its host end, which takes the pod end
// with it; that works also when the pod's namespace is already gone (it
// then took the pair with it). Nothing there is success. Only a veth with
// our derived name is deleted.
func (v Veth) Remove() error {
	l, err := netlink.LinkByName(v.HostName)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		return nil
	case err != nil:
		return contracts.Errorf(contracts.CodeIO, "veth %s: %v", v.HostName, err)
	case l.Type() != "veth":
		return contracts.Errorf(contracts.CodeConflict, "%s is a %s, not the veth usrsp made; left alone", v.HostName, l.Type())
	}
	if err := netlink.LinkDel(l); err != nil && !errors.As(err, &notFound) {
		return contracts.Errorf(contracts.CodeIO, "delete veth %s: %v", v.HostName, err)
	}
	return nil
}

// Verify checks the pod end against r (CHECK): the name in the pod's
// namespace, a veth whose peer is our host end, its MAC and MTU, r's
// addresses on it and r's routes. A difference is CodeMismatch.
func (v Veth) Verify(r *current.Result) error {
	host, err := netlink.LinkByName(v.HostName)
	if err != nil {
		return mismatch("host end %s of %s is missing: %v", v.HostName, v.IfName, err)
	}
	var ips []*current.IPConfig
	for _, c := range r.IPs {
		if c.Interface != nil && *c.Interface >= 0 && *c.Interface < len(r.Interfaces) && r.Interfaces[*c.Interface].Name == v.IfName {
			ips = append(ips, c)
		}
	}
	err = ns.WithNetNSPath(v.Netns, func(ns.NetNS) error {
		l, err := netlink.LinkByName(v.IfName)
		if err != nil {
			return mismatch("no interface %s in %s: %v", v.IfName, v.Netns, err)
		}
		if l.Type() != "veth" {
			return mismatch("%s in %s is a %s, not a veth", v.IfName, v.Netns, l.Type())
		}
		_, peer, err := ip.GetVethPeerIfindex(v.IfName)
		if err != nil || peer != host.Attrs().Index {
			return mismatch("%s in %s is not paired with %s", v.IfName, v.Netns, v.HostName)
		}
		if got := l.Attrs().HardwareAddr.String(); !strings.EqualFold(got, v.MAC) {
			return mismatch("%s in %s has MAC %s, expected %s", v.IfName, v.Netns, got, v.MAC)
		}
		if v.MTU != 0 && l.Attrs().MTU != v.MTU {
			return mismatch("%s in %s has MTU %d, expected %d", v.IfName, v.Netns, l.Attrs().MTU, v.MTU)
		}
		if err := ip.ValidateExpectedInterfaceIPs(v.IfName, ips); err != nil {
			return mismatch("%s in %s: %v", v.IfName, v.Netns, err)
		}
		if err := ip.ValidateExpectedRoute(r.Routes); err != nil {
			return mismatch("%s in %s: %v", v.IfName, v.Netns, err)
		}
		return nil
	})
	return asContractsError(err, v)
}

func mismatch(format string, args ...any) error {
	return contracts.Errorf(contracts.CodeMismatch, format, args...)
}

// asContractsError keeps our coded errors and codes the namespace's own
// (ns.WithNetNSPath fails when CNI_NETNS cannot be entered).
func asContractsError(err error, v Veth) error {
	if err == nil || contracts.CodeOf(err) != contracts.CodeInternal {
		return err
	}
	return contracts.Errorf(contracts.CodeIO, "%s in %s: %v", v.IfName, v.Netns, err)
}

// TxChecksumFeature is the veth's checksum offload (ethtool's
// tx-checksumming).
const TxChecksumFeature = "tx-checksum-ip-generic"

// txChecksumOff makes the pod's kernel finish its TCP/UDP checksums
// itself. The vswitch reads the host end through AF_PACKET without a
// virtio-net header (OVS system port, VPP af_packet), so it never learns
// that a checksum was left to "the NIC", and a memif or vhost-user pod
// would get the frame with a partial checksum. TSO goes with it (the
// kernel ties it to checksum offload).
func txChecksumOff(ifName string) error {
	e, err := ethtool.NewEthtool()
	if err != nil {
		return err
	}
	defer e.Close()
	return e.Change(ifName, map[string]bool{TxChecksumFeature: false})
}
