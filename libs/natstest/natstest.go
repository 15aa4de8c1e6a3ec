// Package natstest starts a real, embedded nats-server for tests and demos.
package natstest

import (
	"fmt"
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
