package contracts_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
)

func validAnnouncement() contracts.Announcement {
	return contracts.Announcement{Node: "node-a.example", Engine: contracts.EngineVPP, Epoch: 1, Seq: 1, VTEP: "10.0.0.1", IntervalMS: 1000,
		Networks: []contracts.OverlayMember{
			{Network: "blue", NetType: contracts.NetTypeBridge, VNI: 5001, Port: 4789},
			{Network: "red", NetType: contracts.NetTypeInterface, VNI: 5002, Port: 4789, Routes: []string{"10.9.0.2/32", "fd00::2/128"}},
		}}
}

func TestDecodeAnnouncement(t *testing.T) {
	subject := contracts.DiscoverySubject("node-a.example")
	require.Equal(t, "usrsp.v1.node-a_example.discovery", subject)
	tests := []struct {
		name    string
		mutate  func(*contracts.Announcement)
		subject string // default: node-a.example's
		message string // "" : accepted
	}{
		{name: "valid", mutate: func(*contracts.Announcement) {}},
		{name: "leaving needs no vtep", mutate: func(a *contracts.Announcement) { a.Leaving, a.VTEP, a.Networks = true, "", nil }},
		{name: "another node's subject", mutate: func(*contracts.Announcement) {}, subject: contracts.DiscoverySubject("node-b"), message: "not on that node's subject"},
		{name: "speaks for another node", mutate: func(a *contracts.Announcement) { a.Node = "node-b" }, message: "not on that node's subject"},
		{name: "leaving for another node", mutate: func(a *contracts.Announcement) { a.Node, a.Leaving = "node-b", true }, message: "not on that node's subject"},
		{name: "no node", mutate: func(a *contracts.Announcement) { a.Node = "" }, message: "not on that node's subject"},
		{name: "unknown engine", mutate: func(a *contracts.Announcement) { a.Engine = "bess" }, message: "engine"},
		{name: "interval too short", mutate: func(a *contracts.Announcement) { a.IntervalMS = 10 }, message: "intervalMs"},
		{name: "interval too long", mutate: func(a *contracts.Announcement) { a.IntervalMS = 3600_000 }, message: "intervalMs"},
		{name: "loopback vtep", mutate: func(a *contracts.Announcement) { a.VTEP = "127.0.0.1" }, message: "vtep"},
		{name: "multicast vtep", mutate: func(a *contracts.Announcement) { a.VTEP = "239.1.1.1" }, message: "vtep"},
		{name: "no vtep", mutate: func(a *contracts.Announcement) { a.VTEP = "" }, message: "vtep"},
		{name: "vni 0", mutate: func(a *contracts.Announcement) { a.Networks[0].VNI = 0 }, message: "networks[0]"},
		{name: "port 0", mutate: func(a *contracts.Announcement) { a.Networks[0].Port = 0 }, message: "port"},
		{name: "no network name", mutate: func(a *contracts.Announcement) { a.Networks[1].Network = "" }, message: "networks[1]"},
		{name: "netType none", mutate: func(a *contracts.Announcement) { a.Networks[0].NetType = contracts.NetTypeNone }, message: "netType"},
		{name: "routes on a bridge", mutate: func(a *contracts.Announcement) { a.Networks[0].Routes = []string{"10.0.0.9/32"} }, message: "routes"},
		{name: "a subnet route", mutate: func(a *contracts.Announcement) { a.Networks[1].Routes = []string{"0.0.0.0/0"} }, message: "routes[0]"},
		{name: "too many networks", mutate: func(a *contracts.Announcement) {
			a.Networks = make([]contracts.OverlayMember, contracts.MaxOverlayMembers+1)
		}, message: "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := validAnnouncement()
			tt.mutate(&a)
			b, err := json.Marshal(a)
			require.NoError(t, err)
			got, err := contracts.DecodeAnnouncement(cmpOr(tt.subject, subject), b)
			if tt.message == "" {
				require.NoError(t, err)
				assert.Equal(t, a, *got)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.message)
		})
	}
	t.Run("too big", func(t *testing.T) {
		_, err := contracts.DecodeAnnouncement(subject, []byte(`{"node":"`+strings.Repeat("a", contracts.MaxAnnouncementBytes)+`"}`))
		require.Error(t, err)
		assert.Equal(t, contracts.CodeDecode, contracts.CodeOf(err))
	})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestOverlayPort(t *testing.T) {
	assert.EqualValues(t, 4789, contracts.Overlay{}.UDPPort())
	assert.EqualValues(t, 8472, contracts.Overlay{Port: 8472}.UDPPort())
}

// An announcement arrives from any node on the cluster: the decoder must
// never panic, and what it accepts is on its own subject and re-encodes.
func FuzzDecodeAnnouncement(f *testing.F) {
	good, _ := json.Marshal(validAnnouncement())
	for _, s := range []string{string(good), "{}", "null", `{"node":"node-a.example","leaving":true,"engine":"vpp","intervalMs":1000}`,
		`{"node":"node-a.example","engine":"ovs-dpdk","vtep":"::1","intervalMs":100}`,
		`{"node":"node-a.example","engine":"vpp","vtep":"10.0.0.1","intervalMs":1000,"networks":[{"network":"x","netType":"interface","vni":16777215,"port":1,"routes":["1.2.3.4/32"]}]}`,
	} {
		f.Add([]byte(s))
	}
	subject := contracts.DiscoverySubject("node-a.example")
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := contracts.DecodeAnnouncement(subject, b)
		if err != nil {
			return
		}
		if contracts.DiscoverySubject(a.Node) != subject {
			t.Fatalf("accepted node %q on %s", a.Node, subject)
		}
		again, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := contracts.DecodeAnnouncement(subject, again); err != nil {
			t.Fatal(fmt.Errorf("re-encoded announcement refused: %w", err))
		}
	})
}
