/* bench_peak.c -- the machine's FMA peak for `vwn bench`, measured the way it measures bandwidth:
 * in the same run, because a shared machine's cores do not give the same throughput from one
 * minute to the next (an Intel VM ran one FMA loop at 51-91% of its best over an hour;
 * docs/performance.md, "Twenty-fifth session").
 *
 * T threads, released together, each run CHAINS independent chains of fused multiply-adds on full
 * vectors of the best SIMD level this CPU has (AVX-512, AVX2+FMA or NEON; the core's peak, whatever
 * level the bench's contexts are forced to): acc = acc * b + c, enough chains to cover the FMA
 * latency on every pipe. A pass's FLOP (2 a lane) over the time from the earliest thread start to
 * the latest end; the result is the best of PEAK_PASSES passes. Built with target attributes, so
 * the CLI needs no special flags; 0 where there is no SIMD level (scalar builds, other CPUs). */
#define _GNU_SOURCE
#include "cli.h"


#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define PEAK_X86 1
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#define PEAK_NEON 1
#endif

#define PEAK_PASSES 5
#define PEAK_ITERS (1 << 21) /* iterations a thread a pass: ~10-30 ms at 2-4 GHz */

/* Each returns the FLOP it did; the chains' sum goes to *sink so that none is optimized away. The
 * chains are named variables, not an array: gcc -O2 kept an array of them on the stack, a store
 * and a load around every FMA. */
#define CHAINS12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define CHAINS16(X) CHAINS12(X) X(12) X(13) X(14) X(15)

#ifdef PEAK_X86
__attribute__((target("avx512f"))) static double fma_avx512(long iters, float *sink) {
    const __m512 b = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
#define DECL(k) __m512 a##k = _mm512_set1_ps(0.01f * (float)(k));
#define STEP(k) a##k = _mm512_fmadd_ps(a##k, b, c);
#define SUM(k) sum = _mm512_add_ps(sum, a##k);
    CHAINS16(DECL)
    for (long i = 0; i < iters; i++) { CHAINS16(STEP) }
    __m512 sum = _mm512_setzero_ps();
    CHAINS16(SUM)
    *sink = _mm512_reduce_add_ps(sum);
    return (double)iters * 16 * 16 * 2;
#undef DECL
#undef STEP
#undef SUM
}

__attribute__((target("avx2,fma"))) static double fma_avx2(long iters, float *sink) {
    /* of 16 registers: 12 chains, b and c */
    const __m256 b = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
#define DECL(k) __m256 a##k = _mm256_set1_ps(0.01f * (float)(k));
#define STEP(k) a##k = _mm256_fmadd_ps(a##k, b, c);
#define SUM(k) sum = _mm256_add_ps(sum, a##k);
    CHAINS12(DECL)
    for (long i = 0; i < iters; i++) { CHAINS12(STEP) }
    __m256 sum = _mm256_setzero_ps();
    CHAINS12(SUM)
    float lanes[8];
    _mm256_storeu_ps(lanes, sum);
    *sink = lanes[0] + lanes[7];
    return (double)iters * 12 * 8 * 2;
#undef DECL
#undef STEP
#undef SUM
}
#endif

#ifdef PEAK_NEON
static double fma_neon(long iters, float *sink) {
    /* 16 chains: four FMA pipes of latency four on the widest Arm cores */
    const float32x4_t b = vdupq_n_f32(0.9999999f), c = vdupq_n_f32(1e-7f);
#define DECL(k) float32x4_t a##k = vdupq_n_f32(0.01f * (float)(k));
#define STEP(k) a##k = vfmaq_f32(c, a##k, b);
#define SUM(k) sum = vaddq_f32(sum, a##k);
    CHAINS16(DECL)
    for (long i = 0; i < iters; i++) { CHAINS16(STEP) }
    float32x4_t sum = vdupq_n_f32(0.0f);
    CHAINS16(SUM)
    *sink = vaddvq_f32(sum);
    return (double)iters * 16 * 4 * 2;
#undef DECL
#undef STEP
#undef SUM
}
#endif

typedef double (*fma_loop)(long iters, float *sink);

/* The loop of this CPU's best level, and its name; NULL where there is none. */
static fma_loop best_loop(const char **name) {
    const vwn_simd best = vwn_simd_best();
    *name = vwn_simd_name(best);
#ifdef PEAK_X86
    if (best == VWN_SIMD_AVX512) return fma_avx512;
    if (best == VWN_SIMD_AVX2) return fma_avx2;
#endif
#ifdef PEAK_NEON
    if (best == VWN_SIMD_NEON) return fma_neon;
#endif
    (void)best;
    return NULL;
}

typedef struct peak_worker {
    fma_loop loop;
    double flop, t0, t1;
    float sink;
} peak_worker;

static void peak_thread(void *arg) {
    peak_worker *w = arg;
    w->t0 = cli_time_us();
    w->flop = w->loop(PEAK_ITERS, &w->sink);
    w->t1 = cli_time_us();
}

const char *cli_fma_peak_level(void) {
    const char *name;
    return best_loop(&name) ? name : NULL;
}

double cli_fma_peak_gflops(int T) {
    const char *name;
    const fma_loop loop = best_loop(&name);
    if (!loop || T < 1) return 0.0;
    if (T > 256) T = 256;
    peak_worker w[256];
    double best = 0.0;
    for (int pass = 0; pass < PEAK_PASSES; pass++) {
        for (int t = 0; t < T; t++) w[t] = (peak_worker){loop, 0, 0, 0, 0.0f};
        if (!cli_run_together(T, peak_thread, w, sizeof w[0])) return 0.0;
        double first = w[0].t0, last = w[0].t1, flop = 0.0;
        for (int t = 0; t < T; t++) {
            if (w[t].t0 < first) first = w[t].t0;
            if (w[t].t1 > last) last = w[t].t1;
            flop += w[t].flop;
        }
        if (last > first && flop / ((last - first) * 1e3) > best) best = flop / ((last - first) * 1e3);
    }
    return best;
}
