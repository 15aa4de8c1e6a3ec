// Package ovsdpdk starts and stops a private OVS-DPDK instance (its own
// ovsdb-server and ovs-vswitchd, run, db and log directories and DPDK file
// prefix) for tests, the end-to-end suite, the demo and benchmarks. It never
// touches the system's OVS. Both daemons run as children of the caller and
// are stopped by pid.
package ovsdpdk

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"usrsp.dev/libs/testkit"
)

// Default paths of the Debian packages (openvswitch-switch-dpdk).
const (
	DefaultVswitchd = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk"
	DefaultSchema   = "/usr/share/openvswitch/vswitch.ovsschema"
)

// DefaultSocketMemMB is the DPDK memory of an instance. Two instances of
// this size fit in the hugepages install-deps.sh reserves (MaxInstances).
const DefaultSocketMemMB = 256

// Config says how to run the instance. Only Dir is required.
type Config struct {
	// Dir holds run/, db/ and log/. Keep it short: vhost-user sockets live
	// in run/ and unix socket paths are limited to 107 bytes.
	Dir string
	// FilePrefix is the DPDK --file-prefix (default: "usrsp-" + random hex),
	// so several DPDK processes never share /var/run/dpdk state.
	FilePrefix string
	// SocketMemMB is dpdk-socket-mem and dpdk-socket-limit in MB (default
	// DefaultSocketMemMB). Without the limit the mempool grows to ~800 MB.
	SocketMemMB int
	// Netns, if set, is a named network namespace (/var/run/netns/<name>)
	// in which ovs-vswitchd runs, so its netdevs (bridge internal ports,
	// system ports) and the kernel routes and neighbours its userspace
	// tunnels use are that namespace's: one "node" per namespace.
	// ovsdb-server stays in the caller's namespace (unix sockets only).
	Netns string
	// PMDCPUMask is pmd-cpu-mask (default "0x2": one PMD thread on CPU 1).
	PMDCPUMask string
	// PMDMaxSleepUS is pmd-maxsleep in µs (default 10000) so an idle PMD
	// does not burn its core.
	PMDMaxSleepUS int
	// Vswitchd is the DPDK-enabled ovs-vswitchd binary (default DefaultVswitchd).
	Vswitchd string
	// ReadyTimeout bounds each wait for a daemon (default 30s).
	ReadyTimeout time.Duration
	// VswitchdLog are ovs-vswitchd -v settings (module[:destination]:level).
	// nil means "dpif_netdev:warn": at info, dpif_netdev logs one line per
	// rx queue of every port on each port added or deleted, which with a
	// thousand ports made vswitchd's restart 7 times slower. An empty
	// slice keeps OVS's defaults.
	VswitchdLog []string
}

func (c *Config) setDefaults() error {
	if c.Dir == "" {
		return errors.New("ovsdpdk: Config.Dir is empty")
	}
	if c.FilePrefix == "" {
		b := make([]byte, 4)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		c.FilePrefix = "usrsp-" + hex.EncodeToString(b)
	}
	if c.SocketMemMB <= 0 {
		c.SocketMemMB = DefaultSocketMemMB
	}
	if c.Netns != "" {
		if _, err := os.Stat(filepath.Join(testkit.NetnsDir, c.Netns)); err != nil {
			return fmt.Errorf("ovsdpdk: Config.Netns %q: %w", c.Netns, err)
		}
	}
	if c.PMDCPUMask == "" {
		c.PMDCPUMask = "0x2"
	}
	if c.PMDMaxSleepUS <= 0 {
		c.PMDMaxSleepUS = 10000
	}
	if c.Vswitchd == "" {
		c.Vswitchd = DefaultVswitchd
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = 30 * time.Second
	}
	if c.VswitchdLog == nil {
		c.VswitchdLog = []string{"dpif_netdev:warn"}
	}
	return nil
}

// Instance is a running private OVS-DPDK.
type Instance struct {
	cfg                    Config
	runDir, dbDir, logDir  string
	ovsdb, vswitchd        *exec.Cmd
	ovsdbDone, vswitchDone chan struct{}
}

