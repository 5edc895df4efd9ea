/* tokenizer.c -- the tokenizers stored in a model file (docs/format.md, "Tokenizer keys"):
 *
 *   bytes  id = byte value (V = 256), no special tokens.
 *   gpt2   byte-level BPE exactly as Hugging Face `tokenizers` (ByteLevel pre-tokenizer with
 *          add_prefix_space=false and the GPT-2 regex, BPE merges by rank, ByteLevel decoder).
 *   llama  SentencePiece-style BPE with scores and byte fallback, as llama2.c's encode().
 *
 * Decisions (also in docs/tokenizer.md):
 *  - The GPT-2 regex  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *    is a hand-written matcher over code points (vwn_gpt2_pretoken). \p{L} and \p{N} are the
 *    general categories L* and N* from utf8proc (plus the letters and digits of Unicode 15.1/16.0,
 *    which `tokenizers` 0.23 knows); \s is Unicode White_Space (what Oniguruma, the regex engine of
 *    `tokenizers`, matches for \s). Checked against `tokenizers` over every code point.
 *  - Invalid UTF-8 (the Rust library cannot receive it): a byte that does not start a valid,
 *    shortest-form UTF-8 sequence of a scalar value is one code point of its own, of category
 *    "other" (neither letter, number nor space). It then goes through the byte-level mapping like any
 *    byte, so tokenization stays lossless.
 *  - Special tokens: control tokens (type 3) are matched in the raw text only with parse_special;
 *    user-defined tokens (type 4) are always matched (as `tokenizers` does with non-special added
 *    tokens). The text is split around the matches first (leftmost, then longest), and each piece
 *    of text between them is tokenized on its own.
 *  - llama: a dummy space is put before every non-empty piece of text; the pieces a character or a
 *    merge may produce are the normal and user-defined tokens (never control, unknown or byte
 *    tokens); a byte-fallback token never merges; a pair merges only if its score is > -1e10 (as in
 *    llama2.c). Decoding drops the leading space of the first token and of every token that follows
 *    a control token, so detokenize(tokenize(x)) == x. Merging uses a priority queue with lazy
 *    invalidation (O(n log n)), over spans cut before each space when no piece has a space inside.
 */
#include "tokenizer.h"
#include "common.h"
#include "gguf.h"
#include "model.h"

#include <utf8proc.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* ---- the tokenizer ------------------------------------------------------------------------ */

enum {                      /* per-token flags */
    F_CONTROL = 1,          /* control token: rendered only on request, matched with parse_special */
    F_USER = 2,             /* user-defined: always matched in raw text                           */
    F_TEXT = 4,             /* llama: a character or a merge may produce it                        */
    F_EOG = 8,              /* ends a generation                                                  */
};

struct vwn_tokenizer {
    vwn_tokenizer_kind kind;
    int32_t n_vocab;
    int32_t bos, eos, unk, pad;
    bool add_bos;

    /* gpt2 / llama: piece i is key[key_off[i] .. key_off[i+1]) (the form lookups use: gpt2 the
     * stored piece, llama the stored piece with U+2581 as a space) and decodes to
     * out[out_off[i] .. out_off[i+1]) (the bytes detokenize writes). */
    char *key, *out;
    size_t *key_off, *out_off;
    uint8_t *flags;
    float *score;           /* llama */

    int32_t *map;           /* open addressing: piece (key form) -> id; -1 = empty slot */
    size_t map_mask;

    int32_t byte_id[256];   /* gpt2: token of the byte's alphabet character; llama: <0xNN>; -1 none */
    bool cut_at_space;      /* llama: no text piece has a space after its first byte            */

    /* gpt2 merges: open addressing, key = left << 32 | right, UINT64_MAX = empty */
    uint64_t *merge_key;
    int32_t *merge_rank, *merge_new;
    size_t merge_mask;

    /* tokens matched in raw text (control and user-defined), grouped by first byte, longest first */
    int32_t *special;
    int32_t special_start[257];
};

static size_t key_len(const vwn_tokenizer *t, int32_t id) { return t->key_off[id + 1] - t->key_off[id]; }
static const char *key_of(const vwn_tokenizer *t, int32_t id) { return t->key + t->key_off[id]; }
static size_t out_len(const vwn_tokenizer *t, int32_t id) { return t->out_off[id + 1] - t->out_off[id]; }
static const char *out_of(const vwn_tokenizer *t, int32_t id) { return t->out + t->out_off[id]; }

void vwn_tokenizer_free(vwn_tokenizer *tok) {
    if (!tok) return;
    vwn_free(tok->key);
    vwn_free(tok->out);
    vwn_free(tok->key_off);
    vwn_free(tok->out_off);
    vwn_free(tok->flags);
    vwn_free(tok->score);
    vwn_free(tok->map);
    vwn_free(tok->merge_key);
    vwn_free(tok->merge_rank);
    vwn_free(tok->merge_new);
    vwn_free(tok->special);
    vwn_free(tok);
}

/* ---- hashing ------------------------------------------------------------------------------ */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;           /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3ULL;
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x) {           /* splitmix64 finaliser */
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27; x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Smallest power of two >= 2 * n (at least 16); false on overflow. */
static bool table_size(size_t n, size_t *out) {
    size_t size = 16;
    while (size / 2 < n) {
        if (size > SIZE_MAX / 4) return false;
        size *= 2;
    }
    *out = size;
    return true;
}

/* The id of a piece (key form), or -1. */
static int32_t map_find(const vwn_tokenizer *t, const char *s, size_t n) {
    size_t i = (size_t)hash_bytes(s, n) & t->map_mask;
    for (;;) {
        int32_t id = t->map[i];
        if (id < 0) return -1;
        if (key_len(t, id) == n && memcmp(key_of(t, id), s, n) == 0) return id;
        i = (i + 1) & t->map_mask;
    }
}

/* Adds id; on a duplicate piece the one with F_TEXT wins, else the lower id. */
static void map_add(vwn_tokenizer *t, int32_t id) {
    const char *s = key_of(t, id);
    size_t n = key_len(t, id);
    size_t i = (size_t)hash_bytes(s, n) & t->map_mask;
    for (;;) {
        int32_t other = t->map[i];
        if (other < 0) { t->map[i] = id; return; }
        if (key_len(t, other) == n && memcmp(key_of(t, other), s, n) == 0) {
            if ((t->flags[id] & F_TEXT) && !(t->flags[other] & F_TEXT)) t->map[i] = id;
            return;
        }
        i = (i + 1) & t->map_mask;
    }
}

/* gpt2: the merge of (left, right): rank and new token; false if none. */
static bool merge_find(const vwn_tokenizer *t, int32_t left, int32_t right, int32_t *rank, int32_t *id) {
    if (!t->merge_key) return false;
    uint64_t k = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t i = (size_t)hash_u64(k) & t->merge_mask;
    for (;;) {
        uint64_t slot = t->merge_key[i];
        if (slot == UINT64_MAX) return false;
        if (slot == k) {
            *rank = t->merge_rank[i];
            *id = t->merge_new[i];
            return true;
        }
        i = (i + 1) & t->merge_mask;
    }
}

/* Adds a merge unless the pair is already there (the first, higher-priority one is kept). */
static void merge_add(vwn_tokenizer *t, int32_t left, int32_t right, int32_t rank, int32_t id) {
    uint64_t k = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t i = (size_t)hash_u64(k) & t->merge_mask;
    while (t->merge_key[i] != UINT64_MAX) {
        if (t->merge_key[i] == k) return;
        i = (i + 1) & t->merge_mask;
    }
    t->merge_key[i] = k;
    t->merge_rank[i] = rank;
    t->merge_new[i] = id;
}

/* ---- UTF-8 and character classes ---------------------------------------------------------- */

#define CP_INVALID 0xFFFFFFFFu

/* Decodes the code point at s[i] (i < n): returns its byte length and sets *cp; an invalid byte
 * (not the start of a valid shortest-form sequence of a scalar value) has length 1 and CP_INVALID. */
static size_t utf8_next(const uint8_t *s, size_t n, size_t i, uint32_t *cp) {
    uint8_t c = s[i];
    if (c < 0x80) { *cp = c; return 1; }
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; v = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; v = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; v = c & 0x07; min = 0x10000; }
    else { *cp = CP_INVALID; return 1; }
    if (n - i < len) { *cp = CP_INVALID; return 1; }
    for (size_t k = 1; k < len; k++) {
        uint8_t b = s[i + k];
        if ((b & 0xC0) != 0x80) { *cp = CP_INVALID; return 1; }
        v = v << 6 | (b & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) { *cp = CP_INVALID; return 1; }
    *cp = v;
    return len;
}

static size_t utf8_put(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | cp >> 6); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12); out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18); out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

