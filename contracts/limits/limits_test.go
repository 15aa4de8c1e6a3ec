package limits_test

import (
	"os/exec"
	"strings"
	"testing"

	"usrsp.dev/contracts/limits"
)

// Each check accepts lo and hi and refuses one past either, naming the field.
func TestChecksAtTheEdges(t *testing.T) {
	vpp, _ := limits.For(limits.VPP)
	ovs, _ := limits.For(limits.OVSDPDK)
	secret := func(n int) error { return vpp.MemifSecret("f", strings.Repeat("x", n)) }
	tests := []struct {
		name   string
		check  func(string, int) error
		lo, hi int
	}{
		{"memif queues", vpp.MemifQueues, 1, 255},
		{"vhost queues", ovs.VhostQueues, 1, 64},
		{"vpp ring", vpp.MemifRingSize, 8, 16384},
		{"ovs ring", ovs.MemifRingSize, 2, 16384},
		{"buffer", ovs.MemifBufferSize, 128, 65535},
		{"vpp mtu", vpp.MTU, 68, 65535},
		{"ovs mtu", ovs.MTU, 68, 9702},
		{"vpp bridge domain", func(f string, n int) error { return vpp.BridgeID(f, uint64(n)) }, 1, 1<<24 - 1},
		{"vlan", vpp.VLAN, 1, 4094},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, n := range []int{tt.lo, tt.hi} {
				if err := tt.check("f", n); err != nil {
					t.Errorf("%d: %v", n, err)
				}
			}
			for _, n := range []int{tt.lo - 1, tt.hi + 1} {
				if err := tt.check("f", n); err == nil || !strings.HasPrefix(err.Error(), "f: ") {
					t.Errorf("%d: got %v, want an error naming the field", n, err)
				}
			}
		})
	}
	if secret(23) != nil || secret(24) == nil {
		t.Errorf("secret: 23 bytes gave %v, 24 bytes %v; want only 24 refused", secret(23), secret(24))
	}
	if err := vpp.MemifRingSize("f", 1000); err == nil {
		t.Error("ring size 1000 (not a power of two) accepted")
	}
	if err := ovs.BridgeID("f", 4); err == nil {
		t.Error("ovs-dpdk accepted a numeric bridge domain")
	}
}

// Wire must be the widest: what any engine accepts, the decoders accept.
func TestWireIsTheWidest(t *testing.T) {
	for _, e := range limits.Engines() {
		l, ok := limits.For(e)
		if !ok || l.Engine != e {
			t.Fatalf("For(%s) = %+v, %v", e, l, ok)
		}
		if l.MinMemifRingSize < limits.Wire.MinMemifRingSize || l.MaxMTU > limits.Wire.MaxMTU || l.MaxBridgeID > limits.Wire.MaxBridgeID {
			t.Errorf("%s accepts more than Wire: %+v vs %+v", e, l, limits.Wire)
		}
	}
	if _, ok := limits.For("snabb"); ok {
		t.Error("For accepts an unknown engine")
	}
}

// libs/memif imports limits and must not pull in nats.go: stdlib only.
func TestImportsOnlyStdlib(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "usrsp.dev/contracts/limits").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(strings.SplitN(p, "/", 2)[0], ".") && p != "usrsp.dev/contracts/limits" {
			t.Errorf("limits depends on %s", p)
		}
	}
}
