// Package natsauthtest runs real embedded nats-servers secured the way
// usrsp deploys them (libs/natsauth), for tests of the services that
// connect to them.
package natsauthtest

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/natsauth"
	"usrsp.dev/libs/natstest"
)

// Env is a fresh authority with its .creds in a temporary directory.
type Env struct {
	Auth *natsauth.Authority
	dir  string

	mu    sync.Mutex
	creds map[natsauth.Identity]string
}

// New creates an authority for t.
func New(t testing.TB) *Env {
	t.Helper()
	a, err := natsauth.NewAuthority("usrsp-test")
	if err != nil {
		t.Fatal(err)
	}
	return &Env{Auth: a, dir: t.TempDir(), creds: map[natsauth.Identity]string{}}
}

// Creds mints id once (valid for an hour) and returns its .creds path.
func (e *Env) Creds(t testing.TB, id natsauth.Identity) string {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if p, ok := e.creds[id]; ok {
		return p
	}
	b, _, err := e.Auth.Mint(id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(e.dir, string(id.Role)+"-"+id.Name+".creds")
	if err := natsauth.WriteCreds(p, b); err != nil {
		t.Fatal(err)
	}
	e.creds[id] = p
	return p
}

// StartServer runs a hub with the authority's ServerConfig(c).
func (e *Env) StartServer(t testing.TB, c natsauth.ServerConfig) *server.Server {
	t.Helper()
	return StartConfig(t, e.Auth.ServerConfig(c))
}

// StartTLSServer runs a hub that requires TLS with client certificates,
// all signed by one throw-away CA, and returns the files a client needs.
func (e *Env) StartTLSServer(t testing.TB) (*server.Server, contracts.TLSFiles) {
	t.Helper()
	ca := NewCA(t, e.dir, "usrsp")
	srvCert, srvKey := ca.Issue(t, "server", true)
	cliCert, cliKey := ca.Issue(t, "client", false)
	srv := e.StartServer(t, natsauth.ServerConfig{TLS: &natsauth.TLS{CertFile: srvCert, KeyFile: srvKey, CAFile: ca.File}})
	return srv, contracts.TLSFiles{CAFile: ca.File, CertFile: cliCert, KeyFile: cliKey}
}

// Connect connects to url with tls as id, the way the services do:
// contracts.Connect with id's .creds and the inbox prefix of inboxRole
// (id's role, unless a test plays a wrong one). The connection is closed
// when t ends.
func (e *Env) Connect(t testing.TB, url string, tls contracts.TLSFiles, id natsauth.Identity, inboxRole string) (*nats.Conn, error) {
	t.Helper()
	nc, err := contracts.Connect(contracts.ConnectOptions{URL: url, CredentialsFile: e.Creds(t, id), TLS: tls,
		InboxPrefix: contracts.InboxPrefix(inboxRole, id.Name), Timeout: 2 * time.Second})
	if err != nil {
		return nil, err
	}
	t.Cleanup(nc.Close)
	return nc, nil
}

// StartConfig runs a server from a configuration text, parsed as
// `nats-server -c` would, on a free loopback port unless it sets one; it
// is shut down in t.Cleanup.
func StartConfig(t testing.TB, conf string) *server.Server {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, conf)
	}
	return Start(t, opts)
}

// Start runs a server with opts and shuts it down in t.Cleanup.
func Start(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	srv, err := natstest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}
