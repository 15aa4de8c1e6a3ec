package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/contractstest"
	"usrsp.dev/services/cni-entry/internal/config"
)

// engineAdapter serves a contractstest.FakeAdapter through the Adapter
// interface without NATS (the libcni tests in cmd/userspace use NATS).
type engineAdapter struct{ f *contractstest.FakeAdapter }

var _ Adapter = engineAdapter{}

func (a engineAdapter) Attach(ctx context.Context, _ contracts.Engine, r *contracts.AttachRequest) (*contracts.AttachResponse, error) {
	return a.f.Attach(ctx, r)
}
func (a engineAdapter) Detach(ctx context.Context, _ contracts.Engine, r *contracts.DetachRequest) (*contracts.DetachResponse, error) {
	return a.f.Detach(ctx, r)
}
func (a engineAdapter) Check(ctx context.Context, _ contracts.Engine, r *contracts.CheckRequest) (*contracts.CheckResponse, error) {
	return a.f.Check(ctx, r)
}
func (a engineAdapter) List(ctx context.Context, _ contracts.Engine, r *contracts.ListRequest) (*contracts.ListResponse, error) {
	return a.f.List(ctx, r)
}
func (a engineAdapter) GC(ctx context.Context, _ contracts.Engine, r *contracts.GCRequest) (*contracts.GCResponse, error) {
	return a.f.GC(ctx, r)
}
func (a engineAdapter) Status(ctx context.Context, _ contracts.Engine) (*contracts.StatusResponse, error) {
	return a.f.Status(ctx, &contracts.StatusRequest{})
}

type fakeDialer struct {
	a   Adapter
	err error
}

func (d fakeDialer) Dial(config.NATS, string) (Adapter, func(), error) {
	if d.err != nil {
		return nil, nil, d.err
	}
	return d.a, func() {}, nil
}

// fakeIPAM hands out 10.0.0.5/24 and records the verbs it ran.
type fakeIPAM struct {
	calls     []string
	addErr    error
	statusErr error
	gcErr     error
}

var _ IPAM = (*fakeIPAM)(nil)

func (f *fakeIPAM) Add(_ context.Context, _ string, _ []byte, a *invoke.Args) (types.Result, error) {
	f.calls = append(f.calls, "ADD "+a.ContainerID)
	if f.addErr != nil {
		return nil, f.addErr
	}
	_, ipn, _ := net.ParseCIDR("10.0.0.0/24")
	ipn.IP = net.ParseIP("10.0.0.5").To4()
	return &current.Result{CNIVersion: current.ImplementedSpecVersion, IPs: []*current.IPConfig{{Address: *ipn}}}, nil
}
func (f *fakeIPAM) Del(_ context.Context, _ string, _ []byte, a *invoke.Args) error {
	f.calls = append(f.calls, "DEL "+a.ContainerID)
	return nil
}
func (f *fakeIPAM) Check(context.Context, string, []byte, *invoke.Args) error { return nil }
func (f *fakeIPAM) Status(context.Context, string, []byte, *invoke.Args) error {
	return f.statusErr
}
func (f *fakeIPAM) GC(context.Context, string, []byte, *invoke.Args) error { return f.gcErr }

type fixture struct {
	p      *Plugin
	fake   *contractstest.FakeAdapter
	ipam   *fakeIPAM
	root   string
	stdout *bytes.Buffer
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{fake: contractstest.NewFakeAdapter(contracts.EngineVPP), ipam: &fakeIPAM{}, root: t.TempDir(), stdout: &bytes.Buffer{}}
	f.p = &Plugin{Dialer: fakeDialer{a: engineAdapter{f.fake}}, IPAM: f.ipam,
		Hostname: func() (string, error) { return "node-a", nil }, Stdout: f.stdout, Stderr: io.Discard}
	return f
}

