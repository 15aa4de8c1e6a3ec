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
		args := []string{"--nats-url", h.NATS.ClientURL(), "--node", h.cfg.Node, "--state-dir", h.StateDir(),
			"--metrics-addr", addr, "--log-level", h.cfg.AdapterLogLevel,
			"--shared-dir", h.SharedDir(), "--link-dir", h.LinkDir()}
		if h.cfg.Engine == contracts.EngineVPP {
			args = append(args, "--vpp-api-socket", h.VPP.APISock)
		} else {
			args = append(args, "--ovsdb", h.OVS.DBRemote(), "--ovs-rundir", h.OVS.RunDir())
		}
		cmd := exec.Command(filepath.Join(h.Bin, name), args...)
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
	return tail(filepath.Join(h.LogDir(), h.AdapterName()+".log"), n)
}
