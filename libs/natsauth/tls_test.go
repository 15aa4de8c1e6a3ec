package natsauth_test

import (
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

func TestTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, wrong := natsauthtest.NewCA(t, dir, "usrsp"), natsauthtest.NewCA(t, dir, "wrong")
	srvCert, srvKey := ca.Issue(t, "server", true)
	cliCert, cliKey := ca.Issue(t, "client", false)
	wrongCert, wrongKey := wrong.Issue(t, "intruder", false)
	f := newFixture(t)
	creds := f.Creds(t, cniA)

	verifyOnly := startConfig(t, f.Auth.ServerConfig(natsauth.ServerConfig{
		TLS: &natsauth.TLS{CertFile: srvCert, KeyFile: srvKey},
	}))
	mutual := startConfig(t, f.Auth.ServerConfig(natsauth.ServerConfig{
		TLS: &natsauth.TLS{CertFile: srvCert, KeyFile: srvKey, CAFile: ca.File},
	}))
	tlsURL := func(s *server.Server) string { return strings.Replace(s.ClientURL(), "nats://", "tls://", 1) }

	tests := []struct {
		name    string
		srv     *server.Server
		tls     natsauth.TLS
		wantErr string
	}{
		{"server verified", verifyOnly, natsauth.TLS{CAFile: ca.File}, ""},
		{"server signed by another CA", verifyOnly, natsauth.TLS{CAFile: wrong.File}, "certificate signed by unknown authority"},
		{"mutual: client certificate", mutual, natsauth.TLS{CAFile: ca.File, CertFile: cliCert, KeyFile: cliKey}, ""},
		{"mutual: no client certificate", mutual, natsauth.TLS{CAFile: ca.File}, "tls"},
		{"mutual: client certificate of another CA", mutual, natsauth.TLS{CAFile: ca.File, CertFile: wrongCert, KeyFile: wrongKey}, "tls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := natsauth.ClientOptions(creds, &tt.tls)
			require.NoError(t, err)
			nc, err := nats.Connect(tlsURL(tt.srv), append(opts, nats.Timeout(2*time.Second), nats.NoReconnect())...)
			if tt.wantErr == "" {
				require.NoError(t, err)
				defer nc.Close()
				require.NoError(t, nc.Flush())
				require.True(t, nc.TLSRequired())
				return
			}
			if err == nil {
				// With TLS 1.3 the server rejects a client certificate after the
				// handshake: the connection closes ("tls error").
				err = nc.Flush()
				nc.Close()
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.wantErr)
		})
	}

	t.Run("leaf over mutual TLS", func(t *testing.T) {
		hubLeaf := freeAddr(t)
		hub := startConfig(t, f.Auth.ServerConfig(natsauth.ServerConfig{
			LeafListen: hubLeaf, TLS: &natsauth.TLS{CertFile: srvCert, KeyFile: srvKey, CAFile: ca.File},
		}))
		leaf := startConfig(t, f.Auth.LeafConfig(natsauth.LeafConfig{
			HubURLs: []string{"nats-leaf://" + hubLeaf}, CredsFile: f.Creds(t, leafA),
			TLS: &natsauth.TLS{CAFile: ca.File, CertFile: cliCert, KeyFile: cliKey},
		}))
		require.Eventually(t, func() bool { return hub.NumLeafNodes() == 1 && leaf.NumLeafNodes() == 1 },
			5*time.Second, 10*time.Millisecond)
	})
}

func TestTLSValidate(t *testing.T) {
	dir := t.TempDir()
	ca := natsauthtest.NewCA(t, dir, "usrsp")
	cert, key := ca.Issue(t, "c", false)
	tests := []struct {
		name    string
		tls     natsauth.TLS
		wantErr string
	}{
		{"client without CA", natsauth.TLS{CertFile: cert, KeyFile: key}, "caFile is required"},
		{"cert without key", natsauth.TLS{CAFile: ca.File, CertFile: cert}, "together"},
		{"missing CA file", natsauth.TLS{CAFile: filepath.Join(dir, "nope.pem")}, "nope.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.tls.ClientOptions()
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
	_, err := natsauth.TLS{CAFile: ca.File}.ServerTLSConfig()
	require.ErrorContains(t, err, "certFile and keyFile")
	cfg, err := natsauth.TLS{CAFile: ca.File, CertFile: cert, KeyFile: key}.ServerTLSConfig()
	require.NoError(t, err)
	require.NotNil(t, cfg.ClientCAs)
}
