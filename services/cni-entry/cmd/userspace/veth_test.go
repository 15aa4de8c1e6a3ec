package main_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/safchain/ethtool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"usrsp.dev/contracts"
)

// vethHost is the host block of an iftype veth network.
var vethHost = map[string]any{"engine": "vpp", "iftype": "veth", "netType": "bridge", "bridge": map[string]any{"bridgeId": 4}}

// needRoot skips tests that make veth pairs (CAP_NET_ADMIN in the host).
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("iftype veth makes veth pairs: run as root")
	}
}

// podLink is what a conformance suite looks at in the pod's namespace.
type podLink struct {
	found    bool
	kind     string
	mac      string
	up       bool
	addrs    []string
	routes   []string // "dst via gw"
	txCsumOn bool
}

func inspect(t *testing.T, netns, ifName string) podLink {
	t.Helper()
	var l podLink
	require.NoError(t, ns.WithNetNSPath(netns, func(ns.NetNS) error {
		link, err := netlink.LinkByName(ifName)
		if err != nil {
			return nil // not found
		}
		l.found, l.kind, l.mac = true, link.Type(), link.Attrs().HardwareAddr.String()
		l.up = link.Attrs().Flags&net.FlagUp != 0
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			l.addrs = append(l.addrs, a.IPNet.String())
		}
		routes, err := netlink.RouteList(link, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, r := range routes {
			dst := "0.0.0.0/0"
			if r.Dst != nil {
				dst = r.Dst.String()
			}
			l.routes = append(l.routes, fmt.Sprintf("%s via %v", dst, r.Gw))
		}
		e, err := ethtool.NewEthtool()
		if err != nil {
			return err
		}
		defer e.Close()
		f, err := e.Features(ifName)
		if err != nil {
			return err
		}
		l.txCsumOn = f["tx-checksum-ip-generic"]
		return nil
	}))
	return l
}

func hostLinkExists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

// TestVethLifecycle drives iftype veth through libcni as a conformance
// suite would: the interface in CNI_NETNS has exactly the result's name,
// MAC, address and routes; CHECK verifies them; DEL removes it; ADD after
// DEL works; container.mac is honoured.
func TestVethLifecycle(t *testing.T) {
	needRoot(t)
	for _, mac := range []string{"", "02:aa:bb:cc:dd:01"} {
		t.Run("container.mac="+mac, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			patch := map[string]any{"host": vethHost, "container": map[string]any{}}
			if mac != "" {
				patch["container"] = map[string]any{"mac": mac}
			}
			list := e.confList("1.1.0", patch)
			id := newContainerID(t)
			key := contracts.AttachmentKey{ContainerID: id, IfName: "net1"}
			rt := e.rt(id, "net1", podUID)

			for round := range 2 { // the second is ADD after DEL
				res, err := e.cni.AddNetworkList(ctx, list, rt)
				require.NoError(t, err, "round %d", round)
				r, err := current.NewResultFromResult(res)
				require.NoError(t, err)
				require.Len(t, r.Interfaces, 1)
				iface := r.Interfaces[0]
				assert.Equal(t, "net1", iface.Name)
				assert.Equal(t, e.netns, iface.Sandbox)
				assert.Empty(t, iface.SocketPath, "a kernel netdev has no socket")
				assert.Equal(t, contracts.ContainerMAC(key, mac), iface.Mac)
				require.Len(t, r.IPs, 1)
				assert.Equal(t, 0, *r.IPs[0].Interface)

				got := inspect(t, e.netns, "net1")
				assert.Equal(t, podLink{found: true, kind: "veth", mac: iface.Mac, up: true,
					addrs:  []string{r.IPs[0].Address.String()},
					routes: []string{"0.0.0.0/0 via 10.10.0.1", "10.10.0.0/24 via <nil>"}}, got)
				assert.True(t, hostLinkExists(contracts.HostVethName(key)))

				atts := e.fake.Attachments()
				require.Len(t, atts, 1)
				assert.Equal(t, contracts.IfTypeVeth, atts[0].Interface.IfType)
				assert.Equal(t, &contracts.VethSpec{HostIfName: contracts.HostVethName(key)}, atts[0].Interface.Veth)
				assert.Empty(t, atts[0].Interface.SocketPath)
				data, err := contracts.DecodePodData(readFile(t, filepath.Join(e.sharedDir(), podUID, contracts.PodDataFileName("net1"))))
				require.NoError(t, err)
				assert.Equal(t, iface.Mac, data.Interface.MAC)
				assert.Nil(t, data.DeviceInfo, "the device-info spec has no kernel netdev type")
				assert.NoFileExists(t, e.devInfoFile(id, "net1"))

				require.NoError(t, e.cni.CheckNetworkList(ctx, list, rt))
				require.NoError(t, e.cni.DelNetworkList(ctx, list, rt))
				assert.False(t, inspect(t, e.netns, "net1").found, "DEL removes the pod's netdev")
				assert.False(t, hostLinkExists(contracts.HostVethName(key)))
				assert.Empty(t, e.fake.Attachments())
				assert.Empty(t, e.reserved(id, "net1"))
				require.NoError(t, e.cni.DelNetworkList(ctx, list, rt), "DEL twice")
			}
		})
	}
}

