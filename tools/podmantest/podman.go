// Package podmantest runs Debian's podman (4.3, CNI backend, runc) as a
// private instance for the end-to-end suite: its own containers.conf and
// storage.conf (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF), storage root,
// run root, tmp dir, events log and CNI network config dir, all under one
// temporary directory. It touches nothing system-wide except what podman
// itself does per pod (a /run/netns entry and libcni's result cache in
// /var/lib/cni/results, both removed by the pod's teardown) and the blob
// info cache /var/lib/containers/cache/blob-info-cache-v1.boltdb that
// containers/image updates on every image copy as root (`podman build`
// too; its place is fixed, not under the storage root: see
// containers/common#682). Images are built locally FROM scratch: no
// registry is ever contacted. System is the other mode: the machine's own
// storage, for the image smoke test that runs what `make images` built.
package podmantest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"usrsp.dev/libs/testkit"
)

// Images built by BuildImages, local only ("localhost/" never resolves to a
// registry).
const (
	PauseImage       = "localhost/usrsp-pause:e2e"
	PodConsumerImage = "localhost/usrsp-pod-consumer:e2e"
	// PodConsumerPath is the binary's path in PodConsumerImage.
	PodConsumerPath = "/pod-consumer"
)

// Config is the private instance's configuration.
type Config struct {
	// CNIPluginDirs is where podman looks for CNI plugins (the built
	// `userspace` and `host-local`).
	CNIPluginDirs []string
	// Logf receives every podman command line and its duration.
	Logf func(format string, args ...any)
}

// Podman is a private podman instance; Close removes everything it made.
// System's is the machine's own podman instead.
type Podman struct {
	Dir    string
	env    []string
	logf   func(format string, args ...any)
	system bool // the machine's storage: Close must not reset it
}

// Missing says why podman cannot run here ("" if it can).
func Missing() string {
	switch {
	case os.Geteuid() != 0:
		return "podman e2e needs root (CNI, network namespaces)"
	case !installed("podman"):
		return "podman missing: run `make deps` (deploy/scripts/install-deps.sh installs Debian's podman and runc)"
	case !installed("runc"):
		return "runc missing: run `make deps`"
	}
	return ""
}

func installed(bin string) bool { _, err := exec.LookPath(bin); return err == nil }

// New writes the instance's configuration under a new temporary directory.
func New(cfg Config) (*Podman, error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	dir, err := os.MkdirTemp("", "usrsp-podman-")
	if err != nil {
		return nil, err
	}
	p := &Podman{Dir: dir, logf: cfg.Logf}
	for _, d := range []string{p.NetworkDir(), p.path("tmp"), p.path("storage", "root"), p.path("storage", "run")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, errors.Join(err, os.RemoveAll(dir))
		}
	}
	dirs, _ := json.Marshal(cfg.CNIPluginDirs) // a TOML array of strings is JSON's
	// Why each setting (issue 12): Debian's podman defaults to netavark and
	// crun (which fails here with hybrid cgroups); PID 1 is not systemd, so
	// cgroupfs and a file events log; podman's default nofile exceeds this
	// machine's hard limit (runc: "error setting rlimit type 7"); the infra
	// image is ours, so nothing is pulled. The events log is outside
	// tmp_dir: `system reset` removes tmp_dir while logging its own event
	// (seen: "unlinkat .../tmp: directory not empty").
	containersConf := fmt.Sprintf(`[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[network]
network_backend = "cni"
cni_plugin_dirs = %s
network_config_dir = %q

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = %q
tmp_dir = %q
infra_image = %q
infra_command = "/pause"
`, dirs, p.NetworkDir(), p.path("events.log"), p.path("tmp"), PauseImage)
	storageConf := fmt.Sprintf(`[storage]
driver = "overlay"
graphroot = %q
runroot = %q
`, p.path("storage", "root"), p.path("storage", "run"))
	for name, content := range map[string]string{"containers.conf": containersConf, "storage.conf": storageConf} {
		if err := os.WriteFile(p.path(name), []byte(content), 0o644); err != nil {
			return nil, errors.Join(err, os.RemoveAll(dir))
		}
	}
	p.env = append(os.Environ(),
		"CONTAINERS_CONF="+p.path("containers.conf"),
		"CONTAINERS_STORAGE_CONF="+p.path("storage.conf"),
		"TMPDIR="+p.path("tmp"), // podman build's scratch space
	)
	return p, nil
}

// System is the machine's own podman, whose storage holds what `make
// images` built, with only the runtime settings this machine needs (runc,
// cgroupfs, ulimits: see New; no events log) in a temporary
// containers.conf. Storage, run root and tmp dir stay podman's defaults
// (they must match what podman recorded in its database), and Close removes
// only the configuration, never an image or a container. Use --rm. No
// events: conmon's `podman container cleanup` runs after a detached
// container exits, maybe after Close, and would make a file log's
// directory again (seen: a left /tmp/usrsp-podman-system-*/events.log).
func System(cfg Config) (*Podman, error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	dir, err := os.MkdirTemp("", "usrsp-podman-system-")
	if err != nil {
		return nil, err
	}
	p := &Podman{Dir: dir, logf: cfg.Logf, system: true}
	conf := `[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "none"
`
	if err := os.WriteFile(p.path("containers.conf"), []byte(conf), 0o644); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	p.env = append(os.Environ(), "CONTAINERS_CONF="+p.path("containers.conf"))
	return p, nil
}

