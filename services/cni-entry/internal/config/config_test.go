package config_test

import (
	"encoding/json"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/services/cni-entry/internal/config"
)

// Real configs of the old Userspace CNI (its README examples).
const oldVPPMemifBridge = `{
	"cniVersion": "0.3.1",
	"type": "userspace",
	"name": "memif-network",
	"host": {
		"engine": "vpp",
		"iftype": "memif",
		"netType": "bridge",
		"memif": {"role": "master", "mode": "ethernet"},
		"bridge": {"bridgeName": "4"}
	},
	"container": {
		"engine": "vpp",
		"iftype": "memif",
		"netType": "interface",
		"memif": {"role": "slave", "mode": "ethernet"}
	},
	"ipam": {
		"type": "host-local",
		"subnet": "192.168.210.0/24",
		"rangeStart": "192.168.210.20",
		"rangeEnd": "192.168.210.40",
		"routes": [{"dst": "0.0.0.0/0"}],
		"gateway": "192.168.210.1"
	}
}`

const oldOVSVhostBridge = `{
	"cniVersion": "0.3.1",
	"type": "userspace",
	"name": "userspace-ovs-net-1",
	"kubeconfig": "/etc/cni/net.d/multus.d/multus.kubeconfig",
	"logFile": "/var/log/userspace-ovs-net-1-cni.log",
	"logLevel": "debug",
	"host": {
		"engine": "ovs-dpdk",
		"iftype": "vhostuser",
		"netType": "bridge",
		"vhost": {"mode": "client"},
		"bridge": {"bridgeName": "br-4"}
	},
	"container": {
		"engine": "ovs-dpdk",
		"iftype": "vhostuser",
		"netType": "interface",
		"vhost": {"mode": "server"}
	},
	"ipam": {"type": "host-local", "subnet": "10.56.217.0/24", "gateway": "10.56.217.1"}
}`

// A minimal valid config; tests patch it with JSON merge semantics.
const minimal = `{
	"cniVersion": "1.1.0", "name": "net", "type": "userspace",
	"host": {"engine": "vpp", "iftype": "memif", "netType": "bridge", "bridge": {"bridgeId": 7}}
}`

