package realvpp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.fd.io/govpp/adapter/socketclient"
	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/vlib"
	"go.fd.io/govpp/core"

	"usrsp.dev/libs/vpp"
)

// vppEnv returns the vpp binary and plugin dir, or skips the test.
func vppEnv(t *testing.T) (bin, plugins string) {
	t.Helper()
	bin = os.Getenv("USRSP_VPP_BIN")
	// CI sets USRSP_VPP_REQUIRED=1 whenever a VPP is available: a suite
	// that silently skipped there would prove nothing.
	skip := t.Skip
	if os.Getenv("USRSP_VPP_REQUIRED") == "1" {
		skip = t.Fatal
	}
	if bin == "" {
		skip("real-VPP suite skipped: set USRSP_VPP_BIN to a vpp " + vpp.BuiltFor +
			" binary (and USRSP_VPP_PLUGIN_PATH to its plugin directory) to run it")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("USRSP_VPP_BIN=%s: %v", bin, err)
	}
	plugins = os.Getenv("USRSP_VPP_PLUGIN_PATH")
	if plugins != "" {
		if _, err := os.Stat(filepath.Join(plugins, "memif_plugin.so")); err != nil {
			t.Fatalf("USRSP_VPP_PLUGIN_PATH=%s has no memif_plugin.so: %v", plugins, err)
		}
	}
	if os.Geteuid() != 0 {
		skip("real-VPP suite skipped: it must run as root (VPP maps shared memory and creates sockets)")
	}
	return bin, plugins
}

// vppInstance is one VPP process started by the test.
type vppInstance struct {
	t       *testing.T
	name    string
	bin     string
	dir     string
	conf    string
	prefix  string
	cmd     *exec.Cmd
	exited  chan struct{}
	conn    *core.Connection
	Client  *vpp.Client
	APISock string
}

// startVPP writes a startup.conf for a VPP without hugepages or DPDK into a
// fresh directory (short: unix socket paths are limited to 107 bytes),
// starts VPP and connects to its API socket. t.Cleanup kills it by pid and
// removes its files.
func startVPP(t *testing.T, name string, core int) *vppInstance {
	t.Helper()
	bin, plugins := vppEnv(t)
	dir, err := os.MkdirTemp("", "usrsp-"+name+"-")
	require.NoError(t, err)
	v := &vppInstance{t: t, name: name, bin: bin, dir: dir, APISock: filepath.Join(dir, "api.sock"),
		prefix: fmt.Sprintf("usrsp%d%s", os.Getpid(), name)}
	pluginConf := "" // VPP's default plugin path and set
	if plugins != "" {
		pluginConf = "plugins {\n  path " + plugins + "\n"
		if _, err := os.Stat(filepath.Join(plugins, "dpdk_plugin.so")); err == nil {
			pluginConf += "  plugin dpdk_plugin.so { disable }\n" // no NICs, no hugepages
		}
		pluginConf += "}\n"
	}
	conf := fmt.Sprintf(`unix {
  nodaemon
  cli-listen %[1]s/cli.sock
  runtime-dir %[1]s
  log %[1]s/vpp.log
  poll-sleep-usec 100
}
api-segment { prefix %[2]s }
socksvr { socket-name %[1]s/api.sock }
statseg { socket-name %[1]s/stats.sock }
memory { main-heap-size 512M main-heap-page-size 4k }
buffers { buffers-per-numa 16384 page-size 4k }
cpu { main-core %[3]d }
%[4]s`, dir, v.prefix, core%runtime.NumCPU(), pluginConf)
	v.conf = filepath.Join(dir, "startup.conf")
	require.NoError(t, os.WriteFile(v.conf, []byte(conf), 0o644))
	t.Cleanup(v.remove)
	v.start()
	return v
}

// start runs VPP and waits (bounded) until its API answers.
func (v *vppInstance) start() {
	t := v.t
	t.Helper()
	_ = os.Remove(v.APISock) // a stale socket of a killed VPP must not count as ready
	out, err := os.OpenFile(filepath.Join(v.dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	defer out.Close()
	v.cmd = exec.Command(v.bin, "-c", v.conf)
	v.cmd.Stdout, v.cmd.Stderr = out, out
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, v.cmd.Start(), "start %s", v.bin)
	v.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(v.cmd, v.exited)
	t.Logf("%s: started VPP pid %d with %s", v.name, v.cmd.Process.Pid, v.conf)

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-v.exited:
			t.Fatalf("%s: VPP exited during start-up; its output:\n%s", v.name, v.logs())
		default:
		}
		conn, err := core.Connect(socketclient.NewVppClient(v.APISock))
		if err == nil {
			if err := vpp.CheckCompatibility(conn); err != nil {
				conn.Disconnect()
				t.Fatalf("%s: %v", v.name, err)
			}
			v.conn, v.Client = conn, vpp.NewClient(conn)
			version, err := v.Client.Version(context.Background())
			require.NoError(t, err)
			t.Logf("%s: VPP %s answers on %s", v.name, version, v.APISock)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: VPP API socket %s not answering within 30s (%v); VPP output:\n%s", v.name, v.APISock, err, v.logs())
		}
		time.Sleep(100 * time.Millisecond) // polling a socket: there is no event to wait for
	}
}

