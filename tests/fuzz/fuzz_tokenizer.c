/* fuzz_tokenizer.c -- libFuzzer target: arbitrary bytes through every tokenizer.
 *
 * Input: byte 0 picks the tokenizer (bits 0-3: 0 bytes, 1 gpt2, 2 llama built in; 3.. the models of
 * $VWN_FUZZ_MODELS in name order, falling back to the built-ins) and the flags (bit 4
 * parse_special, 5 add_special, 6 remove_special, 7 unrestricted raw ids); the rest is the text.
 * The built-in choices do not depend on the environment, so regression inputs replay anywhere. The
 * tokenizers are built
 * once: three tiny built-in vocabularies (bytes; gpt2 with merges, a control and a user-defined
 * token; llama with scores, byte fallback, BOS/EOS) and, if $VWN_FUZZ_MODELS names a folder, the
 * tokenizer of every *.gguf in it (tests/fuzz/make_corpus.sh writes a trained gpt2 vocabulary and
 * llama2.c's tok512 there). For each input: tokenize (ids in range; the two-call convention agrees
 * with itself), detokenize (the lossless round trip detokenize(tokenize(x)) == x without BOS and with
 * special tokens rendered, which docs/tokenizer.md promises for every byte string), token_to_piece
 * of every produced id, and detokenize of raw ids taken from the input bytes. */
#include "fuzz_common.h"
#include "tokenizer.h"

#include <dirent.h>
#include <limits.h>
#include <stdbool.h>

#define TK_MAX 16

static const vwn_tokenizer *tk_list[TK_MAX];
static int tk_n;
static vwn_tokenizer *tk_owned[3];
static vwn_model *tk_models[TK_MAX];
static int32_t tk_llama_user = -1;  /* the built-in llama vocabulary's user-defined token */

static gguf_str tk_s(const char *s) { return (gguf_str){s, strlen(s)}; }

/* gpt2: the byte-level alphabet (ids 0..255) and a few merges, a control and a user token */
static uint32_t tk_alphabet(int b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return (uint32_t)b;
    int n = 0;
    for (int k = 0; k < b; k++)
        if (!((k >= 33 && k <= 126) || (k >= 161 && k <= 172) || k >= 174)) n++;
    return 256u + (uint32_t)n;
}

static vwn_tokenizer *tk_build_gpt2(void) {
    static char alpha[256][4];
    static gguf_str tokens[270];
    static int32_t types[270];
    static const char *const extra[] = {"he", "\xc4\xa0t", "\xc4\xa0the", "ll", "ell", "'s", "in",
                                        "\304\240a", "an", "\304\240an", "<|endoftext|>", "<user>"};
    static const char *const merges_s[] = {"h e", "\xc4\xa0 t", "\xc4\xa0t he", "l l", "e ll", "' s", "i n",
                                           "\xc4\xa0 a", "a n", "\304\240a n"};
    static gguf_str merges[10];
    int n = 0;
    for (int b = 0; b < 256; b++) {
        uint32_t cp = tk_alphabet(b);
        size_t len;
        if (cp < 0x80) { alpha[b][0] = (char)cp; len = 1; }
        else { alpha[b][0] = (char)(0xC0 | cp >> 6); alpha[b][1] = (char)(0x80 | (cp & 0x3F)); len = 2; }
        tokens[n] = (gguf_str){alpha[b], len};
        types[n++] = VWN_TOKEN_TYPE_NORMAL;
    }
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        tokens[n] = tk_s(extra[i]);
        types[n++] = VWN_TOKEN_TYPE_NORMAL;
    }
    types[n - 2] = VWN_TOKEN_TYPE_CONTROL;
    types[n - 1] = VWN_TOKEN_TYPE_USER_DEFINED;
    for (size_t i = 0; i < sizeof merges_s / sizeof merges_s[0]; i++) merges[i] = tk_s(merges_s[i]);
    vwn_tokenizer_data d = vwn_tokenizer_data_init();
    d.model = tk_s("gpt2");
    d.n_vocab = n;
    d.tokens = tokens;
    d.n_tokens = (uint64_t)n;
    d.types = types;
    d.n_types = (uint64_t)n;
    d.merges = merges;
    d.n_merges = sizeof merges_s / sizeof merges_s[0];
    d.eos = n - 2;
    d.bos = n - 2;
    d.add_bos = 1;
    vwn_tokenizer *t = NULL;
    return vwn_tokenizer_build(&d, &t) == VWN_OK ? t : NULL;
}

