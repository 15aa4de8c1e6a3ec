package natsauth_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/natsauth"
)

// hub is a server running the generated configuration with every
// identity of nodes A and B and an operator connected, and a fake adapter
// served by each node's adapter identity.
type hub struct {
	f            *fixture
	url          string
	conns        map[natsauth.Identity]*client
	fakeA, fakeB *fakeAdapter
}

func startHub(t *testing.T) *hub {
	t.Helper()
	f := newFixture(t)
	srv := startConfig(t, f.Auth.ServerConfig(natsauth.ServerConfig{}))
	h := &hub{f: f, url: srv.ClientURL(), conns: map[natsauth.Identity]*client{}}
	for _, id := range []natsauth.Identity{cniA, cniB, adapterA, adapterB, operatorO} {
		h.conns[id] = dial(t, h.url, f.Creds(t, id))
	}
	h.fakeA = serveFake(t, h.conns[adapterA], nodeA)
	h.fakeB = serveFake(t, h.conns[adapterB], nodeB)
	return h
}

func TestHubCan(t *testing.T) {
	t.Parallel()
	h := startHub(t)
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"cni-entry of each node drives its own adapter, every op", func(t *testing.T) {
			for _, c := range []struct {
				id   natsauth.Identity
				node string
			}{{cniA, nodeA}, {cniB, nodeB}} {
				for _, op := range contracts.Ops {
					got, err := request(h.conns[c.id], c.node, op)
					require.NoError(t, err, "%s %s", c.id.UserName(), op)
					assert.Equal(t, c.node, got)
				}
			}
		}},
		{"adapter publishes its node's events, operator reads them", func(t *testing.T) {
			events := record(t, h.conns[operatorO], contracts.AllEventsSubject)
			for _, e := range contracts.Engines {
				subj := contracts.EventSubject(nodeA, e, contracts.EventDetached)
				require.NoError(t, h.conns[adapterA].nc.Publish(subj, []byte(`{}`)))
				events.next(t, subj)
			}
		}},
		{"adapter announces its node, other adapters and the operator read it", func(t *testing.T) {
			byB := record(t, h.conns[adapterB], contracts.AllDiscoverySubject)
			byOp := record(t, h.conns[operatorO], contracts.AllDiscoverySubject)
			require.NoError(t, h.conns[adapterA].nc.Publish(contracts.DiscoverySubject(nodeA), []byte(`{}`)))
			byB.next(t, contracts.DiscoverySubject(nodeA))
			byOp.next(t, contracts.DiscoverySubject(nodeA))
		}},
		{"operator discovers both adapters ($SRV.PING) and reads one's INFO", func(t *testing.T) {
			op := h.conns[operatorO].nc
			inbox := op.NewInbox()
			sub, err := op.SubscribeSync(inbox)
			require.NoError(t, err)
			ping, err := micro.ControlSubject(micro.PingVerb, contracts.ServiceName(contracts.EngineVPP), "")
			require.NoError(t, err)
			require.NoError(t, op.PublishRequest(ping, inbox, nil))
			for range 2 {
				_, err := sub.NextMsg(2 * time.Second)
				require.NoError(t, err)
			}
			info, err := micro.ControlSubject(micro.InfoVerb, contracts.ServiceName(contracts.EngineVPP), h.fakeA.svc.Info().ID)
			require.NoError(t, err)
			m, err := op.Request(info, nil, 2*time.Second)
			require.NoError(t, err)
			assert.Contains(t, string(m.Data), `"node":"node-a"`)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

func TestHubCannotPublish(t *testing.T) {
	t.Parallel()
	h := startHub(t)
	subjB := func(op contracts.Op) string { return contracts.Subject(nodeB, contracts.EngineVPP, op) }
	subjA := func(op contracts.Op) string { return contracts.Subject(nodeA, contracts.EngineVPP, op) }
	tests := []struct {
		name    string
		id      natsauth.Identity
		subject string
	}{
		{"cni A drives B's adapter: attach", cniA, subjB(contracts.OpAttach)},
		{"cni A drives B's adapter: detach", cniA, subjB(contracts.OpDetach)},
		{"cni A drives B's adapter: gc", cniA, subjB(contracts.OpGC)},
		{"cni A drives B's ovs adapter", cniA, contracts.Subject(nodeB, contracts.EngineOVSDPDK, contracts.OpAttach)},
		{"cni A forges A's event", cniA, eventSubject(nodeA)},
		{"cni A announces A", cniA, contracts.DiscoverySubject(nodeA)},
		{"cni A pings services", cniA, "$SRV.PING"},
		{"adapter A publishes B's event", adapterA, eventSubject(nodeB)},
		{"adapter A announces B", adapterA, contracts.DiscoverySubject(nodeB)},
		{"adapter A drives its own node's adapter", adapterA, subjA(contracts.OpAttach)},
		{"adapter A drives B's adapter", adapterA, subjB(contracts.OpAttach)},
		{"adapter A sends an unsolicited reply to cni A", adapterA, cniA.InboxPrefix() + ".forged.1"},
		{"adapter A sends an unsolicited reply to cni B", adapterA, cniB.InboxPrefix() + ".forged.1"},
		{"adapter A sends an unsolicited reply to the operator", adapterA, operatorO.InboxPrefix() + ".forged.1"},
		{"cni A sends into B's inbox", cniA, cniB.InboxPrefix() + ".forged.1"},
		{"operator attaches", operatorO, subjA(contracts.OpAttach)},
		{"operator detaches", operatorO, subjB(contracts.OpDetach)},
		{"operator forges an event", operatorO, eventSubject(nodeA)},
		{"operator announces a node", operatorO, contracts.DiscoverySubject(nodeA)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := h.conns[tt.id]
			callsA, callsB := h.fakeA.calls.Load(), h.fakeB.calls.Load()
			require.NoError(t, c.nc.PublishRequest(tt.subject, c.nc.NewInbox(), []byte(`{}`)))
			require.NoError(t, c.nc.Flush())
			c.requireViolation(t, tt.subject)
			assert.Equal(t, callsA, h.fakeA.calls.Load(), "adapter A was called")
			assert.Equal(t, callsB, h.fakeB.calls.Load(), "adapter B was called")
		})
	}
}

func TestHubCannotSubscribe(t *testing.T) {
	t.Parallel()
	h := startHub(t)
	tests := []struct {
		name    string
		id      natsauth.Identity
		subject string
		queue   string
	}{
		{"cni A reads every inbox", cniA, "_INBOX.>", ""},
		{"cni A reads every cni-entry's inbox", cniA, "_INBOX_cni.>", ""},
		{"cni A reads every cni-entry's inbox by token", cniA, "_INBOX_cni.*.>", ""},
		{"cni A reads the operators' inboxes", cniA, natsauth.OperatorInboxes, ""},
		{"cni A reads B's replies", cniA, cniB.InboxPrefix() + ".>", ""},
		{"cni A reads adapter A's inbox", cniA, adapterA.InboxPrefix() + ".>", ""},
		{"cni A serves A's attach", cniA, contracts.Subject(nodeA, contracts.EngineVPP, contracts.OpAttach), "q"},
		{"cni A reads events", cniA, contracts.AllEventsSubject, ""},
		{"cni A reads everything", cniA, ">", ""},
		{"adapter A reads every inbox", adapterA, "_INBOX.>", ""},
		{"adapter A reads cni A's replies", adapterA, cniA.InboxPrefix() + ".>", ""},
		{"adapter A serves B's attach", adapterA, contracts.Subject(nodeB, contracts.EngineVPP, contracts.OpAttach), "q"},
		{"adapter A serves B's ops by wildcard", adapterA, "usrsp.v1.node-b_example.*.*", "q"},
		{"adapter A reads B's events", adapterA, eventSubject(nodeB), ""},
		{"operator reads every inbox", operatorO, "_INBOX.>", ""},
		{"operator reads every operator's inbox", operatorO, natsauth.OperatorInboxes, ""},
		{"operator reads cni A's replies", operatorO, cniA.InboxPrefix() + ".>", ""},
		{"operator intercepts A's attach", operatorO, contracts.Subject(nodeA, contracts.EngineVPP, contracts.OpAttach), ""},
		{"operator reads everything", operatorO, ">", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := h.conns[tt.id]
			var err error
			if tt.queue != "" {
				_, err = c.nc.QueueSubscribe(tt.subject, tt.queue, func(*nats.Msg) {})
			} else {
				_, err = c.nc.Subscribe(tt.subject, func(*nats.Msg) {})
			}
			require.NoError(t, err)
			require.NoError(t, c.nc.Flush())
			c.requireViolation(t, tt.subject)
		})
	}
}