// Start creates the database, starts ovsdb-server and ovs-vswitchd with DPDK
// and returns once DPDK is initialized and vswitchd has applied the
// database. On error everything started is stopped again.
func Start(ctx context.Context, cfg Config) (inst *Instance, err error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	for _, bin := range []string{cfg.Vswitchd, "ovsdb-server", "ovsdb-tool", "ovs-vsctl"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("ovsdpdk: %s not found (run deploy/scripts/install-deps.sh): %w", bin, err)
		}
	}
	if free, ok := freeHugeMB(); ok && free < cfg.SocketMemMB {
		// DPDK would fail after seconds with a less telling message.
		return nil, fmt.Errorf("ovsdpdk: %d MB of free hugepages, the instance needs %d: another instance holds them, or too few are reserved (deploy/scripts/install-deps.sh)", free, cfg.SocketMemMB)
	}
	i := &Instance{cfg: cfg,
		runDir: filepath.Join(cfg.Dir, "run"), dbDir: filepath.Join(cfg.Dir, "db"), logDir: filepath.Join(cfg.Dir, "log")}
	for _, d := range []string{i.runDir, i.dbDir, i.logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("ovsdpdk: %w", err)
		}
	}
	success := false
	defer func() {
		if !success {
			_ = i.Stop()
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, cfg.ReadyTimeout)
	defer cancel()

	db := filepath.Join(i.dbDir, "conf.db")
	if out, err := exec.CommandContext(ctx, "ovsdb-tool", "create", db, DefaultSchema).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ovsdpdk: ovsdb-tool create %s: %v: %s", db, err, bytes.TrimSpace(out))
	}
	i.ovsdb, i.ovsdbDone, err = i.spawn("ovsdb-server", "ovsdb-server", db,
		"--remote=punix:"+i.DBSocket(),
		"--pidfile="+filepath.Join(i.runDir, "ovsdb-server.pid"),
		"--unixctl="+filepath.Join(i.runDir, "ovsdb-server.ctl"),
		"--log-file="+filepath.Join(i.logDir, "ovsdb-server.log"))
	if err != nil {
		return nil, err
	}
	if err := i.awaitSocket(ctx); err != nil {
		return nil, err
	}
	// ovs-ctl records the version at start; so do we (Status reports it).
	version, err := run(ctx, nil, cfg.Vswitchd, "--version")
	if err != nil {
		return nil, err
	}
	// "ovs-vswitchd-dpdk (Open vSwitch) 3.1.0": the last word of line one.
	words := append([]string{"unknown"}, strings.Fields(strings.SplitN(version, "\n", 2)[0])...)
	version = words[len(words)-1]
	extra := "--no-pci --no-telemetry --file-prefix=" + cfg.FilePrefix
	mem := strconv.Itoa(cfg.SocketMemMB)
	if _, err := i.Vsctl(ctx, "--no-wait", "init", "--", "set", "Open_vSwitch", ".",
		"ovs_version="+strconv.Quote(version),
		"other_config:dpdk-init=true",
		"other_config:dpdk-socket-mem="+mem,
		"other_config:dpdk-socket-limit="+mem,
		"other_config:dpdk-extra="+strconv.Quote(extra),
		"other_config:pmd-cpu-mask="+cfg.PMDCPUMask,
		"other_config:pmd-maxsleep="+strconv.Itoa(cfg.PMDMaxSleepUS)); err != nil {
		return nil, err
	}
	if err := i.startVswitchd(ctx); err != nil {
		return nil, err
	}
	success = true
	return i, nil
}

// DBSocket is the path of the OVSDB unix socket.
func (i *Instance) DBSocket() string { return filepath.Join(i.runDir, "db.sock") }

// DBRemote is the OVSDB remote in OVS syntax ("unix:<path>").
func (i *Instance) DBRemote() string { return "unix:" + i.DBSocket() }

// RunDir is OVS_RUNDIR: pid and control files, and the sockets of
// dpdkvhostuser (server mode) ports.
func (i *Instance) RunDir() string { return i.runDir }

// LogDir holds ovsdb-server.log and ovs-vswitchd.log.
func (i *Instance) LogDir() string { return i.logDir }

