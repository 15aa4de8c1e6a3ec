package adapter

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
)

func TestTag(t *testing.T) {
	tag := Tag(contracts.AttachmentKey{ContainerID: strings.Repeat("a", 256), IfName: "net1"})
	assert.True(t, strings.HasPrefix(tag, TagPrefix))
	assert.Len(t, tag, 18, "well under VPP's 63-byte tag limit")
	assert.NotEqual(t, tag, Tag(contracts.AttachmentKey{ContainerID: strings.Repeat("a", 256), IfName: "net2"}))
}

func TestPlanAttachRejects(t *testing.T) {
	base := func() *contracts.AttachRequest {
		return &contracts.AttachRequest{Key: contracts.AttachmentKey{ContainerID: "c1", IfName: "net1"}, Network: "n",
			Interface: contracts.HostInterface{IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeNone, SocketPath: "/run/usrsp/c1/net1.sock",
				Memif: &contracts.MemifSpec{Role: "master", Mode: "ethernet"}}}
	}
	cases := []struct {
		name   string
		mutate func(*contracts.AttachRequest)
		code   contracts.Code
		field  string
	}{
		{"ring not power of two", func(r *contracts.AttachRequest) { r.Interface.Memif.RingSize = 1000 }, contracts.CodeInvalidConfig, "interface.memif.ringSize"},
		{"ring too big", func(r *contracts.AttachRequest) { r.Interface.Memif.RingSize = 1 << 15 }, contracts.CodeInvalidConfig, "interface.memif.ringSize"},
		{"ring below VPP's 8", func(r *contracts.AttachRequest) { r.Interface.Memif.RingSize = 4 }, contracts.CodeInvalidConfig, "interface.memif.ringSize"},
		{"queues", func(r *contracts.AttachRequest) { r.Interface.Memif.Queues = 300 }, contracts.CodeInvalidConfig, "interface.memif.queues"},
		{"buffer", func(r *contracts.AttachRequest) { r.Interface.Memif.BufferSize = 70000 }, contracts.CodeInvalidConfig, "interface.memif.bufferSize"},
		{"secret", func(r *contracts.AttachRequest) { r.Interface.Memif.Secret = strings.Repeat("s", 24) }, contracts.CodeInvalidConfig, "interface.memif.secret"},
		{"relative socket", func(r *contracts.AttachRequest) { r.Interface.SocketPath = "net1.sock" }, contracts.CodeInvalidConfig, "interface.socketPath"},
		{"socket chars", func(r *contracts.AttachRequest) { r.Interface.SocketPath = "/run/pod:1/net1.sock" }, contracts.CodeInvalidConfig, "interface.socketPath"},
		{"socket not clean", func(r *contracts.AttachRequest) { r.Interface.SocketPath = "/run/usrsp/c1/x/../net1.sock" }, contracts.CodeInvalidConfig, "interface.socketPath"},
		{"socket longer than sun_path", func(r *contracts.AttachRequest) { r.Interface.SocketPath = "/run/" + strings.Repeat("a", 103) }, contracts.CodeInvalidConfig, "interface.socketPath"},
		{"podAccess mode", func(r *contracts.AttachRequest) { r.Interface.PodAccess = &contracts.PodAccess{GID: 1, Mode: 0o4660} }, contracts.CodeInvalidConfig, "interface.podAccess"},
		{"netns chars", func(r *contracts.AttachRequest) { r.Interface.Memif.Netns = "/proc/1/ns/net,x" }, contracts.CodeInvalidConfig, "interface.memif.netns"},
		{"abstract name", func(r *contracts.AttachRequest) {
			r.Interface.Memif.Netns, r.Interface.Memif.SocketFile = "/proc/1/ns/net", "a b"
		}, contracts.CodeInvalidConfig, "interface.memif.socketFile"},
		{"mac", func(r *contracts.AttachRequest) { r.Interface.MAC = "zz" }, contracts.CodeInvalidConfig, "interface.mac"},
		{"bd 0", func(r *contracts.AttachRequest) {
			r.Interface.NetType, r.Interface.Bridge = contracts.NetTypeBridge, &contracts.BridgeSpec{}
		}, contracts.CodeInvalidConfig, "interface.bridge.id"},
		{"bd above 24 bits", func(r *contracts.AttachRequest) {
			r.Interface.NetType, r.Interface.Bridge = contracts.NetTypeBridge, &contracts.BridgeSpec{ID: 1 << 24}
		}, contracts.CodeInvalidConfig, "interface.bridge.id"},
		{"vlan 4095", func(r *contracts.AttachRequest) {
			r.Interface.NetType, r.Interface.Bridge = contracts.NetTypeBridge, &contracts.BridgeSpec{ID: 3, VLAN: 4095}
		}, contracts.CodeInvalidConfig, "interface.bridge.vlan"},
		{"vlan negative", func(r *contracts.AttachRequest) {
			r.Interface.NetType, r.Interface.Bridge = contracts.NetTypeBridge, &contracts.BridgeSpec{ID: 3, VLAN: -1}
		}, contracts.CodeInvalidConfig, "interface.bridge.vlan"},
		{"vlan without a bridge domain", func(r *contracts.AttachRequest) {
			r.Interface.Bridge = &contracts.BridgeSpec{VLAN: 10}
		}, contracts.CodeInvalidConfig, "interface.bridge.vlan"},
		{"vlan on L3", func(r *contracts.AttachRequest) {
			r.Interface.NetType, r.Interface.Bridge = contracts.NetTypeInterface, &contracts.BridgeSpec{VLAN: 10}
		}, contracts.CodeInvalidConfig, "interface.bridge.vlan"},
		{"ip memif in bridge", func(r *contracts.AttachRequest) {
			r.Interface.Memif.Mode = "ip"
			r.Interface.NetType, r.Interface.Bridge = contracts.NetTypeBridge, &contracts.BridgeSpec{ID: 3}
		}, contracts.CodeInvalidConfig, "interface.memif.mode"},
		{"bad address", func(r *contracts.AttachRequest) {
			r.Interface.NetType, r.Interface.IPs = contracts.NetTypeInterface, []contracts.IPConfig{{Address: "10.0.0.1"}}
		}, contracts.CodeInvalidConfig, "interface.ips[0].address"},
		{"gateway family", func(r *contracts.AttachRequest) {
			r.Interface.NetType, r.Interface.IPs = contracts.NetTypeInterface, []contracts.IPConfig{{Address: "10.0.0.2/24", Gateway: "fd00::1"}}
		}, contracts.CodeInvalidConfig, "interface.ips[0].gateway"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := base()
			tc.mutate(r)
			_, err := planAttach(r, false)
			require.Error(t, err)
			assert.Equal(t, tc.code, contracts.CodeOf(err))
			assert.Contains(t, err.Error(), tc.field)
		})
	}
	p, err := planAttach(base(), false)
	require.NoError(t, err)
	assert.Equal(t, uint32(DefaultMemifRingSize), p.memif.RingSize)
	require.NotNil(t, p.memif.MAC, "an ethernet memif gets the host side's derived MAC: the same after a replay")
	assert.Equal(t, contracts.DerivedMAC(base().Key, contracts.SideHost), p.memif.MAC.String())
	ipMode := base()
	ipMode.Interface.Memif.Mode = contracts.MemifModeIP
	p, err = planAttach(ipMode, false)
	require.NoError(t, err)
	assert.Nil(t, p.memif.MAC, "an IP-mode memif has no MAC")

	// The largest values contracts/limits allows on VPP plan.
	r := base()
	r.Interface.Memif.Secret, r.Interface.Memif.RingSize = strings.Repeat("s", 23), 1<<14
	r.Interface.NetType, r.Interface.Bridge = contracts.NetTypeBridge, &contracts.BridgeSpec{ID: 1<<24 - 1, VLAN: 4094}
	p, err = planAttach(r, false)
	require.NoError(t, err)
	assert.Equal(t, []uint32{1<<24 - 1, 4094, 1 << 14}, []uint32{p.bridge, p.vlan, p.memif.RingSize})
}

