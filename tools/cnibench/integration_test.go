package cnibench_test

// The integration test drives the real, freshly built userspace binary
// through cnibench's CLI entry point, against an embedded nats-server and
// the contracts' FakeAdapter; no root needed (--netns=none).

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/contractstest"
	"usrsp.dev/libs/natstest"
	"usrsp.dev/libs/testkit"
	"usrsp.dev/tools/cnibench"
)

const node = "bench-node"

// binDir holds the userspace CNI binary built by TestMain.
var binDir string

func userspaceBin() string { return filepath.Join(binDir, "userspace") }

func TestMain(m *testing.M) {
	os.Exit(testkit.RunWithBinaries(m, &binDir,
		testkit.Binary{Name: "userspace", Dir: filepath.Join("..", "..", "services", "cni-entry"), Pkg: "./cmd/userspace"}))
}

// fixture is NATS, the fake VPP adapter and a userspace config for them.
type fixture struct {
	fake   *contractstest.FakeAdapter
	config string
	url    string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv, nc := natstest.Connect(t)
	fake := contractstest.NewFakeAdapter(contracts.EngineVPP)
	svc, err := fake.Serve(nc, node)
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })

	// Not t.TempDir(): test names make paths too long for unix sockets.
	root, err := os.MkdirTemp("", "cnib")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(root) })
	conf := map[string]any{
		"cniVersion": "1.0.0", "name": "memif-net",
		"plugins": []any{map[string]any{
			"type": "userspace", "nodeName": node,
			"sharedDir": filepath.Join(root, "shared"), "linkDir": filepath.Join(root, "l"),
			"nats": map[string]any{"url": srv.ClientURL(), "timeout": "2s"},
			"host": map[string]any{"engine": "vpp", "iftype": "memif", "netType": "bridge", "bridge": map[string]any{"bridgeId": 4}},
		}},
	}
	b, err := json.Marshal(conf)
	require.NoError(t, err)
	path := filepath.Join(root, "memif.conflist")
	require.NoError(t, os.WriteFile(path, b, 0o644))
	return &fixture{fake: fake, config: path, url: srv.ClientURL()}
}

// run runs the cnibench command and decodes its JSON report.
func run(t *testing.T, args ...string) (int, *cnibench.Report) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cnibench.Run(context.Background(), append(args, "--json", "--netns=none", "--cni-path="), &stdout, &stderr)
	t.Logf("stderr:\n%s", stderr.String())
	var rep cnibench.Report
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep), "stdout: %s", stdout.String())
	return code, &rep
}

func phase(t *testing.T, r cnibench.Result, name string) cnibench.Phase {
	t.Helper()
	for _, p := range r.Phases {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no phase %s in %+v", name, r)
	return cnibench.Phase{}
}

func TestUserspaceThroughLibcni(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		results int
		adds    int // successful ADDs per result
		calls   int // attach calls the adapter must have seen, at least
	}{
		{"latency", []string{"latency", "-n", "5", "--warmup", "1"}, 1, 5, 6},
		{"latency --vs interleaves two copies", []string{"latency", "-n", "3", "--warmup", "1", "--vs", "VS"}, 2, 3, 8},
		{"burst", []string{"burst", "-c", "8", "--warmup", "0"}, 1, 8, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t)
			args := append([]string{}, tt.args...)
			for i, a := range args {
				if a == "VS" {
					args[i] = userspaceBin()
				}
			}
			code, rep := run(t, append(args, "--config", fx.config, "--bin", userspaceBin())...)
			require.Equal(t, cnibench.ExitOK, code)
			assert.Equal(t, cnibench.Schema, rep.Schema)
			assert.Equal(t, "memif-net", rep.Network)
			assert.Zero(t, rep.Failed)
			require.Len(t, rep.Results, tt.results)
			for _, r := range rep.Results {
				add, del := phase(t, r, "add"), phase(t, r, "del")
				assert.Equal(t, tt.adds, add.OK, r.Label)
				assert.Equal(t, tt.adds, del.OK, r.Label)
				assert.Positive(t, add.Latency.MedianMs)
			}
			if tt.results == 2 {
				assert.NotEmpty(t, rep.Ratios)
			}
			attaches := 0
			for _, op := range fx.fake.Calls() {
				if op == contracts.OpAttach {
					attaches++
				}
			}
			assert.GreaterOrEqual(t, attaches, tt.calls)
			assert.Empty(t, fx.fake.Attachments(), "every attachment must be deleted")
		})
	}
}

func TestRecoverAgainstFakeAdapter(t *testing.T) {
	fx := newFixture(t)
	code, rep := run(t, "recover", "-k", "6", "--parallel", "3", "--restart-cmd", "true",
		"--recover-timeout", "20s", "--config", fx.config, "--bin", userspaceBin())
	require.Equal(t, cnibench.ExitOK, code)
	require.Len(t, rep.Results, 1)
	rc := rep.Results[0].Recover
	require.NotNil(t, rc)
	assert.Equal(t, 6, rc.Attachments)
	assert.Equal(t, 6, rc.Back, "the fake keeps its attachments: all are back at once")
	assert.Empty(t, fx.fake.Attachments())
}

func TestFailuresGiveExitStatusAndCodes(t *testing.T) {
	fx := newFixture(t)
	fx.fake.FailNext(contracts.OpAttach, contracts.Errorf(contracts.CodeVswitch, "bridge domain 4 is gone"))
	code, rep := run(t, "latency", "-n", "3", "--warmup", "0", "--config", fx.config, "--bin", userspaceBin())
	assert.Equal(t, cnibench.ExitFailures, code)
	add := phase(t, rep.Results[0], "add")
	assert.Equal(t, 2, add.OK)
	require.Len(t, add.Failures, 1)
	assert.Equal(t, uint(contracts.CodeVswitch), add.Failures[0].Code)
	assert.Contains(t, add.Failures[0].Example, "bridge domain 4")
	assert.Empty(t, fx.fake.Attachments())
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no mode", nil},
		{"unknown mode", []string{"speed", "--config", "x"}},
		{"no config", []string{"latency"}},
		{"recover without restart command", []string{"recover", "--config", "x"}},
		{"vs with scale", []string{"scale", "--config", "x", "--vs", "y"}},
		{"missing config file", []string{"latency", "--config", "/nonexistent.conflist"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			assert.Equal(t, cnibench.ExitUsage, cnibench.Run(context.Background(), tt.args, &stdout, &stderr))
			assert.Empty(t, stdout.String(), "stdout carries only a report")
			assert.NotEmpty(t, stderr.String())
		})
	}
}
