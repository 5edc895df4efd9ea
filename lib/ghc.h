/* ghc.h -- Generalized Hyper-Connections (spec §2): per-token coefficients, read, carry, write. */
#ifndef VWN_GHC_H
#define VWN_GHC_H

#include "model.h"

/* C[t] (n x K) for T tokens of wide state H (T x n x s). Dynamic:
 *   C = C0 + S ∘ tanh(rmsnorm_s(H) · Wᵀ / sqrt(s)); static: C = C0. */
void vwn_ghc_coefficients(const vwn_hparams *hp, const vwn_ghc_weights *g, const float *H,
                          int32_t T, float *C, int n_threads);

/* Read and carry: x_k = Σ_i R[i,k] H_i (T x m x s = T x D), G_j = Σ_i A[i,j] H_i (T x n x s). */
void vwn_ghc_read_carry(const vwn_hparams *hp, const float *C, const float *H, int32_t T,
                        float *x, float *G, int n_threads);

/* Write: H'_j = G_j + Σ_k Bt[j,k] y_k, into H (T x n x s), from G and the sublayer output y (T x D). */
void vwn_ghc_write(const vwn_hparams *hp, const float *C, const float *G, const float *y,
                   int32_t T, float *H, int n_threads);

#endif
