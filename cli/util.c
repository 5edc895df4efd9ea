/* util.c -- small helpers shared by the subcommands of the `vwn` command. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "cli.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cli_fail(const char *cmd, const char *what, vwn_status st) {
    const char *msg = vwn_last_error();
    fprintf(stderr, "vwn %s: %s: %s%s%s\n", cmd, what, vwn_status_string(st), msg[0] ? ": " : "", msg);
    return 1;
}

char *cli_read_file(const char *path, size_t *out_len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf) { fclose(f); return NULL; }
    for (;;) {
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (len < cap) break;
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) { free(buf); fclose(f); return NULL; }
        buf = nb;
        cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (err) { free(buf); return NULL; }
    buf[len] = '\0';
    if (out_len) *out_len = len;
    return buf;
}

int cli_parse_tokens(const char *s, int32_t **out) {
    int n = 0, cap = 16;
    int32_t *v = malloc(sizeof(int32_t) * (size_t)cap);
    if (!v) return -1;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < INT32_MIN || x > INT32_MAX) { free(v); return -1; }
        if (n == cap) {
            cap *= 2;
            int32_t *nv = realloc(v, sizeof(int32_t) * (size_t)cap);
            if (!nv) { free(v); return -1; }
            v = nv;
        }
        v[n++] = (int32_t)x;
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    *out = v;
    return n;
}

int cli_write_npy(const char *path, const float *data, int ndim, const int64_t *shape) {
    char header[256];
    int hl;
    if (ndim == 1)
        hl = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld,), }",
                      (long long)shape[0]);
    else
        hl = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                      (long long)shape[0], (long long)shape[1]);
    /* magic(6) + version(2) + header_len(2) + header + padding + '\n' must be a multiple of 64 */
    int total = 10 + hl + 1;
    int pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    unsigned short hlen = (unsigned short)(hl + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    unsigned char le[2] = {(unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};
    fwrite(le, 1, 2, f);
    fwrite(header, 1, (size_t)hl, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    size_t w = fwrite(data, sizeof(float), n, f);
    int bad = (w != n) | (fclose(f) != 0);
    return bad ? -1 : 0;
}

/* ---- option parsing ------------------------------------------------------------------------- */

const char *cli_next_value(const char *cmd, int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        cli_usage_error(cmd, "option %s needs a value", argv[*i]);
        return NULL;
    }
    *i += 1;
    return argv[*i];
}

int cli_parse_int(const char *cmd, const char *opt, const char *s, long long lo, long long hi, int32_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno || v < lo || v > hi) {
        cli_usage_error(cmd, "%s expects an integer from %lld to %lld, got '%s'", opt, lo, hi, s);
        return 1;
    }
    *out = (int32_t)v;
    return 0;
}

int cli_parse_float(const char *cmd, const char *opt, const char *s, double lo, double hi, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno || !isfinite(v) || v < lo || v > hi) {
        cli_usage_error(cmd, "%s expects a number from %g to %g, got '%s'", opt, lo, hi, s);
        return 1;
    }
    *out = (float)v;
    return 0;
}

int cli_parse_simd(const char *cmd, const char *s, int32_t *out) {
    static const struct { const char *name; int32_t level; } levels[] = {
        {"auto", VWN_SIMD_AUTO}, {"scalar", VWN_SIMD_SCALAR}, {"avx2", VWN_SIMD_AVX2},
        {"avx512", VWN_SIMD_AVX512}, {"neon", VWN_SIMD_NEON},
    };
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        if (strcmp(s, levels[i].name) != 0) continue;
        if (levels[i].level != VWN_SIMD_AUTO && !vwn_simd_supported((vwn_simd)levels[i].level)) {
            fprintf(stderr, "vwn %s: SIMD level %s is not supported by this CPU or build (best: %s)\n", cmd, s,
                    vwn_simd_name(vwn_simd_best()));
            return 1;
        }
        *out = levels[i].level;
        return 0;
    }
    cli_usage_error(cmd, "--simd expects scalar, avx2, avx512, neon or auto, got '%s'", s);
    return 1;
}

