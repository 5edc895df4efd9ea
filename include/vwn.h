/*
 * vwn.h -- the public C ABI of libvwn, a CPU runtime for Virtual Width Network (VWN) language models.
 *
 * Conventions that hold for every function below unless its comment says otherwise:
 *
 *  - Status. Functions return a vwn_status. VWN_OK is 0; every failure also stores a detailed,
 *    human-readable message retrievable with vwn_last_error() on the calling thread.
 *  - Ownership. Objects returned through an out-pointer (vwn_model **, vwn_context **, ...) are owned
 *    by the caller and released with the matching *_free function. Pointers returned by accessors
 *    (logits, names, metadata) are borrowed: they stay valid until the owning object is freed or, for
 *    context outputs, until the next call that changes the context.
 *  - Threads. A vwn_model is immutable after loading and may be shared by any number of contexts in
 *    any number of threads. A vwn_context and a vwn_sampler are used by one thread at a time (callers
 *    serialise access). Functions taking only a model are thread-safe.
 *  - Stack. A call uses at most about 64 KiB of the calling thread's stack (the matrix kernels keep
 *    blocks of partial sums there: 50 KB at most, measured with gcc -fstack-usage); give threads
 *    with small default stacks (musl: 128 KiB) at least 256 KiB. OpenMP's worker threads are the
 *    OpenMP runtime's own (OMP_STACKSIZE).
 *  - Errors never abort, exit or print; a failed call leaves its objects as they were (no cached
 *    token is lost) unless its comment says otherwise.
 *  - Handles carry a magic tag: passing a freed or foreign pointer is reported as VWN_ERR_BAD_HANDLE
 *    in the common cases (this is a diagnostic, not a guarantee: memory reuse can hide it).
 *  - Sizes are fixed-width integers; tokens are int32_t ids in [0, n_vocab).
 *
 * The header compiles as C11 and C++ (extern "C").
 */
#ifndef VWN_H
#define VWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(VWN_SHARED)
#  ifdef VWN_BUILD
#    define VWN_API __declspec(dllexport)
#  else
#    define VWN_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__) || defined(__clang__)
#  define VWN_API __attribute__((visibility("default")))
#else
#  define VWN_API
#endif

/* ---------------------------------------------------------------------------------------------
 * Version
 * ------------------------------------------------------------------------------------------- */

#define VWN_VERSION_MAJOR 0
#define VWN_VERSION_MINOR 2
#define VWN_VERSION_PATCH 0
#define VWN_VERSION_STRING "0.2.0"

/* Returns the library's version string ("MAJOR.MINOR.PATCH"); static storage. Thread-safe. */
VWN_API const char *vwn_version(void);
/* Returns (MAJOR << 16) | (MINOR << 8) | PATCH of the linked library. Thread-safe. */
VWN_API uint32_t vwn_version_number(void);

/* ---------------------------------------------------------------------------------------------
 * Status codes and errors
 * ------------------------------------------------------------------------------------------- */

typedef enum vwn_status {
    VWN_OK = 0,
    VWN_ERR_INVALID_ARG = 1,       /* NULL pointer, negative size, bad enum value, bad params    */
    VWN_ERR_BAD_HANDLE = 2,        /* freed, uninitialised or foreign handle (magic mismatch)     */
    VWN_ERR_IO = 3,                /* a file could not be opened, read, written or mapped         */
    VWN_ERR_BAD_MAGIC = 4,         /* not a GGUF file                                             */
    VWN_ERR_BAD_VERSION = 5,       /* a GGUF version other than 3, or an unknown state version    */
    VWN_ERR_TRUNCATED = 6,         /* the file ends before what its header describes              */
    VWN_ERR_BAD_FORMAT = 7,        /* malformed GGUF: counts, lengths, types, offsets, alignment  */
    VWN_ERR_UNSUPPORTED = 8,       /* valid but unsupported: tensor type, architecture, tokenizer */
    VWN_ERR_BAD_MODEL = 9,         /* inconsistent VWN metadata, missing/extra/mis-shaped tensor  */
    VWN_ERR_OUT_OF_MEMORY = 10,    /* an allocation failed or would exceed a stated limit         */
    VWN_ERR_TOKEN_OUT_OF_RANGE = 11, /* a token id outside [0, n_vocab)                           */
    VWN_ERR_CONTEXT_FULL = 12,     /* the tokens do not fit in the context (n_ctx)                */
    VWN_ERR_BATCH_TOO_LARGE = 13,  /* more tokens in one call than n_batch allows to keep outputs */
    VWN_ERR_NOT_KEPT = 14,         /* an output was asked for that was not computed or kept       */
    VWN_ERR_BUFFER_TOO_SMALL = 15, /* a caller's buffer is too small (the size needed is stated)  */
    VWN_ERR_NO_MTP = 16,           /* the model (or context) has no MTP modules for this request  */
    VWN_ERR_NO_DRAFT = 17,         /* verify called without a pending draft                       */
    VWN_ERR_STATE_MISMATCH = 18,   /* saved state belongs to another model or context shape      */
    VWN_ERR_CHECKSUM = 19,         /* saved state is corrupt (checksum mismatch)                  */
    VWN_ERR_ABORTED = 20,          /* the abort callback stopped the computation                  */
    VWN_ERR_INTERNAL = 21,         /* a bug in libvwn; please report it with the message          */
    VWN_STATUS_COUNT_
} vwn_status;

