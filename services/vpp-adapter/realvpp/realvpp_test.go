package realvpp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.fd.io/govpp/binapi/memif"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/contractstest"
	"usrsp.dev/libs/vpp"
	"usrsp.dev/services/vpp-adapter/adapter"
	"usrsp.dev/services/vpp-adapter/daemon"
	"usrsp.dev/services/vpp-adapter/daemon/daemontest"
)

// adapterOn is the vpp-adapter daemon (its real connection loop) dialing
// one API socket, on an embedded NATS, with the test playing cni-entry
// (Client) and an operator reading the events.
type adapterOn struct {
	*daemontest.Instance
	*daemontest.Events
}

func startAdapterOn(t *testing.T, apiSock string) *adapterOn {
	t.Helper()
	o := &adapterOn{Events: daemontest.NewEvents(), Instance: daemontest.New(t, daemon.Config{APISocket: apiSock,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		// A loaded 2-core CI machine stalls VPP for more than a second.
		ProbeInterval: 250 * time.Millisecond, ProbeTimeout: 5 * time.Second})}
	o.Subscribe(t, o.NC)
	o.Run()
	return o
}

// waitNotReady polls readiness (there is no "down" event before the first
// connect) until the reason contains want.
func (o *adapterOn) waitNotReady(t *testing.T, want string, within time.Duration) string {
	t.Helper()
	return o.Poll(t, within, "not ready with "+want, func(ready bool, why string) bool {
		return !ready && strings.Contains(why, want)
	})
}

// stack is a host VPP and the adapter daemon connected to it.
type stack struct {
	*adapterOn
	host *vppInstance
}

func startStack(t *testing.T) *stack {
	t.Helper()
	s := &stack{host: startVPP(t, "host", 0)}
	s.adapterOn = startAdapterOn(t, s.host.APISock)
	s.WaitFor(t, contracts.EventReconciled)
	return s
}

// TestRealVPPConformance runs the shared adapter suite against the daemon
// on a real VPP, restarts (of the adapter, from its records) included.
func TestRealVPPConformance(t *testing.T) {
	vppEnv(t)
	s := startStack(t)
	contractstest.RunAdapterSuite(t, s.Target(func(t *testing.T) {
		ifs, sockets, bds := ownedState(t, s.host)
		assert.Empty(t, ifs, "interfaces tagged as ours")
		assert.Empty(t, sockets, "memif socket registrations of the pods")
		assert.Empty(t, bds, "bridge domains tagged as ours")
	}))
}

// memifPod is a memif master of container id in bridge domain bd.
func (s *stack) memifPod(id string, bd uint32) *contracts.AttachRequest {
	return s.MemifRequest(contracts.AttachmentKey{ContainerID: id, IfName: "net1"}, "vpp-bridge", bd)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// podVPP plays a pod: a VPP with a memif slave on the pod's socket and
// an address, configured through govpp like pod-consumer would.
func podVPP(t *testing.T, name string, core int, socket, addr string) (*vppInstance, string) {
	t.Helper()
	p := startVPP(t, name, core)
	c := ctx(t)
	id, err := p.Client.AddMemifSocket(c, socket)
	require.NoError(t, err)
	sw, err := p.Client.CreateMemif(c, vpp.MemifConfig{SocketID: id, Mode: memif.MEMIF_MODE_API_ETHERNET, Queues: 1, RingSize: 1024, BufferSize: 2048})
	require.NoError(t, err)
	require.NoError(t, p.Client.AddAddress(c, sw, mustPrefix(t, addr)))
	require.NoError(t, p.Client.AdminUp(c, sw))
	name = "memif" + itoa(id) + "/0"
	t.Logf("%s: %s slave on %s with %s", p.name, name, socket, addr)
	return p, name
}

// ownedState is what the host VPP holds that the adapter owns.
func ownedState(t *testing.T, host *vppInstance) (ifs []vpp.Interface, sockets []string, bds []vpp.BridgeDomain) {
	t.Helper()
	c := ctx(t)
	ifs, err := host.Client.InterfacesTagged(c, adapter.TagPrefix)
	require.NoError(t, err)
	all, err := host.Client.BridgeDomains(c, ^uint32(0))
	require.NoError(t, err)
	for _, bd := range all {
		if bd.Tag == adapter.BridgeTag {
			bds = append(bds, bd)
		}
	}
	out := host.cli("show memif")
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "usrsp-pods-") {
			sockets = append(sockets, strings.TrimSpace(line))
		}
	}
	return ifs, sockets, bds
}