// FilePrefix is the DPDK file prefix of ovs-vswitchd.
func (i *Instance) FilePrefix() string { return i.cfg.FilePrefix }

// VswitchdPID is the pid of the running ovs-vswitchd (0 if stopped).
func (i *Instance) VswitchdPID() int { return pidOf(i.vswitchd, i.vswitchDone) }

// OVSDBPID is the pid of the running ovsdb-server (0 if stopped).
func (i *Instance) OVSDBPID() int { return pidOf(i.ovsdb, i.ovsdbDone) }

// Vsctl runs ovs-vsctl against this instance and returns its trimmed stdout.
func (i *Instance) Vsctl(ctx context.Context, args ...string) (string, error) {
	timeout := int(i.cfg.ReadyTimeout / time.Second)
	all := append([]string{"--db=" + i.DBRemote(), "--timeout=" + strconv.Itoa(timeout)}, args...)
	return run(ctx, i.env(), "ovs-vsctl", all...)
}

// Appctl runs ovs-appctl against this instance's ovs-vswitchd. Never call
// netdev-dpdk/get-mempool-info: it crashes OVS 3.1 on a peerless
// vhost-user-client port.
func (i *Instance) Appctl(ctx context.Context, args ...string) (string, error) {
	all := append([]string{"-t", filepath.Join(i.runDir, "ovs-vswitchd.ctl")}, args...)
	return run(ctx, i.env(), "ovs-appctl", all...)
}

// RestartVswitchd stops ovs-vswitchd (SIGKILL when crash is true, as after a
// crash, else SIGTERM) and starts it again on the same database. It returns
// once DPDK is initialized again and vswitchd has applied the database.
func (i *Instance) RestartVswitchd(ctx context.Context, crash bool) error {
	sig := syscall.SIGTERM
	if crash {
		sig = syscall.SIGKILL
	}
	if err := stopProcess(i.vswitchd, i.vswitchDone, sig, i.cfg.ReadyTimeout); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, i.cfg.ReadyTimeout)
	defer cancel()
	// dpdk_initialized stays true in the database after vswitchd dies;
	// reset it so that waiting for it means this vswitchd initialized DPDK.
	if _, err := i.Vsctl(ctx, "--no-wait", "set", "Open_vSwitch", ".", "dpdk_initialized=false"); err != nil {
		return err
	}
	return i.startVswitchd(ctx)
}

// Stop stops both daemons by pid (SIGTERM, then SIGKILL) and removes the
// run, db and log directories and DPDK's /var/run/dpdk/<prefix>. Safe to
// call twice.
func (i *Instance) Stop() error {
	errs := []error{
		stopProcess(i.vswitchd, i.vswitchDone, syscall.SIGTERM, 10*time.Second),
		stopProcess(i.ovsdb, i.ovsdbDone, syscall.SIGTERM, 10*time.Second),
	}
	for _, d := range []string{i.runDir, i.dbDir, i.logDir, filepath.Join("/var/run/dpdk", i.cfg.FilePrefix)} {
		errs = append(errs, os.RemoveAll(d))
	}
	return errors.Join(errs...)
}

