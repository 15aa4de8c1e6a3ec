package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// binaries maps each binary to the module directory it is built in and its
// package. host-local is built in cni-entry's module, which pins
// containernetworking/plugins; each module builds alone (GOWORK=off) too.
var binaries = []struct{ name, module, pkg string }{
	{"userspace", "services/cni-entry", "./cmd/userspace"},
	{"host-local", "services/cni-entry", "github.com/containernetworking/plugins/plugins/ipam/host-local"},
	{"ovs-adapter", "services/ovs-adapter", "./cmd/ovs-adapter"},
	{"vpp-adapter", "services/vpp-adapter", "./cmd/vpp-adapter"},
	{"pod-consumer", "services/pod-consumer", "./cmd/pod-consumer"},
}

// binaryNames lists what Build builds, for progress lines.
func binaryNames() string {
	var names []string
	for _, b := range binaries {
		names = append(names, b.name)
	}
	return strings.Join(names, ", ")
}

// Build builds userspace, host-local, ovs-adapter, vpp-adapter and
// pod-consumer into binDir. repoDir empty: the directory holding go.work above the working
// directory.
func Build(ctx context.Context, repoDir, binDir string) error {
	if repoDir == "" {
		var err error
		if repoDir, err = FindRepo(); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	for _, b := range binaries {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(binDir, b.name), b.pkg)
		cmd.Dir = filepath.Join(repoDir, b.module)
		// A static pod-consumer, as the README ships it.
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s in %s: %v\n%s", b.pkg, b.module, err, out)
		}
	}
	return nil
}

// FindRepo returns the nearest directory at or above the working directory
// that holds go.work.
func FindRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("harness: no go.work above the working directory; set Config.RepoDir")
		}
		dir = parent
	}
}
