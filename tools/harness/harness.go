// Package harness brings up a whole usrsp node on this machine for the
// end-to-end suite, the demo and benchmarks: the built binaries, the
// vswitch (a private OVS-DPDK, or a host VPP with Config.Engine
// contracts.EngineVPP), an embedded NATS, the engine's adapter as a
// separate process, and "pods" (network namespaces, each with its own
// directory) attached through the built cni-entry exactly as Multus does,
// through libcni. NewCluster brings up several such nodes sharing a NATS
// (cluster), their vswitches in network namespaces joined by a veth
// underlay, for the overlay tests.
//
// Everything it starts is stopped by pid and everything it creates is
// removed by Close, also after a failure half-way.
package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/natstest"
	"usrsp.dev/libs/ovsdpdk"
)

// DefaultNode is the node name the adapter serves and cni-entry asks.
const DefaultNode = "usrsp-e2e"

// Config says how to bring up the node. The zero value works.
type Config struct {
	// Logf receives progress lines (t.Logf in tests, a printer in the demo).
	Logf func(format string, args ...any)
	// BinDir holds prebuilt binaries (see Build); empty: build into the
	// harness's own directory.
	BinDir string
	// RepoDir is the repository root (default: the directory holding
	// go.work above the working directory).
	RepoDir string
	// Node is the node name (default DefaultNode).
	Node string
	// AdapterLogLevel is the adapter's --log-level (default "debug").
	AdapterLogLevel string
	// Engine is the vswitch: contracts.EngineOVSDPDK (default: a private
	// OVS-DPDK under the machine-wide lock, needs hugepages) or
	// contracts.EngineVPP (a host VPP from USRSP_VPP_BIN, no lock, no
	// hugepages).
	Engine contracts.Engine
	// NATSURL is an external NATS (comma-separated URLs) for cni-entry, the
	// harness's client NC and the adapter; empty: an embedded server of the
	// node's own (Harness.NATS).
	NATSURL string
	// AdapterNATSURL is the adapter's NATS when it differs from NATSURL (a
	// NATS cluster: the adapter on one server, cni-entry on another).
	AdapterNATSURL string
	// Netns is the network namespace (an `ip netns` name) the vswitch runs
	// in, a Cluster node's; empty: the host's. The adapter, NATS and the
	// pods' processes stay in their own namespaces.
	Netns string
	// AdapterArgs are extra adapter flags (e.g. --vtep, --overlay-interval).
	AdapterArgs []string
	// OVSLocked says the caller holds ovsdpdk.Lock already: a Cluster runs
	// several private OVS-DPDK instances under one lock.
	OVSLocked bool
	// OVSSocketMemMB is the private OVS-DPDK's dpdk-socket-mem in MB (0:
	// libs/ovsdpdk's default); several instances must share the hugepages.
	OVSSocketMemMB int
	// VPPStartupCLI are CLI commands the host VPP runs at every start (its
	// startup.conf's startup-config), as an operator configures a node's
	// uplink: a restarted VPP restores them by itself.
	VPPStartupCLI []string
	// AdapterCommand makes the adapter's process from its binary name
	// (ovs-adapter, vpp-adapter) and flags; nil: the built binary in Bin.
	// The deployed-layout test runs the adapter's image with podman.
	AdapterCommand func(name string, args []string) *exec.Cmd
	// SharedMount makes SharedDir a shared mount point (bind-mounted on
	// itself, rshared), as a node's pod-directory roots are for the
	// adapter container's Bidirectional volumes: a mount made beneath it in
	// the container then reaches the host and the pods.
	SharedMount bool
	// vswitchUp runs after the vswitch started and after every
	// RestartVswitch: a Cluster puts the underlay on it again.
	vswitchUp func(ctx context.Context, h *Harness) error
}