/* Static English name of a status ("VWN_ERR_TRUNCATED: file truncated" style). Never NULL. */
VWN_API const char *vwn_status_string(vwn_status status);

/* The detailed message of the last failed call on this thread ("" if none). The pointer is to
 * thread-local storage, valid until the next libvwn call on this thread. */
VWN_API const char *vwn_last_error(void);

/* The status of the last failed call on this thread (VWN_OK if the last call succeeded). For the
 * functions that return a count instead of a status (vwn_tokenize, vwn_detokenize,
 * vwn_token_to_piece, vwn_model_meta, ...), this says why they failed. Thread-local. */
VWN_API vwn_status vwn_last_status(void);

/* ---------------------------------------------------------------------------------------------
 * Tensor types and SIMD levels
 * ------------------------------------------------------------------------------------------- */

typedef enum vwn_type {          /* the GGUF/ggml numbering */
    VWN_TYPE_F32 = 0,
    VWN_TYPE_F16 = 1,
    VWN_TYPE_Q4_0 = 2,
    VWN_TYPE_Q8_0 = 8,
    VWN_TYPE_BF16 = 30
} vwn_type;

/* Static name of a tensor type ("f32", "f16", "q4_0", "q8_0", "bf16", "?" for anything else). */
VWN_API const char *vwn_type_name(int32_t type);

typedef enum vwn_simd {
    VWN_SIMD_AUTO = -1,   /* the best level this CPU supports (or $VWN_SIMD, if set)       */
    VWN_SIMD_SCALAR = 0,  /* portable C, the reference every other level is tested against */
    VWN_SIMD_AVX2 = 1,    /* x86-64 AVX2 + FMA + F16C                                      */
    VWN_SIMD_AVX512 = 2,  /* x86-64 AVX-512 F/BW/VL (+BF16/VNNI where present)             */
    VWN_SIMD_NEON = 3     /* AArch64 NEON                                                  */
} vwn_simd;

/* The best SIMD level this CPU and build support. Thread-safe. */
VWN_API vwn_simd vwn_simd_best(void);
/* True if level can run on this CPU and is compiled in. Thread-safe. */
VWN_API bool vwn_simd_supported(vwn_simd level);
/* Static name of a level ("scalar", "avx2", "avx512", "neon", "auto"). */
VWN_API const char *vwn_simd_name(vwn_simd level);

/* ---------------------------------------------------------------------------------------------
 * Model
 * ------------------------------------------------------------------------------------------- */

typedef struct vwn_model vwn_model;

typedef struct vwn_model_params {
    bool use_mmap;        /* map the file (default true); false reads it into memory. Mapped,
                           * the weights are advised into 2 MiB pages and faulted in at load
                           * (all but an embedding table read a row per token: that stays lazy) */
    bool verify_tensors;  /* scan every float tensor for NaN/Inf at load (default false)       */
} vwn_model_params;

/* Defaults for vwn_model_load. Thread-safe. */
VWN_API vwn_model_params vwn_model_default_params(void);

/* Loads a GGUF model file. params may be NULL (defaults). On success *out_model owns the model
 * (free it with vwn_model_free). On failure *out_model is set to NULL and nothing leaks.
 * Errors: INVALID_ARG, IO, BAD_MAGIC, BAD_VERSION, TRUNCATED, BAD_FORMAT, UNSUPPORTED, BAD_MODEL,
 * OUT_OF_MEMORY. Thread-safe (each call loads its own model). */
VWN_API vwn_status vwn_model_load(const char *path, const vwn_model_params *params,
                                  vwn_model **out_model);

