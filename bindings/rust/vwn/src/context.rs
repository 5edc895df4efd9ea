//! A context: KV caches, scratch and outputs over a borrowed model; decoding, logits, generation.
use std::any::Any;
use std::ffi::{c_char, c_void, CString};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::{self, NonNull};
use std::str::FromStr;

use vwn_sys as sys;

use crate::error::{check, Error, Result, Status};
use crate::model::{c_string, len_i32, Model};
use crate::sampler::Sampler;

/// Parameters of a context (see `vwn_context_params` in `vwn.h`); `Default` is the library's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextParams {
    /// Context length in tokens (0: the model's max_seq_len).
    pub n_ctx: i32,
    /// Most tokens one decode call processes at once (longer calls are split).
    pub n_batch: i32,
    /// Compute threads (0: the library's default).
    pub n_threads: i32,
    /// Keep the logits of every position of a decode call (else only the last).
    pub logits_all: bool,
    /// Run the MTP modules during decode (needed for speculative generation).
    pub mtp: bool,
    /// A `vwn_simd` level; -1 (auto) by default.
    pub simd: i32,
    /// Refuse to allocate more than this many bytes (0: no limit).
    pub memory_limit: u64,
    /// Element type of the KV caches (main model and MTP modules); [`KvType::F32`] by default.
    pub kv_type: KvType,
}

/// Element type of a context's KV caches (`kv_type` in `vwn_context_params`). Parses from and
/// displays as `"f32"` / `"f16"` / `"q8_0"`. Saved states are f32 whatever the type and load into
/// a context of any type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KvType {
    /// 32-bit floats: exact against the reference (the default).
    #[default]
    F32,
    /// 16-bit floats: half the cache memory and half the bytes attention reads per token; keys
    /// and values are rounded to fp16 when stored.
    F16,
    /// ggml's Q8_0 blocks (an fp16 scale and 32 int8 per 32 values): 34 bytes per 32 values,
    /// 0.27x the memory of [`KvType::F32`]; keys and values are quantized when stored. A model
    /// whose head size is not a multiple of 32 refuses it ([`Status::Unsupported`] when the
    /// context is made).
    #[allow(non_camel_case_types)]
    Q8_0,
}

impl KvType {
    /// The `vwn_type` value (`VWN_TYPE_F32` / `VWN_TYPE_F16` / `VWN_TYPE_Q8_0`).
    pub fn to_raw(self) -> sys::vwn_type {
        match self {
            KvType::F32 => sys::VWN_TYPE_F32,
            KvType::F16 => sys::VWN_TYPE_F16,
            KvType::Q8_0 => sys::VWN_TYPE_Q8_0,
        }
    }

    /// The KV cache type of a `vwn_type` value; `None` for a type a KV cache cannot have.
    pub fn from_raw(t: sys::vwn_type) -> Option<KvType> {
        match t {
            sys::VWN_TYPE_F32 => Some(KvType::F32),
            sys::VWN_TYPE_F16 => Some(KvType::F16),
            sys::VWN_TYPE_Q8_0 => Some(KvType::Q8_0),
            _ => None,
        }
    }

    /// `"f32"`, `"f16"` or `"q8_0"`.
    pub fn as_str(self) -> &'static str {
        match self {
            KvType::F32 => "f32",
            KvType::F16 => "f16",
            KvType::Q8_0 => "q8_0",
        }
    }
}

impl fmt::Display for KvType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KvType {
    type Err = Error;

    /// `"f32"`, `"f16"` or `"q8_0"` (any case); anything else is an `InvalidArg` error.
    fn from_str(s: &str) -> Result<KvType> {
        if s.eq_ignore_ascii_case("f32") {
            Ok(KvType::F32)
        } else if s.eq_ignore_ascii_case("f16") {
            Ok(KvType::F16)
        } else if s.eq_ignore_ascii_case("q8_0") {
            Ok(KvType::Q8_0)
        } else {
            Err(Error::new(Status::InvalidArg, format!("unknown KV cache type '{s}' (f32, f16 or q8_0)")))
        }
    }
}

