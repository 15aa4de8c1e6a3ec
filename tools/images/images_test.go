//go:build images

// Package images is the smoke test of what `make images` built (run it with
// `make test-images`): each image, from the machine's podman storage, runs
// `--version` and `--help`, is one FROM-scratch layer with its version label
// and user, and the cni-installer installs the CNI plugin for real into a
// directory mounted like the host's /opt/cni/bin.
package images

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/tools/podmantest"
)

// prefix is where build.sh tags the images.
const prefix = "localhost/usrsp/"

type image struct {
	name, version string
	user          string // the image's USER
	versionOut    string // --version's output starts with it
	helpOut       string // --help's output contains it
	testedWith    string // the dev.usrsp.tested-with label starts with it (adapters)
}

func (i image) ref() string { return prefix + i.name + ":" + i.version }

func TestImages(t *testing.T) {
	pm := systemPodman(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	cni, nats := moduleVersion(t, "services/cni-entry"), natsVersion(t)
	images := []image{
		{name: "cni-installer", version: cni, user: "0:0", versionOut: "install-cni " + cni + " ", helpOut: "Usage: install-cni"},
		{name: "ovs-adapter", version: moduleVersion(t, "services/ovs-adapter"), user: "0:0", helpOut: "-nats-url", testedWith: "Open vSwitch "},
		{name: "vpp-adapter", version: moduleVersion(t, "services/vpp-adapter"), user: "0:0", helpOut: "-vpp-api-socket", testedWith: "VPP "},
		{name: "pod-consumer", version: moduleVersion(t, "services/pod-consumer"), user: "65532:65532", helpOut: "Usage:"},
		{name: "nats-server", version: nats, user: "65532:65532", versionOut: "nats-server: v" + nats + "\n", helpOut: "Usage: nats-server"},
	}
	for _, img := range images {
		t.Run(img.name, func(t *testing.T) {
			var inspect []struct {
				Config struct {
					User       string
					Entrypoint []string
					Labels     map[string]string
				}
				RootFS struct{ Layers []string }
				Size   int64
			}
			out, err := pm.Run(ctx, "image", "inspect", img.ref())
			require.NoError(t, err, "run `make images` first")
			require.NoError(t, json.Unmarshal([]byte(out), &inspect))
			require.Len(t, inspect, 1)
			cfg := inspect[0]
			t.Logf("%s: %.1f MB", img.ref(), float64(cfg.Size)/1e6)
			assert.Len(t, cfg.RootFS.Layers, 1, "FROM scratch and one COPY")
			assert.Equal(t, img.user, cfg.Config.User)
			assert.Equal(t, img.version, cfg.Config.Labels["org.opencontainers.image.version"])
			require.Len(t, cfg.Config.Entrypoint, 1)

			version := run(t, ctx, pm, nil, img.ref(), "--version")
			want := img.versionOut
			if want == "" { // the adapters and pod-consumer: "<name> <version> "
				want = img.name + " " + img.version + " "
			}
			assert.True(t, strings.HasPrefix(version, want), "--version: %q, want it to start with %q", version, want)
			if img.testedWith != "" {
				tested := cfg.Config.Labels["dev.usrsp.tested-with"]
				assert.True(t, strings.HasPrefix(tested, img.testedWith), "tested-with label %q", tested)
				assert.Contains(t, version, "built and tested for "+tested+")")
			}
			if api, ok := cfg.Config.Labels["dev.usrsp.contracts-api"]; ok || img.name != "nats-server" {
				assert.Equal(t, "v1", api, "contracts API label")
			}
			assert.Contains(t, run(t, ctx, pm, nil, img.ref(), "--help"), img.helpOut)
		})
	}

	t.Run("cni-installer installs", func(t *testing.T) {
		ref := images[0].ref()
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "userspace"), []byte("old"), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "host-local"), []byte("theirs"), 0o755))
		out := run(t, ctx, pm, []string{"-v", dir + ":/host/opt/cni/bin"}, ref)
		assert.Contains(t, out, "installed /host/opt/cni/bin/userspace")

		// Atomically: the old file was replaced whole (temporary gone,
		// nothing else touched), by an executable that is the image's plugin.
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		assert.ElementsMatch(t, []string{"host-local", "userspace"}, names)
		fi, err := os.Stat(filepath.Join(dir, "userspace"))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm())
		host, err := exec.CommandContext(ctx, filepath.Join(dir, "userspace"), "--version").Output()
		require.NoError(t, err, "the installed plugin runs on the host (static)")
		assert.Equal(t, run(t, ctx, pm, []string{"--entrypoint", "/usr/local/bin/userspace"}, ref, "--version"), string(host))
		assert.Regexp(t, regexp.MustCompile(`^userspace `+regexp.QuoteMeta(images[0].version)+` \(contracts API v1;`), string(host))
	})

	t.Run("cni-installer --sleep stops on SIGTERM", func(t *testing.T) {
		name := runDetached(t, ctx, pm, "-v", t.TempDir()+":/host/opt/cni/bin", images[0].ref(), "--sleep")
		waitLog(t, ctx, pm, name, "installed")
		_, err := pm.Run(ctx, "stop", "--time", "20", name)
		require.NoError(t, err)
		code, err := pm.Run(ctx, "inspect", "--format", "{{.State.ExitCode}}", name)
		require.NoError(t, err)
		assert.Equal(t, "0", strings.TrimSpace(code), "SIGTERM is a clean exit, not a kill after the grace period")
	})

	t.Run("nats-server serves as non-root", func(t *testing.T) {
		name := runDetached(t, ctx, pm, images[4].ref(), "-a", "127.0.0.1", "-p", "4222")
		waitLog(t, ctx, pm, name, "Server is ready")
	})
}

