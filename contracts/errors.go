package contracts

import (
	"errors"
	"fmt"
	"strconv"
)

// Code is an error code. Its value is the CNI error code it stands for, so
// an adapter's error reaches the runtime without translation. Codes 1-99 are
// the CNI spec's; 100 and up are usrsp's own (the spec reserves them for
// plugins).
type Code uint

const (
	CodeIncompatibleVersion Code = 1  // incompatible CNI version
	CodeUnsupportedField    Code = 2  // unsupported field in network configuration
	CodeNotFound            Code = 3  // container unknown or does not exist
	CodeInvalidEnv          Code = 4  // invalid necessary environment variables
	CodeIO                  Code = 5  // I/O failure
	CodeDecode              Code = 6  // failed to decode content
	CodeInvalidConfig       Code = 7  // invalid network config
	CodeTryAgainLater       Code = 11 // transient: adapter or NATS unreachable
	CodeNotAvailable        Code = 50 // plugin not available (STATUS)
	CodeLimited             Code = 51 // plugin available with limited connectivity (STATUS)
	CodeVswitch             Code = 100
	CodeMismatch            Code = 101
	CodeConflict            Code = 102
	CodeInternal            Code = 999
)

var codeNames = map[Code]string{
	CodeIncompatibleVersion: "incompatible CNI version",
	CodeUnsupportedField:    "unsupported field in network configuration",
	CodeNotFound:            "container unknown or does not exist",
	CodeInvalidEnv:          "invalid necessary environment variables",
	CodeIO:                  "I/O failure",
	CodeDecode:              "failed to decode content",
	CodeInvalidConfig:       "invalid network config",
	CodeTryAgainLater:       "try again later",
	CodeNotAvailable:        "plugin not available",
	CodeLimited:             "plugin available with limited connectivity",
	CodeVswitch:             "vswitch rejected the operation",
	CodeMismatch:            "attachment does not match its configuration",
	CodeConflict:            "resource exists with another configuration or owner",
	CodeInternal:            "internal error",
}

// Known reports whether c is one of the codes above.
func (c Code) Known() bool { _, ok := codeNames[c]; return ok }

// String is the short meaning of the code (the CNI error "msg").
func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return "unknown error code " + strconv.FormatUint(uint64(c), 10)
}

// CNICode is the code as a CNI error code.
func (c Code) CNICode() uint { return uint(c) }

// Error is an error with a code. Message names the field or the resource.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Is makes errors.Is(err, &Error{Code: c}) match by code.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// Errorf returns an *Error with code c.
func Errorf(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code carried by err, CodeInternal for an error without
// one, and 0 for nil.
func CodeOf(err error) Code {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// IsNotFound reports whether err means "no such attachment/resource".
func IsNotFound(err error) bool { return CodeOf(err) == CodeNotFound }
