//! Raw FFI declarations of libvwn's public C ABI, `include/vwn.h`, written by hand (no bindgen).
//!
//! Every item mirrors the header one to one; see the header for the documentation of each function
//! (ownership, thread-safety, errors). C enums are plain `i32` type aliases with one constant per
//! value, so a value unknown to these declarations can never be undefined behaviour. The safe
//! wrapper is the `vwn` crate.
#![allow(non_camel_case_types)]
#![cfg_attr(not(test), no_std)]

use core::ffi::{c_char, c_void};

// ---- version -----------------------------------------------------------------------------------

pub const VWN_VERSION_MAJOR: u32 = 0;
pub const VWN_VERSION_MINOR: u32 = 2;
pub const VWN_VERSION_PATCH: u32 = 0;
pub const VWN_VERSION_STRING: &str = "0.2.0";

// ---- status codes ------------------------------------------------------------------------------

pub type vwn_status = i32;
pub const VWN_OK: vwn_status = 0;
pub const VWN_ERR_INVALID_ARG: vwn_status = 1;
pub const VWN_ERR_BAD_HANDLE: vwn_status = 2;
pub const VWN_ERR_IO: vwn_status = 3;
pub const VWN_ERR_BAD_MAGIC: vwn_status = 4;
pub const VWN_ERR_BAD_VERSION: vwn_status = 5;
pub const VWN_ERR_TRUNCATED: vwn_status = 6;
pub const VWN_ERR_BAD_FORMAT: vwn_status = 7;
pub const VWN_ERR_UNSUPPORTED: vwn_status = 8;
pub const VWN_ERR_BAD_MODEL: vwn_status = 9;
pub const VWN_ERR_OUT_OF_MEMORY: vwn_status = 10;
pub const VWN_ERR_TOKEN_OUT_OF_RANGE: vwn_status = 11;
pub const VWN_ERR_CONTEXT_FULL: vwn_status = 12;
pub const VWN_ERR_BATCH_TOO_LARGE: vwn_status = 13;
pub const VWN_ERR_NOT_KEPT: vwn_status = 14;
pub const VWN_ERR_BUFFER_TOO_SMALL: vwn_status = 15;
pub const VWN_ERR_NO_MTP: vwn_status = 16;
pub const VWN_ERR_NO_DRAFT: vwn_status = 17;
pub const VWN_ERR_STATE_MISMATCH: vwn_status = 18;
pub const VWN_ERR_CHECKSUM: vwn_status = 19;
pub const VWN_ERR_ABORTED: vwn_status = 20;
pub const VWN_ERR_INTERNAL: vwn_status = 21;
pub const VWN_STATUS_COUNT_: vwn_status = 22;

// ---- tensor types and SIMD levels --------------------------------------------------------------

pub type vwn_type = i32;
pub const VWN_TYPE_F32: vwn_type = 0;
pub const VWN_TYPE_F16: vwn_type = 1;
pub const VWN_TYPE_Q4_0: vwn_type = 2;
pub const VWN_TYPE_Q8_0: vwn_type = 8;
pub const VWN_TYPE_BF16: vwn_type = 30;

pub type vwn_simd = i32;
pub const VWN_SIMD_AUTO: vwn_simd = -1;
pub const VWN_SIMD_SCALAR: vwn_simd = 0;
pub const VWN_SIMD_AVX2: vwn_simd = 1;
pub const VWN_SIMD_AVX512: vwn_simd = 2;
pub const VWN_SIMD_NEON: vwn_simd = 3;

// ---- opaque handles ----------------------------------------------------------------------------

/// `struct vwn_model` (opaque).
#[repr(C)]
pub struct vwn_model {
    _private: [u8; 0],
}
/// `struct vwn_context` (opaque).
#[repr(C)]
pub struct vwn_context {
    _private: [u8; 0],
}
/// `struct vwn_sampler` (opaque).
#[repr(C)]
pub struct vwn_sampler {
    _private: [u8; 0],
}