func TestPlanAttachVLAN(t *testing.T) {
	for _, vlan := range []int{0, 1, 100, 4094} {
		r := &contracts.AttachRequest{Key: contracts.AttachmentKey{ContainerID: "c1", IfName: "net1"}, Network: "n",
			Interface: contracts.HostInterface{IfType: contracts.IfTypeVhostUser, NetType: contracts.NetTypeBridge, SocketPath: "/run/usrsp/c1/v.sock",
				Vhost: &contracts.VhostSpec{Mode: "server"}, Bridge: &contracts.BridgeSpec{ID: 3, VLAN: vlan}}}
		p, err := planAttach(r, false)
		require.NoError(t, err, "vlan %d", vlan)
		assert.Equal(t, uint32(3), p.bridge)
		assert.Equal(t, uint32(vlan), p.vlan)
	}
}

func TestTableID(t *testing.T) {
	assert.Equal(t, TableID("a"), TableID("a"))
	assert.NotEqual(t, TableID("a"), TableID("b"))
	for _, n := range []string{"", "a", "net-1", strings.Repeat("x", 300)} {
		assert.NotZero(t, TableID(n))
		assert.Less(t, TableID(n), uint32(1<<31))
	}
}

// FuzzPlanAttach: any request the contracts decoder accepts either plans
// or fails with a coded error; it never panics.
func FuzzPlanAttach(f *testing.F) {
	f.Add([]byte(`{"key":{"containerId":"c1","ifName":"net1"},"network":"n","interface":{"ifType":"memif","netType":"bridge","socketPath":"/run/a.sock","memif":{"role":"master","mode":"ethernet","ringSize":2048},"bridge":{"id":4,"vlan":100}}}`))
	f.Add([]byte(`{"key":{"containerId":"c1","ifName":"net1"},"network":"n","interface":{"ifType":"memif","netType":"none","memif":{"role":"slave","mode":"ip","netns":"/var/run/netns/x","socketFile":"m"}}}`))
	f.Add([]byte(`{"key":{"containerId":"c1","ifName":"net1"},"network":"n","interface":{"ifType":"vhostuser","netType":"interface","socketPath":"/run/v.sock","vhost":{"mode":"server"},"ips":[{"address":"10.1.1.2/24","gateway":"10.1.1.1"},{"address":"fd00::2/64"}]}}`))
	f.Add([]byte(`{"key":{"containerId":"c1","ifName":"net1"},"network":"n","interface":{"ifType":"memif","netType":"bridge","socketPath":"/run/a.sock","memif":{"role":"master","mode":"ethernet","ringSize":16384,"queues":255,"bufferSize":65535,"secret":"01234567890123456789012"},"bridge":{"id":16777215,"vlan":4094},"mtu":65535}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := contracts.DecodeAttachRequest(b)
		if err != nil {
			return
		}
		for _, perNet := range []bool{false, true} {
			p, err := planAttach(r, perNet)
			if err != nil {
				if c := contracts.CodeOf(err); c != contracts.CodeInvalidConfig && c != contracts.CodeUnsupportedField {
					t.Fatalf("code %d for %v", c, err)
				}
				continue
			}
			if p.kind == kindMemif && p.memifSocket == "" || p.podSocket == "" {
				t.Fatalf("plan without socket: %+v", p)
			}
			if p.memif.RingSize&(p.memif.RingSize-1) != 0 {
				t.Fatalf("ring size %d", p.memif.RingSize)
			}
		}
	})
}

func TestProxyRange(t *testing.T) {
	for _, tc := range []struct{ subnet, low, high string }{
		{"10.1.1.0/24", "10.1.1.1", "10.1.1.254"},
		{"10.1.1.7/24", "10.1.1.1", "10.1.1.254"},
		{"10.1.0.0/16", "10.1.0.1", "10.1.255.254"},
		{"10.1.1.4/31", "10.1.1.4", "10.1.1.5"},
		{"10.1.1.9/32", "10.1.1.9", "10.1.1.9"},
	} {
		t.Run(tc.subnet, func(t *testing.T) {
			low, high := proxyRange(netip.MustParsePrefix(tc.subnet))
			assert.Equal(t, []string{tc.low, tc.high}, []string{low.String(), high.String()})
		})
	}
}

func TestLoopbackTag(t *testing.T) {
	tag := LoopbackTag("net-a", 0)
	assert.True(t, strings.HasPrefix(tag, LoopbackTagPrefix))
	assert.False(t, strings.HasPrefix(tag, TagPrefix), "the replay must not take a loopback for an attachment's interface")
	assert.NotEqual(t, tag, LoopbackTag("net-a", 7))
	assert.NotEqual(t, tag, LoopbackTag("net-b", 0))
}