impl Default for ContextParams {
    fn default() -> Self {
        ContextParams::from_raw(&unsafe { sys::vwn_context_default_params() })
    }
}

impl ContextParams {
    fn from_raw(p: &sys::vwn_context_params) -> ContextParams {
        ContextParams {
            n_ctx: p.n_ctx,
            n_batch: p.n_batch,
            n_threads: p.n_threads,
            logits_all: p.logits_all,
            mtp: p.mtp,
            simd: p.simd,
            memory_limit: p.memory_limit,
            // The library makes contexts of these three types only (others are INVALID_ARG).
            kv_type: KvType::from_raw(p.kv_type).unwrap_or_default(),
        }
    }

    pub(crate) fn to_raw(self) -> sys::vwn_context_params {
        let mut p = unsafe { sys::vwn_context_default_params() };
        p.n_ctx = self.n_ctx;
        p.n_batch = self.n_batch;
        p.n_threads = self.n_threads;
        p.logits_all = self.logits_all;
        p.mtp = self.mtp;
        p.simd = self.simd;
        p.memory_limit = self.memory_limit;
        p.kv_type = self.kv_type.to_raw();
        p
    }
}

/// Timing counters of a context (`vwn_perf`).
pub type Perf = sys::vwn_perf;

/// Options of a generation (see `vwn_generate_params` in `vwn.h`); `Default` is the library's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateParams {
    /// Token budget (< 0: until end of generation or a full context).
    pub n_predict: i32,
    /// Stop when the output ends with one of these (not emitted).
    pub stop: Vec<String>,
    /// Stop at an end-of-generation token.
    pub stop_at_eog: bool,
    /// Tokenize the prompt with BOS.
    pub add_special: bool,
    /// Recognise special-token text in the prompt.
    pub parse_special: bool,
    /// Speculative decoding with the MTP heads: 0 off, 1..=mtp_depth a fixed depth, -1 adaptive.
    /// Needs a context made with `mtp: true`. The output is the same as without it for a greedy
    /// sampler, and follows the same distribution otherwise.
    pub spec_depth: i32,
}

impl Default for GenerateParams {
    fn default() -> Self {
        let p = unsafe { sys::vwn_generate_default_params() };
        GenerateParams {
            n_predict: p.n_predict,
            stop: Vec::new(),
            stop_at_eog: p.stop_at_eog,
            add_special: p.add_special,
            parse_special: p.parse_special,
            spec_depth: p.spec_depth,
        }
    }
}

/// Why a generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    None,
    /// The token budget (`n_predict`) was reached.
    Budget,
    /// An end-of-generation token.
    EndOfGeneration,
    /// A stop string.
    StopString,
    /// The callback returned false.
    Callback,
    /// The context is full.
    ContextFull,
    Unknown(i32),
}

impl StopReason {
    fn from_raw(r: i32) -> StopReason {
        match r {
            sys::VWN_STOP_NONE => StopReason::None,
            sys::VWN_STOP_BUDGET => StopReason::Budget,
            sys::VWN_STOP_EOG => StopReason::EndOfGeneration,
            sys::VWN_STOP_STRING => StopReason::StopString,
            sys::VWN_STOP_CALLBACK => StopReason::Callback,
            sys::VWN_STOP_CONTEXT_FULL => StopReason::ContextFull,
            other => StopReason::Unknown(other),
        }
    }
}

/// Counters and times of a generation (`vwn_generate_stats`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerateStats {
    pub n_prompt: i32,
    pub n_generated: i32,
    pub stop_reason: StopReason,
    pub t_prompt_us: f64,
    pub t_generate_us: f64,
    /// Speculative decoding (zero when off): drafts proposed, accepted, verification steps.
    pub n_drafted: i32,
    pub n_accepted: i32,
    pub n_verify: i32,
    pub accepted_at_depth: [i32; 16],
    pub drafted_at_depth: [i32; 16],
    pub t_draft_us: f64,
    pub t_verify_us: f64,
}

