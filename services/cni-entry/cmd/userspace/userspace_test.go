package main_test

// These tests drive the built userspace binary the way Multus and
// container runtimes do, through libcni, with host-local IPAM, against a
// real embedded nats-server and the contracts' in-memory FakeAdapter.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	// TestMain builds host-local; importing its allocator keeps all of
	// host-local's dependencies in go.mod/go.sum for GOWORK=off builds.
	_ "github.com/containernetworking/plugins/plugins/ipam/host-local/backend/allocator"
	"github.com/containernetworking/plugins/plugins/ipam/host-local/backend/disk"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/contractstest"
	"usrsp.dev/libs/natsauth"
	"usrsp.dev/libs/natsauth/natsauthtest"
	"usrsp.dev/libs/natstest"
	"usrsp.dev/libs/testkit"
	"usrsp.dev/services/cni-entry/internal/poddata"
)

const (
	node    = "node-a"
	netName = "memif-net"
	podUID  = "5f2c1a3e-1111-2222-3333-444455556666"
	timeout = time.Second
)

// binDir holds the built userspace and host-local binaries.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(testkit.RunWithBinaries(m, &binDir,
		testkit.Binary{Name: "userspace", Pkg: "usrsp.dev/services/cni-entry/cmd/userspace"},
		testkit.Binary{Name: "host-local", Pkg: "github.com/containernetworking/plugins/plugins/ipam/host-local"}))
}

// env is one test's NATS, adapter, directories and CNI runtime.
type env struct {
	t       *testing.T
	srv     natsURL
	fake    *contractstest.FakeAdapter
	svc     micro.Service
	nc      *nats.Conn
	root    string
	cacheA  string
	cni     *libcni.CNIConfig
	ipamDir string
	netns   string // a real network namespace: ADD checks CNI_NETNS
}

type natsURL string

func newEnv(t *testing.T) *env {
	t.Helper()
	srv, nc := natstest.Connect(t)
	return newEnvOn(t, srv.ClientURL(), nc)
}

// newEnvOn serves the fake adapter on nc, a connection to the server at url.
func newEnvOn(t *testing.T, url string, nc *nats.Conn) *env {
	t.Helper()
	e := &env{t: t, srv: natsURL(url), nc: nc, root: t.TempDir(),
		fake: contractstest.NewFakeAdapter(contracts.EngineVPP)}
	e.serve()
	e.cacheA = filepath.Join(e.root, "cache")
	e.ipamDir = filepath.Join(e.root, "ipam")
	e.cni = e.runtime(e.cacheA)
	e.netns = newNetns(t)
	return e
}

