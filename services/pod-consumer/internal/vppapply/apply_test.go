package vppapply

import (
	"context"
	"io"
	"log"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/vhost_user"
	"go.fd.io/govpp/core"
	"go.uber.org/goleak"

	"usrsp.dev/contracts"
	"usrsp.dev/services/pod-consumer/internal/discovery"
)

func TestMain(m *testing.M) {
	log.SetOutput(io.Discard) // govpp's mock logs every reply
	goleak.VerifyTestMain(m)
}

func memifData() *contracts.PodData {
	return &contracts.PodData{Version: contracts.PodDataVersion, ContainerID: "c1", IfName: "net1", HostEngine: contracts.EngineVPP,
		Interface: contracts.ContainerInterface{Engine: contracts.EngineVPP, IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeBridge,
			SocketPath: "/var/run/usrsp/memif-net1.sock", MTU: 1500, MAC: "02:00:00:00:00:01",
			Memif: &contracts.MemifSpec{Role: contracts.MemifRoleSlave, Mode: contracts.MemifModeEthernet, ID: 3, Queues: 2,
				RingSize: 1024, BufferSize: 2048, Secret: "s3"}},
		IPAM: &contracts.IPAMResult{IPs: []contracts.IPConfig{{Address: "10.56.0.5/24", Gateway: "10.56.0.1"}},
			Routes: []contracts.Route{{Dst: "0.0.0.0/0"}}}}
}

func vhostData() *contracts.PodData {
	return &contracts.PodData{Version: contracts.PodDataVersion, ContainerID: "c1", IfName: "net2", HostEngine: contracts.EngineOVSDPDK,
		Interface: contracts.ContainerInterface{IfType: contracts.IfTypeVhostUser, NetType: contracts.NetTypeBridge,
			SocketPath: "/var/run/usrsp/vhostuser-net2.sock", Vhost: &contracts.VhostSpec{Mode: contracts.VhostModeServer, Queues: 1}}}
}

func connect(t *testing.T, f *fakeVPP) api.Connection {
	t.Helper()
	conn, err := core.Connect(f)
	require.NoError(t, err)
	t.Cleanup(conn.Disconnect)
	return conn
}

