/* cli.h -- the `vwn` command: each subcommand lives in its own cmd_*.c file. */
#ifndef VWN_CLI_H
#define VWN_CLI_H

#include "vwn.h"

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

#endif