/* llama: <unk> <s> </s>, 256 byte tokens, then scored pieces */
static vwn_tokenizer *tk_build_llama(void) {
    static char names[256][8];
    static gguf_str tokens[280];
    static float scores[280];
    static int32_t types[280];
    static const char *const pieces[] = {"\xe2\x96\x81", "a", "b", "c", "\342\226\201a", "bc",
                                         "\342\226\201abc", "bb", "cc", "\xc3\xa9", "e", "\342\226\201e",
                                         "\xe2\x96\x81\xe2\x96\x81", "<tool>"};
    static const float sc[] = {-1, -1, -1, -1, -1, -0.5f, -4, -1, -2e10f, -1, -1, -2, -3, 0};
    tokens[0] = tk_s("<unk>");
    tokens[1] = tk_s("<s>");
    tokens[2] = tk_s("</s>");
    types[0] = VWN_TOKEN_TYPE_UNKNOWN;
    types[1] = types[2] = VWN_TOKEN_TYPE_CONTROL;
    for (int b = 0; b < 256; b++) {
        snprintf(names[b], sizeof names[b], "<0x%02X>", b);
        tokens[3 + b] = tk_s(names[b]);
        types[3 + b] = VWN_TOKEN_TYPE_BYTE;
    }
    int n = 259;
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++, n++) {
        tokens[n] = tk_s(pieces[i]);
        scores[n] = sc[i];
        types[n] = VWN_TOKEN_TYPE_NORMAL;
    }
    types[n - 1] = VWN_TOKEN_TYPE_USER_DEFINED;
    tk_llama_user = n - 1;
    vwn_tokenizer_data d = vwn_tokenizer_data_init();
    d.model = tk_s("llama");
    d.n_vocab = n;
    d.tokens = tokens;
    d.n_tokens = (uint64_t)n;
    d.scores = scores;
    d.n_scores = (uint64_t)n;
    d.types = types;
    d.n_types = (uint64_t)n;
    d.bos = 1;
    d.eos = 2;
    d.unk = 0;
    vwn_tokenizer *t = NULL;
    return vwn_tokenizer_build(&d, &t) == VWN_OK ? t : NULL;
}

static vwn_tokenizer *tk_build_bytes(void) {
    vwn_tokenizer_data d = vwn_tokenizer_data_init();
    d.model = tk_s("bytes");
    d.n_vocab = 256;
    vwn_tokenizer *t = NULL;
    return vwn_tokenizer_build(&d, &t) == VWN_OK ? t : NULL;
}