/* Frees a model. NULL is a no-op, and so is a pointer that is not a live model (a freed one in the
 * common case). Every context made from the model must be freed first. Does not change
 * vwn_last_error(), so a caller may free before reporting an earlier error. */
VWN_API void vwn_model_free(vwn_model *model);

typedef struct vwn_model_info {
    int32_t n_vocab;        /* V                                   */
    int32_t n_embd;         /* D, backbone width                   */
    int32_t n_layer;        /* L                                   */
    int32_t ghc_m;          /* m                                   */
    int32_t ghc_n;          /* n                                   */
    int32_t n_embd_wide;    /* D' = n * D / m                      */
    int32_t n_head;         /* Hq                                  */
    int32_t n_head_kv;      /* Hkv                                 */
    int32_t head_dim;       /* hd                                  */
    int32_t n_ff;           /* F                                   */
    int32_t mtp_depth;      /* k                                   */
    int32_t max_seq_len;    /* trained context length              */
    bool ghc_dynamic;
    bool wide_embedding;    /* true: embed [V, D']; false: factorized */
    bool tied_head;
    bool output_group_norm;
    float rope_theta;
    float rms_norm_eps;
    float group_norm_eps;
    int32_t weight_type;    /* vwn_type holding most matrix elements */
    uint64_t n_params;      /* parameters in all tensors           */
    uint64_t file_size;     /* bytes                               */
    uint64_t weight_bytes_per_token; /* bytes of weights one decoded token streams (main model):
                                        its matrices, the embedding row, and the fp32 norm gains
                                        and GHC coefficients (static, scale, projection)        */
} vwn_model_info;

/* Fills *info. Errors: INVALID_ARG, BAD_HANDLE. Thread-safe. */
VWN_API vwn_status vwn_model_get_info(const vwn_model *model, vwn_model_info *info);

/* Bytes of weights the model holds repacked for the kernels this CPU runs: on AVX-512 CPUs the
 * F32, F16 and BF16 matrices (in 16-row panels), on AVX-512 VNNI CPUs also the Q8_0 matrices whose
 * rows are a multiple of 256 values (the mapped pages they replace are released, so resident
 * memory stays about the file's size; docs/design.md, "Packed Q8_0 rows" and "Float products on
 * AVX-512"). 0 when nothing is packed: another CPU or weight type, a model read into memory
 * (use_mmap false), or VWN_REPACK=0 in the environment at load. 0 for an invalid model.
 * Thread-safe. */
VWN_API uint64_t vwn_model_packed_bytes(const vwn_model *model);

/* Metadata value of key as text (strings verbatim, numbers in decimal, bools true/false, arrays as
 * "[array of N <type>]"). Two-call convention: returns the length without the NUL; if buf_size is
 * too small the text is truncated (always NUL-terminated when buf_size > 0). Returns -1 if the key
 * is absent or the arguments are invalid. Thread-safe. */
VWN_API int32_t vwn_model_meta(const vwn_model *model, const char *key, char *buf, size_t buf_size);
/* Number of metadata keys (-1 for an invalid model); name of key i (borrowed, valid for the model's
 * life), NULL if i is out of range. */
VWN_API int32_t vwn_model_meta_count(const vwn_model *model);
VWN_API const char *vwn_model_meta_key(const vwn_model *model, int32_t i);

typedef struct vwn_tensor_info {
    const char *name;       /* borrowed, valid for the model's life */
    int32_t type;           /* vwn_type                              */
    int32_t n_dims;
    int64_t ne[4];          /* GGUF order: ne[0] is the innermost (row length) */
    uint64_t offset;        /* byte offset in the file               */
    uint64_t n_bytes;
} vwn_tensor_info;

/* Number of tensors in the file (-1 for an invalid model); info of tensor i (offset is from the
 * start of the file). Errors: INVALID_ARG (i out of range), BAD_HANDLE. Thread-safe. */
VWN_API int32_t vwn_model_tensor_count(const vwn_model *model);
VWN_API vwn_status vwn_model_tensor_info(const vwn_model *model, int32_t i, vwn_tensor_info *info);
/* Dequantizes a whole tensor (found by name) to fp32 into dst, which must hold n_elements floats.
 * Errors: INVALID_ARG (unknown name), BUFFER_TOO_SMALL. Thread-safe. */
VWN_API vwn_status vwn_model_tensor_read_f32(const vwn_model *model, const char *name, float *dst,
                                             size_t n_elements);