// VswitchdLogTail returns the last n lines of ovs-vswitchd.log, for test
// failure messages.
func (i *Instance) VswitchdLogTail(n int) string {
	b, _ := os.ReadFile(filepath.Join(i.logDir, "ovs-vswitchd.log"))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (i *Instance) startVswitchd(ctx context.Context) error {
	args := []string{i.DBRemote(),
		"--pidfile=" + filepath.Join(i.runDir, "ovs-vswitchd.pid"),
		"--unixctl=" + filepath.Join(i.runDir, "ovs-vswitchd.ctl"),
		"--log-file=" + filepath.Join(i.logDir, "ovs-vswitchd.log"),
		"-vconsole:off"}
	for _, v := range i.cfg.VswitchdLog {
		args = append(args, "-v"+v)
	}
	bin := i.cfg.Vswitchd
	if i.cfg.Netns != "" {
		// ip execs vswitchd in place (same pid) after entering the netns.
		args = append([]string{"netns", "exec", i.cfg.Netns, bin}, args...)
		bin = "ip"
	}
	var err error
	i.vswitchd, i.vswitchDone, err = i.spawn(filepath.Base(i.cfg.Vswitchd), bin, args...)
	if err != nil {
		return err
	}
	// Both waits are event driven: ovs-vsctl watches the database. A write
	// without --no-wait bumps next_cfg and waits until this vswitchd has
	// applied the whole database (cur_cfg catches up).
	if _, err := i.Vsctl(ctx, "wait-until", "Open_vSwitch", ".", "dpdk_initialized=true"); err != nil {
		return fmt.Errorf("ovsdpdk: DPDK not initialized: %w\n%s", err, i.VswitchdLogTail(20))
	}
	stamp := "external_ids:usrsp-harness-started=" + strconv.FormatInt(time.Now().UnixNano(), 10)
	if _, err := i.Vsctl(ctx, "set", "Open_vSwitch", ".", stamp); err != nil {
		return fmt.Errorf("ovsdpdk: vswitchd did not apply the database: %w\n%s", err, i.VswitchdLogTail(20))
	}
	return nil
}

// spawn starts a daemon in the foreground as our child, output to the log
// dir's <name>.out, and returns a channel closed when it has exited (and
// been reaped).
func (i *Instance) spawn(name, bin string, args ...string) (*exec.Cmd, chan struct{}, error) {
	out, err := os.OpenFile(filepath.Join(i.logDir, name+".out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("ovsdpdk: %w", err)
	}
	defer out.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = i.env()
	cmd.Dir = i.runDir
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group: a Ctrl-C of `go test` must not race our Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("ovsdpdk: start %s: %w", bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	return cmd, done, nil
}

// awaitSocket waits until ovsdb-server accepts connections. A socket's
// appearance has no event to subscribe to, so this polls with a bounded
// deadline (ctx) and also stops when the daemon exits.
func (i *Instance) awaitSocket(ctx context.Context) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := net.Dial("unix", i.DBSocket()); err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ovsdpdk: ovsdb-server not listening on %s: %w", i.DBSocket(), ctx.Err())
		case <-i.ovsdbDone:
			return fmt.Errorf("ovsdpdk: ovsdb-server exited; see %s", i.logDir)
		case <-tick.C:
		}
	}
}

func (i *Instance) env() []string {
	return append(os.Environ(), "OVS_RUNDIR="+i.runDir, "OVS_DBDIR="+i.dbDir, "OVS_LOGDIR="+i.logDir)
}

// freeHugeMB is the free hugepage memory of the default size in MB, from
// /proc/meminfo (ok false if it cannot be read).
func freeHugeMB() (mb int, ok bool) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	return parseFreeHugeMB(string(b))
}

// parseFreeHugeMB reads free hugepage MB from meminfo text. Reserved pages
// (HugePages_Rsvd) count as free there but are promised to a mapping
// already, so they are not free for a new instance.
func parseFreeHugeMB(meminfo string) (mb int, ok bool) {
	var free, rsvd, sizeKB int
	for _, line := range strings.Split(meminfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "HugePages_Free:":
			free, _ = strconv.Atoi(f[1])
		case "HugePages_Rsvd:":
			rsvd, _ = strconv.Atoi(f[1])
		case "Hugepagesize:":
			sizeKB, _ = strconv.Atoi(f[1])
		}
	}
	return max(0, free-rsvd) * sizeKB / 1024, sizeKB > 0
}

func pidOf(cmd *exec.Cmd, done chan struct{}) int {
	if cmd == nil || cmd.Process == nil {
		return 0
	}
	select {
	case <-done:
		return 0
	default:
		return cmd.Process.Pid
	}
}

// stopProcess signals the process by pid and waits (bounded) for it to be
// reaped; after the timeout it sends SIGKILL.
func stopProcess(cmd *exec.Cmd, done chan struct{}, sig syscall.Signal, timeout time.Duration) error {
	if cmd == nil || cmd.Process == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
	}
	_ = cmd.Process.Kill()
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("ovsdpdk: %s (pid %d) did not exit", filepath.Base(cmd.Path), cmd.Process.Pid)
	}
}

func run(ctx context.Context, env []string, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", bin, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}
