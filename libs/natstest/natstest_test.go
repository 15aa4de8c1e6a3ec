package natstest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConnect(t *testing.T) {
	_, nc := Connect(t)
	sub, err := nc.SubscribeSync("natstest.ping")
	require.NoError(t, err)
	require.NoError(t, nc.Publish("natstest.ping", []byte("pong")))
	msg, err := sub.NextMsg(5 * time.Second)
	require.NoError(t, err)
	require.Equal(t, "pong", string(msg.Data))
}
