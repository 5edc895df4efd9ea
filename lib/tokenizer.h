/* tokenizer.h -- the tokenizers stored in a model file: bytes, gpt2 (byte-level BPE), llama (SPM BPE).
 * Implementation in tokenizer.c; public entry points vwn_tokenize & co. are defined there too.
 *
 * A vwn_tokenizer is immutable once built, so one can be shared by threads; every function below
 * allocates its scratch per call. */
#ifndef VWN_TOKENIZER_H
#define VWN_TOKENIZER_H

#include "vwn.h"
#include "gguf.h"   /* gguf_str */

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

struct gguf_file;
typedef struct vwn_tokenizer vwn_tokenizer;

/* Builds the tokenizer from the tokenizer.ggml.* keys; n_vocab is the model's V (the token list must
 * match it). Missing tokenizer.ggml.model means "bytes" (requires V == 256). Errors: BAD_MODEL,
 * UNSUPPORTED, OUT_OF_MEMORY (with vwn_fail messages). */
vwn_status vwn_tokenizer_load(const struct gguf_file *f, int32_t n_vocab, vwn_tokenizer **out);
void vwn_tokenizer_free(vwn_tokenizer *tok);

/* ---- internal: building from arrays (what vwn_tokenizer_load does after reading the keys; the
 * tests use it directly). Pointers are only read during the call. ---- */

/* llama.cpp token types (tokenizer.ggml.token_type) */
enum {
    VWN_TOKEN_TYPE_UNDEFINED = 0, VWN_TOKEN_TYPE_NORMAL = 1, VWN_TOKEN_TYPE_UNKNOWN = 2,
    VWN_TOKEN_TYPE_CONTROL = 3, VWN_TOKEN_TYPE_USER_DEFINED = 4, VWN_TOKEN_TYPE_UNUSED = 5,
    VWN_TOKEN_TYPE_BYTE = 6
};

typedef struct vwn_tokenizer_data {
    gguf_str model;                 /* "bytes", "gpt2" or "llama"                        */
    int32_t n_vocab;                /* V of the model                                     */
    const gguf_str *tokens;         /* NULL: absent                                       */
    uint64_t n_tokens;
    const float *scores;            /* NULL: absent                                       */
    uint64_t n_scores;
    const int32_t *types;           /* NULL: absent                                       */
    uint64_t n_types;
    const gguf_str *merges;         /* NULL: absent                                       */
    uint64_t n_merges;
    int64_t bos, eos, unk, pad;     /* -1: absent                                         */
    int add_bos;                    /* -1: absent (default: llama yes, gpt2 no), 0, 1     */
} vwn_tokenizer_data;

/* An empty description (every optional part absent). */
vwn_tokenizer_data vwn_tokenizer_data_init(void);
vwn_status vwn_tokenizer_build(const vwn_tokenizer_data *d, vwn_tokenizer **out);

/* ---- internal: the operations behind the public functions (same conventions as in vwn.h) ---- */
vwn_tokenizer_kind vwn_tokenizer_kind_of(const vwn_tokenizer *tok);
int32_t vwn_tokenizer_n_vocab(const vwn_tokenizer *tok);
int32_t vwn_tokenizer_bos(const vwn_tokenizer *tok);
int32_t vwn_tokenizer_eos(const vwn_tokenizer *tok);
bool vwn_tokenizer_is_eog(const vwn_tokenizer *tok, int32_t token);
bool vwn_tokenizer_is_control(const vwn_tokenizer *tok, int32_t token);

/* Tokenizes into a new vwn_malloc'd array (*out_tokens, *out_n; free with vwn_free). */
vwn_status vwn_tokenizer_encode(const vwn_tokenizer *tok, const char *text, size_t text_len,
                                bool add_special, bool parse_special, int32_t **out_tokens,
                                size_t *out_n);
int32_t vwn_tokenizer_tokenize(const vwn_tokenizer *tok, const char *text, int32_t text_len,
                               int32_t *tokens, int32_t n_tokens_max, bool add_special,
                               bool parse_special);
int32_t vwn_tokenizer_detokenize(const vwn_tokenizer *tok, const int32_t *tokens, int32_t n_tokens,
                                 char *text, int32_t text_len_max, bool remove_special);
int32_t vwn_tokenizer_token_to_piece(const vwn_tokenizer *tok, int32_t token, char *buf,
                                     int32_t buf_len, bool special);

/* gpt2: byte length of the pre-token (a match of the GPT-2 regex) that starts at s[i], i < n. */
size_t vwn_gpt2_pretoken(const uint8_t *s, size_t n, size_t i);

#endif