func (p *Podman) path(elem ...string) string {
	return filepath.Join(append([]string{p.Dir}, elem...)...)
}

// NetworkDir is podman's CNI network config dir: one <name>.conflist per
// network.
func (p *Podman) NetworkDir() string { return p.path("networks") }

// AddNetwork writes a CNI network list (its "name" is the podman network).
func (p *Podman) AddNetwork(name string, conflist []byte) error {
	return os.WriteFile(filepath.Join(p.NetworkDir(), name+".conflist"), conflist, 0o644)
}

// RemoveNetwork removes a network written by AddNetwork.
func (p *Podman) RemoveNetwork(name string) error {
	err := os.Remove(filepath.Join(p.NetworkDir(), name+".conflist"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// Run runs podman with args and returns its stdout; the error carries its
// stderr.
func (p *Podman) Run(ctx context.Context, args ...string) (string, error) {
	return p.run(ctx, false, args...)
}

// RunCombined is Run with podman's stderr (and the container's) in the
// returned output too.
func (p *Podman) RunCombined(ctx context.Context, args ...string) (string, error) {
	return p.run(ctx, true, args...)
}

// run runs podman; combined: stderr goes to the returned output too.
func (p *Podman) run(ctx context.Context, combined bool, args ...string) (string, error) {
	start := time.Now()
	cmd := exec.CommandContext(ctx, "podman", args...)
	cmd.Env = p.env
	// On a cancelled context podman gets SIGTERM first, so it can undo.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if combined {
		cmd.Stderr = &stdout
	}
	err := cmd.Run()
	p.logf("podman %s (%s)", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	if err != nil {
		return stdout.String(), fmt.Errorf("podman %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Command is a podman command with the instance's configuration, for a
// caller that runs it itself (e.g. `podman run` in the foreground as a
// long-running process; podman proxies SIGTERM to the container).
func (p *Podman) Command(args ...string) *exec.Cmd {
	cmd := exec.Command("podman", args...)
	cmd.Env = p.env
	p.logf("podman %s (started)", strings.Join(args, " "))
	return cmd
}

// BuildImages builds PauseImage and PodConsumerImage FROM scratch out of
// the static binaries pause and podConsumer.
func (p *Podman) BuildImages(ctx context.Context, pause, podConsumer string) error {
	for _, img := range []struct{ tag, bin, path string }{
		{PauseImage, pause, "/pause"},
		{PodConsumerImage, podConsumer, PodConsumerPath},
	} {
		if err := p.buildImage(ctx, img.tag, img.bin, img.path); err != nil {
			return err
		}
	}
	return nil
}

// buildImage builds tag holding only bin at path, its entrypoint.
func (p *Podman) buildImage(ctx context.Context, tag, bin, path string) error {
	buildDir, err := os.MkdirTemp(p.path("tmp"), "build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(buildDir)
	b, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(buildDir, "bin"), b, 0o755); err != nil {
		return err
	}
	containerfile := fmt.Sprintf("FROM scratch\nCOPY bin %s\nENTRYPOINT [%q]\n", path, path)
	if err := os.WriteFile(filepath.Join(buildDir, "Containerfile"), []byte(containerfile), 0o644); err != nil {
		return err
	}
	_, err = p.Run(ctx, "build", "--quiet", "--pull=never", "--tag", tag, buildDir)
	return err
}

// BuildPause builds the static pause binary (tools/cmd/pause) to out;
// repoDir is the repository root.
func BuildPause(ctx context.Context, repoDir, out string) error {
	return testkit.GoBuild(ctx, filepath.Join(repoDir, "tools"), "./cmd/pause", out)
}

// Close removes every pod and container (tearing down their networks
// through CNI while the node still runs), then podman's storage with
// `system reset` (which also unmounts the overlay layers), then the
// directory. Safe to call twice. System's Close removes only its directory.
func (p *Podman) Close() error {
	if _, err := os.Stat(p.Dir); os.IsNotExist(err) {
		return nil
	}
	if p.system {
		return os.RemoveAll(p.Dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err1 := p.Run(ctx, "pod", "rm", "--all", "--force", "--time", "2")
	_, err2 := p.Run(ctx, "rm", "--all", "--force", "--time", "2")
	_, err3 := p.Run(ctx, "system", "reset", "--force")
	return errors.Join(err1, err2, err3, p.unmountAll(), os.RemoveAll(p.Dir))
}

// unmountAll unmounts whatever is still mounted under Dir (overlay layers
// or shm mounts that a failed reset left), deepest first.
func (p *Podman) unmountAll() error {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return err
	}
	var mounts []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], p.Dir+"/") {
			mounts = append(mounts, f[1])
		}
	}
	var errs []error
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := syscall.Unmount(mounts[i], syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("umount %s: %w", mounts[i], err))
		}
	}
	return errors.Join(errs...)
}
