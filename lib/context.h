/* context.h -- a context: the mutable half of inference. KV caches of the main model and of each
 * MTP module, the ring of recent wide states the MTP modules consume, scratch, and outputs.
 * One thread at a time uses a context; the model it points to is shared and read-only. */
#ifndef VWN_CONTEXT_H
#define VWN_CONTEXT_H

#include "model.h"

/* Scratch for one batch of up to n_batch tokens (sizes in floats, per token unless noted). */
typedef struct vwn_scratch {
    float *wide;      /* [nb][D']  wide state H being updated                         */
    float *carry;     /* [nb][D']  carried state G                                    */
    float *coef;      /* [min(nb, TPT threads)][n*K] GHC coefficients C (ghc.h)        */
    float *wcoef;     /* [nb][n*m] GHC write coefficients of the pending write        */
    float *ghc_tmp;   /* [threads][n*K + D'] one token's GHC coefficients and carry   */
    float *x;         /* [nb][D]   sublayer input (read)                              */
    float *xn;        /* [nb][max(D, Hq*hd)] normalised input / attention output      */
    float *y;         /* [nb][D]   sublayer output                                    */
    float *q;         /* [nb][Hq*hd]                                                   */
    float *k, *v;     /* [nb][Hkv*hd]                                                  */
    float *ff1, *ff2; /* [nb][F]                                                       */
    float *att;       /* attention scratch (vwn_attention_scratch_floats)              */
    float *emb;       /* [nb][max(D', D)] embedding rows / MTP inputs / GHC routing rows */
    float *mtp_in;    /* [nb][n][2s] MTP projection inputs                             */
    float *head;      /* [nb][D] output head vectors                                   */
    void *xq;         /* the largest matmul input as its kernels take it: Q8_0 blocks, or (AVX-512, float
                       * weights, 5+ tokens) activations prepared by vwn_ops.prepare_x */
    const float **prow; /* [nb] row pointers to the MTP input states                   */
} vwn_scratch;

struct vwn_context {
    uint64_t magic;                /* VWN_MAGIC_CONTEXT */
    const vwn_model *model;
    vwn_context_params params;     /* after defaults */
    const vwn_ops *ops;
    int32_t n_threads;             /* threads the context may use (vwn_context_set_threads)     */
    int32_t n_run;                 /* threads granted for the call in progress (thread budget) */
    bool draft_exact;              /* VWN_DRAFT_HEAD=exact: vwn_draft_fast drafts through lm_head too */
    int64_t att_split;             /* attention work from which it takes several threads (forward.c) */

    /* main model */
    int32_t n_past;                /* tokens in the cache                               */
    int32_t *tokens;               /* [n_ctx] the tokens in the cache                  */
    /* KV caches: rows of hd values of params.kv_type (fp32, fp16 bits or Q8_0 blocks), kv_row
     * bytes each; per layer (module) n_ctx * Hkv rows, laid out as attention.h says (vwn_kv_row) */
    size_t kv_row;
    void *k_cache, *v_cache;       /* [L] layers                                       */
    float *rope_cos, *rope_sin;    /* [n_ctx][hd/2]                                    */

    /* MTP modules (k = mtp_depth when params.mtp, else 0) */
    int32_t n_mtp;
    int32_t *mtp_len;              /* [k] positions in module j's cache (j from 0)     */
    void *mtp_k, *mtp_v;           /* [k] modules                                      */
    /* Ring of wide states: stage 0 = main final state h'_L (before group norm), stage j = output
     * U of module j; stages 0..k-1 are kept. Slot of position p is p % ring. */
    int32_t ring;
    float *states;                 /* [k][ring][D']                                    */
    int32_t *state_pos;            /* [k][ring] position held by the slot, -1 if none  */

    /* outputs of the latest decode */
    float *logits;                 /* [n_out][V]                                       */
    int32_t n_out;                 /* capacity in rows (n_batch if logits_all else 1)  */
    int32_t logits_first, logits_count;  /* absolute positions held                   */
    float *mtp_logits;             /* [k][n_out][V]                                    */
    int32_t *mtp_first, *mtp_count;
    float *mtp_last_U;             /* [k][D'] output state of module j at its last position, so
                                      that its logits can be computed when first asked for   */
    int32_t *mtp_last_pos;         /* [k] that position, -1 if none                     */

