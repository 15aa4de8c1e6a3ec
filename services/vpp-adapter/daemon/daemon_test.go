package daemon_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	govppadapter "go.fd.io/govpp/adapter"
	"go.uber.org/goleak"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/contractstest"
	"usrsp.dev/libs/vpp/vpptest"
	"usrsp.dev/services/vpp-adapter/adapter"
	"usrsp.dev/services/vpp-adapter/daemon"
	"usrsp.dev/services/vpp-adapter/daemon/daemontest"
	"usrsp.dev/services/vpp-adapter/version"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// onFake is a daemon configuration on fake, with a fast connection loop.
func onFake(fake *vpptest.FakeVPP) daemon.Config {
	return daemon.Config{NewVPP: func() govppadapter.VppAPI { return fake },
		MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, ProbeInterval: 5 * time.Millisecond, ProbeTimeout: time.Second}
}

// TestConformance runs the shared adapter suite against the daemon on the
// fake VPP, over a real (embedded) NATS.
func TestConformance(t *testing.T) {
	fake := vpptest.New()
	i := daemontest.Start(t, onFake(fake))
	contractstest.RunAdapterSuite(t, i.Target(func(t *testing.T) {
		for name, ifc := range fake.Snapshot() {
			assert.False(t, strings.HasPrefix(ifc.Tag, adapter.BridgeTag), "interface %s tagged %q is left", name, ifc.Tag)
		}
		sockets, bds, routes := fake.State()
		assert.Len(t, sockets, 1, "only VPP's default memif socket: %v", sockets)
		assert.Empty(t, bds)
		assert.Empty(t, routes)
	}))
}

// TestDaemonOverNATS drives the daemon on a fake VPP only through NATS and
// HTTP, as cni-entry, the kubelet and Prometheus do.
func TestDaemonOverNATS(t *testing.T) {
	fake := vpptest.New()
	i := daemontest.New(t, onFake(fake))
	code, _ := i.Get(t, "/healthz")
	assert.Equal(t, http.StatusOK, code)
	code, body := i.Get(t, "/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code, "VPP is not connected before Run")
	assert.Contains(t, body, "vswitch not connected")
	i.Run()
	i.WaitReady(t, 10*time.Second)
	code, _ = i.Get(t, "/readyz")
	assert.Equal(t, http.StatusOK, code)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	req := i.MemifRequest(contracts.AttachmentKey{ContainerID: "0123456789abcdef", IfName: "net1"}, "vpp-net", 4)
	resp, err := i.Client.Attach(ctx, contracts.EngineVPP, req)
	require.NoError(t, err)
	assert.Equal(t, "memif1/0", resp.Attachment.HostIfName)
	st, err := i.Client.Status(ctx, contracts.EngineVPP)
	require.NoError(t, err)
	assert.True(t, st.Ready, st.Message)
	assert.Equal(t, 1, st.Attachments)

	// A VPP refusal travels as its contracts code.
	fake.FailNext("memif_create_v2", -73)
	other := i.MemifRequest(contracts.AttachmentKey{ContainerID: "fedcba9876543210", IfName: "net1"}, "vpp-net", 4)
	_, err = i.Client.Attach(ctx, contracts.EngineVPP, other)
	assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err), "%v", err)

	// The request hook measures after the reply is sent: poll.
	wants := []string{
		`usrsp_adapter_request_duration_seconds_count{engine="vpp",op="attach"} 2`,
		`usrsp_adapter_request_errors_total{code="7",engine="vpp",op="attach"} 1`,
		`usrsp_adapter_attachments{engine="vpp"} 1`,
		`usrsp_adapter_reconcile_duration_seconds_count{engine="vpp"} 1`,
		`usrsp_adapter_vswitch_connected{engine="vpp"} 1`,
	}
	var ours []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, body = i.Get(t, "/metrics")
		ours = ours[:0]
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "usrsp_") && !strings.Contains(line, "_bucket{") {
				ours = append(ours, line)
			}
		}
		if time.Now().After(deadline) || !slices.ContainsFunc(wants, func(w string) bool { return !slices.Contains(ours, w) }) {
			break
		}
	}
	for _, want := range wants {
		assert.Contains(t, ours, want)
	}

	det, err := i.Client.Detach(ctx, contracts.EngineVPP, &contracts.DetachRequest{Key: req.Key})
	require.NoError(t, err)
	assert.True(t, det.Removed)

	// $SRV.INFO carries the VPP version the adapter is built for.
	msg, err := i.NC.Request("$SRV.INFO."+contracts.ServiceName(contracts.EngineVPP), nil, 5*time.Second)
	require.NoError(t, err)
	var info micro.Info
	require.NoError(t, json.Unmarshal(msg.Data, &info))
	assert.Equal(t, "25.10", info.Metadata["vpp-version"])
	assert.Equal(t, "VPP 25.10", info.Metadata["vswitch"])
	assert.Equal(t, version.Version, info.Version)
}
