package natsauth_test

import (
	"bufio"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/natsauth"
	"usrsp.dev/libs/natsauth/natsauthtest"
)

// clusterSetup is the deployed topology on loopback: a 3-server cluster
// rendered by ServerConfig with Cluster (one configuration each, the same
// route list), node A's leaf on server 0, node B's leaf on server 2.
type clusterSetup struct {
	f            *fixture
	hubs         []*server.Server
	routes       []string // route listen addresses
	leafA, leafB string   // client URLs of the leaves
}

// startServers runs the 3 servers of a cluster and waits for the full
// mesh of routes.
func startServers(t *testing.T, f *fixture, tls *natsauth.TLS) (hubs []*server.Server, routes, leafListen []string) {
	t.Helper()
	for range 3 {
		routes = append(routes, freeAddr(t))
		leafListen = append(leafListen, freeAddr(t))
	}
	for i := range 3 {
		hubs = append(hubs, startConfig(t, f.Auth.ServerConfig(natsauth.ServerConfig{
			LeafListen: leafListen[i], TLS: tls,
			Cluster: &natsauth.Cluster{Name: "usrsp", Listen: routes[i], Routes: routes},
		})))
	}
	eventually(t, "a full mesh of routes", func() bool {
		for _, h := range hubs {
			if h.NumRemotes() != 2 {
				return false
			}
		}
		return true
	})
	return hubs, routes, leafListen
}

func startCluster(t *testing.T) *clusterSetup {
	t.Helper()
	f := newFixture(t)
	s := &clusterSetup{f: f}
	var leafListen []string
	s.hubs, s.routes, leafListen = startServers(t, f, nil)
	leaf := func(node natsauth.Identity, hub int) string {
		l := startConfig(t, f.Auth.LeafConfig(natsauth.LeafConfig{
			HubURLs: []string{"nats-leaf://" + leafListen[hub]}, CredsFile: f.Creds(t, node),
		}))
		eventually(t, node.UserName()+" connected", func() bool { return l.NumLeafNodes() == 1 })
		return l.ClientURL()
	}
	s.leafA = leaf(leafA, 0)
	s.leafB = leaf(natsauth.Identity{Role: natsauth.RoleLeaf, Name: nodeB}, 2)
	return s
}

func TestClusterCarriesNodesTraffic(t *testing.T) {
	t.Parallel()
	s := startCluster(t)
	f := s.f
	adapterOnA := dial(t, s.leafA, f.Creds(t, adapterA))
	adapterOnB := dial(t, s.leafB, f.Creds(t, adapterB))
	serveFake(t, adapterOnA, nodeA)
	serveFake(t, adapterOnB, nodeB)

	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"cni A on its leaf drives adapter A on the leaf", func(t *testing.T) {
			cni := dial(t, s.leafA, f.Creds(t, cniA))
			for _, op := range contracts.Ops {
				node, err := request(cni, nodeA, op)
				require.NoError(t, err, op)
				assert.Equal(t, nodeA, node)
			}
		}},
		{"cni B on another server reaches adapter B across a route and a leaf", func(t *testing.T) {
			cni := dial(t, s.hubs[1].ClientURL(), f.Creds(t, cniB))
			eventually(t, "request across the cluster", func() bool {
				node, err := request(cni, nodeB, contracts.OpStatus)
				return err == nil && node == nodeB
			})
		}},
		{"announcements cross leaf, route, leaf both ways", func(t *testing.T) {
			onA := record(t, adapterOnA, contracts.AllDiscoverySubject)
			onB := record(t, adapterOnB, contracts.AllDiscoverySubject)
			publishUntil(t, "announcements", func() bool {
				return received(onB, contracts.DiscoverySubject(nodeA)) && received(onA, contracts.DiscoverySubject(nodeB))
			}, pub{adapterOnA, contracts.DiscoverySubject(nodeA)}, pub{adapterOnB, contracts.DiscoverySubject(nodeB)})
		}},
		{"operator on any server reads every node's events", func(t *testing.T) {
			op := dial(t, s.hubs[1].ClientURL(), f.Creds(t, operatorO))
			events := record(t, op, contracts.AllEventsSubject)
			publishUntil(t, "events", func() bool {
				return received(events, eventSubject(nodeA)) && received(events, eventSubject(nodeB))
			}, pub{adapterOnA, eventSubject(nodeA)}, pub{adapterOnB, eventSubject(nodeB)})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// routeConnect speaks the route protocol to addr as a would-be server of
// the cluster and returns the server's first answer to its CONNECT.
func routeConnect(t *testing.T, addr, user, pass string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(3*time.Second)))
	r := bufio.NewReader(c)
	info, err := r.ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(info, "INFO "), info)
	_, err = c.Write([]byte(`CONNECT {"verbose":false,"user":"` + user + `","pass":"` + pass + `","cluster":"usrsp","name":"NINTRUDER"}` + "\r\nPING\r\n"))
	require.NoError(t, err)
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		if !strings.HasPrefix(line, "INFO ") { // a server may send INFO updates first
			return strings.TrimSpace(line)
		}
	}
}

func TestClusterRoutesNeedThePassword(t *testing.T) {
	t.Parallel()
	s := startCluster(t)
	for _, tt := range []struct{ name, user, pass string }{
		{"no credentials", "", ""},
		{"wrong password", natsauth.RouteUser, "guess"},
		{"a node's identity is no route user", "cni@" + nodeA, s.f.Auth.RoutePassword()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Contains(t, routeConnect(t, s.routes[0], tt.user, tt.pass), "Authorization Violation")
		})
	}
}

// With TLS flags the routes use the servers' certificate, mutually
// verified: the rendered configurations still form the cluster.
func TestClusterRoutesOverMutualTLS(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ca := natsauthtest.NewCA(t, t.TempDir(), "usrsp")
	cert, key := ca.Issue(t, "server", true)
	hubs, _, _ := startServers(t, f, &natsauth.TLS{CertFile: cert, KeyFile: key, CAFile: ca.File})
	require.Len(t, hubs, 3)
}

func TestClusterConfigSecrets(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	conf := f.Auth.ServerConfig(natsauth.ServerConfig{
		Cluster: &natsauth.Cluster{Name: "usrsp", Listen: "0.0.0.0:6222", Routes: []string{"nats-0.nats:6222", "nats-1.nats:6222"}},
	})
	pw := f.Auth.RoutePassword()
	assert.Contains(t, conf, `"nats-route://route:`+pw+`@nats-1.nats:6222"`)
	// No seed is in it: the password is derived, not a key.
	for _, kp := range []interface{ Seed() ([]byte, error) }{f.Auth.Operator, f.Auth.Account, f.Auth.Signer, f.Auth.System} {
		seed, err := kp.Seed()
		require.NoError(t, err)
		assert.NotContains(t, conf, string(seed))
	}
	// The same password after a save and load, and after a revocation
	// (a re-rendered configuration keeps the cluster together); another
	// authority's differs.
	dir := filepath.Join(t.TempDir(), "authority")
	require.NoError(t, f.Auth.Save(dir))
	got, err := natsauth.LoadAuthority(dir)
	require.NoError(t, err)
	require.NoError(t, got.ReissueAccount([]string{"UAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}))
	assert.Equal(t, pw, got.RoutePassword())
	assert.NotEqual(t, pw, newFixture(t).Auth.RoutePassword())
}
