package vppapply

import (
	"context"
	"io"
	"log"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.fd.io/govpp/adapter"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/vhost_user"
	"go.uber.org/goleak"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/vpp"
	"usrsp.dev/libs/vpp/vpptest"
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

func applier(t *testing.T, f *vpptest.FakeVPP) *Applier {
	t.Helper()
	_, c := f.Dial(t)
	return &Applier{VPP: c, Log: zerolog.Nop(), LinkTimeout: 2 * time.Second, PollInterval: 10 * time.Millisecond}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// sent returns the requests of type T the fake received, in order.
func sent[T api.Message](f *vpptest.FakeVPP) []T {
	var out []T
	for _, c := range f.Messages() {
		if m, ok := c.Msg.(T); ok {
			out = append(out, m)
		}
	}
	return out
}

func TestApplyMessageSequence(t *testing.T) {
	cases := []struct {
		name   string
		data   *contracts.PodData
		first  []string
		second []string
		check  func(t *testing.T, f *vpptest.FakeVPP)
	}{
		{
			name: "memif slave with IP and route",
			data: memifData(),
			first: []string{"sw_interface_dump", "memif_socket_filename_dump", "memif_socket_filename_add_del_v2",
				"memif_create_v2", "sw_interface_tag_add_del", "sw_interface_set_mtu", "ip_address_dump",
				"sw_interface_add_del_address", "ip_route_lookup", "ip_route_add_del", "sw_interface_set_flags",
				"sw_interface_dump"},
			second: []string{"sw_interface_dump", "ip_address_dump", "ip_route_lookup", "sw_interface_dump"},
			check: func(t *testing.T, f *vpptest.FakeVPP) {
				sock := sent[*memif.MemifSocketFilenameAddDelV2](f)
				require.Len(t, sock, 1)
				assert.Equal(t, "/var/run/usrsp/memif-net1.sock", sock[0].SocketFilename)
				assert.Equal(t, ^uint32(0), sock[0].SocketID, "VPP allocates the id")
				create := sent[*memif.MemifCreateV2](f)
				require.Len(t, create, 1)
				c := create[0]
				assert.Equal(t, memif.MEMIF_ROLE_API_SLAVE, c.Role)
				assert.Equal(t, memif.MEMIF_MODE_API_ETHERNET, c.Mode)
				assert.Equal(t, uint32(1), c.SocketID, "the socket id VPP allocated")
				assert.Equal(t, []any{uint32(3), uint8(2), uint8(2), uint32(1024), uint16(2048), "s3", "02:00:00:00:00:01"},
					[]any{c.ID, c.RxQueues, c.TxQueues, c.RingSize, c.BufferSize, c.Secret, c.HwAddr.String()})
				i := f.Snapshot()["memif1/3"]
				assert.Equal(t, "usrsp-pod:net1", i.Tag)
				assert.Equal(t, uint32(1500), i.MTU)
				assert.Equal(t, []string{"10.56.0.5/24"}, i.Addresses)
				routes := sent[*ip.IPRouteAddDel](f)
				require.Len(t, routes, 1)
				r := routes[0].Route
				assert.Equal(t, "0.0.0.0/0", r.Prefix.String())
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
			check: func(t *testing.T, f *vpptest.FakeVPP) {
				create := sent[*vhost_user.CreateVhostUserIfV2](f)
				require.Len(t, create, 1)
				assert.True(t, create[0].IsServer, "the pod is the vhost-user server when the host is the client")
				assert.Equal(t, "/var/run/usrsp/vhostuser-net2.sock", create[0].SockFilename)
				assert.Equal(t, "usrsp-pod:net2", create[0].Tag)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := vpptest.New()
			a := applier(t, f)
			ifs := []discovery.Interface{{Name: tc.data.IfName, Data: tc.data}}

			res, err := a.Apply(testCtx(t), ifs)
			require.NoError(t, err)
			require.Len(t, res, 1)
			assert.True(t, res[0].Created)
			assert.True(t, res[0].LinkUp)
			assert.NotEmpty(t, res[0].VPPName)
			tc.check(t, f)
			assert.Equal(t, tc.first, f.Calls())

			res, err = a.Apply(testCtx(t), ifs)
			require.NoError(t, err)
			assert.False(t, res[0].Created)
			assert.Empty(t, res[0].Changes, "a second run changes nothing")
			assert.Equal(t, tc.second, f.Calls(), "a second run only reads")
		})
	}
}

func TestApplyReusesRegisteredSocketAndAbstract(t *testing.T) {
	f := vpptest.New()
	f.Sockets[7] = "abstract:usrsp/memif-net1"
	d := memifData()
	d.Interface.SocketPath = "@usrsp/memif-net1"
	d.IPAM = nil
	_, err := applier(t, f).Apply(testCtx(t), []discovery.Interface{{Name: "net1", Data: d}})
	require.NoError(t, err)
	create := sent[*memif.MemifCreateV2](f)
	require.Len(t, create, 1)
	assert.Equal(t, uint32(7), create[0].SocketID)
	assert.NotContains(t, f.Calls(), "memif_socket_filename_add_del_v2")
}

func TestApplyLinkTimeout(t *testing.T) {
	f := vpptest.New()
	f.SetPeerUp(false)
	a := applier(t, f)
	a.LinkTimeout = 100 * time.Millisecond
	_, err := a.Apply(testCtx(t), []discovery.Interface{{Name: "net1", Data: memifData()}})
	require.Error(t, err)
	assert.Equal(t, contracts.CodeTryAgainLater, contracts.CodeOf(err))
	assert.Contains(t, err.Error(), "net1: link of memif (slave, id 3) on socket /var/run/usrsp/memif-net1.sock")
	assert.Contains(t, err.Error(), "memif1/3")
	assert.Contains(t, err.Error(), "did not come up within 100ms")
}

func TestApplyVPPErrorsNameInterfaceAndCode(t *testing.T) {
	cases := []struct {
		fail   string
		retval api.VPPApiError
		code   contracts.Code
		want   string
		calls  []string // what VPP saw after the failure: the untagged memif is deleted
	}{
		{"memif_create_v2", api.SUBIF_ALREADY_EXISTS, contracts.CodeConflict,
			"net1: memif (slave, id 3) on socket /var/run/usrsp/memif-net1.sock: vpp memif_create_v2", nil},
		{"sw_interface_tag_add_del", api.UNSPECIFIED, contracts.CodeVswitch,
			"net1: vpp sw_interface_tag_add_del sw_if_index 1 tag \"usrsp-pod:net1\"", []string{"memif_delete"}},
		{"ip_route_add_del", api.INVALID_VALUE, contracts.CodeInvalidConfig,
			"net1: vpp ip_route_add_del (add) 0.0.0.0/0 via 10.56.0.1 sw_if_index 1 table 0", nil},
	}
	for _, tc := range cases {
		t.Run(tc.fail, func(t *testing.T) {
			f := vpptest.New()
			f.FailNext(tc.fail, tc.retval)
			_, err := applier(t, f).Apply(testCtx(t), []discovery.Interface{{Name: "net1", Data: memifData()}})
			require.Error(t, err)
			assert.Equal(t, tc.code, contracts.CodeOf(err))
			assert.Contains(t, err.Error(), tc.want)
			calls := f.Calls()
			assert.Equal(t, tc.calls, after(calls, tc.fail))
		})
	}
}

// after returns the calls after the first one named name.
func after(calls []string, name string) []string {
	for i, c := range calls {
		if c == name {
			if rest := calls[i+1:]; len(rest) > 0 {
				return rest
			}
			return nil
		}
	}
	return calls
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
		{"ring below VPP's", func(d *contracts.PodData) { d.Interface.Memif.RingSize = 4 }, "interface.memif.ringSize: 4"},
		{"queues", func(d *contracts.PodData) { d.Interface.Memif.Queues = 256 }, "interface.memif.queues"},
		{"secret", func(d *contracts.PodData) { d.Interface.Memif.Secret = strings.Repeat("s", 24) }, "interface.memif.secret"},
		{"mtu", func(d *contracts.PodData) { d.Interface.MTU = 70000 }, "interface.mtu"},
		{"mac", func(d *contracts.PodData) { d.Interface.MAC = "zz" }, "interface.mac"},
		{"iftype", func(d *contracts.PodData) { d.Interface.IfType = "tap" }, "interface.ifType \"tap\""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := vpptest.New()
			d := memifData()
			tc.edit(d)
			_, err := applier(t, f).Apply(testCtx(t), []discovery.Interface{{Name: "net1", Data: d}})
			require.Error(t, err)
			assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err))
			assert.Contains(t, err.Error(), tc.want)
			assert.Empty(t, f.Calls())
		})
	}
	_, err := applier(t, vpptest.New()).Apply(testCtx(t), []discovery.Interface{{Name: "net9"}})
	assert.ErrorContains(t, err, "net9: known only from the network-status annotation")
}