// newNetns makes a network namespace for one test and removes it when the
// test ends: a named one (`ip netns add`) as root, else one held by an
// `unshare` process in a new user namespace (its /proc/<pid>/ns/net).
func newNetns(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	if os.Geteuid() == 0 {
		name := "usrsp-t-" + newContainerID(t)[:8]
		path, err := testkit.AddNetns(ctx, name)
		require.NoError(t, err)
		t.Cleanup(func() {
			if err := testkit.DelNetns(ctx, name); err != nil {
				t.Error(err)
			}
		})
		return path
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := testkit.UnshareNetns(ctx)
	if err != nil {
		t.Skipf("no network namespace for this test (not root): %v", err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n.Path
}

// runtime is a libcni runtime with its own result cache. The plugins'
// stderr (their logs) is shown only when the test fails.
func (e *env) runtime(cacheDir string) *libcni.CNIConfig {
	stderr := &testkit.Buffer{}
	e.t.Cleanup(func() {
		if e.t.Failed() {
			e.t.Logf("plugin stderr:\n%s", stderr.String())
		}
	})
	exec := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: stderr}, PluginDecoder: version.PluginDecoder{}}
	return libcni.NewCNIConfigWithCacheDir([]string{binDir}, cacheDir, exec)
}

// serve puts the fake adapter on NATS.
func (e *env) serve() {
	svc, err := e.fake.Serve(e.nc, node)
	require.NoError(e.t, err)
	e.svc = svc
	e.t.Cleanup(func() { _ = svc.Stop() })
}

func (e *env) stopAdapter() { require.NoError(e.t, e.svc.Stop()) }

func (e *env) sharedDir() string { return filepath.Join(e.root, "shared") }
func (e *env) linkDir() string   { return filepath.Join(e.root, "l") }

// confList is a one-plugin network list of version v; patch is merged into
// the plugin config.
func (e *env) confList(v string, patch map[string]any) *libcni.NetworkConfigList {
	e.t.Helper()
	plugin := map[string]any{
		"type":         "userspace",
		"capabilities": map[string]bool{"CNIDeviceInfoFile": true},
		"nodeName":     node,
		"sharedDir":    e.sharedDir(),
		"linkDir":      e.linkDir(),
		"logLevel":     "debug",
		"logFile":      filepath.Join(e.root, "log", "userspace.log"),
		"nats":         map[string]any{"url": string(e.srv), "timeout": timeout.String()},
		"host": map[string]any{
			"engine": "vpp", "iftype": "memif", "netType": "bridge",
			"memif": map[string]any{"role": "master", "mode": "ethernet"}, "bridge": map[string]any{"bridgeId": 4},
		},
		"container": map[string]any{"engine": "vpp", "iftype": "memif", "netType": "interface"},
		"ipam": map[string]any{
			"type": "host-local", "subnet": "10.10.0.0/24", "dataDir": e.ipamDir,
			"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
		},
	}
	for k, val := range patch {
		if val == nil {
			delete(plugin, k)
		} else {
			plugin[k] = val
		}
	}
	b, err := json.Marshal(map[string]any{"cniVersion": v, "name": netName, "plugins": []any{plugin}})
	require.NoError(e.t, err)
	list, err := libcni.NetworkConfFromBytes(b)
	require.NoError(e.t, err)
	return list
}

// rt is the runtime config of one attachment, as kubelet/Multus pass it.
func (e *env) rt(containerID, ifName string, uid string) *libcni.RuntimeConf {
	args := [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", "dpdk-app"}}
	if uid != "" {
		args = append(args, [2]string{"K8S_POD_UID", uid})
	}
	return &libcni.RuntimeConf{ContainerID: containerID, NetNS: e.netns, IfName: ifName, Args: args,
		CapabilityArgs: map[string]any{"CNIDeviceInfoFile": e.devInfoFile(containerID, ifName)}}
}

func (e *env) devInfoFile(containerID, ifName string) string {
	return filepath.Join(e.root, "devinfo", containerID+"-"+ifName+".json")
}

// reserved returns the addresses host-local holds for an attachment.
func (e *env) reserved(containerID, ifName string) []string {
	e.t.Helper()
	store, err := disk.New(netName, e.ipamDir)
	require.NoError(e.t, err)
	defer store.Close()
	var out []string
	for _, ip := range store.GetByID(containerID, ifName) {
		out = append(out, ip.String())
	}
	return out
}

func newContainerID(t *testing.T) string {
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// cniCode is the CNI error code of err, 0 for nil.
func cniCode(t *testing.T, err error) uint {
	t.Helper()
	if err == nil {
		return 0
	}
	var e *types.Error
	require.ErrorAs(t, err, &e, "not a CNI error: %v", err)
	return e.Code
}

func TestVersion(t *testing.T) {
	info, err := libcni.NewCNIConfig([]string{binDir}, nil).GetVersionInfo(context.Background(), "userspace")
	require.NoError(t, err)
	assert.Equal(t, []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"}, info.SupportedVersions())
}

// TestLifecycle runs ADD, CHECK, STATUS, DEL and DEL again in every spec
// version (CHECK from 0.4.0, STATUS from 1.1.0, as the spec allows).
func TestLifecycle(t *testing.T) {
	for _, v := range []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		t.Run(v, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			list := e.confList(v, nil)
			id := newContainerID(t)
			rt := e.rt(id, "net1", podUID)
			podDir := filepath.Join(e.sharedDir(), podUID)
			hostSocket := filepath.Join(podDir, "memif-net1.sock")

			res, err := e.cni.AddNetworkList(ctx, list, rt)
			require.NoError(t, err)
			assert.Equal(t, v, res.Version())
			r, err := current.NewResultFromResult(res)
			require.NoError(t, err)
			require.Len(t, r.Interfaces, 1)
			assert.Equal(t, "net1", r.Interfaces[0].Name)
			assert.Equal(t, e.netns, r.Interfaces[0].Sandbox)
			assert.Equal(t, contracts.DerivedMAC(contracts.AttachmentKey{ContainerID: id, IfName: "net1"}, contracts.SideContainer), r.Interfaces[0].Mac)
			if v >= "1.0.0" {
				assert.Equal(t, hostSocket, r.Interfaces[0].SocketPath)
			}
			require.Len(t, r.IPs, 1)
			assert.Equal(t, 0, *r.IPs[0].Interface)
			assert.Contains(t, r.IPs[0].Address.String(), "10.10.0.")
			require.Len(t, r.Routes, 1)

			atts := e.fake.Attachments()
			require.Len(t, atts, 1)
			a := atts[0]
			assert.Equal(t, contracts.AttachmentKey{ContainerID: id, IfName: "net1"}, a.Key)
			assert.Equal(t, hostSocket, a.Interface.SocketPath)
			assert.Equal(t, uint32(4), a.Interface.Bridge.ID)
			assert.Equal(t, "master", a.Interface.Memif.Role)
			assert.Equal(t, podUID, a.Pod.UID)
			assert.Equal(t, []string{r.IPs[0].Address.IP.String()}, e.reserved(id, "net1"))

			b, err := os.ReadFile(filepath.Join(podDir, contracts.PodDataFileName("net1")))
			require.NoError(t, err)
			data, err := contracts.DecodePodData(b)
			require.NoError(t, err)
			assert.Equal(t, "/var/run/usrsp/memif-net1.sock", data.Interface.SocketPath)
			assert.Equal(t, "slave", data.Interface.Memif.Role)
			assert.Equal(t, r.IPs[0].Address.String(), data.IPAM.IPs[0].Address)
			assert.Equal(t, netName, data.Network)
			assert.Equal(t, "dpdk-app", data.Pod.Name)
			require.NotNil(t, data.DeviceInfo)
			assert.Equal(t, "memif", data.DeviceInfo.Type)

			b, err = os.ReadFile(e.devInfoFile(id, "net1"))
			require.NoError(t, err)
			var devInfo contracts.DeviceInfo
			require.NoError(t, json.Unmarshal(b, &devInfo))
			assert.Equal(t, contracts.DeviceInfo{Type: "memif", Version: "1.1.0",
				Memif: &contracts.DeviceInfoMemif{Role: "slave", Path: "/var/run/usrsp/memif-net1.sock", Mode: "ethernet", MAC: r.Interfaces[0].Mac}}, devInfo)
			assert.Equal(t, r.Interfaces[0].Mac, data.Interface.MAC)

			if v >= "0.4.0" {
				require.NoError(t, e.cni.CheckNetworkList(ctx, list, rt))
			}
			if v >= "1.1.0" {
				require.NoError(t, e.cni.GetStatusNetworkList(ctx, list))
			}

			require.NoError(t, e.cni.DelNetworkList(ctx, list, rt))
			assert.Empty(t, e.fake.Attachments())
			assert.Empty(t, e.reserved(id, "net1"))
			assert.NoDirExists(t, podDir)
			assert.NoFileExists(t, e.devInfoFile(id, "net1"))

			require.NoError(t, e.cni.DelNetworkList(ctx, list, rt), "DEL twice")

			logged, err := os.ReadFile(filepath.Join(e.root, "log", "userspace.log"))
			require.NoError(t, err)
			assert.Contains(t, string(logged), `"container_id":"`+id+`"`)
			assert.Contains(t, string(logged), `"subject":"usrsp.v1.node-a.vpp.attach"`)
		})
	}
}

// TestOverlay: the overlay block crosses NATS to the adapter on ADD and
// CHECK, and the pod MTU leaves room for VXLAN on the underlay.
func TestOverlay(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	list := e.confList("1.1.0", map[string]any{"overlay": map[string]any{"type": "vxlan", "vni": 5001}})
	id := newContainerID(t)
	rt := e.rt(id, "net1", podUID)

	res, err := e.cni.AddNetworkList(ctx, list, rt)
	require.NoError(t, err)
	r, err := current.NewResultFromResult(res)
	require.NoError(t, err)
	assert.Equal(t, 1450, r.Interfaces[0].Mtu)
	atts := e.fake.Attachments()
	require.Len(t, atts, 1)
	assert.Equal(t, &contracts.Overlay{Type: "vxlan", VNI: 5001, Port: contracts.DefaultVXLANPort}, atts[0].Interface.Overlay)
	assert.Equal(t, 1450, atts[0].Interface.MTU)
	b, err := os.ReadFile(filepath.Join(e.sharedDir(), podUID, contracts.PodDataFileName("net1")))
	require.NoError(t, err)
	data, err := contracts.DecodePodData(b)
	require.NoError(t, err)
	assert.Equal(t, 1450, data.Interface.MTU)

	require.NoError(t, e.cni.CheckNetworkList(ctx, list, rt))
	other := e.confList("1.1.0", map[string]any{"overlay": map[string]any{"type": "vxlan", "vni": 5002}})
	assert.Equal(t, uint(101), cniCode(t, e.cni.CheckNetworkList(ctx, other, rt)), "another VNI")
	require.NoError(t, e.cni.DelNetworkList(ctx, list, rt))
	assert.Empty(t, e.fake.Attachments())
}

func TestDelOfNeverAdded(t *testing.T) {
	e := newEnv(t)
	for _, v := range []string{"0.3.1", "1.1.0"} {
		require.NoError(t, e.cni.DelNetworkList(context.Background(), e.confList(v, nil), e.rt(newContainerID(t), "net1", podUID)))
	}
}

func TestAddWithoutPodUIDUsesOldLayout(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	list := e.confList("1.0.0", nil)
	id := newContainerID(t)
	rt := e.rt(id, "net1", "")
	_, err := e.cni.AddNetworkList(ctx, list, rt)
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(e.sharedDir(), id[:12], contracts.PodDataFileName("net1")))
	require.NoError(t, e.cni.DelNetworkList(ctx, list, rt))
	assert.NoDirExists(t, filepath.Join(e.sharedDir(), id[:12]))
}

func TestPodVolume(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	kubelet := filepath.Join(e.root, "kubelet")
	list := e.confList("1.1.0", map[string]any{"sharedDir": nil, "podVolume": "sockets", "kubeletDir": kubelet})
	id := newContainerID(t)
	rt := e.rt(id, "net1", podUID)

	_, err := e.cni.AddNetworkList(ctx, list, rt)
	assert.Equal(t, uint(7), cniCode(t, err), "the pod has no such emptyDir yet")
	assert.Empty(t, e.reserved(id, "net1"), "undo released IPAM")

	emptyDir := filepath.Join(kubelet, "pods", podUID, "volumes", "kubernetes.io~empty-dir", "sockets")
	require.NoError(t, os.MkdirAll(emptyDir, 0o750))
	res, err := e.cni.AddNetworkList(ctx, list, rt)
	require.NoError(t, err)
	r, err := current.NewResultFromResult(res)
	require.NoError(t, err)
	link := filepath.Join(e.linkDir(), poddata.LinkName(contracts.AttachmentKey{ContainerID: id, IfName: "net1"}))
	assert.Equal(t, filepath.Join(link, "memif-net1.sock"), r.Interfaces[0].SocketPath)
	assert.LessOrEqual(t, len(r.Interfaces[0].SocketPath), contracts.MaxSocketPathLen)
	target, err := os.Readlink(link)
	require.NoError(t, err)
	assert.Equal(t, emptyDir, target)
	assert.FileExists(t, filepath.Join(emptyDir, contracts.PodDataFileName("net1")))
	require.NoError(t, e.cni.CheckNetworkList(ctx, list, rt))

	require.NoError(t, e.cni.DelNetworkList(ctx, list, rt))
	_, err = os.Lstat(link)
	assert.True(t, os.IsNotExist(err), "link removed")
	assert.NoFileExists(t, filepath.Join(emptyDir, contracts.PodDataFileName("net1")))
	assert.DirExists(t, emptyDir, "kubelet's volume is not ours")
}

// assertUndone checks that a failed ADD left nothing behind.
func (e *env) assertUndone(id, ifName string) {
	e.t.Helper()
	assert.Empty(e.t, e.reserved(id, ifName), "IPAM released")
	assert.Empty(e.t, e.fake.Attachments(), "nothing attached")
	assert.NoDirExists(e.t, filepath.Join(e.sharedDir(), podUID), "pod directory removed")
	assert.NoFileExists(e.t, e.devInfoFile(id, ifName))
}

func TestAddAttachFailureIsUndone(t *testing.T) {
	e := newEnv(t)
	id := newContainerID(t)
	e.fake.FailNext(contracts.OpAttach, contracts.Errorf(contracts.CodeVswitch, "vpp: memif socket create failed"))
	_, err := e.cni.AddNetworkList(context.Background(), e.confList("1.1.0", nil), e.rt(id, "net1", podUID))
	assert.Equal(t, uint(100), cniCode(t, err))
	assert.ErrorContains(t, err, "memif socket create failed")
	e.assertUndone(id, "net1")
	assert.Contains(t, e.fake.Calls(), contracts.OpDetach, "undo detaches")
}

func TestAdapterDown(t *testing.T) {
	e := newEnv(t)
	e.stopAdapter()
	ctx := context.Background()
	list := e.confList("1.1.0", nil)
	id := newContainerID(t)
	rt := e.rt(id, "net1", podUID)

	start := time.Now()
	_, err := e.cni.AddNetworkList(ctx, list, rt)
	assert.Equal(t, uint(11), cniCode(t, err))
	assert.ErrorContains(t, err, "no vpp adapter answers")
	assert.Less(t, time.Since(start), 2*timeout, "no responders fails fast")
	e.assertUndone(id, "net1")

	err = e.cni.GetStatusNetworkList(ctx, list)
	assert.Equal(t, uint(50), cniCode(t, err))

	err = e.cni.DelNetworkList(ctx, list, rt)
	assert.Equal(t, uint(11), cniCode(t, err), "DEL asks the runtime to retry")
}

func TestAdapterSlow(t *testing.T) {
	e := newEnv(t)
	e.stopAdapter()
	// Something takes attach requests but never answers.
	sub, err := e.nc.Subscribe(contracts.Subject(node, contracts.EngineVPP, contracts.OpAttach), func(*nats.Msg) {})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, e.nc.Flush())
	id := newContainerID(t)

	start := time.Now()
	_, err = e.cni.AddNetworkList(context.Background(), e.confList("1.1.0", nil), e.rt(id, "net1", podUID))
	elapsed := time.Since(start)
	assert.Equal(t, uint(11), cniCode(t, err))
	assert.ErrorContains(t, err, "did not answer")
	assert.GreaterOrEqual(t, elapsed, timeout)
	assert.Less(t, elapsed, 3*timeout, "bounded by nats.timeout")
	e.assertUndone(id, "net1")
}