enum { CL_OTHER = 0, CL_LETTER = 1, CL_NUMBER = 2, CL_SPACE = 3 };   /* values used in the table below */

/* Unicode White_Space (what \s matches). */
static bool is_white_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

/* Letters (L) and numbers (N) assigned in Unicode 15.1 and 16.0. `tokenizers` 0.23 (Oniguruma with
 * Unicode 16) classifies them; utf8proc 2.8 (Unicode 15.0) calls them unassigned. Consulted only for
 * code points utf8proc reports as unassigned, so a newer utf8proc gives the same answer. */
static const struct { uint32_t lo, hi; uint8_t cls; } unicode16_ln[] = {
    {0x1C89, 0x1C8A, 1}, {0xA7CB, 0xA7CD, 1}, {0xA7DA, 0xA7DC, 1}, {0x105C0, 0x105F3, 1},
    {0x10D40, 0x10D49, 2}, {0x10D4A, 0x10D65, 1}, {0x10D6F, 0x10D85, 1}, {0x10EC2, 0x10EC4, 1},
    {0x11380, 0x11389, 1}, {0x1138B, 0x1138B, 1}, {0x1138E, 0x1138E, 1}, {0x11390, 0x113B5, 1},
    {0x113B7, 0x113B7, 1}, {0x113D1, 0x113D1, 1}, {0x113D3, 0x113D3, 1}, {0x116D0, 0x116E3, 2},
    {0x11BC0, 0x11BE0, 1}, {0x11BF0, 0x11BF9, 2}, {0x13460, 0x143FA, 1}, {0x16100, 0x1611D, 1},
    {0x16130, 0x16139, 2}, {0x16D40, 0x16D6C, 1}, {0x16D70, 0x16D79, 2}, {0x18CFF, 0x18CFF, 1},
    {0x1CCF0, 0x1CCF9, 2}, {0x1E5D0, 0x1E5ED, 1}, {0x1E5F0, 0x1E5F0, 1}, {0x1E5F1, 0x1E5FA, 2},
    {0x2EBF0, 0x2EE5D, 1},
};

static int unassigned_class(uint32_t cp) {
    size_t lo = 0, hi = sizeof unicode16_ln / sizeof unicode16_ln[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < unicode16_ln[mid].lo) hi = mid;
        else if (cp > unicode16_ln[mid].hi) lo = mid + 1;
        else return unicode16_ln[mid].cls;
    }
    return 0;
}

static int cp_class(uint32_t cp) {
    if (cp == CP_INVALID) return CL_OTHER;
    if (cp < 0x80) {
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return CL_LETTER;
        if (cp >= '0' && cp <= '9') return CL_NUMBER;
        return is_white_space(cp) ? CL_SPACE : CL_OTHER;
    }
    if (is_white_space(cp)) return CL_SPACE;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
        return CL_LETTER;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return CL_NUMBER;
    case UTF8PROC_CATEGORY_CN:
        return unassigned_class(cp);
    default:
        return CL_OTHER;
    }
}

/* Class and byte length of the code point at s[i]. */
static int class_at(const uint8_t *s, size_t n, size_t i, size_t *len) {
    uint32_t cp;
    *len = utf8_next(s, n, i, &cp);
    return cp_class(cp);
}

/* The GPT-2 byte-to-unicode alphabet: the code point that stands for byte b. */
static uint32_t byte_char(int b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return (uint32_t)b;
    int n = 0;                            /* rank of b among the bytes that are moved */
    for (int k = 0; k < b; k++)
        if (!((k >= 33 && k <= 126) || (k >= 161 && k <= 172) || k >= 174)) n++;
    return 256u + (uint32_t)n;
}

/* ---- building ----------------------------------------------------------------------------- */

vwn_tokenizer_data vwn_tokenizer_data_init(void) {
    vwn_tokenizer_data d;
    memset(&d, 0, sizeof d);
    d.bos = d.eos = d.unk = d.pad = -1;
    d.add_bos = -1;
    return d;
}

static bool str_is(gguf_str s, const char *lit) {
    size_t n = strlen(lit);
    return s.len == n && (n == 0 || memcmp(s.data, lit, n) == 0);
}