// The end-to-end versions of the subscription denials: what a denied
// subscription would have seen is really not delivered.
func TestHubCannotIntercept(t *testing.T) {
	t.Parallel()
	h := startHub(t)

	t.Run("cni A does not receive B's replies", func(t *testing.T) {
		spy := dial(t, h.url, h.f.Creds(t, cniA))
		got := record(t, spy, cniB.InboxPrefix()+".>")
		spy.requireViolation(t, cniB.InboxPrefix()+".>")
		for _, op := range contracts.Ops {
			node, err := request(h.conns[cniB], nodeB, op)
			require.NoError(t, err)
			require.Equal(t, nodeB, node)
		}
		require.NoError(t, spy.nc.Flush())
		assert.Empty(t, got.subjects())
	})

	t.Run("adapter A does not serve B's requests", func(t *testing.T) {
		rogue := dial(t, h.url, h.f.Creds(t, adapterA))
		fake := serveFake(t, rogue, nodeB)
		rogue.requireViolation(t, contracts.Subject(nodeB, contracts.EngineVPP, contracts.OpAttach))
		for range 20 {
			node, err := request(h.conns[cniB], nodeB, contracts.OpAttach)
			require.NoError(t, err)
			require.Equal(t, nodeB, node)
		}
		assert.Zero(t, fake.calls.Load(), "node A's adapter identity got B's requests")
	})

	t.Run("with B's adapter gone, B's requests find no responder", func(t *testing.T) {
		require.NoError(t, h.fakeB.svc.Stop())
		require.NoError(t, h.conns[adapterB].nc.Flush())
		_, err := request(h.conns[cniB], nodeB, contracts.OpStatus)
		require.ErrorIs(t, err, nats.ErrNoResponders)
	})
}