func TestNATSDown(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// Port 1 on loopback refuses connections.
	list := e.confList("1.1.0", map[string]any{"nats": map[string]any{"url": "nats://127.0.0.1:1", "timeout": timeout.String()}})
	id := newContainerID(t)
	rt := e.rt(id, "net1", podUID)

	start := time.Now()
	_, err := e.cni.AddNetworkList(ctx, list, rt)
	assert.Equal(t, uint(11), cniCode(t, err))
	assert.ErrorContains(t, err, "cannot connect to NATS")
	assert.Less(t, time.Since(start), 2*timeout)
	e.assertUndone(id, "net1")

	assert.Equal(t, uint(50), cniCode(t, e.cni.GetStatusNetworkList(ctx, list)))
	assert.Equal(t, uint(11), cniCode(t, e.cni.DelNetworkList(ctx, list, rt)))
}

func TestDelWithAdapterDownStillReleases(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	list := e.confList("1.1.0", nil)
	id := newContainerID(t)
	rt := e.rt(id, "net1", podUID)
	_, err := e.cni.AddNetworkList(ctx, list, rt)
	require.NoError(t, err)
	e.stopAdapter()

	assert.Equal(t, uint(11), cniCode(t, e.cni.DelNetworkList(ctx, list, rt)))
	assert.Empty(t, e.reserved(id, "net1"), "IPAM released anyway")
	assert.NoDirExists(t, filepath.Join(e.sharedDir(), podUID), "files removed anyway")

	e.serve()
	require.NoError(t, e.cni.DelNetworkList(ctx, list, rt), "the retry succeeds")
	assert.Empty(t, e.fake.Attachments())
}