/* "<0xNN>" (hex digits of either case): returns the byte, else -1. */
static int byte_piece_value(const char *s, size_t n) {
    if (n != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return -1;
    int v = 0;
    for (int k = 3; k < 5; k++) {
        char c = s[k];
        int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static const char *const eog_pieces[] = {
    "<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>",
    "</s>", "<|end_of_text|>",
};

static vwn_status check_special_id(int64_t id, int32_t n_vocab, const char *what, int32_t *out) {
    if (id < 0) { *out = -1; return VWN_OK; }
    if (id >= n_vocab)
        return vwn_fail(VWN_ERR_BAD_MODEL, "tokenizer: tokenizer.ggml.%s_token_id %lld is outside the "
                        "vocabulary [0, %d)", what, (long long)id, (int)n_vocab);
    *out = (int32_t)id;
    return VWN_OK;
}

static vwn_status oom(const char *what) {
    return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "tokenizer: out of memory for the %s", what);
}

/* Fills the pieces, flags, decoded forms and the piece map of a gpt2 or llama tokenizer. */
static vwn_status build_vocab(vwn_tokenizer *t, const vwn_tokenizer_data *d) {
    const int32_t V = t->n_vocab;
    const bool llama = t->kind == VWN_TOKENIZER_LLAMA;
    size_t total = 0;
    for (int32_t i = 0; i < V; i++)
        if (!vwn_add_size(total, (size_t)d->tokens[i].len, &total) || d->tokens[i].len > INT32_MAX)
            return vwn_fail(VWN_ERR_BAD_MODEL, "tokenizer: the token pieces are too long");
    size_t n_off, map_size;
    if (!vwn_add_size((size_t)V, 1, &n_off) || !table_size((size_t)V, &map_size))
        return vwn_fail(VWN_ERR_BAD_MODEL, "tokenizer: the vocabulary is too large");
    t->key = vwn_malloc(total + 1);
    t->out = vwn_malloc(total + 1);
    t->key_off = vwn_calloc(n_off, sizeof *t->key_off);
    t->out_off = vwn_calloc(n_off, sizeof *t->out_off);
    t->flags = vwn_calloc((size_t)V, 1);
    t->map = vwn_malloc(map_size * sizeof *t->map);
    if (!t->key || !t->out || !t->key_off || !t->out_off || !t->flags || !t->map) return oom("vocabulary");
    memset(t->map, 0xFF, map_size * sizeof *t->map);
    t->map_mask = map_size - 1;

    /* flags from the token types */
    for (int32_t i = 0; i < V; i++) {
        int32_t type = VWN_TOKEN_TYPE_NORMAL;
        if (d->types) {
            memcpy(&type, (const char *)d->types + (size_t)i * 4, 4);
            if (type < 0 || type > 6)
                return vwn_fail(VWN_ERR_BAD_MODEL, "tokenizer: tokenizer.ggml.token_type[%d] is %d; "
                                "the types are 0..6 (1 normal, 2 unknown, 3 control, 4 user-defined, "
                                "5 unused, 6 byte)", (int)i, (int)type);
        } else if (i == t->bos || i == t->eos) {
            type = VWN_TOKEN_TYPE_CONTROL;
        } else if (i == t->unk) {
            type = VWN_TOKEN_TYPE_UNKNOWN;
        }
        uint8_t fl = 0;
        if (type == VWN_TOKEN_TYPE_CONTROL) fl |= F_CONTROL;
        if (type == VWN_TOKEN_TYPE_USER_DEFINED) fl |= F_USER;
        bool is_byte = llama && byte_piece_value(d->tokens[i].data, d->tokens[i].len) >= 0;
        if (type == VWN_TOKEN_TYPE_NORMAL || type == VWN_TOKEN_TYPE_UNDEFINED ||
            type == VWN_TOKEN_TYPE_USER_DEFINED)
            if (!is_byte) fl |= F_TEXT;
        t->flags[i] = fl;
    }

    /* the two forms of every piece */
    int16_t char_byte[256 + 68];          /* gpt2: the byte each alphabet character stands for */
    for (int c = 0; c < 256 + 68; c++) char_byte[c] = -1;
    for (int b = 0; b < 256; b++) char_byte[byte_char(b)] = (int16_t)b;
    size_t kpos = 0, opos = 0;
    for (int32_t i = 0; i < V; i++) {
        const char *p = d->tokens[i].data;
        size_t n = (size_t)d->tokens[i].len;
        t->key_off[i] = kpos;
        t->out_off[i] = opos;
        if (llama && (t->flags[i] & F_TEXT)) {             /* U+2581 -> ' ' in both forms */
            for (size_t k = 0; k < n;) {
                if (n - k >= 3 && (uint8_t)p[k] == 0xE2 && (uint8_t)p[k + 1] == 0x96 &&
                    (uint8_t)p[k + 2] == 0x81) {
                    t->key[kpos++] = ' ';
                    t->out[opos++] = ' ';
                    k += 3;
                } else {
                    t->key[kpos++] = p[k];
                    t->out[opos++] = p[k++];
                }
            }
            continue;
        }
        if (n) memcpy(t->key + kpos, p, n);
        kpos += n;
        int bv = llama ? byte_piece_value(p, n) : -1;
        if (bv >= 0) {                                      /* llama byte token */
            t->out[opos++] = (char)bv;
        } else if (!llama && !(t->flags[i] & (F_CONTROL | F_USER))) {
            /* gpt2: map each character back to its byte; a piece with a character outside the
             * alphabet is written as it is (as the ByteLevel decoder does) */
            size_t start = opos;
            bool ok = true;
            for (size_t k = 0; k < n && ok;) {
                uint32_t cp;
                k += utf8_next((const uint8_t *)p, n, k, &cp);
                int b = cp < 256 + 68 ? char_byte[cp] : -1;
                if (b < 0) ok = false;
                else t->out[opos++] = (char)b;
            }
            if (!ok) {
                opos = start;
                if (n) memcpy(t->out + opos, p, n);
                opos += n;
            }
        } else {
            if (n) memcpy(t->out + opos, p, n);
            opos += n;
        }
    }
    t->key_off[V] = kpos;
    t->out_off[V] = opos;

    for (int32_t i = 0; i < V; i++) map_add(t, i);

    /* end-of-generation tokens */
    if (t->eos >= 0) t->flags[t->eos] |= F_EOG;
    for (int32_t i = 0; i < V; i++) {
        if (!(t->flags[i] & F_CONTROL)) continue;
        for (size_t k = 0; k < sizeof eog_pieces / sizeof eog_pieces[0]; k++)
            if (out_len(t, i) == strlen(eog_pieces[k]) &&
                memcmp(out_of(t, i), eog_pieces[k], out_len(t, i)) == 0)
                t->flags[i] |= F_EOG;
    }

    /* tokens matched in raw text, by first byte, longest first */
    int32_t count[257] = {0};
    int32_t n_special = 0;
    for (int32_t i = 0; i < V; i++)
        if ((t->flags[i] & (F_CONTROL | F_USER)) && out_len(t, i) > 0) {
            count[(uint8_t)out_of(t, i)[0]]++;
            n_special++;
        }
    t->special = vwn_malloc(((size_t)n_special + 1) * sizeof *t->special);
    if (!t->special) return oom("special tokens");
    t->special_start[0] = 0;
    for (int b = 0; b < 256; b++) t->special_start[b + 1] = t->special_start[b] + count[b];
    int32_t fill[256];
    for (int b = 0; b < 256; b++) fill[b] = t->special_start[b];
    for (int32_t i = 0; i < V; i++)
        if ((t->flags[i] & (F_CONTROL | F_USER)) && out_len(t, i) > 0) {
            int b = (uint8_t)out_of(t, i)[0];
            int32_t k = fill[b]++;
            while (k > t->special_start[b] && out_len(t, t->special[k - 1]) < out_len(t, i)) {
                t->special[k] = t->special[k - 1];     /* insertion sort, longest first */
                k--;
            }
            t->special[k] = i;
        }
    return VWN_OK;
}

static vwn_status build_gpt2(vwn_tokenizer *t, const vwn_tokenizer_data *d) {
    /* the token of each byte's alphabet character */
    for (int b = 0; b < 256; b++) {
        char buf[4];
        size_t n = utf8_put(byte_char(b), buf);
        t->byte_id[b] = map_find(t, buf, n);
    }
    if (!d->merges || d->n_merges == 0) return VWN_OK;
    if (d->n_merges > INT32_MAX)
        return vwn_fail(VWN_ERR_BAD_MODEL, "tokenizer: %llu merges is too many",
                        (unsigned long long)d->n_merges);
    size_t size;
    if (!table_size((size_t)d->n_merges, &size))
        return vwn_fail(VWN_ERR_BAD_MODEL, "tokenizer: too many merges");
    t->merge_key = vwn_malloc(size * sizeof *t->merge_key);
    t->merge_rank = vwn_malloc(size * sizeof *t->merge_rank);
    t->merge_new = vwn_malloc(size * sizeof *t->merge_new);
    if (!t->merge_key || !t->merge_rank || !t->merge_new) return oom("merges");
    memset(t->merge_key, 0xFF, size * sizeof *t->merge_key);
    t->merge_mask = size - 1;

    size_t longest = 0;
    for (uint64_t i = 0; i < d->n_merges; i++)
        if (d->merges[i].len > longest) longest = (size_t)d->merges[i].len;
    char *joined = vwn_malloc(longest + 1);
    if (!joined) return oom("merges");
    vwn_status st = VWN_OK;
    for (uint64_t i = 0; i < d->n_merges && st == VWN_OK; i++) {
        const char *s = d->merges[i].data;
        size_t n = (size_t)d->merges[i].len;
        int show = n > 80 ? 80 : (int)n;
        size_t sp = n, spaces = 0;
        for (size_t k = 0; k < n; k++)
            if (s[k] == ' ') { spaces++; if (sp == n) sp = k; }
        if (spaces != 1 || sp == 0 || sp == n - 1) {
            st = vwn_fail(VWN_ERR_BAD_MODEL, "tokenizer: tokenizer.ggml.merges[%llu] \"%.*s\" is not "
                          "two pieces separated by one space", (unsigned long long)i, show, s);
            break;
        }
        int32_t left = map_find(t, s, sp), right = map_find(t, s + sp + 1, n - sp - 1);
        memcpy(joined, s, sp);
        memcpy(joined + sp, s + sp + 1, n - sp - 1);
        int32_t id = map_find(t, joined, n - 1);
        if (left < 0 || right < 0 || id < 0) {
            st = vwn_fail(VWN_ERR_BAD_MODEL, "tokenizer: tokenizer.ggml.merges[%llu] \"%.*s\": the %s "
                          "is not in the vocabulary", (unsigned long long)i, show, s,
                          left < 0 ? "left piece" : right < 0 ? "right piece" : "merged piece");
            break;
        }
        merge_add(t, left, right, (int32_t)i, id);
    }
    vwn_free(joined);
    return st;
}

static vwn_status build_llama(vwn_tokenizer *t, const vwn_tokenizer_data *d) {
    t->score = vwn_malloc((size_t)t->n_vocab * sizeof *t->score);
    if (!t->score) return oom("scores");
    memcpy(t->score, d->scores, (size_t)t->n_vocab * sizeof *t->score);
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        int32_t id = map_find(t, name, 6);
        if (id < 0 || byte_piece_value(key_of(t, id), key_len(t, id)) != b) id = t->unk;
        if (id < 0)
            return vwn_fail(VWN_ERR_BAD_MODEL, "tokenizer: the llama vocabulary has no byte token %s "
                            "and no unknown token to fall back to", name);
        t->byte_id[b] = id;
    }
    t->cut_at_space = true;
    for (int32_t i = 0; i < t->n_vocab && t->cut_at_space; i++)
        if ((t->flags[i] & F_TEXT) && key_len(t, i) > 1 && memchr(key_of(t, i) + 1, ' ', key_len(t, i) - 1))
            t->cut_at_space = false;
    return VWN_OK;
}

vwn_status vwn_tokenizer_build(const vwn_tokenizer_data *d, vwn_tokenizer **out) {
    if (!out) return vwn_fail(VWN_ERR_INVALID_ARG, "tokenizer: out is NULL");
    *out = NULL;
    if (!d) return vwn_fail(VWN_ERR_INVALID_ARG, "tokenizer: description is NULL");
    vwn_tokenizer_kind kind;
    if (d->model.len == 0 || str_is(d->model, "bytes")) kind = VWN_TOKENIZER_BYTES;
    else if (str_is(d->model, "gpt2")) kind = VWN_TOKENIZER_GPT2;
    else if (str_is(d->model, "llama")) kind = VWN_TOKENIZER_LLAMA;
    else
        return vwn_fail(VWN_ERR_UNSUPPORTED, "tokenizer: tokenizer.ggml.model \"%.*s\" is not supported "
                        "(bytes, gpt2 and llama are)", (int)(d->model.len > 64 ? 64 : d->model.len),
                        d->model.data);
    const int32_t V = d->n_vocab;
    if (V <= 0) return vwn_fail(VWN_ERR_BAD_MODEL, "tokenizer: vocabulary size %d", (int)V);
    if (d->tokens && d->n_tokens != (uint64_t)V)
        return vwn_fail(VWN_ERR_BAD_MODEL, "tokenizer: tokenizer.ggml.tokens has %llu entries but "
                        "vwn.vocab_size is %d", (unsigned long long)d->n_tokens, (int)V);

    vwn_tokenizer *t = vwn_calloc(1, sizeof *t);
    if (!t) return oom("tokenizer");
    t->kind = kind;
    t->n_vocab = V;
    t->bos = t->eos = t->unk = t->pad = -1;
    for (int b = 0; b < 256; b++) t->byte_id[b] = b;

    if (kind == VWN_TOKENIZER_BYTES) {
        if (V != 256) {
            vwn_tokenizer_free(t);
            return vwn_fail(VWN_ERR_BAD_MODEL, "tokenizer: the \"bytes\" tokenizer needs vwn.vocab_size "
                            "256, the model has %d", (int)V);
        }
        *out = t;
        return VWN_OK;
    }

    const char *kname = kind == VWN_TOKENIZER_GPT2 ? "gpt2" : "llama";
    vwn_status st = VWN_OK;
    if (!d->tokens)
        st = vwn_fail(VWN_ERR_BAD_MODEL, "tokenizer: the %s tokenizer needs tokenizer.ggml.tokens", kname);
    else if (kind == VWN_TOKENIZER_LLAMA && !d->scores)
        st = vwn_fail(VWN_ERR_BAD_MODEL, "tokenizer: the llama tokenizer needs tokenizer.ggml.scores");
    else if (d->scores && d->n_scores != (uint64_t)V)
        st = vwn_fail(VWN_ERR_BAD_MODEL, "tokenizer: tokenizer.ggml.scores has %llu entries but the "
                      "vocabulary has %d", (unsigned long long)d->n_scores, (int)V);
    else if (d->types && d->n_types != (uint64_t)V)
        st = vwn_fail(VWN_ERR_BAD_MODEL, "tokenizer: tokenizer.ggml.token_type has %llu entries but the "
                      "vocabulary has %d", (unsigned long long)d->n_types, (int)V);
    else if (kind == VWN_TOKENIZER_LLAMA && d->merges && d->n_merges > 0)
        st = vwn_fail(VWN_ERR_BAD_MODEL, "tokenizer: the llama tokenizer uses scores, not "
                      "tokenizer.ggml.merges");
    if (st == VWN_OK) st = check_special_id(d->bos, V, "bos", &t->bos);
    if (st == VWN_OK) st = check_special_id(d->eos, V, "eos", &t->eos);
    if (st == VWN_OK) st = check_special_id(d->unk, V, "unknown", &t->unk);
    if (st == VWN_OK) st = check_special_id(d->pad, V, "padding", &t->pad);
    t->add_bos = d->add_bos < 0 ? kind == VWN_TOKENIZER_LLAMA : d->add_bos != 0;
    if (st == VWN_OK) st = build_vocab(t, d);
    if (st == VWN_OK) st = kind == VWN_TOKENIZER_GPT2 ? build_gpt2(t, d) : build_llama(t, d);
    if (st != VWN_OK) {
        vwn_tokenizer_free(t);
        return st;
    }
    *out = t;
    return VWN_OK;
}

vwn_status vwn_tokenizer_load(const struct gguf_file *f, int32_t n_vocab, vwn_tokenizer **out) {
    if (!out) return vwn_fail(VWN_ERR_INVALID_ARG, "tokenizer load: out is NULL");
    *out = NULL;
    if (!f) return vwn_fail(VWN_ERR_INVALID_ARG, "tokenizer load: file is NULL");
    vwn_tokenizer_data d = vwn_tokenizer_data_init();
    d.n_vocab = n_vocab;
    vwn_status st = VWN_OK;
    if (gguf_find_kv(f, "tokenizer.ggml.model")) {
        st = gguf_get_str(f, "tokenizer.ggml.model", &d.model);
        if (st) return st;
    }
    if (d.model.len == 0 || str_is(d.model, "bytes")) return vwn_tokenizer_build(&d, out);

    if (gguf_find_kv(f, "tokenizer.ggml.pre")) {
        gguf_str pre;
        st = gguf_get_str(f, "tokenizer.ggml.pre", &pre);
        if (st) return st;
        if (str_is(d.model, "gpt2") && !str_is(pre, "gpt2") && !str_is(pre, "default"))
            return vwn_fail(VWN_ERR_UNSUPPORTED, "tokenizer: pre-tokenizer \"%.*s\" is not supported "
                            "(only \"gpt2\")", (int)(pre.len > 64 ? 64 : pre.len), pre.data);
    }
    if (gguf_find_kv(f, "tokenizer.ggml.tokens") &&
        (st = gguf_get_arr_str(f, "tokenizer.ggml.tokens", &d.tokens, &d.n_tokens)))
        return st;
    if (gguf_find_kv(f, "tokenizer.ggml.scores") &&
        (st = gguf_get_arr_f32(f, "tokenizer.ggml.scores", &d.scores, &d.n_scores)))
        return st;
    if (gguf_find_kv(f, "tokenizer.ggml.token_type") &&
        (st = gguf_get_arr_i32(f, "tokenizer.ggml.token_type", &d.types, &d.n_types)))
        return st;
    if (gguf_find_kv(f, "tokenizer.ggml.merges") &&
        (st = gguf_get_arr_str(f, "tokenizer.ggml.merges", &d.merges, &d.n_merges)))
        return st;
    static const char *const id_keys[4] = {
        "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id",
    };
    int64_t *ids[4] = {&d.bos, &d.eos, &d.unk, &d.pad};
    for (int k = 0; k < 4; k++) {
        if (!gguf_find_kv(f, id_keys[k])) continue;
        uint32_t v;
        if ((st = gguf_get_u32(f, id_keys[k], &v))) return st;
        *ids[k] = v;
    }
    if (gguf_find_kv(f, "tokenizer.ggml.add_bos_token")) {
        bool b;
        if ((st = gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b))) return st;
        d.add_bos = b;
    }
    return vwn_tokenizer_build(&d, out);
}