func (f *fixture) args(t *testing.T, patch map[string]any) *skel.CmdArgs {
	conf := map[string]any{
		"cniVersion": "1.1.0", "name": "net", "type": "userspace",
		"sharedDir": filepath.Join(f.root, "shared"), "linkDir": filepath.Join(f.root, "l"),
		"host": map[string]any{"engine": "vpp", "iftype": "memif", "netType": "interface"},
		"ipam": map[string]any{"type": "fake"},
	}
	for k, v := range patch {
		conf[k] = v
	}
	b, err := json.Marshal(conf)
	require.NoError(t, err)
	return &skel.CmdArgs{ContainerID: "c0ffee0123456789", IfName: "net1", Netns: "/ns", Args: "K8S_POD_UID=uid-1", Path: "/bin", StdinData: b}
}

func code(err error) uint {
	if e, ok := err.(*types.Error); ok {
		return e.Code
	}
	return 0
}

func TestAddUndo(t *testing.T) {
	t.Run("success attaches with the IPAM address", func(t *testing.T) {
		f := newFixture(t)
		require.NoError(t, f.p.Add(f.args(t, nil)))
		atts := f.fake.Attachments()
		require.Len(t, atts, 1)
		assert.Equal(t, []contracts.IPConfig{{Address: "10.0.0.5/24"}}, atts[0].Interface.IPs, "netType interface carries the IPs")
		assert.Equal(t, []string{"ADD c0ffee0123456789"}, f.ipam.calls)
		var r current.Result
		require.NoError(t, json.Unmarshal(f.stdout.Bytes(), &r))
		assert.Equal(t, filepath.Join(f.root, "shared", "uid-1", "memif-net1.sock"), r.Interfaces[0].SocketPath)
	})
	t.Run("IPAM failure: nothing else happens", func(t *testing.T) {
		f := newFixture(t)
		f.ipam.addErr = types.NewError(11, "no addresses left", "")
		assert.Equal(t, uint(11), code(f.p.Add(f.args(t, nil))))
		assert.Empty(t, f.fake.Calls())
		assert.NoDirExists(t, filepath.Join(f.root, "shared", "uid-1"))
	})
	t.Run("dial failure releases IPAM", func(t *testing.T) {
		f := newFixture(t)
		f.p.Dialer = fakeDialer{err: contracts.Errorf(contracts.CodeTryAgainLater, "cannot connect to NATS")}
		assert.Equal(t, uint(11), code(f.p.Add(f.args(t, nil))))
		assert.Equal(t, []string{"ADD c0ffee0123456789", "DEL c0ffee0123456789"}, f.ipam.calls)
	})
	t.Run("pod data write failure detaches and releases", func(t *testing.T) {
		f := newFixture(t)
		// A directory where the data file goes makes the rename fail.
		blocker := filepath.Join(f.root, "shared", "uid-1", contracts.PodDataFileName("net1"), "x")
		require.NoError(t, os.MkdirAll(blocker, 0o750))
		assert.Equal(t, uint(5), code(f.p.Add(f.args(t, nil))))
		assert.Empty(t, f.fake.Attachments())
		assert.Equal(t, []contracts.Op{contracts.OpAttach, contracts.OpDetach}, f.fake.Calls())
		assert.Equal(t, []string{"ADD c0ffee0123456789", "DEL c0ffee0123456789"}, f.ipam.calls)
		assert.Empty(t, f.stdout.String(), "no result on failure")
	})
}

func TestStatusCodes(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fixture)
		want  uint
	}{
		{"ready", func(*fixture) {}, 0},
		{"ipam without STATUS", func(f *fixture) { f.ipam.statusErr = types.NewError(4, "unknown CNI_COMMAND: STATUS", "") }, 0},
		{"ipam too old for STATUS", func(f *fixture) { f.ipam.statusErr = types.NewError(1, "incompatible CNI versions", "") }, 0},
		{"ipam limited", func(f *fixture) { f.ipam.statusErr = types.NewError(51, "pool nearly empty", "") }, 51},
		{"ipam not found", func(f *fixture) {
			f.ipam.statusErr = contracts.Errorf(contracts.CodeInvalidConfig, `ipam.type "fake": not found`)
		}, 50},
		{"adapter not ready", func(f *fixture) { f.fake.SetNotReady("vswitch down") }, 50},
		{"adapter unreachable", func(f *fixture) {
			f.p.Dialer = fakeDialer{err: contracts.Errorf(contracts.CodeTryAgainLater, "cannot connect")}
		}, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tt.setup(f)
			args := f.args(t, nil)
			args.ContainerID, args.IfName, args.Netns = "", "", ""
			assert.Equal(t, tt.want, code(f.p.Status(args)))
		})
	}
}