var env = config.Env{IfName: "net1", Args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=pod;K8S_POD_UID=5f2c1a3e-1111-2222-3333-444455556666"}

// patch deep-merges a JSON object into base (null deletes a key).
func patch(t testing.TB, base, p string) []byte {
	t.Helper()
	var b, q map[string]any
	require.NoError(t, json.Unmarshal([]byte(base), &b))
	require.NoError(t, json.Unmarshal([]byte(p), &q))
	merge(b, q)
	out, err := json.Marshal(b)
	require.NoError(t, err)
	return out
}

func merge(dst, src map[string]any) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

func TestLoadNetConfRejects(t *testing.T) {
	long := strings.Repeat("x", 60)
	tests := []struct {
		name  string
		patch string // merged into minimal
		env   *config.Env
		code  uint
		field string // must appear in the message
	}{
		{"unknown engine", `{"host":{"engine":"dpdk"}}`, nil, 7, "host.engine"},
		{"missing engine", `{"host":{"engine":null}}`, nil, 7, "host.engine"},
		{"unknown iftype", `{"host":{"iftype":"tap"}}`, nil, 7, "host.iftype"},
		{"missing iftype", `{"host":{"iftype":null}}`, nil, 7, "host.iftype"},
		{"unknown netType", `{"host":{"netType":"l2"}}`, nil, 7, "host.netType"},
		{"missing netType", `{"host":{"netType":null}}`, nil, 7, "host.netType"},
		{"unknown memif role", `{"host":{"memif":{"role":"leader"}}}`, nil, 7, "host.memif.role"},
		{"unknown memif mode", `{"host":{"memif":{"mode":"l3"}}}`, nil, 7, "host.memif.mode"},
		{"unknown vhost mode", `{"host":{"iftype":"vhostuser","vhost":{"mode":"both"}}}`, nil, 7, "host.vhost.mode"},
		{"memif block with vhostuser", `{"host":{"iftype":"vhostuser","memif":{"role":"master"}}}`, nil, 7, "host.memif"},
		{"vhost block with memif", `{"host":{"vhost":{"mode":"client"}}}`, nil, 7, "host.vhost"},
		{"container iftype differs", `{"container":{"iftype":"vhostuser"}}`, nil, 7, "container.iftype"},
		{"memif block with veth", `{"host":{"iftype":"veth","memif":{"role":"master"}}}`, nil, 7, "host.memif"},
		{"container vhost block with veth", `{"host":{"iftype":"veth"},"container":{"vhost":{}}}`, nil, 7, "container.memif and container.vhost"},
		{"host.mac with veth", `{"host":{"iftype":"veth","mac":"02:00:00:00:00:01"}}`, nil, 2, "host.mac"},
		{"container iftype veth for memif", `{"container":{"iftype":"veth"}}`, nil, 7, "container.iftype"},
		{"container unknown engine", `{"container":{"engine":"snabb"}}`, nil, 7, "container.engine"},
		{"container unknown netType", `{"container":{"netType":"mesh"}}`, nil, 7, "container.netType"},
		{"same memif role", `{"host":{"memif":{"role":"master"}},"container":{"memif":{"role":"server"}}}`, nil, 7, "container.memif.role"},
		{"memif mode differs", `{"container":{"memif":{"mode":"ip"}}}`, nil, 7, "container.memif.mode"},
		{"memif socketfile differs", `{"container":{"memif":{"socketfile":"other.sock"}}}`, nil, 7, "container.memif.socketfile"},
		{"same vhost mode", `{"host":{"engine":"ovs-dpdk","iftype":"vhostuser","bridge":null},"container":{"vhost":{"mode":"client"}}}`, nil, 7, "container.vhost.mode"},
		{"bridge netType without bridge", `{"host":{"bridge":null}}`, nil, 7, "host.bridge.bridgeId"},
		{"non-numeric vpp bridgeId", `{"host":{"bridge":{"bridgeId":"blue"}}}`, nil, 7, "host.bridge.bridgeId"},
		{"non-numeric vpp bridgeName", `{"host":{"bridge":{"bridgeId":null,"bridgeName":"br-4"}}}`, nil, 7, "host.bridge.bridgeName"},
		{"vpp bridgeId zero", `{"host":{"bridge":{"bridgeId":0}}}`, nil, 7, "host.bridge.bridgeId"},
		{"vpp bridgeId and name disagree", `{"host":{"bridge":{"bridgeId":7,"bridgeName":"8"}}}`, nil, 7, "host.bridge.bridgeName"},
		{"ovs bridgeId unsupported", `{"host":{"engine":"ovs-dpdk","iftype":"vhostuser"}}`, nil, 2, "host.bridge.bridgeId"},
		{"ovs bad bridge name", `{"host":{"engine":"ovs-dpdk","iftype":"vhostuser","bridge":{"bridgeId":null,"bridgeName":"br/0"}}}`, nil, 7, "host.bridge.bridgeName"},
		{"vlan too big", `{"host":{"bridge":{"vlanId":5000}}}`, nil, 7, "host.bridge.vlanId: 5000 is outside 1-4094"},
		{"vlan negative", `{"host":{"bridge":{"vlanId":-1}}}`, nil, 7, "host.bridge.vlanId"},
		{"container vlan too big", `{"container":{"bridge":{"vlanId":4095}}}`, nil, 7, "container.bridge.vlanId"},
		{"vlan on vpp without a bridge domain", `{"host":{"netType":"interface","bridge":{"bridgeId":null,"vlanId":100}}}`, nil, 7, "host.bridge.vlanId 100 needs netType bridge"},
		{"vlan on vpp netType none", `{"host":{"netType":"none","bridge":{"vlanId":100}}}`, nil, 7, "host.bridge.vlanId"},
		{"socketfile dotdot", `{"host":{"memif":{"socketfile":"../../etc/x.sock"}}}`, nil, 7, "host.memif.socketfile"},
		{"socketfile absolute", `{"host":{"memif":{"socketfile":"/tmp/x.sock"}}}`, nil, 7, "host.memif.socketfile"},
		{"vhost socketfile with slash", `{"host":{"iftype":"vhostuser","vhost":{"socketfile":"a/b.sock"}}}`, nil, 7, "host.vhost.socketfile"},
		{"socketfile too long", `{"host":{"memif":{"socketfile":"` + long + long + `.sock"}}}`, nil, 7, "host.memif.socketfile"},
		{"socket path too long even via link", `{"linkDir":"/` + long + `/` + long[:30] + `","host":{"memif":{"socketfile":"` + long[:50] + `.sock"}}}`, nil, 7, "host.memif.socketfile"},
		{"pod socket path too long", `{"podMountPath":"/` + long + `","host":{"memif":{"socketfile":"` + long[:50] + `.sock"}}}`, nil, 7, "host.memif.socketfile"},
		{"abstract socket on ovs-dpdk", `{"host":{"engine":"ovs-dpdk","bridge":null,"memif":{"socketType":"abstract"}}}`, nil, 2, "host.memif.socketType"},
		{"unknown socketType", `{"host":{"memif":{"socketType":"tcp"}}}`, nil, 7, "host.memif.socketType"},
		{"abstract name with a character VPP stops at", `{"host":{"memif":{"socketType":"abstract","socketfile":"pod,netns_name=/x"}}}`, nil, 7, "host.memif.socketfile"},
		{"abstract name with a space", `{"host":{"memif":{"socketType":"abstract","socketfile":"my sock"}}}`, nil, 7, "host.memif.socketfile"},
		{"abstract name too long", `{"host":{"memif":{"socketType":"abstract","socketfile":"` + strings.Repeat("a", config.MaxAbstractNameLen+1) + `"}}}`, nil, 7, "host.memif.socketfile"},
		{"default abstract name from an odd ifName", `{"host":{"memif":{"socketType":"abstract"}}}`, &config.Env{IfName: "net@1"}, 7, "host.memif.socketfile"},
		{"container socketType differs", `{"host":{"memif":{"socketType":"abstract"}},"container":{"memif":{"socketType":"file"}}}`, nil, 7, "container.memif.socketType"},
		{"container unknown socketType", `{"container":{"memif":{"socketType":"shm"}}}`, nil, 7, "container.memif.socketType"},
		{"sharedDir relative", `{"sharedDir":"var/lib/usrsp"}`, nil, 7, "sharedDir"},
		{"sharedDir escapes", `{"sharedDir":"/var/lib/../../etc"}`, nil, 7, "sharedDir"},
		{"linkDir relative", `{"linkDir":"run/l"}`, nil, 7, "linkDir"},
		{"podMountPath relative", `{"podMountPath":"run"}`, nil, 7, "podMountPath"},
		{"logFile relative", `{"logFile":"cni.log"}`, nil, 7, "logFile"},
		{"credentials relative", `{"nats":{"credentialsFile":"x.creds"}}`, nil, 7, "nats.credentialsFile"},
		{"tls caFile relative", `{"nats":{"tls":{"caFile":"ca.pem"}}}`, nil, 7, "nats.tls.caFile"},
		{"tls certFile relative", `{"nats":{"tls":{"certFile":"c.pem","keyFile":"/k.pem"}}}`, nil, 7, "nats.tls.certFile"},
		{"tls keyFile with dotdot", `{"nats":{"tls":{"certFile":"/c.pem","keyFile":"/etc/../k.pem"}}}`, nil, 7, "nats.tls.keyFile"},
		{"tls certFile without keyFile", `{"nats":{"tls":{"caFile":"/ca.pem","certFile":"/c.pem"}}}`, nil, 7, "nats.tls.certFile and nats.tls.keyFile"},
		{"tls keyFile without certFile", `{"nats":{"tls":{"keyFile":"/k.pem"}}}`, nil, 7, "nats.tls.certFile and nats.tls.keyFile"},
		{"device info file relative", `{"runtimeConfig":{"CNIDeviceInfoFile":"dev.json"}}`, nil, 7, "runtimeConfig.CNIDeviceInfoFile"},
		{"podVolume and sharedDir", `{"podVolume":"sockets","sharedDir":"/var/lib/x"}`, nil, 7, "podVolume"},
		{"podVolume not a name", `{"podVolume":"Sock_ets"}`, nil, 7, "podVolume"},
		{"bad host mac", `{"host":{"mac":"02:00:00:00:00"}}`, nil, 7, "host.mac"},
		{"multicast container mac", `{"container":{"mac":"01:00:5e:00:00:01"}}`, nil, 7, "container.mac"},
		{"mtu too small", `{"mtu":60}`, nil, 7, "mtu"},
		{"mtu too big", `{"mtu":70000}`, nil, 7, "mtu"},
		{"queues zero after default", `{"host":{"memif":{"queues":-1}}}`, nil, 7, "host.memif.queues"},
		// Limits come from contracts/limits, at their edge values.
		{"queues too many", `{"host":{"memif":{"queues":256}}}`, nil, 7, "host.memif.queues: 256 is outside 1-255"},
		{"vpp ringSize below 8", `{"host":{"memif":{"ringSize":4}}}`, nil, 7, "host.memif.ringSize: 4 is not a power of two in 8-16384"},
		{"ringSize above 2^14", `{"host":{"engine":"ovs-dpdk","bridge":null,"memif":{"ringSize":32768}}}`, nil, 7, "host.memif.ringSize: 32768 is not a power of two in 2-16384"},
		{"container ringSize of its engine", `{"container":{"engine":"vpp","memif":{"ringSize":2}}}`, nil, 7, "container.memif.ringSize"},
		{"memif secret of 24 bytes", `{"host":{"memif":{"secret":"012345678901234567890123"}}}`, nil, 7, "host.memif.secret: 24 bytes is more than the memif limit of 23"},
		{"vpp bridgeId above 2^24-1", `{"host":{"bridge":{"bridgeId":16777216}}}`, nil, 7, "host.bridge.bridgeId 16777216 is not a VPP bridge domain id (1-16777215)"},
		{"ovs-dpdk mtu above 9702", `{"host":{"engine":"ovs-dpdk","bridge":null},"mtu":9703}`, nil, 7, "mtu: 9703 is outside 68-9702"},
		{"vhost queues above 64", `{"host":{"iftype":"vhostuser","vhost":{"queues":65}}}`, nil, 7, "host.vhost.queues: 65 is outside 1-64"},
		{"ringSize not power of two", `{"host":{"memif":{"ringSize":1000}}}`, nil, 7, "host.memif.ringSize"},
		{"ringSize too big", `{"host":{"memif":{"ringSize":65536}}}`, nil, 7, "host.memif.ringSize"},
		{"ringSize one", `{"host":{"memif":{"ringSize":1}}}`, nil, 7, "host.memif.ringSize"},
		{"bufferSize too small", `{"host":{"memif":{"bufferSize":64}}}`, nil, 7, "host.memif.bufferSize"},
		{"container bufferSize too big", `{"container":{"memif":{"bufferSize":70000}}}`, nil, 7, "container.memif.bufferSize"},
		{"memif secret too long", `{"host":{"memif":{"secret":"0123456789012345678901234"}}}`, nil, 7, "host.memif.secret"},
		{"vhost queues", `{"host":{"iftype":"vhostuser","vhost":{"queues":100}}}`, nil, 7, "host.vhost.queues"},
		{"vhost group", `{"host":{"iftype":"vhostuser","vhost":{"group":"-bad group"}}}`, nil, 7, "host.vhost.group"},
		{"podAccess without group", `{"podAccess":{"mode":"0660"}}`, nil, 7, "podAccess.group is required"},
		{"podAccess bad group", `{"podAccess":{"group":"a b"}}`, nil, 7, "podAccess.group"},
		{"podAccess mode not octal", `{"podAccess":{"group":"g","mode":"rw-rw----"}}`, nil, 7, "podAccess.mode"},
		{"podAccess mode with execute", `{"podAccess":{"group":"g","mode":"0770"}}`, nil, 7, "podAccess.mode 0770"},
		{"podAccess mode setgid", `{"podAccess":{"group":"g","mode":"2660"}}`, nil, 7, "podAccess.mode"},
		{"podAccess mode without owner", `{"podAccess":{"group":"g","mode":"0060"}}`, nil, 7, "podAccess.mode"},
		{"vhost group differs from podAccess", `{"host":{"iftype":"vhostuser","vhost":{"group":"a"}},"podAccess":{"group":"b"}}`, nil, 7, "host.vhost.group \"a\" differs from podAccess.group \"b\""},
		{"nats url scheme", `{"nats":{"url":"http://127.0.0.1:4222"}}`, nil, 7, "nats.url"},
		{"nats url no host", `{"nats":{"url":"nats://"}}`, nil, 7, "nats.url"},
		{"nats timeout not a duration", `{"nats":{"timeout":"3"}}`, nil, 7, "nats.timeout"},
		{"nats timeout too long", `{"nats":{"timeout":"1h"}}`, nil, 7, "nats.timeout"},
		{"log level unknown", `{"logLevel":"loud"}`, nil, 7, "logLevel"},
		{"ipam type is a path", `{"ipam":{"type":"../../bin/sh"}}`, nil, 7, "ipam.type"},
		{"name missing", `{"name":null}`, nil, 7, "name"},
		{"memif role wrong type", `{"host":{"memif":{"role":3}}}`, nil, 6, "role"},
		// overlay (issue 13)
		{"overlay type missing", `{"overlay":{"vni":5001}}`, nil, 7, `overlay.type "" is not "vxlan"`},
		{"overlay type geneve", `{"overlay":{"type":"geneve","vni":5001}}`, nil, 7, "overlay.type"},
		{"overlay vni missing", `{"overlay":{"type":"vxlan"}}`, nil, 7, "overlay.vni 0 is not in 1-16777215"},
		{"overlay vni negative", `{"overlay":{"type":"vxlan","vni":-1}}`, nil, 7, "overlay.vni"},
		{"overlay vni above 2^24-1", `{"overlay":{"type":"vxlan","vni":16777216}}`, nil, 7, "overlay.vni 16777216"},
		{"overlay vni not a number", `{"overlay":{"type":"vxlan","vni":"5001"}}`, nil, 6, "vni"},
		{"overlay port above 65535", `{"overlay":{"type":"vxlan","vni":1,"port":65536}}`, nil, 7, "overlay.port 65536"},
		{"overlay port negative", `{"overlay":{"type":"vxlan","vni":1,"port":-1}}`, nil, 7, "overlay.port"},
		{"overlay underlayMtu leaves less than 68", `{"overlay":{"type":"vxlan","vni":1,"underlayMtu":117}}`, nil, 7, "overlay.underlayMtu 117 is not in 118-65535"},
		{"overlay underlayMtu too big", `{"overlay":{"type":"vxlan","vni":1,"underlayMtu":65536}}`, nil, 7, "overlay.underlayMtu"},
		{"overlay underlayMtu negative", `{"overlay":{"type":"vxlan","vni":1,"underlayMtu":-1500}}`, nil, 7, "overlay.underlayMtu"},
		{"overlay on netType none", `{"host":{"netType":"none"},"overlay":{"type":"vxlan","vni":1}}`, nil, 7, `overlay needs host.netType bridge or interface, not "none"`},
		{"overlay on ovs-dpdk netType interface", `{"host":{"engine":"ovs-dpdk","netType":"interface","bridge":null},"ipam":{"type":"host-local"},"overlay":{"type":"vxlan","vni":1}}`, nil, 2, "OVS-DPDK overlays are bridge-only"},
		{"routed overlay without ipam", `{"host":{"netType":"interface","bridge":null},"overlay":{"type":"vxlan","vni":1}}`, nil, 7, "needs ipam.type"},
		{"overlay on a vpp bridge without bridge id", `{"host":{"bridge":null},"overlay":{"type":"vxlan","vni":1}}`, nil, 7, "host.bridge.bridgeId is required"},
		{"mtu above the default underlay less overhead", `{"mtu":1451,"overlay":{"type":"vxlan","vni":1}}`, nil, 7, "mtu 1451 is more than overlay.underlayMtu 1500 minus the 50 bytes of VXLAN overhead (1450)"},
		{"mtu above underlayMtu less overhead", `{"mtu":9000,"overlay":{"type":"vxlan","vni":1,"underlayMtu":9000}}`, nil, 7, "overlay.underlayMtu 9000"},
		{"mtu still within the engine's limit", `{"mtu":60,"overlay":{"type":"vxlan","vni":1}}`, nil, 7, "mtu: 60 is outside 68-65535"},
		{"derived mtu above ovs-dpdk's limit", `{"host":{"engine":"ovs-dpdk","bridge":null},"overlay":{"type":"vxlan","vni":1,"underlayMtu":9800}}`, nil, 7, "mtu (overlay.underlayMtu 9800 - 50): 9750 is outside 68-9702"},
		{"bad CNI_ARGS", `{}`, &config.Env{IfName: "net1", Args: "K8S_POD_UID"}, 4, "CNI_ARGS"},
		{"pod uid with slash", `{}`, &config.Env{IfName: "net1", Args: "K8S_POD_UID=../../etc"}, 4, "K8S_POD_UID"},
	}
	require.GreaterOrEqual(t, len(tests), 30)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := env
			if tt.env != nil {
				e = *tt.env
			}
			_, err := config.LoadNetConf(patch(t, minimal, tt.patch), e)
			var cniErr *types.Error
			require.ErrorAs(t, err, &cniErr)
			assert.Equal(t, tt.code, cniErr.Code, cniErr.Msg)
			assert.Contains(t, cniErr.Msg, tt.field)
		})
	}
}

