#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdint.h>
typedef uint64_t v2 __attribute__((vector_size(16)));
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
typedef struct { const v2 *p; size_t n; int S; uint64_t sum; } job;
static void *run(void *a) { job *j = a; size_t q = j->n / j->S; v2 s[8] = {{0}};
  const v2 *b[16]; for (int k = 0; k < j->S; k++) b[k] = j->p + k * q;
  for (size_t i = 0; i + 8 <= q; i += 8) for (int k = 0; k < j->S; k++) for (int u = 0; u < 8; u++) s[u] += b[k][i + u];
  for (int u = 1; u < 8; u++) s[0] += s[u]; j->sum = s[0][0] + s[0][1]; return NULL; }
int main(void) { size_t bytes = 1ul << 30; v2 *buf = aligned_alloc(4096, bytes); memset(buf, 1, bytes); size_t n = bytes / 16;
  for (int r = 0; r < 4; r++) for (int S = 1; S <= 16; S *= 2) { double best = 0;
    for (int pass = 0; pass < 3; pass++) { job j[2] = {{buf, n / 2, S, 0}, {buf + n / 2, n / 2, S, 0}}; pthread_t th;
      double t0 = now(); pthread_create(&th, NULL, run, &j[1]); run(&j[0]); pthread_join(th, NULL); double t = now() - t0;
      if (bytes / t / 1e9 > best) best = bytes / t / 1e9; }
    printf("2 threads, %d stream(s) each: %.1f GB/s\n", S, best); }
}
