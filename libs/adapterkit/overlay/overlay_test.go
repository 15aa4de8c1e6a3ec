package overlay_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/adapterkit/overlay"
	"usrsp.dev/libs/natsauth"
	"usrsp.dev/libs/natsauth/natsauthtest"
	"usrsp.dev/libs/natstest"
)

// fakeDataplane records what the Manager asks for.
type fakeDataplane struct {
	mu         sync.Mutex
	members    []contracts.OverlayMember
	membersErr error
	want       []overlay.Tunnel
	prune      bool
	syncs      int
	// block, when set, holds the next sync until it is closed (a hung
	// vswitch); empties counts syncs that wanted no tunnel.
	block   chan struct{}
	empties int
}

func (f *fakeDataplane) Members() ([]contracts.OverlayMember, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.members), f.membersErr
}

func (f *fakeDataplane) SyncTunnels(ctx context.Context, want []overlay.Tunnel, prune bool) error {
	f.mu.Lock()
	block := f.block
	f.block = nil
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.want, f.prune = want, prune
	f.syncs++
	if len(want) == 0 {
		f.empties++
	}
	return nil
}

func (f *fakeDataplane) setMembers(ms ...contracts.OverlayMember) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members = ms
}

// remotes is the peers' VTEPs the last sync wanted, per network.
func (f *fakeDataplane) remotes() map[string][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]string{}
	for _, t := range f.want {
		out[t.Network] = append(out[t.Network], t.Remote.String())
	}
	for _, r := range out {
		slices.Sort(r)
	}
	return out
}

// node is one running Manager.
type node struct {
	m    *overlay.Manager
	dp   *fakeDataplane
	stop context.CancelFunc
	done chan struct{}
}

func blue() contracts.OverlayMember {
	return contracts.OverlayMember{Network: "blue", NetType: contracts.NetTypeBridge, VNI: 5001, Port: 4789}
}

func startNode(t *testing.T, nc *nats.Conn, name, vtep string, interval time.Duration, members ...contracts.OverlayMember) *node {
	t.Helper()
	dp := &fakeDataplane{members: members}
	m, err := overlay.New(overlay.Config{NC: nc, Node: name, Engine: contracts.EngineVPP, VTEP: netip.MustParseAddr(vtep),
		Interval: interval, Dataplane: dp, Log: zerolog.Nop()})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{m: m, dp: dp, stop: cancel, done: make(chan struct{})}
	go func() { defer close(n.done); assert.NoError(t, m.Run(ctx)) }()
	t.Cleanup(n.halt)
	return n
}

func (n *node) halt() {
	n.stop()
	<-n.done
}

func connect(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// eventually waits (bounded) until the node's last sync wanted exactly
// want.
func eventually(t *testing.T, n *node, want map[string][]string) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, want, n.dp.remotes())
	}, 15*time.Second, 10*time.Millisecond)
}

func TestPeersAndTunnels(t *testing.T) {
	srv := natstest.Run(t)
	const fast = 100 * time.Millisecond
	red := contracts.OverlayMember{Network: "red", NetType: contracts.NetTypeBridge, VNI: 5002, Port: 4789}
	a := startNode(t, connect(t, srv.ClientURL()), "a", "10.1.0.1", fast, blue(), red)
	b := startNode(t, connect(t, srv.ClientURL()), "b", "10.1.0.2", fast, blue())
	c := startNode(t, connect(t, srv.ClientURL()), "c", "10.1.0.3", fast, red)

	t.Run("each network tunnels to the peers that announce its VNI", func(t *testing.T) {
		eventually(t, a, map[string][]string{"blue": {"10.1.0.2"}, "red": {"10.1.0.3"}})
		eventually(t, b, map[string][]string{"blue": {"10.1.0.1"}})
		eventually(t, c, map[string][]string{"red": {"10.1.0.1"}})
	})
	t.Run("a local change is announced at once", func(t *testing.T) {
		c.dp.setMembers(red, blue())
		c.m.Changed()
		eventually(t, a, map[string][]string{"blue": {"10.1.0.2", "10.1.0.3"}, "red": {"10.1.0.3"}})
		eventually(t, b, map[string][]string{"blue": {"10.1.0.1", "10.1.0.3"}})
	})
	t.Run("the last pod of a network gone: peers drop their tunnels", func(t *testing.T) {
		c.dp.setMembers(blue())
		c.m.Changed()
		eventually(t, a, map[string][]string{"blue": {"10.1.0.2", "10.1.0.3"}})
	})
	t.Run("a peer that stops says so and is dropped at once", func(t *testing.T) {
		b.halt()
		eventually(t, a, map[string][]string{"blue": {"10.1.0.3"}})
		eventually(t, c, map[string][]string{"blue": {"10.1.0.1"}})
	})
	t.Run("prune once it listened for a hold time", func(t *testing.T) {
		require.Eventually(t, func() bool {
			a.dp.mu.Lock()
			defer a.dp.mu.Unlock()
			return a.dp.prune
		}, 15*time.Second, 10*time.Millisecond)
	})
}

