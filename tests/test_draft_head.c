/* test_draft_head.c -- the draft head (lib/model.c vwn_model_draft_head): vwn_generate's speculative
 * loop drafts a float output head through a Q8_0 copy of it, made on its first draft and kept with
 * the model. Checked here: the copy is made by that loop and by nothing else (not by the public
 * vwn_draft, not with VWN_DRAFT_HEAD=exact); it is lm_head quantized to Q8_0, row for row (every
 * value within Q8_0's rounding), from F32, F16 and BF16 heads; and the loop's output is plain
 * greedy decoding's either way. */
#define _GNU_SOURCE
#include "vwn.h"
#include "vt.h"
#include "test_models.h"
#include "model.h"

enum { N_GEN = 48, CTX = 128 };

typedef struct {
    int32_t tok[N_GEN + 8];
    int n;
} tokens;

static bool collect(int32_t token, const char *piece, int32_t len, void *user) {
    (void)piece, (void)len;
    tokens *t = user;
    if (token >= 0 && t->n < N_GEN + 8) t->tok[t->n++] = token; /* -1: the final flush of held-back text */
    return true;
}

/* N_GEN greedy tokens after the prompt, speculative at depth spec (0: plain), in a fresh context. */
static tokens generate(const vwn_model *m, int32_t spec) {
    tokens t = {{0}, 0};
    vwn_context *ctx = tm_context(m, tm_params(CTX, 16, true, false));
    if (!ctx) return t;
    static const int32_t prompt[5] = {3, 1, 4, 1, 5};
    vwn_generate_params gp = vwn_generate_default_params();
    gp.n_predict = N_GEN;
    gp.spec_depth = spec;
    gp.stop_at_eog = false;
    gp.callback = collect;
    gp.user_data = &t;
    vwn_generate_stats st;
    CHECK_OK(vwn_generate_tokens(ctx, prompt, 5, &gp, &st));
    vwn_context_free(ctx);
    return t;
}

static const vwn_mat *draft_head(const vwn_model *m) { return atomic_load(&((vwn_model *)m)->draft_head); }

/* Every value of the Q8_0 copy h within Q8_0's rounding of W's: half a step of its block's scale,
 * plus the fp16 rounding of the scale times the quant (at most 127 x 2^-11 of a step). */
static int copy_errors(const vwn_mat *W, const vwn_mat *h) {
    float *w = malloc(sizeof(float) * (size_t)W->cols), *q = malloc(sizeof(float) * (size_t)W->cols);
    int bad = 0;
    for (int64_t r = 0; r < W->rows; r++) {
        vwn_dequant_row(W->type, (const char *)W->data + (size_t)r * W->row_bytes, w, W->cols);
        vwn_dequant_row(h->type, (const char *)h->data + (size_t)r * h->row_bytes, q, h->cols);
        const vwn_block_q8_0 *blk = (const vwn_block_q8_0 *)((const char *)h->data + (size_t)r * h->row_bytes);
        for (int64_t c = 0; c < W->cols; c++) {
            const float d = fabsf(vwn_fp16_to_fp32(blk[c / 32].d));
            bad += !(fabsf(q[c] - w[c]) <= 0.57f * d + 1e-7f);
        }
    }
    free(w), free(q);
    return bad;
}

/* An F16 or BF16 head (the model's F32 head narrowed, put in its place): the copy is made from
 * its rows, by the model's own function. */
static void test_half_head(const gw_config *cfg, int32_t type) {
    vwn_model *m = tm_model(cfg, 12);
    if (!m) return;
    const vwn_mat f32 = m->lm_head;
    const size_t row_bytes = (size_t)f32.cols * 2;
    uint16_t *half = malloc(row_bytes * (size_t)f32.rows);
    float *row = malloc(sizeof(float) * (size_t)f32.cols);
    for (int64_t r = 0; r < f32.rows; r++) {
        vwn_dequant_row(f32.type, (const char *)f32.data + (size_t)r * f32.row_bytes, row, f32.cols);
        for (int64_t c = 0; c < f32.cols; c++)
            half[r * f32.cols + c] = type == VWN_TYPE_F16 ? vwn_fp32_to_fp16(row[c]) : vwn_fp32_to_bf16(row[c]);
    }
    m->lm_head = (vwn_mat){half, type, f32.rows, f32.cols, row_bytes, NULL};
    const vwn_mat *h = vwn_model_draft_head(m, vwn_ops_best(), 2);
    CHECK(h != &m->lm_head && h == draft_head(m) && h->type == VWN_TYPE_Q8_0);
    if (h != &m->lm_head) CHECK_MSG(copy_errors(&m->lm_head, h) == 0, "type %d: the copy is not the head", type);
    CHECK(vwn_model_draft_head(m, vwn_ops_best(), 2) == h); /* made once */
    m->lm_head = f32;
    vwn_model_free(m);
    free(half), free(row);
}

int main(void) {
    const gw_config cfg = gw_config_default(); /* F32 weights, two MTP modules */
    vwn_model *m = tm_model(&cfg, 11);
    if (!m) return 1;
    CHECK(m->lm_head.type == VWN_TYPE_F32);
    const tokens plain = generate(m, 0);
    CHECK(plain.n == N_GEN);

    /* the public vwn_draft drafts through lm_head: no copy */
    vwn_context *ctx = tm_context(m, tm_params(CTX, 16, true, false));
    static const int32_t prompt[5] = {3, 1, 4, 1, 5};
    int32_t drafts[4], kept[8], n_kept = 0;
    CHECK_OK(vwn_decode(ctx, prompt, 5));
    CHECK_OK(vwn_draft(ctx, plain.tok[0], 2, NULL, drafts, NULL, NULL));
    CHECK_OK(vwn_verify(ctx, NULL, kept, &n_kept));
    vwn_context_free(ctx);
    CHECK(draft_head(m) == NULL);

    /* VWN_DRAFT_HEAD=exact: the loop drafts through lm_head too */
    setenv("VWN_DRAFT_HEAD", "exact", 1);
    const tokens exact = generate(m, 2);
    unsetenv("VWN_DRAFT_HEAD");
    CHECK(draft_head(m) == NULL);
    CHECK(exact.n == N_GEN && memcmp(exact.tok, plain.tok, sizeof(int32_t) * N_GEN) == 0);

    /* the loop: the copy is made, and the output is still plain greedy decoding's */
    const tokens fast = generate(m, 2);
    CHECK(fast.n == N_GEN && memcmp(fast.tok, plain.tok, sizeof(int32_t) * N_GEN) == 0);
    const vwn_mat *h = draft_head(m);
    CHECK(h != NULL);
    if (h) {
        const vwn_mat *W = &m->lm_head;
        CHECK(h->type == VWN_TYPE_Q8_0 && h->rows == W->rows && h->cols == W->cols);
        CHECK(h->row_bytes == (size_t)(W->cols / 32) * sizeof(vwn_block_q8_0));
        CHECK_MSG(copy_errors(W, h) == 0, "the draft head is not lm_head within Q8_0's rounding");
    }
    /* a second loop uses the same copy */
    const tokens again = generate(m, 1);
    CHECK(again.n == N_GEN && memcmp(again.tok, plain.tok, sizeof(int32_t) * N_GEN) == 0);
    CHECK(draft_head(m) == h);
    vwn_model_free(m);

    test_half_head(&cfg, VWN_TYPE_F16);
    test_half_head(&cfg, VWN_TYPE_BF16);
    return vt_finish("test_draft_head");
}
