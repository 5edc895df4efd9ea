/* ops.c -- picks the kernels: detects what the CPU can run (cpuid + xgetbv on x86-64, so the OS must
 * also save the YMM/ZMM registers; NEON is always there on AArch64), hands out the vwn_ops table of
 * a SIMD level, honours the VWN_SIMD environment variable, and implements the public
 * vwn_simd_best / vwn_simd_supported / vwn_simd_name. */
#include "ops/ops.h"
#include "vwn.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#  define VWN_X86 1
#  include <cpuid.h>
#else
#  define VWN_X86 0
#endif
#if defined(__aarch64__)
#  define VWN_ARM64 1
#  if defined(__linux__)
#    include <sys/auxv.h>
#  endif
#else
#  define VWN_ARM64 0
#endif

/* The SIMD files that exist are compiled in by CMakeLists.txt for their architecture. */
#define VWN_HAVE_AVX2 VWN_X86
#define VWN_HAVE_AVX512 VWN_X86
#define VWN_HAVE_NEON VWN_ARM64

/* ---- CPU features --------------------------------------------------------------------------- */

enum {
    CPU_AVX2 = 1 << 0,        /* AVX2 + FMA + F16C, YMM state enabled by the OS */
    CPU_AVX512 = 1 << 1,      /* AVX-512 F/BW/VL/DQ, ZMM state enabled by the OS */
    CPU_AVX512_VNNI = 1 << 2,
    CPU_AVX512_BF16 = 1 << 3,
    CPU_NEON = 1 << 4,
    CPU_NEON_DOTPROD = 1 << 5,
    CPU_DETECTED = 1 << 30
};

#if VWN_X86
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

static int detect_features(void) {
    int f = CPU_DETECTED;
#if VWN_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    bool ymm_state = (xcr0 & 0x06) == 0x06;   /* XMM + YMM */
    bool zmm_state = (xcr0 & 0xe6) == 0xe6;   /* ... + opmask, ZMM_Hi256, Hi16_ZMM */
    if (__get_cpuid_max(0, NULL) < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    bool avx2 = (b >> 5) & 1;
    bool avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1,
         avx512vl = (b >> 31) & 1, avx512vnni = (c >> 11) & 1;
    unsigned max_sub = a;
    bool avx512bf16 = false;
    if (max_sub >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        avx512bf16 = (a >> 5) & 1;
    }
    if (avx && avx2 && fma && f16c && ymm_state) {
        f |= CPU_AVX2;
        if (avx512f && avx512dq && avx512bw && avx512vl && zmm_state) {
            f |= CPU_AVX512;
            if (avx512vnni) f |= CPU_AVX512_VNNI;
            if (avx512bf16) f |= CPU_AVX512_BF16;
        }
    }
#elif VWN_ARM64
    f |= CPU_NEON;
#  if defined(__linux__) && defined(AT_HWCAP)
    unsigned long hw = getauxval(AT_HWCAP);
    if (hw & (1UL << 20)) f |= CPU_NEON_DOTPROD; /* HWCAP_ASIMDDP */
#  endif
#endif
    return f;
}

/* Detected once; racing first calls compute the same value, so a relaxed atomic is enough. */
static int cpu_features(void) {
    static atomic_int cached = 0;
    int f = atomic_load_explicit(&cached, memory_order_relaxed);
    if (f == 0) {
        f = detect_features();
        atomic_store_explicit(&cached, f, memory_order_relaxed);
    }
    return f;
}

/* ---- tables --------------------------------------------------------------------------------- */

static const vwn_ops *table_for(int level) {
    int f = cpu_features();
    (void)f;
    switch (level) {
    case VWN_SIMD_SCALAR: return &vwn_ops_scalar;
#if VWN_HAVE_AVX2
    case VWN_SIMD_AVX2: return (f & CPU_AVX2) ? &vwn_ops_avx2 : NULL;
#endif
#if VWN_HAVE_AVX512
    case VWN_SIMD_AVX512:
        if (!(f & CPU_AVX512)) return NULL;
        return (f & CPU_AVX512_VNNI) ? &vwn_ops_avx512_vnni : &vwn_ops_avx512;
#endif
#if VWN_HAVE_NEON
    case VWN_SIMD_NEON: return (f & CPU_NEON) ? &vwn_ops_neon : NULL;
#endif
    default: return NULL;
    }
}

static int best_level(void) {
    static const int order[] = {VWN_SIMD_AVX512, VWN_SIMD_AVX2, VWN_SIMD_NEON};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (table_for(order[i])) return order[i];
    return VWN_SIMD_SCALAR;
}

const vwn_ops *vwn_ops_get(int level) {
    if (level == VWN_SIMD_AUTO) return vwn_ops_best();
    return table_for(level);
}

static int level_from_name(const char *s) {
    static const struct { const char *name; int level; } names[] = {
        {"scalar", VWN_SIMD_SCALAR}, {"avx2", VWN_SIMD_AVX2},
        {"avx512", VWN_SIMD_AVX512}, {"neon", VWN_SIMD_NEON},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) return names[i].level;
    return VWN_SIMD_AUTO;
}

const vwn_ops *vwn_ops_best(void) {
    const char *env = getenv("VWN_SIMD");
    if (env && *env) {
        int level = level_from_name(env);
        const vwn_ops *ops = level == VWN_SIMD_AUTO ? NULL : table_for(level);
        if (ops) return ops;
    }
    return table_for(best_level());
}

/* ---- public API (vwn.h) ------------------------------------------------------------------------ */

vwn_simd vwn_simd_best(void) {
    return (vwn_simd)best_level();
}

bool vwn_simd_supported(vwn_simd level) {
    if (level == VWN_SIMD_AUTO) return true;
    return table_for(level) != NULL;
}

const char *vwn_simd_name(vwn_simd level) {
    switch (level) {
    case VWN_SIMD_AUTO: return "auto";
    case VWN_SIMD_SCALAR: return "scalar";
    case VWN_SIMD_AVX2: return "avx2";
    case VWN_SIMD_AVX512: return "avx512";
    case VWN_SIMD_NEON: return "neon";
    default: return "?";
    }
}
