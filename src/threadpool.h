/* threadpool.h — persistent worker threads for the forward pass.
 *
 * qe_pool_run(pool, fn, ctx) calls fn(ctx, ith, nth) on every thread (the caller is thread 0) and returns
 * when all have finished. Workers spin briefly after a job (the next matmul usually follows within
 * microseconds) and then sleep on a condition variable, so an idle server uses no CPU.
 * One pool is driven by one thread at a time (the engine thread). */
#pragma once
#include <stdint.h>

typedef struct qe_pool qe_pool;
typedef void (*qe_pool_fn)(void *ctx, int ith, int nth);

qe_pool *qe_pool_new(int n_threads); /* n_threads >= 1 (including the caller); NULL on failure */
void qe_pool_free(qe_pool *pool);    /* NULL is fine */
int qe_pool_size(const qe_pool *pool);
void qe_pool_run(qe_pool *pool, qe_pool_fn fn, void *ctx);

/* Splits [0, n) into nth nearly equal ranges, each a multiple of `align` except the last. */
static inline void qe_split(int64_t n, int64_t align, int ith, int nth, int64_t *lo, int64_t *hi) {
    int64_t blocks = (n + align - 1) / align;
    int64_t b0 = blocks * ith / nth, b1 = blocks * (ith + 1) / nth;
    *lo = b0 * align < n ? b0 * align : n;
    *hi = b1 * align < n ? b1 * align : n;
}
