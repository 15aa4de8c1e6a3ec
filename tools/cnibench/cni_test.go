package cnibench

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadNetworkConfig(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantType string
		plugins  int
		wantErr  string
	}{
		{"single .conf becomes a one-plugin list",
			`{"cniVersion": "1.0.0", "name": "n", "type": "userspace", "nodeName": "w1"}`, "userspace", 1, ""},
		{".conflist keeps its chain",
			`{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "userspace"}, {"type": "tuning"}]}`, "userspace", 2, ""},
		{"not JSON", `{`, "", 0, "network config"},
		{"empty plugin list", `{"cniVersion": "1.0.0", "name": "n", "plugins": []}`, "", 0, "no plugins"},
		{"no name", `{"cniVersion": "1.0.0", "plugins": [{"type": "x"}]}`, "", 0, "no name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadNetworkConfig([]byte(tt.in))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantType, c.MainType())
			assert.Len(t, c.List.Plugins, tt.plugins)
			assert.Equal(t, "n", c.List.Name)
		})
	}
}

func TestUserspaceDefaults(t *testing.T) {
	c, err := LoadNetworkConfig([]byte(`{"cniVersion": "1.0.0", "name": "n", "type": "userspace", "nodeName": "w1",
		"nats": {"url": "nats://10.0.0.1:4222"}, "host": {"engine": "ovs-dpdk"}}`))
	require.NoError(t, err)
	assert.Equal(t, userspaceConfDefaults{natsURL: "nats://10.0.0.1:4222", node: "w1", engine: "ovs-dpdk"}, userspaceDefaults(c))
}
