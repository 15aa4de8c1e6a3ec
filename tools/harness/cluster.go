package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/nats-io/nats-server/v2/server"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/natstest"
	"usrsp.dev/libs/ovsdpdk"
	"usrsp.dev/libs/testkit"
)

// Underlay addressing of a Cluster: node i's VTEP is UnderlayPrefix+(i+1)
// in UnderlaySubnet.
const (
	UnderlaySubnet = "10.233.0.0/24"
	UnderlayPrefix = "10.233.0."
	// ClusterOVSSocketMemMB is each OVS-DPDK node's DPDK memory: two fit in
	// the 138 hugepages of a machine set up before install-deps.sh asked
	// for 256, and 64 MB is the least that makes three memif ports.
	ClusterOVSSocketMemMB = 128
	// PhysBridge is the OVS bridge holding a node's underlay veth, with the
	// VTEP address on its internal port (OVS userspace tunneling).
	PhysBridge = "br-phy"
)

// ClusterConfig says how to bring up a Cluster. The zero value works.
type ClusterConfig struct {
	// Logf receives progress lines, prefixed with the node's name.
	Logf func(format string, args ...any)
	// BinDir holds prebuilt binaries (see Build); empty: build them once
	// for all nodes.
	BinDir  string
	RepoDir string
	// NATSServers is the size of the NATS cluster the nodes share (default
	// 1). With more, node i's adapter uses server i and its cni-entry and
	// NC server i+1 (modulo the size), so requests cross a route.
	NATSServers int
	// AdapterLogLevel is every adapter's --log-level (default "debug").
	AdapterLogLevel string
	// AdapterArgs are extra flags of every adapter (after --vtep), e.g.
	// --overlay-interval.
	AdapterArgs []string
}

// Cluster is n "nodes" on this machine: each a Harness whose vswitch runs
// in a network namespace of its own (uxe-<id>-n<i>), joined by veths to a
// Linux bridge in an underlay namespace (uxe-<id>-u), with VTEP address
// UnderlayPrefix+(i+1) on the vswitch: an af_packet host-interface of the
// node's VPP, or OVS's br-phy (userspace tunneling). Adapters (with --vtep)
// and pods' processes stay in the host's and the pods' namespaces.
type Cluster struct {
	Nodes    []*Harness
	NATS     []*server.Server
	Underlay string // the underlay namespace

	id       string
	logf     func(format string, args ...any)
	mu       sync.Mutex
	cleanups []func() error
	closed   bool
}

// NewCluster brings up n nodes of engine. For OVS-DPDK it takes
// ovsdpdk.Lock once for all of them (n ≤ ovsdpdk.MaxInstances). On error
// everything started is stopped again.
func NewCluster(ctx context.Context, engine contracts.Engine, n int, cfg ClusterConfig) (_ *Cluster, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("harness: a cluster needs root (network namespaces, vswitches)")
	}
	if n < 1 {
		return nil, fmt.Errorf("harness: a cluster of %d nodes", n)
	}
	switch engine {
	case contracts.EngineOVSDPDK:
		if n > ovsdpdk.MaxInstances {
			return nil, fmt.Errorf("harness: %d OVS-DPDK nodes, the hugepages allow %d", n, ovsdpdk.MaxInstances)
		}
	case contracts.EngineVPP:
		if r := VPPMissing(); r != "" {
			return nil, errors.New("harness: no VPP: " + r)
		}
	default:
		return nil, fmt.Errorf("harness: unknown engine %q", engine)
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.NATSServers < 1 {
		cfg.NATSServers = 1
	}
	c := &Cluster{id: randomHex(4), logf: cfg.Logf}
	c.Underlay = "uxe-" + c.id + "-u"
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Close())
		}
	}()
	if engine == contracts.EngineOVSDPDK {
		c.logf("==> waiting for the OVS-DPDK lock %s (one for %d nodes)", ovsdpdk.LockFile, n)
		release, err := ovsdpdk.Lock(ctx)
		if err != nil {
			return nil, err
		}
		c.onClose(release)
	}
	if cfg.BinDir == "" {
		dir, err := os.MkdirTemp("", "usrsp-bin-")
		if err != nil {
			return nil, err
		}
		c.onClose(func() error { return os.RemoveAll(dir) })
		c.logf("==> building %s", BinaryNames())
		if err := Build(ctx, cfg.RepoDir, dir); err != nil {
			return nil, err
		}
		cfg.BinDir = dir
	}
	if c.NATS, err = natstest.StartCluster(cfg.NATSServers); err != nil {
		return nil, err
	}
	c.onClose(func() error {
		for _, s := range c.NATS {
			s.Shutdown()
			s.WaitForShutdown()
		}
		return nil
	})
	c.logf("==> NATS: %d servers (%s)", len(c.NATS), natstest.ClientURLs(c.NATS))
	if err := c.addUnderlay(ctx); err != nil {
		return nil, err
	}
	for i := range n {
		if err := c.addNode(ctx, engine, i, cfg); err != nil {
			return nil, fmt.Errorf("node %d: %w", i, err)
		}
	}
	return c, nil
}

