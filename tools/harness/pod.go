package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/testkit"
)

// Pod is a "pod": a network namespace with its own socket directory
// (<sharedDir>/<UID>, created by cni-entry on ADD) that its processes see
// at PodMountPath, as a kubelet volume mount would show it.
type Pod struct {
	h           *Harness
	Name        string // K8S_POD_NAME
	UID         string // K8S_POD_UID
	ContainerID string // the sandbox id CNI is called with
	NetnsName   string // ip netns name
	mu          sync.Mutex
	procs       []*Proc
	vpps        []*VPP // started by StartVPP
}

// NewPod creates a network namespace usrsp-<hex>. Close (or the harness's
// Close) stops its processes and deletes it.
func (h *Harness) NewPod(ctx context.Context, name string) (*Pod, error) {
	id := randomHex(32)
	p := &Pod{h: h, Name: name, UID: uuid(), ContainerID: id, NetnsName: "usrsp-" + id[:12]}
	if _, err := testkit.AddNetns(ctx, p.NetnsName); err != nil {
		return nil, err
	}
	h.onClose(p.Close)
	return p, nil
}

// Netns is the namespace's path, CNI_NETNS.
func (p *Pod) Netns() string { return filepath.Join(testkit.NetnsDir, p.NetnsName) }

// Dir is the pod's socket directory on the host (sharedDir/<UID>).
func (p *Pod) Dir() string { return filepath.Join(p.h.SharedDir(), p.UID) }

// Close stops the pod's processes by pid and deletes its namespace. Safe
// to call twice.
func (p *Pod) Close() error {
	p.mu.Lock()
	procs, vpps := p.procs, p.vpps
	p.procs, p.vpps = nil, nil
	p.mu.Unlock()
	var errs []error
	for _, pr := range procs {
		errs = append(errs, pr.Stop(syscall.SIGKILL))
	}
	for _, v := range vpps {
		errs = append(errs, v.Stop())
	}
	if _, err := os.Stat(p.Netns()); err == nil {
		errs = append(errs, testkit.DelNetns(context.Background(), p.NetnsName))
	}
	return errors.Join(errs...)
}

// Command is name+args run inside the pod: in its network namespace, and in
// a private mount namespace (ip netns exec makes one) where the pod's
// directory is bind-mounted at PodMountPath, so paths in the pod data work
// as they would in a container. Recursively, as runtimes bind volumes: a
// socket the adapter bind-mounted into the directory comes along.
func (p *Pod) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	all := append([]string{"netns", "exec", p.NetnsName, "sh", "-c",
		`mount --rbind "$1" "$2" && shift 2 && exec "$@"`, "pod", p.Dir(), p.h.PodMountPath(), name}, args...)
	cmd := exec.CommandContext(ctx, "ip", all...)
	// ip and sh exec, so the pid is the program's; own group for Ctrl-C.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// Run runs a command in the pod and returns its stdout; the error carries
// stderr and the exit code.
func (p *Pod) Run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := p.Command(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s in pod %s: %w: %s", name, strings.Join(args, " "), p.Name, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// PodConsumer runs the built pod-consumer in the pod, reading the pod's
// directory, and returns its stdout.
func (p *Pod) PodConsumer(ctx context.Context, args ...string) (string, error) {
	return p.Run(ctx, filepath.Join(p.h.Bin, "pod-consumer"), p.podConsumerArgs(args)...)
}

// StartPodConsumer starts pod-consumer in the pod (e.g. `probe serve`).
func (p *Pod) StartPodConsumer(ctx context.Context, args ...string) (*Proc, error) {
	return p.Start(ctx, filepath.Join(p.h.Bin, "pod-consumer"), p.podConsumerArgs(args)...)
}

func (p *Pod) podConsumerArgs(args []string) []string {
	return append(args, "--dir", p.h.PodMountPath(), "--annotations", "")
}

// Start starts a long-running command in the pod. The pod's Close stops it
// by pid if the caller has not.
func (p *Pod) Start(ctx context.Context, name string, args ...string) (*Proc, error) {
	return p.startCmd(p.Command(context.WithoutCancel(ctx), name, args...), name)
}

// startCmd starts cmd (made by Command) and tracks it as the pod's.
func (p *Pod) startCmd(cmd *exec.Cmd, name string) (*Proc, error) {
	pr := &Proc{Name: filepath.Base(name), cmd: cmd, done: make(chan struct{})}
	pr.cmd.Stdout, pr.cmd.Stderr = &pr.out, &pr.out
	if err := pr.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s in pod %s: %w", name, p.Name, err)
	}
	go func() { pr.err = pr.cmd.Wait(); close(pr.done) }()
	p.mu.Lock()
	p.procs = append(p.procs, pr)
	p.mu.Unlock()
	return pr, nil
}

