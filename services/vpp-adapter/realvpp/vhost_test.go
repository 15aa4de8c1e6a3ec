package realvpp_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/vlib"

	"usrsp.dev/contracts"
)

// vhostPackets is how many packets each direction sends at least.
const vhostPackets = 100000

// TestRealVPPVhostUserPackets sends packets through host VPP vhost-user
// interfaces made by the adapter, in both vhost modes: VPP server (VPP
// creates the socket, the pod's testpmd connects) and VPP client (the pod's
// testpmd creates it with virtio_user server=1, VPP connects). Two pods per
// mode, each a dpdk-testpmd with the --vdev `pod-consumer dpdk-args` would
// print, sit in one bridge domain; pod A txonly -> pod B rxonly, then the
// reverse, with every packet accounted for:
//
//	testpmd TX == VPP rx(from) == VPP tx(to) + VPP drops(from)
//	VPP tx(to) - VPP drops(to) == testpmd RX
//
// VPP counts a packet in tx(to) when it hands it to the interface and in
// drops(to) when the pod's ring had no free descriptor for it.
func TestRealVPPVhostUserPackets(t *testing.T) {
	vppEnv(t)
	pmd := testpmdEnv(t)
	s := startStack(t)
	const bd = 20
	for _, mode := range []string{contracts.VhostModeServer, contracts.VhostModeClient} {
		t.Run("VPP "+mode, func(t *testing.T) {
			a := s.vhostPod(t, pmd, mode+"-a", mode, bd)
			b := s.vhostPod(t, pmd, mode+"-b", mode, bd)
			for _, p := range []*vhostPod{a, b} {
				s.waitVhostUp(t, p.hostIf, 30*time.Second)
				p.pmd.awaitLinkUp(t, 30*time.Second)
			}
			s.host.cli("show vhost-user " + a.hostIf)
			for _, dir := range [][2]*vhostPod{{a, b}, {b, a}} {
				from, to := dir[0], dir[1]
				t.Run(from.name+" to "+to.name, func(t *testing.T) {
					c := s.sendCounted(t, from, to)
					t.Logf("%s: testpmd %s sent %d -> VPP %s rx %d (drops %d) -> VPP %s tx %d (drops %d) -> testpmd %s received %d",
						mode, from.name, c.sent, from.hostIf, c.fromRx, c.fromDrops, to.hostIf, c.toTx, c.toDrops, to.name, c.received)
					assert.GreaterOrEqual(t, c.sent, uint64(vhostPackets))
					assert.Equal(t, c.sent, c.fromRx, "testpmd TX == VPP rx of the sender's interface")
					assert.Equal(t, c.fromRx, c.toTx+c.fromDrops, "VPP floods every packet to the one other member")
					assert.Equal(t, c.toTx-c.toDrops, c.received, "VPP tx minus ring-full drops == testpmd RX")
					assert.Positive(t, c.received, "packets reached the receiving pod")
					if t.Failed() {
						s.host.cli("show errors")
						s.host.cli("show vhost-user " + from.hostIf)
						s.host.cli("show vhost-user " + to.hostIf)
					}
				})
			}
			for _, p := range []*vhostPod{a, b} {
				p.pmd.quit()
				_, err := s.Client.Detach(ctx(t), contracts.EngineVPP, &contracts.DetachRequest{Key: p.req.Key})
				require.NoError(t, err)
			}
		})
	}
}

