/* vt.h -- the tiny test harness of the C tests: CHECK macros that count, and a closing line
 * "N passed, N failed" that ctest's output and CI read. Header-only; one per test executable. */
#ifndef VWN_VT_H
#define VWN_VT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

static int vt_passed, vt_failed;

#define CHECK(cond) do { \
    if (cond) { vt_passed++; } \
    else { vt_failed++; fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define CHECK_MSG(cond, ...) do { \
    if (cond) { vt_passed++; } \
    else { vt_failed++; fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
           fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); } \
} while (0)

/* Checks a vwn_status equals the expected one and prints the library's message if not. */
#define CHECK_STATUS(expr, expected) do { \
    vwn_status vt_s_ = (expr); \
    if (vt_s_ == (expected)) { vt_passed++; } \
    else { vt_failed++; fprintf(stderr, "FAIL %s:%d: %s returned %s (%s), expected %s\n", \
           __FILE__, __LINE__, #expr, vwn_status_string(vt_s_), vwn_last_error(), \
           vwn_status_string(expected)); } \
} while (0)

#define CHECK_OK(expr) CHECK_STATUS(expr, VWN_OK)

/* Prints the closing line and returns the process exit code. */
static inline int vt_finish(const char *name) {
    printf("%s: %d passed, %d failed\n", name, vt_passed, vt_failed);
    return vt_failed ? 1 : 0;
}

#endif
