/* The cost of an OpenMP parallel region and of a barrier with 2 threads (libomp).
 * Build: clang -O2 -fopenmp=libomp forkcost.c -L/usr/lib/llvm-14/lib -Wl,-rpath,/usr/lib/llvm-14/lib */
#include <omp.h>
#include <stdio.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
volatile int sink;
int main(void) {
    for (int rep = 0; rep < 3; rep++) {
        const int N = 200000;
        double t0 = now();
        for (int i = 0; i < N; i++) {
#pragma omp parallel num_threads(2)
            { sink = omp_get_thread_num(); }
        }
        double t1 = now();
#pragma omp parallel num_threads(2)
        {
            for (int i = 0; i < N; i++) {
#pragma omp barrier
            }
        }
        double t2 = now();
        printf("region %.3f us, barrier %.3f us\n", (t1 - t0) / N, (t2 - t1) / N);
    }
}