/* ---------------------------------------------------------------------------------------------
 * Tokenizer (stored in the model file)
 * ------------------------------------------------------------------------------------------- */

typedef enum vwn_tokenizer_kind {
    VWN_TOKENIZER_BYTES = 0,  /* id = byte value, V = 256                                   */
    VWN_TOKENIZER_GPT2 = 1,   /* byte-level BPE with the GPT-2 regex pre-tokenizer           */
    VWN_TOKENIZER_LLAMA = 2   /* SentencePiece-style BPE with scores and byte fallback       */
} vwn_tokenizer_kind;

/* The kind of the model's tokenizer (docs/tokenizer.md); (vwn_tokenizer_kind)-1 with the error set
 * for a bad handle. Thread-safe. */
VWN_API vwn_tokenizer_kind vwn_tokenizer_get_kind(const vwn_model *model);

/* Special tokens; -1 when the model has none. Thread-safe. */
VWN_API int32_t vwn_token_bos(const vwn_model *model);
VWN_API int32_t vwn_token_eos(const vwn_model *model);
/* True if token ends a generation (EOS or another end-of-generation control token). */
VWN_API bool vwn_token_is_eog(const vwn_model *model, int32_t token);
/* True if token is a control/special token (not text). */
VWN_API bool vwn_token_is_control(const vwn_model *model, int32_t token);

/* Text -> token ids. text need not be NUL-terminated (text_len bytes; any bytes, also invalid
 * UTF-8). add_special: prepend BOS if the model asks for it. parse_special: recognise control-token
 * texts such as "<|endoftext|>" in text. Returns the number of tokens written; if n_tokens_max is too
 * small, returns -(number needed) and writes nothing useful. Returns INT32_MIN on other errors
 * (message in vwn_last_error). Thread-safe. */
VWN_API int32_t vwn_tokenize(const vwn_model *model, const char *text, int32_t text_len,
                             int32_t *tokens, int32_t n_tokens_max, bool add_special,
                             bool parse_special);

/* Token ids -> text. remove_special: drop BOS/EOS and other control tokens; else render their text.
 * Returns the number of bytes written (no NUL is added); -(number needed) if text_len_max is too
 * small; INT32_MIN on other errors (e.g. a token out of range). Thread-safe. */
VWN_API int32_t vwn_detokenize(const vwn_model *model, const int32_t *tokens, int32_t n_tokens,
                               char *text, int32_t text_len_max, bool remove_special);

/* The bytes of one token (may be a partial UTF-8 sequence). special: render control tokens'
 * text (else they give ""). Same return convention as vwn_detokenize. Thread-safe. */
VWN_API int32_t vwn_token_to_piece(const vwn_model *model, int32_t token, char *buf,
                                   int32_t buf_len, bool special);

/* ---------------------------------------------------------------------------------------------
 * Context: KV caches, scratch, outputs
 * ------------------------------------------------------------------------------------------- */

typedef struct vwn_context vwn_context;

/* Called between units of work during vwn_decode; return true to abort the call. */
typedef bool (*vwn_abort_callback)(void *user_data);

typedef struct vwn_context_params {
    int32_t n_ctx;          /* context length in tokens (default: the model's max_seq_len)     */
    int32_t n_batch;        /* most tokens one vwn_decode call may process (default 512); a
                               longer call is split internally; it also bounds logits_all output */
    int32_t n_threads;      /* compute threads (default: number of cores, at most 8)          */
    bool logits_all;        /* keep the logits of every position of a call (default false:
                               only the last position)                                         */
    bool mtp;               /* run the MTP modules with every vwn_decode, so that their logits
                               can be read and drafts made (default true; off when the model has
                               none). Their logits -- a vocabulary head each -- are computed with
                               the call only with logits_all, otherwise when first asked for.
                               A host that never drafts nor reads them sets this false and pays
                               nothing for the modules                                         */
    int32_t simd;           /* vwn_simd; VWN_SIMD_AUTO by default (environment VWN_SIMD may
                               name scalar|avx2|avx512|neon to force a level)                 */
    uint64_t memory_limit;  /* refuse to allocate more than this many bytes (0 = no limit)    */
    vwn_abort_callback abort_callback; /* may be NULL                                         */
    void *abort_user_data;
    int32_t kv_type;        /* element type of the KV caches (main model and MTP modules):
                               VWN_TYPE_F32 (0, the default: exact against the reference),
                               VWN_TYPE_F16 (half the memory and half the bytes attention reads
                               per token; keys and values rounded to fp16 when stored, as
                               llama.cpp's default cache) or VWN_TYPE_Q8_0 (34 bytes per 32
                               values, 0.27x F32: each key and value row quantized per 32 values
                               as ggml's q8_0 cache; needs head_dim % 32 == 0, else UNSUPPORTED).
                               Saved states are F32 whatever the type and load into a context of
                               any type. Other types: INVALID_ARG                              */
} vwn_context_params;

