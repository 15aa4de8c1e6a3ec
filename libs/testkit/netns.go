package testkit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// NetnsDir is where `ip netns` keeps named network namespaces.
const NetnsDir = "/var/run/netns"

// AddNetns creates the named network namespace (`ip netns add`, as root)
// and returns its path.
func AddNetns(ctx context.Context, name string) (string, error) {
	if err := ipNetns(ctx, "add", name); err != nil {
		return "", err
	}
	return filepath.Join(NetnsDir, name), nil
}

// DelNetns deletes the named network namespace (`ip netns delete`).
func DelNetns(ctx context.Context, name string) error {
	return ipNetns(ctx, "delete", name)
}

func ipNetns(ctx context.Context, verb, name string) error {
	out, err := exec.CommandContext(ctx, "ip", "netns", verb, name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip netns %s %s: %v: %s", verb, name, err, bytes.TrimSpace(out))
	}
	return nil
}

// HeldNetns is an unnamed network namespace held by an `unshare` process;
// it goes when Close ends that process.
type HeldNetns struct {
	// Path is the namespace's path, /proc/<pid>/ns/net.
	Path  string
	cmd   *exec.Cmd
	stdin io.Closer
}

// UnshareNetns makes a network namespace held by `unshare --net cat`, in a
// new user namespace when not root, so no root is needed. The holder reads
// a pipe from us: it exits on Close, and also when this process dies
// without closing it (no leftover). It waits up to ctx's deadline for the
// namespace.
func UnshareNetns(ctx context.Context) (*HeldNetns, error) {
	args := []string{"--net", "cat"}
	if os.Geteuid() != 0 {
		args = append([]string{"--user", "--map-root-user"}, args...)
	}
	cmd := exec.Command("unshare", args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("unshare a network namespace: %w", err)
	}
	n := &HeldNetns{Path: fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid), cmd: cmd, stdin: stdin}
	// unshare makes the namespace, then execs cat: poll until the
	// process is in a namespace other than ours.
	own, _ := os.Readlink("/proc/self/ns/net")
	for {
		if ns, err := os.Readlink(n.Path); err == nil && ns != own {
			return n, nil
		}
		select {
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("unshare made no network namespace: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Close ends the holder (EOF on its stdin) and waits for it; the namespace
// goes with it.
func (n *HeldNetns) Close() error {
	_ = n.stdin.Close()
	return n.cmd.Wait()
}
