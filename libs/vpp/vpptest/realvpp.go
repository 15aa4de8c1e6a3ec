package vpptest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.fd.io/govpp/adapter/socketclient"
	"go.fd.io/govpp/core"

	"usrsp.dev/libs/vpp"
	"usrsp.dev/libs/vpp/vppproc"
)

// The fake above serves unit tests; the helpers below start a real VPP
// (USRSP_VPP_BIN, through vppproc) for the tests that need one.

// NeedVPP skips t unless a real VPP can run here. It fails t instead under
// USRSP_VPP_REQUIRED=1 (CI, whenever a VPP is there: a suite that silently
// skipped would prove nothing), and when USRSP_VPP_BIN names a VPP that
// cannot run although we are root.
func NeedVPP(t testing.TB) {
	t.Helper()
	r := vppproc.Missing()
	switch {
	case r == "":
	case vppproc.Required() || (os.Getenv(vppproc.EnvBin) != "" && os.Geteuid() == 0):
		t.Fatal("real VPP: " + r)
	default:
		t.Skip("real VPP skipped: " + r)
	}
}

// StartVPP starts a real VPP for t with its main thread on mainCore, in a
// fresh directory under the system's temp dir (short: unix socket paths
// are limited to 107 bytes). t.Cleanup stops it and removes its files.
func StartVPP(t testing.TB, name string, mainCore int) *vppproc.VPP {
	t.Helper()
	NeedVPP(t)
	dir, err := os.MkdirTemp("", "usrsp-"+name+"-")
	require.NoError(t, err)
	v, err := vppproc.New(vppproc.Config{Name: name, Dir: dir, MainCore: mainCore})
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.NoError(t, v.Stop())
		if t.Failed() {
			t.Logf("%s: VPP output:\n%s", name, v.LogTail(200))
		}
		_ = os.RemoveAll(dir)
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, v.Start(ctx))
	t.Logf("%s: VPP pid %d, API %s", name, v.PID(), v.APISock)
	return v
}

// Connect connects to the VPP API socket apiSock and checks that VPP
// speaks the binary API of libs/vpp. t.Cleanup disconnects (if the test
// did not before).
func Connect(t testing.TB, apiSock string) (*core.Connection, *vpp.Client) {
	t.Helper()
	conn, err := core.Connect(socketclient.NewVppClient(apiSock))
	require.NoError(t, err, "connect to VPP at %s", apiSock)
	t.Cleanup(conn.Disconnect) // a second Disconnect is a no-op
	if err := vpp.CheckCompatibility(conn); err != nil {
		conn.Disconnect()
		require.NoError(t, err)
	}
	return conn, vpp.NewClient(conn)
}