/* Defaults for vwn_context_new. Thread-safe. */
VWN_API vwn_context_params vwn_context_default_params(void);

/* Bytes vwn_context_new would allocate for this model and params (KV caches, states, scratch,
 * outputs). Errors: INVALID_ARG, BAD_HANDLE. Thread-safe. */
VWN_API vwn_status vwn_context_estimate(const vwn_model *model, const vwn_context_params *params,
                                        uint64_t *out_bytes);

/* Creates a context over a model (params may be NULL). The model must outlive the context.
 * Errors: INVALID_ARG, BAD_HANDLE, OUT_OF_MEMORY (also when the estimate exceeds memory_limit).
 * Thread-safe with respect to the model. */
VWN_API vwn_status vwn_context_new(const vwn_model *model, const vwn_context_params *params,
                                   vwn_context **out_ctx);

/* Frees a context. NULL is a no-op. */
VWN_API void vwn_context_free(vwn_context *ctx);

/* The model of a context (borrowed). */
VWN_API const vwn_model *vwn_context_model(const vwn_context *ctx);
/* The parameters the context was made with (after defaults were applied). */
VWN_API vwn_context_params vwn_context_get_params(const vwn_context *ctx);

/* Appends n_tokens tokens at the next positions and runs the model over them (a whole prompt or one
 * token). The main model's logits are kept for the last position (or every position of the call with
 * logits_all). MTP module j (1-based) runs at every position i whose input token t[i+j] is known (so
 * it lags the main model by j positions); its logits at i predict t[i+j+1]. With logits_all they are
 * computed by this call for every position it brings module j to; otherwise only the logits of
 * module j's last position (length - 1 - j) are available, computed when first asked for.
 * Errors: INVALID_ARG, BAD_HANDLE, TOKEN_OUT_OF_RANGE (nothing is appended), CONTEXT_FULL (nothing
 * is appended), ABORTED (the context is rolled back to its length before the call), OUT_OF_MEMORY. */
VWN_API vwn_status vwn_decode(vwn_context *ctx, const int32_t *tokens, int32_t n_tokens);

/* Main-model logits (n_vocab floats) at absolute position pos, computed by the latest vwn_decode
 * call; pos = -1 means the last position. Borrowed until the next call that changes the context.
 * Errors: NOT_KEPT (not computed by the latest call, or not kept), INVALID_ARG, BAD_HANDLE. */
VWN_API vwn_status vwn_get_logits(vwn_context *ctx, int32_t pos, const float **out_logits);

/* Logits of MTP module j (1..mtp_depth) at absolute position pos (they predict t[pos+j+1]).
 * With logits_all: those computed by the latest vwn_decode call. Otherwise: only pos = length-1-j
 * (the module's last position; pos = -1 means that one), computed on the first call -- which may run
 * the lagging MTP modules, so it can also return ABORTED or OUT_OF_MEMORY. Borrowed like the logits.
 * Errors: NO_MTP, NOT_KEPT, INVALID_ARG, BAD_HANDLE, ABORTED. */
VWN_API vwn_status vwn_get_mtp_logits(vwn_context *ctx, int32_t j, int32_t pos,
                                      const float **out_logits);

/* Number of tokens in the main cache (the next position). */
VWN_API int32_t vwn_context_length(const vwn_context *ctx);
/* Positions of MTP module j's cache (<= length - j). -1 on bad arguments. */
VWN_API int32_t vwn_context_mtp_length(const vwn_context *ctx, int32_t j);
/* The tokens in the cache (borrowed, vwn_context_length of them). */
VWN_API const int32_t *vwn_context_tokens(const vwn_context *ctx);

/* Removes every position >= n_keep from the main and MTP caches (for rejected drafts or to
 * rewind). Logits of the following decode equal those of never having decoded the removed tokens.
 * Errors: INVALID_ARG (n_keep < 0 or > length), BAD_HANDLE. */
VWN_API vwn_status vwn_context_truncate(vwn_context *ctx, int32_t n_keep);
/* Empties the context (same as truncate to 0). */
VWN_API vwn_status vwn_context_clear(vwn_context *ctx);