func TestCheckMismatch(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (*env, *libcni.NetworkConfigList, *libcni.RuntimeConf, string) {
		e := newEnv(t)
		list := e.confList("1.1.0", nil)
		id := newContainerID(t)
		rt := e.rt(id, "net1", podUID)
		_, err := e.cni.AddNetworkList(ctx, list, rt)
		require.NoError(t, err)
		require.NoError(t, e.cni.CheckNetworkList(ctx, list, rt))
		return e, list, rt, id
	}
	t.Run("adapter config differs", func(t *testing.T) {
		e, list, rt, _ := setup(t)
		a := e.fake.Attachments()[0]
		a.Interface.Memif.Queues = 8
		e.fake.Put(a)
		err := e.cni.CheckNetworkList(ctx, list, rt)
		assert.Equal(t, uint(101), cniCode(t, err))
	})
	t.Run("attachment gone from the adapter", func(t *testing.T) {
		e, list, rt, id := setup(t)
		_, err := e.fake.Detach(ctx, &contracts.DetachRequest{Key: contracts.AttachmentKey{ContainerID: id, IfName: "net1"}})
		require.NoError(t, err)
		err = e.cni.CheckNetworkList(ctx, list, rt)
		assert.Equal(t, uint(3), cniCode(t, err))
		assert.ErrorContains(t, err, "not found")
	})
	t.Run("pod data file removed", func(t *testing.T) {
		e, list, rt, _ := setup(t)
		require.NoError(t, os.Remove(filepath.Join(e.sharedDir(), podUID, contracts.PodDataFileName("net1"))))
		err := e.cni.CheckNetworkList(ctx, list, rt)
		assert.Equal(t, uint(101), cniCode(t, err))
		assert.ErrorContains(t, err, "pod data")
	})
	t.Run("config changed since ADD", func(t *testing.T) {
		e, _, rt, _ := setup(t)
		changed := e.confList("1.1.0", map[string]any{"mtu": 9000})
		assert.Equal(t, uint(101), cniCode(t, e.cni.CheckNetworkList(ctx, changed, rt)))
	})
}

