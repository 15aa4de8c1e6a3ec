package realvpp_test

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/vlib"
	"go.fd.io/govpp/core"

	"usrsp.dev/libs/vpp"
	"usrsp.dev/libs/vpp/vppproc"
	"usrsp.dev/libs/vpp/vpptest"
)

// vppEnv skips the test when no VPP can run here (vpptest.NeedVPP).
func vppEnv(t *testing.T) {
	t.Helper()
	vpptest.NeedVPP(t)
}

// vppInstance is one VPP process started by the test, with a binary-API
// connection to it.
type vppInstance struct {
	t       *testing.T
	name    string
	dir     string
	proc    *vppproc.VPP
	conn    *core.Connection
	Client  *vpp.Client
	APISock string
}

// startVPP starts a VPP without hugepages or DPDK with its main thread on
// CPU core, and connects to its API socket. t.Cleanup stops it by pid and
// removes its files.
func startVPP(t *testing.T, name string, core int) *vppInstance {
	t.Helper()
	proc := vpptest.StartVPP(t, name, core)
	v := &vppInstance{t: t, name: name, dir: proc.Dir, proc: proc, APISock: proc.APISock}
	v.connect()
	return v
}

// start starts VPP again after kill9 and reconnects.
func (v *vppInstance) start() {
	v.t.Helper()
	require.NoError(v.t, v.proc.Start(context.Background()))
	v.connect()
}

func (v *vppInstance) connect() {
	v.t.Helper()
	v.conn, v.Client = vpptest.Connect(v.t, v.APISock)
	version, err := v.Client.Version(context.Background())
	require.NoError(v.t, err)
	v.t.Logf("%s: VPP %s (pid %d) answers on %s", v.name, version, v.proc.PID(), v.APISock)
}

// kill9 kills VPP hard, as a crash would.
func (v *vppInstance) kill9() {
	v.t.Helper()
	v.disconnect()
	v.t.Logf("%s: kill -9 %d", v.name, v.proc.PID())
	require.NoError(v.t, v.proc.Kill(syscall.SIGKILL))
}

func (v *vppInstance) disconnect() {
	if v.conn != nil {
		v.conn.Disconnect()
		v.conn, v.Client = nil, nil
	}
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

// ping pings dst from this VPP and returns how many replies came back.
func (v *vppInstance) ping(dst string) int {
	v.t.Helper()
	out := v.cli("ping " + dst + " repeat 5 interval 0.2")
	n, ok := vppproc.PingReplies(out)
	require.True(v.t, ok, "%s: no ping statistics in %q (is ping_plugin.so loaded?)", v.name, out)
	return n
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func mustPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	require.NoError(t, err)
	return p
}
