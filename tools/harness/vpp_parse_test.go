package harness

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Outputs of VPP 25.10's CLI, as seen on the harness's host VPP (`show
// memif` prints only the first 3 digits of a large socket id).
func TestParseVPPCLI(t *testing.T) {
	const showInterface = `              Name               Idx    State  MTU (L3/IP4/IP6/MPLS)     Counter          Count     
local0                            0     down          0/0/0/0       
loop0                             3      up          9000/0/0/0     
memif1013904223/0                 1      up          9000/0/0/0     rx packets                     5
                                                                    rx bytes                     490
                                                                    drops                          1
memif1196435762/0                 2      up          9000/0/0/0     
`
	const showBD = `  BD-ID   Index   BSN  Age(min)  Learning  U-Forwrd   UU-Flood   Flooding  ARP-Term  arp-ufwd Learn-co Learn-li   BVI-Intf 
    4       1      0     off        on        on       flood        on       off       off        2    16777216     N/A    
    7       2      0     off        on        on       flood        on       off       off        0    16777216     N/A    
`
	const showMemif = `sockets
  id  listener    filename
  0   no          /run/vpp/memif.sock
  101 yes (1)     /tmp/usrsp-1/shared/ee55/memif-net1.sock

interface memif1013904223/0
  remote-name "VPP 25.10-release"
  socket-id 1013904223 id 0 mode ethernet
`
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"show interface", ParseShowInterface(showInterface), []string{"loop0", "memif1013904223/0", "memif1196435762/0"}},
		{"show interface, only local0", ParseShowInterface(showInterface[:strings2(showInterface)]), []string(nil)},
		{"show bridge-domain", ParseShowBridgeDomain(showBD), []uint32{4, 7}},
		{"no bridge domains", ParseShowBridgeDomain("no bridge-domains in use\n"), []uint32(nil)},
		{"show memif", ParseMemifSockets(showMemif), []string{"101 /tmp/usrsp-1/shared/ee55/memif-net1.sock"}},
		{"show memif, default socket only", ParseMemifSockets("sockets\n  id  listener    filename\n  0   no          /run/vpp/memif.sock\n\n"), []string(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, tt.got) })
	}
}

// strings2 is the length of the first two lines (header and local0).
func strings2(s string) int {
	n := 0
	for i, c := range s {
		if c == '\n' {
			n++
			if n == 2 {
				return i + 1
			}
		}
	}
	return len(s)
}

// Outputs of VPP 25.10's CLI with a VXLAN tunnel in bridge domain 70 (split
// horizon group 1) beside a loopback.
func TestParseVPPOverlayCLI(t *testing.T) {
	const showVXLAN = "[0] instance 0 src 10.233.0.1 dst 10.233.0.2 src_port 4789 dst_port 4789 vni 5001 fib-idx 0 sw-if-idx 2 encap-dpo-idx 2 \r\n"
	const showBD = "  BD-ID   Index   BSN  Age(min)  Learning  U-Forwrd   UU-Flood   Flooding  ARP-Term  arp-ufwd Learn-co Learn-li   BVI-Intf \r\n" +
		"   70       1      0     off        on        on       flood        on       off       off        0    16777216     N/A    \r\n" +
		"             SPAN (span-l2-input)\r\n            LEARN (l2-learn)\r\n\r\n" +
		"           Interface           If-idx ISN  SHG  BVI  TxFlood        VLAN-Tag-Rewrite       \r\n" +
		"         vxlan_tunnel0           2     1    1    -      *                 none             \r\n" +
		"             loop0               3     1    0    -      -                 none             \r\n"
	const showInterface = "              Name               Idx    State  MTU (L3/IP4/IP6/MPLS)     Counter          Count     \r\n" +
		"host-uxe-edf8-v0                  1      up          1500/0/0/0     rx packets                     6\r\n" +
		"                                                                    rx bytes                     572\r\n" +
		"local0                            0     down          0/0/0/0       \r\n" +
		"loop0                             3     down         1450/0/0/0     \r\n" +
		"vxlan_tunnel0                     2      up          9000/0/0/0     \r\n"
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"show vxlan tunnel", ParseVXLANTunnels(showVXLAN),
			[]string{"[0] instance 0 src 10.233.0.1 dst 10.233.0.2 src_port 4789 dst_port 4789 vni 5001 fib-idx 0 sw-if-idx 2 encap-dpo-idx 2"}},
		{"show vxlan tunnel, none", ParseVXLANTunnels("No vxlan tunnels configured...\r\n"), []string(nil)},
		{"show bridge-domain detail", ParseBridgeDomainSHGs(showBD), map[string]int{"vxlan_tunnel0": 1, "loop0": 0}},
		{"show bridge-domain, no such domain", ParseBridgeDomainSHGs("show bridge-domain: No operational bridge domain 9\r\n"), map[string]int{}},
		{"show interface MTUs", ParseInterfaceMTUs(showInterface),
			map[string]int{"host-uxe-edf8-v0": 1500, "local0": 0, "loop0": 1450, "vxlan_tunnel0": 9000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, tt.got) })
	}
}

