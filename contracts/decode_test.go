package contracts_test

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
)

func validAttach() contracts.AttachRequest {
	return contracts.AttachRequest{
		Key:     contracts.AttachmentKey{ContainerID: "abc123", IfName: "net1"},
		Network: "memif-net",
		Interface: contracts.HostInterface{
			IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeBridge,
			SocketPath: "/run/usrsp/l/0123456789ab/memif-net1.sock",
			Memif:      &contracts.MemifSpec{Role: "master", Mode: "ethernet", Queues: 1, RingSize: 1024, BufferSize: 2048},
			Bridge:     &contracts.BridgeSpec{ID: 4},
		},
	}
}

func TestDecodeAttachRequest(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*contracts.AttachRequest)
		raw     string // used instead of the mutated request when set
		code    contracts.Code
		message string
	}{
		{name: "valid", mutate: func(*contracts.AttachRequest) {}},
		{name: "vhost", mutate: func(r *contracts.AttachRequest) {
			r.Interface.IfType, r.Interface.Memif = contracts.IfTypeVhostUser, nil
			r.Interface.Vhost = &contracts.VhostSpec{Mode: "client", Queues: 1}
		}},
		{name: "veth", mutate: func(r *contracts.AttachRequest) {
			r.Interface.IfType, r.Interface.Memif, r.Interface.SocketPath = contracts.IfTypeVeth, nil, ""
			r.Interface.Veth = &contracts.VethSpec{HostIfName: contracts.HostVethName(r.Key)}
		}},
		{name: "veth without host name", mutate: func(r *contracts.AttachRequest) {
			r.Interface.IfType, r.Interface.Memif, r.Interface.SocketPath = contracts.IfTypeVeth, nil, ""
		}, code: contracts.CodeInvalidConfig, message: "interface.veth.hostIfName"},
		{name: "veth with a socket", mutate: func(r *contracts.AttachRequest) {
			r.Interface.IfType, r.Interface.Memif = contracts.IfTypeVeth, nil
			r.Interface.Veth = &contracts.VethSpec{HostIfName: "usv0"}
		}, code: contracts.CodeInvalidConfig, message: "interface.socketPath"},
		{name: "veth spec on memif", mutate: func(r *contracts.AttachRequest) {
			r.Interface.Veth = &contracts.VethSpec{HostIfName: "usv0"}
		}, code: contracts.CodeInvalidConfig, message: "interface.veth"},
		{name: "overlay", mutate: func(r *contracts.AttachRequest) {
			r.Interface.NetType, r.Interface.Bridge = contracts.NetTypeBridge, &contracts.BridgeSpec{ID: 7}
			r.Interface.Overlay = &contracts.Overlay{Type: "vxlan", VNI: 5001}
		}},
		{name: "overlay vni 0", mutate: func(r *contracts.AttachRequest) {
			r.Interface.NetType, r.Interface.Bridge = contracts.NetTypeBridge, &contracts.BridgeSpec{ID: 7}
			r.Interface.Overlay = &contracts.Overlay{Type: "vxlan"}
		}, code: contracts.CodeInvalidConfig, message: "interface.overlay.vni"},
		{name: "overlay vni past 24 bits", mutate: func(r *contracts.AttachRequest) {
			r.Interface.NetType, r.Interface.Bridge = contracts.NetTypeBridge, &contracts.BridgeSpec{ID: 7}
			r.Interface.Overlay = &contracts.Overlay{Type: "vxlan", VNI: 1 << 24}
		}, code: contracts.CodeInvalidConfig, message: "interface.overlay.vni"},
		{name: "overlay geneve", mutate: func(r *contracts.AttachRequest) {
			r.Interface.NetType, r.Interface.Bridge = contracts.NetTypeBridge, &contracts.BridgeSpec{ID: 7}
			r.Interface.Overlay = &contracts.Overlay{Type: "geneve", VNI: 1}
		}, code: contracts.CodeInvalidConfig, message: "interface.overlay.type"},
		{name: "overlay on netType none", mutate: func(r *contracts.AttachRequest) {
			r.Interface.NetType, r.Interface.Bridge = contracts.NetTypeNone, nil
			r.Interface.Overlay = &contracts.Overlay{Type: "vxlan", VNI: 1}
		}, code: contracts.CodeInvalidConfig, message: "interface.overlay needs netType"},
		{name: "not json", raw: "{", code: contracts.CodeDecode, message: "attach request"},
		{name: "trailing data", raw: `{"key":{}} {}`, code: contracts.CodeDecode, message: "trailing"},
		{name: "empty container id", mutate: func(r *contracts.AttachRequest) { r.Key.ContainerID = "" }, code: contracts.CodeInvalidConfig, message: "key.containerId"},
		{name: "container id with slash", mutate: func(r *contracts.AttachRequest) { r.Key.ContainerID = "../x" }, code: contracts.CodeInvalidConfig, message: "key.containerId"},
		{name: "long ifname", mutate: func(r *contracts.AttachRequest) { r.Key.IfName = "net0123456789abc" }, code: contracts.CodeInvalidConfig, message: "key.ifName"},
		{name: "unknown iftype", mutate: func(r *contracts.AttachRequest) { r.Interface.IfType = "tap" }, code: contracts.CodeInvalidConfig, message: "interface.ifType"},
		{name: "memif without spec", mutate: func(r *contracts.AttachRequest) { r.Interface.Memif = nil }, code: contracts.CodeInvalidConfig, message: "interface.memif"},
		{name: "bad role", mutate: func(r *contracts.AttachRequest) { r.Interface.Memif.Role = "server" }, code: contracts.CodeInvalidConfig, message: "interface.memif.role"},
		// limits.Wire at its edges; 0 leaves a value to the adapter.
		{name: "memif defaults", mutate: func(r *contracts.AttachRequest) {
			*r.Interface.Memif = contracts.MemifSpec{Role: "master", Mode: "ethernet"}
		}},
		{name: "memif at the limits", mutate: func(r *contracts.AttachRequest) {
			m := r.Interface.Memif
			m.Queues, m.RingSize, m.BufferSize, m.Secret = 255, 16384, 65535, "01234567890123456789012"
			r.Interface.MTU, r.Interface.Bridge.VLAN = 65535, 4094
		}},
		{name: "secret of 24 bytes", mutate: func(r *contracts.AttachRequest) { r.Interface.Memif.Secret = "012345678901234567890123" }, code: contracts.CodeInvalidConfig, message: "interface.memif.secret: 24 bytes"},
		{name: "256 queues", mutate: func(r *contracts.AttachRequest) { r.Interface.Memif.Queues = 256 }, code: contracts.CodeInvalidConfig, message: "interface.memif.queues: 256 is outside 1-255"},
		{name: "negative queues", mutate: func(r *contracts.AttachRequest) { r.Interface.Memif.Queues = -1 }, code: contracts.CodeInvalidConfig, message: "interface.memif.queues"},
		{name: "ring 2^15", mutate: func(r *contracts.AttachRequest) { r.Interface.Memif.RingSize = 1 << 15 }, code: contracts.CodeInvalidConfig, message: "interface.memif.ringSize"},
		{name: "ring not a power of two", mutate: func(r *contracts.AttachRequest) { r.Interface.Memif.RingSize = 1000 }, code: contracts.CodeInvalidConfig, message: "interface.memif.ringSize"},
		{name: "buffer 127", mutate: func(r *contracts.AttachRequest) { r.Interface.Memif.BufferSize = 127 }, code: contracts.CodeInvalidConfig, message: "interface.memif.bufferSize"},
		{name: "mtu 67", mutate: func(r *contracts.AttachRequest) { r.Interface.MTU = 67 }, code: contracts.CodeInvalidConfig, message: "interface.mtu: 67"},
		{name: "vlan 4095", mutate: func(r *contracts.AttachRequest) { r.Interface.Bridge.VLAN = 4095 }, code: contracts.CodeInvalidConfig, message: "interface.bridge.vlan: 4095"},
		{name: "vhost queues 65", mutate: func(r *contracts.AttachRequest) {
			r.Interface.IfType, r.Interface.Memif = contracts.IfTypeVhostUser, nil
			r.Interface.Vhost = &contracts.VhostSpec{Mode: "client", Queues: 65}
		}, code: contracts.CodeInvalidConfig, message: "interface.vhost.queues"},
		{name: "bad mode", mutate: func(r *contracts.AttachRequest) { r.Interface.Memif.Mode = "l2" }, code: contracts.CodeInvalidConfig, message: "interface.memif.mode"},
		{name: "bridge without spec", mutate: func(r *contracts.AttachRequest) { r.Interface.Bridge = nil }, code: contracts.CodeInvalidConfig, message: "interface.bridge"},
		{name: "bad nettype", mutate: func(r *contracts.AttachRequest) { r.Interface.NetType = "l2" }, code: contracts.CodeInvalidConfig, message: "interface.netType"},
		{name: "long socket path", mutate: func(r *contracts.AttachRequest) { r.Interface.SocketPath = "/" + string(make([]byte, 107)) }, code: contracts.CodeInvalidConfig, message: "interface.socketPath"},
		{name: "pod access", mutate: func(r *contracts.AttachRequest) {
			r.Interface.PodAccess = &contracts.PodAccess{GID: 65534, Mode: 0o660}
		}},
		{name: "pod access negative gid", mutate: func(r *contracts.AttachRequest) {
			r.Interface.PodAccess = &contracts.PodAccess{GID: -1, Mode: 0o660}
		}, code: contracts.CodeInvalidConfig, message: "interface.podAccess.gid -1"},
		{name: "pod access gid (uid_t)-1", mutate: func(r *contracts.AttachRequest) {
			r.Interface.PodAccess = &contracts.PodAccess{GID: 1<<32 - 1, Mode: 0o660}
		}, code: contracts.CodeInvalidConfig, message: "interface.podAccess.gid"},
		{name: "pod access setuid", mutate: func(r *contracts.AttachRequest) {
			r.Interface.PodAccess = &contracts.PodAccess{GID: 1, Mode: 0o4660}
		}, code: contracts.CodeInvalidConfig, message: "interface.podAccess.mode"},
		{name: "pod access execute", mutate: func(r *contracts.AttachRequest) {
			r.Interface.PodAccess = &contracts.PodAccess{GID: 1, Mode: 0o670}
		}, code: contracts.CodeInvalidConfig, message: "interface.podAccess.mode 0670"},
		{name: "pod access without owner rw", mutate: func(r *contracts.AttachRequest) {
			r.Interface.PodAccess = &contracts.PodAccess{GID: 1, Mode: 0o066}
		}, code: contracts.CodeInvalidConfig, message: "interface.podAccess.mode"},
		{name: "pod access file type bits", raw: `{"key":{"containerId":"abc","ifName":"net1"},"interface":{"ifType":"veth","netType":"none","veth":{"hostIfName":"usv0"},"podAccess":{"gid":1,"mode":2147484080}}}`,
			code: contracts.CodeInvalidConfig, message: "interface.podAccess.mode"},
		{name: "vhost bad mode", mutate: func(r *contracts.AttachRequest) {
			r.Interface.IfType, r.Interface.Memif = contracts.IfTypeVhostUser, nil
			r.Interface.Vhost = &contracts.VhostSpec{Mode: "master"}
		}, code: contracts.CodeInvalidConfig, message: "interface.vhost.mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.raw)
			if tt.raw == "" {
				r := validAttach()
				tt.mutate(&r)
				var err error
				raw, err = json.Marshal(r)
				require.NoError(t, err)
			}
			got, err := contracts.DecodeAttachRequest(raw)
			if tt.code == 0 {
				require.NoError(t, err)
				assert.Equal(t, "net1", got.Key.IfName)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tt.code, contracts.CodeOf(err))
			assert.Contains(t, err.Error(), tt.message)
		})
	}
}