/* ---- growable arrays ---------------------------------------------------------------------- */

typedef struct ivec {
    int32_t *v;
    size_t n, cap;
    bool failed;               /* an allocation failed: later pushes are dropped */
} ivec;

static bool ivec_reserve(ivec *a, size_t need) {
    if (a->failed) return false;
    if (need <= a->cap) return true;
    size_t cap = a->cap ? a->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2 / sizeof(int32_t)) { a->failed = true; return false; }
        cap *= 2;
    }
    int32_t *v = vwn_realloc(a->v, cap * sizeof *v);
    if (!v) { a->failed = true; return false; }
    a->v = v;
    a->cap = cap;
    return true;
}

static inline void ivec_push(ivec *a, int32_t x) {
    if (a->n == a->cap && !ivec_reserve(a, a->n + 1)) return;
    a->v[a->n++] = x;
}

/* Scratch of one tokenize call: BPE symbols and the merge queue. */
typedef struct sym {
    int32_t id;
    int32_t prev, next;
    int32_t start, len;      /* bytes covered; len 0 = merged away */
    bool mergeable;          /* llama: false for byte fallback      */
} sym;

typedef struct cand {        /* a candidate merge of symbols left and right */
    double score;            /* higher first: llama the score, gpt2 -rank  */
    int32_t left, right;
    int32_t len;             /* llama: combined length when queued          */
    int32_t id;              /* the merged token                            */
} cand;

