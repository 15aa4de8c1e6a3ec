package vpp

import (
	"errors"
	"fmt"

	"go.fd.io/govpp/api"

	"usrsp.dev/contracts"
)

// ErrDisconnected is returned while no VPP connection is up.
var ErrDisconnected = errors.New("not connected to VPP")

// Error turns a failed VPP call into a contracts error: the message names
// the VPP operation and the resource, the code says what the caller can do.
func Error(op, resource string, err error) error {
	if err == nil {
		return nil
	}
	return &contracts.Error{Code: Code(err), Message: fmt.Sprintf("vpp %s %s: %v", op, resource, err)}
}

// Code maps a govpp error to a contracts code. A VPP retval says what VPP
// thought of the request; anything else (timeout, socket gone, not
// connected) is a transport problem the runtime should retry.
func Code(err error) contracts.Code {
	var ve api.VPPApiError
	if !errors.As(err, &ve) {
		return contracts.CodeTryAgainLater
	}
	switch ve {
	case api.INVALID_VALUE, api.INVALID_VALUE_2, api.INVALID_ARGUMENT, api.INVALID_SW_IF_INDEX,
		api.INVALID_SW_IF_INDEX_2, api.BD_ID_EXCEED_MAX, api.BD_NOT_MODIFIABLE, api.ADDRESS_LENGTH_MISMATCH,
		api.INVALID_SRC_ADDRESS, api.INVALID_DST_ADDRESS, api.UNIMPLEMENTED:
		return contracts.CodeInvalidConfig
	case api.ADDRESS_IN_USE, api.DUPLICATE_IF_ADDRESS, api.SUBIF_ALREADY_EXISTS, api.VALUE_EXIST,
		api.ENTRY_ALREADY_EXISTS, api.BD_ALREADY_EXISTS:
		return contracts.CodeConflict
	default:
		return contracts.CodeVswitch
	}
}

// undoError is Error(op, resource, err), except that an undo (a delete,
// disable or remove) of what is gone is success.
func undoError(op, resource string, undo bool, err error) error {
	if err != nil && undo && isGone(err) {
		return nil
	}
	return Error(op, resource, err)
}

// isGone reports whether a delete failed only because the object is
// already gone, which makes deletes idempotent.
func isGone(err error) bool {
	return errors.Is(err, api.NO_SUCH_ENTRY) || errors.Is(err, api.INVALID_SW_IF_INDEX) ||
		errors.Is(err, api.INVALID_SW_IF_INDEX_2) || errors.Is(err, api.NO_SUCH_FIB)
}
