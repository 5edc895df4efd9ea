//! Safe Rust bindings of libvwn, a CPU runtime for Virtual Width Network (VWN) language models.
//!
//! * [`Model`] — a loaded GGUF model; immutable, `Send + Sync`: share it between threads.
//! * [`Context`] — KV caches and outputs over a borrowed model; `Send`, one thread at a time.
//! * [`Sampler`] — the standard sampler chain.
//! * Every failure is a [`Error`]: the library's [`Status`] and its detailed message.
//!
//! ```no_run
//! let model = vwn::Model::load("model.gguf")?;
//! let mut ctx = model.new_context(&vwn::ContextParams::default())?;
//! let params = vwn::GenerateParams { n_predict: 32, ..Default::default() };
//! ctx.generate_with("Once upon a time", &params, None, |piece| {
//!     print!("{}", String::from_utf8_lossy(piece.bytes));
//!     true // keep going
//! })?;
//! # Ok::<(), vwn::Error>(())
//! ```
//!
//! Generation: [`Context::generate_with`] runs libvwn's own loop (`vwn_generate`: decode, sample,
//! speculative decoding with `spec_depth`, UTF-8 and stop strings) and calls a closure per piece of
//! text — the fast path. [`Context::tokens_iter`] is an iterator over token ids whose loop runs in
//! Rust (decode + sample per step).
mod context;
mod error;
mod model;
mod sampler;

use std::ffi::CStr;

pub use context::{
    Context, ContextParams, GenerateParams, GenerateStats, KvType, Perf, Piece, StopReason, TokenIter,
};
pub use error::{Error, Result, Status};
pub use model::{Model, ModelInfo, ModelParams, TokenizerKind};
pub use sampler::{Sampler, SamplerParams};
/// The raw FFI declarations.
pub use vwn_sys as sys;

/// The linked library's version string ("MAJOR.MINOR.PATCH").
pub fn version() -> &'static str {
    unsafe { CStr::from_ptr(sys::vwn_version()) }.to_str().unwrap_or("?")
}

/// The best SIMD level this CPU and build support, by name ("scalar", "avx2", ...).
pub fn simd_best() -> &'static str {
    unsafe { CStr::from_ptr(sys::vwn_simd_name(sys::vwn_simd_best())) }.to_str().unwrap_or("?")
}