typedef struct scratch {
    sym *syms;
    size_t syms_cap;
    cand *heap;
    size_t heap_n, heap_cap;
    char *buf;
    size_t buf_cap;
    bool failed;
} scratch;

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem) return false;
        c *= 2;
    }
    void *q = vwn_realloc(*p, c * elem);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

/* Heap order: higher score first, then the leftmost pair (lower symbol index). */
static inline bool cand_before(const cand *a, const cand *b) {
    if (a->score != b->score) return a->score > b->score;
    return a->left < b->left;
}

static void heap_push(scratch *sc, cand c) {
    if (sc->heap_n == sc->heap_cap &&
        !grow((void **)&sc->heap, &sc->heap_cap, sc->heap_n + 1, sizeof(cand))) {
        sc->failed = true;
        return;
    }
    size_t i = sc->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!cand_before(&c, &sc->heap[parent])) break;
        sc->heap[i] = sc->heap[parent];
        i = parent;
    }
    sc->heap[i] = c;
}

static cand heap_pop(scratch *sc) {
    cand top = sc->heap[0];
    cand last = sc->heap[--sc->heap_n];
    size_t n = sc->heap_n, i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && cand_before(&sc->heap[child + 1], &sc->heap[child])) child++;
        if (!cand_before(&sc->heap[child], &last)) break;
        sc->heap[i] = sc->heap[child];
        i = child;
    }
    if (n) sc->heap[i] = last;
    return top;
}

