package dpdkargs

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/services/pod-consumer/internal/discovery"
)

func memifIf(name, role string, edit func(*contracts.ContainerInterface)) discovery.Interface {
	c := contracts.ContainerInterface{IfType: contracts.IfTypeMemif, SocketPath: "/var/run/usrsp/memif-" + name + ".sock",
		Memif: &contracts.MemifSpec{Role: role, Mode: contracts.MemifModeEthernet, ID: 0, Queues: 1, RingSize: 1024, BufferSize: 2048}}
	if edit != nil {
		edit(&c)
	}
	return discovery.Interface{Name: name, Data: &contracts.PodData{IfName: name, Interface: c}}
}

func vhostIf(name, mode string, queues int) discovery.Interface {
	return discovery.Interface{Name: name, Data: &contracts.PodData{IfName: name, Interface: contracts.ContainerInterface{
		IfType: contracts.IfTypeVhostUser, SocketPath: "/var/run/usrsp/vhostuser-" + name + ".sock",
		Vhost: &contracts.VhostSpec{Mode: mode, Queues: queues}}}}
}

func vhostIfMAC(name, mode, mac string) discovery.Interface {
	i := vhostIf(name, mode, 1)
	i.Data.Interface.MAC = mac
	return i
}

func TestBuild(t *testing.T) {
	cases := []struct {
		name string
		ifs  []discovery.Interface
		line string
	}{
		{"none", nil, ""},
		{"memif slave is the DPDK client", []discovery.Interface{memifIf("net1", contracts.MemifRoleSlave, nil)},
			"--vdev=net_memif0,role=client,id=0,socket=/var/run/usrsp/memif-net1.sock,socket-abstract=no,rsize=10,bsize=2048"},
		{"memif master is the DPDK server, with secret, id, MAC", []discovery.Interface{memifIf("net1", contracts.MemifRoleMaster,
			func(c *contracts.ContainerInterface) {
				c.Memif.ID, c.Memif.Secret, c.Memif.RingSize, c.MAC = 7, "s3cret", 4096, "02:00:00:00:00:07"
			})},
			"--vdev=net_memif0,role=server,id=7,socket=/var/run/usrsp/memif-net1.sock,socket-abstract=no,secret=s3cret,rsize=12,bsize=2048,mac=02:00:00:00:00:07"},
		{"abstract memif socket", []discovery.Interface{memifIf("net1", contracts.MemifRoleSlave, func(c *contracts.ContainerInterface) {
			c.SocketPath, c.Memif.RingSize, c.Memif.BufferSize = "@usrsp/memif-net1", 0, 0
		})}, "--vdev=net_memif0,role=client,id=0,socket=usrsp/memif-net1,socket-abstract=yes"},
		{"a kernel veth needs no vdev", []discovery.Interface{
			{Name: "net0", Data: &contracts.PodData{IfName: "net0", Interface: contracts.ContainerInterface{IfType: contracts.IfTypeVeth, MAC: "02:00:00:00:00:01"}}},
			vhostIf("net1", contracts.VhostModeServer, 1)},
			"--vdev=net_virtio_user0,path=/var/run/usrsp/vhostuser-net1.sock,server=1,queues=1"},
		{"vhost server (host is client), MAC", []discovery.Interface{vhostIfMAC("net1", contracts.VhostModeServer, "02:00:00:00:00:08")},
			"--vdev=net_virtio_user0,path=/var/run/usrsp/vhostuser-net1.sock,server=1,queues=1,mac=02:00:00:00:00:08"},
		{"vhost server (host is client)", []discovery.Interface{vhostIf("net1", contracts.VhostModeServer, 1)},
			"--vdev=net_virtio_user0,path=/var/run/usrsp/vhostuser-net1.sock,server=1,queues=1"},
		{"vhost client (host is server)", []discovery.Interface{vhostIf("net1", contracts.VhostModeClient, 0)},
			"--vdev=net_virtio_user0,path=/var/run/usrsp/vhostuser-net1.sock,server=0,queues=1"},
		{"queues: devices numbered per driver, rxq/txq hint", []discovery.Interface{
			memifIf("net1", contracts.MemifRoleSlave, func(c *contracts.ContainerInterface) { c.Memif.Queues = 4 }),
			vhostIf("net2", contracts.VhostModeServer, 2),
			memifIf("net3", contracts.MemifRoleSlave, nil)},
			"--vdev=net_memif0,role=client,id=0,socket=/var/run/usrsp/memif-net1.sock,socket-abstract=no,rsize=10,bsize=2048 " +
				"--vdev=net_virtio_user0,path=/var/run/usrsp/vhostuser-net2.sock,server=1,queues=2 " +
				"--vdev=net_memif1,role=client,id=0,socket=/var/run/usrsp/memif-net3.sock,socket-abstract=no,rsize=10,bsize=2048 -- --rxq=4 --txq=4"},
		{"from the annotation's device-info only", []discovery.Interface{{Name: "net5", Status: &discovery.NetworkStatus{
			Interface: "net5", DeviceInfo: &contracts.DeviceInfo{Type: "memif", Memif: &contracts.DeviceInfoMemif{Role: "master", Path: "/s/m.sock", Mode: "ethernet"}}}}},
			"--vdev=net_memif0,role=server,id=0,socket=/s/m.sock,socket-abstract=no"},
		{"shell quoting", []discovery.Interface{vhostIf("net1", contracts.VhostModeServer, 1)}, ""},
	}
	cases[len(cases)-1].ifs[0].Data.Interface.SocketPath = "/var/run/my dir/v.sock"
	cases[len(cases)-1].line = "'--vdev=net_virtio_user0,path=/var/run/my dir/v.sock,server=1,queues=1'"
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Build(tc.ifs)
			require.NoError(t, err)
			assert.Equal(t, tc.line, a.Line(false))
			assert.Len(t, a.Vdevs, strings.Count(tc.line, "--vdev="), "one vdev per memif/vhost-user interface")
			assert.NotContains(t, a.Line(true), " -- ")
		})
	}
}

func TestBuildErrors(t *testing.T) {
	cases := []struct {
		name string
		i    discovery.Interface
		want string
	}{
		{"ring not a power of two", memifIf("net1", contracts.MemifRoleSlave, func(c *contracts.ContainerInterface) { c.Memif.RingSize = 1000 }),
			"net1: interface.memif.ringSize 1000"},
		{"comma in secret", memifIf("net1", contracts.MemifRoleSlave, func(c *contracts.ContainerInterface) { c.Memif.Secret = "a,b" }),
			"net1: socket path or memif secret contains"},
		{"nothing usable", discovery.Interface{Name: "net4", Status: &discovery.NetworkStatus{Interface: "net4"}}, "net4: no pod data file"},
		{"bad role in device-info", discovery.Interface{Name: "net4", Status: &discovery.NetworkStatus{DeviceInfo: &contracts.DeviceInfo{
			Type: "memif", Memif: &contracts.DeviceInfoMemif{Role: "boss"}}}}, `memif.role "boss"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build([]discovery.Interface{tc.i})
			assert.ErrorContains(t, err, tc.want)
		})
	}
}
