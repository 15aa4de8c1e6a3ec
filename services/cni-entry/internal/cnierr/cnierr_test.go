package cnierr_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"usrsp.dev/contracts"
	"usrsp.dev/services/cni-entry/internal/cnierr"
)

func TestFrom(t *testing.T) {
	tests := []struct {
		name     string
		in       error
		wantCode uint
		wantMsg  string
	}{
		{"cni error passes through", types.NewError(7, "host.engine bad", ""), 7, "host.engine bad"},
		{"wrapped cni error", fmt.Errorf("ctx: %w", types.NewError(3, "gone", "")), 3, "gone"},
		{"try again later", contracts.Errorf(contracts.CodeTryAgainLater, "no vpp adapter"), 11, "no vpp adapter"},
		{"not found", contracts.Errorf(contracts.CodeNotFound, "attachment x/net1 not found"), 3, "attachment x/net1 not found"},
		{"invalid config", contracts.Errorf(contracts.CodeInvalidConfig, "interface.memif"), 7, "interface.memif"},
		{"decode", contracts.Errorf(contracts.CodeDecode, "bad json"), 6, "bad json"},
		{"not available", contracts.Errorf(contracts.CodeNotAvailable, "down"), 50, "down"},
		{"limited", contracts.Errorf(contracts.CodeLimited, "degraded"), 51, "degraded"},
		{"vswitch", contracts.Errorf(contracts.CodeVswitch, "vpp said -1"), 100, "vpp said -1"},
		{"mismatch", contracts.Errorf(contracts.CodeMismatch, "differs"), 101, "differs"},
		{"conflict", contracts.Errorf(contracts.CodeConflict, "owned"), 102, "owned"},
		{"wrapped contracts error", fmt.Errorf("gc: %w", contracts.Errorf(contracts.CodeIO, "disk")), 5, "disk"},
		{"unknown contracts code", &contracts.Error{Code: 4242, Message: "odd"}, 999, "odd"},
		{"deadline", fmt.Errorf("ipam: %w", context.DeadlineExceeded), 11, "ipam: context deadline exceeded"},
		{"plain error", errors.New("boom"), 999, "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cnierr.From(tt.in)
			var e *types.Error
			require.ErrorAs(t, got, &e)
			assert.Equal(t, tt.wantCode, e.Code)
			assert.Equal(t, tt.wantMsg, e.Msg)
			assert.Equal(t, tt.wantCode, cnierr.Code(tt.in))
		})
	}
	assert.NoError(t, cnierr.From(nil))
	assert.Zero(t, cnierr.Code(nil))
}
