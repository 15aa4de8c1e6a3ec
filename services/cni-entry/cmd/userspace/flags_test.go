package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"

	"usrsp.dev/services/cni-entry/version"
)

// TestRunFlags: --version and --help for people; anything else is a usage
// error (exit 2), never a CNI call.
func TestRunFlags(t *testing.T) {
	for _, tc := range []struct {
		args             []string
		code             int
		wantOut, wantErr string
	}{
		{[]string{"--version"}, 0, "userspace " + version.Version + " (contracts API v1; CNI spec 0.3.1, 0.4.0, 1.0.0, 1.1.0)\n", ""},
		{[]string{"--help"}, 0, "CNI_COMMAND", ""},
		{[]string{"-h"}, 0, "--version", ""},
		{[]string{"--nope"}, 2, "", `unknown argument "--nope"`},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			var out, errOut bytes.Buffer
			assert.Equal(t, tc.code, runFlags(tc.args, &out, &errOut))
			assert.Contains(t, out.String(), tc.wantOut)
			assert.Contains(t, errOut.String(), tc.wantErr)
		})
	}
}
