// Package testkit holds what the tests and test tools of every module do
// the same way: collect a child process's output, build a Go binary, make
// and remove network namespaces. Standard library only, so any module may
// use it.
package testkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Buffer is a bytes.Buffer safe for several writers at once, such as a
// child process's stdout and stderr, read while they write.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// GoBuild builds pkg to out from module directory dir ("" for the working
// directory), statically (CGO_ENABLED=0), as the binaries ship.
func GoBuild(ctx context.Context, dir, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s in %s: %v\n%s", pkg, dir, err, b)
	}
	return nil
}

// Binary is a program to build: package Pkg of the module in Dir ("" for
// the working directory), named Name.
type Binary struct{ Name, Dir, Pkg string }

// BuildAll builds bins into dir.
func BuildAll(ctx context.Context, dir string, bins ...Binary) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, b := range bins {
		if err := GoBuild(ctx, b.Dir, b.Pkg, filepath.Join(dir, b.Name)); err != nil {
			return err
		}
	}
	return nil
}

// RunWithBinaries is a TestMain body for tests that run built programs:
// it builds bins into a new temporary directory, sets *dir to it, runs the
// tests and removes the directory. Use it as
// os.Exit(testkit.RunWithBinaries(m, &binDir, bins...)).
func RunWithBinaries(m *testing.M, dir *string, bins ...Binary) int {
	d, err := os.MkdirTemp("", "usrsp-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(d)
	if err := BuildAll(context.Background(), d, bins...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*dir = d
	return m.Run()
}

// The unprivileged pod app of the tests that re-run a program as another
// user: uid nobody, with AppGID (the group podAccess names) as its only
// group.
const (
	AppUID = 65534
	AppGID = 4321
)

// ExecutableCopy copies the running test binary into a fresh directory
// every uid may enter, so a test can exec itself (or, copied beside it
// with CopyExecutable, another program) as an unprivileged user: the
// go test cache is not readable by them. It returns the copy's path
// (mode 0755); the directory is removed when t ends.
func ExecutableCopy(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "usrsp-test-exec-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	self, err := os.Executable()
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(dir, filepath.Base(self))
	CopyExecutable(t, self, to)
	return to
}

// CopyExecutable copies the file from to to, mode 0755.
func CopyExecutable(t testing.TB, from, to string) {
	t.Helper()
	if err := copyFile(from, to); err != nil {
		t.Fatal(err)
	}
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Close())
}

// Subcommand, called from a test package's init, makes the test binary
// run as `<binary> name args...` (a copy exec'd as another user, say) do
// fn(args) instead of the tests, and exit: 0 when fn returns nil, else 1
// after printing the error. Other invocations are left alone.
func Subcommand(name string, fn func(args []string) error) {
	if len(os.Args) < 2 || os.Args[1] != name {
		return
	}
	if err := fn(os.Args[2:]); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	os.Exit(0)
}

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
