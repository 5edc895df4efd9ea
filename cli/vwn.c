/* vwn.c -- the `vwn` command line: dispatches to one subcommand per file (cmd_*.c). */
#include "cli.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} command;

static const command commands[] = {
    {"info", cmd_info, "print a model's configuration and tensor table"},
    {"tokenize", cmd_tokenize, "print the token ids and pieces of a text"},
    {"logits", cmd_logits, "write the logits of a prompt to .npy files"},
    {"run", cmd_run, "generate text from a prompt"},
    {"bench", cmd_bench, "measure prefill and decode speed against the machine's bandwidth"},
    {"perplexity", cmd_perplexity, "bits per token and per byte of a text"},
};

static void usage(FILE *out) {
    fprintf(out, "vwn %s -- run Virtual Width Network language models on the CPU\n\n", vwn_version());
    fprintf(out, "usage: vwn <command> [options]   (vwn <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-11s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("vwn %s\n", vwn_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "vwn: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
