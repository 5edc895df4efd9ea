package vwn

/*
#include <vwn.h>
*/
import "C"

import (
	"runtime"
	"sync"
	"unsafe"
)

// SamplerParams are the parameters of the standard sampler chain (penalties -> top-k ->
// temperature -> top-p -> min-p -> draw); see vwn_sampler_params in vwn.h.
type SamplerParams struct {
	Seed             uint64
	Temperature      float32 // <= 0: greedy (argmax, ties to the lowest id)
	TopK             int32   // <= 0: off
	TopP             float32 // >= 1: off
	MinP             float32 // <= 0: off
	RepeatPenalty    float32 // 1: off
	FrequencyPenalty float32 // 0: off
	PresencePenalty  float32 // 0: off
	PenaltyLastN     int32   // window of accepted tokens the penalties look at
}

// DefaultSamplerParams returns the library's defaults (seed 0, temperature 0.8, top-k 40,
// top-p 0.95, min-p 0.05, penalties off).
func DefaultSamplerParams() SamplerParams {
	p := C.vwn_sampler_default_params()
	return SamplerParams{
		Seed: uint64(p.seed), Temperature: float32(p.temperature), TopK: int32(p.top_k),
		TopP: float32(p.top_p), MinP: float32(p.min_p), RepeatPenalty: float32(p.repeat_penalty),
		FrequencyPenalty: float32(p.frequency_penalty), PresencePenalty: float32(p.presence_penalty),
		PenaltyLastN: int32(p.penalty_last_n),
	}
}

// Sampler draws tokens from logits with its own seeded RNG and token history. Its methods are
// serialised by a mutex. Close it when done.
type Sampler struct {
	mu  sync.Mutex
	ptr *C.vwn_sampler
}

// NewSampler creates the standard chain.
func NewSampler(params SamplerParams) (*Sampler, error) {
	p := C.vwn_sampler_params{
		seed: C.uint64_t(params.Seed), temperature: C.float(params.Temperature), top_k: C.int32_t(params.TopK),
		top_p: C.float(params.TopP), min_p: C.float(params.MinP), repeat_penalty: C.float(params.RepeatPenalty),
		frequency_penalty: C.float(params.FrequencyPenalty), presence_penalty: C.float(params.PresencePenalty),
		penalty_last_n: C.int32_t(params.PenaltyLastN),
	}
	var ptr *C.vwn_sampler
	if err := call(func() C.vwn_status { return C.vwn_sampler_new(&p, &ptr) }); err != nil {
		return nil, err
	}
	s := &Sampler{ptr: ptr}
	runtime.SetFinalizer(s, func(s *Sampler) { s.Close() })
	return s, nil
}

// GreedySampler creates a greedy sampler (argmax, ties to the lowest id).
func GreedySampler() (*Sampler, error) {
	p := DefaultSamplerParams()
	p.Temperature = 0
	return NewSampler(p)
}

// Close frees the sampler; closing twice is a no-op.
func (s *Sampler) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ptr != nil {
		C.vwn_sampler_free(s.ptr)
		s.ptr = nil
		runtime.SetFinalizer(s, nil)
	}
	return nil
}

func (s *Sampler) use(f func(p *C.vwn_sampler) C.vwn_status) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ptr == nil {
		return newError(ErrBadHandle, "the sampler is closed")
	}
	return call(func() C.vwn_status { return f(s.ptr) })
}

// Sample draws a token from logits (it does not record it: see Accept).
func (s *Sampler) Sample(logits []float32) (int32, error) {
	n, err := lenInt32("sample: n_vocab", len(logits))
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, newError(ErrInvalidArg, "sample: empty logits")
	}
	var tok C.int32_t
	err = s.use(func(p *C.vwn_sampler) C.vwn_status {
		return C.vwn_sampler_sample(p, (*C.float)(unsafe.Pointer(&logits[0])), n, &tok)
	})
	return int32(tok), err
}

// Accept records a kept token in the history (penalties).
func (s *Sampler) Accept(token int32) error {
	return s.use(func(p *C.vwn_sampler) C.vwn_status { return C.vwn_sampler_accept(p, C.int32_t(token)) })
}

// Reset forgets the history and reseeds the RNG with the original seed.
func (s *Sampler) Reset() error {
	return s.use(func(p *C.vwn_sampler) C.vwn_status { return C.vwn_sampler_reset(p) })
}

// IsGreedy reports whether the sampler is greedy (argmax).
func (s *Sampler) IsGreedy() bool {
	r := false
	_ = s.use(func(p *C.vwn_sampler) C.vwn_status { r = bool(C.vwn_sampler_is_greedy(p)); return C.VWN_OK })
	return r
}
