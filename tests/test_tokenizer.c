/* test_tokenizer.c -- the tokenizers of lib/tokenizer.c on hand-built vocabularies: bytes round trips,
 * the GPT-2 pre-tokenizer against splits produced by Hugging Face `tokenizers`, byte-level BPE merge
 * order, llama (SentencePiece-style) merges by score with byte fallback, special tokens, invalid
 * UTF-8, the two-call size convention, validation errors of the loader (from GGUF images built
 * here) and the public functions on a model handle. */
#define _POSIX_C_SOURCE 200809L /* mkstemp */
#include "vt.h"
#include "gguf_writer.h"

#include "common.h"
#include "gguf.h"
#include "tokenizer.h"
#include "vwn.h"

#include <limits.h>
#include <stdint.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------------------ */

static gguf_str S(const char *s) { return (gguf_str){s, strlen(s)}; }

/* Tokenizes s (n bytes) into out (at most 256), returns the count (or INT32_MIN). */
static int32_t tok(const vwn_tokenizer *t, const char *s, size_t n, int32_t *out, bool add, bool special) {
    return vwn_tokenizer_tokenize(t, s, (int32_t)n, out, 256, add, special);
}

static bool ids_equal(const int32_t *a, int32_t na, const int32_t *b, int32_t nb) {
    return na == nb && (na == 0 || memcmp(a, b, (size_t)na * sizeof *a) == 0);
}

/* detokenize(tokenize(s)) == s; control tokens are rendered when they were parsed from the text,
 * else removed (the BOS that add may put in front) */
static bool round_trip(const vwn_tokenizer *t, const char *s, size_t n, bool add, bool special) {
    int32_t need = vwn_tokenizer_tokenize(t, s, (int32_t)n, NULL, 0, add, special);
    if (need == INT32_MIN) return false;
    if (need < 0) need = -need;
    int32_t *ids = malloc(((size_t)need + 1) * sizeof *ids);
    int32_t got = vwn_tokenizer_tokenize(t, s, (int32_t)n, ids, need, add, special);
    int32_t len = vwn_tokenizer_detokenize(t, ids, got, NULL, 0, !special);
    if (len < 0 && len != INT32_MIN) len = -len;
    char *back = malloc((size_t)len + 1);
    int32_t len2 = vwn_tokenizer_detokenize(t, ids, got, back, len, !special);
    bool ok = got == need && len2 == len && (size_t)len == n && (n == 0 || memcmp(back, s, n) == 0);
    free(ids);
    free(back);
    return ok;
}

/* ---- bytes -------------------------------------------------------------------------------- */

static void test_bytes(void) {
    vwn_tokenizer_data d = vwn_tokenizer_data_init();
    d.model = S("bytes");
    d.n_vocab = 256;
    vwn_tokenizer *t = NULL;
    CHECK_OK(vwn_tokenizer_build(&d, &t));
    CHECK(vwn_tokenizer_kind_of(t) == VWN_TOKENIZER_BYTES);
    CHECK(vwn_tokenizer_bos(t) == -1 && vwn_tokenizer_eos(t) == -1);
    CHECK(!vwn_tokenizer_is_control(t, 0) && !vwn_tokenizer_is_eog(t, 0));

    char all[256];
    for (int i = 0; i < 256; i++) all[i] = (char)i;
    int32_t ids[300];
    CHECK(vwn_tokenizer_tokenize(t, all, 256, ids, 300, true, true) == 256);
    bool id_is_byte = true;
    for (int i = 0; i < 256; i++) id_is_byte &= ids[i] == i;
    CHECK(id_is_byte);
    CHECK(round_trip(t, all, 256, true, true));
    CHECK(round_trip(t, "", 0, true, false));
    uint64_t x = 1;
    char rnd[4096];
    for (size_t i = 0; i < sizeof rnd; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        rnd[i] = (char)(x >> 56);
    }
    CHECK(round_trip(t, rnd, sizeof rnd, false, false));

    /* two-call convention */
    CHECK(vwn_tokenizer_tokenize(t, "hello", 5, NULL, 0, false, false) == -5);
    CHECK(vwn_tokenizer_tokenize(t, "hello", 5, ids, 4, false, false) == -5);
    CHECK(vwn_tokenizer_tokenize(t, "hello", 5, ids, 5, false, false) == 5);
    CHECK(vwn_tokenizer_tokenize(t, "", 0, NULL, 0, false, false) == 0);
    CHECK(vwn_tokenizer_tokenize(t, NULL, 0, NULL, 0, false, false) == 0);
    char buf[8];
    CHECK(vwn_tokenizer_detokenize(t, ids, 5, NULL, 0, false) == -5);
    CHECK(vwn_tokenizer_detokenize(t, ids, 5, buf, 4, false) == -5);
    CHECK(vwn_tokenizer_detokenize(t, ids, 5, buf, 8, false) == 5 && memcmp(buf, "hello", 5) == 0);
    CHECK(vwn_tokenizer_token_to_piece(t, 'A', NULL, 0, false) == -1);
    CHECK(vwn_tokenizer_token_to_piece(t, 'A', buf, 1, false) == 1 && buf[0] == 'A');

    /* errors */
    CHECK(vwn_tokenizer_tokenize(t, "x", -1, ids, 10, false, false) == INT32_MIN);
    CHECK(strstr(vwn_last_error(), "text_len") != NULL);
    CHECK(vwn_tokenizer_tokenize(t, NULL, 3, ids, 10, false, false) == INT32_MIN);
    CHECK(vwn_tokenizer_tokenize(t, "x", 1, NULL, 10, false, false) == INT32_MIN);
    int32_t bad[3] = {65, 256, 66};
    CHECK(vwn_tokenizer_detokenize(t, bad, 3, buf, 8, false) == INT32_MIN);
    CHECK(strstr(vwn_last_error(), "token 256 at index 1") != NULL);
    bad[1] = -7;
    CHECK(vwn_tokenizer_detokenize(t, bad, 3, NULL, 0, false) == INT32_MIN);
    CHECK(vwn_tokenizer_token_to_piece(t, 256, buf, 8, true) == INT32_MIN);
    CHECK(strstr(vwn_last_error(), "outside the vocabulary") != NULL);
    CHECK(vwn_tokenizer_detokenize(t, NULL, 2, buf, 8, false) == INT32_MIN);
    vwn_tokenizer_free(t);

    /* V must be 256 */
    d.n_vocab = 300;
    CHECK_STATUS(vwn_tokenizer_build(&d, &t), VWN_ERR_BAD_MODEL);
    CHECK(t == NULL);
    CHECK(strstr(vwn_last_error(), "256") != NULL);
    d.model = S("wordpiece");
    CHECK_STATUS(vwn_tokenizer_build(&d, &t), VWN_ERR_UNSUPPORTED);
    CHECK(strstr(vwn_last_error(), "wordpiece") != NULL);
}

