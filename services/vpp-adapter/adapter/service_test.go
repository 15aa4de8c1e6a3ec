package adapter_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/service"
	"usrsp.dev/libs/natstest"
)

// TestRoundTripOverNATS serves the adapter (on the fake VPP) as a micro
// service on an embedded nats-server and drives it with contracts.Client.
func TestRoundTripOverNATS(t *testing.T) {
	h := newHarness(t)
	srv := natstest.Run(t)
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	svc, err := service.Add(nc, h.a.ServiceConfig("node-1.example"), h.a)
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })

	client := contracts.NewClient(nc, "node-1.example", 5*time.Second)
	c := ctx(t)
	resp, err := client.Attach(c, contracts.EngineVPP, memifBridge(4))
	require.NoError(t, err)
	assert.Equal(t, "memif1/0", resp.Attachment.HostIfName)
	ev := h.events.waitFor(t, contracts.EventAttached)
	assert.Equal(t, key, *ev.Key)

	st, err := client.Status(c, contracts.EngineVPP)
	require.NoError(t, err)
	assert.True(t, st.Ready)
	assert.Equal(t, 1, st.Attachments)

	// A VPP refusal travels as its contracts code.
	h.fake.FailNext("memif_create_v2", -73)
	other := memifBridge(4)
	other.Key.IfName = "net2"
	other.Interface.SocketPath = "/var/lib/usrsp/pods/0123456789abcdef/memif-net2.sock"
	_, err = client.Attach(c, contracts.EngineVPP, other)
	assert.Equal(t, contracts.CodeInvalidConfig, contracts.CodeOf(err), "%v", err)

	det, err := client.Detach(c, contracts.EngineVPP, &contracts.DetachRequest{Key: key})
	require.NoError(t, err)
	assert.True(t, det.Removed)

	// $SRV.INFO carries the VPP version the adapter is built for.
	msg, err := nc.Request("$SRV.INFO."+contracts.ServiceName(contracts.EngineVPP), nil, 5*time.Second)
	require.NoError(t, err)
	var info micro.Info
	require.NoError(t, json.Unmarshal(msg.Data, &info))
	assert.Equal(t, "25.10", info.Metadata["vpp-version"])
	assert.Contains(t, info.Version, "+vpp25.10")
}
