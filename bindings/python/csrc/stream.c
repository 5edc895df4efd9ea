/* stream.c -- a token callback for vwn_generate that never enters Python (libvwnpy, bundled with the
 * Python package and loaded with ctypes; it does not link libvwn or Python).
 *
 * vwn.Context.generate() runs vwn_generate on a background thread with vwnpy_stream_callback as its
 * token callback: each kept token's text is appended to a buffer under a mutex, so the generation
 * loop never waits for the GIL or for the Python consumer. The consumer (the iterator) blocks in
 * vwnpy_stream_wait -- through ctypes, so without the GIL -- and takes whatever accumulated.
 *
 *   producer (C loop):   vwnpy_stream_callback for every token; vwnpy_stream_finish at the end
 *   consumer (Python):   vwnpy_stream_wait -> vwnpy_stream_take, until wait returns 0 (a timed
 *                        out wait returns 2, so Python can run its signal handlers)
 *   either:              vwnpy_stream_stop makes the next callback return false (stops the loop)
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__GNUC__) || defined(__clang__)
#define VWNPY_API __attribute__((visibility("default")))
#else
#define VWNPY_API
#endif

typedef struct vwnpy_stream {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *text;             /* pending text not yet taken   */
    size_t text_len, text_cap;
    int32_t *tokens;        /* pending token ids            */
    size_t n_tokens, tokens_cap;
    bool stop;              /* the consumer wants no more   */
    bool finished;          /* the producer is done         */
    bool waiting;           /* the consumer sleeps on cv    */
    bool out_of_memory;
    bool fast;              /* the previous wait did not block for batch_us: tokens come fast */
} vwnpy_stream;

VWNPY_API vwnpy_stream *vwnpy_stream_new(void) {
    vwnpy_stream *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        return NULL;
    }
    if (pthread_cond_init(&s->cv, NULL) != 0) {
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    return s;
}

VWNPY_API void vwnpy_stream_free(vwnpy_stream *s) {
    if (!s) return;
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->text);
    free(s->tokens);
    free(s);
}

/* Grows *buf to hold need elements of size elem. */
static bool reserve(void **buf, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 256;
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem) return false;
        c *= 2;
    }
    void *p = realloc(*buf, c * elem);
    if (!p) return false;
    *buf = p;
    *cap = c;
    return true;
}

