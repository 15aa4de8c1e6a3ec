package contracts_test

import (
	"encoding/json"
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
		{name: "not json", raw: "{", code: contracts.CodeDecode, message: "attach request"},
		{name: "trailing data", raw: `{"key":{}} {}`, code: contracts.CodeDecode, message: "trailing"},
		{name: "empty container id", mutate: func(r *contracts.AttachRequest) { r.Key.ContainerID = "" }, code: contracts.CodeInvalidConfig, message: "key.containerId"},
		{name: "container id with slash", mutate: func(r *contracts.AttachRequest) { r.Key.ContainerID = "../x" }, code: contracts.CodeInvalidConfig, message: "key.containerId"},
		{name: "long ifname", mutate: func(r *contracts.AttachRequest) { r.Key.IfName = "net0123456789abc" }, code: contracts.CodeInvalidConfig, message: "key.ifName"},
		{name: "unknown iftype", mutate: func(r *contracts.AttachRequest) { r.Interface.IfType = "tap" }, code: contracts.CodeInvalidConfig, message: "interface.ifType"},
		{name: "memif without spec", mutate: func(r *contracts.AttachRequest) { r.Interface.Memif = nil }, code: contracts.CodeInvalidConfig, message: "interface.memif"},
		{name: "bad role", mutate: func(r *contracts.AttachRequest) { r.Interface.Memif.Role = "server" }, code: contracts.CodeInvalidConfig, message: "interface.memif.role"},
		{name: "bad mode", mutate: func(r *contracts.AttachRequest) { r.Interface.Memif.Mode = "l2" }, code: contracts.CodeInvalidConfig, message: "interface.memif.mode"},
		{name: "bridge without spec", mutate: func(r *contracts.AttachRequest) { r.Interface.Bridge = nil }, code: contracts.CodeInvalidConfig, message: "interface.bridge"},
		{name: "bad nettype", mutate: func(r *contracts.AttachRequest) { r.Interface.NetType = "l2" }, code: contracts.CodeInvalidConfig, message: "interface.netType"},
		{name: "long socket path", mutate: func(r *contracts.AttachRequest) { r.Interface.SocketPath = "/" + string(make([]byte, 107)) }, code: contracts.CodeInvalidConfig, message: "interface.socketPath"},
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
