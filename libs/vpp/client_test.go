package vpp_test

import (
	"context"
	"errors"
	"io"
	"log"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.fd.io/govpp/adapter"
	"go.fd.io/govpp/adapter/mock"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/vpe"
	"go.fd.io/govpp/core"

	"usrsp.dev/contracts"
	"usrsp.dev/libs/vpp"
)

func TestMain(m *testing.M) {
	log.SetOutput(io.Discard) // govpp's mock logs every reply
	os.Exit(m.Run())
}

func TestCode(t *testing.T) {
	cases := []struct {
		err  error
		code contracts.Code
	}{
		{api.INVALID_ARGUMENT, contracts.CodeInvalidConfig},
		{api.INVALID_VALUE, contracts.CodeInvalidConfig},
		{api.INVALID_SW_IF_INDEX, contracts.CodeInvalidConfig},
		{api.BD_ID_EXCEED_MAX, contracts.CodeInvalidConfig},
		{api.ADDRESS_IN_USE, contracts.CodeConflict},
		{api.SUBIF_ALREADY_EXISTS, contracts.CodeConflict},
		{api.UNSPECIFIED, contracts.CodeVswitch},
		{api.SYSCALL_ERROR_1, contracts.CodeVswitch},
		{api.VPPApiError(-9999), contracts.CodeVswitch},
		{core.ErrNotConnected, contracts.CodeTryAgainLater},
		{context.DeadlineExceeded, contracts.CodeTryAgainLater},
		{errors.New("socket closed"), contracts.CodeTryAgainLater},
	}
	for _, tc := range cases {
		t.Run(tc.err.Error(), func(t *testing.T) {
			assert.Equal(t, tc.code, vpp.Code(tc.err))
			err := vpp.Error("memif_create_v2", "memif id 3", tc.err)
			assert.Equal(t, tc.code, contracts.CodeOf(err))
			assert.Contains(t, err.Error(), "memif_create_v2 memif id 3")
		})
	}
	assert.NoError(t, vpp.Error("x", "y", nil))
}

// newMock connects govpp to its plain mock adapter, whose replies the test
// queues with MockReply.
func newMock(t *testing.T) (*mock.VppAdapter, *vpp.Client) {
	m := mock.NewVppAdapter()
	return m, connect(t, m)
}

// connect connects a Client to a VPP (a mock or a fake) until t ends.
func connect(t *testing.T, a adapter.VppAPI) *vpp.Client {
	t.Helper()
	conn, err := core.Connect(a)
	require.NoError(t, err)
	t.Cleanup(conn.Disconnect)
	return vpp.NewClient(conn)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestRetvalsFromMockReplies(t *testing.T) {
	m, c := newMock(t)
	m.MockReply(&memif.MemifCreateV2Reply{Retval: int32(api.SUBIF_ALREADY_EXISTS)})
	_, err := c.CreateMemif(ctx(t), vpp.MemifConfig{SocketID: 2, ID: 5})
	assert.Equal(t, contracts.CodeConflict, contracts.CodeOf(err))
	assert.Contains(t, err.Error(), "memif id 5 on socket id 2")

	m.MockReply(&memif.MemifDeleteReply{Retval: int32(api.INVALID_SW_IF_INDEX)})
	assert.NoError(t, c.DeleteMemif(ctx(t), 9), "deleting a missing memif is success")

	m.MockReply(&l2.BridgeDomainAddDelV2Reply{Retval: int32(api.BD_ALREADY_EXISTS)})
	created, err := c.AddBridgeDomain(ctx(t), 4, "usrsp")
	require.NoError(t, err)
	assert.False(t, created, "a domain someone else created is not ours")

	m.MockReply(&l2.BridgeDomainAddDelV2Reply{Retval: int32(api.BD_IN_USE)})
	err = c.DeleteBridgeDomain(ctx(t), 4)
	assert.Equal(t, contracts.CodeVswitch, contracts.CodeOf(err))

	m.MockReply(&memif.MemifSocketFilenameDetails{SocketID: 0, SocketFilename: "/run/vpp/memif.sock"},
		&memif.MemifSocketFilenameDetails{SocketID: 3, SocketFilename: "/run/a.sock"})
	m.MockReply(&memclnt.ControlPingReply{})
	id, found, err := c.MemifSocketID(ctx(t), "/run/a.sock")
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, uint32(3), id)
}

// unknownMsg is a VPP that does not know the message called name (its
// CRC differs).
type unknownMsg struct {
	adapter.VppAPI
	name string
}

func (u unknownMsg) GetMsgID(name, crc string) (uint16, error) {
	if name == u.name {
		return 0, &adapter.UnknownMsgError{MsgName: name, MsgCrc: crc}
	}
	return u.VppAPI.GetMsgID(name, crc)
}

func TestCheckCompatibility(t *testing.T) {
	conn, err := core.Connect(mock.NewVppAdapter())
	require.NoError(t, err)
	defer conn.Disconnect()
	require.NoError(t, vpp.CheckCompatibility(conn))

	m := mock.NewVppAdapter()
	bad, err := core.Connect(unknownMsg{m, "memif_create_v2"})
	require.NoError(t, err)
	defer bad.Disconnect()
	m.MockReply(&vpe.ShowVersionReply{Program: "vpe", Version: "26.02-mock"})
	err = vpp.CheckCompatibility(bad)
	var ie *vpp.IncompatibleError
	require.ErrorAs(t, err, &ie)
	assert.Equal(t, []string{"memif_create_v2_" + (&memif.MemifCreateV2{}).GetCrcString()}, ie.Messages)
	assert.Equal(t, "26.02-mock", ie.Found, "show_version still works: it names the VPP found")
	assert.Contains(t, err.Error(), "built for VPP 25.10 and found VPP 26.02-mock")
}

func TestIncompatibleErrorNamesBothVersions(t *testing.T) {
	for _, tc := range []struct {
		found string
		want  string
	}{
		{"26.02-release", "built for VPP 25.10 and found VPP 26.02-release, which does not know 1 of its messages (x_00000000); " +
			"run VPP 25.10 or an adapter built for VPP 26.02-release"},
		{vpp.UnknownVersion, "built for VPP 25.10 and found a VPP of unknown version (show_version failed), " +
			"which does not know 1 of its messages (x_00000000); run VPP 25.10 or an adapter built for your VPP"},
	} {
		t.Run(tc.found, func(t *testing.T) {
			err := &vpp.IncompatibleError{Found: tc.found, Messages: []string{"x_00000000"}}
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