func TestGC(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	list := e.confList("1.1.0", nil)
	keep, stale := newContainerID(t), newContainerID(t)
	for _, id := range []string{keep, stale} {
		_, err := e.cni.AddNetworkList(ctx, list, e.rt(id, "net1", ""))
		require.NoError(t, err)
	}
	// Another network's attachment is never touched.
	e.fake.Put(contracts.Attachment{Key: contracts.AttachmentKey{ContainerID: "other", IfName: "net1"}, Network: "other-net"})

	// A runtime that lost its cache (fresh cache dir): only the plugin's
	// GC can find the stale attachment.
	runtime := e.runtime(filepath.Join(e.root, "cache-b"))
	err := runtime.GCNetworkList(ctx, list, &libcni.GCArgs{ValidAttachments: []types.GCAttachment{{ContainerID: keep, IfName: "net1"}}})
	require.NoError(t, err)

	var keys []string
	for _, a := range e.fake.Attachments() {
		keys = append(keys, a.Key.String())
	}
	assert.ElementsMatch(t, []string{keep + "/net1", "other/net1"}, keys)
	assert.Empty(t, e.reserved(stale, "net1"), "stale IPAM released")
	assert.Len(t, e.reserved(keep, "net1"), 1)
	assert.NoDirExists(t, filepath.Join(e.sharedDir(), stale[:12]))
	assert.FileExists(t, filepath.Join(e.sharedDir(), keep[:12], contracts.PodDataFileName("net1")))

	t.Run("adapter down", func(t *testing.T) {
		e.stopAdapter()
		err := runtime.GCNetworkList(ctx, list, &libcni.GCArgs{})
		assert.Equal(t, uint(11), cniCode(t, err))
	})
}

