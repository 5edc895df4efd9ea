/* cli.h -- the `vwn` command: each subcommand lives in its own cmd_*.c file. */
#ifndef VWN_CLI_H
#define VWN_CLI_H

#include "vwn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Each subcommand: argv[0] is the subcommand name. Returns the process exit code. */
int cmd_info(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);

/* Shared helpers (cli/util.c). */
/* Prints "vwn <cmd>: <what>: <status text>: <library message>" to stderr; returns 1. */
int cli_fail(const char *cmd, const char *what, vwn_status st);
/* Reads a whole file into a NUL-terminated malloc'd buffer; NULL on error (errno kept). */
char *cli_read_file(const char *path, size_t *out_len);
/* Parses "1,2,3" into a malloc'd array; returns count or -1. */
int cli_parse_tokens(const char *s, int32_t **out);
/* Writes a float32 .npy file with the given shape (1 or 2 dims). Returns 0 on success. */
int cli_write_npy(const char *path, const float *data, int ndim, const int64_t *shape);

/* Option parsing. Each prints "vwn <cmd>: ..." to stderr and returns nonzero on a bad value. */
/* The value after option argv[*i] (advancing *i); NULL (message printed) if it is missing. */
const char *cli_next_value(const char *cmd, int argc, char **argv, int *i);
/* An integer in [lo, hi]. */
int cli_parse_int(const char *cmd, const char *opt, const char *s, long long lo, long long hi, int32_t *out);
/* A finite number in [lo, hi]. */
int cli_parse_float(const char *cmd, const char *opt, const char *s, double lo, double hi, float *out);
/* scalar|avx2|avx512|neon|auto -> a vwn_simd value (checked against this CPU and build). */
int cli_parse_simd(const char *cmd, const char *s, int32_t *out);
/* The SIMD level a context made with `requested` runs at: requested itself, or for VWN_SIMD_AUTO the
 * level the VWN_SIMD environment variable names (if this CPU supports it), else the best one. */
vwn_simd cli_simd_in_effect(int32_t requested);
/* --kv-type f32|f16|q8_0 -> VWN_TYPE_F32 / F16 / Q8_0 (context param kv_type), and back. */
int cli_parse_kv_type(const char *cmd, const char *s, int32_t *out);
const char *cli_kv_type_name(int32_t kv_type);
/* Prints "vwn <cmd>: <message> (try 'vwn <cmd> --help')" to stderr; returns 2 (usage error). */
int cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Tokenizes text[0..len) into a malloc'd array (*out); returns the count, or -1 after printing
 * the library's message. */
int cli_tokenize(const char *cmd, const vwn_model *model, const char *text, size_t len, bool add_special,
                 int32_t **out);
/* Writes s as a JSON string literal (quoted, escaped). */
void cli_json_string(FILE *f, const char *s);
/* Monotonic clock in microseconds. */
double cli_time_us(void);

/* Runs fn on T workers (an array of T structs of `size` bytes at `workers`, 1 <= T <= 256), all
 * released at once when every thread exists: T - 1 new POSIX threads and the calling thread
 * (worker 0). Returns false, having run none, if a thread could not be started. */
bool cli_run_together(int T, void (*fn)(void *), void *workers, size_t size);

/* The machine's FMA peak (cli/bench_peak.c): T threads of independent FMA chains at the best SIMD
 * level of this CPU, best of 5 passes, in GFLOP/s; 0 where this CPU or build has no SIMD level. */
double cli_fma_peak_gflops(int T);
/* The name of the level cli_fma_peak_gflops measures at, or NULL. */
const char *cli_fma_peak_level(void);

#endif
