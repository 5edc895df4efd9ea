/* cmd_bench.c -- `vwn bench`: prefill and decode speed of one or more models, set against the
 * machine's memory read bandwidth (measured here), with memory use and the share of time in GHC.
 *
 * Method, per model and repetition (each in a forked child process, so its peak RSS is its own and
 * the models do not share a cache or address space):
 *   load the model; make a context (n_ctx = P + N + spec + 2, n_batch = P, MTP off); warm up (the
 *   prompt, then clear: the weights are paged in); read the current RSS; prefill = one vwn_decode of
 *   P random tokens (fixed seed, the same for every model and rep); decode = N single-token
 *   vwn_decode calls, each on the argmax of the previous logits; GHC share = t_ghc / t_eval of the
 *   decode phase (vwn_context_get_perf), and the same of the prefill. With --spec K: a second
 *   context with MTP on generates 2 tokens speculatively (making a float head's draft copy, vwn.h),
 *   clears, decodes the prompt, then vwn_generate_tokens generates N tokens greedily with
 *   spec_depth K (stop_at_eog off).
 * The reported speed is the median over the reps; the models run interleaved rep by rep.
 *
 * Prefill FLOP = 2 x the multiply-adds of the P-token prompt in the main model (prefill_flops
 * below); prefill GFLOP/s = FLOP per prompt token x the median prefill tok/s / 1e9.
 *
 * Bytes per decoded token = vwn_model_info.weight_bytes_per_token (matrices, embedding row, the
 * fp32 norms and GHC coefficients) + the KV cache a token reads:
 * 2 (K and V) * L * pos * Hkv * hd * e bytes (e = 4, 2 with --kv-type f16, 34/32 with q8_0) at the mean number
 * of attended positions pos = P + (N + 1) / 2. Achieved GB/s = bytes per token * decode tok/s / 1e9.
 *
 * Machine bandwidth: T threads (pthreads, -t) each sum their contiguous share of a 1 GiB buffer
 * (--bw-mb) as 64-bit integers with 32-byte vectors and independent accumulators; the buffer is
 * first written by the same threads (first touch); the time of a pass is from the earliest thread
 * start to the latest thread end; a measurement is the best of 5 passes, in GB/s (1e9 bytes). It
 * is measured before every round of reps and once more after the last (a VM's bandwidth drifts,
 * by 2x here), so every round is bracketed by two measurements. A round whose two differ by more
 * than STEADY (25%) saw the machine change state: its reps are left out of the decode figures
 * (decode tok/s, efficiency, the machine figure and the decode ratios) unless no round was
 * steady. Each rep's decode is set against the mean of its round's two measurements: efficiency
 * = the median over the steady reps of (achieved GB/s / that round's GB/s); the machine figure
 * reported is the median of the same rounds' means.
 *
 * Machine FMA peak (cli/bench_peak.c): T threads of independent FMA chains at the best SIMD level of
 * this CPU, best of 5 passes, in GFLOP/s; measured with the bandwidth, so it brackets every round
 * too. Each rep's prefill GFLOP/s is set against the mean of its round's two measurements: the
 * prefill efficiency is the median of those ratios over all reps (a busy core slows the products
 * and the FMA loop alike; the peak of the same minutes is the fair yardstick on a shared machine).
 * The target is stated against this measured peak; docs/performance.md gives the nominal
 * figure beside it. */
#define _GNU_SOURCE /* fork, getrusage, sysconf, strsignal */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *CMD = "bench";

#define MAX_MODELS 16
#define MAX_REPS 100
#define BW_PASSES 5
#define STEADY 1.25 /* a round is steady if its bracketing measurements differ by at most 25% */

static void usage(FILE *out) {
    fprintf(out,
            "usage: vwn bench MODEL.gguf [MODEL2.gguf ...] [options]\n"
            "\n"
            "Measures prefill and decode speed, the memory bandwidth decoding achieves against the\n"
            "machine's (measured here), memory use and the share of decode time in GHC.\n"
            "\n"
            "  -t N           compute threads, also used for the bandwidth test (default: the library's)\n"
            "  -p N           prompt length for prefill (default 256 random tokens)\n"
            "  -n N           tokens to decode one at a time (default 64)\n"
            "  -r N           repetitions; the median is reported (default 3)\n"
            "  --spec K|auto  also time greedy speculative generation of N tokens with K drafts\n"
            "  --simd LEVEL   scalar|avx2|avx512|neon|auto (default auto)\n"
            "  --kv-type T    KV cache element type, f32, f16 or q8_0 (default f32)\n"
            "  --bw-mb N      buffer of the bandwidth test in MiB (default 1024)\n"
            "  --no-mmap      read the model into (huge-page) memory instead of mapping the file\n"
            "  --json         print every result as one JSON object on the last line\n"
            "\n"
            "With several models they run interleaved (model 1 rep 1, model 2 rep 1, model 1 rep 2, ...)\n"
            "and each is compared with the first. See docs/cli.md for what is measured.\n");
}

/* ---- options -------------------------------------------------------------------------------- */

typedef struct options {
    const char *models[MAX_MODELS];
    int n_models;
    int32_t n_threads, prompt_len, gen_len, reps, spec, simd, bw_mb, kv_type;
    bool json, no_mmap;
} options;

/* ---- one (model, rep) run: the child's result, sent to the parent through a pipe -------------- */

typedef struct run_result {
    int ok;
    char error[4096];
    vwn_model_info info;
    char weight_type[16];
    double load_s;
    double prefill_tok_s, decode_tok_s, ghc_share, prefill_ghc_share;
    double rss_bytes, peak_rss_bytes;
    double file_huge_bytes, anon_huge_bytes; /* in 2 MiB pages after the warm-up (Linux) */
    double packed_bytes;                     /* vwn_model_packed_bytes */
    /* speculative */
    double spec_tok_s;
    int32_t spec_generated, spec_verify, spec_drafted, spec_accepted;
    int32_t drafted_at_depth[16], accepted_at_depth[16];
    double spec_draft_us, spec_verify_us;
    double machine_gbs; /* set by the parent: the mean of its round's two measurements */
    double machine_gflops; /* set by the parent: the mean of its round's two FMA peaks (0: none) */
    bool steady;        /* set by the parent: the two measurements within STEADY */
} run_result;

