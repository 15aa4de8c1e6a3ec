package cnibench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// NetnsMode says whether attachments get real network namespaces.
type NetnsMode string

const (
	NetnsAuto NetnsMode = "auto" // real when root, else none
	NetnsReal NetnsMode = "real" // `ip netns add` per attachment
	// NetnsNone makes no namespace per attachment, for plugins that never
	// enter it: every attachment names one shared namespace. It is a real
	// one (userspace's ADD checks CNI_NETNS, as the spec asks, and skel
	// refuses the plugin's own), held by an `unshare` process, in a new
	// user namespace when not root, so no root is needed.
	NetnsNone NetnsMode = "none"
)

// netnsTimeout bounds one `ip netns` run.
const netnsTimeout = 10 * time.Second

// namespaces creates and deletes the network namespace of each attachment.
// Neither is timed: the benchmark measures the plugin, not the runtime.
type namespaces struct {
	real   bool
	shared *sharedNetns // NetnsNone
}

// sharedNetns is NetnsNone's namespace, made on first use. Its holder is
// a `cat` reading a pipe from us: it exits when close closes the pipe,
// and also when this process dies without closing it (no leftover).
type sharedNetns struct {
	mu    sync.Mutex
	cmd   *exec.Cmd
	stdin io.Closer
	path  string
}

// get returns the namespace's path, starting its holder process first.
func (s *sharedNetns) get(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.path != "" {
		return s.path, nil
	}
	args := []string{"--net", "cat"}
	if os.Geteuid() != 0 {
		args = append([]string{"--user", "--map-root-user"}, args...)
	}
	cmd := exec.Command("unshare", args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("unshare a network namespace: %w", err)
	}
	path := fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)
	// unshare makes the namespace, then execs cat: poll until the
	// process is in a namespace other than ours.
	ctx, cancel := context.WithTimeout(ctx, netnsTimeout)
	defer cancel()
	own, _ := os.Readlink("/proc/self/ns/net")
	for {
		if ns, err := os.Readlink(path); err == nil && ns != own {
			break
		}
		select {
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return "", fmt.Errorf("unshare made no network namespace within %s", netnsTimeout)
		case <-time.After(5 * time.Millisecond):
		}
	}
	s.cmd, s.stdin, s.path = cmd, stdin, path
	return path, nil
}

// close ends the holder (EOF on its stdin) and waits for it; the
// namespace goes with it.
func (s *sharedNetns) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	_ = s.stdin.Close()
	err := s.cmd.Wait()
	s.cmd, s.stdin, s.path = nil, nil, ""
	return err
}

func (n namespaces) create(ctx context.Context, name string) (path, netnsName string, err error) {
	if !n.real {
		path, err := n.shared.get(ctx)
		return path, "", err
	}
	if err := ipNetns(ctx, "add", name); err != nil {
		return "", "", err
	}
	return filepath.Join("/run/netns", name), name, nil
}

// remove deletes a namespace created by create; dummy paths need nothing.
func (n namespaces) remove(ctx context.Context, netnsName string) error {
	if netnsName == "" {
		return nil
	}
	return ipNetns(ctx, "delete", netnsName)
}

func ipNetns(ctx context.Context, verb, name string) error {
	ctx, cancel := context.WithTimeout(ctx, netnsTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", verb, name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip netns %s %s: %v: %s", verb, name, err, strings.TrimSpace(string(out)))
	}
	return nil
}
