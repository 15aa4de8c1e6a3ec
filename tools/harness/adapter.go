package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"usrsp.dev/contracts"
)

// Adapter is one run of the ovs-adapter process.
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

// StartAdapter starts ovs-adapter as a child process (stopping a previous
// run first) and returns once it answers status as ready.
func (h *Harness) StartAdapter(ctx context.Context) error {
	if err := h.StopAdapter(); err != nil {
		return err
	}
	err := h.step("starting ovs-adapter", func() error {
		addr, err := freePort()
		if err != nil {
			return err
		}
		logFile := filepath.Join(h.LogDir(), "ovs-adapter.log")
		out, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer out.Close()
		cmd := exec.Command(filepath.Join(h.Bin, "ovs-adapter"),
			"--nats-url", h.NATS.ClientURL(),
			"--node", h.cfg.Node,
			"--ovsdb", h.OVS.DBRemote(),
			"--ovs-rundir", h.OVS.RunDir(),
			"--state-dir", h.StateDir(),
			"--metrics-addr", addr,
			"--log-level", h.cfg.AdapterLogLevel)
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
		h.Logf("    ovs-adapter pid %d, metrics http://%s/metrics, log %s", h.Adapter.PID(), h.Adapter.MetricsAddr, h.Adapter.LogFile)
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
		st, err := c.Status(ctx, contracts.EngineOVSDPDK)
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
			return errors.New("ovs-adapter exited")
		case <-ctx.Done():
			return fmt.Errorf("ovs-adapter not ready: %w (last: %v)", ctx.Err(), last)
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
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// AdapterLogTail is the end of the adapter's log, for failure messages.
func (h *Harness) AdapterLogTail(n int) string {
	return tail(filepath.Join(h.LogDir(), "ovs-adapter.log"), n)
}
