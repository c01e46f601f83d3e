/* threadpool.c — persistent workers: spin-then-sleep, one generation counter per job (see threadpool.h). */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "base.h"

struct qe_pool {
    int n;
    pthread_t *threads;
    qe_pool_fn fn;
    void *ctx;
    _Atomic uint64_t generation; /* bumped once per job; workers wait for it to change */
    _Atomic int pending;         /* workers still running the current job */
    _Atomic int stop;
    _Atomic int sleepers;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

typedef struct { qe_pool *pool; int ith; } worker_arg;

static inline void cpu_relax(void) {
#if defined(__x86_64__)
    _mm_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* How long a worker spins for the next job before sleeping: long enough to cover the gap between two
 * matmuls of one forward pass, short enough that an idle server drops to 0 % CPU at once. */
#define SPIN_ITERS 200000
/* After this many pauses a waiting thread yields its core on every further iteration: when the machine is busier
 * than our thread count (a laptop running other programs), the thread we wait for may be descheduled, and pure
 * spinning would burn the very time slice it needs (measured here under load: 2-thread decode fell from 10 to 2
 * tok/s without yielding). */
#define YIELD_AFTER 4096

static inline void wait_a_little(int *spins) {
    if (++*spins < YIELD_AFTER) cpu_relax();
    else sched_yield();
}

static void *worker_main(void *p) {
    worker_arg a = *(worker_arg *)p;
    free(p);
    qe_pool *pool = a.pool;
    uint64_t seen = 0;
    for (;;) {
        uint64_t g;
        int spins = 0;
        while ((g = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen &&
               !atomic_load(&pool->stop)) {
            if (spins < SPIN_ITERS) { wait_a_little(&spins); continue; }
            pthread_mutex_lock(&pool->mu);
            atomic_fetch_add(&pool->sleepers, 1);
            while (atomic_load(&pool->generation) == seen && !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->cv, &pool->mu);
            atomic_fetch_sub(&pool->sleepers, 1);
            pthread_mutex_unlock(&pool->mu);
        }
        if (atomic_load(&pool->stop)) return NULL;
        seen = g;
        pool->fn(pool->ctx, a.ith, pool->n);
        atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_acq_rel);
    }
}

qe_pool *qe_pool_new(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    qe_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->n = n_threads;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cv, NULL);
    pool->threads = calloc((size_t)n_threads, sizeof(pthread_t));
    if (!pool->threads) { free(pool); return NULL; }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *a = malloc(sizeof *a);
        if (!a) { pool->n = i; qe_pool_free(pool); return NULL; }
        a->pool = pool;
        a->ith = i;
        if (pthread_create(&pool->threads[i], NULL, worker_main, a) != 0) {
            free(a);
            pool->n = i;
            qe_pool_free(pool);
            return NULL;
        }
    }
    return pool;
}

void qe_pool_free(qe_pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->stop, 1);
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 1; i < pool->n; i++) pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->cv);
    free(pool->threads);
    free(pool);
}

int qe_pool_size(const qe_pool *pool) { return pool ? pool->n : 1; }

void qe_pool_run(qe_pool *pool, qe_pool_fn fn, void *ctx) {
    if (!pool || pool->n == 1) { fn(ctx, 0, 1); return; }
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store_explicit(&pool->pending, pool->n - 1, memory_order_release);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_acq_rel);
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->cv);
        pthread_mutex_unlock(&pool->mu);
    }
    fn(ctx, 0, pool->n);
    int spins = 0;
    while (atomic_load_explicit(&pool->pending, memory_order_acquire) > 0) wait_a_little(&spins);
}