/* ---- the GPT-2 pre-tokenizer: splits from Hugging Face tokenizers' ByteLevel ---------------- */

typedef struct split_case {
    const char *text;
    int lens[20];                   /* byte lengths of the pre-tokens, 0-terminated */
} split_case;

static const split_case split_cases[] = {
    {"Hello world", {5, 6}},
    {"it's 'S they'll we're I've 'd 'm 't", {2, 2, 2, 1, 5, 3, 3, 3, 2, 3, 2, 1, 2, 1, 2, 1}},
    {"  a", {1, 2}},
    {"a  ", {1, 2}},
    {"a   b", {1, 2, 2}},
    {"\t\ta", {1, 1, 1}},
    {"\n\nx\n", {1, 1, 1, 1}},
    {"x1 23 4x", {1, 1, 3, 2, 1}},
    {"!!! ?", {3, 2}},
    {"a\xc2\xa0" "b", {1, 2, 1}},                              /* no-break space is \s */
    {" \xc2\xa0" "b", {1, 2, 1}},
    {"\xe3\x80\x80\xe3\x80\x80x", {3, 3, 1}},                  /* ideographic space */
    {"e\xcc\x81t\xc3\xa9", {1, 2, 3}},                         /* a combining mark is "other" */
    {"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88", {9, 10}},
    {"a\xf0\x9f\x98\x80" "b", {1, 4, 1}},
    {"A-B_C", {1, 1, 1, 1, 1}},
    {"''s", {2, 1}},
    {" 's", {2, 1}},
    {"x \ny", {1, 1, 1, 1}},
    {"\xe1\xb2\x89" "a", {4}},                                 /* U+1C89, a letter of Unicode 16 */
    {"\xc2\xbdx", {2, 1}},                                     /* 1/2 is a number */
    {" \xc2\x85 x", {3, 2}},                                   /* NEL is \s */
    {"'\xcc\x81s", {3, 1}},
    /* invalid UTF-8 (our rule: each invalid byte is an "other" code point) */
    {"a\xff" "b", {1, 1, 1}},
    {" \xff\xfe!x", {4, 1}},
    {"\xe2\x82x", {2, 1}},
    {"caf\xc3", {3, 1}},
    {"1\xed\xa0\x80" "2", {1, 3, 1}},                          /* an encoded surrogate is invalid */
};

static void test_pretokenizer(void) {
    for (size_t c = 0; c < sizeof split_cases / sizeof split_cases[0]; c++) {
        const split_case *sc = &split_cases[c];
        const uint8_t *s = (const uint8_t *)sc->text;
        size_t n = strlen(sc->text), i = 0;
        int k = 0;
        bool ok = true;
        while (i < n) {
            size_t len = vwn_gpt2_pretoken(s, n, i);
            if (sc->lens[k] == 0 || (size_t)sc->lens[k] != len) { ok = false; break; }
            i += len;
            k++;
        }
        ok = ok && sc->lens[k] == 0;
        CHECK_MSG(ok, "pre-tokens of case %zu differ at piece %d", c, k);
    }
}

/* ---- gpt2: a tiny byte-level vocabulary ---------------------------------------------------- */