func TestStatus(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	list := e.confList("1.1.0", nil)
	require.NoError(t, e.cni.GetStatusNetworkList(ctx, list))

	e.fake.SetNotReady("vpp API socket is gone")
	err := e.cni.GetStatusNetworkList(ctx, list)
	assert.Equal(t, uint(50), cniCode(t, err))
	assert.ErrorContains(t, err, "vpp API socket is gone")

	e.fake.SetNotReady("")
	require.NoError(t, e.cni.GetStatusNetworkList(ctx, list))
	e.stopAdapter()
	assert.Equal(t, uint(50), cniCode(t, e.cni.GetStatusNetworkList(ctx, list)))
}

func TestInvalidConfigIsRejectedBeforeAnyWork(t *testing.T) {
	e := newEnv(t)
	id := newContainerID(t)
	list := e.confList("1.1.0", map[string]any{"host": map[string]any{
		"engine": "vpp", "iftype": "memif", "netType": "bridge", "bridge": map[string]any{"bridgeId": 4, "vlanId": 5000}}})
	_, err := e.cni.AddNetworkList(context.Background(), list, e.rt(id, "net1", podUID))
	assert.Equal(t, uint(7), cniCode(t, err))
	assert.ErrorContains(t, err, "host.bridge.vlanId: 5000 is outside 1-4094")
	assert.Empty(t, e.reserved(id, "net1"))
	assert.Empty(t, e.fake.Calls())
}

// TestStdoutCarriesOnlyTheResult runs the binary by hand at debug level:
// stdout must be exactly one JSON result, the logs go to stderr.
func TestStdoutCarriesOnlyTheResult(t *testing.T) {
	e := newEnv(t)
	list := e.confList("1.0.0", map[string]any{"logFile": nil})
	conf, err := libcni.InjectConf(list.Plugins[0], map[string]any{"name": netName, "cniVersion": "1.0.0"})
	require.NoError(t, err)
	id := newContainerID(t)
	cmd := exec.Command(filepath.Join(binDir, "userspace"))
	cmd.Env = append(os.Environ(), "CNI_COMMAND=ADD", "CNI_CONTAINERID="+id, "CNI_NETNS="+e.netns,
		"CNI_IFNAME=net1", "CNI_PATH="+binDir, "CNI_ARGS=IgnoreUnknown=1;K8S_POD_UID="+podUID)
	cmd.Stdin = strings.NewReader(string(conf.Bytes))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())

	var r current.Result
	dec := json.NewDecoder(strings.NewReader(stdout.String()))
	require.NoError(t, dec.Decode(&r))
	assert.False(t, dec.More(), "nothing after the result")
	assert.Equal(t, "net1", r.Interfaces[0].Name)
	assert.Contains(t, stderr.String(), `"level":"debug"`)
	assert.Contains(t, stderr.String(), `"ifname":"net1"`)
}

