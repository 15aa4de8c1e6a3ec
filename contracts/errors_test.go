package contracts_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"usrsp.dev/contracts"
)

// The codes are CNI codes: this table pins the values the CNI spec and our
// users' runbooks rely on.
func TestCodesAreCNICodes(t *testing.T) {
	tests := []struct {
		code contracts.Code
		cni  uint
	}{
		{contracts.CodeIncompatibleVersion, 1},
		{contracts.CodeUnsupportedField, 2},
		{contracts.CodeNotFound, 3},
		{contracts.CodeInvalidEnv, 4},
		{contracts.CodeIO, 5},
		{contracts.CodeDecode, 6},
		{contracts.CodeInvalidConfig, 7},
		{contracts.CodeTryAgainLater, 11},
		{contracts.CodeNotAvailable, 50},
		{contracts.CodeLimited, 51},
		{contracts.CodeVswitch, 100},
		{contracts.CodeMismatch, 101},
		{contracts.CodeConflict, 102},
		{contracts.CodeInternal, 999},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			assert.Equal(t, tt.cni, tt.code.CNICode())
			assert.True(t, tt.code.Known())
		})
	}
	assert.False(t, contracts.Code(42).Known())
	assert.Contains(t, contracts.Code(42).String(), "42")
}

func TestCodeOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want contracts.Code
	}{
		{"nil", nil, 0},
		{"plain", errors.New("x"), contracts.CodeInternal},
		{"coded", contracts.Errorf(contracts.CodeNotFound, "gone"), contracts.CodeNotFound},
		{"wrapped", fmt.Errorf("ctx: %w", contracts.Errorf(contracts.CodeVswitch, "ovs")), contracts.CodeVswitch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, contracts.CodeOf(tt.err)) })
	}
	assert.True(t, contracts.IsNotFound(contracts.Errorf(contracts.CodeNotFound, "x")))
	assert.ErrorIs(t, contracts.Errorf(contracts.CodeMismatch, "a"), &contracts.Error{Code: contracts.CodeMismatch})
}
