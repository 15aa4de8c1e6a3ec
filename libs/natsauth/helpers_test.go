package natsauth_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/natsauth"
	"usrsp.dev/libs/natsauth/natsauthtest"
)

// Node B's name has a dot, so its subject token differs from its name.
const (
	nodeA = "node-a"
	nodeB = "node-b.example"
)

var (
	cniA      = natsauth.Identity{Role: natsauth.RoleCNI, Name: nodeA}
	cniB      = natsauth.Identity{Role: natsauth.RoleCNI, Name: nodeB}
	adapterA  = natsauth.Identity{Role: natsauth.RoleAdapter, Name: nodeA}
	adapterB  = natsauth.Identity{Role: natsauth.RoleAdapter, Name: nodeB}
	leafA     = natsauth.Identity{Role: natsauth.RoleLeaf, Name: nodeA}
	operatorO = natsauth.Identity{Role: natsauth.RoleOperator, Name: "ops"}
)

// fixture is one authority with minted .creds in a temp dir.
type fixture = natsauthtest.Env

func newFixture(t *testing.T) *fixture { return natsauthtest.New(t) }

func startConfig(t *testing.T, conf string) *server.Server {
	t.Helper()
	return natsauthtest.StartConfig(t, conf)
}

func start(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	return natsauthtest.Start(t, opts)
}

// freeAddr returns a loopback host:port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// client is a connection that records the server's asynchronous errors
// (permission violations arrive that way).
type client struct {
	nc   *nats.Conn
	errs chan error
}

func dial(t *testing.T, url, creds string, extra ...nats.Option) *client {
	t.Helper()
	c, err := tryDial(url, creds, extra...)
	require.NoError(t, err)
	t.Cleanup(c.nc.Close)
	return c
}

func tryDial(url, creds string, extra ...nats.Option) (*client, error) {
	c := &client{errs: make(chan error, 256)}
	var opts []nats.Option
	if creds != "" {
		var err error
		if opts, err = natsauth.ClientOptions(creds, nil); err != nil {
			return nil, err
		}
	}
	opts = append(opts, nats.Timeout(2*time.Second), nats.NoReconnect(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case c.errs <- err:
			default:
			}
		}))
	nc, err := nats.Connect(url, append(opts, extra...)...)
	if err != nil {
		return nil, err
	}
	c.nc = nc
	return c, nil
}

// requireViolation waits for the server to report a permissions violation
// on subject.
func (c *client) requireViolation(t *testing.T, subject string) {
	t.Helper()
	deadline := time.After(3 * time.Second)
	for {
		select {
		case err := <-c.errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), `"`+subject+`"`) {
				return
			}
		case <-deadline:
			t.Fatalf("no permissions violation reported for %q", subject)
		}
	}
}

// recorder subscribes and keeps what it receives.
type recorder struct {
	mu   sync.Mutex
	msgs []*nats.Msg
	ch   chan *nats.Msg
}

func record(t *testing.T, c *client, subject string) *recorder {
	t.Helper()
	r := &recorder{ch: make(chan *nats.Msg, 64)}
	_, err := c.nc.Subscribe(subject, func(m *nats.Msg) {
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		r.mu.Unlock()
		r.ch <- m
	})
	require.NoError(t, err)
	require.NoError(t, c.nc.Flush())
	return r
}

func (r *recorder) subjects() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.msgs {
		out = append(out, m.Subject)
	}
	return out
}

// next waits for a message on subject, skipping others.
func (r *recorder) next(t *testing.T, subject string) *nats.Msg {
	t.Helper()
	deadline := time.After(3 * time.Second)
	for {
		select {
		case m := <-r.ch:
			if m.Subject == subject {
				return m
			}
		case <-deadline:
			t.Fatalf("nothing received on %q (got %v)", subject, r.subjects())
			return nil
		}
	}
}

// fakeAdapter serves node's vpp subjects the way contracts/service does
// (a nats.go micro service, one endpoint per op in queue group "q") and
// answers every request with {"node":..., "op":...}.
type fakeAdapter struct {
	svc   micro.Service
	calls atomic.Int32
}

func serveFake(t *testing.T, c *client, node string) *fakeAdapter {
	t.Helper()
	f := &fakeAdapter{}
	svc, err := micro.AddService(c.nc, micro.Config{
		Name: contracts.ServiceName(contracts.EngineVPP), Version: "0.0.1",
		Metadata: map[string]string{"node": node},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	g := svc.AddGroup(contracts.ServicePrefix(node, contracts.EngineVPP))
	for _, op := range contracts.Ops {
		require.NoError(t, g.AddEndpoint(string(op), micro.HandlerFunc(func(req micro.Request) {
			f.calls.Add(1)
			_ = req.RespondJSON(map[string]string{"node": node, "op": string(op)})
		})))
	}
	require.NoError(t, c.nc.Flush())
	f.svc = svc
	return f
}

// request sends op to node's vpp adapter and returns the node that answered.
func request(c *client, node string, op contracts.Op) (string, error) {
	m, err := c.nc.Request(contracts.Subject(node, contracts.EngineVPP, op), []byte(`{}`), 2*time.Second)
	if err != nil {
		return "", err
	}
	var resp map[string]string
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return "", fmt.Errorf("reply %q: %w", m.Data, err)
	}
	return resp["node"], nil
}

func eventSubject(node string) string {
	return contracts.EventSubject(node, contracts.EngineVPP, contracts.EventAttached)
}

func credsOption(path string) []nats.Option {
	if path == "" {
		return nil
	}
	return []nats.Option{nats.UserCredentials(path)}
}
