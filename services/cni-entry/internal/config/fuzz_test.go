package config_test

import (
	"errors"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/limits"

	"usrsp.dev/services/cni-entry/internal/config"
)

// FuzzLoadNetConf checks that any input yields either a config or a CNI
// error with a code, never a panic, and that accepted configs are stable.
func FuzzLoadNetConf(f *testing.F) {
	for _, seed := range []string{
		minimal, oldVPPMemifBridge, oldOVSVhostBridge,
		`{}`, `[]`, `null`, `{"name":"n","host":{}}`,
		`{"name":"n","host":{"engine":"vpp","iftype":"memif","netType":"bridge","bridge":{"bridgeId":"x"}}}`,
		`{"name":"n","podVolume":"v","host":{"engine":"ovs-dpdk","iftype":"vhostuser","netType":"none"}}`,
		`{"name":"n","host":{"engine":"vpp","iftype":"memif","netType":"none","memif":{"socketType":"abstract","socketfile":"usrsp/m"}}}`,
		`{"name":"n","host":{"engine":"ovs-dpdk","iftype":"memif","netType":"none","memif":{"socketType":"abstract"}}}`,
		`{"name":"n","host":{"engine":"ovs-dpdk","iftype":"veth","netType":"bridge"},"container":{"mac":"02:00:00:00:00:01"}}`,
		`{"name":"n","host":{"engine":"vpp","iftype":"veth","netType":"bridge","bridge":{"bridgeId":3},"memif":{}}}`,
		`{"name":"n","host":{"engine":"vpp","iftype":"memif","netType":"none","memif":{"socketfile":"../x"}},"prevResult":{"cniVersion":"1.0.0"}}`,
		`{"name":"n","nats":{"url":"tls://127.0.0.1:4222","credentialsFile":"/etc/usrsp/nats/cni.creds","tls":{"caFile":"/etc/usrsp/nats/ca.pem","certFile":"/c.pem","keyFile":"/k.pem"}},"host":{"engine":"vpp","iftype":"memif","netType":"none"}}`,
		`{"name":"n","nats":{"tls":{"caFile":"ca.pem","certFile":"/c.pem"}},"host":{"engine":"vpp","iftype":"memif","netType":"none"}}`,
		// limits at and past their edges
		`{"name":"n","mtu":65535,"host":{"engine":"vpp","iftype":"memif","netType":"bridge","bridge":{"bridgeId":16777215,"vlanId":4094},"memif":{"queues":255,"ringSize":16384,"bufferSize":65535,"secret":"01234567890123456789012"}}}`,
		`{"name":"n","mtu":9703,"host":{"engine":"ovs-dpdk","iftype":"memif","netType":"bridge","memif":{"ringSize":2,"bufferSize":128,"secret":"012345678901234567890123"}}}`,
		`{"name":"n","host":{"engine":"vpp","iftype":"memif","netType":"bridge","bridge":{"bridgeId":16777216},"memif":{"ringSize":4,"queues":256}}}`,
		`{"name":"n","podAccess":{"group":"usrsp","mode":"0666"},"host":{"engine":"vpp","iftype":"memif","netType":"none"}}`,
		`{"name":"n","podAccess":{"mode":"4777"},"host":{"engine":"ovs-dpdk","iftype":"vhostuser","netType":"none","vhost":{"group":"1"}}}`,
		// overlays: accepted, at their edges and refused
		`{"name":"n","overlay":{"type":"vxlan","vni":5001},"host":{"engine":"vpp","iftype":"memif","netType":"bridge","bridge":{"bridgeId":4}}}`,
		`{"name":"n","mtu":8950,"overlay":{"type":"vxlan","vni":16777215,"port":8472,"underlayMtu":9000},"ipam":{"type":"host-local"},"host":{"engine":"vpp","iftype":"memif","netType":"interface"}}`,
		`{"name":"n","overlay":{"type":"vxlan","vni":7,"underlayMtu":9800},"host":{"engine":"ovs-dpdk","iftype":"vhostuser","netType":"bridge"}}`,
		`{"name":"n","overlay":{"type":"vxlan","vni":7},"ipam":{"type":"host-local"},"host":{"engine":"ovs-dpdk","iftype":"memif","netType":"interface"}}`,
		`{"name":"n","mtu":1451,"overlay":{"type":"vxlan","vni":16777216,"port":65536,"underlayMtu":117},"host":{"engine":"vpp","iftype":"memif","netType":"none"}}`,
	} {
		f.Add([]byte(seed), "net1", "K8S_POD_UID=abc")
	}
	f.Fuzz(func(t *testing.T, stdin []byte, ifName, args string) {
		c, err := config.LoadNetConf(stdin, config.Env{IfName: ifName, Args: args})
		if err != nil {
			var e *types.Error
			if !errors.As(err, &e) || e.Code == 0 || e.Msg == "" {
				t.Fatalf("error without CNI code or message: %#v", err)
			}
			return
		}
		if c.Host.Engine == "" || c.Container.IfType != c.Host.IfType || c.Timeout() <= 0 {
			t.Fatalf("accepted an inconsistent config: %+v", c)
		}
		// What the edge accepts, the engine's limits accept.
		l, ok := limits.For(limits.Engine(c.Host.Engine))
		if !ok || c.MTU != 0 && l.MTU("mtu", c.MTU) != nil {
			t.Fatalf("accepted engine %q or mtu %d outside its limits", c.Host.Engine, c.MTU)
		}
		if m := c.Host.Memif; m != nil && errors.Join(l.MemifQueues("q", m.Queues), l.MemifRingSize("r", m.RingSize),
			l.MemifBufferSize("b", m.BufferSize), l.MemifSecret("s", m.Secret)) != nil {
			t.Fatalf("accepted a memif outside engine %s's limits: %+v", c.Host.Engine, m)
		}
		// What the edge accepts, every adapter's decoder accepts.
		if a := c.PodAccess; a != nil && (a.Group == "" || (contracts.PodAccess{Mode: a.Perm}).Check("podAccess") != nil) {
			t.Fatalf("accepted podAccess %+v that adapters refuse", a)
		}
		if o := c.ContractsOverlay(); o != nil {
			// What the edge accepts, the decoders accept, and the pod MTU
			// leaves room for VXLAN on the underlay.
			ok := o.Check("overlay") == nil && int(o.VNI) == c.Overlay.VNI && int(o.Port) == c.Overlay.Port && o.Port != 0 &&
				(c.Host.NetType == "bridge" || c.Host.NetType == "interface" && c.Host.Engine == "vpp") &&
				c.MTU >= limits.MinMTU && c.MTU <= c.Overlay.UnderlayMTU-contracts.VXLANOverhead
			if !ok {
				t.Fatalf("accepted an overlay adapters refuse or an mtu without room for VXLAN: %+v, %+v, mtu %d", c.Overlay, c.Host, c.MTU)
			}
		}
		if c.AbstractSocket() && (c.Host.Engine != "vpp" || c.Container.Memif.SocketType != config.SocketTypeAbstract) {
			t.Fatalf("accepted an abstract socket the container side or engine cannot use: %+v", c)
		}
	})
}
