package harness

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Owner is the external_ids:usrsp-owner value of everything the ovs-adapter
// creates.
const Owner = "ovs-adapter"

// PortOf finds the OVS interface the adapter made for (containerID,
// ifName), by its external_ids ("" if there is none).
func (h *Harness) PortOf(ctx context.Context, containerID, ifName string) (string, error) {
	return h.OVS.Vsctl(ctx, "--bare", "--columns=name", "find", "Interface",
		"external_ids:usrsp-container-id="+containerID, "external_ids:usrsp-ifname="+ifName)
}

// OwnedPorts lists every OVS port marked as the adapter's.
func (h *Harness) OwnedPorts(ctx context.Context) ([]string, error) {
	out, err := h.OVS.Vsctl(ctx, "--bare", "--columns=name", "find", "Port", "external_ids:usrsp-owner="+Owner)
	return strings.Fields(out), err
}

// Bridges lists the OVS bridges.
func (h *Harness) Bridges(ctx context.Context) ([]string, error) {
	out, err := h.OVS.Vsctl(ctx, "list-br")
	return strings.Fields(out), err
}

// AwaitPortsReady waits until every interface has an ofport and no error,
// as after the adapter re-created it.
func (h *Harness) AwaitPortsReady(ctx context.Context, ifaces ...string) error {
	for _, i := range ifaces {
		if _, err := h.OVS.Vsctl(ctx, "wait-until", "Interface", i, "ofport>0"); err != nil {
			return err
		}
		if e, err := h.OVS.Vsctl(ctx, "get", "Interface", i, "error"); err != nil || (e != "[]" && e != "") {
			return fmt.Errorf("interface %s: error %s %v", i, e, err)
		}
	}
	return nil
}

// PortStats are OpenFlow port counters, read live from ovs-vswitchd (the
// database's statistics column lags by up to 5 s). rx is what OVS
// received from the pod, tx what it sent to the pod.
type PortStats struct {
	RXPackets, RXDropped, TXPackets, TXDropped uint64
}

var dumpPorts = regexp.MustCompile(`rx pkts=(\d+|\?), bytes=[\d?]+, drop=(\d+|\?).*\n\s*tx pkts=(\d+|\?), bytes=[\d?]+, drop=(\d+|\?)`)

// PortStats reads iface's counters with ovs-ofctl dump-ports.
func (h *Harness) PortStats(ctx context.Context, iface string) (PortStats, error) {
	br, err := h.OVS.Vsctl(ctx, "iface-to-br", iface)
	if err != nil {
		return PortStats{}, err
	}
	mgmt := "unix:" + filepath.Join(h.OVS.RunDir(), br+".mgmt")
	out, err := exec.CommandContext(ctx, "ovs-ofctl", "dump-ports", mgmt, iface).CombinedOutput()
	if err != nil {
		return PortStats{}, fmt.Errorf("ovs-ofctl dump-ports %s %s: %v: %s", br, iface, err, out)
	}
	st, err := ParseDumpPorts(string(out))
	if err != nil {
		return PortStats{}, fmt.Errorf("ovs-ofctl dump-ports %s %s: %w", br, iface, err)
	}
	return st, nil
}

// ParseDumpPorts reads the counters of the one port in `ovs-ofctl
// dump-ports` output. "?" (counters unavailable, e.g. a vhost-user port
// without its peer) is an error.
func ParseDumpPorts(out string) (PortStats, error) {
	m := dumpPorts.FindStringSubmatch(out)
	if m == nil {
		return PortStats{}, fmt.Errorf("unexpected output %q", out)
	}
	var v [4]uint64
	for i := range v {
		var err error
		if v[i], err = strconv.ParseUint(m[i+1], 10, 64); err != nil {
			return PortStats{}, fmt.Errorf("counters unavailable: %q", out)
		}
	}
	return PortStats{RXPackets: v[0], RXDropped: v[1], TXPackets: v[2], TXDropped: v[3]}, nil
}

// VXLANPorts lists the OVS interfaces of type vxlan, one line each: name
// and options (remote_ip, key, dst_port), as ovs-vsctl prints them.
func (h *Harness) VXLANPorts(ctx context.Context) ([]string, error) {
	out, err := h.OVS.Vsctl(ctx, "--format=csv", "--no-headings", "--data=bare", "--columns=name,options", "find", "Interface", "type=vxlan")
	if err != nil {
		return nil, err
	}
	var ports []string
	for _, line := range strings.Split(out, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			ports = append(ports, line)
		}
	}
	return ports, nil
}