func TestWatchReappliesAfterRestart(t *testing.T) {
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	f := vpptest.New()
	applied := make(chan map[string]vpptest.Interface, 2)
	ifs := []discovery.Interface{{Name: "net1", Data: memifData()}}
	apply := func(ctx context.Context, c *vpp.Client) error {
		a := &Applier{VPP: c, Log: zerolog.Nop(), LinkTimeout: time.Second, PollInterval: time.Millisecond}
		_, err := a.Apply(ctx, ifs)
		applied <- f.Snapshot()
		return err
	}
	loop := Watch(func() adapter.VppAPI { return f }, apply, func(error) {})
	loop.MinBackoff, loop.MaxBackoff, loop.ProbeInterval = time.Millisecond, 10*time.Millisecond, 5*time.Millisecond
	done := make(chan struct{})
	go func() { loop.Run(ctx); close(done) }()

	first := <-applied
	assert.Equal(t, "usrsp-pod:net1", first["memif1/3"].Tag)
	f.Restart() // VPP in the pod restarted: everything is gone, the next probe fails
	second := <-applied
	assert.Equal(t, "usrsp-pod:net1", second["memif1/3"].Tag, "the restarted VPP got the interface again")
	cancel()
	<-done
}

// TestRealVPPApplyTwice applies a memif and a vhost-user interface to a
// real VPP, the pod's, twice: the second run must find everything and
// change nothing. It skips without a VPP (vpptest.NeedVPP).
func TestRealVPPApplyTwice(t *testing.T) {
	v := vpptest.StartVPP(t, "pod", 1)
	_, c := vpptest.Connect(t, v.APISock)

	mem, vhost := memifData(), vhostData()
	mem.Interface.SocketPath = filepath.Join(v.Dir, "memif-net1.sock")
	// An IPv6 address without a gateway: its route is attached.
	mem.IPAM.IPs = append(mem.IPAM.IPs, contracts.IPConfig{Address: "fd56::5/64"})
	mem.IPAM.Routes = append(mem.IPAM.Routes, contracts.Route{Dst: "10.57.0.0/16"}, contracts.Route{Dst: "fd57::/48"})
	vhost.Interface.SocketPath = filepath.Join(v.Dir, "vhost-net2.sock")
	ifs := []discovery.Interface{{Name: "net1", Data: mem}, {Name: "net2", Data: vhost}}
	a := &Applier{VPP: c, Log: zerolog.Nop()} // no peers: no link wait
	first, err := a.Apply(testCtx(t), ifs)
	require.NoError(t, err)
	require.Len(t, first, 2)
	assert.Equal(t, []string{"created memif", "mtu 1500", "address 10.56.0.5/24", "address fd56::5/64",
		"route 0.0.0.0/0 via 10.56.0.1", "route 10.57.0.0/16 via 10.56.0.1", "route fd57::/48", "admin up"}, first[0].Changes)
	assert.Equal(t, []string{"created vhost-user", "admin up"}, first[1].Changes)

	second, err := a.Apply(testCtx(t), ifs)
	require.NoError(t, err)
	for n, r := range second {
		assert.False(t, r.Created, r.IfName)
		assert.Empty(t, r.Changes, "%s: a second run changes nothing", r.IfName)
		assert.Equal(t, first[n].SwIfIndex, r.SwIfIndex)
		assert.NotEmpty(t, r.VPPName)
	}
}
