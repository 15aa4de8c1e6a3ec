package harness

import (
	"bytes"
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
	"syscall"
	"time"
)

// VPP environment variables, as the real-VPP suite reads them.
const (
	EnvVPPBin        = "USRSP_VPP_BIN"
	EnvVPPPluginPath = "USRSP_VPP_PLUGIN_PATH"
	EnvVPPRequired   = "USRSP_VPP_REQUIRED"
)

// VPPMissing says why a VPP cannot be started here ("" if it can): the
// binary from USRSP_VPP_BIN, vppctl next to it, and root.
func VPPMissing() string {
	bin := os.Getenv(EnvVPPBin)
	switch {
	case bin == "":
		return "set " + EnvVPPBin + " to a VPP 25.10 binary (and " + EnvVPPPluginPath + " to its plugin directory)"
	case !exists(bin):
		return EnvVPPBin + "=" + bin + ": no such file"
	case !exists(vppctlOf(bin)):
		return "no vppctl next to " + bin
	case os.Geteuid() != 0:
		return "VPP needs root (shared memory, network namespaces)"
	}
	return ""
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// vppctlOf is the vppctl installed next to the vpp binary.
func vppctlOf(bin string) string { return filepath.Join(filepath.Dir(bin), "vppctl") }

// VPP is one VPP process: the node's (Harness.VPP) or a pod's
// (Pod.StartVPP). It runs without hugepages or DPDK, with its own
// startup.conf, API, CLI and stats sockets and shared-memory prefix in Dir,
// and idles with poll-sleep-usec so several fit on 2 cores.
type VPP struct {
	Name    string
	Dir     string // startup.conf, sockets, logs
	APISock string // binary API (govpp, vpp-adapter, pod-consumer apply)
	CLISock string // vppctl -s
	bin     string
	prefix  string // api-segment prefix: /dev/shm/<prefix>-*
	// command makes the VPP process, cli the vppctl one (in the host, or in
	// a pod's namespaces).
	command, cli func(ctx context.Context, name string, args ...string) *exec.Cmd

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

var vppSeq struct {
	sync.Mutex
	n int
}

// newVPP writes the startup.conf of a VPP named name into dir. mainCore
// pins its main thread (host on 0, pods on 1, so they do not all share one).
func newVPP(name, dir string, mainCore int, command, cli func(context.Context, string, ...string) *exec.Cmd) (*VPP, error) {
	bin := os.Getenv(EnvVPPBin)
	if r := VPPMissing(); r != "" {
		return nil, errors.New("harness: no VPP: " + r)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	vppSeq.Lock()
	vppSeq.n++
	seq := vppSeq.n
	vppSeq.Unlock()
	v := &VPP{Name: name, Dir: dir, APISock: filepath.Join(dir, "api.sock"), CLISock: filepath.Join(dir, "cli.sock"),
		bin: bin, prefix: fmt.Sprintf("usrsp%d-%d", os.Getpid(), seq), command: command, cli: cli}
	plugins := ""
	if p := os.Getenv(EnvVPPPluginPath); p != "" {
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
  poll-sleep-usec 100
}
api-segment { prefix %[3]s }
socksvr { socket-name %[4]s }
statseg { socket-name %[2]s/stats.sock }
memory { main-heap-size 512M main-heap-page-size 4k }
buffers { buffers-per-numa 16384 page-size 4k }
cpu { main-core %[5]d }
%[6]s`, v.CLISock, dir, v.prefix, v.APISock, mainCore, plugins)
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
	if v.cmd == nil {
		return 0
	}
	select {
	case <-v.done:
		return 0
	default:
		return v.cmd.Process.Pid
	}
}

// Start starts VPP and returns once its CLI answers and its API socket
// exists. It fails if VPP is already running.
func (v *VPP) Start(ctx context.Context) error {
	if v.PID() != 0 {
		return fmt.Errorf("%s: VPP already running (pid %d)", v.Name, v.PID())
	}
	// Stale sockets of a killed VPP must not count as ready.
	_ = os.Remove(v.APISock)
	_ = os.Remove(v.CLISock)
	out, err := os.OpenFile(filepath.Join(v.Dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := v.command(context.WithoutCancel(ctx), v.bin, "-c", v.Conf())
	cmd.Stdout, cmd.Stderr = out, out
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true // Ctrl-C reaches us; we stop it by pid
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start %s: %w", v.Name, v.bin, err)
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

// awaitUp polls the CLI (there is no start-up event to wait for) until
// `show version` answers and the API socket is there, bounded by 30 s.
func (v *VPP) awaitUp(ctx context.Context, done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if exists(v.CLISock) && exists(v.APISock) {
			if _, err := v.CLI(ctx, "show version"); err == nil {
				return nil
			} else {
				last = err
			}
		}
		select {
		case <-done:
			return errors.New("VPP exited during start-up")
		case <-ctx.Done():
			return fmt.Errorf("VPP not up: %w (last: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// Kill sends sig (syscall.SIGKILL for a crash) and waits until the process
// is reaped (SIGKILL after 10 s). No-op when it is not running.
func (v *VPP) Kill(sig syscall.Signal) error {
	v.mu.Lock()
	cmd, done := v.cmd, v.done
	v.mu.Unlock()
	if cmd == nil {
		return nil
	}
	return stopPID(cmd.Process, done, sig, 10*time.Second)
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

// CLI runs one vppctl command against this VPP's CLI socket (in the pod's
// namespaces for a pod VPP) and returns its output.
func (v *VPP) CLI(ctx context.Context, command string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := v.cli(ctx, vppctlOf(v.bin), "-s", v.CLISock, command)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s: vppctl %q: %w: %s", v.Name, command, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// LogTail is the end of VPP's output and log, for failure messages.
func (v *VPP) LogTail(n int) string {
	return "--- stdout\n" + tail(filepath.Join(v.Dir, "stdout.log"), n) + "\n--- vpp.log\n" + tail(filepath.Join(v.Dir, "vpp.log"), n)
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
	v, err := newVPP(p.Name+"-vpp", dir, 1%runtime.NumCPU(), p.Command, inPod)
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

var pingStats = regexp.MustCompile(`(\d+) sent, (\d+) received`)

// Ping runs `ping <dst> repeat <n> interval 0.2` in this VPP and returns
// the number of replies and the CLI output.
func (v *VPP) Ping(ctx context.Context, dst string, n int) (int, string, error) {
	out, err := v.CLI(ctx, fmt.Sprintf("ping %s repeat %d interval 0.2", dst, n))
	if err != nil {
		return 0, out, err
	}
	m := pingStats.FindStringSubmatch(out)
	if m == nil {
		return 0, out, fmt.Errorf("%s: no ping statistics in %q (is ping_plugin.so loaded?)", v.Name, out)
	}
	got, _ := strconv.Atoi(m[2])
	return got, out, nil
}

// Interfaces lists the names of every interface but local0. On the
// harness's private VPP everything else was made by the vpp-adapter.
func (v *VPP) Interfaces(ctx context.Context) ([]string, error) {
	out, err := v.CLI(ctx, "show interface")
	if err != nil {
		return nil, err
	}
	return ParseShowInterface(out), nil
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

// BridgeDomains lists the bridge domain ids in use (VPP's default domain 0
// is never listed).
func (v *VPP) BridgeDomains(ctx context.Context) ([]uint32, error) {
	out, err := v.CLI(ctx, "show bridge-domain")
	if err != nil {
		return nil, err
	}
	return ParseShowBridgeDomain(out), nil
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
	out, err := v.CLI(ctx, "show memif")
	if err != nil {
		return nil, err
	}
	return ParseMemifSockets(out), nil
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