/* ids 0..255: the byte-level alphabet character of byte id; then the pieces below */
enum { G_HE = 256, G_SP_T, G_SP_THE, G_LL, G_ELL, G_APOS_S, G_EOT, G_USER, G_V };

static uint32_t alphabet(int b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return (uint32_t)b;
    int n = 0;
    for (int k = 0; k < b; k++)
        if (!((k >= 33 && k <= 126) || (k >= 161 && k <= 172) || k >= 174)) n++;
    return 256u + (uint32_t)n;
}

static size_t put_utf8(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

typedef struct gpt2_vocab {
    char alpha[256][4];
    gguf_str tokens[G_V];
    int32_t types[G_V];
    gguf_str merges[6];
} gpt2_vocab;

static void gpt2_vocab_init(gpt2_vocab *g) {
    for (int b = 0; b < 256; b++) {
        size_t n = put_utf8(alphabet(b), g->alpha[b]);
        g->tokens[b] = (gguf_str){g->alpha[b], n};
        g->types[b] = VWN_TOKEN_TYPE_NORMAL;
    }
    g->tokens[G_HE] = S("he");
    g->tokens[G_SP_T] = S("\xc4\xa0t");          /* "Ġt" */
    g->tokens[G_SP_THE] = S("\xc4\xa0the");
    g->tokens[G_LL] = S("ll");
    g->tokens[G_ELL] = S("ell");
    g->tokens[G_APOS_S] = S("'s");
    g->tokens[G_EOT] = S("<|endoftext|>");
    g->tokens[G_USER] = S("<user>");
    for (int i = G_HE; i < G_V; i++) g->types[i] = VWN_TOKEN_TYPE_NORMAL;
    g->types[G_EOT] = VWN_TOKEN_TYPE_CONTROL;
    g->types[G_USER] = VWN_TOKEN_TYPE_USER_DEFINED;
    g->merges[0] = S("h e");
    g->merges[1] = S("\xc4\xa0 t");
    g->merges[2] = S("\xc4\xa0t he");
    g->merges[3] = S("l l");
    g->merges[4] = S("e ll");
    g->merges[5] = S("' s");
}

static vwn_tokenizer_data gpt2_data(const gpt2_vocab *g) {
    vwn_tokenizer_data d = vwn_tokenizer_data_init();
    d.model = S("gpt2");
    d.n_vocab = G_V;
    d.tokens = g->tokens;
    d.n_tokens = G_V;
    d.types = g->types;
    d.n_types = G_V;
    d.merges = g->merges;
    d.n_merges = 6;
    d.eos = G_EOT;
    return d;
}

static void test_gpt2(void) {
    gpt2_vocab g;
    gpt2_vocab_init(&g);
    vwn_tokenizer_data d = gpt2_data(&g);
    vwn_tokenizer *t = NULL;
    CHECK_OK(vwn_tokenizer_build(&d, &t));
    if (!t) return;
    CHECK(vwn_tokenizer_kind_of(t) == VWN_TOKENIZER_GPT2);
    CHECK(vwn_tokenizer_eos(t) == G_EOT && vwn_tokenizer_bos(t) == -1);
    CHECK(vwn_tokenizer_is_eog(t, G_EOT) && vwn_tokenizer_is_control(t, G_EOT));
    CHECK(!vwn_tokenizer_is_control(t, G_USER) && !vwn_tokenizer_is_eog(t, 'a'));

    int32_t ids[256];
    int32_t n;
    /* "the hello's ell": pre-tokens "the" " hello" "'s" " ell" */
    n = tok(t, "the hello's ell", 15, ids, false, false);
    {
        /* "the": (h,e) -> he; (t,he) no merge. " hello": (h,e) rank 0, then (l,l) rank 3; (he,ll) and
         * (Ġ,he) are no merges. "'s" -> 's. " ell": (l,l) -> ll, then (e,ll) rank 4 -> ell. */
        const int32_t want[] = {'t', G_HE, 32 /* Ġ: the alphabet character of the space */, G_HE, G_LL, 'o', G_APOS_S,
                                32, G_ELL};
        CHECK(ids_equal(ids, n, want, 9));
    }
    n = tok(t, " the", 4, ids, false, false);
    {
        const int32_t want[] = {G_SP_THE};       /* (Ġ,t) rank 1 then (h,e) rank 0 first: he; Ġt he */
        CHECK(ids_equal(ids, n, want, 1));
    }
    /* specials */
    n = tok(t, "a<|endoftext|>b", 15, ids, false, true);
    {
        const int32_t want[] = {'a', G_EOT, 'b'};
        CHECK(ids_equal(ids, n, want, 3));
    }
    n = tok(t, "a<|endoftext|>b", 15, ids, false, false);
    bool no_eot = n > 3;
    for (int32_t i = 0; i < n; i++) no_eot &= ids[i] != G_EOT;
    CHECK(no_eot);
    n = tok(t, "x<user>y", 8, ids, false, false);  /* user-defined tokens are always matched */
    {
        const int32_t want[] = {'x', G_USER, 'y'};
        CHECK(ids_equal(ids, n, want, 3));
    }
    /* add_special does nothing without add_bos_token */
    CHECK(tok(t, "ab", 2, ids, true, false) == 2);

    /* decoding: pieces map back through the alphabet; control tokens on request */
    char buf[64];
    const int32_t seq[] = {G_SP_THE, G_EOT, 10, 255};
    int32_t len = vwn_tokenizer_detokenize(t, seq, 4, buf, sizeof buf, false);
    CHECK(len == 19 && memcmp(buf, " the<|endoftext|>\n\xff", 19) == 0);
    len = vwn_tokenizer_detokenize(t, seq, 4, buf, sizeof buf, true);
    CHECK(len == 6 && memcmp(buf, " the\n\xff", 6) == 0);
    CHECK(vwn_tokenizer_token_to_piece(t, G_EOT, buf, sizeof buf, false) == 0);
    CHECK(vwn_tokenizer_token_to_piece(t, G_EOT, buf, sizeof buf, true) == 13);
    CHECK(vwn_tokenizer_token_to_piece(t, 32, buf, sizeof buf, true) == 1 && buf[0] == ' ');

    /* invalid UTF-8: every invalid byte its own token here, lossless */
    n = tok(t, "\xff\xfe\xc3", 3, ids, false, false);
    {
        const int32_t want[] = {0xff, 0xfe, 0xc3};
        CHECK(ids_equal(ids, n, want, 3));
    }
    const char *texts[] = {"the hello's ell", "a<|endoftext|>b", "\xff\xfe\xc3", "x \xe2\x82 y\xed\xa0\x80",
                           "  \t\n\n spaces   ", "\xe6\x97\xa5\xe6\x9c\xac x<user>", ""};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        CHECK(round_trip(t, texts[i], strlen(texts[i]), false, false));
        CHECK(round_trip(t, texts[i], strlen(texts[i]), true, true));
    }
    vwn_tokenizer_free(t);

    /* BOS when the model asks for it */
    d.bos = G_EOT;
    d.add_bos = 1;
    CHECK_OK(vwn_tokenizer_build(&d, &t));
    if (t) {
        CHECK(tok(t, "ab", 2, ids, true, false) == 3 && ids[0] == G_EOT);
        CHECK(tok(t, "ab", 2, ids, false, false) == 2);
        vwn_tokenizer_free(t);
    }
    d = gpt2_data(&g);

    /* validation */
    gguf_str bad_merge[1];
    d.merges = bad_merge;
    d.n_merges = 1;
    const char *bad[] = {"he", "h e l", " he", "he ", "h  e", "x zz", "\xc4\xa0 \xc4\xa0"};
    const char *why[] = {"one space", "one space", "one space", "one space", "one space",
                         "right piece", "merged piece"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bad_merge[0] = S(bad[i]);
        CHECK_STATUS(vwn_tokenizer_build(&d, &t), VWN_ERR_BAD_MODEL);
        CHECK_MSG(strstr(vwn_last_error(), why[i]) != NULL, "merge '%s': %s", bad[i], vwn_last_error());
    }
    d = gpt2_data(&g);
    d.n_tokens = G_V - 1;
    CHECK_STATUS(vwn_tokenizer_build(&d, &t), VWN_ERR_BAD_MODEL);
    CHECK(strstr(vwn_last_error(), "tokenizer.ggml.tokens has") != NULL);
    d = gpt2_data(&g);
    d.n_types = 3;
    CHECK_STATUS(vwn_tokenizer_build(&d, &t), VWN_ERR_BAD_MODEL);
    d = gpt2_data(&g);
    d.eos = G_V;
    CHECK_STATUS(vwn_tokenizer_build(&d, &t), VWN_ERR_BAD_MODEL);
    CHECK(strstr(vwn_last_error(), "eos_token_id") != NULL);
    d = gpt2_data(&g);
    g.types[5] = 9;
    CHECK_STATUS(vwn_tokenizer_build(&d, &t), VWN_ERR_BAD_MODEL);
    CHECK(strstr(vwn_last_error(), "token_type[5] is 9") != NULL);
    g.types[5] = VWN_TOKEN_TYPE_NORMAL;
    d.tokens = NULL;
    CHECK_STATUS(vwn_tokenizer_build(&d, &t), VWN_ERR_BAD_MODEL);
    float scores[3] = {0};
    d = gpt2_data(&g);
    d.scores = scores;
    d.n_scores = 3;
    CHECK_STATUS(vwn_tokenizer_build(&d, &t), VWN_ERR_BAD_MODEL);
    CHECK(strstr(vwn_last_error(), "scores") != NULL);
}

