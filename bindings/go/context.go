package vwn

/*
#include <vwn.h>
#include <stdlib.h>
*/
import "C"

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unsafe"
)

// ContextParams are the parameters of a context (see vwn_context_params in vwn.h). Start from
// DefaultContextParams: the zero value is not the library's default.
type ContextParams struct {
	NCtx        int    // context length in tokens (0: the model's max_seq_len)
	NBatch      int    // most tokens one decode call processes at once
	NThreads    int    // compute threads (0: the library's default)
	LogitsAll   bool   // keep the logits of every position of a decode call
	MTP         bool   // run the MTP modules (needed for speculative generation)
	SIMD        int    // a vwn_simd level, -1 = auto
	MemoryLimit uint64 // refuse to allocate more than this many bytes (0: no limit)
	KVType      KVType // element type of the KV caches: KVTypeF32 (default), KVTypeF16 or KVTypeQ8_0
}

// KVType is the element type of a context's KV caches (main model and MTP modules): a vwn_type.
// Saved states are f32 whatever the type and load into a context of any type.
type KVType int32

const (
	// KVTypeF32 stores keys and values as 32-bit floats: exact against the reference (the default).
	KVTypeF32 KVType = C.VWN_TYPE_F32
	// KVTypeF16 stores them as 16-bit floats (rounded when stored): half the cache memory and half
	// the bytes attention reads per token.
	KVTypeF16 KVType = C.VWN_TYPE_F16
	// KVTypeQ8_0 stores them as ggml's Q8_0 blocks (an fp16 scale and 32 int8 per 32 values,
	// quantized when stored): 34 bytes per 32 values, 0.27x the memory of KVTypeF32. A model whose
	// head size is not a multiple of 32 refuses it: NewContext fails with ErrUnsupported.
	KVTypeQ8_0 KVType = C.VWN_TYPE_Q8_0
)

// String is "f32", "f16", "q8_0", or "KVType(n)" for a value the library does not accept.
func (t KVType) String() string {
	switch t {
	case KVTypeF32:
		return "f32"
	case KVTypeF16:
		return "f16"
	case KVTypeQ8_0:
		return "q8_0"
	}
	return fmt.Sprintf("KVType(%d)", int32(t))
}

// ParseKVType parses "f32", "f16" or "q8_0" (any case); anything else is an *Error with
// ErrInvalidArg.
func ParseKVType(s string) (KVType, error) {
	switch strings.ToLower(s) {
	case "f32":
		return KVTypeF32, nil
	case "f16":
		return KVTypeF16, nil
	case "q8_0":
		return KVTypeQ8_0, nil
	}
	return 0, newError(ErrInvalidArg, "unknown KV cache type %q (f32, f16 or q8_0)", s)
}

// DefaultContextParams returns the library's defaults.
func DefaultContextParams() ContextParams {
	return contextParamsFromC(C.vwn_context_default_params())
}

func contextParamsFromC(p C.vwn_context_params) ContextParams {
	return ContextParams{
		NCtx: int(p.n_ctx), NBatch: int(p.n_batch), NThreads: int(p.n_threads),
		LogitsAll: bool(p.logits_all), MTP: bool(p.mtp), SIMD: int(p.simd),
		MemoryLimit: uint64(p.memory_limit), KVType: KVType(p.kv_type),
	}
}

func (cp ContextParams) toC() C.vwn_context_params {
	p := C.vwn_context_default_params()
	p.n_ctx = C.int32_t(cp.NCtx)
	p.n_batch = C.int32_t(cp.NBatch)
	p.n_threads = C.int32_t(cp.NThreads)
	p.logits_all = C.bool(cp.LogitsAll)
	p.mtp = C.bool(cp.MTP)
	p.simd = C.int32_t(cp.SIMD)
	p.memory_limit = C.uint64_t(cp.MemoryLimit)
	p.kv_type = C.int32_t(cp.KVType)
	return p
}

// Context holds the KV caches, positions and outputs of one sequence over a Model. Its methods
// are serialised by a mutex; use one Context per goroutine for parallel work. Close it before
// closing its model.
type Context struct {
	mu     sync.Mutex
	ptr    *C.vwn_context
	model  *Model
	nVocab int
}

// NewContext creates a context over the model; params nil means DefaultContextParams().
func (m *Model) NewContext(params *ContextParams) (*Context, error) {
	cp := DefaultContextParams()
	if params != nil {
		cp = *params
	}
	p := cp.toC()
	var ptr *C.vwn_context
	err := m.use(func(mp *C.vwn_model) error {
		if err := call(func() C.vwn_status { return C.vwn_context_new(mp, &p, &ptr) }); err != nil {
			return err
		}
		m.ctxMu.Lock()
		m.nOpen++
		m.ctxMu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	c := &Context{ptr: ptr, model: m, nVocab: m.info.NVocab}
	runtime.SetFinalizer(c, func(c *Context) { c.Close() })
	return c, nil
}

// Close frees the context; closing twice is a no-op.
func (c *Context) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ptr == nil {
		return nil
	}
	C.vwn_context_free(c.ptr)
	c.ptr = nil
	c.model.ctxMu.Lock()
	c.model.nOpen--
	c.model.ctxMu.Unlock()
	runtime.SetFinalizer(c, nil)
	return nil
}

// Model returns the context's model.
func (c *Context) Model() *Model { return c.model }

// Params returns the parameters the context was made with, after defaults were applied
// (vwn_context_get_params). A closed context gives the zero value.
func (c *Context) Params() ContextParams {
	var cp ContextParams
	_ = c.use(func(p *C.vwn_context) C.vwn_status {
		cp = contextParamsFromC(C.vwn_context_get_params(p))
		return C.VWN_OK
	})
	return cp
}

// use runs f with the live context pointer, holding the context's mutex and the OS thread (so a
// failure's message is read on the thread that set it).
func (c *Context) use(f func(p *C.vwn_context) C.vwn_status) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ptr == nil {
		return newError(ErrBadHandle, "the context is closed")
	}
	return call(func() C.vwn_status { return f(c.ptr) })
}

