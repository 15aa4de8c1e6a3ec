package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"usrsp.dev/libs/natsauth"
	"usrsp.dev/libs/natsauth/natsauthtest"
)

func TestRun(t *testing.T) {
	tmp := t.TempDir()
	auth, out := filepath.Join(tmp, "auth"), filepath.Join(tmp, "creds")
	sh := func(args ...string) string {
		t.Helper()
		var b bytes.Buffer
		require.NoError(t, run(args, &b), args)
		return b.String()
	}

	sh("init", "-dir", auth)
	require.ErrorContains(t, run([]string{"init", "-dir", auth}, &bytes.Buffer{}), "refusing to overwrite")
	minted := sh("node", "-dir", auth, "-out", out, "node-a", "node-b.example")
	sh("operator", "-dir", auth, "-out", out, "alice")
	for _, f := range []string{"node-a/cni.creds", "node-a/adapter.creds", "node-a/leaf.creds", "node-b.example/cni.creds", "operator-alice.creds"} {
		st, err := os.Stat(filepath.Join(out, f))
		require.NoError(t, err, f)
		require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), f)
	}
	require.Contains(t, sh("leaf-config", "-dir", auth, "-hub", "nats-leaf://hub:7422"), "nats-leaf://hub:7422")
	cluster := sh("server-config", "-dir", auth, "-routes", "nats-0.nats:6222,nats-1.nats:6222", "-leaf-listen", "0.0.0.0:7422")
	require.Contains(t, cluster, `listen: "0.0.0.0:6222"`)
	require.Contains(t, cluster, "@nats-1.nats:6222")
	confFile := filepath.Join(tmp, "cluster.conf")
	require.NoError(t, os.WriteFile(confFile, []byte(cluster), 0o600))
	opts, err := server.ProcessConfigFile(confFile) // what nats-server -c reads
	require.NoError(t, err)
	require.Len(t, opts.Routes, 2)
	require.Equal(t, natsauth.RouteUser, opts.Cluster.Username)
	require.Equal(t, 7422, opts.LeafNode.Port)
	require.NotContains(t, sh("server-config", "-dir", auth), "cluster")
	require.ErrorContains(t, run([]string{"server-config", "-dir", auth, "-routes", "a:6222", "-cluster-name", ""}, &bytes.Buffer{}), "-cluster-name")
	require.ErrorContains(t, run([]string{"node", "-dir", auth}, &bytes.Buffer{}), "at least one name")
	require.ErrorContains(t, run([]string{"bogus"}, &bytes.Buffer{}), "unknown command")

	// The rendered server configuration accepts node-a's cni-entry.
	connect := func(creds string) error {
		srv := natsauthtest.StartConfig(t, sh("server-config", "-dir", auth))
		defer srv.Shutdown()
		copts, err := natsauth.ClientOptions(filepath.Join(out, creds), nil)
		require.NoError(t, err)
		nc, err := nats.Connect(srv.ClientURL(), append(copts, nats.Timeout(2*time.Second), nats.NoReconnect())...)
		if err == nil {
			nc.Close()
		}
		return err
	}
	require.NoError(t, connect("node-a/cni.creds"))

	// Revoking node-a's cni user (public key printed by "node") locks it out.
	var userA string
	for _, line := range strings.Split(minted, "\n") {
		if strings.Contains(line, "cni@node-a\t") {
			userA = line[strings.LastIndex(line, " ")+1:]
		}
	}
	require.True(t, strings.HasPrefix(userA, "U"), minted)
	sh("revoke", "-dir", auth, userA)
	require.ErrorContains(t, connect("node-a/cni.creds"), "Authorization Violation")
	require.NoError(t, connect("node-b.example/cni.creds"))
}