static void run_error(run_result *r, const char *what, vwn_status st) {
    const char *msg = vwn_last_error();
    snprintf(r->error, sizeof r->error, "%s: %s%s%s", what, vwn_status_string(st), msg[0] ? ": " : "", msg);
}

static double rss_now_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0.0;
    unsigned long size = 0, resident = 0;
    int got = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    return got == 2 ? (double)resident * (double)sysconf(_SC_PAGESIZE) : 0.0;
}

/* The process's memory in 2 MiB pages (Linux, /proc/self/smaps_rollup): mapped files
 * (FilePmdMapped: with mmap, the model) and anonymous memory (AnonHugePages: the model read with
 * --no-mmap, the KV caches, scratch). Both 0 where the file is missing. */
static void huge_now_bytes(double *file, double *anon) {
    *file = *anon = 0.0;
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    if (!f) return;
    char line[256];
    unsigned long kb;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "FilePmdMapped: %lu kB", &kb) == 1) *file = (double)kb * 1024.0;
        else if (sscanf(line, "AnonHugePages: %lu kB", &kb) == 1) *anon = (double)kb * 1024.0;
    }
    fclose(f);
}

static double rss_peak_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0.0;
    return (double)ru.ru_maxrss * 1024.0; /* KiB on Linux */
}

