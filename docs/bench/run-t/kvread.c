/* Decode attention's KV stream, in a decode-like setting: 12 layers, each: 10 MB of "weights" read
 * on 2 threads (evicting the caches; NOW=1 skips it), then the layer's KV cache (12 query heads x 64,
 * HKV KV heads (env, default 12), TT tokens at once (env, default 1; modes 22-23), n_ctx positions of which n_pos are used, fp32) read in a pattern
 * or attended; only the KV part is timed. Modes alternate rep by rep; see multistream_ab.txt,
 * kv_prefetch_ab.txt and blocks_ab.txt for the modes and the results. args: N_POS N_CTX REPS
 * MODE[:G:GR] ... Modes 11, 12, 16 need the prototype multistream_proto.diff applied to the library
 * (weak stand-ins otherwise); 22 runs old_vwn_attention, the session-start lib/attention.c renamed:
 *   git show 146e082:lib/attention.c | sed 's/\bvwn_attention\b/old_vwn_attention/;
 *     s/\bvwn_rope_table\b/old_vwn_rope_table/; s/\bvwn_rope_apply\b/old_vwn_rope_apply/;
 *     s/softmax_exp(s, n_keys)/softmax_exp(s, n_keys, NULL)/' > old_attention.c
 * Build: clang -O2 -march=native -fopenmp=libomp -DVWN_OPENMP -Iinclude -Ilib kvread.c old_attention.c
 *        build/lib/libvwn.a -lm -lmimalloc -lutf8proc -L/usr/lib/llvm-14/lib -lomp -lpthread */