// Decode appends tokens at the next positions and runs the model over them.
func (c *Context) Decode(tokens []int32) error {
	n, err := lenInt32("decode: token count", len(tokens))
	if err != nil {
		return err
	}
	return c.use(func(p *C.vwn_context) C.vwn_status { return C.vwn_decode(p, int32Ptr(tokens), n) })
}

// Logits returns a copy of the main-model logits (NVocab floats) at absolute position pos
// computed by the latest Decode (-1: the last position). It is a copy because the library's
// buffer is only valid until the next call that changes the context; see LogitsInto to reuse a
// buffer.
func (c *Context) Logits(pos int) ([]float32, error) {
	return c.LogitsInto(pos, nil)
}

// LogitsInto is Logits writing into dst (grown if its capacity is below NVocab).
func (c *Context) LogitsInto(pos int, dst []float32) ([]float32, error) {
	return c.copyLogits(dst, func(p *C.vwn_context, out **C.float) C.vwn_status {
		return C.vwn_get_logits(p, C.int32_t(pos), out)
	})
}

// MTPLogits returns a copy of the logits of MTP module j (1..MTPDepth) at absolute position pos
// (-1: the last position module j reached); they predict the token at pos+j+1.
func (c *Context) MTPLogits(j, pos int) ([]float32, error) {
	return c.copyLogits(nil, func(p *C.vwn_context, out **C.float) C.vwn_status {
		return C.vwn_get_mtp_logits(p, C.int32_t(j), C.int32_t(pos), out)
	})
}

func (c *Context) copyLogits(dst []float32, get func(p *C.vwn_context, out **C.float) C.vwn_status) ([]float32, error) {
	if cap(dst) < c.nVocab {
		dst = make([]float32, c.nVocab)
	}
	dst = dst[:c.nVocab]
	err := c.use(func(p *C.vwn_context) C.vwn_status {
		var ptr *C.float
		st := get(p, &ptr)
		if st == C.VWN_OK {
			copy(dst, unsafe.Slice((*float32)(unsafe.Pointer(ptr)), c.nVocab))
		}
		return st
	})
	if err != nil {
		return nil, err
	}
	return dst, nil
}

// Len is the number of tokens in the cache (the next position).
func (c *Context) Len() int {
	n := 0
	_ = c.use(func(p *C.vwn_context) C.vwn_status { n = int(C.vwn_context_length(p)); return C.VWN_OK })
	return n
}

// Tokens returns a copy of the tokens in the cache.
func (c *Context) Tokens() []int32 {
	var out []int32
	_ = c.use(func(p *C.vwn_context) C.vwn_status {
		n := int(C.vwn_context_length(p))
		if t := C.vwn_context_tokens(p); n > 0 && t != nil {
			out = append(out, unsafe.Slice((*int32)(unsafe.Pointer(t)), n)...)
		}
		return C.VWN_OK
	})
	return out
}

// Truncate removes every position >= nKeep.
func (c *Context) Truncate(nKeep int) error {
	n, err := lenInt32("truncate: n_keep", nKeep)
	if err != nil {
		return err
	}
	return c.use(func(p *C.vwn_context) C.vwn_status { return C.vwn_context_truncate(p, n) })
}

// Clear empties the context.
func (c *Context) Clear() error {
	return c.use(func(p *C.vwn_context) C.vwn_status { return C.vwn_context_clear(p) })
}

// SetThreads sets the number of compute threads for later calls (1..256).
func (c *Context) SetThreads(n int) error {
	return c.use(func(p *C.vwn_context) C.vwn_status { return C.vwn_context_set_threads(p, C.int32_t(n)) })
}

// StateSave returns the context's state (caches, positions, tokens).
func (c *Context) StateSave() ([]byte, error) {
	var out []byte
	err := c.use(func(p *C.vwn_context) C.vwn_status {
		var size C.uint64_t
		if st := C.vwn_state_size(p, &size); st != C.VWN_OK {
			return st
		}
		buf := C.malloc(C.size_t(size) + 1) // C memory: the library writes into it
		defer C.free(buf)
		var written C.uint64_t
		if st := C.vwn_state_save(p, buf, size, &written); st != C.VWN_OK {
			return st
		}
		out = C.GoBytes(buf, C.int(written))
		return C.VWN_OK
	})
	return out, err
}

// StateLoad restores a state saved by StateSave (same model, large enough context). On failure
// the context is unchanged.
func (c *Context) StateLoad(state []byte) error {
	return c.use(func(p *C.vwn_context) C.vwn_status {
		return C.vwn_state_load(p, unsafe.Pointer(bytesPtr(state)), C.uint64_t(len(state)))
	})
}