func TestGCIgnoresIPAMWithoutGC(t *testing.T) {
	f := newFixture(t)
	f.ipam.gcErr = types.NewError(4, "unknown CNI_COMMAND: GC", "")
	f.fake.Put(contracts.Attachment{Key: contracts.AttachmentKey{ContainerID: "stale1", IfName: "net1"}, Network: "net"})
	args := f.args(t, map[string]any{"cni.dev/valid-attachments": []map[string]string{{"containerID": "bad/id", "ifname": "net1"}}})
	args.ContainerID, args.IfName = "", ""
	require.NoError(t, f.p.GC(args))
	assert.Empty(t, f.fake.Attachments())
	assert.Contains(t, f.ipam.calls, "DEL stale1", "a removed attachment's address is released")
}

func TestHostInterface(t *testing.T) {
	load := func(t *testing.T, host string) *config.NetConf {
		c, err := config.LoadNetConf([]byte(`{"cniVersion":"1.0.0","name":"n","mtu":9000,"host":`+host+`}`), config.Env{IfName: "net1"})
		require.NoError(t, err)
		return c
	}
	ips := []contracts.IPConfig{{Address: "10.0.0.5/24", Gateway: "10.0.0.1"}}
	tests := []struct {
		name string
		host string
		want contracts.HostInterface
	}{
		{"vpp memif bridge", `{"engine":"vpp","iftype":"memif","netType":"bridge","bridge":{"bridgeId":"4","vlanId":10}}`,
			contracts.HostInterface{IfType: "memif", NetType: "bridge", SocketPath: "/s", MTU: 9000,
				Memif:  &contracts.MemifSpec{Role: "master", Mode: "ethernet", Queues: 1, RingSize: 1024, BufferSize: 2048, SocketFile: "memif-net1.sock"},
				Bridge: &contracts.BridgeSpec{ID: 4, VLAN: 10}}},
		{"vpp memif interface gets the IPs", `{"engine":"vpp","iftype":"memif","netType":"interface"}`,
			contracts.HostInterface{IfType: "memif", NetType: "interface", SocketPath: "/s", MTU: 9000,
				Memif: &contracts.MemifSpec{Role: "master", Mode: "ethernet", Queues: 1, RingSize: 1024, BufferSize: 2048, SocketFile: "memif-net1.sock"},
				IPs:   ips}},
		{"ovs vhostuser always on a bridge", `{"engine":"ovs-dpdk","iftype":"vhostuser","netType":"none","mac":"02:00:00:00:00:01"}`,
			contracts.HostInterface{IfType: "vhostuser", NetType: "none", SocketPath: "/s", MTU: 9000, MAC: "02:00:00:00:00:01",
				Vhost:  &contracts.VhostSpec{Mode: "client", Queues: 1, SocketFile: "vhostuser-net1.sock"},
				Bridge: &contracts.BridgeSpec{Name: "br0"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, hostInterface(load(t, tt.host), "/s", ips))
		})
	}
}

func TestAdoptHostQueues(t *testing.T) {
	tests := []struct {
		name string
		made contracts.HostInterface
		want int
	}{
		{"vswitch imposes more queues", contracts.HostInterface{Memif: &contracts.MemifSpec{Queues: 2}}, 2},
		{"no memif on the host side", contracts.HostInterface{}, 1},
		{"zero means as requested", contracts.HostInterface{Memif: &contracts.MemifSpec{}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ci := contracts.ContainerInterface{Memif: &contracts.MemifSpec{Queues: 1}}
			adoptHostQueues(&ci, tt.made)
			assert.Equal(t, tt.want, ci.Memif.Queues)
		})
	}
}