func TestLoadNetConfAcceptsOldConfigs(t *testing.T) {
	t.Run("vpp memif bridge", func(t *testing.T) {
		c, err := config.LoadNetConf([]byte(oldVPPMemifBridge), env)
		require.NoError(t, err)
		assert.Equal(t, uint32(4), c.Host.Bridge.ID, "numeric bridgeName is the bridge domain")
		assert.Equal(t, "master", c.Host.Memif.Role)
		assert.Equal(t, "slave", c.Container.Memif.Role)
		assert.Equal(t, "memif-net1.sock", c.SocketFile())
		assert.Equal(t, "interface", c.Container.NetType)
		assert.Equal(t, "host-local", c.IPAM.Type)
		assert.Equal(t, config.DefaultSharedDir, c.SharedDir)
		assert.Equal(t, "5f2c1a3e-1111-2222-3333-444455556666", c.Pod.UID)
		assert.Equal(t, "pod", c.Pod.Name)
	})
	t.Run("ovs vhostuser bridge", func(t *testing.T) {
		c, err := config.LoadNetConf([]byte(oldOVSVhostBridge), env)
		require.NoError(t, err)
		assert.Equal(t, "br-4", c.Host.Bridge.BridgeName)
		assert.Equal(t, "client", c.Host.Vhost.Mode)
		assert.Equal(t, "server", c.Container.Vhost.Mode)
		assert.Equal(t, "vhostuser-net1.sock", c.SocketFile())
		assert.Equal(t, "debug", c.LogLevel)
	})
}