// Harness is a running node.
type Harness struct {
	cfg  Config
	Dir  string            // everything the harness creates on disk is under Dir
	Bin  string            // userspace, host-local, ovs-adapter, vpp-adapter, pod-consumer
	OVS  *ovsdpdk.Instance // engine ovs-dpdk only
	VPP  *VPP              // engine vpp only: the host VPP
	NATS *server.Server    // the embedded server; nil with Config.NATSURL
	NC   *nats.Conn        // a client connection for the caller (events, status), on NATSURL
	// Adapter is the adapter process (ovs-adapter or vpp-adapter); restart
	// it with StartAdapter.
	Adapter *Adapter

	mu       sync.Mutex
	cleanups []func() error // run in reverse order by Close
	closed   bool
}

// New brings up the node: binaries, the vswitch (private OVS-DPDK under
// its lock, or host VPP), NATS and the adapter (ready). On error everything
// started is stopped again.
func New(ctx context.Context, cfg Config) (_ *Harness, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("harness: needs root (hugepages, network namespaces)")
	}
	if cfg.Engine == "" {
		cfg.Engine = contracts.EngineOVSDPDK
	}
	switch cfg.Engine {
	case contracts.EngineOVSDPDK:
		if _, err := exec.LookPath(ovsdpdk.DefaultVswitchd); err != nil {
			return nil, fmt.Errorf("harness: %s missing: run `make deps` (deploy/scripts/install-deps.sh)", ovsdpdk.DefaultVswitchd)
		}
	case contracts.EngineVPP:
		if r := VPPMissing(); r != "" {
			return nil, errors.New("harness: no VPP: " + r)
		}
	default:
		return nil, fmt.Errorf("harness: unknown engine %q", cfg.Engine)
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Node == "" {
		cfg.Node = DefaultNode
	}
	if cfg.AdapterLogLevel == "" {
		cfg.AdapterLogLevel = "debug"
	}
	// Short: vhost-user and memif socket paths are limited to 107 bytes.
	dir, err := os.MkdirTemp("", "usrsp-")
	if err != nil {
		return nil, err
	}
	// Not the named result: a failing return nils that before the deferred
	// Close runs.
	h := &Harness{cfg: cfg, Dir: dir, Bin: cfg.BinDir}
	h.onClose(func() error { return os.RemoveAll(dir) })
	success := false
	defer func() {
		if !success {
			err = errors.Join(err, h.Close())
		}
	}()
	for _, d := range []string{h.SharedDir(), h.LinkDir(), h.PodMountPath(), h.IPAMDir(), h.CacheDir(), h.LogDir(), h.StateDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if cfg.SharedMount {
		if err := shareMount(h.SharedDir()); err != nil {
			return nil, err
		}
		// Registered early: unmounted after the adapter and the pods are
		// gone, before the directory is removed.
		h.onClose(func() error { return syscall.Unmount(h.SharedDir(), syscall.MNT_DETACH) })
	}

	if cfg.Engine == contracts.EngineOVSDPDK && !cfg.OVSLocked {
		if err := h.step("waiting for the OVS-DPDK lock "+ovsdpdk.LockFile, func() error { return h.lock(ctx) }); err != nil {
			return nil, err
		}
	}
	if h.Bin == "" {
		h.Bin = filepath.Join(dir, "bin")
		if err := h.step("building "+BinaryNames(), func() error {
			return Build(ctx, cfg.RepoDir, h.Bin)
		}); err != nil {
			return nil, err
		}
	}
	if err := h.startVswitch(ctx); err != nil {
		return nil, err
	}
	if err := h.startNATS(); err != nil {
		return nil, err
	}
	if err := h.StartAdapter(ctx); err != nil {
		return nil, err
	}
	success = true
	return h, nil
}

// startNATS starts the embedded NATS (unless Config.NATSURL names one) and
// connects NC.
func (h *Harness) startNATS() error {
	what := "connecting to NATS " + h.cfg.NATSURL
	if h.cfg.NATSURL == "" {
		what = "starting embedded NATS"
	}
	return h.step(what, func() error {
		if h.cfg.NATSURL == "" {
			srv, err := natstest.Start(nil)
			if err != nil {
				return err
			}
			h.NATS = srv
			h.onClose(func() error { srv.Shutdown(); srv.WaitForShutdown(); return nil })
		}
		nc, err := nats.Connect(h.NATSURL(), nats.Name("usrsp-harness-"+h.cfg.Node))
		if err != nil {
			return err
		}
		h.NC = nc
		h.onClose(func() error { nc.Close(); return nil })
		return nil
	})
}

// NATSURL is the NATS that cni-entry and NC use: Config.NATSURL or the
// embedded server's.
func (h *Harness) NATSURL() string {
	if h.cfg.NATSURL != "" {
		return h.cfg.NATSURL
	}
	return h.NATS.ClientURL()
}

// adapterNATSURL is the adapter's NATS.
func (h *Harness) adapterNATSURL() string {
	if h.cfg.AdapterNATSURL != "" {
		return h.cfg.AdapterNATSURL
	}
	return h.NATSURL()
}

// Logf prints a progress line.
func (h *Harness) Logf(format string, args ...any) { h.cfg.Logf(format, args...) }

// step logs "==> what ... ok (1.2s)" around fn.
func (h *Harness) step(what string, fn func() error) error {
	start := time.Now()
	err := fn()
	if err != nil {
		h.Logf("==> %s ... FAILED (%s): %v", what, since(start), err)
		return fmt.Errorf("%s: %w", what, err)
	}
	h.Logf("==> %s ... ok (%s)", what, since(start))
	return nil
}

func since(t time.Time) string { return time.Since(t).Round(time.Millisecond).String() }

// startVswitch starts the engine's vswitch (in Config.Netns) and registers
// its stop.
func (h *Harness) startVswitch(ctx context.Context) error {
	where := ""
	if h.cfg.Netns != "" {
		where = " in netns " + h.cfg.Netns
	}
	err := h.step("starting "+h.vswitchName()+where, func() error {
		if h.cfg.Engine == contracts.EngineVPP {
			v, err := newVPP("host-vpp", filepath.Join(h.Dir, "vpp"), 0, h.cfg.VPPStartupCLI, h.vswitchCommand, exec.CommandContext)
			if err != nil {
				return err
			}
			h.onClose(v.Stop)
			if err := v.Start(ctx); err != nil {
				return err
			}
			h.VPP = v
			return nil
		}
		inst, err := ovsdpdk.Start(ctx, ovsdpdk.Config{Dir: filepath.Join(h.Dir, "ovs"), Netns: h.cfg.Netns, SocketMemMB: h.cfg.OVSSocketMemMB})
		if err != nil {
			return err
		}
		h.OVS = inst
		h.onClose(inst.Stop)
		return nil
	})
	if err != nil {
		return err
	}
	return h.afterVswitchUp(ctx)
}

func (h *Harness) vswitchName() string {
	if h.cfg.Engine == contracts.EngineVPP {
		return "host VPP"
	}
	return "private OVS-DPDK"
}

// vswitchCommand makes the host VPP's process, in Config.Netns if set.
func (h *Harness) vswitchCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	if h.cfg.Netns == "" {
		return exec.CommandContext(ctx, name, args...)
	}
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.cfg.Netns, name}, args...)...)
}

