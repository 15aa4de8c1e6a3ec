package contractstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"usrsp.dev/contracts"
)

// Target is one adapter under RunAdapterSuite. The suite talks to it over
// NATS exactly as cni-entry does (contracts.Client) and listens to its
// events, so the same suite runs against a fake vswitch and a real one.
type Target struct {
	// NC is a connection to the NATS the adapter serves on.
	NC     *nats.Conn
	Node   string
	Engine contracts.Engine
	// Request returns a valid attach request for key on network, with any
	// paths (socket files) in directories the target owns; different keys
	// must get different sockets.
	Request func(key contracts.AttachmentKey, network string) *contracts.AttachRequest
	// Conflicting returns a copy of r whose interface differs in a way the
	// engine records (e.g. another memif id or MTU): attaching it over r
	// must be CodeConflict, CHECKing it CodeMismatch.
	Conflicting func(r *contracts.AttachRequest) *contracts.AttachRequest
	// Restart, if set, restarts the adapter keeping its records and
	// returns once it is back on NATS; nil skips the restart case.
	Restart func(t *testing.T)
	// AssertClean, if set, fails t if the vswitch still holds anything the
	// adapter made; the suite calls it after detaching everything.
	AssertClean func(t *testing.T)
	// Timeout bounds each request and each wait for an event
	// (default 10s).
	Timeout time.Duration
}

// OtherMemifID is a Conflicting for memif requests: the same request with
// the next memif id, which every engine records.
func OtherMemifID(r *contracts.AttachRequest) *contracts.AttachRequest {
	c := *r
	if r.Interface.Memif != nil {
		m := *r.Interface.Memif
		m.ID++
		c.Interface.Memif = &m
	}
	return &c
}

// Connect dials the NATS at url for a test (closed at its end); it fails
// t if it cannot.
func Connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := contracts.Connect(contracts.ConnectOptions{URL: url, Timeout: 2 * time.Second, Name: t.Name()})
	if err != nil {
		t.Fatalf("connect to NATS at %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}