func TestLoadNetConfAccepts(t *testing.T) {
	tests := []struct {
		name  string
		patch string
		check func(t *testing.T, c *config.NetConf)
	}{
		{"veth: no socket, the container side follows", `{"host":{"iftype":"veth"},"container":{"mac":"02:00:00:00:00:09"}}`, func(t *testing.T, c *config.NetConf) {
			assert.True(t, c.Veth())
			assert.Equal(t, "veth", c.Container.IfType)
			assert.Empty(t, c.SocketFile())
			assert.Nil(t, c.Host.Memif)
			assert.Equal(t, "02:00:00:00:00:09", c.Container.MAC)
		}},
		{"veth on ovs-dpdk", `{"host":{"engine":"ovs-dpdk","iftype":"veth","bridge":{"bridgeId":null,"bridgeName":"br-k"}}}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, "br-k", c.Host.Bridge.BridgeName)
		}},
		{"no podAccess", `{}`, func(t *testing.T, c *config.NetConf) { assert.Nil(t, c.PodAccess) }},
		{"podAccess default mode", `{"podAccess":{"group":"usrsp"}}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, "usrsp", c.PodAccess.Group)
			assert.Equal(t, fs.FileMode(0o660), c.PodAccess.Perm)
		}},
		{"podAccess mode", `{"podAccess":{"group":"1234","mode":"666"}}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, fs.FileMode(0o666), c.PodAccess.Perm)
		}},
		{"host.vhost.group is podAccess.group", `{"host":{"iftype":"vhostuser","vhost":{"group":"hugetlbfs"}}}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, "hugetlbfs", c.PodAccess.Group)
			assert.Equal(t, fs.FileMode(0o660), c.PodAccess.Perm)
		}},
		{"host.vhost.group and the same podAccess.group", `{"host":{"iftype":"vhostuser","vhost":{"group":"g"}},"podAccess":{"group":"g","mode":"0640"}}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, fs.FileMode(0o640), c.PodAccess.Perm)
		}},
		{"host.vhost.group fills podAccess.group", `{"host":{"iftype":"vhostuser","vhost":{"group":"g"}},"podAccess":{"mode":"0666"}}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, "g", c.PodAccess.Group)
		}},
		{"bridgeId as numeric string", `{"host":{"bridge":{"bridgeId":"12"}}}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, uint32(12), c.Host.Bridge.ID)
		}},
		{"bridgeId and equal bridgeName", `{"host":{"bridge":{"bridgeId":9,"bridgeName":"9"}}}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, uint32(9), c.Host.Bridge.ID)
		}},
		{"memif server/client aliases", `{"host":{"memif":{"role":"client"}},"container":{"memif":{"role":"server"}}}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, "slave", c.Host.Memif.Role)
			assert.Equal(t, "master", c.Container.Memif.Role)
		}},
		{"interface netType needs no bridge", `{"host":{"netType":"interface","bridge":null}}`, func(t *testing.T, c *config.NetConf) {
			assert.Nil(t, c.Host.Bridge)
		}},
		{"ovs default bridge", `{"host":{"engine":"ovs-dpdk","iftype":"vhostuser","netType":"interface","bridge":null}}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, config.DefaultOVSBridge, c.Host.Bridge.BridgeName)
			assert.Equal(t, "client", c.Host.Vhost.Mode, "OVS plugs dpdkvhostuserclient")
			assert.Equal(t, "server", c.Container.Vhost.Mode)
		}},
		{"vpp vhost defaults to server", `{"host":{"iftype":"vhostuser"}}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, "server", c.Host.Vhost.Mode)
			assert.Equal(t, "client", c.Container.Vhost.Mode)
		}},
		{"podVolume clears default sharedDir", `{"podVolume":"sockets"}`, func(t *testing.T, c *config.NetConf) {
			assert.Empty(t, c.SharedDir)
			assert.True(t, c.UsesPodVolume())
		}},
		{"nats settings", `{"nats":{"url":"nats://a:4222,tls://b:4222","timeout":"750ms"}}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, 750*time.Millisecond, c.Timeout())
		}},
		{"nats tls", `{"nats":{"url":"tls://127.0.0.1:4222","credentialsFile":"/etc/usrsp/nats/cni.creds","tls":{"caFile":"/etc/usrsp/nats//ca.pem","certFile":"/c.pem","keyFile":"/k.pem"}}}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, contracts.TLSFiles{CAFile: "/etc/usrsp/nats/ca.pem", CertFile: "/c.pem", KeyFile: "/k.pem"}, c.NATS.TLS)
		}},
		{"trailing slash sharedDir", `{"sharedDir":"/usr/local/var/run/openvswitch/"}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, "/usr/local/var/run/openvswitch", c.SharedDir)
		}},
		{"old verbose level", `{"logLevel":"verbose"}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, "trace", c.LogLevel)
		}},
		{"abstract socket on vpp", `{"host":{"memif":{"socketType":"abstract"}}}`, func(t *testing.T, c *config.NetConf) {
			assert.True(t, c.AbstractSocket())
			assert.Equal(t, "memif-net1.sock", c.SocketFile(), "the default name")
			assert.Equal(t, config.SocketTypeAbstract, c.Container.Memif.SocketType, "the container side inherits it")
		}},
		{"abstract name may contain '/' and skips the path checks", `{"podMountPath":"/` + strings.Repeat("p", 90) + `","linkDir":"/` + strings.Repeat("l", 90) + `",` +
			`"host":{"memif":{"socketType":"abstract","socketfile":"usrsp/` + strings.Repeat("n", config.MaxAbstractNameLen-6) + `"}}}`, func(t *testing.T, c *config.NetConf) {
			assert.Len(t, c.SocketFile(), config.MaxAbstractNameLen)
		}},
		{"explicit file socketType", `{"host":{"memif":{"socketType":"file"}},"container":{"memif":{"socketType":"file"}}}`, func(t *testing.T, c *config.NetConf) {
			assert.False(t, c.AbstractSocket())
		}},
		{"vlan and mac", `{"host":{"bridge":{"vlanId":4094},"mac":"02:00:00:00:00:01"},"mtu":9000}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, 4094, c.Host.Bridge.VlanID)
			assert.Equal(t, 9000, c.MTU)
		}},
		{"limits at their largest", `{"host":{"bridge":{"bridgeId":16777215,"vlanId":4094},"memif":{"queues":255,"ringSize":16384,"bufferSize":65535,"secret":"01234567890123456789012"}},"mtu":65535}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, uint32(16777215), c.Host.Bridge.ID)
			assert.Equal(t, 255, c.Container.Memif.Queues)
			assert.Len(t, c.Container.Memif.Secret, 23)
		}},
		{"limits at their smallest", `{"host":{"engine":"ovs-dpdk","bridge":{"bridgeId":null,"vlanId":1},"memif":{"queues":1,"ringSize":2,"bufferSize":128}},"container":{"engine":"ovs-dpdk"},"mtu":68}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, 2, c.Host.Memif.RingSize)
			assert.Equal(t, 68, c.MTU)
		}},
		{"ovs-dpdk mtu 9702", `{"host":{"engine":"ovs-dpdk","bridge":null},"mtu":9702}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, 9702, c.MTU)
		}},
		{"overlay defaults: port 4789, underlay 1500, pod mtu 1450", `{"overlay":{"type":"vxlan","vni":5001}}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, config.Overlay{Type: "vxlan", VNI: 5001, Port: contracts.DefaultVXLANPort, UnderlayMTU: config.DefaultUnderlayMTU}, *c.Overlay)
			assert.Equal(t, 1450, c.MTU)
			assert.Equal(t, &contracts.Overlay{Type: "vxlan", VNI: 5001, Port: 4789}, c.ContractsOverlay())
		}},
		{"overlay underlayMtu sets the pod mtu", `{"overlay":{"type":"vxlan","vni":16777215,"port":8472,"underlayMtu":9000}}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, 8950, c.MTU)
			assert.Equal(t, &contracts.Overlay{Type: "vxlan", VNI: 16777215, Port: 8472}, c.ContractsOverlay())
		}},
		{"explicit mtu below the overlay's wins", `{"mtu":1400,"overlay":{"type":"vxlan","vni":1}}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, 1400, c.MTU)
		}},
		{"explicit mtu at the overlay's edge", `{"mtu":8950,"overlay":{"type":"vxlan","vni":1,"underlayMtu":9000}}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, 8950, c.MTU)
		}},
		{"smallest underlay", `{"overlay":{"type":"vxlan","vni":1,"underlayMtu":118}}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, 68, c.MTU)
		}},
		{"routed overlay on vpp", `{"host":{"netType":"interface","bridge":null},"ipam":{"type":"host-local"},"overlay":{"type":"vxlan","vni":2}}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, 1450, c.MTU)
		}},
		{"overlay on an ovs-dpdk bridge", `{"host":{"engine":"ovs-dpdk","iftype":"vhostuser","bridge":{"bridgeId":null,"bridgeName":"br-ov"}},"overlay":{"type":"vxlan","vni":3,"underlayMtu":9702}}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, 9652, c.MTU)
		}},
		{"no overlay: no mtu default", `{}`, func(t *testing.T, c *config.NetConf) {
			assert.Nil(t, c.Overlay)
			assert.Nil(t, c.ContractsOverlay())
			assert.Zero(t, c.MTU)
		}},
		// The same vlanId means the same on both engines: an access port.
		{"vlan on vpp", `{"host":{"bridge":{"bridgeId":4,"vlanId":100}}}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, 100, c.Host.Bridge.VlanID)
			assert.Equal(t, uint32(4), c.Host.Bridge.ID)
		}},
		{"vlan on ovs-dpdk", `{"host":{"engine":"ovs-dpdk","bridge":{"bridgeId":null,"bridgeName":"br-usrsp","vlanId":100}}}`, func(t *testing.T, c *config.NetConf) {
			assert.Equal(t, 100, c.Host.Bridge.VlanID)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.LoadNetConf(patch(t, minimal, tt.patch), env)
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

func TestDefaults(t *testing.T) {
	c, err := config.LoadNetConf([]byte(minimal), env)
	require.NoError(t, err)
	h, ct := c.Host.Memif, c.Container.Memif
	assert.Equal(t, config.Memif{Role: "master", Mode: "ethernet", SocketFile: "memif-net1.sock", SocketType: "file", Queues: 1, RingSize: 1024, BufferSize: 2048}, *h)
	assert.Equal(t, config.Memif{Role: "slave", Mode: "ethernet", SocketFile: "memif-net1.sock", SocketType: "file", Queues: 1, RingSize: 1024, BufferSize: 2048}, *ct)
	assert.Equal(t, "vpp", c.Container.Engine)
	assert.Equal(t, "memif", c.Container.IfType)
	assert.Equal(t, "bridge", c.Container.NetType)
	assert.Equal(t, config.DefaultNATSURL, c.NATS.URL)
	assert.Equal(t, config.DefaultNATSTimeout, c.Timeout())
	assert.Equal(t, config.DefaultLinkDir, c.LinkDir)
	assert.Equal(t, config.DefaultPodMountPath, c.PodMountPath)
	assert.Equal(t, config.DefaultKubeletDir, c.KubeletDir)

	t.Run("container follows a non-default host", func(t *testing.T) {
		c, err := config.LoadNetConf(patch(t, minimal, `{"host":{"memif":{"role":"slave","mode":"ip","queues":4,"ringSize":4096,"id":3,"secret":"s"}}}`), env)
		require.NoError(t, err)
		assert.Equal(t, config.Memif{Role: "master", Mode: "ip", SocketFile: "memif-net1.sock", SocketType: "file", ID: 3, Queues: 4, RingSize: 4096, BufferSize: 2048, Secret: "s"}, *c.Container.Memif)
	})
	t.Run("vhost queues follow", func(t *testing.T) {
		c, err := config.LoadNetConf(patch(t, minimal, `{"host":{"iftype":"vhostuser","vhost":{"queues":2,"socketfile":"vh.sock"}}}`), env)
		require.NoError(t, err)
		assert.Equal(t, config.Vhost{Mode: "client", Queues: 2, SocketFile: "vh.sock"}, *c.Container.Vhost)
	})
	t.Run("no ifname leaves socketfile to the attachment", func(t *testing.T) {
		c, err := config.LoadNetConf([]byte(minimal), config.Env{})
		require.NoError(t, err)
		assert.Empty(t, c.SocketFile())
	})
}

func TestPrevResult(t *testing.T) {
	conf := patch(t, minimal, `{"cniVersion":"0.4.0","prevResult":{"cniVersion":"0.4.0","interfaces":[{"name":"net1","sandbox":"/ns"}],"ips":[{"version":"4","address":"10.1.1.5/24","interface":0}]}}`)
	c, err := config.LoadNetConf(conf, env)
	require.NoError(t, err)
	require.NotNil(t, c.Result)
	assert.Equal(t, "10.1.1.5/24", c.Result.IPs[0].Address.String())
}

func TestResolvePodAccess(t *testing.T) {
	load := func(t *testing.T, access string) *config.NetConf {
		t.Helper()
		c, err := config.LoadNetConf([]byte(`{"cniVersion":"1.1.0","name":"n","host":{"engine":"vpp","iftype":"memif","netType":"none"},"podAccess":`+access+`}`), config.Env{IfName: "net1"})
		require.NoError(t, err)
		return c
	}
	got, err := config.ResolvePodAccess(nil)
	require.NoError(t, err)
	assert.Nil(t, got)

	got, err = config.ResolvePodAccess(load(t, `{"group":"4321","mode":"0666"}`).PodAccess)
	require.NoError(t, err)
	assert.Equal(t, &contracts.PodAccess{GID: 4321, Mode: 0o666}, got)

	got, err = config.ResolvePodAccess(load(t, `{"group":"root"}`).PodAccess) // a name, looked up on this host
	require.NoError(t, err)
	assert.Equal(t, &contracts.PodAccess{GID: 0, Mode: 0o660}, got)

	_, err = config.ResolvePodAccess(load(t, `{"group":"no-such-group-usrsp"}`).PodAccess)
	require.Error(t, err)
	assert.Equal(t, uint(7), err.(*types.Error).Code)
	assert.Contains(t, err.Error(), `podAccess.group "no-such-group-usrsp" is not a group on this host`)

	_, err = config.ResolvePodAccess(load(t, `{"group":"4294967295"}`).PodAccess)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "gid 4294967295")
}