/* Sets the number of compute threads for later calls (1..256). */
VWN_API vwn_status vwn_context_set_threads(vwn_context *ctx, int32_t n_threads);

/* Time spent so far, for benchmarks (microseconds): total decode time and the part inside GHC. */
typedef struct vwn_perf {
    uint64_t n_eval_tokens;  /* tokens evaluated by the main model          */
    uint64_t n_eval_calls;
    double t_eval_us;        /* wall time inside vwn_decode                 */
    double t_ghc_us;         /* part of it spent in GHC (coefficients, read, carry, write) */
    double t_mtp_us;         /* part of it spent in MTP modules              */
} vwn_perf;
VWN_API vwn_status vwn_context_get_perf(const vwn_context *ctx, vwn_perf *out);
VWN_API vwn_status vwn_context_reset_perf(vwn_context *ctx);

/* ---------------------------------------------------------------------------------------------
 * Samplers
 * ------------------------------------------------------------------------------------------- */

typedef struct vwn_sampler vwn_sampler;

typedef struct vwn_sampler_params {
    uint64_t seed;              /* RNG seed (same seed, same draws on every platform)          */
    float temperature;          /* <= 0: greedy (argmax, ties to the lowest id)               */
    int32_t top_k;              /* <= 0: off                                                   */
    float top_p;                /* >= 1: off                                                   */
    float min_p;                /* <= 0: off                                                   */
    float repeat_penalty;       /* 1: off; > 1 divides positive / multiplies negative logits   */
    float frequency_penalty;    /* 0: off; subtracts count * penalty                           */
    float presence_penalty;     /* 0: off; subtracts penalty once per token seen               */
    int32_t penalty_last_n;     /* window of accepted tokens the penalties look at (default 64) */
} vwn_sampler_params;

/* Defaults: seed 0, temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, penalties off. */
VWN_API vwn_sampler_params vwn_sampler_default_params(void);

/* Creates the standard chain: penalties -> top-k -> temperature -> softmax -> top-p -> min-p ->
 * renormalise -> draw (exact order and formulas in docs/sampling.md). params may be NULL (defaults).
 * Errors: INVALID_ARG, OUT_OF_MEMORY. */
VWN_API vwn_status vwn_sampler_new(const vwn_sampler_params *params, vwn_sampler **out);

/* A caller-defined sampler. probs() turns logits into a probability distribution over n_vocab
 * tokens (summing to 1); the library then draws from it with its own seeded RNG, so speculative
 * decoding can use the distribution. accept() is told every token the generation keeps; reset()
 * forgets history; free_user() releases user (each may be NULL). */
typedef struct vwn_sampler_iface {
    vwn_status (*probs)(void *user, const float *logits, int32_t n_vocab, float *probs_out);
    void (*accept)(void *user, int32_t token);
    void (*reset)(void *user);
    void (*free_user)(void *user);
} vwn_sampler_iface;
VWN_API vwn_status vwn_sampler_new_custom(const vwn_sampler_iface *iface, void *user,
                                          uint64_t seed, vwn_sampler **out);

/* Frees a sampler (calls free_user for custom ones). NULL is a no-op. */
VWN_API void vwn_sampler_free(vwn_sampler *smpl);

/* The distribution the sampler draws from, for these logits and its current history.
 * probs_out holds n_vocab floats. Greedy gives a one-hot vector. */
VWN_API vwn_status vwn_sampler_probs(vwn_sampler *smpl, const float *logits, int32_t n_vocab,
                                     float *probs_out);
/* Draws a token from the logits (does not call accept). */
VWN_API vwn_status vwn_sampler_sample(vwn_sampler *smpl, const float *logits, int32_t n_vocab,
                                      int32_t *out_token);
/* Draws a token from an explicit distribution with the sampler's RNG: the inverse CDF in token-id
 * order at one uniform draw (probabilities need not sum exactly to 1; negative ones are an error). */
VWN_API vwn_status vwn_sampler_draw(vwn_sampler *smpl, const float *probs, int32_t n_vocab,
                                    int32_t *out_token);
/* A uniform draw in [0, 1) from the sampler's RNG (used by speculative acceptance). */
VWN_API vwn_status vwn_sampler_uniform(vwn_sampler *smpl, double *out);
/* Records a kept token in the sampler's history (penalties). */
VWN_API vwn_status vwn_sampler_accept(vwn_sampler *smpl, int32_t token);
/* Forgets the history and reseeds the RNG with the original seed. */
VWN_API vwn_status vwn_sampler_reset(vwn_sampler *smpl);
/* True if the sampler is greedy (argmax); speculative decoding then uses exact matching. */
VWN_API bool vwn_sampler_is_greedy(const vwn_sampler *smpl);