// ---- model -------------------------------------------------------------------------------------

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct vwn_model_params {
    pub use_mmap: bool,
    pub verify_tensors: bool,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct vwn_model_info {
    pub n_vocab: i32,
    pub n_embd: i32,
    pub n_layer: i32,
    pub ghc_m: i32,
    pub ghc_n: i32,
    pub n_embd_wide: i32,
    pub n_head: i32,
    pub n_head_kv: i32,
    pub head_dim: i32,
    pub n_ff: i32,
    pub mtp_depth: i32,
    pub max_seq_len: i32,
    pub ghc_dynamic: bool,
    pub wide_embedding: bool,
    pub tied_head: bool,
    pub output_group_norm: bool,
    pub rope_theta: f32,
    pub rms_norm_eps: f32,
    pub group_norm_eps: f32,
    pub weight_type: i32,
    pub n_params: u64,
    pub file_size: u64,
    pub weight_bytes_per_token: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct vwn_tensor_info {
    pub name: *const c_char,
    pub type_: i32,
    pub n_dims: i32,
    pub ne: [i64; 4],
    pub offset: u64,
    pub n_bytes: u64,
}

// ---- tokenizer ---------------------------------------------------------------------------------

pub type vwn_tokenizer_kind = i32;
pub const VWN_TOKENIZER_BYTES: vwn_tokenizer_kind = 0;
pub const VWN_TOKENIZER_GPT2: vwn_tokenizer_kind = 1;
pub const VWN_TOKENIZER_LLAMA: vwn_tokenizer_kind = 2;

// ---- context -----------------------------------------------------------------------------------

pub type vwn_abort_callback = Option<unsafe extern "C" fn(user_data: *mut c_void) -> bool>;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct vwn_context_params {
    pub n_ctx: i32,
    pub n_batch: i32,
    pub n_threads: i32,
    pub logits_all: bool,
    pub mtp: bool,
    pub simd: i32,
    pub memory_limit: u64,
    pub abort_callback: vwn_abort_callback,
    pub abort_user_data: *mut c_void,
    /// Element type of the KV caches: `VWN_TYPE_F32` (default), `VWN_TYPE_F16` or `VWN_TYPE_Q8_0`.
    pub kv_type: i32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct vwn_perf {
    pub n_eval_tokens: u64,
    pub n_eval_calls: u64,
    pub t_eval_us: f64,
    pub t_ghc_us: f64,
    pub t_mtp_us: f64,
}

// ---- samplers ----------------------------------------------------------------------------------

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct vwn_sampler_params {
    pub seed: u64,
    pub temperature: f32,
    pub top_k: i32,
    pub top_p: f32,
    pub min_p: f32,
    pub repeat_penalty: f32,
    pub frequency_penalty: f32,
    pub presence_penalty: f32,
    pub penalty_last_n: i32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct vwn_sampler_iface {
    pub probs: Option<
        unsafe extern "C" fn(
            user: *mut c_void,
            logits: *const f32,
            n_vocab: i32,
            probs_out: *mut f32,
        ) -> vwn_status,
    >,
    pub accept: Option<unsafe extern "C" fn(user: *mut c_void, token: i32)>,
    pub reset: Option<unsafe extern "C" fn(user: *mut c_void)>,
    pub free_user: Option<unsafe extern "C" fn(user: *mut c_void)>,
}

// ---- generation --------------------------------------------------------------------------------

pub type vwn_token_callback = Option<
    unsafe extern "C" fn(token: i32, piece: *const c_char, piece_len: i32, user_data: *mut c_void) -> bool,
>;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct vwn_generate_params {
    pub n_predict: i32,
    pub sampler: *mut vwn_sampler,
    pub stop: *const *const c_char,
    pub n_stop: i32,
    pub stop_at_eog: bool,
    pub add_special: bool,
    pub parse_special: bool,
    pub spec_depth: i32,
    pub callback: vwn_token_callback,
    pub user_data: *mut c_void,
}

pub type vwn_stop_reason = i32;
pub const VWN_STOP_NONE: vwn_stop_reason = 0;
pub const VWN_STOP_BUDGET: vwn_stop_reason = 1;
pub const VWN_STOP_EOG: vwn_stop_reason = 2;
pub const VWN_STOP_STRING: vwn_stop_reason = 3;
pub const VWN_STOP_CALLBACK: vwn_stop_reason = 4;
pub const VWN_STOP_CONTEXT_FULL: vwn_stop_reason = 5;

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct vwn_generate_stats {
    pub n_prompt: i32,
    pub n_generated: i32,
    pub stop_reason: i32,
    pub t_prompt_us: f64,
    pub t_generate_us: f64,
    pub n_drafted: i32,
    pub n_accepted: i32,
    pub n_verify: i32,
    pub accepted_at_depth: [i32; 16],
    pub drafted_at_depth: [i32; 16],
    pub t_draft_us: f64,
    pub t_verify_us: f64,
}

// ---- functions ---------------------------------------------------------------------------------

extern "C" {
    // version
    pub fn vwn_version() -> *const c_char;
    pub fn vwn_version_number() -> u32;

    // errors
    pub fn vwn_status_string(status: vwn_status) -> *const c_char;
    pub fn vwn_last_error() -> *const c_char;
    pub fn vwn_last_status() -> vwn_status;

    // types and SIMD
    pub fn vwn_type_name(type_: i32) -> *const c_char;
    pub fn vwn_simd_best() -> vwn_simd;
    pub fn vwn_simd_supported(level: vwn_simd) -> bool;
    pub fn vwn_simd_name(level: vwn_simd) -> *const c_char;

    // model
    pub fn vwn_model_default_params() -> vwn_model_params;
    pub fn vwn_model_load(
        path: *const c_char,
        params: *const vwn_model_params,
        out_model: *mut *mut vwn_model,
    ) -> vwn_status;
    pub fn vwn_model_free(model: *mut vwn_model);
    pub fn vwn_model_get_info(model: *const vwn_model, info: *mut vwn_model_info) -> vwn_status;
    pub fn vwn_model_meta(
        model: *const vwn_model,
        key: *const c_char,
        buf: *mut c_char,
        buf_size: usize,
    ) -> i32;
    pub fn vwn_model_meta_count(model: *const vwn_model) -> i32;
    pub fn vwn_model_meta_key(model: *const vwn_model, i: i32) -> *const c_char;
    pub fn vwn_model_tensor_count(model: *const vwn_model) -> i32;
    pub fn vwn_model_packed_bytes(model: *const vwn_model) -> u64;
    pub fn vwn_model_tensor_info(model: *const vwn_model, i: i32, info: *mut vwn_tensor_info) -> vwn_status;
    pub fn vwn_model_tensor_read_f32(
        model: *const vwn_model,
        name: *const c_char,
        dst: *mut f32,
        n_elements: usize,
    ) -> vwn_status;

    // tokenizer
    pub fn vwn_tokenizer_get_kind(model: *const vwn_model) -> vwn_tokenizer_kind;
    pub fn vwn_token_bos(model: *const vwn_model) -> i32;
    pub fn vwn_token_eos(model: *const vwn_model) -> i32;
    pub fn vwn_token_is_eog(model: *const vwn_model, token: i32) -> bool;
    pub fn vwn_token_is_control(model: *const vwn_model, token: i32) -> bool;
    pub fn vwn_tokenize(
        model: *const vwn_model,
        text: *const c_char,
        text_len: i32,
        tokens: *mut i32,
        n_tokens_max: i32,
        add_special: bool,
        parse_special: bool,
    ) -> i32;
    pub fn vwn_detokenize(
        model: *const vwn_model,
        tokens: *const i32,
        n_tokens: i32,
        text: *mut c_char,
        text_len_max: i32,
        remove_special: bool,
    ) -> i32;
    pub fn vwn_token_to_piece(
        model: *const vwn_model,
        token: i32,
        buf: *mut c_char,
        buf_len: i32,
        special: bool,
    ) -> i32;

    // context
    pub fn vwn_context_default_params() -> vwn_context_params;
    pub fn vwn_context_estimate(
        model: *const vwn_model,
        params: *const vwn_context_params,
        out_bytes: *mut u64,
    ) -> vwn_status;
    pub fn vwn_context_new(
        model: *const vwn_model,
        params: *const vwn_context_params,
        out_ctx: *mut *mut vwn_context,
    ) -> vwn_status;
    pub fn vwn_context_free(ctx: *mut vwn_context);
    pub fn vwn_context_model(ctx: *const vwn_context) -> *const vwn_model;
    pub fn vwn_context_get_params(ctx: *const vwn_context) -> vwn_context_params;
    pub fn vwn_decode(ctx: *mut vwn_context, tokens: *const i32, n_tokens: i32) -> vwn_status;
    pub fn vwn_get_logits(ctx: *mut vwn_context, pos: i32, out_logits: *mut *const f32) -> vwn_status;
    pub fn vwn_get_mtp_logits(
        ctx: *mut vwn_context,
        j: i32,
        pos: i32,
        out_logits: *mut *const f32,
    ) -> vwn_status;
    pub fn vwn_context_length(ctx: *const vwn_context) -> i32;
    pub fn vwn_context_mtp_length(ctx: *const vwn_context, j: i32) -> i32;
    pub fn vwn_context_tokens(ctx: *const vwn_context) -> *const i32;
    pub fn vwn_context_truncate(ctx: *mut vwn_context, n_keep: i32) -> vwn_status;
    pub fn vwn_context_clear(ctx: *mut vwn_context) -> vwn_status;
    pub fn vwn_context_set_threads(ctx: *mut vwn_context, n_threads: i32) -> vwn_status;
    pub fn vwn_context_get_perf(ctx: *const vwn_context, out: *mut vwn_perf) -> vwn_status;
    pub fn vwn_context_reset_perf(ctx: *mut vwn_context) -> vwn_status;

    // samplers
    pub fn vwn_sampler_default_params() -> vwn_sampler_params;
    pub fn vwn_sampler_new(params: *const vwn_sampler_params, out: *mut *mut vwn_sampler) -> vwn_status;
    pub fn vwn_sampler_new_custom(
        iface: *const vwn_sampler_iface,
        user: *mut c_void,
        seed: u64,
        out: *mut *mut vwn_sampler,
    ) -> vwn_status;
    pub fn vwn_sampler_free(smpl: *mut vwn_sampler);
    pub fn vwn_sampler_probs(
        smpl: *mut vwn_sampler,
        logits: *const f32,
        n_vocab: i32,
        probs_out: *mut f32,
    ) -> vwn_status;
    pub fn vwn_sampler_sample(
        smpl: *mut vwn_sampler,
        logits: *const f32,
        n_vocab: i32,
        out_token: *mut i32,
    ) -> vwn_status;
    pub fn vwn_sampler_draw(
        smpl: *mut vwn_sampler,
        probs: *const f32,
        n_vocab: i32,
        out_token: *mut i32,
    ) -> vwn_status;
    pub fn vwn_sampler_uniform(smpl: *mut vwn_sampler, out: *mut f64) -> vwn_status;
    pub fn vwn_sampler_accept(smpl: *mut vwn_sampler, token: i32) -> vwn_status;
    pub fn vwn_sampler_reset(smpl: *mut vwn_sampler) -> vwn_status;
    pub fn vwn_sampler_is_greedy(smpl: *const vwn_sampler) -> bool;

    // generation
    pub fn vwn_generate_default_params() -> vwn_generate_params;
    pub fn vwn_generate(
        ctx: *mut vwn_context,
        prompt: *const c_char,
        params: *const vwn_generate_params,
        stats: *mut vwn_generate_stats,
    ) -> vwn_status;
    pub fn vwn_generate_tokens(
        ctx: *mut vwn_context,
        prompt: *const i32,
        n_prompt: i32,
        params: *const vwn_generate_params,
        stats: *mut vwn_generate_stats,
    ) -> vwn_status;

    // speculative decoding (low level)
    pub fn vwn_draft(
        ctx: *mut vwn_context,
        next_token: i32,
        depth: i32,
        sampler: *mut vwn_sampler,
        out_drafts: *mut i32,
        out_draft_probs: *mut f32,
        out_n_drafts: *mut i32,
    ) -> vwn_status;
    pub fn vwn_verify(
        ctx: *mut vwn_context,
        sampler: *mut vwn_sampler,
        out_tokens: *mut i32,
        out_n: *mut i32,
    ) -> vwn_status;

    // saved state
    pub fn vwn_state_size(ctx: *const vwn_context, out_size: *mut u64) -> vwn_status;
    pub fn vwn_state_save(
        ctx: *const vwn_context,
        buf: *mut c_void,
        size: u64,
        out_written: *mut u64,
    ) -> vwn_status;
    pub fn vwn_state_load(ctx: *mut vwn_context, buf: *const c_void, size: u64) -> vwn_status;
    pub fn vwn_state_save_file(ctx: *const vwn_context, path: *const c_char) -> vwn_status;
    pub fn vwn_state_load_file(ctx: *mut vwn_context, path: *const c_char) -> vwn_status;
}

#[cfg(test)]
mod tests {
    //! Layout checks against the C header, measured with sizeof/offsetof on x86-64 and AArch64
    //! Linux (LP64), and a link check of the version functions.
    use super::*;
    use core::mem::{align_of, offset_of, size_of};

    #[test]
    fn struct_layouts_match_the_header() {
        assert_eq!((size_of::<vwn_model_params>(), align_of::<vwn_model_params>()), (2, 1));
        assert_eq!((size_of::<vwn_model_info>(), align_of::<vwn_model_info>()), (96, 8));
        assert_eq!(offset_of!(vwn_model_info, rope_theta), 52);
        assert_eq!(offset_of!(vwn_model_info, weight_type), 64);
        assert_eq!(offset_of!(vwn_model_info, n_params), 72);
        assert_eq!(offset_of!(vwn_model_info, weight_bytes_per_token), 88);
        assert_eq!((size_of::<vwn_tensor_info>(), align_of::<vwn_tensor_info>()), (64, 8));
        assert_eq!(offset_of!(vwn_tensor_info, ne), 16);
        assert_eq!(offset_of!(vwn_tensor_info, n_bytes), 56);
        assert_eq!((size_of::<vwn_context_params>(), align_of::<vwn_context_params>()), (56, 8));
        assert_eq!(offset_of!(vwn_context_params, logits_all), 12);
        assert_eq!(offset_of!(vwn_context_params, simd), 16);
        assert_eq!(offset_of!(vwn_context_params, memory_limit), 24);
        assert_eq!(offset_of!(vwn_context_params, abort_user_data), 40);
        assert_eq!(offset_of!(vwn_context_params, kv_type), 48);
        assert_eq!((size_of::<vwn_perf>(), align_of::<vwn_perf>()), (40, 8));
        assert_eq!((size_of::<vwn_sampler_params>(), align_of::<vwn_sampler_params>()), (40, 8));
        assert_eq!(offset_of!(vwn_sampler_params, penalty_last_n), 36);
        assert_eq!(size_of::<vwn_sampler_iface>(), 32);
        assert_eq!((size_of::<vwn_generate_params>(), align_of::<vwn_generate_params>()), (56, 8));
        assert_eq!(offset_of!(vwn_generate_params, stop), 16);
        assert_eq!(offset_of!(vwn_generate_params, n_stop), 24);
        assert_eq!(offset_of!(vwn_generate_params, stop_at_eog), 28);
        assert_eq!(offset_of!(vwn_generate_params, spec_depth), 32);
        assert_eq!(offset_of!(vwn_generate_params, callback), 40);
        assert_eq!(offset_of!(vwn_generate_params, user_data), 48);
        assert_eq!((size_of::<vwn_generate_stats>(), align_of::<vwn_generate_stats>()), (192, 8));
        assert_eq!(offset_of!(vwn_generate_stats, t_prompt_us), 16);
        assert_eq!(offset_of!(vwn_generate_stats, n_drafted), 32);
        assert_eq!(offset_of!(vwn_generate_stats, accepted_at_depth), 44);
        assert_eq!(offset_of!(vwn_generate_stats, drafted_at_depth), 108);
        assert_eq!(offset_of!(vwn_generate_stats, t_draft_us), 176);
        assert_eq!(offset_of!(vwn_generate_stats, t_verify_us), 184);
    }

    #[test]
    fn links_and_reports_the_header_version() {
        let n = unsafe { vwn_version_number() };
        assert_eq!(n >> 16, VWN_VERSION_MAJOR);
        let s = unsafe { core::ffi::CStr::from_ptr(vwn_version()) };
        assert_eq!(s.to_str().unwrap(), VWN_VERSION_STRING);
    }
}
