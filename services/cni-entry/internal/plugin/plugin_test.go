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
	"usrsp.dev/services/cni-entry/internal/poddata"
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
	return &skel.CmdArgs{ContainerID: "c0ffee0123456789", IfName: "net1", Netns: selfNetns, Args: "K8S_POD_UID=uid-1", Path: "/bin", StdinData: b}
}

// selfNetns is a real network namespace any user can name: the process's
// own. The verbs tested here never enter it.
const selfNetns = "/proc/self/ns/net"

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
	t.Run("mac", func(t *testing.T) {
		for _, mac := range []string{"", "02:aa:00:00:00:01"} {
			f := newFixture(t)
			patch := map[string]any{}
			if mac != "" {
				patch["container"] = map[string]any{"mac": mac}
			}
			require.NoError(t, f.p.Add(f.args(t, patch)))
			key := contracts.AttachmentKey{ContainerID: "c0ffee0123456789", IfName: "net1"}
			want := contracts.ContainerMAC(key, mac)
			var r current.Result
			require.NoError(t, json.Unmarshal(f.stdout.Bytes(), &r))
			assert.Equal(t, want, r.Interfaces[0].Mac)
			assert.Equal(t, selfNetns, r.Interfaces[0].Sandbox)
			assert.Equal(t, 0, *r.IPs[0].Interface)
			data, err := contracts.DecodePodData(mustRead(t, filepath.Join(f.root, "shared", "uid-1", contracts.PodDataFileName("net1"))))
			require.NoError(t, err)
			assert.Equal(t, want, data.Interface.MAC)
			assert.Equal(t, want, data.DeviceInfo.Memif.MAC)
		}
	})
	t.Run("bad netns", func(t *testing.T) {
		for _, netns := range []string{"", "/nonexistent/netns", "/proc/self/ns/mnt", "/etc/hostname"} {
			f := newFixture(t)
			args := f.args(t, nil)
			args.Netns = netns
			err := f.p.Add(args)
			assert.Equal(t, uint(4), code(err), netns)
			assert.ErrorContains(t, err, "CNI_NETNS")
			assert.Empty(t, f.ipam.calls)
			assert.Empty(t, f.fake.Calls())
			assert.NoDirExists(t, filepath.Join(f.root, "shared"))
			args.Netns = ""
			require.NoError(t, f.p.Del(args), "DEL works without CNI_NETNS")
		}
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
			contracts.HostInterface{IfType: "memif", NetType: "bridge", SocketPath: "/p/memif-net1.sock", MTU: 9000,
				Memif:  &contracts.MemifSpec{Role: "master", Mode: "ethernet", Queues: 1, RingSize: 1024, BufferSize: 2048, SocketFile: "memif-net1.sock"},
				Bridge: &contracts.BridgeSpec{ID: 4, VLAN: 10}}},
		{"vpp memif interface gets the IPs", `{"engine":"vpp","iftype":"memif","netType":"interface"}`,
			contracts.HostInterface{IfType: "memif", NetType: "interface", SocketPath: "/p/memif-net1.sock", MTU: 9000,
				Memif: &contracts.MemifSpec{Role: "master", Mode: "ethernet", Queues: 1, RingSize: 1024, BufferSize: 2048, SocketFile: "memif-net1.sock"},
				IPs:   ips}},
		{"ovs vhostuser always on a bridge", `{"engine":"ovs-dpdk","iftype":"vhostuser","netType":"none","mac":"02:00:00:00:00:01"}`,
			contracts.HostInterface{IfType: "vhostuser", NetType: "none", SocketPath: "/p/vhostuser-net1.sock", MTU: 9000, MAC: "02:00:00:00:00:01",
				Vhost:  &contracts.VhostSpec{Mode: "client", Queues: 1, SocketFile: "vhostuser-net1.sock"},
				Bridge: &contracts.BridgeSpec{Name: "br0"}}},
		{"vpp memif abstract: the pod's netns, no socket path", `{"engine":"vpp","iftype":"memif","netType":"none","memif":{"socketType":"abstract"}}`,
			contracts.HostInterface{IfType: "memif", NetType: "none", MTU: 9000,
				Memif: &contracts.MemifSpec{Role: "master", Mode: "ethernet", Queues: 1, RingSize: 1024, BufferSize: 2048, SocketFile: "memif-net1.sock", Netns: "/var/run/netns/pod"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := load(t, tt.host)
			sock, err := socketOf(c, poddata.Paths{PodDir: "/p"}, "/var/run/netns/pod")
			require.NoError(t, err)
			assert.Equal(t, tt.want, hostInterface(c, contracts.AttachmentKey{ContainerID: "c", IfName: "net1"}, sock, ips, nil))
		})
	}
}