static int32_t argmax(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static bool ignore_piece(int32_t token, const char *piece, int32_t len, void *user) {
    (void)token; (void)piece; (void)len; (void)user;
    return true;
}

/* Random prompt of n ids in [0, V): the same for every model with the same V (xorshift64*). */
static void random_prompt(int32_t *toks, int32_t n, int32_t V) {
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (int32_t i = 0; i < n; i++) {
        x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
        toks[i] = (int32_t)(((x * 0x2545F4914F6CDD1DULL) >> 33) % (uint64_t)V);
    }
}

static void run_one(const char *path, const options *o, run_result *r) {
    vwn_model *model = NULL;
    vwn_context *ctx = NULL;
    int32_t *prompt = NULL;
    vwn_status st;
    const int32_t P = o->prompt_len, N = o->gen_len;

    double t0 = cli_time_us();
    vwn_model_params mp = vwn_model_default_params();
    mp.use_mmap = !o->no_mmap;
    if ((st = vwn_model_load(path, &mp, &model))) {
        char what[1200];
        snprintf(what, sizeof what, "cannot load model '%s'", path);
        run_error(r, what, st);
        return;
    }
    r->load_s = (cli_time_us() - t0) / 1e6;
    r->packed_bytes = (double)vwn_model_packed_bytes(model);
    if ((st = vwn_model_get_info(model, &r->info))) { run_error(r, "model info", st); goto done; }
    snprintf(r->weight_type, sizeof r->weight_type, "%s", vwn_type_name(r->info.weight_type));
    const int32_t V = r->info.n_vocab;
    if (o->spec != 0 && r->info.mtp_depth == 0) {
        snprintf(r->error, sizeof r->error, "--spec: the model '%s' has no MTP modules", path);
        goto done;
    }
    if (o->spec > r->info.mtp_depth) {
        snprintf(r->error, sizeof r->error, "--spec %d exceeds the MTP depth %d of '%s'", o->spec,
                 r->info.mtp_depth, path);
        goto done;
    }
    if (!(prompt = malloc(sizeof(int32_t) * (size_t)P))) { snprintf(r->error, sizeof r->error, "out of memory"); goto done; }
    random_prompt(prompt, P, V);

    vwn_context_params cp = vwn_context_default_params();
    cp.n_ctx = P + N + (o->spec > 0 ? o->spec : 16) + 2;
    cp.n_batch = P;
    cp.mtp = false;        /* prefill_flops counts the main model only ...          */
    cp.logits_all = false; /* ... and the output head at the last position only     */
    cp.simd = o->simd;
    cp.kv_type = o->kv_type;
    if (o->n_threads > 0) cp.n_threads = o->n_threads;
    if ((st = vwn_context_new(model, &cp, &ctx))) { run_error(r, "cannot create a context", st); goto done; }

    /* warm-up, as llama-bench does: one whole prompt, so that the weights are mapped and the
     * scratch is touched before anything is timed */
    if ((st = vwn_decode(ctx, prompt, P)) || (st = vwn_context_clear(ctx))) { run_error(r, "warm-up", st); goto done; }
    r->rss_bytes = rss_now_bytes();
    huge_now_bytes(&r->file_huge_bytes, &r->anon_huge_bytes);

    /* prefill */
    vwn_perf perf;
    if ((st = vwn_context_reset_perf(ctx))) { run_error(r, "perf", st); goto done; }
    t0 = cli_time_us();
    if ((st = vwn_decode(ctx, prompt, P))) { run_error(r, "prefill", st); goto done; }
    r->prefill_tok_s = P / ((cli_time_us() - t0) / 1e6);
    if ((st = vwn_context_get_perf(ctx, &perf))) { run_error(r, "perf", st); goto done; }
    r->prefill_ghc_share = perf.t_eval_us > 0 ? perf.t_ghc_us / perf.t_eval_us : 0.0;

    /* decode, one token at a time, greedy */
    if ((st = vwn_context_reset_perf(ctx))) { run_error(r, "perf", st); goto done; }
    t0 = cli_time_us();
    for (int32_t i = 0; i < N; i++) {
        const float *logits;
        if ((st = vwn_get_logits(ctx, -1, &logits))) { run_error(r, "logits", st); goto done; }
        const int32_t tok = argmax(logits, V);
        if ((st = vwn_decode(ctx, &tok, 1))) { run_error(r, "decode", st); goto done; }
    }
    r->decode_tok_s = N / ((cli_time_us() - t0) / 1e6);
    if ((st = vwn_context_get_perf(ctx, &perf))) { run_error(r, "perf", st); goto done; }
    r->ghc_share = perf.t_eval_us > 0 ? perf.t_ghc_us / perf.t_eval_us : 0.0;
    vwn_context_free(ctx);
    ctx = NULL;

    if (o->spec != 0) {
        cp.mtp = true;
        if ((st = vwn_context_new(model, &cp, &ctx))) { run_error(r, "cannot create a context with MTP", st); goto done; }
        vwn_generate_params gp = vwn_generate_default_params();
        gp.n_predict = 2;
        gp.sampler = NULL; /* greedy */
        gp.stop_at_eog = false;
        gp.spec_depth = 1;
        gp.callback = ignore_piece;
        vwn_generate_stats ws;
        /* warm-up: a short speculative generation too, which makes the model's draft head (vwn.h)
         * before the timed run */
        if ((st = vwn_decode(ctx, prompt, 1)) || (st = vwn_generate_tokens(ctx, NULL, 0, &gp, &ws)) ||
            (st = vwn_context_clear(ctx)) || (st = vwn_decode(ctx, prompt, P))) {
            run_error(r, "prefill with MTP", st);
            goto done;
        }
        gp.n_predict = N;
        gp.spec_depth = o->spec;
        vwn_generate_stats s;
        if ((st = vwn_generate_tokens(ctx, NULL, 0, &gp, &s))) { run_error(r, "speculative generation", st); goto done; }
        r->spec_tok_s = s.t_generate_us > 0 ? s.n_generated / (s.t_generate_us / 1e6) : 0.0;
        r->spec_generated = s.n_generated;
        r->spec_verify = s.n_verify;
        r->spec_drafted = s.n_drafted;
        r->spec_accepted = s.n_accepted;
        memcpy(r->drafted_at_depth, s.drafted_at_depth, sizeof r->drafted_at_depth);
        memcpy(r->accepted_at_depth, s.accepted_at_depth, sizeof r->accepted_at_depth);
        r->spec_draft_us = s.t_draft_us;
        r->spec_verify_us = s.t_verify_us;
    }
    r->peak_rss_bytes = rss_peak_bytes();
    /* the kernel's high-water mark lags its page counters a little: never report less than seen */
    if (r->peak_rss_bytes < r->rss_bytes) r->peak_rss_bytes = r->rss_bytes;
    r->ok = 1;

done:
    free(prompt);
    vwn_context_free(ctx);
    vwn_model_free(model);
}

/* Runs run_one in a child process and collects its result. Returns 0 on success. */
static int run_forked(const char *path, const options *o, run_result *r) {
    memset(r, 0, sizeof *r);
    int fd[2];
    if (pipe(fd) != 0) {
        snprintf(r->error, sizeof r->error, "pipe: %s", strerror(errno));
        return 1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(r->error, sizeof r->error, "fork: %s", strerror(errno));
        close(fd[0]);
        close(fd[1]);
        return 1;
    }
    if (pid == 0) {
        close(fd[0]);
        run_one(path, o, r);
        const char *p = (const char *)r;
        size_t left = sizeof *r;
        while (left > 0) {
            ssize_t w = write(fd[1], p, left);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) _exit(3);
            p += w;
            left -= (size_t)w;
        }
        close(fd[1]);
        _exit(0);
    }
    close(fd[1]);
    char *p = (char *)r;
    size_t got = 0;
    while (got < sizeof *r) {
        ssize_t n = read(fd[0], p + got, sizeof *r - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (got != sizeof *r) {
        memset(r, 0, sizeof *r);
        if (WIFSIGNALED(status))
            snprintf(r->error, sizeof r->error, "the benchmark of '%s' crashed (signal %d: %s)", path,
                     WTERMSIG(status), strsignal(WTERMSIG(status)));
        else
            snprintf(r->error, sizeof r->error, "the benchmark of '%s' ended without a result (exit %d)", path,
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return 1;
    }
    return r->ok ? 0 : 1;
}

/* ---- machine read bandwidth ---------------------------------------------------------------- */

typedef uint64_t v4u64 __attribute__((vector_size(32)));
typedef uint64_t v2u64 __attribute__((vector_size(16)));

typedef struct bw_worker {
    const v4u64 *p;
    size_t n;                 /* vectors */
    int streams;              /* read as this many equal pieces side by side (1, 2, 4) */
    uint64_t sum;
    double t0, t1;
    int fill;                 /* 1: write the part (first touch), 0: read it */
} bw_worker;

static void bw_thread(void *arg) {
    bw_worker *w = arg;
    if (w->fill) {
        memset((void *)w->p, 0x5a, w->n * sizeof(v4u64));
        return;
    }
    /* 16-byte vectors, the width every x86-64 and AArch64 CPU has: both compilers keep the eight
     * sums in registers. (With 32-byte generic vectors on baseline x86-64, gcc kept them on the
     * stack, and its build measured 42 GB/s where clang's measured 50.) */
    w->t0 = cli_time_us();
    const v2u64 *p = (const v2u64 *)w->p;
    const size_t n = w->n * 2;
    v2u64 s[8] = {{0}};
    size_t i = 0;
    if (w->streams > 1) { /* pieces of q vectors side by side, 8 vectors (128 bytes) of each in turn */
        const int S = w->streams;
        const size_t q = n / (size_t)S / 8 * 8;
        for (; i < q; i += 8)
            for (int j = 0; j < S; j++)
                for (int k = 0; k < 8; k++) s[k] += p[(size_t)j * q + i + k];
        i = q * (size_t)S; /* the tail below */
    }
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) s[k] += p[i + k];
    for (; i < n; i++) s[0] += p[i];
    for (int k = 1; k < 8; k++) s[0] += s[k];
    w->sum = s[0][0] + s[0][1];
    w->t1 = cli_time_us();
}

/* One pass of T threads over the buffer, all released at once; returns the seconds from the
 * earliest start to the latest end (0 if the threads could not be started). */
static double bw_pass(v4u64 *buf, size_t n_vec, int T, int streams, int fill, uint64_t *sum) {
    bw_worker w[256];
    for (int t = 0; t < T; t++) {
        const size_t lo = n_vec * (size_t)t / (size_t)T, hi = n_vec * (size_t)(t + 1) / (size_t)T;
        w[t] = (bw_worker){buf + lo, hi - lo, streams, 0, 0, 0, fill};
    }
    if (!cli_run_together(T, bw_thread, w, sizeof w[0])) return 0.0;
    double first = w[0].t0, last = w[0].t1;
    for (int t = 0; t < T; t++) {
        if (w[t].t0 < first) first = w[t].t0;
        if (w[t].t1 > last) last = w[t].t1;
        *sum += w[t].sum;
    }
    return (last - first) / 1e6;
}

/* The bandwidth test's buffer: mib MiB (halved until it maps), first written by the threads that
 * will read it. Mapped with MADV_DONTFORK so the forked runs neither inherit it nor count it in
 * their RSS. NULL if even 16 MiB fails. */
static v4u64 *bw_buffer(int T, int32_t *mib) {
    v4u64 *buf = NULL;
    while (*mib >= 16) {
        void *p = mmap(NULL, (size_t)*mib << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) {
            buf = p;
            break;
        }
        *mib /= 2;
    }
    if (!buf) return NULL;
    const size_t bytes = (size_t)*mib << 20;
    madvise(buf, bytes, MADV_DONTFORK);
    uint64_t sum = 0;
    if (T == 1) memset(buf, 0x5a, bytes);
    else bw_pass(buf, bytes / sizeof(v4u64), T > 256 ? 256 : T, 1, 1, &sum);
    return buf;
}

/* Best read bandwidth in GB/s with T threads over the buffer of mib MiB: BW_PASSES passes each
 * with every thread reading its share as 1, 2 and 4 streams. (One stream a thread measured 13.5
 * GB/s on an Intel Cascade Lake where 2 and 4 read 16.0 and 17.0, and the float kernels, reading
 * two panels at a time, 18-19: a core's misses in flight there grow with the streams its L2
 * prefetcher follows; docs/performance.md, "Twenty-fourth session".) */
static double machine_bandwidth(v4u64 *buf, int32_t mib, int T) {
    if (!buf) return 0.0;
    const size_t bytes = (size_t)mib << 20, n_vec = bytes / sizeof(v4u64);
    uint64_t sum = 0;
    if (T > 256) T = 256;
    double best = 0.0;
    for (int pass = 0; pass < BW_PASSES; pass++)
        for (int streams = 1; streams <= 4; streams *= 2) {
            const double s = bw_pass(buf, n_vec, T, streams, 0, &sum);
            if (s > 0 && bytes / s / 1e9 > best) best = bytes / s / 1e9;
        }
    static volatile uint64_t sink;
    sink = sum; /* keep the sums alive */
    (void)sink;
    return best;
}

/* ---- prefill FLOP count ------------------------------------------------------------------------
 *
 * Floating-point operations (FLOP = 2 x multiply-adds) of one prefill of P tokens from position 0 in
 * the main model (the bench runs it with MTP off), with the output head at the last n_out positions
 * (1: the bench's context keeps only the last position's logits). Multiply-adds counted:
 *
 *   per layer and token    Q, K, V, O projections  D*Hq*hd + 2*D*Hkv*hd + Hq*hd*D
 *                          SwiGLU FFN              3*D*F
 *   per layer, position p  scores and values       2*Hq*hd*(p+1)   (causal, keys 0..p), summed
 *                                                  over p < P: Hq*hd*P*(P+1)
 *   per GHC module (2 per layer: attention, FFN) and token, s = D/m, K = 2m+n (lib/ghc.c, spec §2):
 *                          coefficients            n*s*K           (dynamic only: rows of H times
 *                                                                   the [s, K] projection)
 *                          read + carry            (m+n)*n*s       (vwn_ghc_before's mix)
 *                          write                   n*m*s           (folded into the next module's
 *                                                                   vwn_ghc_before, or vwn_ghc_after
 *                                                                   after the last; counted once)
 *                          (static GHC copies C0: no coefficient work)
 *   per token              factorized embedding    D*D'            (embed_expand, present when
 *                                                                   n != m; a wide embedding, or
 *                                                                   n == m, is a row copy: 0)
 *   per output position    reduce                  D'*D            (present when n != m)
 *                          LM head                 D*V             (tied or not)
 *
 * Not counted: RMSNorms (also GHC's routing norm), group norm, RoPE, softmax, SiLU and the gating
 * product, tanh and the coefficient scaling, the KV-cache copies -- all O(width) per token. */
static double prefill_flops(const vwn_model_info *in, int32_t P, int32_t n_out) {
    const double D = in->n_embd, Dw = in->n_embd_wide, L = in->n_layer, V = in->n_vocab, F = in->n_ff;
    const double m = in->ghc_m, n = in->ghc_n, hd = in->head_dim, q = in->n_head * hd, kv = in->n_head_kv * hd;
    const double s = in->n_embd / in->ghc_m, K = 2 * m + n, T = P;
    const bool expand = in->ghc_n != in->ghc_m;
    const double proj = D * q + 2 * D * kv + q * D + 3 * D * F;               /* per layer, token */
    const double attn = q * T * (T + 1);                                      /* per layer, all P */
    const double ghc = (in->ghc_dynamic ? n * s * K : 0) + (m + n) * n * s + n * m * s; /* per module */
    const double emb = !in->wide_embedding && expand ? D * Dw : 0;            /* per token        */
    const double head = (expand ? Dw * D : 0) + D * V;                        /* per output       */
    return 2 * (L * (T * proj + attn) + 2 * L * T * ghc + T * emb + n_out * head);
}

/* ---- summary --------------------------------------------------------------------------------- */

typedef struct summary {
    const char *path;
    vwn_model_info info;
    char weight_type[16];
    double load_s, prefill_tok_s, decode_tok_s, ghc_share, prefill_ghc_share, rss_mb, peak_rss_mb, packed_mb;
    double file_huge_mb, anon_huge_mb; /* the smallest over the repetitions */
    double kv_bytes, bytes_per_token, decode_gbs, bw_efficiency, machine_gbs;
    int steady_reps;                      /* reps whose round was steady (0: none; all used) */
    double rep_bw_efficiency[MAX_REPS];   /* every rep against its round, steady or not */
    double prefill_flop_per_token, prefill_gflops; /* FLOP per prompt token; FLOP/s of prefill / 1e9 */
    double machine_gflops, flop_efficiency;        /* median FMA peak of the rounds; of the reps' ratios */
    double rep_flop_efficiency[MAX_REPS];          /* every rep's prefill GFLOP/s against its round's peak */
    double spec_tok_s, spec_speedup, spec_mean_accepted;
    int32_t drafted_at_depth[16], accepted_at_depth[16], spec_drafted, spec_accepted, spec_verify;
    double spec_draft_us, spec_verify_us;
} summary;

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void summarise(const options *o, const run_result *runs, double machine_gbs, summary *s) {
    double v[MAX_REPS];
    const int R = o->reps;
    s->info = runs[0].info;
    memcpy(s->weight_type, runs[0].weight_type, sizeof s->weight_type);
    for (int i = 0; i < R; i++) v[i] = runs[i].load_s;
    s->load_s = median(v, R);
    for (int i = 0; i < R; i++) v[i] = runs[i].prefill_tok_s;
    s->prefill_tok_s = median(v, R);
    /* decode figures over the steady reps (all if none was steady) */
    int use[MAX_REPS], U = 0;
    for (int i = 0; i < R; i++)
        if (runs[i].steady) use[U++] = i;
    s->steady_reps = U;
    if (U == 0)
        for (int i = 0; i < R; i++) use[U++] = i;
    for (int i = 0; i < U; i++) v[i] = runs[use[i]].decode_tok_s;
    s->decode_tok_s = median(v, U);
    for (int i = 0; i < U; i++) v[i] = runs[use[i]].ghc_share;
    s->ghc_share = median(v, U);
    for (int i = 0; i < R; i++) v[i] = runs[i].prefill_ghc_share;
    s->prefill_ghc_share = median(v, R);
    for (int i = 0; i < R; i++) v[i] = runs[i].spec_tok_s;
    s->spec_tok_s = median(v, R);
    s->file_huge_mb = runs[0].file_huge_bytes / 1048576.0;
    s->anon_huge_mb = runs[0].anon_huge_bytes / 1048576.0;
    s->packed_mb = runs[0].packed_bytes / 1048576.0;
    for (int i = 0; i < R; i++) {
        if (runs[i].file_huge_bytes / 1048576.0 < s->file_huge_mb) s->file_huge_mb = runs[i].file_huge_bytes / 1048576.0;
        if (runs[i].anon_huge_bytes / 1048576.0 < s->anon_huge_mb) s->anon_huge_mb = runs[i].anon_huge_bytes / 1048576.0;
        if (runs[i].rss_bytes / 1048576.0 > s->rss_mb) s->rss_mb = runs[i].rss_bytes / 1048576.0;
        if (runs[i].peak_rss_bytes / 1048576.0 > s->peak_rss_mb) s->peak_rss_mb = runs[i].peak_rss_bytes / 1048576.0;
        s->spec_drafted += runs[i].spec_drafted;
        s->spec_accepted += runs[i].spec_accepted;
        s->spec_verify += runs[i].spec_verify;
        s->spec_draft_us += runs[i].spec_draft_us / R;
        s->spec_verify_us += runs[i].spec_verify_us / R;
        for (int d = 0; d < 16; d++) {
            s->drafted_at_depth[d] += runs[i].drafted_at_depth[d];
            s->accepted_at_depth[d] += runs[i].accepted_at_depth[d];
        }
    }
    /* KV bytes one decoded token reads: K and V of every layer at the mean attended length */
    const double mean_pos = o->prompt_len + (o->gen_len + 1) / 2.0;
    s->kv_bytes = 2.0 * s->info.n_layer * mean_pos * s->info.n_head_kv * s->info.head_dim *
                  (o->kv_type == VWN_TYPE_F16 ? 2.0 : o->kv_type == VWN_TYPE_Q8_0 ? 34.0 / 32.0 : 4.0);
    s->bytes_per_token = (double)s->info.weight_bytes_per_token + s->kv_bytes;
    s->decode_gbs = s->bytes_per_token * s->decode_tok_s / 1e9;
    /* FLOP of the prompt / median prefill time (= P / median tok/s; exact for an odd rep count) */
    s->prefill_flop_per_token = prefill_flops(&s->info, o->prompt_len, 1) / o->prompt_len;
    s->prefill_gflops = s->prefill_flop_per_token * s->prefill_tok_s / 1e9;
    /* each rep against its own round's bandwidth (see the top of the file) */
    for (int i = 0; i < R; i++)
        s->rep_bw_efficiency[i] =
            runs[i].machine_gbs > 0 ? s->bytes_per_token * runs[i].decode_tok_s / 1e9 / runs[i].machine_gbs : 0.0;
    for (int i = 0; i < U; i++) v[i] = s->rep_bw_efficiency[use[i]];
    s->bw_efficiency = median(v, U);
    for (int i = 0; i < U; i++) v[i] = runs[use[i]].machine_gbs;
    s->machine_gbs = median(v, U);
    /* prefill against each rep's round's FMA peak (every rep: prefill takes no steady filter) */
    for (int i = 0; i < R; i++)
        s->rep_flop_efficiency[i] = runs[i].machine_gflops > 0
                                        ? s->prefill_flop_per_token * runs[i].prefill_tok_s / 1e9 / runs[i].machine_gflops
                                        : 0.0;
    for (int i = 0; i < R; i++) v[i] = s->rep_flop_efficiency[i];
    s->flop_efficiency = median(v, R);
    for (int i = 0; i < R; i++) v[i] = runs[i].machine_gflops;
    s->machine_gflops = median(v, R);
    (void)machine_gbs;
    /* speculative vs plain: rep by rep (the two phases run seconds apart in the same process), median */
    for (int i = 0; i < R; i++) v[i] = runs[i].decode_tok_s > 0 ? runs[i].spec_tok_s / runs[i].decode_tok_s : 0.0;
    s->spec_speedup = median(v, R);
    s->spec_mean_accepted = s->spec_verify ? (double)s->spec_accepted / s->spec_verify : 0.0;
}

static void print_summary(const options *o, const summary *s, double machine_gbs) {
    const vwn_model_info *in = &s->info;
    printf("\nmodel %s\n", s->path);
    printf("  %.3g M params, %s weights, %.1f MB file; V=%d D=%d L=%d m=%d n=%d D'=%d heads %d/%d hd %d F %d, MTP %d\n",
           in->n_params / 1e6, s->weight_type, in->file_size / 1e6, in->n_vocab, in->n_embd, in->n_layer, in->ghc_m,
           in->ghc_n, in->n_embd_wide, in->n_head, in->n_head_kv, in->head_dim, in->n_ff, in->mtp_depth);
    printf("  load             %10.3f s\n", s->load_s);
    printf("  prefill          %10.2f tok/s   (%d tokens)\n", s->prefill_tok_s, o->prompt_len);
    printf("  prefill compute  %10.2f GFLOP/s (%.2f MFLOP/token", s->prefill_gflops, s->prefill_flop_per_token / 1e6);
    if (s->machine_gflops > 0)
        printf("; %.1f%% of the machine's %.1f GFLOP/s FMA peak, rep by rep", 100.0 * s->flop_efficiency,
               s->machine_gflops);
    printf(")\n");
    printf("  decode           %10.2f tok/s   (%.3f ms/token, %d tokens)\n", s->decode_tok_s,
           s->decode_tok_s > 0 ? 1e3 / s->decode_tok_s : 0.0, o->gen_len);
    printf("  bytes/token      %10.2f MB      (weights %.2f MB + KV cache %.2f MB at position %.1f)\n",
           s->bytes_per_token / 1e6, in->weight_bytes_per_token / 1e6, s->kv_bytes / 1e6,
           o->prompt_len + (o->gen_len + 1) / 2.0);
    printf("  decode bandwidth %10.2f GB/s    (%.1f%% of the machine's %.2f GB/s, rep by rep; ", s->decode_gbs,
           100.0 * s->bw_efficiency, s->machine_gbs);
    if (s->steady_reps) printf("%d of %d reps steady)\n", s->steady_reps, o->reps);
    else printf("no rep steady: all used)\n");
    (void)machine_gbs;
    printf("  GHC share        %10.1f %%       of decode time (%.1f%% of prefill time)\n", 100.0 * s->ghc_share,
           100.0 * s->prefill_ghc_share);
    printf("  RSS              %10.1f MB      after load + context (peak %.1f MB)\n", s->rss_mb, s->peak_rss_mb);
    printf("  2 MiB pages      %10.1f MB      of the mapped file, %.1f MB anonymous\n", s->file_huge_mb, s->anon_huge_mb);
    if (s->packed_mb > 0)
        printf("  packed           %10.1f MB      of the matrices, read in place of the file's pages (docs/design.md)\n",
               s->packed_mb);
    /* the bytes a token reads set the scale, not the file (a wide embedding is read one row a token);
     * a model that fits the caches does not stream its pages at all */
    const double token_mib = (double)in->weight_bytes_per_token / 1048576.0;
    if (!o->no_mmap && token_mib > 64.0 && s->file_huge_mb + s->packed_mb < 0.5 * token_mib)
        printf("  note: most of the mapped model is in 4 KiB pages (its page cache was filled by a write or a\n"
               "        copy); decoding is faster once it is faulted in anew (docs/performance.md) or with --no-mmap\n");
    if (o->spec != 0) {
        printf("  speculative      %10.2f tok/s   (%.2fx plain decode; depth %s%d", s->spec_tok_s, s->spec_speedup,
               o->spec < 0 ? "adaptive up to " : "", o->spec < 0 ? in->mtp_depth : o->spec);
        printf(", %.2f drafts accepted per step; drafting %.1f ms, verifying %.1f ms per run)\n", s->spec_mean_accepted,
               s->spec_draft_us / 1e3, s->spec_verify_us / 1e3);
        printf("  acceptance      ");
        for (int d = 0; d < 16; d++)
            if (s->drafted_at_depth[d])
                printf(" d%d %.1f%% (%d/%d)", d + 1, 100.0 * s->accepted_at_depth[d] / s->drafted_at_depth[d],
                       s->accepted_at_depth[d], s->drafted_at_depth[d]);
        printf("\n");
    }
}

static void json_model(const options *o, const summary *s, const summary *first, double machine_gbs) {
    printf("\"model\": ");
    cli_json_string(stdout, s->path);
    printf(", \"n_params\": %llu, \"weight_type\": \"%s\", \"file_bytes\": %llu, \"load_s\": %.6g, "
           "\"prefill_tok_s\": %.6g, \"decode_tok_s\": %.6g, \"weight_bytes_per_token\": %llu, "
           "\"kv_bytes_per_token\": %.6g, \"bytes_per_token\": %.6g, \"decode_gbs\": %.6g, \"machine_gbs\": %.6g, "
           "\"bw_efficiency\": %.6g, \"ghc_share\": %.6g, \"prefill_ghc_share\": %.6g, \"rss_mb\": %.6g, \"peak_rss_mb\": %.6g, "
           "\"file_huge_mb\": %.6g, \"anon_huge_mb\": %.6g, \"packed_mb\": %.6g, "
           "\"prefill_mflop_per_token\": %.6g, \"prefill_gflops\": %.6g, \"machine_gflops\": %.6g, \"flop_efficiency\": %.6g, "
           "\"prefill_ratio\": %.6g, \"decode_ratio\": %.6g, \"prefill_flop_ratio\": %.6g",
           (unsigned long long)s->info.n_params, s->weight_type, (unsigned long long)s->info.file_size, s->load_s,
           s->prefill_tok_s, s->decode_tok_s, (unsigned long long)s->info.weight_bytes_per_token, s->kv_bytes,
           s->bytes_per_token, s->decode_gbs, s->machine_gbs, s->bw_efficiency, s->ghc_share, s->prefill_ghc_share, s->rss_mb, s->peak_rss_mb,
           s->file_huge_mb, s->anon_huge_mb, s->packed_mb, s->prefill_flop_per_token / 1e6, s->prefill_gflops,
           s->machine_gflops, s->flop_efficiency,
           first->prefill_tok_s > 0 ? s->prefill_tok_s / first->prefill_tok_s : 0.0,
           first->decode_tok_s > 0 ? s->decode_tok_s / first->decode_tok_s : 0.0,
           s->prefill_flop_per_token / first->prefill_flop_per_token);
    printf(", \"steady_reps\": %d, \"rep_bw_efficiency\": [", s->steady_reps);
    for (int i = 0; i < o->reps; i++) printf("%s%.6g", i ? ", " : "", s->rep_bw_efficiency[i]);
    printf("], \"rep_flop_efficiency\": [");
    for (int i = 0; i < o->reps; i++) printf("%s%.6g", i ? ", " : "", s->rep_flop_efficiency[i]);
    printf("]");
    if (o->spec != 0) {
        printf(", \"spec_depth\": %d, \"spec_tok_s\": %.6g, \"spec_speedup\": %.6g, \"spec_mean_accepted\": %.6g, "
               "\"spec_acceptance\": [",
               o->spec, s->spec_tok_s, s->spec_speedup, s->spec_mean_accepted);
        bool comma = false;
        for (int d = 0; d < 16; d++)
            if (s->drafted_at_depth[d]) {
                printf("%s%.6g", comma ? ", " : "", (double)s->accepted_at_depth[d] / s->drafted_at_depth[d]);
                comma = true;
            }
        printf("]");
    }
}

/* ---- the command ----------------------------------------------------------------------------- */

int cmd_bench(int argc, char **argv) {
    options o;
    memset(&o, 0, sizeof o);
    o.prompt_len = 256;
    o.gen_len = 64;
    o.reps = 3;
    o.simd = VWN_SIMD_AUTO;
    o.bw_mb = 1024;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--json")) o.json = true;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(v = cli_next_value(CMD, argc, argv, &i)) || cli_parse_int(CMD, a, v, 1, 256, &o.n_threads)) return 2;
        } else if (!strcmp(a, "-p")) {
            if (!(v = cli_next_value(CMD, argc, argv, &i)) || cli_parse_int(CMD, a, v, 1, 1 << 18, &o.prompt_len)) return 2;
        } else if (!strcmp(a, "-n")) {
            if (!(v = cli_next_value(CMD, argc, argv, &i)) || cli_parse_int(CMD, a, v, 1, 1 << 18, &o.gen_len)) return 2;
        } else if (!strcmp(a, "-r")) {
            if (!(v = cli_next_value(CMD, argc, argv, &i)) || cli_parse_int(CMD, a, v, 1, MAX_REPS, &o.reps)) return 2;
        } else if (!strcmp(a, "--spec")) {
            if (!(v = cli_next_value(CMD, argc, argv, &i))) return 2;
            if (!strcmp(v, "auto")) o.spec = -1;
            else if (cli_parse_int(CMD, a, v, 1, 16, &o.spec)) return 2;
        } else if (!strcmp(a, "--simd")) {
            if (!(v = cli_next_value(CMD, argc, argv, &i)) || cli_parse_simd(CMD, v, &o.simd)) return 2;
        } else if (!strcmp(a, "--kv-type")) {
            if (!(v = cli_next_value(CMD, argc, argv, &i)) || cli_parse_kv_type(CMD, v, &o.kv_type)) return 2;
        } else if (!strcmp(a, "--no-mmap")) {
            o.no_mmap = true;
        } else if (!strcmp(a, "--bw-mb")) {
            if (!(v = cli_next_value(CMD, argc, argv, &i)) || cli_parse_int(CMD, a, v, 16, 1 << 20, &o.bw_mb)) return 2;
        } else if (a[0] == '-' && a[1] != '\0') return cli_usage_error(CMD, "unknown option '%s'", a);
        else if (o.n_models == MAX_MODELS) return cli_usage_error(CMD, "at most %d models", MAX_MODELS);
        else o.models[o.n_models++] = a;
    }
    if (o.n_models == 0) return cli_usage_error(CMD, "no model file given");
    for (int m = 0; m < o.n_models; m++) { /* fail early, before the bandwidth test */
        FILE *f = fopen(o.models[m], "rb");
        if (!f) {
            fprintf(stderr, "vwn %s: cannot open model '%s': %s\n", CMD, o.models[m], strerror(errno));
            return 1;
        }
        fclose(f);
    }
    const int T = o.n_threads > 0 ? o.n_threads : vwn_context_default_params().n_threads;
    const vwn_simd level = cli_simd_in_effect(o.simd);

    int32_t bw_mb = o.bw_mb;
    v4u64 *bw_buf = bw_buffer(T, &bw_mb);
    double rounds_gbs[MAX_REPS + 1]; /* before round r; [reps]: after the last */
    double rounds_gflops[MAX_REPS + 1]; /* the FMA peak, likewise */
    rounds_gbs[0] = machine_bandwidth(bw_buf, bw_mb, T);
    rounds_gflops[0] = cli_fma_peak_gflops(T);
    double machine_gbs = rounds_gbs[0];
    printf("vwn bench: libvwn %s, SIMD %s, %d thread%s; prompt %d tokens, decode %d tokens, median of %d rep%s; "
           "KV cache %s\n",
           vwn_version(), vwn_simd_name(level), T, T == 1 ? "" : "s", o.prompt_len, o.gen_len, o.reps,
           o.reps == 1 ? "" : "s", cli_kv_type_name(o.kv_type));
    printf("machine read bandwidth: %.2f GB/s (%d thread%s summing a %d MiB buffer, 1, 2 and 4 streams a thread, "
           "best of %d passes; measured again after every round of reps)\n", machine_gbs, T, T == 1 ? "" : "s", bw_mb,
           BW_PASSES);
    if (rounds_gflops[0] > 0)
        printf("machine FMA peak: %.1f GFLOP/s (%d thread%s of independent %s FMA chains, best of 5 passes; measured "
               "again after every round)\n", rounds_gflops[0], T, T == 1 ? "" : "s", cli_fma_peak_level());
    else
        printf("machine FMA peak: not measured (no SIMD level on this CPU or build)\n");
    fflush(stdout);

    run_result *runs = calloc((size_t)o.n_models * (size_t)o.reps, sizeof *runs);
    summary *sums = calloc((size_t)o.n_models, sizeof *sums);
    int rc = 1;
    if (!runs || !sums) { fprintf(stderr, "vwn %s: out of memory\n", CMD); goto done; }
    int steady_rounds = 0;
    for (int r = 0; r < o.reps; r++) {
        for (int m = 0; m < o.n_models; m++) {
            run_result *res = &runs[(size_t)m * o.reps + r];
            if (run_forked(o.models[m], &o, res)) {
                fprintf(stderr, "vwn %s: %s\n", CMD, res->error);
                goto done;
            }
            fprintf(stderr, "  rep %d/%d %s: prefill %.2f tok/s, decode %.2f tok/s%s", r + 1, o.reps, o.models[m],
                    res->prefill_tok_s, res->decode_tok_s, o.spec ? "" : "\n");
            if (o.spec) fprintf(stderr, ", speculative %.2f tok/s\n", res->spec_tok_s);
        }
        /* the round's second bracket (and the next round's first) */
        const double before = rounds_gbs[r], after = machine_bandwidth(bw_buf, bw_mb, T);
        rounds_gbs[r + 1] = after;
        rounds_gflops[r + 1] = rounds_gflops[0] > 0 ? cli_fma_peak_gflops(T) : 0.0;
        const double lo = before < after ? before : after, hi = before < after ? after : before;
        const bool steady = lo > 0 && hi <= STEADY * lo;
        steady_rounds += steady;
        for (int m = 0; m < o.n_models; m++) {
            runs[(size_t)m * o.reps + r].machine_gbs = 0.5 * (before + after);
            runs[(size_t)m * o.reps + r].machine_gflops = 0.5 * (rounds_gflops[r] + rounds_gflops[r + 1]);
            runs[(size_t)m * o.reps + r].steady = steady;
        }
        fprintf(stderr, "  machine read bandwidth after rep %d: %.2f GB/s%s\n", r + 1, after,
                steady ? "" : " (changed state during the round: left out of the decode figures)");
        if (rounds_gflops[r + 1] > 0) fprintf(stderr, "  machine FMA peak after rep %d: %.1f GFLOP/s\n", r + 1, rounds_gflops[r + 1]);
    }
    {
        double v[MAX_REPS];
        int k = 0;
        for (int r = 0; r < o.reps; r++)
            if (!steady_rounds || runs[r].steady) v[k++] = runs[r].machine_gbs;
        machine_gbs = median(v, k);
    }

    for (int m = 0; m < o.n_models; m++) {
        sums[m].path = o.models[m];
        summarise(&o, &runs[(size_t)m * o.reps], machine_gbs, &sums[m]);
        print_summary(&o, &sums[m], machine_gbs);
    }
    if (o.n_models > 1) {
        printf("\nagainst %s:\n", o.models[0]);
        for (int m = 1; m < o.n_models; m++) {
            printf("  %s: decode %.3fx, prefill %.3fx", o.models[m],
                   sums[0].decode_tok_s > 0 ? sums[m].decode_tok_s / sums[0].decode_tok_s : 0.0,
                   sums[0].prefill_tok_s > 0 ? sums[m].prefill_tok_s / sums[0].prefill_tok_s : 0.0);
            if (o.spec && sums[0].spec_tok_s > 0) printf(", speculative %.3fx", sums[m].spec_tok_s / sums[0].spec_tok_s);
            /* the GHC-overhead target: prefill time ratio <= FLOP ratio, i.e. GFLOP/s >= the first's;
             * a verdict only between models of one weight type (a twin and its VWN models) */
            if (sums[m].prefill_tok_s > 0) {
                printf("; prefill time ratio %.3f vs FLOP ratio %.3f", sums[0].prefill_tok_s / sums[m].prefill_tok_s,
                       sums[m].prefill_flop_per_token / sums[0].prefill_flop_per_token);
                if (!strcmp(sums[m].weight_type, sums[0].weight_type))
                    printf(": target %s", sums[m].prefill_gflops >= sums[0].prefill_gflops ? "met" : "missed");
            }
            printf("\n");
        }
    }
    if (o.json) {
        printf("{\"version\": \"%s\", \"simd\": \"%s\", \"threads\": %d, \"prompt_len\": %d, \"gen_len\": %d, "
               "\"reps\": %d, \"kv_type\": \"%s\", ",
               vwn_version(), vwn_simd_name(level), T, o.prompt_len, o.gen_len, o.reps,
               cli_kv_type_name(o.kv_type));
        /* with one model its keys follow at the top level, machine_gbs among them (the same value) */
        if (o.n_models > 1) printf("\"machine_gbs\": %.6g, ", machine_gbs);
        printf("\"bw_buffer_mb\": %d, \"rep_machine_gbs\": [", bw_mb);
        for (int r = 0; r <= o.reps; r++) printf("%s%.6g", r ? ", " : "", rounds_gbs[r]);
        printf("], \"rep_machine_gflops\": [");
        for (int r = 0; r <= o.reps; r++) printf("%s%.6g", r ? ", " : "", rounds_gflops[r]);
        printf("]");
        if (o.n_models == 1) {
            printf(", ");
            json_model(&o, &sums[0], &sums[0], machine_gbs);
        }
        printf(", \"models\": [");
        for (int m = 0; m < o.n_models; m++) {
            printf("%s{", m ? ", " : "");
            json_model(&o, &sums[m], &sums[0], machine_gbs);
            printf("}");
        }
        printf("]}\n");
    }
    rc = 0;

done:
    free(runs);
    if (bw_buf) munmap(bw_buf, (size_t)bw_mb << 20);
    free(sums);
    return rc;
}
