package adapter

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/services/ovs-adapter/ovs"
)

func baseReq() *contracts.AttachRequest {
	return &contracts.AttachRequest{Key: contracts.AttachmentKey{ContainerID: "abc", IfName: "net1"}, Network: "n1",
		Interface: contracts.HostInterface{IfType: contracts.IfTypeVhostUser, NetType: contracts.NetTypeBridge,
			SocketPath: "/var/lib/usrsp/abc/net1.sock", Vhost: &contracts.VhostSpec{Mode: contracts.VhostModeClient},
			Bridge: &contracts.BridgeSpec{Name: "br1", VLAN: 7}, MTU: 9000}}
}

func TestPortName(t *testing.T) {
	a := PortName(contracts.AttachmentKey{ContainerID: "abc", IfName: "net1"})
	assert.Len(t, a, 15)
	assert.Regexp(t, "^usp[0-9a-f]{12}$", a)
	assert.Equal(t, a, PortName(contracts.AttachmentKey{ContainerID: "abc", IfName: "net1"}), "deterministic")
	assert.NotEqual(t, a, PortName(contracts.AttachmentKey{ContainerID: "abc", IfName: "net2"}))
	assert.NotEqual(t, a, PortName(contracts.AttachmentKey{ContainerID: "abc/n", IfName: "et1"}))
}

