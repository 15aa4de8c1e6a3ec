package realvpp_test

import (
	"strings"
	"testing"
	"time"

	"usrsp.dev/services/vpp-adapter/daemon"
	"usrsp.dev/services/vpp-adapter/daemon/daemontest"
)

// adapterOn is the vpp-adapter daemon (its real connection loop) dialing
// one API socket, on an embedded NATS, with the test playing cni-entry
// (Client) and an operator reading the events.
type adapterOn struct {
	*daemontest.Instance
	*daemontest.Events
}

func startAdapterOn(t *testing.T, apiSock string) *adapterOn {
	t.Helper()
	o := &adapterOn{Events: daemontest.NewEvents(), Instance: daemontest.New(t, daemon.Config{APISocket: apiSock,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		// A loaded 2-core CI machine stalls VPP for more than a second.
		ProbeInterval: 250 * time.Millisecond, ProbeTimeout: 5 * time.Second})}
	o.Subscribe(t, o.NC)
	o.Run()
	return o
}

// waitNotReady polls readiness (there is no "down" event before the first
// connect) until the reason contains want.
func (o *adapterOn) waitNotReady(t *testing.T, want string, within time.Duration) string {
	t.Helper()
	return o.Poll(t, within, "not ready with "+want, func(ready bool, why string) bool {
		return !ready && strings.Contains(why, want)
	})
}
