package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"usrsp.dev/libs/vpp/vppproc"
)

// VPP environment variables, as the real-VPP suite reads them.
const (
	EnvVPPBin        = vppproc.EnvBin
	EnvVPPPluginPath = vppproc.EnvPluginPath
	EnvVPPRequired   = vppproc.EnvRequired
)

// VPPMissing says why a VPP cannot be started here ("" if it can): the
// binary from USRSP_VPP_BIN, vppctl next to it, and root.
func VPPMissing() string {
	if r := vppproc.Missing(); r != "" {
		return r
	}
	if bin := os.Getenv(EnvVPPBin); !exists(vppctlOf(bin)) {
		return "no vppctl next to " + bin
	}
	return ""
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// vppctlOf is the vppctl installed next to the vpp binary.
func vppctlOf(bin string) string { return filepath.Join(filepath.Dir(bin), "vppctl") }

// VPP is one VPP process: the node's (Harness.VPP) or a pod's
// (Pod.StartVPP), started by libs/vpp/vppproc: without hugepages or DPDK,
// with its own startup.conf, API, CLI and stats sockets and shared-memory
// prefix in Dir. The harness adds its CLI and what the tests read with it.
type VPP struct {
	*vppproc.VPP
	// cli makes the vppctl process (in the host, or in a pod's namespaces).
	cli func(ctx context.Context, name string, args ...string) *exec.Cmd
}

// newVPP writes the startup.conf of a VPP named name into dir. mainCore
// pins its main thread (host on 0, pods on 1, so they do not all share one);
// startupCLI runs at every start.
func newVPP(name, dir string, mainCore int, startupCLI []string, command, cli func(context.Context, string, ...string) *exec.Cmd) (*VPP, error) {
	if r := VPPMissing(); r != "" {
		return nil, errors.New("harness: no VPP: " + r)
	}
	v, err := vppproc.New(vppproc.Config{Name: name, Dir: dir, MainCore: mainCore, Command: command, StartupCLI: startupCLI})
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	return &VPP{VPP: v, cli: cli}, nil
}

// CLI runs one vppctl command against this VPP's CLI socket (in the pod's
// namespaces for a pod VPP) and returns its output.
func (v *VPP) CLI(ctx context.Context, command string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := v.cli(ctx, vppctlOf(v.Bin), "-s", v.CLISock, command)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s: vppctl %q: %w: %s", v.Name, command, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// StartVPP starts a VPP inside the pod: in its network namespace and with
// the pod's directory at PodMountPath, as a container would see it (call it
// after ADD, which creates that directory). Its sockets and startup.conf
// are in a directory of its own under the harness's; its CLI (VPP.CLI) runs
// vppctl in the pod's network namespace. The pod's Close stops it.
func (p *Pod) StartVPP(ctx context.Context) (*VPP, error) {
	p.mu.Lock()
	n := len(p.vpps)
	p.mu.Unlock()
	dir := filepath.Join(p.h.Dir, "pv", fmt.Sprintf("%s-%d", p.NetnsName[len("usrsp-"):], n))
	inPod := func(ctx context.Context, name string, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", p.NetnsName, name}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		return cmd
	}
	// The main thread on CPU 1: the host VPP's is on 0.
	v, err := newVPP(p.Name+"-vpp", dir, 1, nil, p.Command, inPod)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.vpps = append(p.vpps, v)
	p.mu.Unlock()
	if err := v.Start(ctx); err != nil {
		return nil, err
	}
	return v, nil
}

// Ping runs `ping <dst> repeat <n> interval 0.2` in this VPP and returns
// the number of replies and the CLI output.
func (v *VPP) Ping(ctx context.Context, dst string, n int) (int, string, error) {
	out, err := v.CLI(ctx, fmt.Sprintf("ping %s repeat %d interval 0.2", dst, n))
	if err != nil {
		return 0, out, err
	}
	got, ok := vppproc.PingReplies(out)
	if !ok {
		return 0, out, fmt.Errorf("%s: no ping statistics in %q (is ping_plugin.so loaded?)", v.Name, out)
	}
	return got, out, nil
}

// Interfaces lists the names of every interface but local0. On the
// harness's private VPP everything else was made by the vpp-adapter.
func (v *VPP) Interfaces(ctx context.Context) ([]string, error) {
	return cliParse(ctx, v, "show interface", ParseShowInterface)
}

// ParseShowInterface reads the interface names of `show interface`
// output, without local0.
func ParseShowInterface(out string) []string {
	var names []string
	for _, line := range strings.Split(out, "\n") {
		// Interface lines start in column 0; counters are indented.
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 || f[0] == "Name" || f[0] == "local0" {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		names = append(names, f[0])
	}
	return names
}

// cliParse runs cmd on v's CLI and parses its output.
func cliParse[T any](ctx context.Context, v *VPP, cmd string, parse func(string) T) (T, error) {
	out, err := v.CLI(ctx, cmd)
	if err != nil {
		var zero T
		return zero, err
	}
	return parse(out), nil
}

// BridgeDomains lists the bridge domain ids in use (VPP's default domain 0
// is never listed).
func (v *VPP) BridgeDomains(ctx context.Context) ([]uint32, error) {
	return cliParse(ctx, v, "show bridge-domain", ParseShowBridgeDomain)
}

// ParseShowBridgeDomain reads the ids of `show bridge-domain` output.
func ParseShowBridgeDomain(out string) []uint32 {
	var ids []uint32
	header := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == "BD-ID" {
			header = true
			continue
		}
		if !header || len(f) < 2 {
			continue
		}
		if id, err := strconv.ParseUint(f[0], 10, 32); err == nil && id != 0 {
			ids = append(ids, uint32(id))
		}
	}
	return ids
}

// MemifSockets lists the memif socket registrations other than VPP's
// default id 0, as "id filename".
func (v *VPP) MemifSockets(ctx context.Context) ([]string, error) {
	return cliParse(ctx, v, "show memif", ParseMemifSockets)
}

// ParseMemifSockets reads the socket table of `show memif` output, without
// id 0.
func ParseMemifSockets(out string) []string {
	var socks []string
	in := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && f[0] == "id" && strings.Contains(line, "filename"):
			in = true
		case !in:
		case len(f) < 3:
			in = false // end of the socket table
		default:
			if _, err := strconv.Atoi(f[0]); err != nil {
				in = false
			} else if f[0] != "0" {
				socks = append(socks, f[0]+" "+f[len(f)-1])
			}
		}
	}
	return socks
}