func TestSocketOf(t *testing.T) {
	load := func(t *testing.T, memif string) *config.NetConf {
		c, err := config.LoadNetConf([]byte(`{"cniVersion":"1.1.0","name":"n","host":{"engine":"vpp","iftype":"memif","netType":"none","memif":`+memif+`}}`), config.Env{IfName: "net1"})
		require.NoError(t, err)
		return c
	}
	tests := []struct {
		name  string
		memif string
		netns string
		want  socket
		code  uint
	}{
		{"file in the pod directory", `{}`, "/ns", socket{HostPath: "/p/memif-net1.sock", Reported: "/p/memif-net1.sock"}, 0},
		{"file needs no netns", `{}`, "", socket{HostPath: "/p/memif-net1.sock", Reported: "/p/memif-net1.sock"}, 0},
		{"abstract", `{"socketType":"abstract","socketfile":"usrsp/m1"}`, "/var/run/netns/cni-1", socket{Netns: "/var/run/netns/cni-1", Reported: "@usrsp/m1"}, 0},
		{"abstract without CNI_NETNS", `{"socketType":"abstract"}`, "", socket{}, 4},
		{"abstract with a relative CNI_NETNS", `{"socketType":"abstract"}`, "netns/pod", socket{}, 4},
		{"abstract with a CNI_NETNS VPP cannot parse", `{"socketType":"abstract"}`, "/var/run/netns/a,b", socket{}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := socketOf(load(t, tt.memif), poddata.Paths{PodDir: "/p"}, tt.netns)
			if tt.code != 0 {
				assert.Equal(t, tt.code, code(err))
				assert.ErrorContains(t, err, "CNI_NETNS")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
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

// reportingAdapter reports its own socket path for every attachment, as a
// vswitch that chooses the path does.
type reportingAdapter struct {
	engineAdapter
	socketPath string
}

func (a reportingAdapter) Attach(ctx context.Context, e contracts.Engine, r *contracts.AttachRequest) (*contracts.AttachResponse, error) {
	resp, err := a.engineAdapter.Attach(ctx, e, r)
	if err == nil {
		resp.Attachment.SocketPath = a.socketPath
	}
	return resp, err
}

func TestAddAbstractSocket(t *testing.T) {
	abstract := map[string]any{"host": map[string]any{"engine": "vpp", "iftype": "memif", "netType": "interface",
		"memif": map[string]any{"socketType": "abstract", "socketfile": "usrsp/m-net1"}}}
	podDir := func(f *fixture) string { return filepath.Join(f.root, "shared", "uid-1") }

	t.Run("the request names the pod's netns and no host path", func(t *testing.T) {
		f := newFixture(t)
		require.NoError(t, f.p.Add(f.args(t, abstract)))
		atts := f.fake.Attachments()
		require.Len(t, atts, 1)
		hi := atts[0].Interface
		assert.Empty(t, hi.SocketPath, "an abstract socket has no host path")
		assert.Equal(t, selfNetns, hi.Memif.Netns)
		assert.Equal(t, "usrsp/m-net1", hi.Memif.SocketFile)

		var r current.Result
		require.NoError(t, json.Unmarshal(f.stdout.Bytes(), &r))
		assert.Equal(t, "@usrsp/m-net1", r.Interfaces[0].SocketPath)
		data, err := contracts.DecodePodData(mustRead(t, filepath.Join(podDir(f), contracts.PodDataFileName("net1"))))
		require.NoError(t, err)
		assert.Equal(t, "@usrsp/m-net1", data.Interface.SocketPath)
		assert.Equal(t, "@usrsp/m-net1", data.DeviceInfo.Memif.Path)
		assert.NoDirExists(t, filepath.Join(f.root, "l"), "no link for a socket without a file")

		require.NoError(t, f.p.Del(f.args(t, abstract)))
		assert.Empty(t, f.fake.Attachments())
		assert.NoDirExists(t, podDir(f))
	})
	t.Run("the result reports the adapter's socket path", func(t *testing.T) {
		f := newFixture(t)
		f.p.Dialer = fakeDialer{a: reportingAdapter{engineAdapter{f.fake}, "@chosen-by-vswitch"}}
		require.NoError(t, f.p.Add(f.args(t, abstract)))
		var r current.Result
		require.NoError(t, json.Unmarshal(f.stdout.Bytes(), &r))
		assert.Equal(t, "@chosen-by-vswitch", r.Interfaces[0].SocketPath)
	})
	t.Run("GC removes a stale attachment's pod data", func(t *testing.T) {
		f := newFixture(t)
		require.NoError(t, f.p.Add(f.args(t, abstract)))
		require.FileExists(t, filepath.Join(podDir(f), contracts.PodDataFileName("net1")))
		args := f.args(t, abstract)
		args.ContainerID, args.IfName = "", ""
		require.NoError(t, f.p.GC(args))
		assert.Empty(t, f.fake.Attachments())
		assert.NoDirExists(t, podDir(f))
	})
	t.Run("missing CNI_NETNS fails before any work", func(t *testing.T) {
		f := newFixture(t)
		args := f.args(t, abstract)
		args.Netns = ""
		err := f.p.Add(args)
		assert.Equal(t, uint(4), code(err))
		assert.ErrorContains(t, err, "CNI_NETNS")
		assert.Empty(t, f.ipam.calls)
		assert.Empty(t, f.fake.Calls())
		assert.NoDirExists(t, podDir(f))
	})
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

func TestAddOverlay(t *testing.T) {
	vxlan := func(extra map[string]any) map[string]any {
		o := map[string]any{"type": "vxlan", "vni": 5001}
		for k, v := range extra {
			o[k] = v
		}
		return o
	}
	bridge := map[string]any{"engine": "vpp", "iftype": "memif", "netType": "bridge", "bridge": map[string]any{"bridgeId": 4}}
	tests := []struct {
		name    string
		patch   map[string]any
		overlay *contracts.Overlay
		mtu     int
	}{
		{"vpp bridge, default port and mtu", map[string]any{"host": bridge, "overlay": vxlan(nil)},
			&contracts.Overlay{Type: "vxlan", VNI: 5001, Port: 4789}, 1450},
		{"vpp routed, jumbo underlay", map[string]any{"overlay": vxlan(map[string]any{"port": 8472, "underlayMtu": 9000})},
			&contracts.Overlay{Type: "vxlan", VNI: 5001, Port: 8472}, 8950},
		{"explicit mtu wins", map[string]any{"host": bridge, "mtu": 1400, "overlay": vxlan(nil)},
			&contracts.Overlay{Type: "vxlan", VNI: 5001, Port: 4789}, 1400},
		{"no overlay", map[string]any{"host": bridge}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			require.NoError(t, f.p.Add(f.args(t, tt.patch)))
			atts := f.fake.Attachments()
			require.Len(t, atts, 1)
			assert.Equal(t, tt.overlay, atts[0].Interface.Overlay, "the attach request carries the overlay")
			assert.Equal(t, tt.mtu, atts[0].Interface.MTU, "and the pod MTU")

			var r current.Result
			require.NoError(t, json.Unmarshal(f.stdout.Bytes(), &r))
			assert.Equal(t, tt.mtu, r.Interfaces[0].Mtu)
			data, err := contracts.DecodePodData(mustRead(t, filepath.Join(f.root, "shared", "uid-1", contracts.PodDataFileName("net1"))))
			require.NoError(t, err)
			assert.Equal(t, tt.mtu, data.Interface.MTU, "the pod reads its MTU from the pod data")

			// CHECK sends the same overlay: it passes, and fails once the
			// network's overlay differs from what was attached.
			check := func(patch map[string]any) error {
				p := map[string]any{"prevResult": json.RawMessage(f.stdout.Bytes())}
				for k, v := range patch {
					p[k] = v
				}
				return f.p.Check(f.args(t, p))
			}
			require.NoError(t, check(tt.patch))
			changed := map[string]any{}
			for k, v := range tt.patch {
				changed[k] = v
			}
			changed["overlay"] = vxlan(map[string]any{"vni": 5002})
			assert.Equal(t, uint(101), code(check(changed)), "another vni")
			if tt.overlay != nil {
				changed["overlay"] = vxlan(map[string]any{"underlayMtu": 1600})
				delete(changed, "mtu")
				assert.Equal(t, uint(101), code(check(changed)), "another MTU")
			}
		})
	}
}

// TestCheckComparesMTU: the MTU the pod was given (an overlay's default
// here) is compared in prevResult and in the pod data too.
func TestCheckComparesMTU(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, r *current.Result, dataFile string)
		msg    string
	}{
		{"prevResult", func(_ *testing.T, r *current.Result, _ string) { r.Interfaces[0].Mtu = 1500 }, "prevResult interface \"net1\" has mtu 1500, expected 1450"},
		{"pod data", func(t *testing.T, _ *current.Result, dataFile string) {
			data, err := contracts.DecodePodData(mustRead(t, dataFile))
			require.NoError(t, err)
			data.Interface.MTU = 1500
			b, err := json.Marshal(data)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(dataFile, b, 0o640))
		}, "pod data mtu is 1500, expected 1450"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			conf := map[string]any{"overlay": map[string]any{"type": "vxlan", "vni": 7}}
			require.NoError(t, f.p.Add(f.args(t, conf)))
			var r current.Result
			require.NoError(t, json.Unmarshal(f.stdout.Bytes(), &r))
			tt.tamper(t, &r, filepath.Join(f.root, "shared", "uid-1", contracts.PodDataFileName("net1")))
			prev, err := json.Marshal(r)
			require.NoError(t, err)
			conf["prevResult"] = json.RawMessage(prev)
			err = f.p.Check(f.args(t, conf))
			assert.Equal(t, uint(101), code(err))
			assert.ErrorContains(t, err, tt.msg)
		})
	}
}