// l3Loopbacks are the host VPP's L3 network loopbacks the adapter owns.
func l3Loopbacks(t *testing.T, host *vppInstance) []vpp.Interface {
	t.Helper()
	ifs, err := host.Client.InterfacesTagged(ctx(t), adapter.LoopbackTagPrefix)
	require.NoError(t, err)
	return ifs
}

// TestRealVPP runs the whole path against real VPP processes. Each step
// builds on the previous one; read the -v log to follow it.
func TestRealVPP(t *testing.T) {
	vppEnv(t)
	s := startStack(t)
	c := ctx(t)

	pod1, pod2 := s.memifPod("pod1", 4), s.memifPod("pod2", 4)
	t.Run("attach memif masters into bridge domain 4", func(t *testing.T) {
		for _, r := range []*contracts.AttachRequest{pod1, pod2} {
			resp, err := s.Client.Attach(c, contracts.EngineVPP, r)
			require.NoError(t, err, "attach %s", r.Key)
			t.Logf("attached %s as %s on %s", r.Key, resp.Attachment.HostIfName, resp.Attachment.SocketPath)
			assert.FileExists(t, r.Interface.SocketPath, "VPP (master) listens on the pod's socket")
		}
		ifs, _, bds := ownedState(t, s.host)
		assert.Len(t, ifs, 2)
		require.Len(t, bds, 1)
		assert.Equal(t, uint32(4), bds[0].ID)
		assert.Equal(t, 2, bds[0].Members)
		s.host.cli("show bridge-domain 4 detail")
	})

	t.Run("two pods ping each other through the host bridge domain", func(t *testing.T) {
		p1, if1 := podVPP(t, "pod1", 1, pod1.Interface.SocketPath, "10.10.0.1/24")
		p2, if2 := podVPP(t, "pod2", 1, pod2.Interface.SocketPath, "10.10.0.2/24")
		p1.waitLinkUp(if1, 30*time.Second)
		p2.waitLinkUp(if2, 30*time.Second)
		assert.Positive(t, p1.ping("10.10.0.2"), "pod1 -> pod2 through host bridge domain 4")

		t.Run("after kill -9 and restart of the host VPP every attachment is back by replay", func(t *testing.T) {
			s.host.kill9()
			s.host.start()
			ev := s.WaitFor(t, contracts.EventReconciled)
			assert.Contains(t, ev.Message, "recreated 2")
			ifs, _, bds := ownedState(t, s.host)
			assert.Len(t, ifs, 2)
			require.Len(t, bds, 1)
			assert.Equal(t, 2, bds[0].Members)
			p1.waitLinkUp(if1, 60*time.Second)
			p2.waitLinkUp(if2, 60*time.Second)
			assert.Positive(t, p1.ping("10.10.0.2"), "pods reach each other again after the replay")
		})
	})

	t.Run("memif over an abstract socket in a network namespace", func(t *testing.T) {
		// The test's own netns stands in for the pod's: the pod VPP (a child
		// of the test) connects to the abstract socket in it.
		name := fmt.Sprintf("usrsp-rt-%d", os.Getpid())
		r := &contracts.AttachRequest{Key: contracts.AttachmentKey{ContainerID: "abstract", IfName: "net1"}, Network: "vpp-bridge",
			Interface: contracts.HostInterface{IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeBridge,
				Memif: &contracts.MemifSpec{Role: contracts.MemifRoleMaster, Mode: contracts.MemifModeEthernet,
					Netns: fmt.Sprintf("/proc/%d/ns/net", os.Getpid()), SocketFile: name},
				Bridge: &contracts.BridgeSpec{ID: 4}}}
		resp, err := s.Client.Attach(c, contracts.EngineVPP, r)
		require.NoError(t, err, "attach with socket filename abstract:%s,netns_name=...", name)
		assert.Equal(t, "@"+name, resp.Attachment.SocketPath)
		s.host.cli("show memif")
		p, ifName := podVPP(t, "pod3", 1, "abstract:"+name, "10.10.0.3/24")
		p.waitLinkUp(ifName, 30*time.Second)
		_, err = s.Client.Detach(c, contracts.EngineVPP, &contracts.DetachRequest{Key: r.Key})
		require.NoError(t, err)
	})

	t.Run("vhost-user server and client", func(t *testing.T) {
		for _, mode := range []string{contracts.VhostModeServer, contracts.VhostModeClient} {
			dir := filepath.Join(s.PodDir, "vhost-"+mode)
			require.NoError(t, os.MkdirAll(dir, 0o755))
			r := &contracts.AttachRequest{Key: contracts.AttachmentKey{ContainerID: "vhost-" + mode, IfName: "net1"}, Network: "vpp-bridge",
				Interface: contracts.HostInterface{IfType: contracts.IfTypeVhostUser, NetType: contracts.NetTypeBridge,
					SocketPath: filepath.Join(dir, "vhost-net1.sock"), Vhost: &contracts.VhostSpec{Mode: mode},
					Bridge: &contracts.BridgeSpec{ID: 4}}}
			resp, err := s.Client.Attach(c, contracts.EngineVPP, r)
			require.NoError(t, err, "attach vhost-user %s", mode)
			t.Logf("vhost-user %s: %s", mode, resp.Attachment.HostIfName)
			if mode == contracts.VhostModeServer {
				assert.FileExists(t, r.Interface.SocketPath, "VPP (server) creates the socket")
			}
			s.host.cli("show vhost-user " + resp.Attachment.HostIfName)
			_, err = s.Client.Detach(c, contracts.EngineVPP, &contracts.DetachRequest{Key: r.Key})
			require.NoError(t, err)
		}
	})

	t.Run("L3: two pods in one subnet reach each other and the gateway through the host VPP", func(t *testing.T) {
		// host-local IPAM style: both pods in 10.20.0.0/24, gateway .1.
		// The pods' memifs are ethernet mode, so ARP (answered by VPP
		// through unnumbered + proxy ARP) is exercised too.
		l3 := func(id, addr string) *contracts.AttachRequest {
			dir := filepath.Join(s.PodDir, id)
			require.NoError(t, os.MkdirAll(dir, 0o755))
			return &contracts.AttachRequest{Key: contracts.AttachmentKey{ContainerID: id, IfName: "net1"}, Network: "vpp-l3",
				Interface: contracts.HostInterface{IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeInterface, MTU: 1500,
					SocketPath: filepath.Join(dir, "memif-net1.sock"),
					Memif:      &contracts.MemifSpec{Role: contracts.MemifRoleMaster, Mode: contracts.MemifModeEthernet},
					IPs:        []contracts.IPConfig{{Address: addr, Gateway: "10.20.0.1"}}}}
		}
		a, b := l3("l3pod-a", "10.20.0.2/24"), l3("l3pod-b", "10.20.0.3/24")
		var hostIfs []string
		for _, r := range []*contracts.AttachRequest{a, b} {
			resp, err := s.Client.Attach(c, contracts.EngineVPP, r)
			require.NoError(t, err, "attach %s", r.Key)
			hostIfs = append(hostIfs, resp.Attachment.HostIfName)
			_, err = s.Client.Check(c, contracts.EngineVPP, &contracts.CheckRequest{Key: r.Key, Network: r.Network, Interface: r.Interface})
			require.NoError(t, err, "check %s (MTU read back from VPP)", r.Key)
		}
		loops := l3Loopbacks(t, s.host)
		require.Len(t, loops, 1, "one loopback for the network")
		assert.Contains(t, s.host.cli("show interface address "+loops[0].Name), "10.20.0.1/24")
		for _, name := range hostIfs {
			assert.Contains(t, s.host.cli("show interface address "+name), "unnumbered")
		}
		assert.Contains(t, s.host.cli("show ip fib 10.20.0.2/32"), hostIfs[0])
		s.host.cli("show arp proxy")

		pa, ifA := podVPP(t, "l3pod-a", 1, a.Interface.SocketPath, "10.20.0.2/24")
		pb, ifB := podVPP(t, "l3pod-b", 1, b.Interface.SocketPath, "10.20.0.3/24")
		pa.waitLinkUp(ifA, 30*time.Second)
		pb.waitLinkUp(ifB, 30*time.Second)
		// The first echo is lost while VPP resolves the neighbour; 5 are sent.
		assert.Positive(t, pa.ping("10.20.0.3"), "pod a -> pod b, same subnet, through the host VPP (proxy ARP)")
		assert.Positive(t, pb.ping("10.20.0.2"), "pod b -> pod a")
		assert.Positive(t, pa.ping("10.20.0.1"), "the gateway answers (ARP on an unnumbered interface)")
		// Reading arp.c suggested that once the host VPP has learned pod b,
		// a second resolution of b by pod a would be dropped; on 25.10 the
		// API-sourced host route wins and proxy ARP answers again.
		pa.cli("ip neighbor flush")
		assert.Positive(t, pa.ping("10.20.0.3"), "pod a re-resolves pod b after the host VPP learned b")
		if t.Failed() {
			s.host.cli("show ip neighbors")
			s.host.cli("show errors")
			pa.cli("show ip neighbors")
		}

		_, err := s.Client.Detach(c, contracts.EngineVPP, &contracts.DetachRequest{Key: a.Key})
		require.NoError(t, err)
		assert.Len(t, l3Loopbacks(t, s.host), 1, "the loopback stays while pod b is attached")
		assert.Positive(t, pb.ping("10.20.0.1"), "pod b still reaches the gateway")
		_, err = s.Client.Detach(c, contracts.EngineVPP, &contracts.DetachRequest{Key: b.Key})
		require.NoError(t, err)
		assert.Empty(t, l3Loopbacks(t, s.host), "the last detach removes the loopback")
		assert.NotContains(t, s.host.cli("show ip fib 10.20.0.2/32"), hostIfs[0])
	})

	t.Run("detach leaves no owned interface, socket or bridge domain", func(t *testing.T) {
		for _, r := range []*contracts.AttachRequest{pod1, pod2} {
			resp, err := s.Client.Detach(c, contracts.EngineVPP, &contracts.DetachRequest{Key: r.Key})
			require.NoError(t, err)
			assert.True(t, resp.Removed)
		}
		ifs, sockets, bds := ownedState(t, s.host)
		assert.Empty(t, ifs)
		assert.Empty(t, sockets)
		assert.Empty(t, bds)
		assert.Empty(t, l3Loopbacks(t, s.host))
		id, found, err := s.host.Client.MemifSocketID(c, pod1.Interface.SocketPath)
		require.NoError(t, err)
		assert.False(t, found, "socket registration %d removed", id)
		list, err := s.Client.List(c, contracts.EngineVPP, &contracts.ListRequest{})
		require.NoError(t, err)
		b, _ := json.Marshal(list)
		assert.Empty(t, list.Attachments, "%s", b)
	})
}