impl GenerateStats {
    fn from_raw(s: &sys::vwn_generate_stats) -> GenerateStats {
        GenerateStats {
            n_prompt: s.n_prompt,
            n_generated: s.n_generated,
            stop_reason: StopReason::from_raw(s.stop_reason),
            t_prompt_us: s.t_prompt_us,
            t_generate_us: s.t_generate_us,
            n_drafted: s.n_drafted,
            n_accepted: s.n_accepted,
            n_verify: s.n_verify,
            accepted_at_depth: s.accepted_at_depth,
            drafted_at_depth: s.drafted_at_depth,
            t_draft_us: s.t_draft_us,
            t_verify_us: s.t_verify_us,
        }
    }

    /// Generated tokens per second of generation time.
    pub fn tokens_per_second(&self) -> f64 {
        if self.t_generate_us > 0.0 {
            self.n_generated as f64 * 1e6 / self.t_generate_us
        } else {
            0.0
        }
    }
}

/// One piece of generated text handed to the `generate_with` closure.
#[derive(Debug, Clone, Copy)]
pub struct Piece<'a> {
    /// The kept token this text completes; `None` for the final flush of held-back text.
    pub token: Option<i32>,
    /// The text: whole UTF-8 characters when the model produces valid UTF-8 (may be empty while
    /// a character or a possible stop string is held back).
    pub bytes: &'a [u8],
}

impl Piece<'_> {
    /// The text as `&str` if it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.bytes).ok()
    }
}

/// A context over a model: KV caches, positions and outputs. It borrows the model (`'m`), so the
/// model outlives it. `Send` (one thread at a time, enforced by `&mut self` on every call that
/// changes it) but not `Sync`. Freed on drop.
#[derive(Debug)]
pub struct Context<'m> {
    raw: NonNull<sys::vwn_context>,
    model: &'m Model,
}

// SAFETY: vwn.h: "A vwn_context ... is used by one thread at a time (callers serialise access)".
// Moving it to another thread is fine; sharing it is not (no Sync).
unsafe impl Send for Context<'_> {}

struct CallbackState<'f> {
    on_piece: &'f mut dyn FnMut(Piece<'_>) -> bool,
    panic: Option<Box<dyn Any + Send + 'static>>,
}

