package bench

import (
	"context"
	"fmt"
	"time"

	"usrsp.dev/contracts"
	"usrsp.dev/tools/cnibench"
	"usrsp.dev/tools/harness"
)

// vswitch is what the bench needs to know about one engine's node. The
// modes, targets and reports are the same for every engine; only these
// differ.
type vswitch interface {
	// network is a network of port kind on a bridge of its own (the i-th
	// network of the run, for unique bridges and subnets).
	network(h *harness.Harness, name, port string, i int) (*harness.Network, error)
	// limit is how many attachments of port kind the vswitch can hold; 0:
	// no known limit.
	limit(port string) int
	// restart is recover's restart: the vswitch stops and starts again; it
	// returns once the vswitch answers (the adapter's recovery is measured
	// from its start).
	restart(ctx context.Context, h *harness.Harness) error
	// probes time, n times, the vswitch's own creation of one port of the
	// kind outside the adapter, and a request that makes the vswitch do
	// nothing through the same tool; their difference estimates the
	// vswitch's share of an attach. probeText says what ran.
	probes(ctx context.Context, h *harness.Harness, port string, n int) (create, noop cnibench.Summary, err error)
	probeText(port string) string
	// checker is what recover polls for network's attachments.
	checker(h *harness.Harness, port, network string) cnibench.Checker
	// logDirs are copied by --keep-logs besides the harness's own.
	logDirs(h *harness.Harness) []string
}

// Texts that land in the results, per engine.
const (
	ovsRestartText = "ovs-vswitchd stopped (SIGTERM) and started, DPDK initialized"
	vppRestartText = "host VPP killed (SIGKILL) and started, binary API answering"
)

// ovsSwitch is the harness's private OVS-DPDK.
type ovsSwitch struct{ memifMax int }

var _ vswitch = ovsSwitch{}

func (ovsSwitch) network(h *harness.Harness, name, port string, i int) (*harness.Network, error) {
	bridge, subnet := fmt.Sprintf("br-bench%d", i), fmt.Sprintf("10.%d.0.0/20", 80+i*16)
	if port == PortMemif {
		return h.MemifNetwork(name, bridge, subnet)
	}
	return h.VhostUserNetwork(name, bridge, subnet)
}

// limit: every memif port is a DPDK ethdev, and Debian's DPDK 22.11 has
// RTE_MAX_ETHPORTS 32.
func (o ovsSwitch) limit(port string) int {
	if port == PortMemif {
		return o.memifMax
	}
	return 0
}

func (ovsSwitch) restart(ctx context.Context, h *harness.Harness) error {
	return h.OVS.RestartVswitchd(ctx, false)
}

func (ovsSwitch) probes(ctx context.Context, h *harness.Harness, port string, n int) (cnibench.Summary, cnibench.Summary, error) {
	return vsctlProbes(ctx, h, port, n)
}

func (ovsSwitch) probeText(port string) string {
	kind := "dpdkvhostuserclient"
	if port == PortMemif {
		kind = "dpdk net_memif server"
	}
	return "ovs-vsctl add-port (" + kind + "; waits until vswitchd applied it) vs ovs-vsctl set of an external_id (exec + OVSDB + cfg wait)"
}

func (ovsSwitch) checker(h *harness.Harness, port, network string) cnibench.Checker {
	c := cnibench.NATSChecker{Client: contracts.NewClient(h.NC, h.Node(), 5*time.Second), Engine: contracts.EngineOVSDPDK, Network: network}
	if port == PortMemif {
		return &memifChecker{NATSChecker: c, requestedQueues: 1}
	}
	return &c
}

func (ovsSwitch) logDirs(h *harness.Harness) []string { return []string{h.OVS.LogDir()} }