/* ---- llama: a tiny SentencePiece vocabulary ---------------------------------------------- */

enum { L_SP = 259, L_A, L_B, L_C, L_SP_A, L_BC, L_SP_ABC, L_BB, L_CC, L_E_ACUTE, L_V };

typedef struct llama_vocab {
    char names[256][8];
    gguf_str tokens[L_V];
    float scores[L_V];
    int32_t types[L_V];
} llama_vocab;

static void llama_vocab_init(llama_vocab *v) {
    v->tokens[0] = S("<unk>");
    v->tokens[1] = S("<s>");
    v->tokens[2] = S("</s>");
    v->types[0] = VWN_TOKEN_TYPE_UNKNOWN;
    v->types[1] = v->types[2] = VWN_TOKEN_TYPE_CONTROL;
    for (int b = 0; b < 256; b++) {
        snprintf(v->names[b], sizeof v->names[b], "<0x%02X>", b);
        v->tokens[3 + b] = S(v->names[b]);
        v->types[3 + b] = VWN_TOKEN_TYPE_BYTE;
    }
    static const char *const pieces[] = {"\xe2\x96\x81", "a", "b", "c", "\xe2\x96\x81" "a", "bc",
                                         "\xe2\x96\x81" "abc", "bb", "cc", "\xc3\xa9"};
    static const float sc[] = {-1, -1, -1, -1, -1, -0.5f, -4, -1, -2e10f, -1};
    for (int i = L_SP; i < L_V; i++) {
        v->tokens[i] = S(pieces[i - L_SP]);
        v->scores[i] = sc[i - L_SP];
        v->types[i] = VWN_TOKEN_TYPE_NORMAL;
    }
    for (int i = 0; i < L_SP; i++) v->scores[i] = 0;
}