// A hub with leaf nodes: a trusted leaf carries exactly its node's
// identities, a hostile one gains nothing.

// leafSetup is a hub accepting leaf nodes, node B's adapter and cni-entry
// and an operator on the hub, and node A's leaf server.
type leafSetup struct {
	f                 *fixture
	hub               *server.Server
	hubURL, leafURL   string
	adapterB, cniB    *client
	operator          *client
	fakeB             *fakeAdapter
	hubLeafListenAddr string
}

func startLeafHub(t *testing.T) *leafSetup {
	t.Helper()
	f := newFixture(t)
	s := &leafSetup{f: f, hubLeafListenAddr: freeAddr(t)}
	s.hub = startConfig(t, f.Auth.ServerConfig(natsauth.ServerConfig{LeafListen: s.hubLeafListenAddr}))
	s.hubURL = s.hub.ClientURL()
	s.adapterB = dial(t, s.hubURL, f.Creds(t, adapterB))
	s.cniB = dial(t, s.hubURL, f.Creds(t, cniB))
	s.operator = dial(t, s.hubURL, f.Creds(t, operatorO))
	s.fakeB = serveFake(t, s.adapterB, nodeB)
	return s
}

// waitLeaf waits until the hub has n leaf connections.
func (s *leafSetup) waitLeaf(t *testing.T, leaf *server.Server) {
	t.Helper()
	require.Eventually(t, func() bool { return s.hub.NumLeafNodes() == 1 && leaf.NumLeafNodes() == 1 },
		5*time.Second, 10*time.Millisecond, "leaf did not connect to the hub")
	s.leafURL = leaf.ClientURL()
}

// startTrustedLeaf runs node A's leaf as deployed: the generated leaf
// configuration (same operator and account, so node A's .creds work on it).
func (s *leafSetup) startTrustedLeaf(t *testing.T) {
	t.Helper()
	leaf := startConfig(t, s.f.Auth.LeafConfig(natsauth.LeafConfig{
		HubURLs:   []string{"nats-leaf://" + s.hubLeafListenAddr},
		CredsFile: s.f.Creds(t, leafA),
	}))
	s.waitLeaf(t, leaf)
}

// startHostileLeaf runs node A's leaf as root on node A could reconfigure
// it: no local authentication at all, still connecting with A's leaf creds
// (the only hub credentials on node A).
func (s *leafSetup) startHostileLeaf(t *testing.T) {
	t.Helper()
	u, err := url.Parse("nats-leaf://" + s.hubLeafListenAddr)
	require.NoError(t, err)
	leaf := start(t, &server.Options{LeafNode: server.LeafNodeOpts{
		Remotes: []*server.RemoteLeafOpts{{URLs: []*url.URL{u}, Credentials: s.f.Creds(t, leafA)}},
	}})
	s.waitLeaf(t, leaf)
}

