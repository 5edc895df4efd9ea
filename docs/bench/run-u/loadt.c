/* Loads a model N times in one process and prints each load's time and packed bytes. args: MODEL [N]
 * Build: clang -O2 -Iinclude loadt.c build/lib/libvwn.a (+ the link line of abflag.c) -o loadt */
#include "vwn.h"
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }
int main(int argc, char **argv) {
    int reps = argc > 2 ? atoi(argv[2]) : 5; for (int r = 0; r < reps; r++) {
        vwn_model *m; vwn_model_params mp = vwn_model_default_params();
        double t0 = now();
        if (vwn_model_load(argv[1], &mp, &m)) return 1;
        double t1 = now();
        printf("load %.1f ms, packed %.1f MB\n", t1 - t0, vwn_model_packed_bytes(m) / 1e6);
        vwn_model_free(m);
    }
}
