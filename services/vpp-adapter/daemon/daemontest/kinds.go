package daemontest

import (
	"fmt"
	"testing"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/confine/confinetest"
)

// Kind is one kind of attachment whose socket path a test chooses (the
// confinement tests send each crafted path with each kind).
type Kind struct {
	Name string
	// Serves: VPP creates the socket (memif master, vhost-user server);
	// else it connects to the pod's.
	Serves  bool
	Request func(k contracts.AttachmentKey, path string) *contracts.AttachRequest
}

// Kinds are the attachments with a socket file, in bridge domain 4 of
// network "vpp-net".
var Kinds = []Kind{
	{"memif master", true, memifAt(contracts.MemifRoleMaster)},
	{"memif slave", false, memifAt(contracts.MemifRoleSlave)},
	{"vhost-user server", true, vhostAt(contracts.VhostModeServer)},
	{"vhost-user client", false, vhostAt(contracts.VhostModeClient)},
}

// NetnsRequest is a memif master of k whose abstract socket VPP makes in
// the network namespace netns.
func NetnsRequest(k contracts.AttachmentKey, netns string) *contracts.AttachRequest {
	r := Kinds[0].Request(k, "")
	r.Interface.Memif.Netns, r.Interface.Memif.SocketFile = netns, "memif-"+k.IfName
	return r
}

func memifAt(role string) func(contracts.AttachmentKey, string) *contracts.AttachRequest {
	return func(k contracts.AttachmentKey, path string) *contracts.AttachRequest {
		return bridged(k, contracts.HostInterface{IfType: contracts.IfTypeMemif, SocketPath: path,
			Memif: &contracts.MemifSpec{Role: role, Mode: contracts.MemifModeEthernet}})
	}
}

func vhostAt(mode string) func(contracts.AttachmentKey, string) *contracts.AttachRequest {
	return func(k contracts.AttachmentKey, path string) *contracts.AttachRequest {
		return bridged(k, contracts.HostInterface{IfType: contracts.IfTypeVhostUser, SocketPath: path,
			Vhost: &contracts.VhostSpec{Mode: mode}})
	}
}

func bridged(k contracts.AttachmentKey, h contracts.HostInterface) *contracts.AttachRequest {
	h.NetType, h.Bridge = contracts.NetTypeBridge, &contracts.BridgeSpec{ID: 4}
	return &contracts.AttachRequest{Key: k, Network: "vpp-net", Interface: h}
}

// RunAttacks runs try, each in a subtest, for every crafted socket path of
// out (libs/confine/confinetest) with every kind and for every crafted
// memif netns, each with a key of its own. code is what the attach must
// fail with (0: it may succeed, a connect of VPP's fails), field the
// request field the error names.
func RunAttacks(t *testing.T, n confinetest.Node, out *confinetest.Outside, try func(t *testing.T, req *contracts.AttachRequest, code contracts.Code, field string)) {
	i := 0
	next := func() contracts.AttachmentKey {
		i++
		return contracts.AttachmentKey{ContainerID: fmt.Sprintf("attack%03d", i), IfName: "net1"}
	}
	for _, at := range out.SocketAttacks(n) {
		for _, kd := range Kinds {
			t.Run(at.Name+"/"+kd.Name, func(t *testing.T) {
				code := at.Code
				if code == 0 && kd.Serves {
					code = at.ServerCode
				}
				try(t, kd.Request(next(), at.Path), code, "interface.socketPath")
			})
		}
	}
	for _, at := range out.NetnsAttacks(t, n) {
		t.Run("netns "+at.Name, func(t *testing.T) {
			try(t, NetnsRequest(next(), at.Path), at.Code, "interface.memif.netns")
		})
	}
}