// eventually repeats try until it succeeds: interest crosses the leaf
// connection asynchronously.
func eventually(t *testing.T, what string, try func() bool) {
	t.Helper()
	require.Eventually(t, try, 5*time.Second, 20*time.Millisecond, what)
}

func received(r *recorder, subject string) bool {
	for _, s := range r.subjects() {
		if s == subject {
			return true
		}
	}
	return false
}

// pub is one message to publish.
type pub struct {
	c       *client
	subject string
}

// publishUntil publishes msgs until done holds: interest crosses the leaf
// connection asynchronously, so the first ones may find no subscriber.
func publishUntil(t *testing.T, what string, done func() bool, msgs ...pub) {
	t.Helper()
	eventually(t, what, func() bool {
		for _, m := range msgs {
			require.NoError(t, m.c.nc.Publish(m.subject, nil))
			require.NoError(t, m.c.nc.Flush())
		}
		time.Sleep(10 * time.Millisecond)
		return done()
	})
}

// hubTook waits until the hub holds the leaf's subscription to marker
// (sent after the ones under test on the same link) and returns every
// subscription the hub took from the leaf.
func (s *leafSetup) hubTook(t *testing.T, marker string) []string {
	t.Helper()
	var subs []string
	eventually(t, "the hub took the leaf's subscription to "+marker, func() bool {
		lz, err := s.hub.Leafz(&server.LeafzOptions{Subscriptions: true})
		require.NoError(t, err)
		require.Len(t, lz.Leafs, 1)
		subs = lz.Leafs[0].Subs
		for _, sub := range subs {
			if sub == marker {
				return true
			}
		}
		return false
	})
	return subs
}