static vwn_tokenizer_data llama_data(const llama_vocab *v) {
    vwn_tokenizer_data d = vwn_tokenizer_data_init();
    d.model = S("llama");
    d.n_vocab = L_V;
    d.tokens = v->tokens;
    d.n_tokens = L_V;
    d.scores = v->scores;
    d.n_scores = L_V;
    d.types = v->types;
    d.n_types = L_V;
    d.bos = 1;
    d.eos = 2;
    d.unk = 0;
    return d;
}

static void test_llama(void) {
    llama_vocab v;
    llama_vocab_init(&v);
    vwn_tokenizer_data d = llama_data(&v);
    vwn_tokenizer *t = NULL;
    CHECK_OK(vwn_tokenizer_build(&d, &t));
    if (!t) return;
    CHECK(vwn_tokenizer_kind_of(t) == VWN_TOKENIZER_LLAMA);
    CHECK(vwn_tokenizer_bos(t) == 1 && vwn_tokenizer_eos(t) == 2);
    CHECK(vwn_tokenizer_is_eog(t, 2) && !vwn_tokenizer_is_eog(t, 1) && vwn_tokenizer_is_control(t, 1));

    int32_t ids[256];
    int32_t n;
    /* " abc": (b,c) -0.5 first -> ▁ a bc; (▁,a) -1 -> ▁a bc; (▁a,bc) = ▁abc -4 */
    n = tok(t, "abc", 3, ids, true, false);
    {
        const int32_t want[] = {1, L_SP_ABC};
        CHECK(ids_equal(ids, n, want, 2));
    }
    /* ties go to the leftmost pair: " bbb" -> ▁ bb b (not ▁ b bb) */
    n = tok(t, "bbb", 3, ids, false, false);
    {
        const int32_t want[] = {L_SP, L_BB, L_B};
        CHECK(ids_equal(ids, n, want, 3));
    }
    /* a score <= -1e10 never merges */
    n = tok(t, "cc", 2, ids, false, false);
    {
        const int32_t want[] = {L_SP, L_C, L_C};
        CHECK(ids_equal(ids, n, want, 3));
    }
    /* byte fallback for characters that are not pieces; pieces that are (é) are used */
    n = tok(t, "\xe2\x82\xac\xc3\xa9", 5, ids, false, false);
    {
        const int32_t want[] = {L_SP, 3 + 0xe2, 3 + 0x82, 3 + 0xac, L_E_ACUTE};
        CHECK(ids_equal(ids, n, want, 5));
    }
    /* invalid UTF-8 goes to bytes too */
    n = tok(t, "\xff" "a", 2, ids, false, false);
    {
        const int32_t want[] = {L_SP, 3 + 0xff, L_A};
        CHECK(ids_equal(ids, n, want, 3));
    }
    /* empty text: no dummy space */
    CHECK(tok(t, "", 0, ids, false, false) == 0);
    CHECK(tok(t, "", 0, ids, true, false) == 1 && ids[0] == 1);
    /* control text only with parse_special; each text piece gets its dummy space */
    n = tok(t, "a</s>a", 6, ids, false, true);
    {
        const int32_t want[] = {L_SP_A, 2, L_SP_A};
        CHECK(ids_equal(ids, n, want, 3));
    }
    n = tok(t, "a</s>", 5, ids, false, false);
    bool no_eos = true;
    for (int32_t i = 0; i < n; i++) no_eos &= ids[i] != 2;
    CHECK(no_eos && n > 2);

    /* decoding: the leading space after BOS / at the start is dropped; byte tokens give bytes */
    char buf[64];
    const int32_t seq[] = {1, L_SP_A, L_SP, 3 + 0xff, L_BC};
    int32_t len = vwn_tokenizer_detokenize(t, seq, 5, buf, sizeof buf, true);
    CHECK(len == 5 && memcmp(buf, "a \xff" "bc", 5) == 0);
    len = vwn_tokenizer_detokenize(t, seq, 5, buf, sizeof buf, false);
    CHECK(len == 8 && memcmp(buf, "<s>a \xff" "bc", 8) == 0);
    len = vwn_tokenizer_detokenize(t, seq + 1, 4, buf, sizeof buf, true);
    CHECK(len == 5 && memcmp(buf, "a \xff" "bc", 5) == 0);
    CHECK(vwn_tokenizer_token_to_piece(t, L_SP_A, buf, sizeof buf, false) == 2 && memcmp(buf, " a", 2) == 0);
    CHECK(vwn_tokenizer_token_to_piece(t, 3 + 'A', buf, sizeof buf, false) == 1 && buf[0] == 'A');
    CHECK(vwn_tokenizer_token_to_piece(t, 1, buf, sizeof buf, false) == 0);

    const char *texts[] = {"abc", "bbb cc", " leading", "\xe2\x82\xac\xc3\xa9 x", "\xff\xfe", "a</s>a",
                           "\x80\x80\x80\x80\x80\x80", "a\0b"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        size_t n_text = i == 7 ? 3 : strlen(texts[i]);
        CHECK_MSG(round_trip(t, texts[i], n_text, true, false), "text %zu", i);
        CHECK_MSG(round_trip(t, texts[i], n_text, false, true), "text %zu", i);
    }
    vwn_tokenizer_free(t);

    /* no "▁" piece: the dummy space is a byte token, still dropped when decoding */
    v.tokens[L_SP] = S("zz");
    CHECK_OK(vwn_tokenizer_build(&d, &t));
    if (t) {
        n = tok(t, "a", 1, ids, false, false);
        const int32_t want[] = {3 + ' ', L_A};
        CHECK(ids_equal(ids, n, want, 2));
        CHECK(round_trip(t, "a", 1, false, false));
        vwn_tokenizer_free(t);
    }
    llama_vocab_init(&v);

    /* a piece with a space inside ("c▁", score 0): merges may cross the place before a space */
    v.tokens[L_CC] = S("c\xe2\x96\x81");
    v.scores[L_CC] = 0;
    CHECK_OK(vwn_tokenizer_build(&d, &t));
    if (t) {
        n = tok(t, "c c", 3, ids, false, false);
        const int32_t want[] = {L_SP, L_CC, L_C};
        CHECK(ids_equal(ids, n, want, 3));
        CHECK(round_trip(t, "c c cc  c", 9, true, false));
        vwn_tokenizer_free(t);
    }
    llama_vocab_init(&v);

    /* validation */
    d.scores = NULL;
    CHECK_STATUS(vwn_tokenizer_build(&d, &t), VWN_ERR_BAD_MODEL);
    CHECK(strstr(vwn_last_error(), "scores") != NULL);
    d = llama_data(&v);
    d.n_scores = 5;
    CHECK_STATUS(vwn_tokenizer_build(&d, &t), VWN_ERR_BAD_MODEL);
    d = llama_data(&v);
    d.bos = L_V + 3;
    CHECK_STATUS(vwn_tokenizer_build(&d, &t), VWN_ERR_BAD_MODEL);
    CHECK(strstr(vwn_last_error(), "bos_token_id") != NULL);
    d = llama_data(&v);
    v.tokens[3 + 0x41] = S("<0x4l>");
    d.unk = -1;
    CHECK_STATUS(vwn_tokenizer_build(&d, &t), VWN_ERR_BAD_MODEL);
    CHECK(strstr(vwn_last_error(), "<0x41>") != NULL);
    d.unk = 0;                                    /* with an unknown token it falls back to it */
    CHECK_OK(vwn_tokenizer_build(&d, &t));
    if (t) {
        n = tok(t, "A", 1, ids, false, false);
        CHECK(n == 2 && ids[1] == 0);
        vwn_tokenizer_free(t);
    }
}