#include "attention.h"
#include "ops/ops.h"
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <omp.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
enum { H = 12, HD = 64, L = 12 };
static _Alignas(64) float sink[64];
void old_vwn_attention(const vwn_ops *, const float *, int32_t, const void *, const void *, int32_t, int32_t, int32_t, int32_t, int32_t, float *, float *, int32_t, int, int64_t);
__attribute__((weak)) void vwn_x_scores_multi(int R, float *const *out, const float *const *q, const float *const *K, int64_t n_kv, int64_t hd, float scale) { (void)R, (void)out, (void)q, (void)K, (void)n_kv, (void)hd, (void)scale; } /* the prototype's switches (docs/bench/run-t/multistream_proto.diff); weak: without the prototype modes 11, 12, 16 run the library as is */
__attribute__((weak)) int vwn_x_att, vwn_x_piece, vwn_x_pf, vwn_x_hint; static float ref[H*HD]; static int have_ref; static long nbad;
static __m512 rd(const float *p, size_t nfl, __m512 a) { for (size_t i = 0; i < nfl; i += 16) a = _mm512_add_ps(a, _mm512_load_ps(p + i)); return a; }
/* interleave k streams line by line */
static __m512 rdk(const float **p, int k, size_t nfl, __m512 a) {
    for (size_t i = 0; i < nfl; i += 16) for (int s = 0; s < k; s++) a = _mm512_add_ps(a, _mm512_load_ps(p[s] + i));
    return a;
}
int main(int argc, char **argv) {
    int TT = getenv("TT") ? atoi(getenv("TT")) : 1; int HKV = getenv("HKV") ? atoi(getenv("HKV")) : H; int n_pos = atoi(argv[1]), n_ctx = atoi(argv[2]), reps = atoi(argv[3]); int nm = argc - 4; int MM[32], GG[32], GRR[32]; double TK[32] = {0}, TW[32] = {0};
    for (int k = 0; k < nm; k++) { MM[k] = 0; GG[k] = 3; GRR[k] = 16; sscanf(argv[4 + k], "%d:%d:%d", &MM[k], &GG[k], &GRR[k]); }
    const vwn_ops *ops = vwn_ops_best();
    size_t layer = (size_t)HKV * n_ctx * HD;          /* floats per K (or V) */
    size_t wfl = 10u << 20 >> 2;                     /* 10 MB weights per layer */
    float *kv = aligned_alloc(2 << 20, 2 * layer * L * 4 + (2 << 20));
    float *w = aligned_alloc(2 << 20, wfl * L * 4);
    for (size_t i = 0; i < 2 * layer * L; i++) kv[i] = (float)(i % 17) / 17.0f;
    for (size_t i = 0; i < wfl * L; i++) w[i] = 1.0f;
    static float q[8 * H * HD], out[8 * H * HD]; for (int i = 0; i < 8 * H * HD; i++) q[i] = (float)((i * 7) % 13) / 13.0f;
    float *sc = aligned_alloc(64, sizeof(float) * (VWN_ATT_BLOCK * n_ctx * 2 + vwn_attention_scratch_floats(H, HD, n_ctx, 2) + 64));
    double tkv = 0, tw = 0;
    for (int r = 0; r < reps; r++) for (int k = 0; k < nm; k++) { int mode = MM[k], G = GG[k], GR = GRR[k];
        for (int l = 0; l < L; l++) {
            double t0 = now();
#pragma omp parallel num_threads(2) if(!getenv("NOW"))
            if (!getenv("NOW")) { int i = omp_get_thread_num(); __m512 a = _mm512_setzero_ps();
              if (mode == 20 || mode == 21) {
                  /* paced prefetch of this thread's heads' keys and values during the weights read */
                  float *Kp = kv + (size_t)l * 2 * layer, *Vp = Kp + layer;
                  int h0 = i * H / 2, h1 = (i + 1) * H / 2; size_t np = (size_t)n_pos * HD, nl = (size_t)(h1 - h0) * np / 16 * 2, k = 0;
                  const float *wp = w + l * wfl + i * wfl / 2; size_t nw = wfl / 2, step = nw / 16 / (nl + 1) * 16; if (step < 16) step = 16;
                  size_t start = mode == 21 ? nw / 2 : 0;
                  for (size_t j = 0; j < nw; j += 16) {
                      a = _mm512_add_ps(a, _mm512_load_ps(wp + j));
                      if (j >= start && (j - start) % (mode == 21 ? step / 2 / 16 * 16 + 16 : step) == 0 && k < nl) {
                          size_t kk = k / 2, hh = h0 + kk / (np / 16), off = kk % (np / 16) * 16;
                          const float *pp = ((k & 1) ? Vp : Kp) + hh * (size_t)n_ctx * HD + off;
                          _mm_prefetch((const char *)pp, _MM_HINT_T1); k++;
                      }
                  }
                  for (; k < nl; k++) { size_t kk = k / 2, hh = h0 + kk / (np / 16), off = kk % (np / 16) * 16;
                      _mm_prefetch((const char *)(((k & 1) ? Vp : Kp) + hh * (size_t)n_ctx * HD + off), _MM_HINT_T1); }
              } else a = rd(w + l * wfl + i * wfl / 2, wfl / 2, a);
              _mm512_store_ps(sink + 16 * i, _mm512_add_ps(a, _mm512_load_ps(sink + 16 * i))); }
            double t1 = now();
            float *K = kv + (size_t)l * 2 * layer, *V = K + layer;
            if (mode == 22 || mode == 23) {
                if (mode == 22) old_vwn_attention(ops, q, VWN_TYPE_F32, K, V, n_pos - TT, TT, H, HKV, HD, out, sc, n_ctx, 2, VWN_ATT_SPLIT_MEMORY);
                else vwn_attention(ops, q, VWN_TYPE_F32, K, V, n_pos - TT, TT, H, HKV, HD, out, sc, n_ctx, 2, VWN_ATT_SPLIT_MEMORY);
            } else
            if (mode == 0 || mode == 11 || mode == 16 || mode == 20 || mode == 21) { vwn_x_att = mode == 11 ? (G == 0 ? 2 : 1) : mode == 16 ? 1 : 0; vwn_x_piece = G; vwn_x_pf = mode == 16; vwn_x_hint = GR; vwn_attention(ops, q, VWN_TYPE_F32, K, V, n_pos - 1, 1, H, H, HD, out, sc, n_ctx, 2, VWN_ATT_SPLIT_MEMORY);
                if (l == 0) { if (!have_ref) { memcpy(ref, out, sizeof ref); have_ref = 1; } else nbad += memcmp(ref, out, sizeof ref) != 0; } }
            else {
#pragma omp parallel num_threads(2)
            { int i = omp_get_thread_num(); __m512 a = _mm512_setzero_ps();
              int h0 = i * H / 2, h1 = (i + 1) * H / 2; size_t np = (size_t)n_pos * HD;
              if (mode == 1) for (int h = h0; h < h1; h++) { a = rd(K + h * (size_t)n_ctx * HD, np, a); a = rd(V + h * (size_t)n_ctx * HD, np, a); }
              else if (mode == 2) for (int h = h0; h < h1; h++) { const float *p[2] = {K + h * (size_t)n_ctx * HD, V + h * (size_t)n_ctx * HD}; a = rdk(p, 2, np, a); }
              else if (mode == 3) for (int h = h0; h < h1; h += 2) { const float *p[4] = {K + h * (size_t)n_ctx * HD, V + h * (size_t)n_ctx * HD, K + (h+1) * (size_t)n_ctx * HD, V + (h+1) * (size_t)n_ctx * HD}; a = rdk(p, 4, np, a); }
              else if (mode == 4) { a = rd(K + h0 * (size_t)n_ctx * HD, np * (h1 - h0), a); a = rd(V + h0 * (size_t)n_ctx * HD, np * (h1 - h0), a); }
              else if (mode == 5) { const float *p[2] = {K + h0 * (size_t)n_ctx * HD, V + h0 * (size_t)n_ctx * HD}; a = rdk(p, 2, np * (h1 - h0), a); }
              else if (mode == 6) for (int h = h0; h < h1; h += 3) { const float *p[6]; for (int s = 0; s < 3; s++) { p[2*s] = K + (h+s) * (size_t)n_ctx * HD; p[2*s+1] = V + (h+s) * (size_t)n_ctx * HD; } a = rdk(p, 6, np, a); }
              else if (mode == 7) for (int h = h0; h < h1; h += G) for (int kv2 = 0; kv2 < 2; kv2++) {
                  const float *B = kv2 ? V : K;
                  for (size_t j = 0; j < np; j += GR) { size_t n = np - j < (size_t)GR ? np - j : (size_t)GR;
                      for (int s = 0; s < G && h + s < h1; s++) a = rd(B + (h+s) * (size_t)n_ctx * HD + j, n, a); } }
              else if (mode == 12 || mode == 13) { float so[6][1200]; float *sp[6]; const float *qq[6], *kk[6];
                  for (int h = h0; h < h1; h++) { sp[h - h0] = so[h - h0]; qq[h - h0] = q + h * HD; kk[h - h0] = K + h * (size_t)n_ctx * HD; }
                  if (mode == 12) vwn_x_scores_multi(h1 - h0, sp, qq, kk, n_pos, HD, 0.125f);
                  else for (int h = 0; h < h1 - h0; h++) ops->attn_scores(sp[h], qq[h], kk[h], HD, n_pos, HD, 0.125f);
                  a = _mm512_add_ps(a, _mm512_set1_ps(so[0][n_pos - 1] + so[5][3])); }
              else if (mode == 17) { static _Thread_local float pv[1200]; for (int j = 0; j < n_pos; j++) pv[j] = 1.0f / n_pos;
                  float o[HD]; for (int h = h0; h < h1; h++) { ops->attn_values(o, pv, V + h * (size_t)n_ctx * HD, HD, n_pos, HD, false); a = _mm512_add_ps(a, _mm512_set1_ps(o[5])); } }
              else if (mode == 18) for (int h = h0; h < h1; h++) a = rd(V + h * (size_t)n_ctx * HD, np, a);
              else if (mode == 19) { static _Thread_local float sv[1200]; for (int h = h0; h < h1; h++) { for (int j = 0; j < n_pos; j++) sv[j] = 0.01f * (float)(j % 7);
                  float sum = ops->softmax_exp(sv, n_pos, NULL); ops->scale(sv, 1.0f / sum, n_pos); a = _mm512_add_ps(a, _mm512_set1_ps(sv[3])); } }
              else if (mode == 14) { const float *p[6]; for (int s = 0; s < 6; s++) p[s] = K + (h0 + s) * (size_t)n_ctx * HD; a = rdk(p, 6, np, a); }
              else if (mode == 15) for (int h = h0; h < h1; h++) a = rd(K + h * (size_t)n_ctx * HD, np, a);
              else if (mode >= 8) { size_t hs = (size_t)n_ctx * HD; int hint = G;
                  for (int h = h0; h < h1; h++) for (int kv2 = 0; kv2 < 2; kv2++) {
                      const float *B = (kv2 ? V : K) + h * hs;
                      const float *P1 = NULL, *P2 = NULL;
                      if (mode == 8) { if (h + 1 < h1) P1 = (kv2 ? V : K) + (h + 1) * hs; }
                      else if (mode == 9) { P1 = kv2 ? (h + 1 < h1 ? K + (h + 1) * hs : NULL) : V + h * hs; }
                      else { if (kv2 == 0) { P1 = V + h * hs; if (h + 1 < h1) P2 = K + (h + 1) * hs; } else if (h + 1 < h1) P1 = V + (h + 1) * hs; }
                      for (size_t j = 0; j < np; j += 16) {
                          a = _mm512_add_ps(a, _mm512_load_ps(B + j));
                          if (hint == 1) { if (P1) _mm_prefetch((const char *)(P1 + j), _MM_HINT_T0); if (P2) _mm_prefetch((const char *)(P2 + j), _MM_HINT_T0); }
                          else { if (P1) _mm_prefetch((const char *)(P1 + j), _MM_HINT_T1); if (P2) _mm_prefetch((const char *)(P2 + j), _MM_HINT_T1); }
                      } } }
              _mm512_store_ps(sink + 16 * i, _mm512_add_ps(a, _mm512_load_ps(sink + 16 * i))); }
            }
            double t2 = now();
            tw += t1 - t0; tkv += t2 - t1; TK[k] += t2 - t1; TW[k] += t1 - t0;
        }
    }
    double kvb = 2.0 * H * n_pos * HD * 4 * L * reps, wb = (double)wfl * 4 * L * reps;
    printf("mismatches %ld\n", nbad); printf("pos %d ctx %d weights %.1f GB/s (%g)\n", n_pos, n_ctx, wb * nm / tw / 1e9, sink[0] + out[0]);
    for (int k = 0; k < nm; k++) printf("  %-10s kv %5.1f us/layer  ratio %.3f | weights %5.1f us | total %5.1f us ratio %.3f\n", argv[4 + k], TK[k] / (L * reps) * 1e6, TK[k] / TK[0], TW[k] / (L * reps) * 1e6, (TK[k] + TW[k]) / (L * reps) * 1e6, (TK[k] + TW[k]) / (TK[0] + TW[0])); (void)tkv;
}