// TestOnANATSCluster: three nodes, each on another server of a 3-server
// cluster, find each other, and a restarted one is found again.
func TestOnANATSCluster(t *testing.T) {
	srvs := natstest.RunCluster(t, 3)
	const slow = time.Minute // only start-up announcements and answers count
	var nodes []*node
	for i, vtep := range []string{"10.1.0.1", "10.1.0.2", "10.1.0.3"} {
		nodes = append(nodes, startNode(t, connect(t, srvs[i].ClientURL()), string(rune('a'+i)), vtep, slow, blue()))
	}
	eventually(t, nodes[0], map[string][]string{"blue": {"10.1.0.2", "10.1.0.3"}})
	eventually(t, nodes[1], map[string][]string{"blue": {"10.1.0.1", "10.1.0.3"}})
	eventually(t, nodes[2], map[string][]string{"blue": {"10.1.0.1", "10.1.0.2"}})
	nodes[2].halt()
	eventually(t, nodes[0], map[string][]string{"blue": {"10.1.0.2"}})
	c := startNode(t, connect(t, srvs[2].ClientURL()), "c", "10.1.0.3", slow, blue())
	eventually(t, c, map[string][]string{"blue": {"10.1.0.1", "10.1.0.2"}})
	eventually(t, nodes[1], map[string][]string{"blue": {"10.1.0.1", "10.1.0.3"}})
}

func TestSilentPeerIsForgotten(t *testing.T) {
	srv := natstest.Run(t)
	const fast = 100 * time.Millisecond
	a := startNode(t, connect(t, srv.ClientURL()), "a", "10.1.0.1", fast, blue())
	ncB := connect(t, srv.ClientURL())
	b := startNode(t, ncB, "b", "10.1.0.2", fast, blue())
	eventually(t, a, map[string][]string{"blue": {"10.1.0.2"}})
	// Like a node that is gone: its connection drops without a word.
	ncB.Close()
	eventually(t, a, map[string][]string{})
	assert.Empty(t, a.m.Peers())
	b.halt()
}

func TestRestartedPeerIsAnsweredAtOnce(t *testing.T) {
	srv := natstest.Run(t)
	// a announces only every minute: b can learn a this fast only from
	// a's answer to b's new epoch.
	a := startNode(t, connect(t, srv.ClientURL()), "a", "10.1.0.1", time.Minute, blue())
	b := startNode(t, connect(t, srv.ClientURL()), "b", "10.1.0.2", time.Minute, blue())
	eventually(t, b, map[string][]string{"blue": {"10.1.0.1"}})
	eventually(t, a, map[string][]string{"blue": {"10.1.0.2"}})
	b.halt()
	eventually(t, a, map[string][]string{})
	b = startNode(t, connect(t, srv.ClientURL()), "b", "10.1.0.2", time.Minute, blue())
	eventually(t, b, map[string][]string{"blue": {"10.1.0.1"}})
	eventually(t, a, map[string][]string{"blue": {"10.1.0.2"}})
	b.dp.mu.Lock()
	defer b.dp.mu.Unlock()
	assert.False(t, b.dp.prune, "a restarted adapter prunes nothing before it listened for a hold time")
}

