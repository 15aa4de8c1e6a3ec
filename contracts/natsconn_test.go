package contracts_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/contracts/contractstest"
	"usrsp.dev/libs/natstest"
)

func TestInboxPrefix(t *testing.T) {
	assert.Equal(t, "_INBOX_cni.node-a_example", contracts.InboxPrefix(contracts.RoleCNI, "node-a.example"))
	assert.Equal(t, "_INBOX_adapter.w1", contracts.InboxPrefix(contracts.RoleAdapter, "w1"))
}

// TestClientPermissionDenied runs a server where user "cni" may request
// only node's subjects and read only its own inbox (the shape
// libs/natsauth gives cni@node; its tests use the real identities).
func TestClientPermissionDenied(t *testing.T) {
	inbox := contracts.InboxPrefix(contracts.RoleCNI, node)
	srv, err := natstest.Start(&server.Options{Users: []*server.User{
		{Username: "adapter", Password: "a"},
		{Username: "cni", Password: "c", Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{contracts.SubjectRoot + "." + contracts.NodeToken(node) + ".*.*"}},
			Subscribe: &server.SubjectPermission{Allow: []string{inbox + ".>"}},
		}},
	}})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	adapter, err := contracts.Connect(contracts.ConnectOptions{URL: "nats://adapter:a@" + srv.Addr().String()})
	require.NoError(t, err)
	t.Cleanup(adapter.Close)
	svc, err := contractstest.NewFakeAdapter(contracts.EngineVPP).Serve(adapter, node)
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })

	const timeout = 5 * time.Second
	for _, tc := range []struct {
		name, inbox, node string
		wantCode          contracts.Code // 0: success
	}{
		{"own node, own inbox", inbox, node, 0},
		{"other node", inbox, "node-b", contracts.CodeInvalidConfig},
		{"default inbox", "", node, contracts.CodeInvalidConfig},
		{"another identity's inbox", contracts.InboxPrefix(contracts.RoleAdapter, node), node, contracts.CodeInvalidConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := contracts.Connect(contracts.ConnectOptions{URL: "nats://cni:c@" + srv.Addr().String(), InboxPrefix: tc.inbox})
			require.NoError(t, err)
			t.Cleanup(nc.Close)
			start := time.Now()
			st, err := contracts.NewClient(nc, tc.node, timeout).Status(context.Background(), contracts.EngineVPP)
			if tc.wantCode == 0 {
				require.NoError(t, err)
				assert.True(t, st.Ready)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tc.wantCode, contracts.CodeOf(err), "%v", err)
			assert.Contains(t, err.Error(), "nats.credentialsFile")
			assert.Contains(t, err.Error(), "ermissions violation")
			assert.Less(t, time.Since(start), timeout/2, "a denied request fails at once, not at its timeout")
		})
	}
}
