//! Samplers: the standard chain (penalties -> top-k -> temperature -> top-p -> min-p -> draw).
use std::ptr::{self, NonNull};

use vwn_sys as sys;

use crate::error::{check, Error, Result, Status};
use crate::model::len_i32;

/// Parameters of the standard sampler chain (see `vwn_sampler_params` in `vwn.h`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerParams {
    /// RNG seed (same seed, same draws on every platform).
    pub seed: u64,
    /// `<= 0`: greedy (argmax, ties to the lowest id).
    pub temperature: f32,
    /// `<= 0`: off.
    pub top_k: i32,
    /// `>= 1`: off.
    pub top_p: f32,
    /// `<= 0`: off.
    pub min_p: f32,
    /// 1: off.
    pub repeat_penalty: f32,
    /// 0: off.
    pub frequency_penalty: f32,
    /// 0: off.
    pub presence_penalty: f32,
    /// Window of accepted tokens the penalties look at.
    pub penalty_last_n: i32,
}

impl Default for SamplerParams {
    /// The library's defaults: seed 0, temperature 0.8, top_k 40, top_p 0.95, min_p 0.05.
    fn default() -> Self {
        let p = unsafe { sys::vwn_sampler_default_params() };
        SamplerParams {
            seed: p.seed,
            temperature: p.temperature,
            top_k: p.top_k,
            top_p: p.top_p,
            min_p: p.min_p,
            repeat_penalty: p.repeat_penalty,
            frequency_penalty: p.frequency_penalty,
            presence_penalty: p.presence_penalty,
            penalty_last_n: p.penalty_last_n,
        }
    }
}

impl SamplerParams {
    /// Greedy decoding (temperature 0).
    pub fn greedy() -> Self {
        SamplerParams { temperature: 0.0, ..Default::default() }
    }

    fn to_raw(self) -> sys::vwn_sampler_params {
        sys::vwn_sampler_params {
            seed: self.seed,
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            frequency_penalty: self.frequency_penalty,
            presence_penalty: self.presence_penalty,
            penalty_last_n: self.penalty_last_n,
        }
    }
}

/// A sampler with its RNG and token history. `Send` (move it to another thread) but not `Sync`:
/// libvwn requires one thread at a time, which `&mut self` on every call enforces.
#[derive(Debug)]
pub struct Sampler {
    raw: NonNull<sys::vwn_sampler>,
}

// SAFETY: a vwn_sampler is used by one thread at a time; ownership can move between threads.
unsafe impl Send for Sampler {}

impl Sampler {
    /// The standard chain with these parameters.
    pub fn new(params: &SamplerParams) -> Result<Sampler> {
        let p = params.to_raw();
        let mut raw = ptr::null_mut();
        check(unsafe { sys::vwn_sampler_new(&p, &mut raw) })?;
        let raw =
            NonNull::new(raw).ok_or_else(|| Error::new(Status::Internal, "vwn_sampler_new returned NULL"))?;
        Ok(Sampler { raw })
    }

    /// A greedy sampler (argmax, ties to the lowest id).
    pub fn greedy() -> Result<Sampler> {
        Sampler::new(&SamplerParams::greedy())
    }

    pub(crate) fn as_ptr(&mut self) -> *mut sys::vwn_sampler {
        self.raw.as_ptr()
    }

    /// Draws a token from `logits` (does not record it: see [`accept`](Self::accept)).
    pub fn sample(&mut self, logits: &[f32]) -> Result<i32> {
        let n = len_i32("sample: n_vocab", logits.len())?;
        let mut tok = 0;
        check(unsafe { sys::vwn_sampler_sample(self.raw.as_ptr(), logits.as_ptr(), n, &mut tok) })?;
        Ok(tok)
    }

    /// The distribution the sampler draws from for these logits (one-hot when greedy).
    pub fn probs(&mut self, logits: &[f32]) -> Result<Vec<f32>> {
        let n = len_i32("probs: n_vocab", logits.len())?;
        let mut out = vec![0f32; logits.len()];
        check(unsafe { sys::vwn_sampler_probs(self.raw.as_ptr(), logits.as_ptr(), n, out.as_mut_ptr()) })?;
        Ok(out)
    }

    /// Records a kept token in the history (penalties).
    pub fn accept(&mut self, token: i32) -> Result<()> {
        check(unsafe { sys::vwn_sampler_accept(self.raw.as_ptr(), token) })
    }

    /// Forgets the history and reseeds the RNG with the original seed.
    pub fn reset(&mut self) -> Result<()> {
        check(unsafe { sys::vwn_sampler_reset(self.raw.as_ptr()) })
    }

    /// True if the sampler is greedy (speculative decoding then uses exact matching).
    pub fn is_greedy(&self) -> bool {
        unsafe { sys::vwn_sampler_is_greedy(self.raw.as_ptr()) }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        unsafe { sys::vwn_sampler_free(self.raw.as_ptr()) }
    }
}
