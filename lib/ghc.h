/* ghc.h -- Generalized Hyper-Connections (spec §2), as two fused passes around a sublayer:
 *
 *   before:  per row i of H: C[i,:] = C0[i] + S[i] ∘ tanh(rmsnorm_s(H_i) · Wᵀ / sqrt(s))  (dynamic)
 *            then x_k = Σ_i R[i,k] H_i (read) and G_j = Σ_i A[i,j] H_i (carry)
 *   after:   G_j += Σ_k Bt[j,k] y_k (write), and G becomes the new wide state. Between two
 *            sublayers the write is folded into the next module's `before` (y_prev).
 *
 * All three are small products on the `mix` kernel (lib/ops): per token the coefficient
 * projection ([n, s] x [s, K]), the read and carry ([m+n, n] x [n, s]) and the write
 * ([n, m] x [m, s]), with the coefficients read in place through strides.
 *
 * Where the carry lands. With whole tokens per thread (one thread, or many tokens: prefill) a
 * token's coefficients and carry are made in a per-thread buffer that stays in L1/L2 and the carry
 * is copied over the token's state: the state's lines, already in cache, are the only ones written,
 * and only the write coefficients (n x m of the n x K) leave the buffer for the pending write.
 * With few tokens on several threads (decoding) one token's rows and outputs are split between
 * the threads, and the carry goes to G. Both give identical bits. */
#ifndef VWN_GHC_H
#define VWN_GHC_H

#include <stdbool.h>

#include "model.h"

/* Below this many tokens per thread, `before` splits each token's work between the threads (and
 * needs `coef` for those tokens); from it on, whole tokens go to each thread. */
#define VWN_GHC_TOKENS_PER_THREAD 4

/* Buffers of vwn_ghc_before, in floats (T tokens, nt threads, K = 2m + n, D' = n s, TPT =
 * VWN_GHC_TOKENS_PER_THREAD). */
typedef struct vwn_ghc_scratch {
    float *coef;    /* [min(T, TPT nt)][n*K] coefficients when work is split within a token; with
                       keep_coef, [T][n*K] and every token's coefficients are left here          */
    float *wcoef;   /* [T][n*m] write coefficients Bt, kept from a module's `before` to its write */
    float *rows;    /* [min(T, TPT nt)][n] routing multipliers (split work)                      */
    float *tmp;     /* [nt][n*K + D'] one token's coefficients and carry per thread (whole tokens) */
    bool keep_coef; /* tests: leave all coefficients in `coef`                                   */
} vwn_ghc_scratch;

/* Coefficients, read x (T x D) and carry (T x D') from the wide state H (T x D'). If y_prev is
 * not NULL, the previous module's write is still pending: H += write(wcoef, y_prev) is done first,
 * row by row in the same pass (wcoef holds that module's write coefficients on entry; the result
 * is the same as vwn_ghc_after followed by this call without y_prev). Returns where the carry is:
 * H itself (whole tokens per thread; H is overwritten) or G (H then holds the state after the
 * pending write). wcoef then holds this module's write coefficients. */
float *vwn_ghc_before(const vwn_hparams *hp, const vwn_ghc_weights *g, const vwn_ops *ops,
                      const float *y_prev, float *H, int32_t T, float *x, float *G,
                      const vwn_ghc_scratch *sc, int n_threads);

/* Write: G_j += Σ_k Bt[j,k] y_k for the sublayer output y (T x D), Bt from wcoef ([T][n*m]);
 * G is then the new state. */
void vwn_ghc_after(const vwn_hparams *hp, const vwn_ops *ops, const float *wcoef, const float *y,
                   int32_t T, float *G, int n_threads);

#endif