func TestPlanPort(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(r *contracts.AttachRequest)
		code   contracts.Code
		check  func(t *testing.T, p *portPlan)
		pmds   int
	}{
		{name: "vhost client", check: func(t *testing.T, p *portPlan) {
			assert.Equal(t, ovs.TypeVhostUserClient, p.spec.Type)
			assert.Equal(t, map[string]string{"vhost-server-path": "/var/lib/usrsp/abc/net1.sock"}, p.spec.Options)
			assert.Equal(t, 7, p.spec.Tag)
			assert.Equal(t, 9000, p.spec.MTU)
			assert.Equal(t, "br1", p.spec.Bridge)
			assert.Equal(t, map[string]string{ovs.ExtOwner: ovs.OwnerValue, ovs.ExtContainerID: "abc", ovs.ExtIfName: "net1", ovs.ExtNetwork: "n1"}, p.spec.ExternalIDs)
		}},
		{name: "vhost server without path", mutate: func(r *contracts.AttachRequest) {
			r.Interface.Vhost.Mode = contracts.VhostModeServer
			r.Interface.SocketPath = ""
		}, check: func(t *testing.T, p *portPlan) {
			assert.Equal(t, ovs.TypeVhostUser, p.spec.Type)
			assert.Empty(t, p.spec.Options)
		}},
		{name: "memif master, 2 PMDs", pmds: 2, mutate: func(r *contracts.AttachRequest) {
			r.Interface.IfType, r.Interface.Vhost, r.Interface.MAC = contracts.IfTypeMemif, nil, "02:00:00:00:00:aa"
			r.Interface.Memif = &contracts.MemifSpec{Role: contracts.MemifRoleMaster, Mode: contracts.MemifModeEthernet, ID: 3, RingSize: 1024, BufferSize: 2048, Secret: "s3"}
		}, check: func(t *testing.T, p *portPlan) {
			s := p.specWithMemif(5)
			assert.Equal(t, ovs.TypeDPDK, s.Type)
			assert.Equal(t, "net_memif5,role=server,id=3,socket=/var/lib/usrsp/abc/net1.sock,socket-abstract=no,rsize=10,bsize=2048,secret=s3,mac=02:00:00:00:00:aa", s.Options["dpdk-devargs"])
			assert.Equal(t, "3", s.Options["n_rxq"])
			assert.Equal(t, 3, p.queues)
			n, ok := memifIndex(s)
			assert.True(t, ok)
			assert.Equal(t, 5, n)
			_, ok = p.spec.Options["dpdk-devargs"]
			assert.False(t, ok, "the plan itself is not changed")
		}},
		{name: "memif slave is OVS client", mutate: func(r *contracts.AttachRequest) {
			r.Interface.IfType, r.Interface.Vhost = contracts.IfTypeMemif, nil
			r.Interface.Memif = &contracts.MemifSpec{Role: contracts.MemifRoleSlave, Mode: contracts.MemifModeEthernet}
		}, check: func(t *testing.T, p *portPlan) {
			assert.Contains(t, p.specWithMemif(0).Options["dpdk-devargs"], ",role=client,")
			mac := contracts.DerivedMAC(contracts.AttachmentKey{ContainerID: "abc", IfName: "net1"}, contracts.SideHost)
			assert.True(t, strings.HasSuffix(p.specWithMemif(0).Options["dpdk-devargs"], ",mac="+mac), "a MAC derived from the key when none is asked for")
			assert.Equal(t, mac, p.hostMAC)
		}},
		{name: "veth: a system port named after the host end", mutate: func(r *contracts.AttachRequest) {
			r.Interface.IfType, r.Interface.Vhost, r.Interface.SocketPath = contracts.IfTypeVeth, nil, ""
			r.Interface.Veth = &contracts.VethSpec{HostIfName: contracts.HostVethName(r.Key)}
		}, check: func(t *testing.T, p *portPlan) {
			assert.Equal(t, ovs.TypeSystem, p.spec.Type)
			assert.Equal(t, contracts.HostVethName(contracts.AttachmentKey{ContainerID: "abc", IfName: "net1"}), p.spec.Name)
			assert.Empty(t, p.spec.Options)
			assert.Equal(t, 7, p.spec.Tag)
			assert.Equal(t, 9000, p.spec.MTU)
		}},
		{name: "veth of another attachment (or eth0)", mutate: func(r *contracts.AttachRequest) {
			r.Interface.IfType, r.Interface.Vhost, r.Interface.SocketPath = contracts.IfTypeVeth, nil, ""
			r.Interface.Veth = &contracts.VethSpec{HostIfName: "eth0"}
		}, code: contracts.CodeInvalidConfig},
		{name: "veth with a host MAC", mutate: func(r *contracts.AttachRequest) {
			r.Interface.IfType, r.Interface.Vhost, r.Interface.SocketPath, r.Interface.MAC = contracts.IfTypeVeth, nil, "", "02:00:00:00:00:01"
			r.Interface.Veth = &contracts.VethSpec{HostIfName: contracts.HostVethName(r.Key)}
		}, code: contracts.CodeUnsupportedField},
		{name: "default bridge", mutate: func(r *contracts.AttachRequest) { r.Interface.Bridge = nil },
			check: func(t *testing.T, p *portPlan) { assert.Equal(t, DefaultBridge, p.spec.Bridge) }},
		{name: "netType interface", mutate: func(r *contracts.AttachRequest) { r.Interface.NetType = contracts.NetTypeInterface }, code: contracts.CodeInvalidConfig},
		{name: "vlan 4095", mutate: func(r *contracts.AttachRequest) { r.Interface.Bridge.VLAN = 4095 }, code: contracts.CodeInvalidConfig},
		{name: "mtu 10", mutate: func(r *contracts.AttachRequest) { r.Interface.MTU = 10 }, code: contracts.CodeInvalidConfig},
		{name: "bad mac", mutate: func(r *contracts.AttachRequest) { r.Interface.MAC = "zz" }, code: contracts.CodeInvalidConfig},
		{name: "relative socket", mutate: func(r *contracts.AttachRequest) { r.Interface.SocketPath = "x.sock" }, code: contracts.CodeInvalidConfig},
		{name: "unclean socket", mutate: func(r *contracts.AttachRequest) { r.Interface.SocketPath = "/a/../b.sock" }, code: contracts.CodeInvalidConfig},
		{name: "vhost client without socket", mutate: func(r *contracts.AttachRequest) { r.Interface.SocketPath = "" }, code: contracts.CodeInvalidConfig},
		{name: "long bridge", mutate: func(r *contracts.AttachRequest) { r.Interface.Bridge.Name = "a-very-long-bridge-name" }, code: contracts.CodeInvalidConfig},
		{name: "memif ip mode", mutate: func(r *contracts.AttachRequest) {
			r.Interface.IfType, r.Interface.Vhost = contracts.IfTypeMemif, nil
			r.Interface.Memif = &contracts.MemifSpec{Role: contracts.MemifRoleMaster, Mode: contracts.MemifModeIP}
		}, code: contracts.CodeInvalidConfig},
		{name: "memif ring not power of two", mutate: func(r *contracts.AttachRequest) {
			r.Interface.IfType, r.Interface.Vhost = contracts.IfTypeMemif, nil
			r.Interface.Memif = &contracts.MemifSpec{Role: contracts.MemifRoleMaster, Mode: contracts.MemifModeEthernet, RingSize: 1000}
		}, code: contracts.CodeInvalidConfig},
		{name: "memif socket with comma", mutate: func(r *contracts.AttachRequest) {
			r.Interface.IfType, r.Interface.Vhost, r.Interface.SocketPath = contracts.IfTypeMemif, nil, "/a,b.sock"
			r.Interface.Memif = &contracts.MemifSpec{Role: contracts.MemifRoleMaster, Mode: contracts.MemifModeEthernet}
		}, code: contracts.CodeInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := baseReq()
			if tt.mutate != nil {
				tt.mutate(r)
			}
			pmds := tt.pmds
			if pmds == 0 {
				pmds = 1
			}
			p, err := planPort(r, pmds)
			if tt.code != 0 {
				require.Error(t, err)
				assert.Equal(t, tt.code, contracts.CodeOf(err), "%v", err)
				return
			}
			require.NoError(t, err)
			assert.Contains(t, portNames(r.Key), p.spec.Name)
			tt.check(t, p)
		})
	}
}

