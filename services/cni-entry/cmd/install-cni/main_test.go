package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/services/cni-entry/version"
)

// TestRun: the command line of the image's entrypoint.
func TestRun(t *testing.T) {
	base := t.TempDir()
	src := filepath.Join(base, "userspace")
	require.NoError(t, os.WriteFile(src, []byte("cni"), 0o755))
	dest := filepath.Join(base, "bin")
	require.NoError(t, os.Mkdir(dest, 0o755))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		args   []string
		code   int
		out    string
		errOut string
	}{
		{name: "version", args: []string{"--version"}, out: "install-cni " + version.Version + " "},
		{name: "help", args: []string{"--help"}, out: "Usage: install-cni"},
		{name: "bad flag", args: []string{"--nope"}, code: 2, errOut: "flag provided but not defined: -nope"},
		{name: "argument", args: []string{"x"}, code: 2, errOut: `unexpected argument "x"`},
		{name: "install", args: []string{"--src", src, "--dest", dest}, out: "installed " + filepath.Join(dest, "userspace")},
		{name: "sleep until SIGTERM", ctx: cancelled, args: []string{"--src", src, "--dest", dest, "--name", "us2", "--sleep"}, out: "installed"},
		{name: "missing dest", args: []string{"--src", src, "--dest", filepath.Join(base, "none")}, code: 1, errOut: "--dest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			var out, errOut bytes.Buffer
			assert.Equal(t, tc.code, run(ctx, tc.args, &out, &errOut), "stderr: %s", errOut.String())
			assert.Contains(t, out.String(), tc.out)
			assert.Contains(t, errOut.String(), tc.errOut)
		})
	}
	_, err := os.Stat(filepath.Join(dest, "us2"))
	assert.NoError(t, err)
}
