package vwn

/*
#include <vwn.h>
#include <stdlib.h>
*/
import "C"

import (
	"math"
	"runtime"
	"sync"
	"unsafe"
)

// ModelParams are the options of LoadWithParams.
type ModelParams struct {
	UseMmap       bool // map the file (default true); false reads it into memory
	VerifyTensors bool // scan every float tensor for NaN/Inf at load (default false)
}

// DefaultModelParams returns the library's defaults.
func DefaultModelParams() ModelParams {
	p := C.vwn_model_default_params()
	return ModelParams{UseMmap: bool(p.use_mmap), VerifyTensors: bool(p.verify_tensors)}
}

// ModelInfo is the shape and hyper-parameters of a model (see vwn_model_info in vwn.h).
type ModelInfo struct {
	NVocab, NEmbd, NLayer, GHCM, GHCN, NEmbdWide         int
	NHead, NHeadKV, HeadDim, NFF, MTPDepth, MaxSeqLen    int
	GHCDynamic, WideEmbedding, TiedHead, OutputGroupNorm bool
	RopeTheta, RMSNormEps, GroupNormEps                  float32
	WeightType                                           int
	NParams, FileSize, WeightBytesPerToken               uint64
}

// Model is a loaded GGUF model. It is immutable and safe for concurrent use; Close it after
// closing every Context made from it.
type Model struct {
	mu    sync.RWMutex // read lock: any use of ptr; write lock: Close
	ptr   *C.vwn_model
	info  ModelInfo
	ctxMu sync.Mutex // guards nOpen
	nOpen int        // contexts made from the model and not yet closed
}

// Load loads a GGUF model file with the default parameters (memory-mapped).
func Load(path string) (*Model, error) { return LoadWithParams(path, DefaultModelParams()) }

// LoadWithParams loads a GGUF model file.
func LoadWithParams(path string, params ModelParams) (*Model, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	p := C.vwn_model_params{use_mmap: C.bool(params.UseMmap), verify_tensors: C.bool(params.VerifyTensors)}
	var ptr *C.vwn_model
	if err := call(func() C.vwn_status { return C.vwn_model_load(cpath, &p, &ptr) }); err != nil {
		return nil, err
	}
	var ci C.vwn_model_info
	if err := call(func() C.vwn_status { return C.vwn_model_get_info(ptr, &ci) }); err != nil {
		C.vwn_model_free(ptr)
		return nil, err
	}
	m := &Model{ptr: ptr, info: ModelInfo{
		NVocab: int(ci.n_vocab), NEmbd: int(ci.n_embd), NLayer: int(ci.n_layer), GHCM: int(ci.ghc_m),
		GHCN: int(ci.ghc_n), NEmbdWide: int(ci.n_embd_wide), NHead: int(ci.n_head),
		NHeadKV: int(ci.n_head_kv), HeadDim: int(ci.head_dim), NFF: int(ci.n_ff),
		MTPDepth: int(ci.mtp_depth), MaxSeqLen: int(ci.max_seq_len), GHCDynamic: bool(ci.ghc_dynamic),
		WideEmbedding: bool(ci.wide_embedding), TiedHead: bool(ci.tied_head),
		OutputGroupNorm: bool(ci.output_group_norm), RopeTheta: float32(ci.rope_theta),
		RMSNormEps: float32(ci.rms_norm_eps), GroupNormEps: float32(ci.group_norm_eps),
		WeightType: int(ci.weight_type), NParams: uint64(ci.n_params), FileSize: uint64(ci.file_size),
		WeightBytesPerToken: uint64(ci.weight_bytes_per_token),
	}}
	runtime.SetFinalizer(m, func(m *Model) { m.Close() })
	return m, nil
}

// Close frees the model. It fails with ErrInvalidArg while contexts made from it are open.
// Closing twice is a no-op.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ptr == nil {
		return nil
	}
	m.ctxMu.Lock()
	n := m.nOpen
	m.ctxMu.Unlock()
	if n > 0 {
		return newError(ErrInvalidArg, "the model still has %d open context(s): close them first", n)
	}
	C.vwn_model_free(m.ptr)
	m.ptr = nil
	runtime.SetFinalizer(m, nil)
	return nil
}

// use runs f with the live model pointer under the read lock.
func (m *Model) use(f func(p *C.vwn_model) error) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.ptr == nil {
		return newError(ErrBadHandle, "the model is closed")
	}
	return f(m.ptr)
}

// Info returns the model's shape and hyper-parameters.
func (m *Model) Info() ModelInfo { return m.info }

// NVocab is the vocabulary size (the length of every logits vector).
func (m *Model) NVocab() int { return m.info.NVocab }