// TestForgedAnnouncements runs with the project's NATS identities: a node
// may announce only itself.
func TestForgedAnnouncements(t *testing.T) {
	env := natsauthtest.New(t)
	srv := env.StartServer(t, natsauth.ServerConfig{})
	conn := func(node string) *nats.Conn {
		nc, err := env.Connect(t, srv.ClientURL(), contracts.TLSFiles{}, natsauth.Identity{Role: natsauth.RoleAdapter, Name: node}, string(natsauth.RoleAdapter))
		require.NoError(t, err)
		return nc
	}
	const fast = 100 * time.Millisecond
	a := startNode(t, conn("node-a"), "node-a", "10.1.0.1", fast, blue())
	c := startNode(t, conn("node-c"), "node-c", "10.1.0.3", fast, blue())
	eventually(t, a, map[string][]string{"blue": {"10.1.0.3"}})

	evil := conn("node-b")
	denied := make(chan error, 4)
	evil.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { denied <- err })
	forge := func(subject string, ann contracts.Announcement) {
		b, err := json.Marshal(ann)
		require.NoError(t, err)
		require.NoError(t, evil.Publish(subject, b))
		require.NoError(t, evil.Flush())
	}
	// A "leaving" for node-c and a new VTEP for node-c: both would cut
	// node-a off from node-c if they were believed.
	asC := contracts.Announcement{Node: "node-c", Engine: contracts.EngineVPP, Epoch: time.Now().UnixNano(), Seq: 1, VTEP: "10.66.0.66",
		IntervalMS: 100, Networks: []contracts.OverlayMember{blue()}}
	t.Run("on the victim's subject: the server refuses it", func(t *testing.T) {
		forge(contracts.DiscoverySubject("node-c"), asC)
		select {
		case err := <-denied:
			assert.ErrorContains(t, err, "Permissions Violation")
		case <-time.After(10 * time.Second):
			t.Fatal("no permission violation for publishing node-c's announcement as node-b")
		}
	})
	t.Run("on its own subject, claiming the victim: receivers drop it", func(t *testing.T) {
		leaving := asC
		leaving.Leaving = true
		forge(contracts.DiscoverySubject("node-b"), asC)
		forge(contracts.DiscoverySubject("node-b"), leaving)
	})
	// node-b's honest announcement, sent after the forgeries on the same
	// connection, reaches node-a after them: once node-a knows node-b,
	// it has judged the forgeries, and node-c must still be node-c.
	forge(contracts.DiscoverySubject("node-b"), contracts.Announcement{Node: "node-b", Engine: contracts.EngineVPP, Epoch: 1, Seq: 1,
		VTEP: "10.1.0.2", IntervalMS: 60_000})
	require.Eventually(t, func() bool { return len(a.m.Peers()) == 2 }, 15*time.Second, 10*time.Millisecond)
	peers := a.m.Peers()
	assert.Equal(t, "node-c", peers[1].Node)
	assert.Equal(t, "10.1.0.3", peers[1].VTEP.String())
	eventually(t, a, map[string][]string{"blue": {"10.1.0.3"}})
	c.halt()
}

// TestNoPruneWithoutNATS: a node that cannot hear its peers must not
// prune the tunnels they would confirm (a NATS outage does not tear down
// the data plane).
func TestNoPruneWithoutNATS(t *testing.T) {
	srv := natstest.Run(t)
	a := startNode(t, connect(t, srv.ClientURL()), "a", "10.1.0.1", contracts.MinAnnounceInterval, blue())
	prune := func() bool {
		a.dp.mu.Lock()
		defer a.dp.mu.Unlock()
		return a.dp.prune
	}
	require.Eventually(t, prune, 15*time.Second, 10*time.Millisecond, "prunes once it listened for a hold")
	srv.Shutdown()
	require.Eventually(t, func() bool { return !prune() }, 15*time.Second, 10*time.Millisecond, "stops pruning while NATS is gone")
}

