package config_test

import (
	"testing"

	"usrsp.dev/services/cni-entry/internal/config"
)

// Typical configs as Multus passes them on ADD: runtimeConfig injected,
// IPAM present, Kubernetes CNI_ARGS set.
var benchConfigs = map[string]string{
	"vpp-memif": `{
		"cniVersion": "1.0.0", "name": "memif-net", "type": "userspace",
		"nodeName": "worker-1", "logFile": "/var/log/usrsp/userspace.log",
		"nats": {"url": "nats://127.0.0.1:4222", "timeout": "3s"},
		"host": {"engine": "vpp", "iftype": "memif", "netType": "bridge",
			"memif": {"role": "master", "mode": "ethernet", "queues": 2, "ringSize": 2048}, "bridge": {"bridgeId": 4}},
		"container": {"engine": "vpp", "iftype": "memif", "netType": "interface"},
		"ipam": {"type": "host-local", "subnet": "10.56.0.0/24", "routes": [{"dst": "0.0.0.0/0"}]},
		"runtimeConfig": {"CNIDeviceInfoFile": "/var/run/k8s.cni.cncf.io/devinfo/dp/memif-net-net1.json"}
	}`,
	"ovs-vhostuser": `{
		"cniVersion": "1.0.0", "name": "vhost-net", "type": "userspace",
		"podVolume": "usrsp", "mtu": 9000,
		"host": {"engine": "ovs-dpdk", "iftype": "vhostuser", "netType": "bridge",
			"vhost": {"mode": "client", "queues": 2}, "bridge": {"bridgeName": "br0", "vlanId": 100}},
		"container": {"engine": "ovs-dpdk", "iftype": "vhostuser", "netType": "interface", "mac": "02:00:00:00:00:05"},
		"ipam": {"type": "host-local", "subnet": "10.57.0.0/24"}
	}`,
}

const benchArgs = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=dpdk-app;" +
	"K8S_POD_INFRA_CONTAINER_ID=5a3f0c9be1d24e7f8a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f;" +
	"K8S_POD_UID=5f2c1a3e-1111-2222-3333-444455556666"

// BenchmarkLoadNetConf is the parse, defaults and validation every verb
// pays before any I/O.
func BenchmarkLoadNetConf(b *testing.B) {
	for name, conf := range benchConfigs {
		stdin := []byte(conf)
		in := config.Env{IfName: "net1", Args: benchArgs}
		if _, err := config.LoadNetConf(stdin, in); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(stdin)))
			for b.Loop() {
				if _, err := config.LoadNetConf(stdin, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