// run runs the image once (podman run --rm, no network, podman's options
// opts) with args and returns its combined output; a non-zero exit fails
// the test.
func run(t *testing.T, ctx context.Context, pm *podmantest.Podman, opts []string, ref string, args ...string) string {
	t.Helper()
	full := append(append(append([]string{"run", "--rm", "--network", "none"}, opts...), ref), args...)
	out, err := pm.RunCombined(ctx, full...)
	require.NoError(t, err, out)
	return out
}

// runDetached starts a container (podman run --detach, no network) with
// args, removes it when t ends, and returns its name.
func runDetached(t *testing.T, ctx context.Context, pm *podmantest.Podman, args ...string) string {
	t.Helper()
	name := "usrsp-images-test-" + suffix(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = pm.Run(ctx, "rm", "--force", "--time", "1", name)
	})
	_, err := pm.Run(ctx, append([]string{"run", "--detach", "--name", name, "--network", "none"}, args...)...)
	require.NoError(t, err)
	return name
}

// waitLog waits (bounded by ctx) until the container's log contains want.
func waitLog(t *testing.T, ctx context.Context, pm *podmantest.Podman, name, want string) {
	t.Helper()
	var logs string
	for {
		logs, _ = pm.RunCombined(ctx, "logs", name)
		if strings.Contains(logs, want) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("container %s never logged %q: %s", name, want, logs)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// systemPodman is the machine's podman, whose storage holds the images; it
// skips where podman cannot run, except under CI.
func systemPodman(t *testing.T) *podmantest.Podman {
	t.Helper()
	if r := podmantest.Missing(); r != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI must run the image smoke test: %s", r)
		}
		t.Skip(r)
	}
	pm, err := podmantest.System(podmantest.Config{Logf: t.Logf})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, pm.Close()) })
	return pm
}

// moduleVersion is the module's one version (<module>/version/VERSION),
// the tag build.sh gives its image.
func moduleVersion(t *testing.T, module string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", module, "version", "VERSION"))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

// natsVersion is the nats-server version tools/go.mod pins, without "v".
func natsVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "go.mod"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^\s*github\.com/nats-io/nats-server/v2 v(\S+)`).FindSubmatch(b)
	require.NotNil(t, m, "tools/go.mod requires no nats-server")
	return string(m[1])
}

func suffix(t *testing.T) string {
	b := make([]byte, 4)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}