// Proc is a process running in a pod.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	out  syncBuffer
	// cleanup runs once after the process is gone (e.g. DPDK runtime dir).
	cleanup   func()
	cleanOnce sync.Once
}

// PID is the process id.
func (pr *Proc) PID() int { return pr.cmd.Process.Pid }

// Output is stdout and stderr so far.
func (pr *Proc) Output() string { return pr.out.String() }

// Exited is closed once the process has exited and been reaped.
func (pr *Proc) Exited() <-chan struct{} { return pr.done }

// Wait waits for the process to exit (bounded by ctx) and returns its exit
// code.
func (pr *Proc) Wait(ctx context.Context) (int, error) {
	select {
	case <-pr.done:
	case <-ctx.Done():
		return -1, fmt.Errorf("%s (pid %d) still running: %w", pr.Name, pr.PID(), ctx.Err())
	}
	pr.runCleanup()
	return pr.cmd.ProcessState.ExitCode(), nil
}

// Stop sends sig, waits up to 10s, then SIGKILL. Safe to call twice.
func (pr *Proc) Stop(sig syscall.Signal) error {
	err := stopPID(pr.cmd.Process, pr.done, sig, 10*time.Second)
	pr.runCleanup()
	return err
}

func (pr *Proc) runCleanup() {
	pr.cleanOnce.Do(func() {
		if pr.cleanup != nil {
			pr.cleanup()
		}
	})
}

// syncBuffer collects a process's output and lets readers wait for more.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// next returns the output so far and a channel closed by the next write.
func (b *syncBuffer) next() (string, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed == nil {
		b.changed = make(chan struct{})
	}
	return b.buf.String(), b.changed
}

// waitFor waits until the output after offset from contains want and
// returns that part; it gives up when ctx ends or the process exits.
func (b *syncBuffer) waitFor(ctx context.Context, from int, want string, exited <-chan struct{}) (string, error) {
	for {
		out, changed := b.next()
		if strings.Contains(out[from:], want) {
			return out[from:], nil
		}
		select {
		case <-changed:
		case <-exited:
			out = b.String()
			if strings.Contains(out[from:], want) {
				return out[from:], nil
			}
			return out[from:], fmt.Errorf("exited before printing %q", want)
		case <-ctx.Done():
			return out[from:], fmt.Errorf("waiting for %q: %w", want, ctx.Err())
		}
	}
}

func (b *syncBuffer) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

func randomHex(n int) string {
	b := make([]byte, n/2)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

func uuid() string {
	h := randomHex(32)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:]
}

// WaitOutput waits until the process has printed want (bounded by ctx).
func (pr *Proc) WaitOutput(ctx context.Context, want string) error {
	_, err := pr.out.waitFor(ctx, 0, want, pr.done)
	return err
}

// OutputLen is how much the process has printed so far (for
// WaitOutputFrom).
func (pr *Proc) OutputLen() int { return pr.out.len() }

// WaitOutputFrom waits until the process has printed want after the first
// from bytes of its output (bounded by ctx).
func (pr *Proc) WaitOutputFrom(ctx context.Context, from int, want string) error {
	_, err := pr.out.waitFor(ctx, from, want, pr.done)
	return err
}

// PodData reads the pod data file cni-entry wrote for ifName.
func (p *Pod) PodData(ifName string) (*contracts.PodData, error) {
	b, err := os.ReadFile(filepath.Join(p.Dir(), contracts.PodDataFileName(ifName)))
	if err != nil {
		return nil, err
	}
	return contracts.DecodePodData(b)
}

// IPv4 is the pod's first IPv4 address on ifName (from its pod data).
func (p *Pod) IPv4(ifName string) (string, error) {
	d, err := p.PodData(ifName)
	if err != nil {
		return "", err
	}
	if d.IPAM != nil {
		for _, ip := range d.IPAM.IPs {
			if pfx, err := netip.ParsePrefix(ip.Address); err == nil && pfx.Addr().Is4() {
				return pfx.Addr().String(), nil
			}
		}
	}
	return "", fmt.Errorf("pod %s %s: no IPv4 address in its pod data", p.Name, ifName)
}
