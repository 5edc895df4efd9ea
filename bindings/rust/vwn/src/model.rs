//! A loaded model: immutable, shared by any number of contexts in any number of threads.
use std::ffi::{CStr, CString};
use std::path::Path;
use std::ptr::{self, NonNull};

use vwn_sys as sys;

use crate::context::{Context, ContextParams};
use crate::error::{check, Error, Result, Status};

/// The shape and hyper-parameters of a model (`vwn_model_info`; see `vwn.h` for each field).
pub type ModelInfo = sys::vwn_model_info;

/// Options of [`Model::load_with`].
#[derive(Debug, Clone, Copy)]
pub struct ModelParams {
    /// Map the file (default true); false reads it into memory.
    pub use_mmap: bool,
    /// Scan every float tensor for NaN/Inf at load (default false).
    pub verify_tensors: bool,
}

impl Default for ModelParams {
    fn default() -> Self {
        // SAFETY: a plain value-returning function.
        let p = unsafe { sys::vwn_model_default_params() };
        ModelParams { use_mmap: p.use_mmap, verify_tensors: p.verify_tensors }
    }
}

/// The tokenizer stored in the model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenizerKind {
    /// id = byte value, V = 256.
    Bytes,
    /// Byte-level BPE with the GPT-2 pre-tokenizer.
    Gpt2,
    /// SentencePiece-style BPE with scores and byte fallback.
    Llama,
    /// A kind this version of the bindings does not know.
    Unknown(i32),
}

/// A model loaded from a GGUF file. Immutable after loading, so it is `Send + Sync`: share it
/// between threads by reference (scoped threads) or in an `Arc`, each thread with its own
/// [`Context`]. Freed on drop; the borrow checker makes every context go first.
#[derive(Debug)]
pub struct Model {
    raw: NonNull<sys::vwn_model>,
    info: ModelInfo,
}

// SAFETY: vwn.h: "A vwn_model is immutable after loading and may be shared by any number of
// contexts in any number of threads. Functions taking only a model are thread-safe."
unsafe impl Send for Model {}
unsafe impl Sync for Model {}

pub(crate) fn c_string(what: &str, s: &[u8]) -> Result<CString> {
    CString::new(s).map_err(|_| Error::new(Status::InvalidArg, format!("{what} contains a NUL byte")))
}

fn path_cstring(path: &Path) -> Result<CString> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        c_string("the path", path.as_os_str().as_bytes())
    }
    #[cfg(not(unix))]
    {
        match path.to_str() {
            Some(s) => c_string("the path", s.as_bytes()),
            None => Err(Error::new(Status::InvalidArg, "the path is not valid Unicode")),
        }
    }
}

/// Length of a Rust buffer as the C API's int32_t count.
pub(crate) fn len_i32(what: &str, n: usize) -> Result<i32> {
    i32::try_from(n)
        .map_err(|_| Error::new(Status::InvalidArg, format!("{what}: {n} is more than an int32_t counts")))
}