func TestDecodeGCRequest(t *testing.T) {
	_, err := contracts.DecodeGCRequest([]byte(`{"valid":[]}`))
	assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err))
	_, err = contracts.DecodeGCRequest([]byte(`{"network":"n","valid":[{"containerId":"","ifName":"net1"}]}`))
	assert.ErrorContains(t, err, "valid[0]")
	r, err := contracts.DecodeGCRequest([]byte(`{"network":"n","valid":[{"containerId":"c1","ifName":"net1"}]}`))
	require.NoError(t, err)
	assert.Len(t, r.Valid, 1)
}

func TestEmptyBodies(t *testing.T) {
	_, err := contracts.DecodeStatusRequest(nil)
	assert.NoError(t, err)
	_, err = contracts.DecodeListRequest([]byte("  "))
	assert.NoError(t, err)
	_, err = contracts.DecodeDetachRequest(nil)
	assert.Equal(t, contracts.CodeDecode, contracts.CodeOf(err))
}

func TestValidNames(t *testing.T) {
	for id, ok := range map[string]bool{"abc": true, "a.b-c_d": true, "-abc": false, "": false, "a b": false, "ä": false} {
		assert.Equal(t, ok, contracts.ValidContainerID(id), id)
	}
	for name, ok := range map[string]bool{"net1": true, "eth0.100": true, "..": false, "a/b": false, "a:b": false, "0123456789abcdef": false} {
		assert.Equal(t, ok, contracts.ValidIfName(name), name)
	}
}