// `show ip fib` of VPP 25.10 (abridged): a route into a VXLAN tunnel in
// table 7, and the same route once the tunnel was deleted under it.
func TestParseIPFIB(t *testing.T) {
	const fib = "ipv4-VRF:0, fib_index:0, flow hash:[src dst sport dport proto flowlabel ] epoch:0 flags:none locks:[default-route:1, ]\r\n" +
		"0.0.0.0/0\r\n  unicast-ip4-chain\r\n  [@0]: dpo-load-balance: [proto:ip4 index:1 buckets:1 uRPF:0 to:[0:0]]\r\n    [0] [@0]: dpo-drop ip4\r\n" +
		"10.233.0.0/24\r\n  unicast-ip4-chain\r\n  [@0]: dpo-load-balance: [proto:ip4 index:9 buckets:1 uRPF:15 to:[0:0]]\r\n" +
		"    [0] [@4]: ipv4-glean: [src:10.233.0.0/24] loop0: mtu:9000 next:1 flags:[] ffffffffffffdead000000000806\r\n" +
		"usrsp:overlay-l3, fib_index:1, flow hash:[src dst sport dport proto flowlabel ] epoch:0 flags:none locks:[interface:2, CLI:1, ]\r\n" +
		"10.78.0.60/32\r\n  unicast-ip4-chain\r\n  [@0]: dpo-load-balance: [proto:ip4 index:18 buckets:1 uRPF:21 to:[0:0]]\r\n" +
		"    [0] [@3]: arp-ipv4: via 10.78.0.60 vxlan_tunnel0\r\n" +
		"10.78.0.110/32\r\n  unicast-ip4-chain\r\n  [@0]: dpo-load-balance: [proto:ip4 index:19 buckets:1 uRPF:22 to:[0:0]]\r\n" +
		"    [0] [@0]: dpo-drop ip4\r\n"
	got := ParseIPFIB(fib)
	want := []FIBEntry{
		{Table: "ipv4-VRF:0", Prefix: netip.MustParsePrefix("0.0.0.0/0"), Paths: []string{"[0] [@0]: dpo-drop ip4"}},
		{Table: "ipv4-VRF:0", Prefix: netip.MustParsePrefix("10.233.0.0/24"),
			Paths: []string{"[0] [@4]: ipv4-glean: [src:10.233.0.0/24] loop0: mtu:9000 next:1 flags:[] ffffffffffffdead000000000806"}},
		{Table: "usrsp:overlay-l3", Prefix: netip.MustParsePrefix("10.78.0.60/32"), Paths: []string{"[0] [@3]: arp-ipv4: via 10.78.0.60 vxlan_tunnel0"}},
		{Table: "usrsp:overlay-l3", Prefix: netip.MustParsePrefix("10.78.0.110/32"), Paths: []string{"[0] [@0]: dpo-drop ip4"}},
	}
	assert.Equal(t, want, got)
	via := []bool{false, false, true, false}
	for i, e := range got {
		assert.Equal(t, via[i], e.Via("vxlan_tunnel"), "%s", e.Prefix)
	}
	assert.True(t, got[1].Via("loop"), "an interface followed by a colon")
	assert.Empty(t, ParseIPFIB(""))
}
