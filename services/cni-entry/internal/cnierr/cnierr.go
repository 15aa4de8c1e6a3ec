// Package cnierr turns any error cni-entry meets into the CNI error the
// runtime sees, in one place.
package cnierr

import (
	"context"
	"errors"

	"github.com/containernetworking/cni/pkg/types"

	"usrsp.dev/contracts"
)

// From converts err to a *types.Error: a CNI error passes through, a
// contracts.Error keeps its code (contracts codes are CNI codes), a missed
// deadline is "try again later", anything else is internal (999). nil
// stays nil.
func From(err error) error {
	if err == nil {
		return nil
	}
	var cniErr *types.Error
	if errors.As(err, &cniErr) {
		return cniErr
	}
	var cErr *contracts.Error
	if errors.As(err, &cErr) {
		code := cErr.Code
		if !code.Known() {
			code = contracts.CodeInternal
		}
		return types.NewError(code.CNICode(), cErr.Message, "")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return types.NewError(contracts.CodeTryAgainLater.CNICode(), err.Error(), "")
	}
	return types.NewError(contracts.CodeInternal.CNICode(), err.Error(), "")
}

// Code returns the CNI code err converts to (0 for nil).
func Code(err error) uint {
	if err == nil {
		return 0
	}
	var e *types.Error
	errors.As(From(err), &e)
	return e.Code
}

// New is a CNI error with a contracts code.
func New(code contracts.Code, msg string) *types.Error {
	return types.NewError(code.CNICode(), msg, "")
}