/* ---------------------------------------------------------------------------------------------
 * Generation
 * ------------------------------------------------------------------------------------------- */

/* Called for each kept token with the text it completes. piece holds whole UTF-8 characters only
 * (bytes of a character split over tokens are held back until complete, and so is text that may be
 * the start of a stop string); piece_len may be 0. At the end, text still held back is flushed by
 * one last call with token = -1. Return false to stop the generation. */
typedef bool (*vwn_token_callback)(int32_t token, const char *piece, int32_t piece_len,
                                   void *user_data);

typedef struct vwn_generate_params {
    int32_t n_predict;          /* token budget (default 128; <0: until EOS or context full)   */
    vwn_sampler *sampler;       /* NULL: greedy                                                 */
    const char *const *stop;    /* stop strings (may be NULL); generation stops when the output
                                   ends with one; the stop string itself is not emitted        */
    int32_t n_stop;
    bool stop_at_eog;           /* default true                                                 */
    bool add_special;           /* tokenize the prompt with BOS (default true)                  */
    bool parse_special;         /* recognise special-token text in the prompt (default false)   */
    int32_t spec_depth;         /* speculative decoding with the MTP heads: 0 off (default),
                                   1..mtp_depth fixed depth, -1 adaptive                        */
    vwn_token_callback callback;
    void *user_data;
} vwn_generate_params;

typedef enum vwn_stop_reason {
    VWN_STOP_NONE = 0, VWN_STOP_BUDGET = 1, VWN_STOP_EOG = 2, VWN_STOP_STRING = 3,
    VWN_STOP_CALLBACK = 4, VWN_STOP_CONTEXT_FULL = 5
} vwn_stop_reason;

typedef struct vwn_generate_stats {
    int32_t n_prompt;           /* prompt tokens evaluated                                      */
    int32_t n_generated;        /* tokens kept                                                  */
    int32_t stop_reason;        /* vwn_stop_reason                                              */
    double t_prompt_us;         /* prompt evaluation time                                       */
    double t_generate_us;       /* generation time                                              */
    /* speculative decoding (zero when off) */
    int32_t n_drafted;          /* draft tokens proposed                                        */
    int32_t n_accepted;         /* draft tokens accepted                                        */
    int32_t n_verify;           /* verification steps                                           */
    int32_t accepted_at_depth[16]; /* accepted_at_depth[d]: drafts accepted at depth d+1        */
    int32_t drafted_at_depth[16];  /* drafted_at_depth[d]: drafts proposed at depth d+1         */
    double t_draft_us;          /* time in drafting                                             */
    double t_verify_us;         /* time in verification                                         */
} vwn_generate_stats;

VWN_API vwn_generate_params vwn_generate_default_params(void);

/* Tokenizes prompt, appends it to the context (which may already hold tokens), then generates.
 * stats may be NULL. Errors: as vwn_decode and vwn_tokenize. */
VWN_API vwn_status vwn_generate(vwn_context *ctx, const char *prompt,
                                const vwn_generate_params *params, vwn_generate_stats *stats);
/* The same with a prompt given as token ids (n_prompt may be 0 to continue the context). */
VWN_API vwn_status vwn_generate_tokens(vwn_context *ctx, const int32_t *prompt, int32_t n_prompt,
                                       const vwn_generate_params *params,
                                       vwn_generate_stats *stats);

