/* model.h -- a loaded VWN model: hyperparameters (spec §1) and weights bound from a GGUF file.
 * Everything here is immutable after vwn_model_load returns, so a model can be shared by threads. */
#ifndef VWN_MODEL_H
#define VWN_MODEL_H

#include "vwn.h"
#include "ops/ops.h"   /* vwn_mat */

#include <stdatomic.h>

struct gguf_file;      /* lib/gguf.h */
struct vwn_tokenizer;  /* lib/tokenizer.h */

/* Most MTP modules a model may have (the loader's limit): a draft is at most this many tokens, a
 * verification at most this many + 1. */
#define VWN_MAX_MTP 16

typedef struct vwn_hparams {
    int32_t n_vocab, n_embd, n_layer, ghc_m, ghc_n;
    int32_t seg;          /* s  = D / m      */
    int32_t n_wide;       /* D' = n * s      */
    int32_t n_coef;       /* K  = 2m + n     */
    int32_t n_head, n_head_kv, head_dim, n_ff, mtp_depth, max_seq_len;
    bool ghc_dynamic, wide_embedding, tied_head, output_group_norm;
    float rope_theta, rms_eps, gn_eps;
} vwn_hparams;

/* One GHC module (spec §2). Small tensors are fp32 copies owned by the model. */
typedef struct vwn_ghc_weights {
    const float *statc;   /* [n, K] static coefficients C0                    */
    const float *scale;   /* [n, K] scale S (dynamic only, else NULL)          */
    const float *proj;    /* [s, K] the projection W (a [K, s] Linear) transposed, row e scaled by
                             the routing-norm gain norm[e] at load (dynamic only, else NULL) */
    const float *norm;    /* [s] routing RMSNorm gain (dynamic only, else NULL) */
} vwn_ghc_weights;

/* One VWN layer: attention and FFN sublayers, each wrapped by its GHC (spec §2-3). */
typedef struct vwn_layer_weights {
    vwn_ghc_weights attn_ghc, ffn_ghc;
    const float *attn_norm, *ffn_norm;        /* [D]                       */
    vwn_mat wq, wk, wv, wo;                   /* [Hq*hd, D] [Hkv*hd, D] x2 [D, Hq*hd] */
    vwn_mat w_gate, w_up, w_down;             /* [F, D] [F, D] [D, F]       */
} vwn_layer_weights;

/* One MTP module (spec §6). */
typedef struct vwn_mtp_weights {
    const float *enorm, *hnorm;               /* [D']                      */
    vwn_mat proj;                             /* [s, 2s]                   */
    vwn_layer_weights layer;
    const float *out_norm_w, *out_norm_b;     /* [D'] (group norm only)    */
    const float *final_norm;                  /* [D]                       */
} vwn_mtp_weights;

struct vwn_model {
    uint64_t magic;                 /* VWN_MAGIC_MODEL */
    vwn_hparams hp;
    struct gguf_file *gguf;         /* the parsed file (mapping or memory image) */
    struct vwn_tokenizer *tokenizer;

    vwn_mat embed;                  /* [V, D'] wide or [V, D] factorized            */
    vwn_mat embed_expand;           /* [D', D] factorized with n != m, else data NULL */
    vwn_layer_weights *layers;      /* [L]                                           */
    const float *out_norm_w, *out_norm_b; /* [D'] group norm (NULL if off)          */
    vwn_mat reduce;                 /* [D, D'] (data NULL when n == m)               */
    const float *final_norm;        /* [D]                                           */
    vwn_mat lm_head;                /* [V, D] (== embed when tied)                   */
    vwn_mtp_weights *mtp;           /* [mtp_depth]                                   */
    vwn_mat *_Atomic draft_head;    /* a float lm_head as Q8_0 for drafting, made on first use
                                       (vwn_model_draft_head); NULL until then */

    float *owned_f32;               /* one block holding every small fp32 tensor     */
    void *packed;                   /* one block holding every matrix the model packed (the
                                       vwn_mat.packed rows; lib/model.c pack_weights), or NULL */
    uint64_t packed_bytes;
    uint64_t n_params;
    uint64_t file_size;
    uint64_t weight_bytes_per_token;
    int32_t weight_type;
};

/* The output head vwn_generate's drafts use (vwn_draft_fast, lib/speculative.c): a float lm_head
 * (F32, F16, BF16) as Q8_0, made on the first call with ops's quantizer on n_threads threads and
 * kept with the model (the model stays shareable: concurrent first calls each make one, one is kept
 * and the others freed); lm_head itself when it is quantized already or there is no memory for the
 * copy. Drafts need not be exact -- verification runs the exact model -- and the head is most of a
 * draft's bytes (docs/performance.md, "A Q8_0 head for drafting"). */
const vwn_mat *vwn_model_draft_head(const vwn_model *model, const vwn_ops *ops, int n_threads);

/* Loads a model from a GGUF image in memory (copied), with every check of vwn_model_load and the
 * NaN/Inf scan (verify_tensors) on. Internal: for the fuzz targets and tests (lib/model.c). */
vwn_status vwn_model_load_memory(const void *data, size_t size, vwn_model **out_model);

#endif