vwn_simd cli_simd_in_effect(int32_t requested) {
    if (requested != VWN_SIMD_AUTO) return (vwn_simd)requested;
    const char *env = getenv("VWN_SIMD"); /* the library's own override of "auto" (vwn.h) */
    for (int level = VWN_SIMD_SCALAR; env && level <= VWN_SIMD_NEON; level++)
        if (!strcmp(env, vwn_simd_name((vwn_simd)level)) && vwn_simd_supported((vwn_simd)level)) return (vwn_simd)level;
    return vwn_simd_best();
}

const char *cli_kv_type_name(int32_t kv_type) {
    return kv_type == VWN_TYPE_F16 ? "f16" : kv_type == VWN_TYPE_Q8_0 ? "q8_0" : "f32";
}

int cli_parse_kv_type(const char *cmd, const char *s, int32_t *out) {
    if (!strcmp(s, "f32")) *out = VWN_TYPE_F32;
    else if (!strcmp(s, "f16")) *out = VWN_TYPE_F16;
    else if (!strcmp(s, "q8_0")) *out = VWN_TYPE_Q8_0;
    else {
        cli_usage_error(cmd, "--kv-type expects f32, f16 or q8_0, got '%s'", s);
        return 1;
    }
    return 0;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "vwn %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (try 'vwn %s --help')\n", cmd);
    return 2;
}

int cli_tokenize(const char *cmd, const vwn_model *model, const char *text, size_t len, bool add_special,
                 int32_t **out) {
    *out = NULL;
    if (len > (size_t)INT32_MAX - 64) {
        fprintf(stderr, "vwn %s: the text is too long to tokenize (%zu bytes, at most %d)\n", cmd, len, INT32_MAX - 64);
        return -1;
    }
    /* a token covers at least one byte in every supported tokenizer; retry if the guess is short */
    int32_t cap = (int32_t)len + 8;
    for (int attempt = 0; attempt < 2; attempt++) {
        int32_t *toks = malloc(sizeof(int32_t) * (size_t)cap);
        if (!toks) {
            fprintf(stderr, "vwn %s: out of memory for %d tokens\n", cmd, cap);
            return -1;
        }
        int32_t n = vwn_tokenize(model, text, (int32_t)len, toks, cap, add_special, false);
        if (n >= 0) {
            *out = toks;
            return n;
        }
        free(toks);
        if (n == INT32_MIN) break;
        cap = -n;
    }
    const char *msg = vwn_last_error();
    fprintf(stderr, "vwn %s: cannot tokenize the text%s%s\n", cmd, msg[0] ? ": " : "", msg);
    return -1;
}

void cli_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

double cli_time_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

/* A worker thread of cli_run_together: waits for the release, then runs (or gives up). */
typedef struct together {
    void (*fn)(void *);
    void *arg;
    atomic_int *go; /* 0: wait, 1: run, -1: give up */
} together;

static void *together_thread(void *p) {
    const together *t = p;
    int go;
    while ((go = atomic_load(t->go)) == 0) sched_yield();
    if (go > 0) t->fn(t->arg);
    return NULL;
}

bool cli_run_together(int T, void (*fn)(void *), void *workers, size_t size) {
    pthread_t th[256];
    together tg[256];
    atomic_int go = 0;
    int started = 1;
    if (T < 1 || T > 256) return false;
    for (int t = 1; t < T && started == t; t++) {
        tg[t] = (together){fn, (char *)workers + (size_t)t * size, &go};
        if (pthread_create(&th[t], NULL, together_thread, &tg[t]) == 0) started++;
    }
    atomic_store(&go, started == T ? 1 : -1);
    if (started == T) fn(workers);
    for (int t = 1; t < started; t++) pthread_join(th[t], NULL);
    return started == T;
}