func TestPodDataRoundTrip(t *testing.T) {
	ci := contracts.ContainerInterface{
		IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeInterface, SocketPath: "/var/run/usrsp/memif-net1.sock",
		Memif: &contracts.MemifSpec{Role: "slave", Mode: "ethernet", Queues: 2},
	}
	in := contracts.PodData{Version: contracts.PodDataVersion, ContainerID: "c1", IfName: "net1", Network: "n",
		HostEngine: contracts.EngineOVSDPDK, Interface: ci, DeviceInfo: contracts.NewDeviceInfo(ci),
		IPAM: &contracts.IPAMResult{IPs: []contracts.IPConfig{{Address: "10.0.0.2/24", Gateway: "10.0.0.1"}}}}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	out, err := contracts.DecodePodData(b)
	require.NoError(t, err)
	assert.Equal(t, in, *out)
	assert.Equal(t, "memif", out.DeviceInfo.Type)
	assert.Equal(t, "slave", out.DeviceInfo.Memif.Role)
	assert.Equal(t, "usrsp-net1.json", contracts.PodDataFileName("net1"))

	_, err = contracts.DecodePodData([]byte(`{"version":"usrsp/v0"}`))
	assert.ErrorContains(t, err, "version")
}

func TestNewDeviceInfoVhost(t *testing.T) {
	di := contracts.NewDeviceInfo(contracts.ContainerInterface{IfType: contracts.IfTypeVhostUser, SocketPath: "/s",
		Vhost: &contracts.VhostSpec{Mode: "server"}})
	require.NotNil(t, di)
	b, err := json.Marshal(di)
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"vhost-user","version":"1.1.0","vhost-user":{"mode":"server","path":"/s"}}`, string(b))
	assert.Nil(t, contracts.NewDeviceInfo(contracts.ContainerInterface{IfType: contracts.IfTypeMemif}))
}

// Every operation refuses a body over MaxRequestBytes before decoding it,
// and a GC that names a full node's pods still fits.
func TestRequestSizeLimit(t *testing.T) {
	huge := []byte(`{"network":"` + strings.Repeat("a", contracts.MaxRequestBytes) + `"}`)
	for _, spec := range contracts.OpSpecs() {
		_, err := spec.Decode(huge)
		require.Error(t, err, spec.Op)
		assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err), spec.Op)
		assert.Contains(t, err.Error(), "more than", spec.Op)
	}
	gc := contracts.GCRequest{Network: "net"}
	for i := range 1000 {
		gc.Valid = append(gc.Valid, contracts.AttachmentKey{ContainerID: fmt.Sprintf("%064x", i), IfName: "net1"})
	}
	b, err := json.Marshal(gc)
	require.NoError(t, err)
	require.Less(t, len(b), contracts.MaxRequestBytes)
	for _, spec := range contracts.OpSpecs() {
		if spec.Op == contracts.OpGC {
			_, err := spec.Decode(b)
			require.NoError(t, err)
		}
	}
}

func TestPodAccessModes(t *testing.T) {
	tests := []struct {
		mode              fs.FileMode
		socket, file, dir fs.FileMode
	}{
		{mode: 0o660, socket: 0o660, file: 0o640, dir: fs.ModeSetgid | 0o770},
		{mode: 0o666, socket: 0o666, file: 0o644, dir: fs.ModeSetgid | 0o777},
		{mode: 0o640, socket: 0o640, file: 0o640, dir: fs.ModeSetgid | 0o750},
		{mode: 0o600, socket: 0o600, file: 0o600, dir: fs.ModeSetgid | 0o700},
		{mode: 0o602, socket: 0o602, file: 0o600, dir: fs.ModeSetgid | 0o703},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%#o", uint32(tt.mode)), func(t *testing.T) {
			a := contracts.PodAccess{GID: 100, Mode: tt.mode}
			require.NoError(t, a.Check("podAccess"))
			assert.Equal(t, tt.socket, a.SocketMode())
			assert.Equal(t, tt.file, a.FileMode())
			assert.Equal(t, tt.dir, a.DirMode())
		})
	}
}