// addUnderlay makes the underlay namespace with its bridge.
func (c *Cluster) addUnderlay(ctx context.Context) error {
	if _, err := testkit.AddNetns(ctx, c.Underlay); err != nil {
		return err
	}
	c.onClose(func() error { return testkit.DelNetns(context.Background(), c.Underlay) })
	if err := ipRun(ctx, "-n", c.Underlay, "link", "add", c.bridge(), "type", "bridge"); err != nil {
		return err
	}
	return ipRun(ctx, "-n", c.Underlay, "link", "set", c.bridge(), "up")
}

func (c *Cluster) bridge() string { return "uxe-" + c.id + "-br" }

// NodeNetns is node i's namespace, where its vswitch runs.
func (c *Cluster) NodeNetns(i int) string { return fmt.Sprintf("uxe-%s-n%d", c.id, i) }

// NodeVeth is node i's end of its underlay veth, in NodeNetns(i).
func (c *Cluster) NodeVeth(i int) string { return fmt.Sprintf("uxe-%s-v%d", c.id, i) }

// VTEP is node i's underlay address, its adapter's --vtep.
func VTEP(i int) string { return fmt.Sprintf("%s%d", UnderlayPrefix, i+1) }

// vtepMAC is node i's VTEP MAC (locally administered): VPP's
// host-interface's, OVS's br-phy's. Fixed, so that peers' neighbour entries
// stay right across a vswitch restart. The kernel's veth keeps a MAC of
// its own: with the VTEP's, the node's kernel took frames for the VTEP
// from the veth directly, and OVS nodes answered every ping twice.
func vtepMAC(i int) string { return fmt.Sprintf("02:e2:33:00:00:%02x", i+1) }

// addNode makes node i's namespace and veth and brings up its Harness.
func (c *Cluster) addNode(ctx context.Context, engine contracts.Engine, i int, cfg ClusterConfig) error {
	ns, veth, peer := c.NodeNetns(i), c.NodeVeth(i), fmt.Sprintf("uxe-%s-u%d", c.id, i)
	if _, err := testkit.AddNetns(ctx, ns); err != nil {
		return err
	}
	c.onClose(func() error { return testkit.DelNetns(context.Background(), ns) }) // takes the veth with it
	if err := ipRun(ctx, "link", "add", "name", veth, "netns", ns, "type", "veth",
		"peer", "name", peer, "netns", c.Underlay); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"-n", c.Underlay, "link", "set", peer, "master", c.bridge(), "up"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "link", "set", veth, "up"},
	} {
		if err := ipRun(ctx, args...); err != nil {
			return err
		}
	}
	name := fmt.Sprintf("uxe-node-%d", i)
	srvs := c.NATS
	h, err := New(ctx, Config{
		Logf:            func(f string, a ...any) { c.logf("[%s] "+f, append([]any{name}, a...)...) },
		BinDir:          cfg.BinDir,
		RepoDir:         cfg.RepoDir,
		Node:            name,
		AdapterLogLevel: cfg.AdapterLogLevel,
		Engine:          engine,
		NATSURL:         srvs[(i+1)%len(srvs)].ClientURL(),
		AdapterNATSURL:  srvs[i%len(srvs)].ClientURL(),
		Netns:           ns,
		AdapterArgs:     append([]string{"--vtep", VTEP(i)}, cfg.AdapterArgs...),
		OVSLocked:       true,
		OVSSocketMemMB:  ClusterOVSSocketMemMB,
		VPPStartupCLI:   c.vppUplink(i),
		vswitchUp:       func(ctx context.Context, h *Harness) error { return c.vswitchUp(ctx, h, i) },
	})
	if err != nil {
		return err
	}
	c.Nodes = append(c.Nodes, h)
	c.onClose(h.Close)
	return nil
}