// Meta returns a metadata value as text (strings verbatim, numbers in decimal).
func (m *Model) Meta(key string) (string, bool) {
	var out string
	found := false
	_ = m.use(func(p *C.vwn_model) error {
		ckey := C.CString(key)
		defer C.free(unsafe.Pointer(ckey))
		n := C.vwn_model_meta(p, ckey, nil, 0)
		if n < 0 {
			return nil
		}
		buf := make([]byte, int(n)+1)
		C.vwn_model_meta(p, ckey, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
		out, found = string(buf[:n]), true
		return nil
	})
	return out, found
}

// MetaKeys returns every metadata key in file order.
func (m *Model) MetaKeys() []string {
	var keys []string
	_ = m.use(func(p *C.vwn_model) error {
		n := int(C.vwn_model_meta_count(p))
		for i := 0; i < n; i++ {
			if k := C.vwn_model_meta_key(p, C.int32_t(i)); k != nil {
				keys = append(keys, C.GoString(k))
			}
		}
		return nil
	})
	return keys
}

// TokenBOS is the beginning-of-sequence token, or -1.
func (m *Model) TokenBOS() int32 {
	t := int32(-1)
	_ = m.use(func(p *C.vwn_model) error { t = int32(C.vwn_token_bos(p)); return nil })
	return t
}

// TokenEOS is the end-of-sequence token, or -1.
func (m *Model) TokenEOS() int32 {
	t := int32(-1)
	_ = m.use(func(p *C.vwn_model) error { t = int32(C.vwn_token_eos(p)); return nil })
	return t
}

// IsEOG reports whether token ends a generation.
func (m *Model) IsEOG(token int32) bool {
	r := false
	_ = m.use(func(p *C.vwn_model) error { r = bool(C.vwn_token_is_eog(p, C.int32_t(token))); return nil })
	return r
}

var emptyByte [1]byte

// bytesPtr is a C view of Go bytes for the duration of a call (never NULL, even when empty).
func bytesPtr(b []byte) *C.char {
	if len(b) == 0 {
		return (*C.char)(unsafe.Pointer(&emptyByte[0]))
	}
	return (*C.char)(unsafe.Pointer(&b[0]))
}

func int32Ptr(t []int32) *C.int32_t {
	if len(t) == 0 {
		return nil
	}
	return (*C.int32_t)(unsafe.Pointer(&t[0]))
}

func lenInt32(what string, n int) (C.int32_t, error) {
	if n > math.MaxInt32 {
		return 0, newError(ErrInvalidArg, "%s: %d is more than an int32_t counts", what, n)
	}
	return C.int32_t(n), nil
}

// tokenError is the error of a failed int-returning tokenizer call (the C API gives only a
// message; the status is inferred from the tokens).
// tokenError is the error of a failed count-returning call (tokenize, detokenize, piece): the
// library records its status in vwn_last_status. The caller holds the OS thread.
func (m *Model) tokenError(tokens []int32) error {
	st := Status(C.vwn_last_status())
	if st == 0 {
		st = ErrInvalidArg
	}
	return &Error{Status: st, Message: C.GoString(C.vwn_last_error())}
}

// Tokenize turns text (any bytes) into token ids. addSpecial prepends BOS if the model asks for
// it; parseSpecial recognises control-token texts in text.
func (m *Model) Tokenize(text string, addSpecial, parseSpecial bool) ([]int32, error) {
	var out []int32
	err := m.use(func(p *C.vwn_model) error {
		b := []byte(text)
		n, err := lenInt32("tokenize: text length", len(b))
		if err != nil {
			return err
		}
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		capacity := len(b) + 4
		for {
			tokens := make([]int32, capacity)
			got := C.vwn_tokenize(p, bytesPtr(b), n, int32Ptr(tokens), C.int32_t(capacity), C.bool(addSpecial), C.bool(parseSpecial))
			if got == math.MinInt32 {
				return m.tokenError(nil)
			}
			if got < 0 {
				capacity = int(-got)
				continue
			}
			out = tokens[:got]
			return nil
		}
	})
	return out, err
}

// Detokenize turns token ids into text (a Go string may hold invalid UTF-8 when a character is
// cut). removeSpecial drops BOS/EOS and other control tokens.
func (m *Model) Detokenize(tokens []int32, removeSpecial bool) (string, error) {
	var out string
	err := m.use(func(p *C.vwn_model) error {
		n, err := lenInt32("detokenize: token count", len(tokens))
		if err != nil {
			return err
		}
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		capacity := 4*len(tokens) + 16
		for {
			buf := make([]byte, capacity)
			got := C.vwn_detokenize(p, int32Ptr(tokens), n, bytesPtr(buf), C.int32_t(capacity), C.bool(removeSpecial))
			if got == math.MinInt32 {
				return m.tokenError(tokens)
			}
			if got < 0 {
				capacity = int(-got)
				continue
			}
			out = string(buf[:got])
			return nil
		}
	})
	return out, err
}

// TokenToPiece returns the bytes of one token (possibly part of a UTF-8 character). special
// renders control tokens' text (else they give "").
func (m *Model) TokenToPiece(token int32, special bool) (string, error) {
	var out string
	err := m.use(func(p *C.vwn_model) error {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		capacity := 32
		for {
			buf := make([]byte, capacity)
			got := C.vwn_token_to_piece(p, C.int32_t(token), bytesPtr(buf), C.int32_t(capacity), C.bool(special))
			if got == math.MinInt32 {
				return m.tokenError([]int32{token})
			}
			if got < 0 {
				capacity = int(-got)
				continue
			}
			out = string(buf[:got])
			return nil
		}
	})
	return out, err
}
