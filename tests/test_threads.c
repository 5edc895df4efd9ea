/* test_threads.c -- the process-wide compute-thread budget (lib/common.c): contexts that decode at
 * the same time share the cores instead of oversubscribing them. */
#include "common.h"
#include "vt.h"

#include <unistd.h>

int main(void) {
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    const int cores = c < 1 ? 1 : (int)c;

    /* alone: a caller gets what it asks for, up to the number of cores */
    int a = vwn_threads_acquire(cores + 5);
    CHECK(a == cores);
    /* the cores are taken: a second caller still gets one thread, never zero */
    int b = vwn_threads_acquire(4);
    CHECK(b == 1);
    vwn_threads_release(b);
    vwn_threads_release(a);

    /* half and half */
    int h1 = vwn_threads_acquire(cores);
    vwn_threads_release(h1);
    int x = vwn_threads_acquire(1), y = vwn_threads_acquire(cores);
    CHECK(x == 1);
    CHECK(y == (cores > 1 ? cores - 1 : 1));
    vwn_threads_release(y);
    vwn_threads_release(x);

    /* everything given back: the full budget is there again */
    int z = vwn_threads_acquire(cores);
    CHECK(z == cores);
    vwn_threads_release(z);
    CHECK(vwn_threads_acquire(0) == 1);
    vwn_threads_release(1);
    return vt_finish("test_threads");
}