// vppUplink is node i's VPP uplink, run by VPP at every start (an
// operator's startup config): an af_packet host-interface on the veth
// with the VTEP address.
func (c *Cluster) vppUplink(i int) []string {
	ifc := "host-" + c.NodeVeth(i)
	return []string{
		"create host-interface name " + c.NodeVeth(i) + " hw-addr " + vtepMAC(i),
		"set interface mtu 1500 " + ifc, // the veth's; VPP's default is 9000
		"set interface ip address " + ifc + " " + VTEP(i) + "/24",
		"set interface state " + ifc + " up",
	}
}

// vswitchUp readies node i's underlay on its (re)started vswitch. VPP
// configures its uplink itself (vppUplink), shortly after its API answers:
// wait for the address. OVS: the veth on br-phy (netdev) and the VTEP
// address on br-phy's internal port, as OVS's userspace tunneling how-to
// does; OVSDB keeps br-phy, the tap's address dies with ovs-vswitchd.
func (c *Cluster) vswitchUp(ctx context.Context, h *Harness, i int) error {
	veth, addr := c.NodeVeth(i), VTEP(i)+"/24"
	if h.Engine() == contracts.EngineVPP {
		return h.VPP.awaitAddress(ctx, "host-"+veth, addr)
	}
	if _, err := h.OVS.Vsctl(ctx, "--may-exist", "add-br", PhysBridge, "--", "set", "Bridge", PhysBridge,
		"datapath_type=netdev", "other_config:hwaddr="+vtepMAC(i), "--", "--may-exist", "add-port", PhysBridge, veth); err != nil {
		return err
	}
	// vswitchd (re)creates br-phy's tap in the node's namespace; a tap
	// dies with its vswitchd, and its address with it.
	if err := ipRun(ctx, "-n", c.NodeNetns(i), "addr", "replace", addr, "dev", PhysBridge); err != nil {
		return err
	}
	return ipRun(ctx, "-n", c.NodeNetns(i), "link", "set", PhysBridge, "up")
}

// UnderlayPing pings node to's VTEP from node from's vswitch (VPP's ping,
// or the kernel's in the node's namespace, through br-phy) and returns
// the number of replies of n: it proves the underlay and resolves the
// neighbours the tunnels need.
func (c *Cluster) UnderlayPing(ctx context.Context, from, to, n int) (int, string, error) {
	h := c.Nodes[from]
	if h.Engine() == contracts.EngineVPP {
		return h.VPP.Ping(ctx, VTEP(to), n)
	}
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", c.NodeNetns(from),
		"ping", "-n", "-c", fmt.Sprint(n), "-i", "0.2", "-W", "1", VTEP(to)).CombinedOutput()
	got := strings.Count(string(out), " bytes from ") - strings.Count(string(out), "DUP!")
	if err != nil && got == 0 {
		return 0, string(out), fmt.Errorf("ping %s from %s: %w: %s", VTEP(to), c.NodeNetns(from), err, out)
	}
	return got, string(out), nil
}

// onClose registers a cleanup; Close runs them last-registered first.
func (c *Cluster) onClose(fn func() error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cleanups = append(c.cleanups, fn)
}

// Close stops every node (its Close), NATS, and deletes the namespaces
// (and with them the veths and the bridge), then releases the OVS-DPDK
// lock. Safe to call twice.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	cleanups := c.cleanups
	c.cleanups = nil
	c.mu.Unlock()
	var errs []error
	for i := len(cleanups) - 1; i >= 0; i-- {
		errs = append(errs, cleanups[i]())
	}
	return errors.Join(errs...)
}

// ipRun runs `ip args...`.
func ipRun(ctx context.Context, args ...string) error {
	if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Netns is the namespace the node's vswitch runs in ("" for the host's).
func (h *Harness) Netns() string { return h.cfg.Netns }
