// Package vwn is a Go binding of libvwn, a CPU runtime for Virtual Width Network (VWN) language
// models, over the installed C library (cgo, found with pkg-config: set PKG_CONFIG_PATH to
// <prefix>/lib/pkgconfig for a non-system prefix, and LD_LIBRARY_PATH or an rpath so the program
// finds libvwn.so at run time).
//
//   - Model is a loaded GGUF model: immutable, safe for concurrent use by any number of goroutines.
//   - Context holds the KV caches and outputs of one sequence over a Model; its methods are
//     serialised by a mutex (libvwn requires one thread at a time per context), so use one Context
//     per goroutine for parallelism.
//   - Sampler is the standard sampler chain.
//
// Every handle has a Close method, and a finalizer frees it if Close was forgotten (a safety net,
// not a substitute: the C memory is invisible to Go's garbage collector). Every failure is an
// *Error carrying the library's Status and its detailed message; errors.Is(err, vwn.ErrIO) and
// the like compare statuses.
package vwn

/*
#cgo pkg-config: vwn
#include <vwn.h>
#include <stdlib.h>
*/
import "C"

import (
	"fmt"
	"runtime"
)

// Version is the linked library's version string ("MAJOR.MINOR.PATCH").
func Version() string { return C.GoString(C.vwn_version()) }

// SIMDBest is the name of the best SIMD level this CPU and build support ("avx2", ...).
func SIMDBest() string { return C.GoString(C.vwn_simd_name(C.vwn_simd_best())) }

// Status is a libvwn status code. Every non-OK Status is also an error, so it serves as a sentinel
// for errors.Is: errors.Is(err, vwn.ErrTruncated).
type Status int32

// The status codes of vwn.h.
const (
	OK                 Status = 0
	ErrInvalidArg      Status = 1
	ErrBadHandle       Status = 2
	ErrIO              Status = 3
	ErrBadMagic        Status = 4
	ErrBadVersion      Status = 5
	ErrTruncated       Status = 6
	ErrBadFormat       Status = 7
	ErrUnsupported     Status = 8
	ErrBadModel        Status = 9
	ErrOutOfMemory     Status = 10
	ErrTokenOutOfRange Status = 11
	ErrContextFull     Status = 12
	ErrBatchTooLarge   Status = 13
	ErrNotKept         Status = 14
	ErrBufferTooSmall  Status = 15
	ErrNoMTP           Status = 16
	ErrNoDraft         Status = 17
	ErrStateMismatch   Status = 18
	ErrChecksum        Status = 19
	ErrAborted         Status = 20
	ErrInternal        Status = 21
)

// String is the library's description, e.g. "VWN_ERR_TRUNCATED: file truncated".
func (s Status) String() string { return C.GoString(C.vwn_status_string(C.vwn_status(s))) }

// Error makes a Status usable as a sentinel error.
func (s Status) Error() string { return s.String() }

// Error is a failed libvwn call: its status and the library's detailed message.
type Error struct {
	Status  Status
	Message string
}

func (e *Error) Error() string { return e.Status.String() + ": " + e.Message }

// Is reports whether target is this error's Status (errors.Is(err, vwn.ErrIO)).
func (e *Error) Is(target error) bool {
	s, ok := target.(Status)
	return ok && s == e.Status
}

func newError(s Status, format string, args ...any) error {
	return &Error{Status: s, Message: fmt.Sprintf(format, args...)}
}

// lastError reads the message of the failed call that just returned st. Callers hold the OS
// thread (runtime.LockOSThread), because vwn_last_error is per thread.
func lastError(st C.vwn_status) error {
	if st == C.VWN_OK {
		return nil
	}
	return &Error{Status: Status(st), Message: C.GoString(C.vwn_last_error())}
}

// call runs f, a libvwn call returning a status, and turns a failure into an *Error with the
// message of that same call (the goroutine is pinned to its thread in between).
func call(f func() C.vwn_status) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return lastError(f())
}
