package harness

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"usrsp.dev/libs/testkit"
)

// binaries maps each binary to the module directory it is built in and its
// package. host-local is built in cni-entry's module, which pins
// containernetworking/plugins; each module builds alone (GOWORK=off) too.
var binaries = []testkit.Binary{
	{Name: "userspace", Dir: "services/cni-entry", Pkg: "./cmd/userspace"},
	{Name: "host-local", Dir: "services/cni-entry", Pkg: "github.com/containernetworking/plugins/plugins/ipam/host-local"},
	{Name: "ovs-adapter", Dir: "services/ovs-adapter", Pkg: "./cmd/ovs-adapter"},
	{Name: "vpp-adapter", Dir: "services/vpp-adapter", Pkg: "./cmd/vpp-adapter"},
	{Name: "pod-consumer", Dir: "services/pod-consumer", Pkg: "./cmd/pod-consumer"},
}

// BinaryNames lists what Build builds, for progress lines.
func BinaryNames() string {
	var names []string
	for _, b := range binaries {
		names = append(names, b.Name)
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
	bins := slices.Clone(binaries)
	for i := range bins {
		bins[i].Dir = filepath.Join(repoDir, bins[i].Dir)
	}
	return testkit.BuildAll(ctx, binDir, bins...)
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