impl Model {
    /// Loads a GGUF model file with the default parameters (memory-mapped).
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        Model::load_with(path, &ModelParams::default())
    }

    /// Loads a GGUF model file.
    pub fn load_with(path: impl AsRef<Path>, params: &ModelParams) -> Result<Model> {
        let cpath = path_cstring(path.as_ref())?;
        let p = sys::vwn_model_params { use_mmap: params.use_mmap, verify_tensors: params.verify_tensors };
        let mut raw = ptr::null_mut();
        // SAFETY: valid NUL-terminated path, valid params, valid out-pointer.
        check(unsafe { sys::vwn_model_load(cpath.as_ptr(), &p, &mut raw) })?;
        let raw =
            NonNull::new(raw).ok_or_else(|| Error::new(Status::Internal, "vwn_model_load returned NULL"))?;
        let mut info = ModelInfo::default();
        // SAFETY: raw is a live model.
        if let Err(e) = check(unsafe { sys::vwn_model_get_info(raw.as_ptr(), &mut info) }) {
            unsafe { sys::vwn_model_free(raw.as_ptr()) };
            return Err(e);
        }
        Ok(Model { raw, info })
    }

    pub(crate) fn as_ptr(&self) -> *const sys::vwn_model {
        self.raw.as_ptr()
    }

    /// The model's shape and hyper-parameters.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Vocabulary size V (every logits slice has this length).
    pub fn n_vocab(&self) -> usize {
        self.info.n_vocab as usize
    }

    /// A metadata value as text (strings verbatim, numbers in decimal); `None` if absent.
    pub fn meta(&self, key: &str) -> Option<String> {
        let ckey = CString::new(key).ok()?;
        // SAFETY: size query with a NULL buffer of size 0.
        let n = unsafe { sys::vwn_model_meta(self.as_ptr(), ckey.as_ptr(), ptr::null_mut(), 0) };
        if n < 0 {
            return None;
        }
        let mut buf = vec![0u8; n as usize + 1];
        // SAFETY: buf holds n + 1 bytes.
        unsafe { sys::vwn_model_meta(self.as_ptr(), ckey.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        buf.truncate(n as usize);
        Some(String::from_utf8_lossy(&buf).into_owned())
    }

    /// Every metadata key, in file order.
    pub fn meta_keys(&self) -> Vec<String> {
        // SAFETY: live model; keys are borrowed for the model's life and copied here.
        let n = unsafe { sys::vwn_model_meta_count(self.as_ptr()) };
        (0..n.max(0))
            .filter_map(|i| {
                let p = unsafe { sys::vwn_model_meta_key(self.as_ptr(), i) };
                (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
            })
            .collect()
    }

    /// The kind of tokenizer stored in the file.
    pub fn tokenizer_kind(&self) -> TokenizerKind {
        match unsafe { sys::vwn_tokenizer_get_kind(self.as_ptr()) } {
            sys::VWN_TOKENIZER_BYTES => TokenizerKind::Bytes,
            sys::VWN_TOKENIZER_GPT2 => TokenizerKind::Gpt2,
            sys::VWN_TOKENIZER_LLAMA => TokenizerKind::Llama,
            other => TokenizerKind::Unknown(other),
        }
    }

    /// The beginning-of-sequence token, if the model has one.
    pub fn token_bos(&self) -> Option<i32> {
        let t = unsafe { sys::vwn_token_bos(self.as_ptr()) };
        (t >= 0).then_some(t)
    }

    /// The end-of-sequence token, if the model has one.
    pub fn token_eos(&self) -> Option<i32> {
        let t = unsafe { sys::vwn_token_eos(self.as_ptr()) };
        (t >= 0).then_some(t)
    }

    /// True if `token` ends a generation (EOS or another end-of-generation control token).
    pub fn token_is_eog(&self, token: i32) -> bool {
        unsafe { sys::vwn_token_is_eog(self.as_ptr(), token) }
    }

    /// True if `token` is a control/special token.
    pub fn token_is_control(&self, token: i32) -> bool {
        unsafe { sys::vwn_token_is_control(self.as_ptr(), token) }
    }

    /// Text (any bytes) -> token ids. `add_special`: prepend BOS if the model asks for it;
    /// `parse_special`: recognise control-token texts in `text`.
    pub fn tokenize(
        &self,
        text: impl AsRef<[u8]>,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<i32>> {
        let text = text.as_ref();
        let len = len_i32("tokenize: text length", text.len())?;
        let mut cap = text.len() + 4;
        loop {
            let mut tokens = vec![0i32; cap];
            let max = len_i32("tokenize: token count", cap)?;
            // SAFETY: text has len bytes, tokens has max slots.
            let n = unsafe {
                sys::vwn_tokenize(
                    self.as_ptr(),
                    text.as_ptr().cast(),
                    len,
                    tokens.as_mut_ptr(),
                    max,
                    add_special,
                    parse_special,
                )
            };
            if n == i32::MIN {
                return Err(Error::last_call());
            }
            if n < 0 {
                cap = n.unsigned_abs() as usize;
                continue;
            }
            tokens.truncate(n as usize);
            return Ok(tokens);
        }
    }

    /// The status of a failed int-returning tokenizer call (the C API only gives a message).
    fn token_error(&self, _tokens: &[i32]) -> Error {
        Error::last_call()
    }

    /// Token ids -> bytes (may be invalid UTF-8 when cut inside a character). `remove_special`
    /// drops BOS/EOS and other control tokens.
    pub fn detokenize(&self, tokens: &[i32], remove_special: bool) -> Result<Vec<u8>> {
        let n_tokens = len_i32("detokenize: token count", tokens.len())?;
        let mut cap = tokens.len() * 4 + 16;
        loop {
            let mut text = vec![0u8; cap];
            let max = len_i32("detokenize: text length", cap)?;
            // SAFETY: tokens has n_tokens ids, text has max bytes.
            let n = unsafe {
                sys::vwn_detokenize(
                    self.as_ptr(),
                    tokens.as_ptr(),
                    n_tokens,
                    text.as_mut_ptr().cast(),
                    max,
                    remove_special,
                )
            };
            if n == i32::MIN {
                return Err(self.token_error(tokens));
            }
            if n < 0 {
                cap = n.unsigned_abs() as usize;
                continue;
            }
            text.truncate(n as usize);
            return Ok(text);
        }
    }

    /// [`detokenize`](Self::detokenize) as a `String`, invalid UTF-8 replaced by U+FFFD.
    pub fn detokenize_lossy(&self, tokens: &[i32], remove_special: bool) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.detokenize(tokens, remove_special)?).into_owned())
    }

    /// The bytes of one token (possibly a partial UTF-8 character). `special`: render control
    /// tokens' text (else they give no bytes).
    pub fn token_to_piece(&self, token: i32, special: bool) -> Result<Vec<u8>> {
        let mut cap = 32usize;
        loop {
            let mut buf = vec![0u8; cap];
            let n = unsafe {
                sys::vwn_token_to_piece(self.as_ptr(), token, buf.as_mut_ptr().cast(), cap as i32, special)
            };
            if n == i32::MIN {
                return Err(self.token_error(&[token]));
            }
            if n < 0 {
                cap = n.unsigned_abs() as usize;
                continue;
            }
            buf.truncate(n as usize);
            return Ok(buf);
        }
    }

    /// Bytes a context with these parameters would allocate.
    pub fn context_estimate(&self, params: &ContextParams) -> Result<u64> {
        let p = params.to_raw();
        let mut bytes = 0u64;
        check(unsafe { sys::vwn_context_estimate(self.as_ptr(), &p, &mut bytes) })?;
        Ok(bytes)
    }

    /// A new context (KV caches, scratch, outputs) over this model; same as [`Context::new`].
    pub fn new_context(&self, params: &ContextParams) -> Result<Context<'_>> {
        Context::new(self, params)
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: every Context borrows the model, so none is alive here.
        unsafe { sys::vwn_model_free(self.raw.as_ptr()) }
    }
}
