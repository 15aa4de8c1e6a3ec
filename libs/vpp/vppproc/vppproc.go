// Package vppproc starts real VPP processes, from USRSP_VPP_BIN, for the
// real-VPP tests, the e2e harness and the demo: one startup.conf (no
// hugepages, no DPDK plugin; API, CLI and stats sockets, log and
// shared-memory prefix of its own in one directory) and one life cycle
// (start and wait until the API answers, kill, restart, stop). It never
// touches a VPP the host already runs. The fake VPP is vpptest's.
package vppproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.fd.io/govpp/adapter/socketclient"

	"usrsp.dev/libs/vpp"
)

// The environment that names the VPP to run.
const (
	EnvBin        = "USRSP_VPP_BIN"         // the vpp binary
	EnvPluginPath = "USRSP_VPP_PLUGIN_PATH" // its plugin directory; empty: VPP's default
	EnvRequired   = "USRSP_VPP_REQUIRED"    // "1": a VPP test that cannot run fails instead of skipping
)

// Required reports whether USRSP_VPP_REQUIRED=1 (CI, whenever a VPP is
// there): a suite that silently skipped would prove nothing.
func Required() bool { return os.Getenv(EnvRequired) == "1" }

// Missing says why no VPP can be started here, "" when one can: the
// binary from USRSP_VPP_BIN, the memif plugin in USRSP_VPP_PLUGIN_PATH (if
// set), and root.
func Missing() string {
	bin, plugins := os.Getenv(EnvBin), os.Getenv(EnvPluginPath)
	switch {
	case bin == "":
		return "set " + EnvBin + " to a VPP " + vpp.BuiltFor + " binary (and " + EnvPluginPath + " to its plugin directory)"
	case !exists(bin):
		return EnvBin + "=" + bin + ": no such file"
	case plugins != "" && !exists(filepath.Join(plugins, "memif_plugin.so")):
		return EnvPluginPath + "=" + plugins + ": no memif_plugin.so there"
	case os.Geteuid() != 0:
		return "VPP needs root (shared memory, network namespaces)"
	}
	return ""
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// Config is a VPP to start.
type Config struct {
	Name string // for messages
	// Dir gets startup.conf, the sockets and the logs; it is created if
	// missing. Keep it short: a unix socket path has at most 107 bytes.
	Dir string
	// MainCore pins VPP's main thread (modulo the CPU count), so that
	// several VPPs need not share one CPU.
	MainCore int
	// Command makes the VPP process, e.g. inside a pod's network
	// namespace; nil runs the binary directly.
	Command func(ctx context.Context, name string, args ...string) *exec.Cmd
	// StartupCLI are CLI commands VPP runs at every start (unix {
	// startup-config }), as an operator configures a node's uplink: a
	// restarted VPP restores them by itself.
	StartupCLI []string
}

// VPP is one VPP process. It idles with poll-sleep-usec, so several fit
// on two cores.
type VPP struct {
	Name    string
	Dir     string
	APISock string // binary API (govpp: vpp-adapter, pod-consumer apply)
	CLISock string // vppctl -s
	Bin     string
	prefix  string // api-segment prefix: /dev/shm/<prefix>-*
	command func(ctx context.Context, name string, args ...string) *exec.Cmd

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd is reaped
}

var seq atomic.Int64 // tells apart the shared-memory prefixes of one process's VPPs

// New writes the startup.conf of a VPP into c.Dir; Start starts it.
func New(c Config) (*VPP, error) {
	if r := Missing(); r != "" {
		return nil, errors.New("no VPP: " + r)
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, err
	}
	v := &VPP{Name: c.Name, Dir: c.Dir, APISock: filepath.Join(c.Dir, "api.sock"), CLISock: filepath.Join(c.Dir, "cli.sock"),
		Bin: os.Getenv(EnvBin), prefix: fmt.Sprintf("usrsp%d-%d", os.Getpid(), seq.Add(1)), command: c.Command}
	if v.command == nil {
		v.command = exec.CommandContext
	}
	startup := "" // unix { startup-config }
	if len(c.StartupCLI) > 0 {
		file := filepath.Join(c.Dir, "startup.cli")
		if err := os.WriteFile(file, []byte(strings.Join(c.StartupCLI, "\n")+"\n"), 0o644); err != nil {
			return nil, err
		}
		startup = "\n  startup-config " + file
	}
	plugins := "" // VPP's default plugin path and set
	if p := os.Getenv(EnvPluginPath); p != "" {
		plugins = "plugins {\n  path " + p + "\n"
		if exists(filepath.Join(p, "dpdk_plugin.so")) {
			plugins += "  plugin dpdk_plugin.so { disable }\n" // no NICs, no hugepages
		}
		plugins += "}\n"
	}
	conf := fmt.Sprintf(`unix {
  nodaemon
  cli-listen %[1]s
  runtime-dir %[2]s
  log %[2]s/vpp.log
  poll-sleep-usec 100%[7]s
}
api-segment { prefix %[3]s }
socksvr { socket-name %[4]s }
statseg { socket-name %[2]s/stats.sock }
memory { main-heap-size 512M main-heap-page-size 4k }
buffers { buffers-per-numa 16384 page-size 4k }
cpu { main-core %[5]d }
%[6]s`, v.CLISock, c.Dir, v.prefix, v.APISock, c.MainCore%runtime.NumCPU(), plugins, startup)
	if err := os.WriteFile(v.Conf(), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return v, nil
}

// Conf is the startup.conf path.
func (v *VPP) Conf() string { return filepath.Join(v.Dir, "startup.conf") }

// PID is the running process's id (0 when stopped).
func (v *VPP) PID() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cmd == nil || closed(v.done) {
		return 0
	}
	return v.cmd.Process.Pid
}

// Start starts VPP and returns once its binary API answers (bounded by
// 30 s). It fails if VPP is already running.
func (v *VPP) Start(ctx context.Context) error {
	if pid := v.PID(); pid != 0 {
		return fmt.Errorf("%s: VPP already running (pid %d)", v.Name, pid)
	}
	// Stale sockets of a killed VPP must not count as ready.
	_ = os.Remove(v.APISock)
	_ = os.Remove(v.CLISock)
	out, err := os.OpenFile(filepath.Join(v.Dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := v.command(context.WithoutCancel(ctx), v.Bin, "-c", v.Conf())
	cmd.Stdout, cmd.Stderr = out, out
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true // Ctrl-C reaches us; we stop it by pid
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start %s: %w", v.Name, v.Bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	v.mu.Lock()
	v.cmd, v.done = cmd, done
	v.mu.Unlock()
	if err := v.awaitUp(ctx, done); err != nil {
		_ = v.Kill(syscall.SIGKILL)
		return fmt.Errorf("%s: %w\nVPP output (tail):\n%s", v.Name, err, v.LogTail(20))
	}
	return nil
}

// awaitUp polls (VPP has no start-up event to wait for) until VPP
// answers, bounded by 30 s.
func (v *VPP) awaitUp(ctx context.Context, done <-chan struct{}) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := v.answers()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("VPP not answering within 30s: %w", err)
		}
		select {
		case <-done:
			return errors.New("VPP exited during start-up")
		case <-ctx.Done():
			return fmt.Errorf("VPP not up: %w (last: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// answers says whether both sockets are there and a govpp client completes
// its handshake on the API socket, and if not, why.
func (v *VPP) answers() error {
	if !exists(v.CLISock) || !exists(v.APISock) {
		return fmt.Errorf("no sockets %s and %s yet", v.APISock, v.CLISock)
	}
	c := socketclient.NewVppClient(v.APISock)
	if err := c.Connect(); err != nil {
		return fmt.Errorf("API socket %s: %w", v.APISock, err)
	}
	return c.Disconnect()
}

// Kill sends sig (syscall.SIGKILL for a crash) and waits until the process
// is reaped, sending SIGKILL after 10 s. No-op when it is not running.
func (v *VPP) Kill(sig syscall.Signal) error {
	const grace = 10 * time.Second
	v.mu.Lock()
	cmd, done := v.cmd, v.done
	v.mu.Unlock()
	if cmd == nil || closed(done) {
		return nil
	}
	for _, s := range []syscall.Signal{sig, syscall.SIGKILL} {
		_ = cmd.Process.Signal(s)
		t := time.NewTimer(grace)
		select {
		case <-done:
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	return fmt.Errorf("%s: VPP pid %d did not exit after SIGKILL", v.Name, cmd.Process.Pid)
}

func closed(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// Restart kills VPP with SIGKILL, as a crash would, and starts it again
// with the same configuration (and no interfaces).
func (v *VPP) Restart(ctx context.Context) error {
	if err := v.Kill(syscall.SIGKILL); err != nil {
		return err
	}
	v.removeShm()
	return v.Start(ctx)
}

// Stop stops VPP (SIGTERM, then SIGKILL) and removes its shared memory
// files. Its directory is removed by whoever owns it.
func (v *VPP) Stop() error {
	err := v.Kill(syscall.SIGTERM)
	v.removeShm()
	return err
}

func (v *VPP) removeShm() {
	shm, _ := filepath.Glob("/dev/shm/" + v.prefix + "*")
	for _, f := range shm {
		_ = os.Remove(f)
	}
}

// LogTail is the end of VPP's output and log, for failure messages.
func (v *VPP) LogTail(n int) string {
	var b strings.Builder
	for _, f := range []string{"stdout.log", "vpp.log"} {
		data, _ := os.ReadFile(filepath.Join(v.Dir, f))
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		fmt.Fprintf(&b, "--- %s\n%s\n", f, strings.Join(lines[max(0, len(lines)-n):], "\n"))
	}
	return b.String()
}

var pingStats = regexp.MustCompile(`(\d+) sent, (\d+) received`)

// PingReplies reads the number of replies from the output of VPP's ping
// CLI ("5 sent, 5 received"); ok is false when the output has no
// statistics (is ping_plugin.so loaded?).
func PingReplies(out string) (replies int, ok bool) {
	m := pingStats.FindStringSubmatch(out)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[2])
	return n, err == nil
}
