package config_test

import (
	"errors"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"usrsp.dev/services/cni-entry/internal/config"
)

// FuzzLoadNetConf checks that any input yields either a config or a CNI
// error with a code, never a panic, and that accepted configs are stable.
func FuzzLoadNetConf(f *testing.F) {
	for _, seed := range []string{
		minimal, oldVPPMemifBridge, oldOVSVhostBridge,
		`{}`, `[]`, `null`, `{"name":"n","host":{}}`,
		`{"name":"n","host":{"engine":"vpp","iftype":"memif","netType":"bridge","bridge":{"bridgeId":"x"}}}`,
		`{"name":"n","podVolume":"v","host":{"engine":"ovs-dpdk","iftype":"vhostuser","netType":"none"}}`,
		`{"name":"n","host":{"engine":"vpp","iftype":"memif","netType":"none","memif":{"socketType":"abstract","socketfile":"usrsp/m"}}}`,
		`{"name":"n","host":{"engine":"ovs-dpdk","iftype":"memif","netType":"none","memif":{"socketType":"abstract"}}}`,
		`{"name":"n","host":{"engine":"ovs-dpdk","iftype":"veth","netType":"bridge"},"container":{"mac":"02:00:00:00:00:01"}}`,
		`{"name":"n","host":{"engine":"vpp","iftype":"veth","netType":"bridge","bridge":{"bridgeId":3},"memif":{}}}`,
		`{"name":"n","host":{"engine":"vpp","iftype":"memif","netType":"none","memif":{"socketfile":"../x"}},"prevResult":{"cniVersion":"1.0.0"}}`,
	} {
		f.Add([]byte(seed), "net1", "K8S_POD_UID=abc")
	}
	f.Fuzz(func(t *testing.T, stdin []byte, ifName, args string) {
		c, err := config.LoadNetConf(stdin, config.Env{IfName: ifName, Args: args})
		if err != nil {
			var e *types.Error
			if !errors.As(err, &e) || e.Code == 0 || e.Msg == "" {
				t.Fatalf("error without CNI code or message: %#v", err)
			}
			return
		}
		if c.Host.Engine == "" || c.Container.IfType != c.Host.IfType || c.Timeout() <= 0 {
			t.Fatalf("accepted an inconsistent config: %+v", c)
		}
		if c.AbstractSocket() && (c.Host.Engine != "vpp" || c.Container.Memif.SocketType != config.SocketTypeAbstract) {
			t.Fatalf("accepted an abstract socket the container side or engine cannot use: %+v", c)
		}
	})
}