// kill9 kills VPP hard, as a crash would.
func (v *vppInstance) kill9() {
	v.t.Helper()
	v.disconnect()
	v.t.Logf("%s: kill -9 %d", v.name, v.cmd.Process.Pid)
	require.NoError(v.t, v.cmd.Process.Signal(syscall.SIGKILL))
	<-v.exited
}

func (v *vppInstance) disconnect() {
	if v.conn != nil {
		v.conn.Disconnect()
		v.conn, v.Client = nil, nil
	}
}

// remove stops VPP by pid and deletes its files and shared memory.
func (v *vppInstance) remove() {
	v.disconnect()
	if v.cmd != nil && v.cmd.Process != nil {
		select {
		case <-v.exited:
		default:
			_ = v.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-v.exited:
			case <-time.After(5 * time.Second):
				_ = v.cmd.Process.Signal(syscall.SIGKILL)
				<-v.exited
			}
		}
	}
	if v.t.Failed() {
		v.t.Logf("%s: VPP output:\n%s", v.name, v.logs())
	}
	shm, _ := filepath.Glob("/dev/shm/" + v.prefix + "*")
	for _, f := range shm {
		_ = os.Remove(f)
	}
	_ = os.RemoveAll(v.dir)
}

func (v *vppInstance) logs() string {
	var b bytes.Buffer
	for _, f := range []string{"stdout.log", "vpp.log"} {
		data, _ := os.ReadFile(filepath.Join(v.dir, f))
		fmt.Fprintf(&b, "--- %s\n%s", f, data)
	}
	return b.String()
}

// cli runs a VPP CLI command over the binary API and logs it.
func (v *vppInstance) cli(cmd string) string {
	v.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := vlib.NewServiceClient(v.conn).CliInband(ctx, &vlib.CliInband{Cmd: cmd})
	require.NoError(v.t, err, "%s: cli %q", v.name, cmd)
	v.t.Logf("%s# %s\n%s", v.name, cmd, r.Reply)
	return r.Reply
}

// interfaceFlags returns the flags of the interface named name.
func (v *vppInstance) interfaceFlags(name string) (interface_types.IfStatusFlags, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := interfaces.NewServiceClient(v.conn).SwInterfaceDump(ctx, &interfaces.SwInterfaceDump{
		SwIfIndex: ^interface_types.InterfaceIndex(0)})
	require.NoError(v.t, err)
	var flags interface_types.IfStatusFlags
	found := false
	for {
		d, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return flags, found
		}
		require.NoError(v.t, err)
		if d.InterfaceName == name {
			flags, found = d.Flags, true
		}
	}
}

// waitLinkUp waits (bounded) until the interface's link is up: memif
// slaves retry their connection every few seconds.
func (v *vppInstance) waitLinkUp(name string, within time.Duration) {
	v.t.Helper()
	deadline := time.Now().Add(within)
	for {
		if f, ok := v.interfaceFlags(name); ok && f&interface_types.IF_STATUS_API_FLAG_LINK_UP != 0 {
			v.t.Logf("%s: %s link up", v.name, name)
			return
		}
		if time.Now().After(deadline) {
			v.cli("show memif")
			v.t.Fatalf("%s: %s link not up within %s", v.name, name, within)
		}
		time.Sleep(200 * time.Millisecond) // VPP has no link event on this API we could await cheaply
	}
}

var pingStats = regexp.MustCompile(`(\d+) sent, (\d+) received`)

// ping pings dst from this VPP and returns how many replies came back.
func (v *vppInstance) ping(dst string) int {
	v.t.Helper()
	out := v.cli("ping " + dst + " repeat 5 interval 0.2")
	m := pingStats.FindStringSubmatch(out)
	require.NotNil(v.t, m, "%s: no ping statistics in %q (is ping_plugin.so loaded?)", v.name, out)
	n, _ := strconv.Atoi(m[2])
	return n
}

var _ api.Connection = (*core.Connection)(nil)

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func mustPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	require.NoError(t, err)
	return p
}