// afterVswitchUp runs Config.vswitchUp on a (re)started vswitch.
func (h *Harness) afterVswitchUp(ctx context.Context) error {
	if h.cfg.vswitchUp == nil {
		return nil
	}
	return h.step("underlay on the "+h.vswitchName(), func() error { return h.cfg.vswitchUp(ctx, h) })
}

// Engine is the node's vswitch engine.
func (h *Harness) Engine() contracts.Engine { return h.cfg.Engine }

// RestartVswitch kills the vswitch with SIGKILL, as a crash would, and
// starts it again: ovs-vswitchd (OVSDB keeps its database) or the host VPP
// (which comes back empty, for the adapter to replay).
//
// On a Cluster node the underlay is put on the new vswitch again.
func (h *Harness) RestartVswitch(ctx context.Context) error {
	var err error
	if h.cfg.Engine == contracts.EngineVPP {
		err = h.VPP.Restart(ctx)
	} else {
		err = h.OVS.RestartVswitchd(ctx, true)
	}
	if err != nil {
		return err
	}
	return h.afterVswitchUp(ctx)
}

// Node is the node name in the NATS subjects.
func (h *Harness) Node() string { return h.cfg.Node }

// Client is a contracts client on the harness's NATS connection.
func (h *Harness) Client() *contracts.Client {
	return contracts.NewClient(h.NC, h.cfg.Node, 3*time.Second)
}