/* ---------------------------------------------------------------------------------------------
 * Speculative decoding with the MTP heads (low level; vwn_generate with spec_depth does the loop)
 *
 * After vwn_decode, the host picks the next token t (from vwn_get_logits). vwn_draft runs MTP
 * module 1 at the last position with t, module 2 with module 1's proposal, ..., and returns up to
 * depth draft tokens d1..dk (greedy, or drawn with sampler, with the draft probability of each:
 * under a greedy draft 1.0, the draft distribution being a point mass on the argmax).
 * vwn_verify then decodes [t, d1..dk] in one batched call, accepts the longest prefix the target
 * agrees with (exact match for a greedy sampler; the rejection rule min(1, p_target/p_draft) with a
 * residual draw otherwise, so outputs follow the target distribution exactly), rolls the main and
 * MTP caches back past the first rejection, and returns the kept tokens: t, the accepted drafts and
 * one more token from the target (the correction or the bonus token, not yet decoded). The MTP
 * modules see the kept tokens in the next vwn_draft, in one batch with its own positions (so
 * vwn_context_mtp_length lags behind until then; vwn_decode and vwn_get_mtp_logits catch up first).
 *
 * vwn_draft's greedy drafts are the argmax of the MTP modules' logits (those vwn_get_mtp_logits
 * reports). vwn_generate's own loop drafts faster: with a float output head (F32, F16, BF16) it
 * drafts through a Q8_0 copy of the head, made by its first draft on a model and kept with the
 * model (26 MB more memory for a 32000 x 768 head; 20-40 ms once), since the head is most of a
 * draft's bytes. Its drafts can then differ where the top logits nearly tie; what it keeps never
 * does (verification runs the exact model). The environment variable VWN_DRAFT_HEAD=exact, read by
 * vwn_context_new, makes that loop draft through the head itself.
 * ------------------------------------------------------------------------------------------- */

/* Errors: NO_MTP, INVALID_ARG (depth outside 1..mtp_depth, empty context), TOKEN_OUT_OF_RANGE. */
VWN_API vwn_status vwn_draft(vwn_context *ctx, int32_t next_token, int32_t depth,
                             vwn_sampler *sampler, int32_t *out_drafts, float *out_draft_probs,
                             int32_t *out_n_drafts);

/* out_tokens must hold depth + 2 tokens. *out_n receives how many were kept: 1 + accepted + 1;
 * the last one is not yet decoded (feed it as next_token to the next vwn_draft, or to vwn_decode).
 * Errors: NO_DRAFT (no draft pending since the last decode), CONTEXT_FULL, others of vwn_decode. */
VWN_API vwn_status vwn_verify(vwn_context *ctx, vwn_sampler *sampler, int32_t *out_tokens,
                              int32_t *out_n);

/* ---------------------------------------------------------------------------------------------
 * Saved state (KV caches of the main model and MTP modules, positions, tokens)
 * ------------------------------------------------------------------------------------------- */

/* A saved state holds what a context needs to continue exactly where it stood: the tokens, the
 * main and MTP KV cache rows, the MTP modules' lengths and wide-state ring, and the outputs of the
 * latest call (so vwn_get_logits works right after a restore). Not saved: a pending draft, the perf
 * counters, the parameters. A restored context continues with logits bit-identical to those of the
 * context that saved it. The format (versioned "VWNS" header, a fingerprint of the model, a 64-bit
 * checksum) is described in lib/state.c and docs/reliability.md.
 *
 * Bytes needed to save the context's current state. Errors: INVALID_ARG, BAD_HANDLE. */
VWN_API vwn_status vwn_state_size(const vwn_context *ctx, uint64_t *out_size);
/* Saves into buf (size bytes); *out_written (may be NULL) receives the bytes written, 0 on failure.
 * Errors: INVALID_ARG, BAD_HANDLE, BUFFER_TOO_SMALL (needed size in the message). */
VWN_API vwn_status vwn_state_save(const vwn_context *ctx, void *buf, uint64_t size,
                                  uint64_t *out_written);
/* Restores a state saved by vwn_state_save into a context of the same model (the fingerprint is
 * checked). The context may have other parameters: any n_ctx holding the saved tokens, any n_batch,
 * logits_all on or off (the last saved output rows that fit are kept); a state saved with MTP also
 * loads into a context with MTP off (the MTP part is dropped), but not the reverse.
 * Errors, in the order they are checked: INVALID_ARG, BAD_HANDLE, BAD_FORMAT (not a state: magic),
 * BAD_VERSION, TRUNCATED (shorter than its header states), BAD_FORMAT (longer), CHECKSUM,
 * STATE_MISMATCH (another model or shape, or saved without MTP into an MTP context), CONTEXT_FULL
 * (n_ctx smaller than the saved length), BAD_FORMAT (inconsistent contents), OUT_OF_MEMORY.
 * On failure the context is unchanged. */
VWN_API vwn_status vwn_state_load(vwn_context *ctx, const void *buf, uint64_t size);
/* The same through a file (written whole; removed again if writing fails). Errors: as above, and IO
 * (the message names the file). */
VWN_API vwn_status vwn_state_save_file(const vwn_context *ctx, const char *path);
VWN_API vwn_status vwn_state_load_file(vwn_context *ctx, const char *path);

#ifdef __cplusplus
}
#endif

#endif /* VWN_H */
