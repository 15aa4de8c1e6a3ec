package contracts_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"usrsp.dev/contracts"
)

func TestSubjects(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"attach", contracts.Subject("node-1", contracts.EngineOVSDPDK, contracts.OpAttach), "usrsp.v1.node-1.ovs-dpdk.attach"},
		{"dotted node", contracts.Subject("w1.example.com", contracts.EngineVPP, contracts.OpGC), "usrsp.v1.w1_example_com.vpp.gc"},
		{"event", contracts.EventSubject("n", contracts.EngineVPP, contracts.EventAttached), "usrsp.v1.n.vpp.event.attached"},
		{"prefix", contracts.ServicePrefix("n", contracts.EngineVPP), "usrsp.v1.n.vpp"},
		{"wildcards and spaces", contracts.NodeToken("a*b>c d"), "a_b_c_d"},
		{"service name", contracts.ServiceName(contracts.EngineOVSDPDK), "usrsp-ovs-dpdk-adapter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, tt.got) })
	}
}

func TestEngineValid(t *testing.T) {
	for _, e := range contracts.Engines {
		assert.True(t, e.Valid(), e)
	}
	assert.False(t, contracts.Engine("ovs").Valid())
	assert.False(t, contracts.Engine("").Valid())
}