static void tk_setup(void) {
    if (tk_n) return;
    tk_owned[0] = tk_build_bytes();
    tk_owned[1] = tk_build_gpt2();
    tk_owned[2] = tk_build_llama();
    for (int i = 0; i < 3; i++) {
        FUZZ_CHECK(tk_owned[i] != NULL);
        tk_list[tk_n++] = tk_owned[i];
    }
    const char *dir = getenv("VWN_FUZZ_MODELS");
    struct dirent **names = NULL;
    const int n_names = dir && *dir ? scandir(dir, &names, NULL, alphasort) : 0;
    for (int i = 0; i < n_names; i++) {
        const char *name = names[i]->d_name;
        const size_t len = strlen(name);
        char path[4096];
        vwn_model *m = NULL;
        if (tk_n < TK_MAX && len >= 5 && strcmp(name + len - 5, ".gguf") == 0 &&
            snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path) {
            if (vwn_model_load(path, NULL, &m) == VWN_OK) {
                tk_models[tk_n] = m;
                tk_list[tk_n++] = m->tokenizer;
            } else {
                fprintf(stderr, "fuzz_tokenizer: skipping %s: %s\n", path, vwn_last_error());
            }
        }
        free(names[i]);
    }
    free(names);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    tk_setup();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tk_setup();
    if (size < 1) return 0;
    const int k = data[0] & 15;
    const vwn_tokenizer *t = tk_list[k < tk_n ? k : k % 3];
    const bool parse_special = (data[0] >> 4) & 1, add_special = (data[0] >> 5) & 1,
               remove_special = (data[0] >> 6) & 1;
    const char *text = (const char *)data + 1;
    const int32_t len = (int32_t)(size - 1);
    const int32_t V = vwn_tokenizer_n_vocab(t);

    /* two-call convention: the count, then the tokens */
    const int32_t need = vwn_tokenizer_tokenize(t, text, len, NULL, 0, add_special, parse_special);
    FUZZ_CHECK(need != INT32_MIN && need <= 0);
    const int32_t n = -need;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(n + 1));
    FUZZ_CHECK(ids != NULL);
    FUZZ_CHECK(vwn_tokenizer_tokenize(t, text, len, ids, n, add_special, parse_special) == n);
    if (n > 0) FUZZ_CHECK(vwn_tokenizer_tokenize(t, text, len, ids, n - 1, add_special, parse_special) == -n);
    for (int32_t i = 0; i < n; i++) FUZZ_CHECK(ids[i] >= 0 && ids[i] < V);

    /* pieces */
    char piece[512];
    for (int32_t i = 0; i < n; i++) {
        const int32_t np = vwn_tokenizer_token_to_piece(t, ids[i], piece, (int32_t)sizeof piece, true);
        FUZZ_CHECK(np != INT32_MIN);
    }

    /* detokenize, two-call; lossless without BOS and with specials rendered */
    const int32_t dneed = vwn_tokenizer_detokenize(t, ids, n, NULL, 0, remove_special);
    FUZZ_CHECK(dneed != INT32_MIN && dneed <= 0);
    char *back = malloc((size_t)-dneed + 1);
    FUZZ_CHECK(back != NULL);
    FUZZ_CHECK(vwn_tokenizer_detokenize(t, ids, n, back, -dneed, remove_special) == -dneed);
    /* lossless round trip (a llama tokenizer once missed the dummy space after a user-defined
     * token: tests/fuzz/regressions/fuzz_tokenizer/fuzz_tokenizer-llama-user-token-roundtrip) */
    if (!add_special && !remove_special) {
        FUZZ_CHECK(-dneed == len);
        FUZZ_CHECK(len == 0 || memcmp(back, text, (size_t)len) == 0);
    }
    free(back);
    free(ids);

    /* arbitrary ids (in range or not) from the input bytes */
    int32_t raw[64];
    int32_t nr = 0;
    for (size_t i = 1; i + 4 <= size && nr < 64; i += 4) {
        int32_t v;
        memcpy(&v, data + i, 4);
        raw[nr++] = (data[0] & 0x80) ? v : (int32_t)((uint32_t)v % (uint32_t)(V + 2)) - 1;
    }
    char out[4096];
    const int32_t r = vwn_tokenizer_detokenize(t, raw, nr, out, (int32_t)sizeof out, remove_special);
    bool all_in_range = true;
    for (int32_t i = 0; i < nr; i++) all_in_range = all_in_range && raw[i] >= 0 && raw[i] < V;
    FUZZ_CHECK(all_in_range ? r != INT32_MIN : r == INT32_MIN);
    for (int32_t i = 0; i < nr; i++) {
        const int32_t np = vwn_tokenizer_token_to_piece(t, raw[i], piece, (int32_t)sizeof piece, (i & 1) != 0);
        FUZZ_CHECK((raw[i] >= 0 && raw[i] < V) ? np != INT32_MIN : np == INT32_MIN);
        (void)vwn_tokenizer_is_eog(t, raw[i]);
        (void)vwn_tokenizer_is_control(t, raw[i]);
    }
    return 0;
}