func applier(conn api.Connection) *Applier {
	return &Applier{API: NewAPI(conn), Log: zerolog.Nop(), LinkTimeout: 2 * time.Second, PollInterval: 10 * time.Millisecond}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestApplyMessageSequence(t *testing.T) {
	cases := []struct {
		name   string
		data   *contracts.PodData
		first  []string
		second []string
		check  func(t *testing.T, f *fakeVPP)
	}{
		{
			name: "memif slave with IP and route",
			data: memifData(),
			first: []string{"sw_interface_dump", "memif_socket_filename_dump", "memif_socket_filename_add_del_v2",
				"memif_create_v2", "sw_interface_tag_add_del", "sw_interface_set_mtu", "ip_address_dump",
				"sw_interface_add_del_address", "ip_route_lookup", "ip_route_add_del", "sw_interface_set_flags",
				"sw_interface_dump"},
			second: []string{"sw_interface_dump", "ip_address_dump", "ip_route_lookup", "sw_interface_dump"},
			check: func(t *testing.T, f *fakeVPP) {
				var create *memif.MemifCreateV2
				var sock *memif.MemifSocketFilenameAddDelV2
				for _, c := range f.calls {
					switch m := c.(type) {
					case *memif.MemifCreateV2:
						create = m
					case *memif.MemifSocketFilenameAddDelV2:
						sock = m
					}
				}
				require.NotNil(t, create)
				assert.Equal(t, "/var/run/usrsp/memif-net1.sock", sock.SocketFilename)
				assert.Equal(t, anyIndex, sock.SocketID)
				assert.Equal(t, memif.MEMIF_ROLE_API_SLAVE, create.Role)
				assert.Equal(t, memif.MEMIF_MODE_API_ETHERNET, create.Mode)
				assert.Equal(t, uint32(1), create.SocketID, "the socket id VPP allocated")
				assert.Equal(t, []any{uint32(3), uint8(2), uint8(2), uint32(1024), uint16(2048), "s3", "02:00:00:00:00:01"},
					[]any{create.ID, create.RxQueues, create.TxQueues, create.RingSize, create.BufferSize, create.Secret, create.HwAddr.String()})
				i := f.ifs[1]
				assert.Equal(t, "usrsp-pod:net1", i.tag)
				assert.Equal(t, uint32(1500), i.mtu)
				require.Len(t, i.addrs, 1)
				assert.Equal(t, "10.56.0.5/24", i.addrs[0].String())
				r := f.routes["0.0.0.0/0"]
				require.Len(t, r.Paths, 1)
				assert.Equal(t, uint32(1), r.Paths[0].SwIfIndex)
				assert.Equal(t, "10.56.0.1", r.Paths[0].Nh.Address.GetIP4().String(), "a route without gw uses the IPAM gateway")
			},
		},
		{
			name: "vhost-user server, no IPAM",
			data: vhostData(),
			first: []string{"sw_interface_dump", "create_vhost_user_if_v2", "sw_interface_tag_add_del",
				"sw_interface_set_flags", "sw_interface_dump"},
			second: []string{"sw_interface_dump", "sw_interface_dump"},
			check: func(t *testing.T, f *fakeVPP) {
				c, ok := f.calls[1].(*vhost_user.CreateVhostUserIfV2)
				require.True(t, ok)
				assert.True(t, c.IsServer, "the pod is the vhost-user server when the host is the client")
				assert.Equal(t, "/var/run/usrsp/vhostuser-net2.sock", c.SockFilename)
				assert.Equal(t, "usrsp-pod:net2", c.Tag)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeVPP()
			a := applier(connect(t, f))
			ifs := []discovery.Interface{{Name: tc.data.IfName, Data: tc.data}}

			res, err := a.Apply(testCtx(t), ifs)
			require.NoError(t, err)
			require.Len(t, res, 1)
			assert.True(t, res[0].Created)
			assert.True(t, res[0].LinkUp)
			assert.NotEmpty(t, res[0].VPPName)
			tc.check(t, f)
			assert.Equal(t, tc.first, f.names())

			res, err = a.Apply(testCtx(t), ifs)
			require.NoError(t, err)
			assert.False(t, res[0].Created)
			assert.Empty(t, res[0].Changes, "a second run changes nothing")
			assert.Equal(t, tc.second, f.names(), "a second run only reads")
		})
	}
}

func TestApplyReusesRegisteredSocketAndAbstract(t *testing.T) {
	f := newFakeVPP()
	f.sockets[7] = "abstract:usrsp/memif-net1"
	f.nextSock = 8
	d := memifData()
	d.Interface.SocketPath = "@usrsp/memif-net1"
	d.IPAM = nil
	_, err := applier(connect(t, f)).Apply(testCtx(t), []discovery.Interface{{Name: "net1", Data: d}})
	require.NoError(t, err)
	names := f.names()
	assert.NotContains(t, names, "memif_socket_filename_add_del_v2")
	for _, c := range f.calls {
		if m, ok := c.(*memif.MemifCreateV2); ok {
			assert.Equal(t, uint32(7), m.SocketID)
		}
	}
}

func TestApplyLinkTimeout(t *testing.T) {
	f := newFakeVPP()
	f.peerUp = false
	a := applier(connect(t, f))
	a.LinkTimeout = 100 * time.Millisecond
	_, err := a.Apply(testCtx(t), []discovery.Interface{{Name: "net1", Data: memifData()}})
	require.Error(t, err)
	assert.Equal(t, contracts.CodeTryAgainLater, contracts.CodeOf(err))
	assert.Contains(t, err.Error(), "net1: link of memif (slave, id 3) on socket /var/run/usrsp/memif-net1.sock")
	assert.Contains(t, err.Error(), "memif1/3")
	assert.Contains(t, err.Error(), "did not come up within 100ms")
}

func TestApplyRejectsBadPodDataBeforeTouchingVPP(t *testing.T) {
	cases := []struct {
		name string
		edit func(d *contracts.PodData)
		want string
	}{
		{"bad address", func(d *contracts.PodData) { d.IPAM.IPs[0].Address = "10.0.0.1" }, "ipam.ips[0].address"},
		{"bad route", func(d *contracts.PodData) { d.IPAM.Routes[0].Dst = "x" }, "ipam.routes[0].dst"},
		{"mixed families", func(d *contracts.PodData) { d.IPAM.Routes[0].GW = "fd00::1" }, "ipam.routes[0]"},
		{"ring size", func(d *contracts.PodData) { d.Interface.Memif.RingSize = 1000 }, "interface.memif.ringSize"},
		{"mac", func(d *contracts.PodData) { d.Interface.MAC = "zz" }, "interface.mac"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeVPP()
			d := memifData()
			tc.edit(d)
			_, err := applier(connect(t, f)).Apply(testCtx(t), []discovery.Interface{{Name: "net1", Data: d}})
			require.Error(t, err)
			assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err))
			assert.Contains(t, err.Error(), tc.want)
			assert.Empty(t, f.names())
		})
	}
	_, err := applier(connect(t, newFakeVPP())).Apply(testCtx(t), []discovery.Interface{{Name: "net9"}})
	assert.ErrorContains(t, err, "net9: known only from the network-status annotation")
}

func TestWatchReappliesAfterRestart(t *testing.T) {
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	vpps := make(chan *fakeVPP, 2)
	vpps <- newFakeVPP()
	vpps <- newFakeVPP()
	applied := make(chan *fakeVPP, 2)
	var current *fakeVPP
	ifs := []discovery.Interface{{Name: "net1", Data: memifData()}}
	w := &Watch{
		Dial: func() (api.Connection, func(), error) {
			select {
			case current = <-vpps:
			default:
				return nil, nil, context.Canceled // no third VPP
			}
			conn, err := core.Connect(current)
			if err != nil {
				return nil, nil, err
			}
			return conn, conn.Disconnect, nil
		},
		Apply: func(ctx context.Context, conn api.Connection) error {
			_, err := applier(conn).Apply(ctx, ifs)
			applied <- current
			return err
		},
		OnError:    func(error) {},
		MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		ProbeInterval: 5 * time.Millisecond, ProbeTimeout: 100 * time.Millisecond,
	}
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()

	first := <-applied
	first.mu.Lock()
	first.failPings = true // VPP in the pod restarted
	first.mu.Unlock()
	second := <-applied
	second.mu.Lock()
	assert.Equal(t, "usrsp-pod:net1", second.ifs[1].tag, "the restarted VPP got the interface again")
	second.mu.Unlock()
	cancel()
	<-done
}
