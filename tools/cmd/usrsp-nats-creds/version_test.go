package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/tools/version"
)

// TestVersionAndHelp: both print to stdout and succeed.
func TestVersionAndHelp(t *testing.T) {
	for _, tc := range []struct{ arg, want string }{
		{"--version", "usrsp-nats-creds " + version.Version + " (contracts API v1)\n"},
		{"version", "usrsp-nats-creds " + version.Version},
		{"--help", "usage: usrsp-nats-creds"},
		{"-h", "version        print the version"},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			var out bytes.Buffer
			require.NoError(t, run([]string{tc.arg}, &out))
			assert.Contains(t, out.String(), tc.want)
		})
	}
}