unsafe extern "C" fn token_trampoline(
    token: i32,
    piece: *const c_char,
    piece_len: i32,
    user: *mut c_void,
) -> bool {
    // SAFETY: user is the &mut CallbackState passed by generate_*, alive for the whole call.
    let state = unsafe { &mut *(user as *mut CallbackState<'_>) };
    if state.panic.is_some() {
        return false;
    }
    let bytes: &[u8] = if piece_len > 0 && !piece.is_null() {
        // SAFETY: the library passes piece_len valid bytes, borrowed for this call.
        unsafe { std::slice::from_raw_parts(piece.cast::<u8>(), piece_len as usize) }
    } else {
        &[]
    };
    let p = Piece { token: (token >= 0).then_some(token), bytes };
    // A panic must not unwind into C: catch it, stop the generation, and resume it afterwards.
    match panic::catch_unwind(AssertUnwindSafe(|| (state.on_piece)(p))) {
        Ok(go) => go,
        Err(payload) => {
            state.panic = Some(payload);
            false
        }
    }
}

impl<'m> Context<'m> {
    /// Creates a context over `model`.
    pub fn new(model: &'m Model, params: &ContextParams) -> Result<Context<'m>> {
        let p = params.to_raw();
        let mut raw = ptr::null_mut();
        check(unsafe { sys::vwn_context_new(model.as_ptr(), &p, &mut raw) })?;
        let raw =
            NonNull::new(raw).ok_or_else(|| Error::new(Status::Internal, "vwn_context_new returned NULL"))?;
        Ok(Context { raw, model })
    }

    /// The model this context runs.
    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// The parameters the context was made with (after defaults were applied).
    pub fn params(&self) -> ContextParams {
        ContextParams::from_raw(&unsafe { sys::vwn_context_get_params(self.raw.as_ptr()) })
    }

    /// Appends `tokens` at the next positions and runs the model over them.
    pub fn decode(&mut self, tokens: &[i32]) -> Result<()> {
        let n = len_i32("decode: token count", tokens.len())?;
        check(unsafe { sys::vwn_decode(self.raw.as_ptr(), tokens.as_ptr(), n) })
    }

    /// Main-model logits (n_vocab floats) at absolute position `pos` computed by the latest decode
    /// (-1: the last position). Borrowed from the context: the borrow ends before the next call
    /// that changes it.
    pub fn logits(&self, pos: i32) -> Result<&[f32]> {
        let mut p: *const f32 = ptr::null();
        // SAFETY: vwn_get_logits only reads the context (it takes a non-const pointer for
        // historical reasons); Context is !Sync, so no other thread uses it concurrently.
        check(unsafe { sys::vwn_get_logits(self.raw.as_ptr(), pos, &mut p) })?;
        // SAFETY: n_vocab floats, valid until the context changes, which needs &mut self.
        Ok(unsafe { std::slice::from_raw_parts(p, self.model.n_vocab()) })
    }

    /// Logits of MTP module `j` (1..=mtp_depth) at absolute position `pos` (-1: its last).
    pub fn mtp_logits(&self, j: i32, pos: i32) -> Result<&[f32]> {
        let mut p: *const f32 = ptr::null();
        check(unsafe { sys::vwn_get_mtp_logits(self.raw.as_ptr(), j, pos, &mut p) })?;
        Ok(unsafe { std::slice::from_raw_parts(p, self.model.n_vocab()) })
    }

    /// Number of tokens in the cache (the next position).
    pub fn len(&self) -> usize {
        unsafe { sys::vwn_context_length(self.raw.as_ptr()) }.max(0) as usize
    }

    /// True if the cache holds no token.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tokens in the cache.
    pub fn tokens(&self) -> &[i32] {
        let n = self.len();
        let p = unsafe { sys::vwn_context_tokens(self.raw.as_ptr()) };
        if n == 0 || p.is_null() {
            return &[];
        }
        unsafe { std::slice::from_raw_parts(p, n) }
    }

    /// Removes every position >= `n_keep`.
    pub fn truncate(&mut self, n_keep: usize) -> Result<()> {
        let n = len_i32("truncate: n_keep", n_keep)?;
        check(unsafe { sys::vwn_context_truncate(self.raw.as_ptr(), n) })
    }

    /// Empties the context.
    pub fn clear(&mut self) -> Result<()> {
        check(unsafe { sys::vwn_context_clear(self.raw.as_ptr()) })
    }

    /// Sets the number of compute threads for later calls (1..=256).
    pub fn set_threads(&mut self, n_threads: i32) -> Result<()> {
        check(unsafe { sys::vwn_context_set_threads(self.raw.as_ptr(), n_threads) })
    }

    /// Timing counters since creation or the last [`reset_perf`](Self::reset_perf).
    pub fn perf(&self) -> Result<Perf> {
        let mut p = Perf::default();
        check(unsafe { sys::vwn_context_get_perf(self.raw.as_ptr(), &mut p) })?;
        Ok(p)
    }

    /// Resets the timing counters.
    pub fn reset_perf(&mut self) -> Result<()> {
        check(unsafe { sys::vwn_context_reset_perf(self.raw.as_ptr()) })
    }

    /// Saves the context's state (caches, positions, tokens) into a byte vector.
    pub fn state_save(&self) -> Result<Vec<u8>> {
        let mut size = 0u64;
        check(unsafe { sys::vwn_state_size(self.raw.as_ptr(), &mut size) })?;
        let mut buf = vec![0u8; size as usize];
        let mut written = 0u64;
        check(unsafe {
            sys::vwn_state_save(self.raw.as_ptr(), buf.as_mut_ptr().cast(), size, &mut written)
        })?;
        buf.truncate(written as usize);
        Ok(buf)
    }

    /// Restores a state saved by [`state_save`](Self::state_save) (same model, large enough
    /// context). On failure the context is unchanged.
    pub fn state_load(&mut self, state: &[u8]) -> Result<()> {
        check(unsafe { sys::vwn_state_load(self.raw.as_ptr(), state.as_ptr().cast(), state.len() as u64) })
    }

    fn raw_generate_params(
        params: &GenerateParams,
        sampler: Option<&mut Sampler>,
        stop_ptrs: &[*const c_char],
    ) -> Result<sys::vwn_generate_params> {
        let mut gp = unsafe { sys::vwn_generate_default_params() };
        gp.n_predict = params.n_predict;
        gp.sampler = sampler.map_or(ptr::null_mut(), |s| s.as_ptr());
        gp.stop = if stop_ptrs.is_empty() { ptr::null() } else { stop_ptrs.as_ptr() };
        gp.n_stop = len_i32("generate: stop strings", stop_ptrs.len())?;
        gp.stop_at_eog = params.stop_at_eog;
        gp.add_special = params.add_special;
        gp.parse_special = params.parse_special;
        gp.spec_depth = params.spec_depth;
        Ok(gp)
    }

    /// Generates from a text prompt, calling `on_piece` with each piece of text as it is produced;
    /// return `false` from it to stop. The token loop (decode, sample, speculative draft/verify
    /// when `params.spec_depth != 0`, UTF-8 and stop-string handling) runs inside libvwn's
    /// `vwn_generate`; only the text crosses back into Rust. `sampler`: `None` is greedy.
    ///
    /// The prompt is appended to what the context already holds. A panic in `on_piece` stops the
    /// generation and is resumed after the C call has returned.
    pub fn generate_with<F>(
        &mut self,
        prompt: &str,
        params: &GenerateParams,
        sampler: Option<&mut Sampler>,
        mut on_piece: F,
    ) -> Result<GenerateStats>
    where
        F: FnMut(Piece<'_>) -> bool,
    {
        let cprompt = c_string("the prompt", prompt.as_bytes())?;
        self.run_generate(params, sampler, &mut on_piece, |ctx, gp, stats| unsafe {
            sys::vwn_generate(ctx, cprompt.as_ptr(), gp, stats)
        })
    }

    /// [`generate_with`](Self::generate_with) with the prompt given as token ids (empty: continue
    /// from the tokens already in the context).
    pub fn generate_tokens_with<F>(
        &mut self,
        prompt: &[i32],
        params: &GenerateParams,
        sampler: Option<&mut Sampler>,
        mut on_piece: F,
    ) -> Result<GenerateStats>
    where
        F: FnMut(Piece<'_>) -> bool,
    {
        let n = len_i32("generate: prompt tokens", prompt.len())?;
        self.run_generate(params, sampler, &mut on_piece, |ctx, gp, stats| unsafe {
            sys::vwn_generate_tokens(ctx, prompt.as_ptr(), n, gp, stats)
        })
    }

    /// Generates from a text prompt and returns the generated bytes and the statistics.
    pub fn generate(
        &mut self,
        prompt: &str,
        params: &GenerateParams,
        sampler: Option<&mut Sampler>,
    ) -> Result<(Vec<u8>, GenerateStats)> {
        let mut out = Vec::new();
        let stats = self.generate_with(prompt, params, sampler, |p| {
            out.extend_from_slice(p.bytes);
            true
        })?;
        Ok((out, stats))
    }

    fn run_generate(
        &mut self,
        params: &GenerateParams,
        sampler: Option<&mut Sampler>,
        on_piece: &mut dyn FnMut(Piece<'_>) -> bool,
        call: impl FnOnce(
            *mut sys::vwn_context,
            *const sys::vwn_generate_params,
            *mut sys::vwn_generate_stats,
        ) -> sys::vwn_status,
    ) -> Result<GenerateStats> {
        let stops: Vec<CString> =
            params.stop.iter().map(|s| c_string("a stop string", s.as_bytes())).collect::<Result<_>>()?;
        let stop_ptrs: Vec<*const c_char> = stops.iter().map(|s| s.as_ptr()).collect();
        let mut gp = Self::raw_generate_params(params, sampler, &stop_ptrs)?;
        let mut state = CallbackState { on_piece, panic: None };
        gp.callback = Some(token_trampoline);
        gp.user_data = (&mut state as *mut CallbackState<'_>).cast();
        let mut stats = sys::vwn_generate_stats::default();
        let st = call(self.raw.as_ptr(), &gp, &mut stats);
        let result = check(st);
        if let Some(payload) = state.panic.take() {
            panic::resume_unwind(payload);
        }
        result.map(|()| GenerateStats::from_raw(&stats))
    }

    /// An iterator of generated token ids, with the loop in Rust: it decodes `prompt` (may be
    /// empty to continue the context), then yields one token per step (sampled with `sampler`,
    /// greedy argmax when `None`), decoding each before picking the next. It ends after
    /// `n_predict` tokens or at an end-of-generation token, and yields an `Err` (then ends) if a
    /// call fails, e.g. a full context. One FFI round trip per token, no speculative decoding:
    /// prefer [`generate_with`](Self::generate_with), whose loop runs in C.
    pub fn tokens_iter<'c, 's>(
        &'c mut self,
        prompt: &[i32],
        sampler: Option<&'s mut Sampler>,
        n_predict: usize,
    ) -> Result<TokenIter<'c, 'm, 's>> {
        if !prompt.is_empty() {
            self.decode(prompt)?;
        } else if self.is_empty() {
            return Err(Error::new(Status::InvalidArg, "tokens_iter: empty prompt and empty context"));
        } else if self.logits(-1).is_err() {
            // continue the context: re-evaluate its last token to get its logits
            let n = self.len();
            let last = self.tokens()[n - 1];
            self.truncate(n - 1)?;
            self.decode(&[last])?;
        }
        Ok(TokenIter { ctx: self, sampler, remaining: n_predict, pending: None, done: false })
    }
}

impl Drop for Context<'_> {
    fn drop(&mut self) {
        unsafe { sys::vwn_context_free(self.raw.as_ptr()) }
    }
}

/// The iterator of [`Context::tokens_iter`].
pub struct TokenIter<'c, 'm, 's> {
    ctx: &'c mut Context<'m>,
    sampler: Option<&'s mut Sampler>,
    remaining: usize,
    pending: Option<i32>,
    done: bool,
}

/// Index of the largest value, ties to the lowest index (the library's greedy rule).
fn argmax(x: &[f32]) -> i32 {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate().skip(1) {
        if v > x[best] {
            best = i;
        }
    }
    best as i32
}

impl TokenIter<'_, '_, '_> {
    fn step(&mut self) -> Result<Option<i32>> {
        if let Some(t) = self.pending.take() {
            self.ctx.decode(&[t])?;
        }
        let logits = self.ctx.logits(-1)?;
        let tok = match self.sampler.as_deref_mut() {
            None => argmax(logits),
            Some(s) => {
                let t = s.sample(logits)?;
                s.accept(t)?;
                t
            }
        };
        if self.ctx.model().token_is_eog(tok) {
            return Ok(None);
        }
        self.pending = Some(tok);
        Ok(Some(tok))
    }
}

impl Iterator for TokenIter<'_, '_, '_> {
    type Item = Result<i32>;

    fn next(&mut self) -> Option<Result<i32>> {
        if self.done || self.remaining == 0 {
            return None;
        }
        match self.step() {
            Ok(Some(t)) => {
                self.remaining -= 1;
                Some(Ok(t))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