// Directories under Dir.
func (h *Harness) SharedDir() string    { return filepath.Join(h.Dir, "shared") }
func (h *Harness) LinkDir() string      { return filepath.Join(h.Dir, "l") }
func (h *Harness) PodMountPath() string { return filepath.Join(h.Dir, "pm") }
func (h *Harness) IPAMDir() string      { return filepath.Join(h.Dir, "ipam") }
func (h *Harness) CacheDir() string     { return filepath.Join(h.Dir, "cache") }
func (h *Harness) LogDir() string       { return filepath.Join(h.Dir, "log") }
func (h *Harness) StateDir() string     { return filepath.Join(h.Dir, "state") }

// onClose registers a cleanup; Close runs them last-registered first.
func (h *Harness) onClose(fn func() error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cleanups = append(h.cleanups, fn)
}

// Close stops everything the harness started (by pid) and removes
// everything it created: pods' processes, network namespaces and files, the
// adapter, NATS, OVS-DPDK (and its /var/run/dpdk prefix) or VPP (and its
// shared memory), the directory, and the lock. Safe to call twice.
func (h *Harness) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	cleanups := h.cleanups
	h.cleanups = nil
	h.mu.Unlock()
	var errs []error
	for i := len(cleanups) - 1; i >= 0; i-- {
		errs = append(errs, cleanups[i]())
	}
	return errors.Join(errs...)
}

func (h *Harness) lock(ctx context.Context) error {
	release, err := ovsdpdk.Lock(ctx)
	if err != nil {
		return err
	}
	h.onClose(release) // registered early, so released after OVS stopped
	return nil
}

// Adapter is one run of the adapter process (ovs-adapter or vpp-adapter).
type Adapter struct {
	cmd         *exec.Cmd
	done        chan struct{}
	MetricsAddr string // host:port of /healthz, /readyz, /metrics
	LogFile     string // JSON log lines; all runs append to it
}

// PID is the process id.
func (a *Adapter) PID() int { return a.cmd.Process.Pid }

// Exited is closed once the process has exited and been reaped.
func (a *Adapter) Exited() <-chan struct{} { return a.done }

// AdapterName is the adapter binary of the node's engine.
func (h *Harness) AdapterName() string {
	if h.cfg.Engine == contracts.EngineVPP {
		return "vpp-adapter"
	}
	return "ovs-adapter"
}

