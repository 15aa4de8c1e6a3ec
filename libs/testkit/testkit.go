// Package testkit holds what the tests and test tools of every module do
// the same way: collect a child process's output, build a Go binary, make
// and remove network namespaces. Standard library only, so any module may
// use it.
package testkit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
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