func TestErrorsAreCNIErrors(t *testing.T) {
	e := newEnv(t)
	_, err := e.cni.AddNetworkList(context.Background(), e.confList("1.1.0", map[string]any{"podVolume": "x"}), e.rt(newContainerID(t), "net1", podUID))
	var cniErr *types.Error
	require.True(t, errors.As(err, &cniErr))
	assert.Equal(t, uint(7), cniErr.Code)
	assert.Contains(t, cniErr.Msg, "podVolume and sharedDir are exclusive")
}

// TestAbstractSocket runs ADD, CHECK, DEL and DEL again for a memif on an
// abstract socket in the pod's network namespace: the adapter gets the
// netns and no host path, the pod data (still in the pod's directory) and
// device info say "@<name>", and no link is made even with podVolume.
func TestAbstractSocket(t *testing.T) {
	host := map[string]any{
		"engine": "vpp", "iftype": "memif", "netType": "bridge", "bridge": map[string]any{"bridgeId": 4},
		"memif": map[string]any{"role": "master", "mode": "ethernet", "socketType": "abstract"},
	}
	const podSocket = "@memif-net1.sock"
	tests := []struct {
		name  string
		setup func(e *env) (patch map[string]any, podDir string)
		ours  bool // the pod directory is cni-entry's, removed by DEL
	}{
		{"sharedDir", func(e *env) (map[string]any, string) {
			return map[string]any{"host": host}, filepath.Join(e.sharedDir(), podUID)
		}, true},
		{"podVolume", func(e *env) (map[string]any, string) {
			kubelet := filepath.Join(e.root, "kubelet")
			emptyDir := filepath.Join(kubelet, "pods", podUID, "volumes", "kubernetes.io~empty-dir", "sockets")
			require.NoError(e.t, os.MkdirAll(emptyDir, 0o750), "kubelet makes the emptyDir")
			return map[string]any{"host": host, "sharedDir": nil, "podVolume": "sockets", "kubeletDir": kubelet}, emptyDir
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			patch, podDir := tt.setup(e)
			list := e.confList("1.1.0", patch)
			id := newContainerID(t)
			rt := e.rt(id, "net1", podUID)

			res, err := e.cni.AddNetworkList(ctx, list, rt)
			require.NoError(t, err)
			r, err := current.NewResultFromResult(res)
			require.NoError(t, err)
			assert.Equal(t, podSocket, r.Interfaces[0].SocketPath)

			atts := e.fake.Attachments()
			require.Len(t, atts, 1)
			assert.Empty(t, atts[0].Interface.SocketPath, "no host socket path")
			assert.Equal(t, e.netns, atts[0].Interface.Memif.Netns)
			assert.Equal(t, "memif-net1.sock", atts[0].Interface.Memif.SocketFile)

			data, err := contracts.DecodePodData(readFile(t, filepath.Join(podDir, contracts.PodDataFileName("net1"))))
			require.NoError(t, err)
			assert.Equal(t, podSocket, data.Interface.SocketPath)
			assert.Equal(t, "slave", data.Interface.Memif.Role)
			var devInfo contracts.DeviceInfo
			require.NoError(t, json.Unmarshal(readFile(t, e.devInfoFile(id, "net1")), &devInfo))
			assert.Equal(t, podSocket, devInfo.Memif.Path)
			assert.NoDirExists(t, e.linkDir(), "no link: there is no socket file")

			require.NoError(t, e.cni.CheckNetworkList(ctx, list, rt))

			require.NoError(t, e.cni.DelNetworkList(ctx, list, rt))
			assert.Empty(t, e.fake.Attachments())
			assert.Empty(t, e.reserved(id, "net1"))
			assert.NoFileExists(t, filepath.Join(podDir, contracts.PodDataFileName("net1")))
			if tt.ours {
				assert.NoDirExists(t, podDir)
			} else {
				assert.DirExists(t, podDir, "kubelet's volume is not ours")
			}
			assert.NoFileExists(t, e.devInfoFile(id, "net1"))
			require.NoError(t, e.cni.DelNetworkList(ctx, list, rt), "DEL twice")
		})
	}
	t.Run("ovs-dpdk is rejected before any work", func(t *testing.T) {
		e := newEnv(t)
		id := newContainerID(t)
		list := e.confList("1.1.0", map[string]any{"host": map[string]any{"engine": "ovs-dpdk", "iftype": "memif", "netType": "bridge",
			"memif": map[string]any{"socketType": "abstract"}}})
		_, err := e.cni.AddNetworkList(context.Background(), list, e.rt(id, "net1", podUID))
		assert.Equal(t, uint(2), cniCode(t, err))
		assert.ErrorContains(t, err, "host.memif.socketType")
		assert.Empty(t, e.reserved(id, "net1"))
		assert.Empty(t, e.fake.Calls())
	})
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// TestAddNeedsANetworkNamespace: ADD into a CNI_NETNS that does not exist
// or is no network namespace fails naming it, and does nothing (no IPAM,
// no adapter call, no directory); DEL still works.
func TestAddNeedsANetworkNamespace(t *testing.T) {
	for _, name := range []string{"missing", "file", "uts namespace"} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			netns := map[string]string{"missing": filepath.Join(e.root, "gone"), "file": filepath.Join(e.root, "file"), "uts namespace": "/proc/self/ns/uts"}[name]
			require.NoError(t, os.WriteFile(filepath.Join(e.root, "file"), nil, 0o600))
			list := e.confList("1.1.0", nil)
			id := newContainerID(t)
			rt := e.rt(id, "net1", podUID)
			rt.NetNS = netns
			_, err := e.cni.AddNetworkList(context.Background(), list, rt)
			assert.Equal(t, uint(4), cniCode(t, err))
			assert.ErrorContains(t, err, "CNI_NETNS "+netns)
			assert.Empty(t, e.reserved(id, "net1"))
			assert.Empty(t, e.fake.Calls())
			assert.NoDirExists(t, filepath.Join(e.sharedDir(), podUID))
			assert.NoFileExists(t, e.devInfoFile(id, "net1"))
			rt.NetNS = ""
			require.NoError(t, e.cni.DelNetworkList(context.Background(), list, rt), "DEL without CNI_NETNS")
		})
	}
}

