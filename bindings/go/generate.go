package vwn

/*
#include <vwn.h>
#include <stdint.h>
#include <stdlib.h>

// The exported Go callback (callback.go); the cast adds the const of vwn_token_callback.
extern _Bool vwnGoTokenCallback(int32_t token, char *piece, int32_t piece_len, void *user_data);

static void vwn_go_set_callback(vwn_generate_params *p, uintptr_t handle) {
    p->callback = (vwn_token_callback)vwnGoTokenCallback;
    p->user_data = (void *)handle;
}
*/
import "C"

import (
	"io"
	"runtime/cgo"
	"strings"
	"unsafe"
)

// GenerateOptions are the options of Generate (see vwn_generate_params in vwn.h). Start from
// DefaultGenerateOptions: the zero value does not stop at end-of-generation nor add BOS.
type GenerateOptions struct {
	NPredict     int      // token budget (< 0: until end of generation or a full context)
	Sampler      *Sampler // nil: greedy
	Stop         []string // stop when the output ends with one of these (not written)
	StopAtEOG    bool     // stop at an end-of-generation token
	AddSpecial   bool     // tokenize the prompt with BOS
	ParseSpecial bool     // recognise special-token text in the prompt
	// SpecDepth enables speculative decoding with the model's MTP heads: 0 off, 1..MTPDepth a
	// fixed number of drafts per step, -1 adaptive. The context needs MTP on (the default for
	// models with MTP). Greedy output is identical with and without it.
	SpecDepth int
}

// DefaultGenerateOptions returns the library's defaults (128 tokens, greedy, stop at EOG, BOS).
func DefaultGenerateOptions() GenerateOptions {
	p := C.vwn_generate_default_params()
	return GenerateOptions{
		NPredict: int(p.n_predict), StopAtEOG: bool(p.stop_at_eog), AddSpecial: bool(p.add_special),
		ParseSpecial: bool(p.parse_special), SpecDepth: int(p.spec_depth),
	}
}

// StopReason tells why a generation stopped.
type StopReason int

const (
	StopNone        StopReason = 0
	StopBudget      StopReason = 1 // NPredict tokens
	StopEOG         StopReason = 2 // an end-of-generation token
	StopString      StopReason = 3 // a stop string
	StopCallback    StopReason = 4 // the writer failed
	StopContextFull StopReason = 5
)

// Stats are the counters and times of a generation (see vwn_generate_stats in vwn.h).
type Stats struct {
	NPrompt, NGenerated             int
	StopReason                      StopReason
	PromptMicros, GenerateMicros    float64
	NDrafted, NAccepted, NVerify    int // speculative decoding (zero when off)
	AcceptedAtDepth, DraftedAtDepth [16]int
	DraftMicros, VerifyMicros       float64
}

// TokensPerSecond is the generation speed.
func (s Stats) TokensPerSecond() float64 {
	if s.GenerateMicros <= 0 {
		return 0
	}
	return float64(s.NGenerated) * 1e6 / s.GenerateMicros
}

func statsFromC(s *C.vwn_generate_stats) Stats {
	out := Stats{
		NPrompt: int(s.n_prompt), NGenerated: int(s.n_generated), StopReason: StopReason(s.stop_reason),
		PromptMicros: float64(s.t_prompt_us), GenerateMicros: float64(s.t_generate_us),
		NDrafted: int(s.n_drafted), NAccepted: int(s.n_accepted), NVerify: int(s.n_verify),
		DraftMicros: float64(s.t_draft_us), VerifyMicros: float64(s.t_verify_us),
	}
	for i := 0; i < 16; i++ {
		out.AcceptedAtDepth[i] = int(s.accepted_at_depth[i])
		out.DraftedAtDepth[i] = int(s.drafted_at_depth[i])
	}
	return out
}

// genState is what the C callback reaches through its cgo.Handle.
type genState struct {
	w        io.Writer
	err      error // the writer's error, which stopped the generation
	panicked any   // a panic of the writer, re-raised after the C call returns
	buf      []byte
}