    /* pending draft (speculative decoding) */
    int32_t draft_n;
    int32_t draft_next;            /* the token the draft was made after              */
    int32_t *draft_tokens;         /* [k]                                              */
    float *draft_probs;            /* [k][V] draft distributions (sampled drafting)    */
    float *verify_logits;          /* [k+1][V] target logits of a verification          */
    float *draft_states;           /* [k][k][D'] module outputs computed while drafting */
    bool draft_sampled;

    vwn_scratch s;
    uint64_t bytes;                /* allocated bytes */
    vwn_perf perf;
};

/* forward.c: evaluate the main model on tokens at positions n_past.. (n <= n_batch), writing the
 * final states into the ring (when MTP is on) and logits for positions from keep_from on (absolute
 * position; pass n_past + n - 1 for the last only, or n_past for all) into ctx->logits. Appends to
 * the cache. logits_out NULL: ctx->logits (and logits_first/count are set); else that buffer.
 * Returns VWN_OK or VWN_ERR_ABORTED (cache then as before the call). */
vwn_status vwn_forward_main(vwn_context *ctx, const int32_t *tokens, int32_t n, int32_t keep_from,
                            float *logits_out);

/* forward.c: bring every MTP module up to date: module j (1-based) runs at positions
 * [mtp_len, n_past - j). want_logits: 0 none, 1 last position only, 2 every position. */
vwn_status vwn_forward_mtp_catchup(vwn_context *ctx, int want_logits);

/* forward.c: logits of module j at its last position (mtp_last_pos) into ctx->mtp_logits. */
void vwn_forward_mtp_last_logits(vwn_context *ctx, int32_t j);

/* forward.c: module j's (1-based) draft step, with its pending catch-up in the same batch (so
 * its weights stream once): the kept positions [mtp_len, n_past - j) from the ring and the decoded
 * tokens, then the n_tent tentative positions up to n_past - 1 with input states P_tent and input
 * tokens toks_tent (their KV entries lie past mtp_len: scratch). Keeps the kept part as
 * vwn_forward_mtp_catchup does (a longer catch-up runs first on its own), writes the tentative
 * output states to U_tent (n_tent x D') and the logits of position n_past - 1 through head (the
 * model's lm_head or its draft head) to logits_out. n_tent = the positions from max(0, n_past - j)
 * on, at most VWN_MAX_MTP + 1. Used by drafting. */
vwn_status vwn_forward_mtp_draft_step(vwn_context *ctx, int32_t j, const float *const *P_tent,
                                      const int32_t *toks_tent, int32_t n_tent, float *U_tent,
                                      const vwn_mat *head, float *logits_out);

/* speculative.c: vwn_draft as vwn_generate's speculative loop calls it -- through the model's
 * draft head (vwn_model_draft_head: a float head as Q8_0), unless VWN_DRAFT_HEAD=exact was set
 * when the context was made. The public vwn_draft drafts through lm_head itself. */
vwn_status vwn_draft_fast(vwn_context *ctx, int32_t next_token, int32_t depth, vwn_sampler *sampler,
                          int32_t *out_drafts, float *out_draft_probs, int32_t *out_n_drafts);

/* Pointer to the ring slot of stage at position pos, or NULL if the ring does not hold it. */
float *vwn_ring_get(vwn_context *ctx, int32_t stage, int32_t pos);

/* Every public call that computes runs between these: they take threads from the process-wide
 * budget (common.h) so that contexts decoding at the same time do not oversubscribe the cores. */
void vwn_ctx_begin(vwn_context *ctx);
void vwn_ctx_end(vwn_context *ctx);

/* Internal truncation (no handle checks); the public vwn_context_truncate wraps it. */
vwn_status vwn_context_truncate_internal(vwn_context *ctx, int32_t n_keep);

#endif
