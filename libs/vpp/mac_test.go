package vpp_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.fd.io/govpp/binapi/ethernet_types"

	"usrsp.dev/libs/vpp"
)

func TestParseMAC(t *testing.T) {
	tests := []struct {
		in      string
		want    *ethernet_types.MacAddress
		wantErr bool
	}{
		{in: ""},
		{in: "02:00:00:00:00:01", want: &ethernet_types.MacAddress{2, 0, 0, 0, 0, 1}},
		{in: "02:00:00:00:00", wantErr: true},
		{in: "00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01", wantErr: true},
	}
	for _, tt := range tests {
		got, err := vpp.ParseMAC(tt.in)
		if tt.wantErr {
			require.Error(t, err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
}