static void scratch_free(scratch *sc) {
    vwn_free(sc->syms);
    vwn_free(sc->heap);
    vwn_free(sc->buf);
}

/* ---- gpt2: the pre-tokenizer and byte-level BPE ------------------------------------------- */

/* Length in bytes of the pre-token starting at s[i] (i < n): the GPT-2 regex, alternative by
 * alternative, as a leftmost-first regex engine tries them. */
size_t vwn_gpt2_pretoken(const uint8_t *s, size_t n, size_t i) {
    size_t len;
    int cls = class_at(s, n, i, &len);
    /* 's|'t|'re|'ve|'m|'ll|'d */
    if (s[i] == '\'' && i + 1 < n) {
        uint8_t a = s[i + 1];
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
        if (i + 2 < n) {
            uint8_t b = s[i + 2];
            if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
        }
    }
    /*  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+  */
    size_t j = i;
    int want = -1;
    if (cls != CL_SPACE) {
        want = cls;
    } else if (s[i] == ' ' && i + 1 < n) {
        size_t l2;
        int c2 = class_at(s, n, i + 1, &l2);
        if (c2 != CL_SPACE) { want = c2; j = i + 1; }
    }
    if (want >= 0) {
        while (j < n) {
            size_t l;
            if (class_at(s, n, j, &l) != want) break;
            j += l;
        }
        return j - i;
    }
    /* \s+(?!\S) | \s+ */
    size_t last = i;
    j = i;
    while (j < n) {
        size_t l;
        if (class_at(s, n, j, &l) != CL_SPACE) break;
        last = j;
        j += l;
    }
    if (j == n) return n - i;            /* the run ends the text */
    if (last > i) return last - i;       /* leave the last space for the next word */
    return j - i;                        /* a single space before a non-space */
}

/* Byte-level BPE of one pre-token (as tokenizers' BPE::merge_word: lowest rank first, then the
 * leftmost position). */
static void gpt2_bpe_word(const vwn_tokenizer *t, const uint8_t *w, size_t n, scratch *sc, ivec *out) {
    if (!grow((void **)&sc->syms, &sc->syms_cap, n, sizeof(sym))) { sc->failed = true; return; }
    sym *s = sc->syms;
    int32_t m = 0;
    for (size_t k = 0; k < n; k++) {
        int32_t id = t->byte_id[w[k]];
        if (id < 0) id = t->unk;
        if (id < 0) continue;             /* no token for this byte and no unknown token: dropped */
        s[m].id = id;
        s[m].prev = m - 1;
        s[m].next = -1;
        if (m > 0) s[m - 1].next = m;
        s[m].len = 1;
        m++;
    }
    if (m == 0) return;
    sc->heap_n = 0;
    for (int32_t k = 0; k + 1 < m; k++) {
        int32_t rank, id;
        if (merge_find(t, s[k].id, s[k + 1].id, &rank, &id))
            heap_push(sc, (cand){-(double)rank, k, k + 1, 0, id});
    }
    while (sc->heap_n > 0 && !sc->failed) {
        cand c = heap_pop(sc);
        int32_t a = c.left;
        if (s[a].len == 0 || s[a].next < 0) continue;
        int32_t b = s[a].next;
        int32_t rank, id;
        if (!merge_find(t, s[a].id, s[b].id, &rank, &id) || id != c.id) continue;
        s[a].id = id;
        s[a].len += s[b].len;
        s[a].next = s[b].next;
        s[b].len = 0;
        if (s[a].next >= 0) s[s[a].next].prev = a;
        if (s[a].prev >= 0 && merge_find(t, s[s[a].prev].id, s[a].id, &rank, &id))
            heap_push(sc, (cand){-(double)rank, s[a].prev, a, 0, id});
        if (s[a].next >= 0 && merge_find(t, s[a].id, s[s[a].next].id, &rank, &id))
            heap_push(sc, (cand){-(double)rank, a, s[a].next, 0, id});
    }
    for (int32_t k = 0; k >= 0; k = s[k].next) ivec_push(out, s[k].id);
}

static void gpt2_encode(const vwn_tokenizer *t, const uint8_t *s, size_t n, scratch *sc, ivec *out) {
    size_t i = 0;
    while (i < n && !sc->failed && !out->failed) {
        size_t len = vwn_gpt2_pretoken(s, n, i);
        gpt2_bpe_word(t, s + i, len, sc, out);
        i += len;
    }
}

/* ---- llama: SentencePiece-style BPE with scores and byte fallback -------------------------- */

/* Queues the merge of symbols a and b if their text is a token a merge may produce. */
static void llama_try_pair(const vwn_tokenizer *t, const char *buf, scratch *sc, int32_t a, int32_t b) {
    const sym *s = sc->syms;
    if (a < 0 || b < 0 || !s[a].mergeable || !s[b].mergeable) return;
    int32_t len = s[a].len + s[b].len;
    int32_t id = map_find(t, buf + s[a].start, (size_t)len);
    if (id < 0 || !(t->flags[id] & F_TEXT)) return;
    float score = t->score[id];
    if (!(score > -1e10f)) return;             /* llama2.c's starting best score; NaN never merges */
    heap_push(sc, (cand){(double)score, a, b, len, id});
}

/* The symbols of buf[a..b) (llama2.c: one per UTF-8 character -- a byte and up to 3 continuation
 * bytes -- that is a piece, else one byte token per byte), then merges of the adjacent pair with the
 * highest score (leftmost on ties) until none is left. */
static void llama_merge_span(const vwn_tokenizer *t, const char *buf, size_t a, size_t b, scratch *sc,
                             ivec *out) {
    if (!grow((void **)&sc->syms, &sc->syms_cap, b - a, sizeof(sym))) {
        sc->failed = true;
        return;
    }
    sym *s = sc->syms;
    int32_t m = 0;
    for (size_t i = a; i < b;) {
        size_t start = i++;
        while (i < b && ((uint8_t)buf[i] & 0xC0) == 0x80 && i - start < 4) i++;
        int32_t id = map_find(t, buf + start, i - start);
        if (id >= 0 && (t->flags[id] & F_TEXT)) {
            s[m] = (sym){id, m - 1, m + 1, (int32_t)start, (int32_t)(i - start), true};
            m++;
        } else {
            for (size_t k = start; k < i; k++) {
                s[m] = (sym){t->byte_id[(uint8_t)buf[k]], m - 1, m + 1, (int32_t)k, 1, false};
                m++;
            }
        }
    }
    s[m - 1].next = -1;
    sc->heap_n = 0;
    for (int32_t k = 0; k + 1 < m; k++) llama_try_pair(t, buf, sc, k, k + 1);
    while (sc->heap_n > 0 && !sc->failed) {
        cand c = heap_pop(sc);
        int32_t l = c.left, r = c.right;
        if (s[l].len == 0 || s[l].next != r || s[r].len == 0 || s[l].len + s[r].len != c.len) continue;
        s[l].id = c.id;
        s[l].len = c.len;
        s[l].next = s[r].next;
        s[r].len = 0;
        if (s[l].next >= 0) s[s[l].next].prev = l;
        llama_try_pair(t, buf, sc, s[l].prev, l);
        llama_try_pair(t, buf, sc, l, s[l].next);
    }
    for (int32_t k = 0; k >= 0; k = s[k].next) ivec_push(out, s[k].id);
}