/* The vwn_token_callback: user_data is the stream. Returns false (stop) once stop is set. */
VWNPY_API bool vwnpy_stream_callback(int32_t token, const char *piece, int32_t piece_len, void *user_data) {
    vwnpy_stream *s = user_data;
    pthread_mutex_lock(&s->mu);
    bool go = !s->stop;
    if (go) {
        const size_t n = piece_len > 0 ? (size_t)piece_len : 0;
        void *text = s->text, *tokens = s->tokens;
        if (!reserve(&text, &s->text_cap, s->text_len + n, 1) ||
            (token >= 0 && !reserve(&tokens, &s->tokens_cap, s->n_tokens + 1, sizeof(int32_t)))) {
            s->text = text;
            s->tokens = tokens;
            s->out_of_memory = true;
            go = false;
        } else {
            s->text = text;
            s->tokens = tokens;
            if (n) memcpy(s->text + s->text_len, piece, n);
            s->text_len += n;
            if (token >= 0) s->tokens[s->n_tokens++] = token;
            if (s->waiting) pthread_cond_signal(&s->cv);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return go;
}

VWNPY_API void vwnpy_stream_stop(vwnpy_stream *s) {
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_mutex_unlock(&s->mu);
}

VWNPY_API void vwnpy_stream_finish(vwnpy_stream *s) {
    pthread_mutex_lock(&s->mu);
    s->finished = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

VWNPY_API bool vwnpy_stream_out_of_memory(vwnpy_stream *s) {
    pthread_mutex_lock(&s->mu);
    bool oom = s->out_of_memory;
    pthread_mutex_unlock(&s->mu);
    return oom;
}

/* The pending sizes, without blocking. */
VWNPY_API void vwnpy_stream_sizes(vwnpy_stream *s, int64_t *out_text_len, int64_t *out_n_tokens) {
    pthread_mutex_lock(&s->mu);
    *out_text_len = (int64_t)s->text_len;
    *out_n_tokens = (int64_t)s->n_tokens;
    pthread_mutex_unlock(&s->mu);
}

/* now + us as an absolute CLOCK_REALTIME time, for pthread_cond_timedwait. */
static struct timespec deadline_after(int64_t us) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += (time_t)(us / 1000000);
    t.tv_nsec += (long)(us % 1000000) * 1000;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

static int64_t monotonic_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* Blocks until text or tokens are pending or the producer finished, or for at most timeout_us
 * microseconds when timeout_us > 0 (so the caller can look at its signals). Batching: first
 * batch_us are let pass -- cut short only by the end of the generation -- so that several tokens
 * are handed over per wake-up: always with always_batch (the consumer then wakes at most every
 * batch_us), else only while tokens come fast (the previous wait did not have to block for
 * batch_us) and nothing is pending on entry (a slow generation wakes the consumer once per token).
 * Sets the pending sizes; returns 0 when the stream is finished and drained, 2 on a timeout with
 * nothing pending, else 1. */
VWNPY_API int vwnpy_stream_wait(vwnpy_stream *s, int64_t batch_us, int always_batch, int64_t timeout_us,
                                int64_t *out_text_len, int64_t *out_n_tokens) {
    pthread_mutex_lock(&s->mu);
    const bool empty = s->text_len == 0 && s->n_tokens == 0;
    if (batch_us > 0 && !s->finished && (always_batch || (s->fast && empty))) {
        /* waiting stays false: new tokens do not signal, only vwnpy_stream_finish does */
        const struct timespec batch_end = deadline_after(batch_us);
        while (!s->finished && pthread_cond_timedwait(&s->cv, &s->mu, &batch_end) != ETIMEDOUT) {
        }
    }
    const int64_t t0 = monotonic_us();
    const struct timespec deadline = deadline_after(timeout_us > 0 ? timeout_us : 0);
    bool timed_out = false;
    while (s->text_len == 0 && s->n_tokens == 0 && !s->finished && !timed_out) {
        s->waiting = true;
        if (timeout_us > 0)
            timed_out = pthread_cond_timedwait(&s->cv, &s->mu, &deadline) == ETIMEDOUT;
        else
            pthread_cond_wait(&s->cv, &s->mu);
        s->waiting = false;
    }
    *out_text_len = (int64_t)s->text_len;
    *out_n_tokens = (int64_t)s->n_tokens;
    int rc = s->text_len > 0 || s->n_tokens > 0 ? 1 : s->finished ? 0 : 2;
    if (rc == 1) s->fast = monotonic_us() - t0 < batch_us;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Moves up to text_cap bytes and tokens_cap tokens of the pending data out (the rest stays). */
VWNPY_API void vwnpy_stream_take(vwnpy_stream *s, char *text, int64_t text_cap, int64_t *out_text_len,
                                 int32_t *tokens, int64_t tokens_cap, int64_t *out_n_tokens) {
    pthread_mutex_lock(&s->mu);
    size_t nt = s->text_len, nk = s->n_tokens;
    if (text_cap < 0) text_cap = 0;
    if (tokens_cap < 0) tokens_cap = 0;
    if (nt > (uint64_t)text_cap) nt = (size_t)text_cap;
    if (nk > (uint64_t)tokens_cap) nk = (size_t)tokens_cap;
    if (nt) {
        memcpy(text, s->text, nt);
        memmove(s->text, s->text + nt, s->text_len - nt);
        s->text_len -= nt;
    }
    if (nk) {
        memcpy(tokens, s->tokens, nk * sizeof(int32_t));
        memmove(s->tokens, s->tokens + nk, (s->n_tokens - nk) * sizeof(int32_t));
        s->n_tokens -= nk;
    }
    *out_text_len = (int64_t)nt;
    *out_n_tokens = (int64_t)nk;
    pthread_mutex_unlock(&s->mu);
}