// TestHostilePeers: what peers announce about themselves cannot break
// this node's tunnels or draw its pods' traffic away: a VTEP of another
// address family gets no tunnel, and a host route that is a local pod's,
// or an earlier peer's, is not routed to the later claimant.
func TestHostilePeers(t *testing.T) {
	srv := natstest.Run(t)
	red := func(routes ...string) contracts.OverlayMember {
		return contracts.OverlayMember{Network: "red", NetType: contracts.NetTypeInterface, VNI: 5002, Port: 4789, Routes: routes}
	}
	a := startNode(t, connect(t, srv.ClientURL()), "a", "10.1.0.1", time.Minute, red("10.9.0.1/32"))
	peers := []contracts.Announcement{
		{Node: "b", VTEP: "fd00::2", Networks: []contracts.OverlayMember{red("10.9.0.2/32")}},
		{Node: "c", VTEP: "10.1.0.3", Networks: []contracts.OverlayMember{red("10.9.0.1/32", "10.9.0.3/32")}},
		{Node: "d", VTEP: "10.1.0.4", Networks: []contracts.OverlayMember{red("10.9.0.3/32", "10.9.0.4/32", "10.9.0.4/32")}},
	}
	nc := connect(t, srv.ClientURL())
	require.Eventually(t, func() bool {
		for _, p := range peers {
			p.Engine, p.Epoch, p.Seq, p.IntervalMS = contracts.EngineVPP, 1, 1, 60_000
			b, err := json.Marshal(p)
			require.NoError(t, err)
			require.NoError(t, nc.Publish(contracts.DiscoverySubject(p.Node), b))
		}
		return len(a.m.Peers()) == len(peers)
	}, 15*time.Second, 50*time.Millisecond, "a learns its peers")

	routes := map[string][]string{}
	for _, tun := range a.m.Tunnels() {
		assert.Equal(t, netip.MustParseAddr("10.1.0.1"), tun.Local)
		for _, r := range tun.Routes {
			routes[tun.Peer] = append(routes[tun.Peer], r.String())
		}
		routes[tun.Peer] = append(routes[tun.Peer], "via "+tun.Remote.String())
	}
	assert.Equal(t, map[string][]string{
		"c": {"10.9.0.3/32", "via 10.1.0.3"},
		"d": {"10.9.0.4/32", "via 10.1.0.4"},
	}, routes)
}

// TestBlockedSync: announcements that queue while a sync hangs count
// before the silence check, so live peers are not forgotten.
func TestBlockedSync(t *testing.T) {
	srv := natstest.Run(t)
	const fast = 100 * time.Millisecond
	a := startNode(t, connect(t, srv.ClientURL()), "a", "10.1.0.1", fast, blue())
	startNode(t, connect(t, srv.ClientURL()), "b", "10.1.0.2", fast, blue())
	eventually(t, a, map[string][]string{"blue": {"10.1.0.2"}})
	a.dp.mu.Lock()
	unblock := make(chan struct{})
	a.dp.block, a.dp.empties = unblock, 0
	syncs := a.dp.syncs
	a.dp.mu.Unlock()
	// Hold the sync for 10 of b's intervals: 3 would forget b.
	time.Sleep(10 * fast)
	close(unblock)
	require.Eventually(t, func() bool {
		a.dp.mu.Lock()
		defer a.dp.mu.Unlock()
		return a.dp.syncs >= syncs+3
	}, 15*time.Second, 10*time.Millisecond)
	a.dp.mu.Lock()
	defer a.dp.mu.Unlock()
	assert.Zero(t, a.dp.empties, "a live peer was forgotten after a blocked sync")
}

// TestMembersReadError: a failed read of this node's networks keeps the
// last announcement, so peers keep their tunnels.
func TestMembersReadError(t *testing.T) {
	srv := natstest.Run(t)
	const fast = 100 * time.Millisecond
	a := startNode(t, connect(t, srv.ClientURL()), "a", "10.1.0.1", fast, blue())
	b := startNode(t, connect(t, srv.ClientURL()), "b", "10.1.0.2", fast, blue())
	eventually(t, a, map[string][]string{"blue": {"10.1.0.2"}})
	b.dp.mu.Lock()
	b.dp.membersErr, b.dp.members = errors.New("state dir unreadable"), nil
	b.dp.mu.Unlock()
	b.m.Changed()
	// Some of b's announcements go out meanwhile; a keeps its tunnel.
	syncs := func() int { a.dp.mu.Lock(); defer a.dp.mu.Unlock(); return a.dp.syncs }
	from := syncs()
	require.Eventually(t, func() bool { return syncs() >= from+5 }, 15*time.Second, 10*time.Millisecond)
	assert.Equal(t, map[string][]string{"blue": {"10.1.0.2"}}, a.dp.remotes())
}

// TestOneNetworkPerVNI: a second local network on a VNI already used is
// not carried across nodes (it would be a second tunnel to each peer).
func TestOneNetworkPerVNI(t *testing.T) {
	srv := natstest.Run(t)
	const fast = 100 * time.Millisecond
	twin := blue()
	twin.Network = "azure"
	a := startNode(t, connect(t, srv.ClientURL()), "a", "10.1.0.1", fast, blue(), twin)
	startNode(t, connect(t, srv.ClientURL()), "b", "10.1.0.2", fast, blue())
	eventually(t, a, map[string][]string{"azure": {"10.1.0.2"}})
}

