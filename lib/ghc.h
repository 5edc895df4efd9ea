/* ghc.h -- Generalized Hyper-Connections (spec §2), as two fused passes around a sublayer:
 *
 *   before:  per row i of H: C[i,:] = C0[i] + S[i] ∘ tanh(rmsnorm_s(H_i) · Wᵀ / sqrt(s))  (dynamic)
 *            then x_k = Σ_i R[i,k] H_i (read) and G_j = Σ_i A[i,j] H_i (carry)
 *   after:   G_j += Σ_k Bt[j,k] y_k (write), and G becomes the new wide state. Between two
 *            sublayers the write is folded into the next module's `before` (y_prev).
 *
 * All three are small products on the `mix` kernel (lib/ops): the coefficient projection of all
 * T·n rows at once ([T·n, s] x [s, K]), and per token the read and carry ([m+n, n] x [n, s]) and
 * the write ([n, m] x [m, s]), with the coefficients read in place through strides. */
#ifndef VWN_GHC_H
#define VWN_GHC_H

#include "model.h"

/* Coefficients C (T x n x K), read x (T x D) and carry G (T x D') from the wide state H (T x D').
 * If y_prev is not NULL, the previous module's write is still pending: H += write(C, y_prev) is
 * done first, row by row in the same pass (C holds that module's coefficients on entry; the
 * result is the same as vwn_ghc_after followed by this call without y_prev). `rows` is scratch
 * of at least T x n floats (the per-row routing multipliers). */
void vwn_ghc_before(const vwn_hparams *hp, const vwn_ghc_weights *g, const vwn_ops *ops,
                    const float *y_prev, float *H, int32_t T, float *C, float *x, float *G, float *rows,
                    int n_threads);

/* Write: G_j += Σ_k Bt[j,k] y_k for the sublayer output y (T x D); G is then the new state. */
void vwn_ghc_after(const vwn_hparams *hp, const vwn_ops *ops, const float *C, const float *y,
                   int32_t T, float *G, int n_threads);

#endif