// testpmdEnv returns the dpdk-testpmd binary, or skips (fails under
// USRSP_VPP_REQUIRED=1, like vppEnv).
func testpmdEnv(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("dpdk-testpmd")
	if err != nil {
		msg := "dpdk-testpmd not found (Debian package dpdk, deploy/scripts/install-deps.sh): " + err.Error()
		if os.Getenv("USRSP_VPP_REQUIRED") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// vhostPod is a pod with one vhost-user attachment and its DPDK app.
type vhostPod struct {
	name   string
	req    *contracts.AttachRequest
	hostIf string
	pmd    *testpmd
}

// vhostPod attaches a vhost-user interface in mode (the host VPP's side)
// into bridge domain bd and starts the pod's testpmd on its socket.
func (s *stack) vhostPod(t *testing.T, bin, name, mode string, bd uint32) *vhostPod {
	t.Helper()
	dir := filepath.Join(s.PodDir, name)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	r := &contracts.AttachRequest{Key: contracts.AttachmentKey{ContainerID: "vhost-" + name, IfName: "net1"}, Network: "vpp-vhost",
		Interface: contracts.HostInterface{IfType: contracts.IfTypeVhostUser, NetType: contracts.NetTypeBridge,
			SocketPath: filepath.Join(dir, "vhost-net1.sock"), Vhost: &contracts.VhostSpec{Mode: mode},
			Bridge: &contracts.BridgeSpec{ID: bd}}}
	resp, err := s.Client.Attach(ctx(t), contracts.EngineVPP, r)
	require.NoError(t, err, "attach vhost-user %s for %s", mode, name)
	t.Logf("%s: host VPP %s (vhost-user %s) on %s", name, resp.Attachment.HostIfName, mode, r.Interface.SocketPath)
	// The pod is the other side: server=1 when VPP is the client. This is
	// the --vdev `pod-consumer dpdk-args` prints for the pod.
	server := 0
	if mode == contracts.VhostModeClient {
		server = 1
	}
	vdev := fmt.Sprintf("net_virtio_user0,path=%s,server=%d,queues=1", r.Interface.SocketPath, server)
	return &vhostPod{name: name, req: r, hostIf: resp.Attachment.HostIfName, pmd: startTestpmd(t, bin, name, vdev)}
}

// waitVhostUp waits (bounded) until the host VPP reports the vhost-user
// interface's link up: the driver connected and enabled its rings. VPP as
// client retries the connection every few seconds.
func (s *stack) waitVhostUp(t *testing.T, name string, within time.Duration) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	for {
		if f, ok := s.host.interfaceFlags(name); ok && f&interface_types.IF_STATUS_API_FLAG_LINK_UP != 0 {
			t.Logf("host VPP: %s link up after %s", name, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			s.host.cli("show vhost-user " + name)
			t.Fatalf("host VPP: %s link not up within %s", name, within)
		}
		time.Sleep(100 * time.Millisecond) // no link event on this API to await cheaply
	}
}

// counts are one direction's packet counters.
type counts struct {
	sent, fromRx, fromDrops, toTx, toDrops, received uint64
}

// sendCounted runs from txonly -> to rxonly for at least vhostPackets
// packets, waits until every counter has settled and returns them.
func (s *stack) sendCounted(t *testing.T, from, to *vhostPod) counts {
	t.Helper()
	s.host.quietCLI(t, "clear interfaces")
	s.host.quietCLI(t, "clear errors")
	for _, p := range []*vhostPod{from, to} {
		p.pmd.cmd(t, "clear port stats 0")
	}
	to.pmd.cmd(t, "set fwd rxonly")
	to.pmd.cmd(t, "start")
	from.pmd.cmd(t, "set fwd txonly")
	from.pmd.cmd(t, "start")
	// Send until VPP has received enough, bounded.
	deadline := time.Now().Add(60 * time.Second)
	for s.host.counters(t, from.hostIf)["rx packets"] < vhostPackets {
		if time.Now().After(deadline) {
			from.pmd.cmd(t, "stop")
			to.pmd.cmd(t, "stop")
			t.Fatalf("VPP %s received fewer than %d packets in 60s: %v", from.hostIf, vhostPackets, s.host.counters(t, from.hostIf))
		}
		time.Sleep(50 * time.Millisecond) // traffic is flowing; poll its counter
	}
	var c counts
	c.sent = from.pmd.stopForwarding(t).tx
	// VPP empties the sender's ring, then the receiver drains its own.
	settle := func(what string, done func() bool) {
		deadline := time.Now().Add(20 * time.Second)
		for !done() {
			if time.Now().After(deadline) {
				t.Errorf("counters did not settle within 20s: %s", what)
				return
			}
			time.Sleep(20 * time.Millisecond) // poll with a deadline
		}
	}
	settle("VPP rx == testpmd TX", func() bool {
		f := s.host.counters(t, from.hostIf)
		c.fromRx, c.fromDrops = f["rx packets"], f["drops"]
		return c.fromRx >= c.sent
	})
	tc := s.host.counters(t, to.hostIf)
	c.toTx, c.toDrops = tc["tx packets"], tc["drops"]
	settle("testpmd RX == VPP tx - drops", func() bool {
		return to.pmd.nicRX(t) >= c.toTx-c.toDrops
	})
	c.received = to.pmd.stopForwarding(t).rx
	s.host.cli("show errors")
	return c
}

var vppCounter = regexp.MustCompile(`(rx packets|tx packets|drops|tx-error|rx-miss)\s+(\d+)`)

// counters are the packet counters of one interface (`show interface`),
// missing ones zero.
func (v *vppInstance) counters(t *testing.T, ifName string) map[string]uint64 {
	out := v.quietCLI(t, "show interface "+ifName)
	m := map[string]uint64{}
	for _, c := range vppCounter.FindAllStringSubmatch(out, -1) {
		m[c[1]], _ = strconv.ParseUint(c[2], 10, 64)
	}
	return m
}

// quietCLI is cli without the log line, for polling.
func (v *vppInstance) quietCLI(t *testing.T, cmd string) string {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := vlib.NewServiceClient(v.conn).CliInband(c, &vlib.CliInband{Cmd: cmd})
	require.NoError(t, err, "%s: cli %q", v.name, cmd)
	return r.Reply
}

// testpmd is an interactive dpdk-testpmd playing a pod's DPDK app: no
// hugepages (its memory is a memfd, which it shares with VPP over the
// vhost-user socket like hugepages), both lcores on CPU 1 (the host VPP
// polls on CPU 0), its own --file-prefix.
type testpmd struct {
	t      *testing.T
	name   string
	prefix string
	proc   *exec.Cmd
	stdin  io.WriteCloser
	out    *notifyBuffer
	exited chan struct{}
	once   sync.Once
}

const testpmdTimeout = 20 * time.Second

func startTestpmd(t *testing.T, bin, name, vdev string) *testpmd {
	t.Helper()
	p := &testpmd{t: t, name: name, prefix: fmt.Sprintf("usrsp-vh%d-%s", os.Getpid(), name),
		out: newNotifyBuffer(), exited: make(chan struct{})}
	args := []string{"-o0", "-e0", bin, "--no-pci", "--no-telemetry", "--no-huge", "-m", "256",
		"--file-prefix=" + p.prefix, "--lcores=0@1,1@1", "--vdev=" + vdev,
		"--", "-i", "--forward-mode=rxonly", "--total-num-mbufs=16384", "--disable-link-check"}
	// stdbuf: testpmd writes with stdio, fully buffered on a pipe; each
	// command's output must arrive before its next prompt.
	p.proc = exec.Command("stdbuf", args...)
	p.proc.Stdout, p.proc.Stderr = p.out, p.out
	p.proc.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var err error
	p.stdin, err = p.proc.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, p.proc.Start())
	go func() { _ = p.proc.Wait(); close(p.exited) }()
	t.Cleanup(p.quit)
	t.Logf("%s: dpdk-testpmd pid %d --vdev=%s", name, p.proc.Process.Pid, vdev)
	if _, err := p.waitPrompt(0); err != nil {
		t.Fatalf("%s: testpmd: %v\n%s", name, err, p.out.String())
	}
	return p
}

// cmd sends one command and returns what testpmd printed before its next
// prompt.
func (p *testpmd) cmd(t *testing.T, line string) string {
	t.Helper()
	from := p.out.Len()
	_, err := io.WriteString(p.stdin, line+"\n")
	require.NoError(t, err, "%s: testpmd %q", p.name, line)
	out, err := p.waitPrompt(from)
	require.NoError(t, err, "%s: testpmd %q:\n%s", p.name, line, out)
	return out
}

func (p *testpmd) waitPrompt(from int) (string, error) {
	timeout := time.After(testpmdTimeout)
	for {
		s, changed := p.out.Since(from)
		if i := strings.Index(s, "testpmd> "); i >= 0 {
			return s[:i], nil
		}
		select {
		case <-changed:
		case <-p.exited:
			return s, fmt.Errorf("testpmd exited")
		case <-timeout:
			return s, fmt.Errorf("no prompt within %s", testpmdTimeout)
		}
	}
}

var (
	linkUp      = regexp.MustCompile(`Link status:\s+up`)
	nicRX       = regexp.MustCompile(`NIC statistics for port 0\s+#+\s+RX-packets:\s+(\d+)`)
	forwardPort = regexp.MustCompile(`Forward statistics for port 0\s+-+\s+` +
		`RX-packets:\s+(\d+)\s+RX-dropped:\s+\d+\s+RX-total:\s+\d+\s+TX-packets:\s+(\d+)`)
)

// awaitLinkUp waits (bounded) until testpmd sees port 0 up; testpmd has no
// link event on its command line.
func (p *testpmd) awaitLinkUp(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !linkUp.MatchString(p.cmd(t, "show port info 0")) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: testpmd port 0 link not up within %s", p.name, within)
		}
		time.Sleep(100 * time.Millisecond) // poll with a deadline
	}
}