/* ---- loading from GGUF images ------------------------------------------------------------- */

typedef struct kvbuf {
    uint8_t p[1 << 16];
    size_t n;
    uint64_t n_kv;
} kvbuf;

static void put(kvbuf *b, const void *x, size_t n) { memcpy(b->p + b->n, x, n); b->n += n; }
static void put_u32(kvbuf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(kvbuf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(kvbuf *b, const char *s) { put_u64(b, strlen(s)); put(b, s, strlen(s)); }
static void kv_key(kvbuf *b, const char *key, uint32_t type) { put_str(b, key); put_u32(b, type); b->n_kv++; }
static void kv_string(kvbuf *b, const char *key, const char *v) { kv_key(b, key, GGUF_TYPE_STRING); put_str(b, v); }
static void kv_u32(kvbuf *b, const char *key, uint32_t v) { kv_key(b, key, GGUF_TYPE_UINT32); put_u32(b, v); }
static void kv_bool(kvbuf *b, const char *key, bool v) { kv_key(b, key, GGUF_TYPE_BOOL); uint8_t x = v; put(b, &x, 1); }
static void kv_strs(kvbuf *b, const char *key, const gguf_str *s, size_t n) {
    kv_key(b, key, GGUF_TYPE_ARRAY);
    put_u32(b, GGUF_TYPE_STRING);
    put_u64(b, n);
    for (size_t i = 0; i < n; i++) { put_u64(b, s[i].len); put(b, s[i].data, s[i].len); }
}
static void kv_i32s(kvbuf *b, const char *key, const int32_t *v, size_t n) {
    kv_key(b, key, GGUF_TYPE_ARRAY);
    put_u32(b, GGUF_TYPE_INT32);
    put_u64(b, n);
    put(b, v, n * 4);
}

/* Parses the KVs as a GGUF file with no tensors and loads the tokenizer from it. */
static vwn_status load_from(const kvbuf *kv, int32_t n_vocab, vwn_tokenizer **out) {
    static uint8_t img[(1 << 16) + 64];
    size_t n = 0;
    memcpy(img, "GGUF", 4);
    uint32_t version = 3;
    uint64_t n_tensors = 0;
    memcpy(img + 4, &version, 4);
    memcpy(img + 8, &n_tensors, 8);
    memcpy(img + 16, &kv->n_kv, 8);
    n = 24;
    memcpy(img + n, kv->p, kv->n);
    n += kv->n;
    while (n % 32) img[n++] = 0;
    gguf_file *f = NULL;
    vwn_status st = gguf_open_memory(img, n, &f);
    if (st != VWN_OK) return st;
    st = vwn_tokenizer_load(f, n_vocab, out);
    gguf_close(f);                     /* the tokenizer keeps copies: the file may go */
    return st;
}

static void test_load(void) {
    static kvbuf kv;
    vwn_tokenizer *t = NULL;
    /* no tokenizer.ggml.model: bytes */
    memset(&kv, 0, sizeof kv);
    kv_string(&kv, "general.architecture", "vwn");
    CHECK_OK(load_from(&kv, 256, &t));
    CHECK(t && vwn_tokenizer_kind_of(t) == VWN_TOKENIZER_BYTES);
    vwn_tokenizer_free(t);
    t = NULL;
    CHECK_STATUS(load_from(&kv, 257, &t), VWN_ERR_BAD_MODEL);

    /* a gpt2 tokenizer with every key */
    gpt2_vocab g;
    gpt2_vocab_init(&g);
    memset(&kv, 0, sizeof kv);
    kv_string(&kv, "tokenizer.ggml.model", "gpt2");
    kv_string(&kv, "tokenizer.ggml.pre", "gpt2");
    kv_strs(&kv, "tokenizer.ggml.tokens", g.tokens, G_V);
    kv_i32s(&kv, "tokenizer.ggml.token_type", g.types, G_V);
    kv_strs(&kv, "tokenizer.ggml.merges", g.merges, 6);
    kv_u32(&kv, "tokenizer.ggml.eos_token_id", G_EOT);
    kv_u32(&kv, "tokenizer.ggml.bos_token_id", G_EOT);
    kv_bool(&kv, "tokenizer.ggml.add_bos_token", true);
    CHECK_OK(load_from(&kv, G_V, &t));
    if (t) {
        int32_t ids[16];
        int32_t n = tok(t, " the<|endoftext|>", 17, ids, true, true);
        const int32_t want[] = {G_EOT, G_SP_THE, G_EOT};
        CHECK(ids_equal(ids, n, want, 3));
        CHECK(round_trip(t, "the hello's ell", 15, false, false));
        vwn_tokenizer_free(t);
        t = NULL;
    }
    CHECK_STATUS(load_from(&kv, G_V + 1, &t), VWN_ERR_BAD_MODEL);

    /* wrong key types and unsupported pre-tokenizers */
    memset(&kv, 0, sizeof kv);
    kv_string(&kv, "tokenizer.ggml.model", "gpt2");
    kv_i32s(&kv, "tokenizer.ggml.tokens", g.types, G_V);
    CHECK_STATUS(load_from(&kv, G_V, &t), VWN_ERR_BAD_MODEL);
    CHECK(strstr(vwn_last_error(), "tokenizer.ggml.tokens") != NULL);
    memset(&kv, 0, sizeof kv);
    kv_string(&kv, "tokenizer.ggml.model", "gpt2");
    kv_string(&kv, "tokenizer.ggml.pre", "llama-bpe");
    kv_strs(&kv, "tokenizer.ggml.tokens", g.tokens, G_V);
    CHECK_STATUS(load_from(&kv, G_V, &t), VWN_ERR_UNSUPPORTED);
    CHECK(strstr(vwn_last_error(), "llama-bpe") != NULL);
    memset(&kv, 0, sizeof kv);
    kv_u32(&kv, "tokenizer.ggml.model", 3);
    CHECK_STATUS(load_from(&kv, 256, &t), VWN_ERR_BAD_MODEL);
    memset(&kv, 0, sizeof kv);
    kv_string(&kv, "tokenizer.ggml.model", "gpt2");
    kv_strs(&kv, "tokenizer.ggml.tokens", g.tokens, G_V);
    kv_string(&kv, "tokenizer.ggml.eos_token_id", "zero");
    CHECK_STATUS(load_from(&kv, G_V, &t), VWN_ERR_BAD_MODEL);
    CHECK(strstr(vwn_last_error(), "eos_token_id") != NULL);
}

/* ---- the public functions on a model handle ----------------------------------------------- */

static void test_public(void) {
    char path[] = "/tmp/vwn_test_tokenizer_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    close(fd);
    gw_config c = gw_config_default();
    CHECK(gw_write_file(&c, 3, path) == 0);
    vwn_model *m = NULL;
    CHECK_OK(vwn_model_load(path, NULL, &m));
    if (m) {
        CHECK(vwn_tokenizer_get_kind(m) == VWN_TOKENIZER_BYTES);
        CHECK(vwn_token_bos(m) == -1 && vwn_token_eos(m) == -1);
        CHECK(!vwn_token_is_eog(m, 0) && !vwn_token_is_control(m, 0));
        int32_t ids[16];
        CHECK(vwn_tokenize(m, "hi\xff", 3, ids, 16, true, true) == 3 && ids[2] == 255);
        CHECK(vwn_tokenize(m, "hi\xff", 3, ids, 2, true, true) == -3);
        char buf[8];
        CHECK(vwn_detokenize(m, ids, 3, buf, 8, true) == 3 && memcmp(buf, "hi\xff", 3) == 0);
        CHECK(vwn_token_to_piece(m, 'z', buf, 8, false) == 1 && buf[0] == 'z');
        int32_t bad = 256;
        CHECK(vwn_detokenize(m, &bad, 1, buf, 8, true) == INT32_MIN);
        CHECK(strstr(vwn_last_error(), "256") != NULL);
        vwn_model_free(m);
    }
    unlink(path);
    /* bad handles */
    CHECK(vwn_tokenize(NULL, "x", 1, NULL, 0, false, false) == INT32_MIN);
    CHECK(vwn_last_error()[0] != '\0');
    CHECK(vwn_detokenize(NULL, NULL, 0, NULL, 0, false) == INT32_MIN);
    CHECK(vwn_token_to_piece(NULL, 0, NULL, 0, false) == INT32_MIN);
    CHECK(vwn_token_bos(NULL) == -1 && !vwn_token_is_eog(NULL, 0));
    CHECK((int)vwn_tokenizer_get_kind(NULL) == -1);
}

/* ---- speed sanity: a long text in one call (no timing threshold) -------------------------- */

static void test_long_texts(void) {
    gpt2_vocab g;
    gpt2_vocab_init(&g);
    vwn_tokenizer_data d = gpt2_data(&g);
    vwn_tokenizer *t = NULL;
    CHECK_OK(vwn_tokenizer_build(&d, &t));
    size_t n = 1 << 20;
    char *text = malloc(n);
    uint64_t x = 7;
    static const char *const words[] = {"the ", "hello", "'s ", " ell", "\n", "  ", "<|endoftext|>",
                                        "\xe6\x97\xa5", "\xff", "12 ", "!?"};
    for (size_t i = 0; i < n;) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        const char *w = words[(x >> 33) % (sizeof words / sizeof words[0])];
        for (size_t k = 0; w[k] && i < n; k++) text[i++] = w[k];
    }
    double t0 = vwn_time_us();
    CHECK(round_trip(t, text, n, false, true));
    double t1 = vwn_time_us();
    printf("gpt2 tiny vocabulary: 1 MiB tokenized and detokenized in %.0f ms\n", (t1 - t0) / 1000);
    vwn_tokenizer_free(t);

    llama_vocab v;
    llama_vocab_init(&v);
    vwn_tokenizer_data dl = llama_data(&v);
    CHECK_OK(vwn_tokenizer_build(&dl, &t));
    for (size_t i = 0; i < n; i++) text[i] = "abc b"[i % 5];
    t0 = vwn_time_us();
    CHECK(round_trip(t, text, n, true, false));
    t1 = vwn_time_us();
    printf("llama tiny vocabulary: 1 MiB tokenized and detokenized in %.0f ms\n", (t1 - t0) / 1000);
    /* random bytes (mostly invalid UTF-8) round-trip through both BPE kinds */
    for (size_t i = 0; i < 65536; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        text[i] = (char)(x >> 56);
    }
    CHECK(round_trip(t, text, 65536, true, false));
    CHECK(round_trip(t, text, 65536, false, true));
    vwn_tokenizer_free(t);
    CHECK_OK(vwn_tokenizer_build(&d, &t));
    CHECK(round_trip(t, text, 65536, false, false));
    CHECK(round_trip(t, text, 65536, false, true));
    vwn_tokenizer_free(t);
    free(text);
}

int main(void) {
    test_bytes();
    test_pretokenizer();
    test_gpt2();
    test_llama();
    test_load();
    test_public();
    test_long_texts();
    return vt_finish("test_tokenizer");
}
