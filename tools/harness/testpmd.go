package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DPDKArgs is `pod-consumer dpdk-args --json`: what a DPDK app in the pod
// needs to open the pod's interfaces.
type DPDKArgs struct {
	EAL []string `json:"eal"`
	App []string `json:"app"`
}

// DPDKArgs runs `pod-consumer dpdk-args --json` in the pod.
func (p *Pod) DPDKArgs(ctx context.Context) (DPDKArgs, error) {
	out, err := p.PodConsumer(ctx, "dpdk-args", "--json")
	if err != nil {
		return DPDKArgs{}, err
	}
	var a DPDKArgs
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		return DPDKArgs{}, fmt.Errorf("pod-consumer dpdk-args --json: %w: %q", err, out)
	}
	if len(a.EAL) == 0 {
		return DPDKArgs{}, fmt.Errorf("pod-consumer dpdk-args in pod %s: no --vdev (no pod data?)", p.Name)
	}
	return a, nil
}

// Testpmd is an interactive dpdk-testpmd in a pod, playing the pod's DPDK
// application. Interactive, so forwarding can stop while the port stays
// open: the vswitch can then drain the rings and every counter settles.
type Testpmd struct {
	*Proc
	Args  []string // the command line after dpdk-testpmd
	stdin io.WriteCloser
}

// promptTimeout bounds each testpmd command.
const promptTimeout = 15 * time.Second

// StartTestpmd runs dpdk-testpmd in the pod with the EAL arguments printed
// by `pod-consumer dpdk-args` and forward mode mode (txonly, rxonly, ...),
// and returns at its prompt, ports started, not yet forwarding (Start).
// Like a pod it needs no hugepages; both lcores share CPU 0, leaving CPU 1
// to OVS's PMD thread.
func (p *Pod) StartTestpmd(ctx context.Context, mode string) (*Testpmd, error) {
	a, err := p.DPDKArgs(ctx)
	if err != nil {
		return nil, err
	}
	prefix := "usrsp-pod-" + randomHex(8)
	args := append([]string{"--no-pci", "--no-telemetry", "--no-huge", "-m", "256",
		"--file-prefix=" + prefix, "--lcores=0@0,1@0"}, a.EAL...)
	args = append(append(args, "--", "-i"), a.App...)
	// No link check at start: the link comes up when the vswitch side
	// connects; RunTraffic waits for that in OVS instead.
	args = append(args, "--forward-mode="+mode, "--total-num-mbufs=16384", "--disable-link-check")
	// stdbuf: testpmd prints with stdio, fully buffered on a pipe; the
	// output of each command must arrive before its next prompt.
	cmd := p.Command(context.WithoutCancel(ctx), "stdbuf", append([]string{"-o0", "-e0", "dpdk-testpmd"}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	pr, err := p.startCmd(cmd, "dpdk-testpmd")
	if err != nil {
		return nil, err
	}
	pr.cleanup = func() { _ = os.RemoveAll(filepath.Join("/var/run/dpdk", prefix)) }
	t := &Testpmd{Proc: pr, Args: args, stdin: stdin}
	wctx, cancel := context.WithTimeout(ctx, promptTimeout)
	defer cancel()
	if _, err := pr.out.waitFor(wctx, 0, "testpmd> ", pr.done); err != nil {
		_ = t.Proc.Stop(syscall.SIGKILL)
		return nil, fmt.Errorf("dpdk-testpmd in pod %s: %w\n%s", p.Name, err, lastLines(pr.Output(), 20))
	}
	return t, nil
}

// Cmd sends one command line and returns what testpmd printed until its
// next prompt.
func (t *Testpmd) Cmd(ctx context.Context, line string) (string, error) {
	from := t.out.len()
	if _, err := io.WriteString(t.stdin, line+"\n"); err != nil {
		return "", fmt.Errorf("testpmd %q: %w", line, err)
	}
	ctx, cancel := context.WithTimeout(ctx, promptTimeout)
	defer cancel()
	out, err := t.out.waitFor(ctx, from, "testpmd> ", t.done)
	if err != nil {
		return out, fmt.Errorf("testpmd %q: %w", line, err)
	}
	return out, nil
}

// Start starts forwarding.
func (t *Testpmd) Start(ctx context.Context) error {
	_, err := t.Cmd(ctx, "start")
	return err
}

// StopForwarding stops forwarding (ports stay open) and returns testpmd's
// forward statistics of port 0 for the run.
func (t *Testpmd) StopForwarding(ctx context.Context) (TestpmdStats, error) {
	out, err := t.Cmd(ctx, "stop")
	if err != nil {
		return TestpmdStats{}, err
	}
	return ParseForwardStats(out)
}

// RXPackets is port 0's RX-packets from `show port stats 0`.
func (t *Testpmd) RXPackets(ctx context.Context) (uint64, error) {
	out, err := t.Cmd(ctx, "show port stats 0")
	if err != nil {
		return 0, err
	}
	m := nicRX.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no RX-packets in %q", out)
	}
	return strconv.ParseUint(m[1], 10, 64)
}

// Quit quits testpmd (closing its ports) and waits for it, by pid, with
// SIGKILL as the last resort. Safe to call twice.
func (t *Testpmd) Quit() error {
	_, _ = io.WriteString(t.stdin, "quit\n")
	select {
	case <-t.done:
	case <-time.After(promptTimeout):
	}
	_ = t.stdin.Close()
	return t.Proc.Stop(syscall.SIGKILL)
}

// TestpmdStats are testpmd's forward statistics of port 0.
type TestpmdStats struct {
	RXPackets, RXDropped, TXPackets, TXDropped uint64
}

var (
	nicRX       = regexp.MustCompile(`NIC statistics for port 0\s+#+\s+RX-packets:\s+(\d+)`)
	forwardPort = regexp.MustCompile(`Forward statistics for port 0\s+-+\s+` +
		`RX-packets:\s+(\d+)\s+RX-dropped:\s+(\d+)\s+RX-total:\s+\d+\s+` +
		`TX-packets:\s+(\d+)\s+TX-dropped:\s+(\d+)`)
)

// ParseForwardStats reads the last "Forward statistics for port 0" block
// of testpmd's output.
func ParseForwardStats(out string) (TestpmdStats, error) {
	m := forwardPort.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		return TestpmdStats{}, fmt.Errorf("no forward statistics in testpmd output:\n%s", lastLines(out, 30))
	}
	last := m[len(m)-1]
	var v [4]uint64
	for i := range v {
		v[i], _ = strconv.ParseUint(last[i+1], 10, 64)
	}
	return TestpmdStats{RXPackets: v[0], RXDropped: v[1], TXPackets: v[2], TXDropped: v[3]}, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// AwaitLinkUp waits until testpmd sees port 0's link up (the vswitch side
// connected). testpmd has no link event on its command line, so this asks
// every 50ms, for at most 20s.
func (t *Testpmd) AwaitLinkUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		out, err := t.Cmd(ctx, "show port info 0")
		if err != nil {
			return err
		}
		if linkUp.MatchString(out) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testpmd: link of port 0 not up: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

var linkUp = regexp.MustCompile(`Link status:\s+up`)