// Generate tokenizes prompt, appends it to the context, and generates, writing each piece of
// text to w as soon as it is produced (whole UTF-8 characters; text that may start a stop string
// is held back until it is known not to be one). The token loop - decode, sample, speculative
// draft/verify with opts.SpecDepth, stop conditions - runs inside libvwn (vwn_generate); only the
// text crosses into Go, through a cgo callback. A write error stops the generation and is
// returned. opts nil means DefaultGenerateOptions(). The writer runs while the context is locked:
// it must not call methods of this Context (or of opts.Sampler).
func (c *Context) Generate(prompt string, opts *GenerateOptions, w io.Writer) (Stats, error) {
	if strings.IndexByte(prompt, 0) >= 0 {
		return Stats{}, newError(ErrInvalidArg, "the prompt contains a NUL byte (tokenize it and use GenerateTokens)")
	}
	cprompt := C.CString(prompt)
	defer C.free(unsafe.Pointer(cprompt))
	return c.generate(opts, w, func(p *C.vwn_context, gp *C.vwn_generate_params, st *C.vwn_generate_stats) C.vwn_status {
		return C.vwn_generate(p, cprompt, gp, st)
	})
}

// GenerateTokens is Generate with the prompt given as token ids (empty: continue the context).
func (c *Context) GenerateTokens(prompt []int32, opts *GenerateOptions, w io.Writer) (Stats, error) {
	n, err := lenInt32("generate: prompt tokens", len(prompt))
	if err != nil {
		return Stats{}, err
	}
	// C memory: the Go slice could not be referenced from the C params struct.
	var cp *C.int32_t
	if n > 0 {
		cp = (*C.int32_t)(C.malloc(C.size_t(n) * 4))
		defer C.free(unsafe.Pointer(cp))
		copy(unsafe.Slice((*int32)(unsafe.Pointer(cp)), n), prompt)
	}
	return c.generate(opts, w, func(p *C.vwn_context, gp *C.vwn_generate_params, st *C.vwn_generate_stats) C.vwn_status {
		return C.vwn_generate_tokens(p, cp, n, gp, st)
	})
}

func (c *Context) generate(opts *GenerateOptions, w io.Writer,
	run func(*C.vwn_context, *C.vwn_generate_params, *C.vwn_generate_stats) C.vwn_status) (Stats, error) {
	o := DefaultGenerateOptions()
	if opts != nil {
		o = *opts
	}
	if w == nil {
		w = io.Discard
	}
	nStop, err := lenInt32("generate: stop strings", len(o.Stop))
	if err != nil {
		return Stats{}, err
	}
	// The params struct and the stop array live in C memory: they hold pointers, and Go memory
	// passed to C must not.
	gp := (*C.vwn_generate_params)(C.malloc(C.size_t(unsafe.Sizeof(C.vwn_generate_params{}))))
	defer C.free(unsafe.Pointer(gp))
	*gp = C.vwn_generate_default_params()
	gp.n_predict = C.int32_t(o.NPredict)
	gp.stop_at_eog = C.bool(o.StopAtEOG)
	gp.add_special = C.bool(o.AddSpecial)
	gp.parse_special = C.bool(o.ParseSpecial)
	gp.spec_depth = C.int32_t(o.SpecDepth)
	if nStop > 0 {
		arr := (**C.char)(C.malloc(C.size_t(nStop) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))
		defer C.free(unsafe.Pointer(arr))
		stops := unsafe.Slice(arr, nStop)
		for i, s := range o.Stop {
			if strings.IndexByte(s, 0) >= 0 {
				return Stats{}, newError(ErrInvalidArg, "stop string %d contains a NUL byte", i)
			}
			stops[i] = C.CString(s)
			defer C.free(unsafe.Pointer(stops[i]))
		}
		gp.stop = arr
		gp.n_stop = nStop
	}
	state := &genState{w: w}
	handle := cgo.NewHandle(state)
	defer handle.Delete()
	C.vwn_go_set_callback(gp, C.uintptr_t(handle))

	var cstats C.vwn_generate_stats
	runErr := func() error {
		if o.Sampler == nil {
			return c.use(func(p *C.vwn_context) C.vwn_status { return run(p, gp, &cstats) })
		}
		// the sampler is used by this call: hold its lock too
		o.Sampler.mu.Lock()
		defer o.Sampler.mu.Unlock()
		if o.Sampler.ptr == nil {
			return newError(ErrBadHandle, "the sampler is closed")
		}
		gp.sampler = o.Sampler.ptr
		return c.use(func(p *C.vwn_context) C.vwn_status { return run(p, gp, &cstats) })
	}()
	if state.panicked != nil {
		panic(state.panicked)
	}
	stats := statsFromC(&cstats)
	if runErr != nil {
		return stats, runErr
	}
	return stats, state.err
}
