/* info.c -- the smallest libvwn program: load a model, print its configuration, free it.
 *
 *     cc info.c -o info $(pkg-config --cflags --libs vwn)
 *     ./info model.gguf
 */
#include <vwn.h>

#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.gguf\n", argv[0]);
        return 2;
    }

    /* NULL params: the defaults (map the file, no NaN scan). The loader checks the whole file. */
    vwn_model *model = NULL;
    vwn_status st = vwn_model_load(argv[1], NULL, &model);
    if (st != VWN_OK) {
        /* the status says what kind of problem, vwn_last_error() names the key or tensor */
        fprintf(stderr, "cannot load %s: %s\n  %s\n", argv[1], vwn_status_string(st), vwn_last_error());
        return 1;
    }

    vwn_model_info info;
    vwn_model_get_info(model, &info);
    char name[128];
    if (vwn_model_meta(model, "general.name", name, sizeof name) < 0) snprintf(name, sizeof name, "(unnamed)");

    printf("%s: %s\n", argv[1], name);
    printf("  %d layers, D = %d, virtual width D' = %d (GHC m = %d, n = %d, %s)\n", info.n_layer,
           info.n_embd, info.n_embd_wide, info.ghc_m, info.ghc_n, info.ghc_dynamic ? "dynamic" : "static");
    printf("  vocabulary %d, %d MTP modules, %.1f M parameters (%s)\n", info.n_vocab, info.mtp_depth,
           (double)info.n_params / 1e6, vwn_type_name(info.weight_type));

    vwn_model_free(model);
    return 0;
}