// VXLANTunnels lists the VXLAN tunnels, one `show vxlan tunnel` line each
// ("[0] instance 0 src … dst … vni … sw-if-idx …").
func (v *VPP) VXLANTunnels(ctx context.Context) ([]string, error) {
	return cliParse(ctx, v, "show vxlan tunnel", ParseVXLANTunnels)
}

// ParseVXLANTunnels reads the tunnel lines of `show vxlan tunnel` output
// ("No vxlan tunnels configured..." when there are none).
func ParseVXLANTunnels(out string) []string {
	var tuns []string
	for _, line := range strings.Split(out, "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "[") {
			tuns = append(tuns, line)
		}
	}
	return tuns
}

// FIBEntry is one prefix of one table in `show ip fib`: the table's
// header name ("ipv4-VRF:7", or the name it was added with) and the path
// lines of its load balance ("[0] [@3]: arp-ipv4: via 10.78.0.60
// vxlan_tunnel0"). A route left through a deleted interface shows as
// "dpo-drop ip4" and names no interface.
type FIBEntry struct {
	Table  string
	Prefix netip.Prefix
	Paths  []string
}

// Via reports whether a path of e goes out of an interface whose name
// starts with ifcPrefix.
func (e FIBEntry) Via(ifcPrefix string) bool {
	for _, p := range e.Paths {
		for _, f := range strings.Fields(p) {
			if strings.HasPrefix(strings.TrimSuffix(f, ":"), ifcPrefix) {
				return true
			}
		}
	}
	return false
}

// IPFIB reads every IPv4 table (`show ip fib`).
func (v *VPP) IPFIB(ctx context.Context) ([]FIBEntry, error) {
	return cliParse(ctx, v, "show ip fib", ParseIPFIB)
}

// ParseIPFIB reads `show ip fib` output: table headers and prefixes start
// in column 0, a prefix's chain and paths are indented below it.
func ParseIPFIB(out string) []FIBEntry {
	var entries []FIBEntry
	table := ""
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r ")
		if line == "" {
			continue
		}
		if line[0] != ' ' {
			f := strings.Fields(line)
			if p, err := netip.ParsePrefix(f[0]); err == nil {
				entries = append(entries, FIBEntry{Table: table, Prefix: p})
			} else {
				table = strings.TrimSuffix(f[0], ",")
			}
			continue
		}
		// The buckets of the load balance: "[0] [@3]: ...".
		if l := strings.TrimSpace(line); len(entries) > 0 && len(l) > 1 && l[0] == '[' && l[1] >= '0' && l[1] <= '9' {
			e := &entries[len(entries)-1]
			e.Paths = append(e.Paths, l)
		}
	}
	return entries
}

// InterfaceMTUs maps every interface's name to its L3 MTU (the first of
// `show interface`'s L3/IP4/IP6/MPLS column).
func (v *VPP) InterfaceMTUs(ctx context.Context) (map[string]int, error) {
	return cliParse(ctx, v, "show interface", ParseInterfaceMTUs)
}

// ParseInterfaceMTUs reads `show interface` output into name → L3 MTU.
func ParseInterfaceMTUs(out string) map[string]int {
	mtus := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if line == "" || line[0] == ' ' || len(f) < 4 || f[0] == "Name" {
			continue
		}
		if mtu, err := strconv.Atoi(strings.SplitN(f[3], "/", 2)[0]); err == nil {
			mtus[f[0]] = mtu
		}
	}
	return mtus
}

// BridgeDomainSHGs maps every interface of bridge domain id to its
// split-horizon group (`show bridge-domain <id> detail`).
func (v *VPP) BridgeDomainSHGs(ctx context.Context, id uint32) (map[string]int, error) {
	return cliParse(ctx, v, fmt.Sprintf("show bridge-domain %d detail", id), ParseBridgeDomainSHGs)
}

// ParseBridgeDomainSHGs reads the interface table of `show bridge-domain
// <id> detail` output into name → SHG.
func ParseBridgeDomainSHGs(out string) map[string]int {
	shgs := map[string]int{}
	in := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 3 && f[0] == "Interface" && f[3] == "SHG":
			in = true
		case !in || len(f) < 4:
		default:
			if shg, err := strconv.Atoi(f[3]); err == nil {
				shgs[f[0]] = shg
			}
		}
	}
	return shgs
}

// awaitAddress waits until interface ifc has address addr (a CIDR) and
// is up, as after VPP ran its startup config. There is no event for it:
// this polls `show interface address`, bounded by 30 s.
func (v *VPP) awaitAddress(ctx context.Context, ifc, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		out, err := v.CLI(ctx, "show interface address "+ifc)
		if err == nil && strings.Contains(out, ifc+" (up)") && strings.Contains(out, "L3 "+addr) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %s has no address %s: %w (last: %q, %v)", v.Name, ifc, addr, ctx.Err(), out, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
