// Package ovsdpdktest runs a private OVS-DPDK instance for one test.
package ovsdpdktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"testing"

	"usrsp.dev/libs/ovsdpdk"
	"usrsp.dev/libs/testkit"
)

// Start starts a private OVS-DPDK for t and stops it in t.Cleanup (logging
// the end of vswitchd's log when t failed). It skips t when not root or
// when OVS-DPDK is not installed. Instances use 256 MiB of hugepages each
// and the lock serializes them across processes.
func Start(t testing.TB) *ovsdpdk.Instance {
	t.Helper()
	return StartConfig(t, ovsdpdk.Config{})
}

// StartConfig is Start with cfg (Dir is made here and ignored if set),
// e.g. more DPDK socket memory for a thousand ports.
func StartConfig(t testing.TB, cfg ovsdpdk.Config) *ovsdpdk.Instance {
	t.Helper()
	return StartNodes(t, cfg)[0]
}

// StartNodes starts one private OVS-DPDK per cfg (at most
// ovsdpdk.MaxInstances, e.g. two "nodes" each with its Config.Netns)
// under one hold of the lock, and stops them in t.Cleanup.
func StartNodes(t testing.TB, cfgs ...ovsdpdk.Config) []*ovsdpdk.Instance {
	t.Helper()
	Require(t)
	if len(cfgs) < 1 || len(cfgs) > ovsdpdk.MaxInstances {
		t.Fatalf("StartNodes: %d instances, want 1..%d", len(cfgs), ovsdpdk.MaxInstances)
	}
	Lock(t)
	out := make([]*ovsdpdk.Instance, 0, len(cfgs))
	for _, cfg := range cfgs {
		// A short base dir: vhost-user socket paths must stay under 108
		// bytes, and t.TempDir() embeds the (long) test name.
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
				t.Logf("ovs-vswitchd.log of %s (tail):\n%s", dir, inst.VswitchdLogTail(30))
			}
			if err := inst.Stop(); err != nil {
				t.Errorf("stop private OVS-DPDK: %v", err)
			}
		})
		out = append(out, inst)
	}
	return out
}

// Netns makes a named network namespace "<prefix><6 hex digits>" for t
// and deletes it in t.Cleanup. Keep prefix short: the name often leads
// interface names (15 bytes).
func Netns(t testing.TB, prefix string) string {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := prefix + hex.EncodeToString(b)
	if _, err := testkit.AddNetns(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := testkit.DelNetns(context.Background(), name); err != nil {
			t.Errorf("delete netns: %v", err)
		}
	})
	return name
}

// Lock takes the machine-wide lock for private OVS-DPDK instances
// (ovsdpdk.Lock) until t ends; Start and StartNodes do it. Tests that call
// ovsdpdk.Start directly use it, once per test (a second Lock in one test
// waits forever for the first).
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
