// Package natstest starts a real, embedded nats-server for tests and demos.
package natstest

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Start runs an embedded nats-server on a free loopback port. Stop it with
// Shutdown; prefer Run in tests.
func Start(opts *server.Options) (*server.Server, error) {
	if opts == nil {
		opts = &server.Options{}
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	opts.NoSigs = true
	opts.NoLog = !opts.Debug
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats-server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("nats-server did not become ready within 10s")
	}
	return srv, nil
}

// Run starts an embedded nats-server for t and shuts it down in t.Cleanup.
func Run(t testing.TB) *server.Server {
	t.Helper()
	srv, err := Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

// Connect runs an embedded nats-server for t (as Run) and returns it with a
// client connected to it; both are closed in t.Cleanup.
func Connect(t testing.TB) (*server.Server, *nats.Conn) {
	t.Helper()
	srv := Run(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return srv, nc
}

// ClusterName is the cluster name of StartCluster's servers.
const ClusterName = "usrsp-test"

// StartCluster runs n embedded nats-servers on loopback (random client and
// route ports) routed into one cluster, and returns once every server has
// a route to each of the others. Servers 1..n-1 route to server 0; NATS
// gossips the rest of the mesh. Stop them with Shutdown; prefer RunCluster
// in tests.
func StartCluster(n int) (srvs []*server.Server, err error) {
	if n < 1 {
		return nil, fmt.Errorf("natstest: a cluster of %d servers", n)
	}
	defer func() {
		if err != nil {
			shutdown(srvs)
			srvs = nil
		}
	}()
	var seed []*url.URL
	for i := range n {
		srv, err := Start(&server.Options{
			ServerName: fmt.Sprintf("%s-%d", ClusterName, i),
			Cluster:    server.ClusterOpts{Name: ClusterName, Host: "127.0.0.1", Port: server.RANDOM_PORT},
			Routes:     seed,
		})
		if err != nil {
			return srvs, fmt.Errorf("server %d: %w", i, err)
		}
		srvs = append(srvs, srv)
		if i == 0 {
			if seed, err = routeURL(srv); err != nil {
				return srvs, err
			}
		}
	}
	return srvs, awaitRoutes(srvs, 10*time.Second)
}

// routeURL is srv's cluster listen address as a route URL.
func routeURL(srv *server.Server) ([]*url.URL, error) {
	addr := srv.ClusterAddr()
	if addr == nil {
		return nil, errors.New("natstest: server 0 has no cluster listener")
	}
	return []*url.URL{{Scheme: "nats-route", Host: addr.String()}}, nil
}

// awaitRoutes waits until every server has routes to the n-1 others.
// Route set-up has no event to wait for, so this polls, bounded by timeout.
func awaitRoutes(srvs []*server.Server, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var missing []string
		for _, s := range srvs {
			if got := s.NumRemotes(); got != len(srvs)-1 {
				missing = append(missing, fmt.Sprintf("%s has %d of %d routes", s.Name(), got, len(srvs)-1))
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("natstest: cluster not formed within %s: %s", timeout, strings.Join(missing, ", "))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func shutdown(srvs []*server.Server) {
	for _, s := range srvs {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// RunCluster starts a cluster of n servers for t (as StartCluster) and
// shuts them down in t.Cleanup.
func RunCluster(t testing.TB, n int) []*server.Server {
	t.Helper()
	srvs, err := StartCluster(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(srvs) })
	return srvs
}

// ClientURLs is every server's client URL, comma-separated, as nats.go
// and cni-entry's nats.url take them.
func ClientURLs(srvs []*server.Server) string {
	urls := make([]string, len(srvs))
	for i, s := range srvs {
		urls[i] = s.ClientURL()
	}
	return strings.Join(urls, ",")
}