// counters runs command and returns the counters re captures in its
// output.
func (p *testpmd) counters(t *testing.T, command string, re *regexp.Regexp) []uint64 {
	t.Helper()
	out := p.cmd(t, command)
	m := re.FindStringSubmatch(out)
	require.NotNil(t, m, "%s: %q answered no %s", p.name, command, re)
	n := make([]uint64, len(m)-1)
	for i, v := range m[1:] {
		n[i], _ = strconv.ParseUint(v, 10, 64)
	}
	return n
}

// nicRX is port 0's RX-packets since the last "clear port stats 0".
func (p *testpmd) nicRX(t *testing.T) uint64 {
	t.Helper()
	return p.counters(t, "show port stats 0", nicRX)[0]
}

type fwdStats struct{ rx, tx uint64 }

// stopForwarding stops forwarding (the port stays open) and returns the
// run's forward statistics of port 0.
func (p *testpmd) stopForwarding(t *testing.T) fwdStats {
	t.Helper()
	n := p.counters(t, "stop", forwardPort)
	return fwdStats{rx: n[0], tx: n[1]}
}

// quit ends testpmd by its pid ("quit", then SIGKILL) and removes its
// DPDK runtime directory. Safe to call twice.
func (p *testpmd) quit() {
	p.once.Do(func() {
		_, _ = io.WriteString(p.stdin, "quit\n")
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.proc.Process.Pid, syscall.SIGKILL)
			<-p.exited
		}
		_ = p.stdin.Close()
		_ = os.RemoveAll(filepath.Join("/var/run/dpdk", p.prefix))
		if p.t.Failed() {
			p.t.Logf("%s: testpmd output:\n%s", p.name, p.out.String())
		}
	})
}

// notifyBuffer is a bytes.Buffer that tells waiters when it grows.
type notifyBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newNotifyBuffer() *notifyBuffer { return &notifyBuffer{changed: make(chan struct{})} }

func (n *notifyBuffer) Write(p []byte) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	w, err := n.b.Write(p)
	close(n.changed)
	n.changed = make(chan struct{})
	return w, err
}

func (n *notifyBuffer) Len() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.b.Len()
}

func (n *notifyBuffer) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.b.String()
}

// Since returns what was written from offset on and a channel closed on
// the next write.
func (n *notifyBuffer) Since(from int) (string, <-chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return string(n.b.Bytes()[from:]), n.changed
}
