#include "vwn.h"
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    int P = 256, reps = atoi(argv[3]), th = atoi(argv[2]);
    vwn_model *m; vwn_model_params mp = vwn_model_default_params();
    if (vwn_model_load(argv[1], &mp, &m)) return 1;
    vwn_context_params cp = vwn_context_default_params(); cp.n_ctx = P + 8; cp.n_threads = th; cp.mtp = false;
    vwn_context *c; if (vwn_context_new(m, &cp, &c)) return 1;
    int32_t tok[256]; for (int i = 0; i < P; i++) tok[i] = 1 + (i * 7919) % 30000;
    for (int r = 0; r < reps; r++) { vwn_context_clear(c); vwn_decode(c, tok, P); }
    return 0;
}
