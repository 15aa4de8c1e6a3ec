// Package ovsdpdktest runs a private OVS-DPDK instance for one test.
package ovsdpdktest

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"usrsp.dev/libs/ovsdpdk"
)

// Start starts a private OVS-DPDK for t and stops it in t.Cleanup (logging
// the end of vswitchd's log when t failed). It skips t when not root or
// when OVS-DPDK is not installed. Instances use 256 MiB of hugepages each,
// so tests that call Start must not run in parallel on a small machine.
func Start(t testing.TB) *ovsdpdk.Instance {
	t.Helper()
	return StartConfig(t, ovsdpdk.Config{})
}

// StartConfig is Start with cfg (Dir is made here and ignored if set),
// e.g. more DPDK socket memory for a thousand ports.
func StartConfig(t testing.TB, cfg ovsdpdk.Config) *ovsdpdk.Instance {
	t.Helper()
	Require(t)
	Lock(t)
	// A short base dir: vhost-user socket paths must stay under 108 bytes,
	// and t.TempDir() embeds the (long) test name.
	dir, err := os.MkdirTemp("", "ovs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	cfg.Dir = dir
	inst, err := ovsdpdk.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start private OVS-DPDK: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ovs-vswitchd.log (tail):\n%s", inst.VswitchdLogTail(30))
		}
		if err := inst.Stop(); err != nil {
			t.Errorf("stop private OVS-DPDK: %v", err)
		}
	})
	return inst
}

// Lock takes the machine-wide lock for one private OVS-DPDK instance
// (ovsdpdk.Lock) until t ends; Start does it. Tests that call ovsdpdk.Start
// directly use it.
func Lock(t testing.TB) {
	release, err := ovsdpdk.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs last: after the instance has stopped.
	t.Cleanup(func() { _ = release() })
}

// Require skips t unless a private OVS-DPDK can run here: root (hugepages,
// DPDK) and the openvswitch-switch-dpdk package.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run OVS-DPDK (hugepages); run as root after deploy/scripts/install-deps.sh")
	}
	if _, err := exec.LookPath(ovsdpdk.DefaultVswitchd); err != nil {
		t.Skipf("%s missing: run deploy/scripts/install-deps.sh", ovsdpdk.DefaultVswitchd)
	}
}
