/* fuzz_common.h -- what the three fuzz targets share: the invariant check (a trap under libFuzzer,
 * a counted failure when tests/test_fuzz_replay.c replays the regression files), and an in-memory
 * model made by tests/gguf_writer.h. */
#ifndef VWN_FUZZ_COMMON_H
#define VWN_FUZZ_COMMON_H

#include "vwn.h"
#include "model.h"
#include "../gguf_writer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An invariant of the library that must hold whatever the input. */
#ifndef FUZZ_CHECK
#define FUZZ_CHECK(cond) do { \
    if (!(cond)) { \
        fprintf(stderr, "fuzz invariant failed at %s:%d: %s (last error: %s)\n", __FILE__, __LINE__, #cond, \
                vwn_last_error()); \
        __builtin_trap(); \
    } \
} while (0)
#endif

/* The small model of gguf_writer.h's default configuration (MTP 2), seed 1, loaded from memory.
 * NULL if that fails (a library bug: every target checks it). */
static inline vwn_model *fuzz_default_model(void) {
    gw_config c = gw_config_default();
    size_t n = 0;
    uint8_t *img = gw_build(&c, 1, &n);
    if (!img) return NULL;
    vwn_model *m = NULL;
    vwn_status st = vwn_model_load_memory(img, n, &m);
    free(img);
    return st == VWN_OK ? m : NULL;
}

#endif
