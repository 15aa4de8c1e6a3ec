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
