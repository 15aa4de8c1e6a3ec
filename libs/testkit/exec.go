package testkit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

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