// FuzzPlanPort: any request that contracts accepts either plans a port
// with a valid name and owned external_ids, or is rejected with a code.
func FuzzPlanPort(f *testing.F) {
	f.Add([]byte(`{"key":{"containerId":"abc","ifName":"net1"},"network":"n","interface":{"ifType":"vhostuser","netType":"bridge","socketPath":"/s/a.sock","vhost":{"mode":"client"},"bridge":{"name":"br0","vlan":5}}}`), 1)
	f.Add([]byte(`{"key":{"containerId":"abc","ifName":"net1"},"network":"n","interface":{"ifType":"memif","netType":"bridge","socketPath":"/s/m.sock","memif":{"role":"master","mode":"ethernet","ringSize":512},"bridge":{}}}`), 2)
	f.Add([]byte(`{"key":{"containerId":"abc","ifName":"net1"},"network":"n","interface":{"ifType":"vhostuser","netType":"bridge","vhost":{"mode":"server"},"bridge":{"name":"b"}}}`), 0)
	f.Add([]byte(`{"key":{"containerId":"abc","ifName":"net1"},"network":"n","interface":{"ifType":"veth","netType":"bridge","veth":{"hostIfName":"usv2f5b1c0e9a47"},"bridge":{"name":"b"}}}`), 1)
	f.Fuzz(func(t *testing.T, b []byte, pmds int) {
		r, err := contracts.DecodeAttachRequest(b)
		if err != nil {
			return
		}
		p, err := planPort(r, pmds)
		if err != nil {
			if !contracts.CodeOf(err).Known() {
				t.Fatalf("error without a known code: %v", err)
			}
			return
		}
		s := p.specWithMemif(0)
		if len(s.Name) != 15 || !s.Owned() || s.Bridge == "" || s.Tag < 0 || s.Tag > 4094 {
			t.Fatalf("bad spec %+v", s)
		}
	})
}
