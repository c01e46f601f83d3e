/* base.c — error buffers, logging, clocks, allocation and small buffer helpers (see base.h). */
#include "base.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int qe_errf(char *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, QE_ERR_LEN, fmt, ap);
        va_end(ap);
    }
    return code;
}

void qe_err_prefix(char *err, const char *fmt, ...) {
    if (!err) return;
    char prefix[QE_ERR_LEN], old[QE_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    snprintf(old, sizeof old, "%s", err);
    snprintf(err, QE_ERR_LEN, "%s: %s", prefix, old);
}

void qe_panic(const char *file, int line, const char *cond) {
    fprintf(stderr, "qwen-edge: internal error at %s:%d: assertion failed: %s\n", file, line, cond);
    abort();
}

qe_log_level qe_log_min = QE_LOG_INFO;

void qe_log(qe_log_level lvl, const char *fmt, ...) {
    if (lvl < qe_log_min) return;
    static const char *names[] = {"debug", "info", "warn", "error"};
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* one fprintf per line so lines from different threads do not interleave */
    fprintf(stderr, "[%s] %s\n", names[lvl], line);
}

uint64_t qe_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
double qe_now(void) { return (double)qe_now_ns() * 1e-9; }

/* The failure hook: fail_at is 0 (off) except in tests, so the fast path is one relaxed load and a branch
 * the predictor learns at once. When on, every call takes a ticket; the n-th (and with persist each later one)
 * fails. Atomics because the engine thread allocates (job events) while a test thread waits on it. */
static _Atomic long alloc_fail_at, alloc_calls, alloc_hits;
static _Atomic bool alloc_persist;

void qe_alloc_fail_at(long n, bool persist) {
    atomic_store(&alloc_fail_at, 0);
    atomic_store(&alloc_calls, 0);
    atomic_store(&alloc_hits, 0);
    atomic_store(&alloc_persist, persist);
    atomic_store(&alloc_fail_at, n > 0 ? n : 0);
}
long qe_alloc_fail_hits(void) { return atomic_load(&alloc_hits); }

static bool alloc_should_fail(void) {
    long at = atomic_load_explicit(&alloc_fail_at, memory_order_relaxed);
    if (__builtin_expect(at == 0, 1)) return false;
    long k = atomic_fetch_add(&alloc_calls, 1) + 1;
    if (k != at && !(k > at && atomic_load(&alloc_persist))) return false;
    atomic_fetch_add(&alloc_hits, 1);
    return true;
}

void *qe_malloc(size_t n) { return alloc_should_fail() ? NULL : malloc(n ? n : 1); }
void *qe_calloc(size_t n, size_t size) { return alloc_should_fail() ? NULL : calloc(n ? n : 1, size ? size : 1); }
void *qe_realloc(void *p, size_t n) { return alloc_should_fail() ? NULL : realloc(p, n ? n : 1); }
void *qe_aligned_alloc(size_t align, size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, align, n ? n : align) != 0) return NULL;
    return p;
}

bool qe_str_eq(qe_str s, const char *z) { size_t n = strlen(z); return s.n == n && memcmp(s.p, z, n) == 0; }

int qe_buf_append(qe_buf *b, const void *data, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = qe_realloc(b->p, cap);
        if (!p) return QE_ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = 0;
    return QE_OK;
}

int qe_buf_printf(qe_buf *b, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return QE_ERR;
    if ((size_t)n < sizeof tmp) return qe_buf_append(b, tmp, (size_t)n);
    char *big = qe_malloc((size_t)n + 1);
    if (!big) return QE_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = qe_buf_append(b, big, (size_t)n);
    free(big);
    return rc;
}

void qe_buf_free(qe_buf *b) { free(b->p); b->p = NULL; b->n = b->cap = 0; }

int qe_read_file(const char *path, char **out, size_t *len, char *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return qe_errf(err, QE_EIO, "%s: %s", path, strerror(errno));
    qe_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (qe_buf_append(&b, chunk, n) != QE_OK) { fclose(f); qe_buf_free(&b); return qe_errf(err, QE_ENOMEM, "%s: out of memory", path); }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) { qe_buf_free(&b); return qe_errf(err, QE_EIO, "%s: read error", path); }
    if (!b.p && qe_buf_append(&b, "", 0) != QE_OK) return qe_errf(err, QE_ENOMEM, "out of memory");
    *out = b.p;
    if (len) *len = b.n;
    return QE_OK;
}

int qe_file_commit(FILE **out, char *part, const char *final_path, char *err) {
    int bad = fflush(*out) != 0 || fsync(fileno(*out)) != 0;
    bad |= fclose(*out) != 0;
    *out = NULL;
    if (bad) return qe_errf(err, QE_EIO, "writing %s failed (disk full?)", part);
    if (rename(part, final_path) != 0) return qe_errf(err, QE_EIO, "cannot rename %s: %s", part, strerror(errno));
    part[0] = 0;
    return QE_OK;
}

int qe_physical_cores(void) {
    /* Count distinct (physical id, core id) pairs; SMT siblings share a core and its caches, and the
     * matmul kernels gain nothing from them. Falls back to the online CPU count. */
    FILE *f = fopen("/proc/cpuinfo", "r");
    int n_online = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n_online < 1) n_online = 1;
    if (!f) return n_online;
    char line[256];
    int phys = -1, seen = 0;
    int pairs[1024][2];
    while (fgets(line, sizeof line, f)) {
        int v;
        if (sscanf(line, "physical id : %d", &v) == 1) phys = v;
        else if (sscanf(line, "core id : %d", &v) == 1) {
            int dup = 0;
            for (int i = 0; i < seen; i++) if (pairs[i][0] == phys && pairs[i][1] == v) { dup = 1; break; }
            if (!dup && seen < 1024) { pairs[seen][0] = phys; pairs[seen][1] = v; seen++; }
        }
    }
    fclose(f);
    return seen > 0 && seen <= n_online ? seen : n_online;
}
