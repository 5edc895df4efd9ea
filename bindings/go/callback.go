package vwn

/*
#include <stdint.h>
#include <stdbool.h>
*/
import "C"

import (
	"io"
	"runtime/cgo"
	"unsafe"
)

// vwnGoTokenCallback is the vwn_token_callback of Generate: it writes each piece of text to the
// generation's io.Writer. A write error or a panic stops the generation (false); Generate then
// returns the error or re-raises the panic once the C call has returned, so no panic unwinds
// through libvwn's frames.
//
//export vwnGoTokenCallback
func vwnGoTokenCallback(token C.int32_t, piece *C.char, pieceLen C.int32_t, user unsafe.Pointer) C.bool {
	st := cgo.Handle(uintptr(user)).Value().(*genState)
	if st.err != nil || st.panicked != nil {
		return false
	}
	if pieceLen <= 0 {
		return true
	}
	st.buf = append(st.buf[:0], unsafe.Slice((*byte)(unsafe.Pointer(piece)), int(pieceLen))...)
	ok := func() (ok bool) {
		defer func() {
			if r := recover(); r != nil {
				st.panicked = r
				ok = false
			}
		}()
		n, err := st.w.Write(st.buf)
		if err == nil && n < len(st.buf) {
			err = io.ErrShortWrite
		}
		if err != nil {
			st.err = err
			return false
		}
		return true
	}()
	return C.bool(ok)
}