/* llama2.c's encode() of one piece of text: a dummy space in front, then llama_merge_span. When no
 * piece has a space after its first byte (t->cut_at_space, true of SentencePiece vocabularies), no
 * merge can cover the position before a space, so the text is merged in independent spans cut
 * before each space: the same result, with small queues. */
static void llama_encode(const vwn_tokenizer *t, const uint8_t *text, size_t n, scratch *sc, ivec *out) {
    if (n == 0) return;
    if (n > (size_t)INT32_MAX - 1) { sc->failed = true; return; }
    size_t bn = n + 1;
    if (!grow((void **)&sc->buf, &sc->buf_cap, bn, 1)) {
        sc->failed = true;
        return;
    }
    char *buf = sc->buf;
    buf[0] = ' ';
    memcpy(buf + 1, text, n);
    if (!t->cut_at_space) {
        llama_merge_span(t, buf, 0, bn, sc, out);
        return;
    }
    size_t a = 0;
    for (size_t i = 1; i <= bn && !sc->failed; i++)
        if (i == bn || buf[i] == ' ') {
            llama_merge_span(t, buf, a, i, sc, out);
            a = i;
        }
}

/* ---- encoding ----------------------------------------------------------------------------- */

/* The control (with parse_special) or user-defined token whose text starts at s[i], longest first;
 * -1 if none. */
static int32_t match_special(const vwn_tokenizer *t, const uint8_t *s, size_t n, size_t i,
                             bool parse_special, size_t *len) {
    int b = s[i];
    for (int32_t k = t->special_start[b]; k < t->special_start[b + 1]; k++) {
        int32_t id = t->special[k];
        if ((t->flags[id] & F_CONTROL) && !parse_special) continue;
        size_t l = out_len(t, id);
        if (l <= n - i && memcmp(out_of(t, id), s + i, l) == 0) {
            *len = l;
            return id;
        }
    }
    return -1;
}

static void encode_text(const vwn_tokenizer *t, const uint8_t *s, size_t n, scratch *sc, ivec *out) {
    if (t->kind == VWN_TOKENIZER_GPT2) gpt2_encode(t, s, n, sc, out);
    else llama_encode(t, s, n, sc, out);
}

vwn_status vwn_tokenizer_encode(const vwn_tokenizer *tok, const char *text, size_t text_len,
                                bool add_special, bool parse_special, int32_t **out_tokens,
                                size_t *out_n) {
    if (!out_tokens || !out_n) return vwn_fail(VWN_ERR_INVALID_ARG, "tokenize: output pointer is NULL");
    *out_tokens = NULL;
    *out_n = 0;
    if (!tok) return vwn_fail(VWN_ERR_INVALID_ARG, "tokenize: tokenizer is NULL");
    if (!text && text_len > 0) return vwn_fail(VWN_ERR_INVALID_ARG, "tokenize: text is NULL");
    const uint8_t *s = (const uint8_t *)text;
    ivec v = {0};
    scratch sc = {0};
    ivec_reserve(&v, tok->kind == VWN_TOKENIZER_BYTES ? text_len + 1 : text_len / 3 + 16);
    if (add_special && tok->add_bos && tok->bos >= 0) ivec_push(&v, tok->bos);
    if (tok->kind == VWN_TOKENIZER_BYTES) {
        for (size_t i = 0; i < text_len && !v.failed; i++) ivec_push(&v, s[i]);
    } else {
        size_t seg = 0, i = 0;
        while (i < text_len && !v.failed && !sc.failed) {
            size_t len;
            int32_t id;
            if (tok->special_start[s[i]] < tok->special_start[s[i] + 1] &&
                (id = match_special(tok, s, text_len, i, parse_special, &len)) >= 0) {
                encode_text(tok, s + seg, i - seg, &sc, &v);
                ivec_push(&v, id);
                i += len;
                seg = i;
            } else {
                i++;
            }
        }
        if (!v.failed && !sc.failed) encode_text(tok, s + seg, text_len - seg, &sc, &v);
    }
    scratch_free(&sc);
    if (v.failed || sc.failed) {
        vwn_free(v.v);
        return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "tokenize: out of memory for a text of %zu bytes", text_len);
    }
    *out_tokens = v.v;
    *out_n = v.n;
    return VWN_OK;
}

int32_t vwn_tokenizer_tokenize(const vwn_tokenizer *tok, const char *text, int32_t text_len,
                               int32_t *tokens, int32_t n_tokens_max, bool add_special,
                               bool parse_special) {
    if (text_len < 0) {
        vwn_fail(VWN_ERR_INVALID_ARG, "tokenize: text_len is negative (%d)", (int)text_len);
        return INT32_MIN;
    }
    if (n_tokens_max < 0 || (!tokens && n_tokens_max > 0)) {
        vwn_fail(VWN_ERR_INVALID_ARG, "tokenize: bad output buffer (tokens %s, n_tokens_max %d)",
                 tokens ? "set" : "NULL", (int)n_tokens_max);
        return INT32_MIN;
    }
    int32_t *ids;
    size_t n;
    if (vwn_tokenizer_encode(tok, text, (size_t)text_len, add_special, parse_special, &ids, &n) != VWN_OK)
        return INT32_MIN;
    int32_t result;
    if (n > (size_t)INT32_MAX) {
        vwn_fail(VWN_ERR_INVALID_ARG, "tokenize: the text gives %zu tokens, more than an int32_t counts", n);
        result = INT32_MIN;
    } else if ((int32_t)n > n_tokens_max) {
        result = -(int32_t)n;
    } else {
        if (n) memcpy(tokens, ids, n * sizeof *ids);
        result = (int32_t)n;
    }
    vwn_free(ids);
    return result;
}

/* ---- decoding ----------------------------------------------------------------------------- */

/* The bytes token i of a sequence contributes to the text; false if it is out of range. */
static bool token_text(const vwn_tokenizer *t, const int32_t *tokens, int32_t i, bool remove_special,
                       char *byte_buf, const char **p, size_t *n) {
    int32_t id = tokens[i];
    if (id < 0 || id >= t->n_vocab) return false;
    if (t->kind == VWN_TOKENIZER_BYTES) {
        byte_buf[0] = (char)id;
        *p = byte_buf;
        *n = 1;
        return true;
    }
    *p = out_of(t, id);
    *n = out_len(t, id);
    if (t->flags[id] & F_CONTROL) {
        if (remove_special) *n = 0;
        return true;
    }
    /* llama: the dummy space the encoder puts before each piece of text: at the start and after
     * a control or user-defined token (the encoder splits the text around both) */
    if (t->kind == VWN_TOKENIZER_LLAMA && *n > 0 && (*p)[0] == ' ' &&
        (i == 0 || (t->flags[tokens[i - 1]] & (F_CONTROL | F_USER)) || tokens[i - 1] == t->bos)) {
        (*p)++;
        (*n)--;
    }
    return true;
}