// TestLateAnnouncementAfterLeaving: a copy of an older announcement that
// arrives after its sender left does not bring the sender back.
func TestLateAnnouncementAfterLeaving(t *testing.T) {
	srv := natstest.Run(t)
	a := startNode(t, connect(t, srv.ClientURL()), "a", "10.1.0.1", 100*time.Millisecond, blue())
	nc := connect(t, srv.ClientURL())
	send := func(ann contracts.Announcement) {
		b, err := json.Marshal(ann)
		require.NoError(t, err)
		require.NoError(t, nc.Publish(contracts.DiscoverySubject("b"), b))
		require.NoError(t, nc.Flush())
	}
	up := contracts.Announcement{Node: "b", Engine: contracts.EngineVPP, Epoch: 7, Seq: 1, VTEP: "10.1.0.2", IntervalMS: 60_000,
		Networks: []contracts.OverlayMember{blue()}}
	// Sent until heard: a subscribes in its own goroutine.
	require.Eventually(t, func() bool { send(up); return len(a.m.Peers()) == 1 }, 15*time.Second, 50*time.Millisecond)
	eventually(t, a, map[string][]string{"blue": {"10.1.0.2"}})
	send(contracts.Announcement{Node: "b", Engine: contracts.EngineVPP, Epoch: 7, Seq: 3, IntervalMS: 60_000, Leaving: true})
	eventually(t, a, map[string][]string{})
	late := up
	late.Seq = 2
	send(late)
	// A new run of b is believed: it also proves the late one was judged.
	next := up
	next.Epoch, next.Networks = 8, nil
	send(next)
	require.Eventually(t, func() bool { return len(a.m.Peers()) == 1 }, 15*time.Second, 10*time.Millisecond)
	assert.Equal(t, map[string][]string{}, a.dp.remotes())
}

func TestMembers(t *testing.T) {
	vx := &contracts.Overlay{Type: contracts.OverlayVXLAN, VNI: 7}
	att := func(network string, nt contracts.NetType, o *contracts.Overlay, ips ...string) contracts.Attachment {
		a := contracts.Attachment{Network: network, Interface: contracts.HostInterface{NetType: nt, Overlay: o}}
		for _, ip := range ips {
			a.Interface.IPs = append(a.Interface.IPs, contracts.IPConfig{Address: ip})
		}
		return a
	}
	got := overlay.Members([]contracts.Attachment{
		att("l3", contracts.NetTypeInterface, vx, "10.5.0.9/24", "fd00::9/64"),
		att("plain", contracts.NetTypeBridge, nil),
		att("l2", contracts.NetTypeBridge, &contracts.Overlay{Type: contracts.OverlayVXLAN, VNI: 8, Port: 8472}, "10.6.0.2/24"),
		att("l3", contracts.NetTypeInterface, vx, "10.5.0.3/24", "10.5.0.9/24"),
	})
	assert.Equal(t, []contracts.OverlayMember{
		{Network: "l2", NetType: contracts.NetTypeBridge, VNI: 8, Port: 8472},
		{Network: "l3", NetType: contracts.NetTypeInterface, VNI: 7, Port: 4789, Routes: []string{"10.5.0.3/32", "10.5.0.9/32", "fd00::9/128"}},
	}, got)
	assert.Empty(t, overlay.Members(nil))
}

func TestNewRefuses(t *testing.T) {
	_, nc := natstest.Connect(t)
	dp := &fakeDataplane{}
	for name, cfg := range map[string]overlay.Config{
		"no vtep":        {NC: nc, Node: "a", Engine: contracts.EngineVPP, Dataplane: dp},
		"loopback vtep":  {NC: nc, Node: "a", Engine: contracts.EngineVPP, Dataplane: dp, VTEP: netip.MustParseAddr("127.0.0.1")},
		"ipv6 vtep":      {NC: nc, Node: "a", Engine: contracts.EngineVPP, Dataplane: dp, VTEP: netip.MustParseAddr("fd00::1")},
		"short interval": {NC: nc, Node: "a", Engine: contracts.EngineVPP, Dataplane: dp, VTEP: netip.MustParseAddr("10.0.0.1"), Interval: time.Millisecond},
		"no engine":      {NC: nc, Node: "a", Dataplane: dp, VTEP: netip.MustParseAddr("10.0.0.1")},
		"no dataplane":   {NC: nc, Node: "a", Engine: contracts.EngineVPP, VTEP: netip.MustParseAddr("10.0.0.1")},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := overlay.New(cfg)
			assert.Error(t, err)
		})
	}
}
