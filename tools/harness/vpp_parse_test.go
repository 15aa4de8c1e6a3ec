package harness

import (
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
