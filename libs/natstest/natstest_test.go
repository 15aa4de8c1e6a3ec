package natstest

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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

// TestRunCluster: a message published on the last server reaches a
// subscriber on the first, for clusters of 1 to 3 servers.
func TestRunCluster(t *testing.T) {
	for _, n := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("%d servers", n), func(t *testing.T) {
			srvs := RunCluster(t, n)
			require.Len(t, srvs, n)
			for _, s := range srvs {
				require.Equal(t, n-1, s.NumRemotes(), "routes of %s", s.Name())
			}
			sub, pub := conn(t, srvs[0].ClientURL()), conn(t, srvs[n-1].ClientURL())
			msgs, err := sub.SubscribeSync("natstest.cluster")
			require.NoError(t, err)
			require.NoError(t, sub.Flush())
			// The subscription's interest reaches the other servers
			// asynchronously: publish until one arrives (bounded).
			for i := 0; ; i++ {
				require.NoError(t, pub.Publish("natstest.cluster", []byte("hello")))
				msg, err := msgs.NextMsg(20 * time.Millisecond)
				if err == nil {
					require.Equal(t, "hello", string(msg.Data))
					break
				}
				require.Less(t, i, 250, "no message across the cluster: %v", err)
			}
			all := conn(t, ClientURLs(srvs))
			require.True(t, all.IsConnected())
		})
	}
}

func TestStartClusterRejectsZero(t *testing.T) {
	_, err := StartCluster(0)
	require.Error(t, err)
}

func conn(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}