// TestVethCheckSeesTheNetdev: CHECK fails with 101 when the pod's
// interface lost its address or its MAC changed, and DEL still cleans up.
func TestVethCheckSeesTheNetdev(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		name   string
		change func(l netlink.Link) error
	}{
		{"address removed", func(l netlink.Link) error {
			addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
			if err != nil || len(addrs) == 0 {
				return fmt.Errorf("no address: %v", err)
			}
			return netlink.AddrDel(l, &addrs[0])
		}},
		{"mac changed", func(l netlink.Link) error {
			return netlink.LinkSetHardwareAddr(l, net.HardwareAddr{2, 0, 0, 0, 0, 0x99})
		}},
		{"default route removed", func(l netlink.Link) error {
			return netlink.RouteDel(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.IPv4(10, 10, 0, 1)})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			list := e.confList("1.1.0", map[string]any{"host": vethHost, "container": map[string]any{}})
			rt := e.rt(newContainerID(t), "net1", podUID)
			_, err := e.cni.AddNetworkList(ctx, list, rt)
			require.NoError(t, err)
			require.NoError(t, ns.WithNetNSPath(e.netns, func(ns.NetNS) error {
				l, err := netlink.LinkByName("net1")
				if err != nil {
					return err
				}
				return tc.change(l)
			}))
			err = e.cni.CheckNetworkList(ctx, list, rt)
			assert.Equal(t, uint(101), cniCode(t, err), "%v", err)
			require.NoError(t, e.cni.DelNetworkList(ctx, list, rt))
		})
	}
}

// TestVethConcurrentAddsAndGC: 8 pods ADD at once and get distinct
// addresses on their own netdevs; GC keeps the valid attachments'
// interfaces and removes the others'.
func TestVethConcurrentAddsAndGC(t *testing.T) {
	needRoot(t)
	e := newEnv(t)
	ctx := context.Background()
	list := e.confList("1.1.0", map[string]any{"host": vethHost, "container": map[string]any{}})
	const n = 8
	type pod struct {
		id, netns string
		ip        string
	}
	pods := make([]*pod, n)
	for i := range pods {
		pods[i] = &pod{id: newContainerID(t), netns: newNetns(t)}
	}
	rtOf := func(p *pod) *libcni.RuntimeConf {
		rt := e.rt(p.id, "net1", "")
		rt.NetNS = p.netns
		return rt
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.cni.AddNetworkList(ctx, list, rtOf(p))
			if err == nil {
				var r *current.Result
				if r, err = current.NewResultFromResult(res); err == nil {
					p.ip = r.IPs[0].Address.String()
				}
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, p := range pods {
		require.NoError(t, errs[i], "pod %d", i)
		assert.False(t, seen[p.ip], "address %s given twice", p.ip)
		seen[p.ip] = true
		got := inspect(t, p.netns, "net1")
		assert.Equal(t, []string{p.ip}, got.addrs, "pod %d has its own address on its own netdev", i)
	}

	var valid []types.GCAttachment
	for _, p := range pods[:n/2] {
		valid = append(valid, types.GCAttachment{ContainerID: p.id, IfName: "net1"})
	}
	require.NoError(t, e.cni.GCNetworkList(ctx, list, &libcni.GCArgs{ValidAttachments: valid}))
	for i, p := range pods {
		key := contracts.AttachmentKey{ContainerID: p.id, IfName: "net1"}
		keep := i < n/2
		assert.Equal(t, keep, inspect(t, p.netns, "net1").found, "pod %d's netdev", i)
		assert.Equal(t, keep, hostLinkExists(contracts.HostVethName(key)), "pod %d's host end", i)
		assert.Equal(t, keep, len(e.reserved(p.id, "net1")) == 1, "pod %d's address", i)
	}
	for _, p := range pods[:n/2] {
		require.NoError(t, e.cni.CheckNetworkList(ctx, list, rtOf(p)), "GC kept a working attachment")
		require.NoError(t, e.cni.DelNetworkList(ctx, list, rtOf(p)))
	}
	assert.Empty(t, e.fake.Attachments())
}