// TestSecuredNATS runs ADD and DEL against a nats-server secured as
// deployed (libs/natsauth: JWT identities, TLS with client certificates):
// the adapter serves with adapter@<node> credentials, the binary connects
// with the cni credentials and TLS files its NetConf names.
func TestSecuredNATS(t *testing.T) {
	auth := natsauthtest.New(t)
	srv, tls := auth.StartTLSServer(t)
	nc, err := auth.Connect(t, srv.ClientURL(), tls, natsauth.Identity{Role: natsauth.RoleAdapter, Name: node}, contracts.RoleAdapter)
	require.NoError(t, err)
	e := newEnvOn(t, srv.ClientURL(), nc)

	natsConf := func(cniNode string) map[string]any {
		return map[string]any{
			"url": srv.ClientURL(), "timeout": "5s",
			"credentialsFile": auth.Creds(t, natsauth.Identity{Role: natsauth.RoleCNI, Name: cniNode}),
			"tls":             map[string]string{"caFile": tls.CAFile, "certFile": tls.CertFile, "keyFile": tls.KeyFile},
		}
	}
	ctx := context.Background()

	t.Run("cni credentials of this node: ADD and DEL", func(t *testing.T) {
		list := e.confList("1.0.0", map[string]any{"nats": natsConf(node)})
		rt := e.rt(newContainerID(t), "net1", podUID)
		_, err := e.cni.AddNetworkList(ctx, list, rt)
		require.NoError(t, err)
		require.Len(t, e.fake.Attachments(), 1)
		require.NoError(t, e.cni.DelNetworkList(ctx, list, rt))
		assert.Empty(t, e.fake.Attachments())
	})

	t.Run("another node's cni credentials are refused at once", func(t *testing.T) {
		list := e.confList("1.0.0", map[string]any{"nats": natsConf("node-b")})
		rt := e.rt(newContainerID(t), "net1", podUID)
		start := time.Now()
		_, err := e.cni.AddNetworkList(ctx, list, rt)
		require.Error(t, err)
		assert.Equal(t, uint(contracts.CodeInvalidConfig), cniCode(t, err), "%v", err)
		assert.Contains(t, err.Error(), "nats.credentialsFile")
		assert.Less(t, time.Since(start), 3*time.Second, "not the 5s request timeout")
		assert.Empty(t, e.fake.Attachments())
		assert.Empty(t, e.reserved(rt.ContainerID, "net1"), "the IPAM reservation is undone")
	})
}