func TestLeafCan(t *testing.T) {
	t.Parallel()
	s := startLeafHub(t)
	s.startTrustedLeaf(t)
	f := s.f
	cniOnLeaf := dial(t, s.leafURL, f.Creds(t, cniA))
	adapterOnLeaf := dial(t, s.leafURL, f.Creds(t, adapterA))
	fakeA := serveFake(t, adapterOnLeaf, nodeA)

	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"cni A on the leaf drives adapter A on the leaf, every op", func(t *testing.T) {
			for _, op := range contracts.Ops {
				node, err := request(cniOnLeaf, nodeA, op)
				require.NoError(t, err, op)
				assert.Equal(t, nodeA, node)
			}
		}},
		{"cni A on the hub reaches adapter A on the leaf", func(t *testing.T) {
			cniOnHub := dial(t, s.hubURL, f.Creds(t, cniA))
			eventually(t, "request through the leaf", func() bool {
				node, err := request(cniOnHub, nodeA, contracts.OpStatus)
				return err == nil && node == nodeA
			})
		}},
		{"operator on the hub reads A's events from the leaf", func(t *testing.T) {
			events := record(t, s.operator, contracts.AllEventsSubject)
			publishUntil(t, "event through the leaf", func() bool { return received(events, eventSubject(nodeA)) },
				pub{adapterOnLeaf, eventSubject(nodeA)})
		}},
		{"operator on the hub discovers adapter A on the leaf", func(t *testing.T) {
			info, err := micro.ControlSubject(micro.InfoVerb, contracts.ServiceName(contracts.EngineVPP), fakeA.svc.Info().ID)
			require.NoError(t, err)
			eventually(t, "$SRV.INFO through the leaf", func() bool {
				m, err := s.operator.nc.Request(info, nil, 200*time.Millisecond)
				return err == nil && strings.Contains(string(m.Data), `"node":"node-a"`)
			})
		}},
		{"announcements cross the leaf both ways", func(t *testing.T) {
			onHub := record(t, s.adapterB, contracts.AllDiscoverySubject)
			onLeaf := record(t, adapterOnLeaf, contracts.AllDiscoverySubject)
			publishUntil(t, "announcements", func() bool {
				return received(onHub, contracts.DiscoverySubject(nodeA)) && received(onLeaf, contracts.DiscoverySubject(nodeB))
			}, pub{adapterOnLeaf, contracts.DiscoverySubject(nodeA)}, pub{s.adapterB, contracts.DiscoverySubject(nodeB)})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// A leaf with no local authentication (root on node A rewrote its
// configuration) is still confined by the hub to node A's subjects.
func TestHostileLeafCannot(t *testing.T) {
	t.Parallel()
	s := startLeafHub(t)
	s.startHostileLeaf(t)
	anyone := dial(t, s.leafURL, "")

	// Positive control first: the leaf link works for node A's subjects,
	// so the denials below are the hub's permissions, not a dead link.
	events := record(t, s.operator, contracts.AllEventsSubject)
	publishUntil(t, "A's event through the hostile leaf", func() bool { return received(events, eventSubject(nodeA)) },
		pub{anyone, eventSubject(nodeA)})

	t.Run("cannot drive B's adapter", func(t *testing.T) {
		for _, op := range contracts.Ops {
			_, err := request(anyone, nodeB, op)
			require.Error(t, err, op)
			assert.True(t, err == nats.ErrNoResponders || err == nats.ErrTimeout, "%s: %v", op, err)
		}
		assert.Zero(t, s.fakeB.calls.Load(), "B's adapter was called through A's leaf")
	})

	t.Run("cannot serve B's subjects", func(t *testing.T) {
		rogue := serveFake(t, anyone, nodeB)
		record(t, anyone, contracts.AllDiscoverySubject)
		for _, sub := range s.hubTook(t, contracts.AllDiscoverySubject) {
			assert.NotContains(t, sub, contracts.NodeToken(nodeB), "the hub took %s from A's leaf", sub)
		}
		for range 20 {
			node, err := request(s.cniB, nodeB, contracts.OpAttach)
			require.NoError(t, err)
			require.Equal(t, nodeB, node)
		}
		assert.Zero(t, rogue.calls.Load(), "A's leaf served B's requests")
	})

	t.Run("cannot publish B's events or announcement", func(t *testing.T) {
		disc := record(t, s.operator, contracts.AllDiscoverySubject)
		require.NoError(t, anyone.nc.Publish(eventSubject(nodeB), nil))
		require.NoError(t, anyone.nc.Publish(contracts.DiscoverySubject(nodeB), nil))
		// Sent after on the same link: once these arrive, the forged ones
		// would have arrived before them.
		errA := contracts.EventSubject(nodeA, contracts.EngineVPP, contracts.EventError)
		publishUntil(t, "A's own event and announcement", func() bool {
			return received(events, errA) && received(disc, contracts.DiscoverySubject(nodeA))
		}, pub{anyone, errA}, pub{anyone, contracts.DiscoverySubject(nodeA)})
		assert.NotContains(t, events.subjects(), eventSubject(nodeB))
		assert.NotContains(t, disc.subjects(), contracts.DiscoverySubject(nodeB))
	})

	t.Run("cannot read B's events, replies or requests", func(t *testing.T) {
		spy := record(t, anyone, ">")
		inboxes := record(t, anyone, "_INBOX.>")
		marker := record(t, anyone, contracts.AllDiscoverySubject)
		// The hub takes a leaf's ">" (it covers allowed subjects) and filters
		// each message against the leaf's permissions; "_INBOX.>" covers
		// none, so it is refused outright.
		assert.NotContains(t, s.hubTook(t, contracts.AllDiscoverySubject), "_INBOX.>")
		require.NoError(t, s.adapterB.nc.Publish(eventSubject(nodeB), nil))
		for _, op := range contracts.Ops {
			_, err := request(s.cniB, nodeB, op)
			require.NoError(t, err)
		}
		// The operator's discovery: the ping reaches A's leaf (it may
		// import $SRV.PING), B's answer into the operator's inbox must not.
		_, err := s.operator.nc.Request("$SRV.PING", nil, 2*time.Second)
		require.NoError(t, err)
		publishUntil(t, "B's announcement (allowed into every node)", func() bool {
			return received(marker, contracts.DiscoverySubject(nodeB))
		}, pub{s.adapterB, contracts.DiscoverySubject(nodeB)})
		for _, subj := range spy.subjects() {
			if subj == contracts.DiscoverySubject(nodeB) {
				continue
			}
			assert.NotContains(t, subj, contracts.NodeToken(nodeB), "A's leaf received %s", subj)
			assert.False(t, strings.HasPrefix(subj, "_INBOX"), "A's leaf received a reply on %s", subj)
		}
		assert.Empty(t, inboxes.subjects())
	})
}
