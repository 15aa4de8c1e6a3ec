package cnibench_test

// Benchmarks of the contracts' wire encoding: what cni-entry and the
// adapters pay per attach besides the NATS round trip.

import (
	"encoding/json"
	"testing"

	"usrsp.dev/contracts"
)

func typicalAttachRequests() map[string]contracts.AttachRequest {
	key := contracts.AttachmentKey{ContainerID: "5a3f0c9be1d24e7f8a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f", IfName: "net1"}
	pod := contracts.PodRef{Namespace: "default", Name: "dpdk-app", UID: "5f2c1a3e-1111-2222-3333-444455556666"}
	return map[string]contracts.AttachRequest{
		"vpp-memif": {Key: key, Network: "memif-net", Netns: "/var/run/netns/cni-1234", Pod: pod,
			Interface: contracts.HostInterface{
				IfType: contracts.IfTypeMemif, NetType: contracts.NetTypeBridge,
				SocketPath: "/var/lib/cni/usrspcni/5f2c1a3e-1111-2222-3333-444455556666/memif-net1.sock",
				Memif:      &contracts.MemifSpec{Role: "master", Mode: "ethernet", Queues: 1, RingSize: 1024, BufferSize: 2048, SocketFile: "memif-net1.sock"},
				Bridge:     &contracts.BridgeSpec{ID: 4},
				IPs:        []contracts.IPConfig{{Address: "10.56.0.5/24", Gateway: "10.56.0.1"}},
			}},
		"ovs-vhostuser": {Key: key, Network: "vhost-net", Netns: "/var/run/netns/cni-1234", Pod: pod,
			Interface: contracts.HostInterface{
				IfType: contracts.IfTypeVhostUser, NetType: contracts.NetTypeBridge, MTU: 9000,
				SocketPath: "/run/usrsp/l/0123456789ab/vhostuser-net1.sock",
				Vhost:      &contracts.VhostSpec{Mode: "client", Queues: 2, SocketFile: "vhostuser-net1.sock"},
				Bridge:     &contracts.BridgeSpec{Name: "br0", VLAN: 100},
			}},
	}
}

func BenchmarkAttachRequestMarshal(b *testing.B) {
	for name, req := range typicalAttachRequests() {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(&req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeAttachRequest(b *testing.B) {
	for name, req := range typicalAttachRequests() {
		data, err := json.Marshal(&req)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := contracts.DecodeAttachRequest(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