// StartAdapter starts the engine's adapter as a child process (stopping a
// previous run first) and returns once it answers status as ready.
func (h *Harness) StartAdapter(ctx context.Context) error {
	if err := h.StopAdapter(); err != nil {
		return err
	}
	name := h.AdapterName()
	err := h.step("starting "+name, func() error {
		addr, err := freePort()
		if err != nil {
			return err
		}
		logFile := filepath.Join(h.LogDir(), name+".log")
		out, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer out.Close()
		args := []string{"--nats-url", h.adapterNATSURL(), "--node", h.cfg.Node, "--state-dir", h.StateDir(),
			"--metrics-addr", addr, "--log-level", h.cfg.AdapterLogLevel,
			"--shared-dir", h.SharedDir(), "--link-dir", h.LinkDir()}
		if h.cfg.Engine == contracts.EngineVPP {
			args = append(args, "--vpp-api-socket", h.VPP.APISock)
		} else {
			args = append(args, "--ovsdb", h.OVS.DBRemote(), "--ovs-rundir", h.OVS.RunDir())
		}
		args = append(args, h.cfg.AdapterArgs...)
		cmd := exec.Command(filepath.Join(h.Bin, name), args...)
		if h.cfg.AdapterCommand != nil {
			cmd = h.cfg.AdapterCommand(name, args)
		}
		cmd.Stdout, cmd.Stderr = out, out
		// Own process group: Ctrl-C reaches the harness, which stops it by pid.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			return err
		}
		a := &Adapter{cmd: cmd, done: make(chan struct{}), MetricsAddr: addr, LogFile: logFile}
		go func() { _ = cmd.Wait(); close(a.done) }()
		h.mu.Lock()
		first := h.Adapter == nil
		h.Adapter = a
		h.mu.Unlock()
		if first {
			h.onClose(h.StopAdapter)
		}
		if err := h.awaitAdapterReady(ctx, a); err != nil {
			return fmt.Errorf("%w\nadapter log (tail):\n%s", err, tail(logFile, 20))
		}
		return nil
	})
	if err == nil {
		h.Logf("    %s pid %d, metrics http://%s/metrics, log %s", name, h.Adapter.PID(), h.Adapter.MetricsAddr, h.Adapter.LogFile)
	}
	return err
}

// awaitAdapterReady asks the adapter's status over NATS until it is ready.
// A service appearing on NATS has no event to wait for, so this retries
// with a bounded deadline and stops early if the process exits.
func (h *Harness) awaitAdapterReady(ctx context.Context, a *Adapter) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := contracts.NewClient(h.NC, h.cfg.Node, time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		st, err := c.Status(ctx, h.cfg.Engine)
		switch {
		case err == nil && st.Ready:
			return nil
		case err == nil:
			last = fmt.Errorf("not ready: %s", st.Message)
		default:
			last = err
		}
		select {
		case <-a.done:
			return errors.New(h.AdapterName() + " exited")
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last: %v)", h.AdapterName(), ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// KillAdapter kills the adapter with SIGKILL, as a crash would, and waits
// until it is reaped.
func (h *Harness) KillAdapter() error { return h.signalAdapter(syscall.SIGKILL) }

// StopAdapter stops the adapter with SIGTERM (SIGKILL after 10s). No-op when
// it is not running.
func (h *Harness) StopAdapter() error { return h.signalAdapter(syscall.SIGTERM) }

func (h *Harness) signalAdapter(sig syscall.Signal) error {
	h.mu.Lock()
	a := h.Adapter
	h.mu.Unlock()
	if a == nil {
		return nil
	}
	return stopPID(a.cmd.Process, a.done, sig, 10*time.Second)
}

// stopPID signals p and waits (bounded) until done; then SIGKILL.
func stopPID(p *os.Process, done <-chan struct{}, sig syscall.Signal, grace time.Duration) error {
	select {
	case <-done:
		return nil
	default:
	}
	_ = p.Signal(sig)
	select {
	case <-done:
		return nil
	case <-time.After(grace):
	}
	_ = p.Kill()
	select {
	case <-done:
		return nil
	case <-time.After(grace):
		return fmt.Errorf("pid %d did not exit after SIGKILL", p.Pid)
	}
}

// shareMount makes dir a shared mount point of its own (mount --bind dir
// dir; mount --make-rshared dir).
func shareMount(dir string) error {
	if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mount %s on itself: %w", dir, err)
	}
	if err := syscall.Mount("", dir, "", syscall.MS_SHARED|syscall.MS_REC, ""); err != nil {
		return errors.Join(fmt.Errorf("make %s rshared: %w", dir, err), syscall.Unmount(dir, syscall.MNT_DETACH))
	}
	return nil
}

// freePort returns a loopback address with a port free right now.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// tail is the last n lines of a file, for failure messages.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	return lastLines(string(b), n)
}

// AdapterLogTail is the end of the adapter's log, for failure messages.
func (h *Harness) AdapterLogTail(n int) string {
	return tail(filepath.Join(h.LogDir(), h.AdapterName()+".log"), n)
}
