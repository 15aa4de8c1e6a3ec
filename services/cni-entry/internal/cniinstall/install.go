// Package cniinstall puts the CNI plugin binary into the host's CNI bin
// directory so that a runtime never executes a partial file (install-cni,
// the cni-installer image's entrypoint).
package cniinstall

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Install copies src into dir as name: a temporary file in dir (the same
// filesystem, so the rename is atomic), mode 0755, fsynced, renamed over
// dir/name, then dir fsynced so the rename survives a crash. Temporary files
// an interrupted earlier run left are removed first; nothing else in dir is
// touched.
func Install(src, dir, name string) (err error) {
	if name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return fmt.Errorf("--name %q: want a plain file name", name)
	}
	if fi, err := os.Stat(dir); err != nil {
		return fmt.Errorf("--dest: %w (mount the host's CNI bin directory there)", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("--dest %s: not a directory (mount the host's CNI bin directory there)", dir)
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("--src: %w", err)
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("--src %s: not a regular file", src)
	}
	prefix := "." + name + ".tmp-"
	stale, _ := filepath.Glob(filepath.Join(dir, prefix+"*"))
	for _, f := range stale {
		_ = os.Remove(f)
	}
	tmp, err := os.CreateTemp(dir, prefix+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, in); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, tmp.Name(), err)
	}
	if err = tmp.Chmod(0o755); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