int32_t vwn_tokenizer_detokenize(const vwn_tokenizer *tok, const int32_t *tokens, int32_t n_tokens,
                                 char *text, int32_t text_len_max, bool remove_special) {
    if (!tok || n_tokens < 0 || (!tokens && n_tokens > 0) || text_len_max < 0 ||
        (!text && text_len_max > 0)) {
        vwn_fail(VWN_ERR_INVALID_ARG, "detokenize: bad arguments (tokens %s, n_tokens %d, text %s, "
                 "text_len_max %d)", tokens ? "set" : "NULL", (int)n_tokens, text ? "set" : "NULL",
                 (int)text_len_max);
        return INT32_MIN;
    }
    size_t total = 0;
    char byte_buf[1];
    for (int32_t i = 0; i < n_tokens; i++) {
        const char *p = NULL;
        size_t n = 0;
        if (!token_text(tok, tokens, i, remove_special, byte_buf, &p, &n)) {
            vwn_fail(VWN_ERR_TOKEN_OUT_OF_RANGE, "detokenize: token %d at index %d is outside the "
                     "vocabulary [0, %d)", (int)tokens[i], (int)i, (int)tok->n_vocab);
            return INT32_MIN;
        }
        total += n;
        if (total > (size_t)INT32_MAX) {
            vwn_fail(VWN_ERR_INVALID_ARG, "detokenize: the text is longer than an int32_t counts");
            return INT32_MIN;
        }
    }
    if (total > (size_t)text_len_max) return -(int32_t)total;
    size_t pos = 0;
    for (int32_t i = 0; i < n_tokens; i++) {
        const char *p = NULL;
        size_t n = 0;
        token_text(tok, tokens, i, remove_special, byte_buf, &p, &n);   /* ids checked above */
        if (n) memcpy(text + pos, p, n);
        pos += n;
    }
    return (int32_t)total;
}

int32_t vwn_tokenizer_token_to_piece(const vwn_tokenizer *tok, int32_t token, char *buf,
                                     int32_t buf_len, bool special) {
    if (!tok || buf_len < 0 || (!buf && buf_len > 0)) {
        vwn_fail(VWN_ERR_INVALID_ARG, "token_to_piece: bad arguments (buf %s, buf_len %d)",
                 buf ? "set" : "NULL", (int)buf_len);
        return INT32_MIN;
    }
    if (token < 0 || token >= tok->n_vocab) {
        vwn_fail(VWN_ERR_TOKEN_OUT_OF_RANGE, "token_to_piece: token %d is outside the vocabulary [0, %d)",
                 (int)token, (int)tok->n_vocab);
        return INT32_MIN;
    }
    char byte_buf[1];
    const char *p;
    size_t n;
    if (tok->kind == VWN_TOKENIZER_BYTES) {
        byte_buf[0] = (char)token;
        p = byte_buf;
        n = 1;
    } else {
        p = out_of(tok, token);
        n = out_len(tok, token);
        if ((tok->flags[token] & F_CONTROL) && !special) n = 0;
    }
    if (n > (size_t)buf_len) return -(int32_t)n;
    if (n) memcpy(buf, p, n);
    return (int32_t)n;
}

vwn_tokenizer_kind vwn_tokenizer_kind_of(const vwn_tokenizer *tok) { return tok->kind; }
int32_t vwn_tokenizer_n_vocab(const vwn_tokenizer *tok) { return tok->n_vocab; }
int32_t vwn_tokenizer_bos(const vwn_tokenizer *tok) { return tok->bos; }
int32_t vwn_tokenizer_eos(const vwn_tokenizer *tok) { return tok->eos; }

bool vwn_tokenizer_is_eog(const vwn_tokenizer *tok, int32_t token) {
    if (!tok || token < 0 || token >= tok->n_vocab || tok->kind == VWN_TOKENIZER_BYTES) return false;
    return (tok->flags[token] & F_EOG) != 0;
}

bool vwn_tokenizer_is_control(const vwn_tokenizer *tok, int32_t token) {
    if (!tok || token < 0 || token >= tok->n_vocab || tok->kind == VWN_TOKENIZER_BYTES) return false;
    return (tok->flags[token] & F_CONTROL) != 0;
}

/* ---- the public functions (vwn.h) --------------------------------------------------------- */

/* The tokenizer of a model handle, or NULL with the error set. */
static const vwn_tokenizer *model_tokenizer(const vwn_model *model) {
    if (vwn_check_handle(model, VWN_MAGIC_MODEL, "model") != VWN_OK) return NULL;
    if (!model->tokenizer) {
        vwn_fail(VWN_ERR_INTERNAL, "the model has no tokenizer");
        return NULL;
    }
    return model->tokenizer;
}

vwn_tokenizer_kind vwn_tokenizer_get_kind(const vwn_model *model) {
    vwn_clear_error();
    const vwn_tokenizer *t = model_tokenizer(model);
    return t ? t->kind : (vwn_tokenizer_kind)-1;
}

int32_t vwn_token_bos(const vwn_model *model) {
    vwn_clear_error();
    const vwn_tokenizer *t = model_tokenizer(model);
    return t ? t->bos : -1;
}

int32_t vwn_token_eos(const vwn_model *model) {
    vwn_clear_error();
    const vwn_tokenizer *t = model_tokenizer(model);
    return t ? t->eos : -1;
}

bool vwn_token_is_eog(const vwn_model *model, int32_t token) {
    vwn_clear_error();
    const vwn_tokenizer *t = model_tokenizer(model);
    return t ? vwn_tokenizer_is_eog(t, token) : false;
}

bool vwn_token_is_control(const vwn_model *model, int32_t token) {
    vwn_clear_error();
    const vwn_tokenizer *t = model_tokenizer(model);
    return t ? vwn_tokenizer_is_control(t, token) : false;
}

int32_t vwn_tokenize(const vwn_model *model, const char *text, int32_t text_len, int32_t *tokens,
                     int32_t n_tokens_max, bool add_special, bool parse_special) {
    vwn_clear_error();
    const vwn_tokenizer *t = model_tokenizer(model);
    if (!t) return INT32_MIN;
    return vwn_tokenizer_tokenize(t, text, text_len, tokens, n_tokens_max, add_special, parse_special);
}

int32_t vwn_detokenize(const vwn_model *model, const int32_t *tokens, int32_t n_tokens, char *text,
                       int32_t text_len_max, bool remove_special) {
    vwn_clear_error();
    const vwn_tokenizer *t = model_tokenizer(model);
    if (!t) return INT32_MIN;
    return vwn_tokenizer_detokenize(t, tokens, n_tokens, text, text_len_max, remove_special);
}

int32_t vwn_token_to_piece(const vwn_model *model, int32_t token, char *buf, int32_t buf_len,
                           bool special) {
    vwn_clear_error();
    const vwn_tokenizer *t = model_tokenizer(model);
    if (!t) return INT32_MIN;
    return vwn_tokenizer_token_to_piece(t, token, buf, buf_len, special);
}
