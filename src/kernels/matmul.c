/* matmul.c — qe_mat preparation and the threaded matmul driver (see matmul.h). The arithmetic lives in
 * matmul_ref.c (reference, every type) and matmul_<isa>.c (packed fast paths); this file quantises the
 * activations once per call, hands chunks of rows to the pool's threads and dispatches to the set that packed
 * the matrix (qe_mat.packer), or to the reference. */
#include "kernels/matmul.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base.h"
#include "kernels/kern.h"
#include "quant.h"

/* The mapping qe_kern_release_source looked up last: valid during one qe_mat_init only (reset there), since an
 * unmapped range can come back later as anonymous memory, where dropping pages would zero data. */
static __thread uintptr_t c_lo, c_hi;
static __thread int c_ok;

int qe_mat_init(qe_mat *m, int type, int64_t rows, int64_t cols, const void *data, char *err) {
    memset(m, 0, sizeof *m);
    int rounding;
    const qe_type_traits *tr = qe_type_traits_get(type);
    if (qe_act_fmt_for(type, &rounding) < 0)
        return qe_errf(err, QE_EUNSUPPORTED, "matmul: weight type %s (%d) is not supported", qe_type_name(type), type);
    int bs = tr->block_size;
    if (rows <= 0 || cols <= 0 || cols % bs || (cols % 32 && bs != 1))
        return qe_errf(err, QE_EUNSUPPORTED, "matmul: %s matrix of %lld x %lld: columns must be a multiple of %d",
                       qe_type_name(type), (long long)rows, (long long)cols, bs);
    m->type = type;
    m->rows = rows;
    m->cols = cols;
    m->data = data;
    c_lo = c_hi = 0; /* forget the mapping looked up for the previous matrix */
    const qe_kernel_set *ks = qe_kernels_active();
    if (ks && ks->pack) {
        int rc = ks->pack(m);
        if (rc < 0) return qe_errf(err, QE_ENOMEM, "matmul: out of memory repacking a %lld x %lld %s matrix",
                                   (long long)rows, (long long)cols, qe_type_name(type));
    }
    if (m->packed) qe_kern_release_source(data, qe_row_size(type, cols) * (size_t)rows);
    return QE_OK;
}

#define HUGE_PAGE (2u << 20)

/* Whether p lies in a private, read-only file mapping (the model file): only there is dropping pages safe and
 * cheap — MADV_DONTNEED unmaps them from this process while the page cache keeps them (a later touch, or the
 * next run, reads them back from memory). On anonymous memory it would zero the data, so it is never used
 * there. The answer for the last mapping looked up is cached (packing asks once per 64 panels). */
static int in_private_file_mapping(uintptr_t a, uintptr_t *vma_hi) {
    if (a >= c_lo && a < c_hi) { *vma_hi = c_hi; return c_ok; }
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return 0;
    char line[512];
    int ok = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi, off, inode;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s %lx %*s %lu", &lo, &hi, perms, &off, &inode) != 5) continue;
        if (a < lo || a >= hi) continue;
        ok = inode != 0 && perms[1] == '-' && perms[3] == 'p';
        c_lo = lo; c_hi = hi; c_ok = ok;
        *vma_hi = hi;
        break;
    }
    fclose(f);
    return ok;
}

void qe_kern_release_source(const void *p, size_t bytes) {
    if (getenv("QE_KEEP_SOURCE")) return; /* debugging knob: keep the mapped weights resident */
    uintptr_t pg = 4096, lo = ((uintptr_t)p + pg - 1) & ~(pg - 1), hi = ((uintptr_t)p + bytes) & ~(pg - 1), vma_hi;
    if (hi <= lo || !in_private_file_mapping(lo, &vma_hi)) return;
    if (hi > vma_hi) hi = vma_hi;
    madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

void *qe_kern_packed_alloc(size_t bytes) {
    if (bytes < (1u << 20)) return qe_aligned_alloc(64, bytes);
    /* mmap with room to align the start to 2 MiB; the slop is unmapped again. */
    size_t len = (bytes + 4095) & ~(size_t)4095;
    uint8_t *p = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    uint8_t *a = (uint8_t *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (a > p) munmap(p, (size_t)(a - p));
    if (a + len < p + len + HUGE_PAGE) munmap(a + len, (size_t)(p + len + HUGE_PAGE - (a + len)));
#ifdef MADV_HUGEPAGE
    madvise(a, len, MADV_HUGEPAGE); /* a hint: fine if transparent huge pages are off */
#endif
    return a;
}

void qe_kern_packed_free(void *p, size_t bytes) {
    if (!p) return;
    if (bytes < (1u << 20)) free(p);
    else munmap(p, (bytes + 4095) & ~(size_t)4095);
}

void qe_mat_free(qe_mat *m) {
    if (!m) return;
    qe_kern_packed_free(m->packed, m->packed_bytes);
    m->packed = NULL;
    m->packed_bytes = 0;
    m->packer = NULL;
}

void qe_mat_row_f32(const qe_mat *m, int64_t row, float *out) {
    QE_ASSERT(row >= 0 && row < m->rows);
    const qe_kernel_set *ks = m->packer;
    if (ks && ks->row_f32) { ks->row_f32(m, row, out); return; }
    qe_type_traits_get(m->type)->to_float((const uint8_t *)m->data + (size_t)row * qe_row_size(m->type, m->cols), out,
                                          m->cols);
}

/* --- workspace ------------------------------------------------------------------------------------------- */

struct qe_matmul_ws {
    int max_tokens;
    int64_t max_cols;
    size_t bytes;
    uint8_t *buf;
};

qe_matmul_ws *qe_matmul_ws_new(int max_tokens, int64_t max_cols) {
    if (max_tokens < 1 || max_cols < 1) return NULL;
    qe_matmul_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    /* Room for the largest format, as rows or as groups of QE_ACT_TILE tokens. */
    size_t row = 0;
    for (int f = QE_ACT_F32; f <= QE_ACT_Q8K; f++) {
        size_t b = qe_act_row_bytes(f, max_cols), g = (qe_act_tile_bytes(f, max_cols) + QE_ACT_TILE - 1) / QE_ACT_TILE;
        if (b > row) row = b;
        if (g > row) row = g;
    }
    uint64_t total, groups = ((uint64_t)max_tokens + QE_ACT_TILE - 1) / QE_ACT_TILE;
    if (!qe_mul_ok(row, groups * QE_ACT_TILE, &total)) { free(ws); return NULL; }
    ws->buf = qe_aligned_alloc(64, total);
    if (!ws->buf) { free(ws); return NULL; }
    ws->max_tokens = max_tokens;
    ws->max_cols = max_cols;
    ws->bytes = total;
    return ws;
}

void qe_matmul_ws_free(qe_matmul_ws *ws) {
    if (!ws) return;
    free(ws->buf);
    free(ws);
}

/* --- quantising the activations (parallel over tokens) ------------------------------------------------ */

typedef struct {
    const float *x;
    int64_t ldx;
    int n, rounding;
    const qe_kernel_set *ks;
    qe_act a;
} quant_job;

static void quant_rows(void *p, int ith, int nth) {
    quant_job *j = p;
    const qe_kernel_set *ks = j->ks;
    int64_t lo, hi;
    qe_split(j->n, 1, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        const float *x = j->x + t * j->ldx;
        if (j->a.tiled) {
            uint8_t *g = j->a.base + (size_t)(t / QE_ACT_TILE) * j->a.tile_bytes;
            ks->quant_tiled(x, j->a.cols, j->a.fmt, j->rounding, g, (int)(t % QE_ACT_TILE));
            continue;
        }
        uint8_t *row = j->a.base + (size_t)t * j->a.stride;
        switch (j->a.fmt) {
        case QE_ACT_F32:
            if (ks && ks->quant_f32) ks->quant_f32(x, j->a.cols, j->rounding, row);
            else qe_quant_row_f32_ref(x, j->a.cols, j->rounding, row);
            break;
        case QE_ACT_Q8:
            if (ks && ks->quant_q8) ks->quant_q8(x, j->a.cols, row);
            else qe_quant_row_q8_ref(x, j->a.cols, row);
            break;
        case QE_ACT_Q8K: qe_quant_row_q8k_ref(x, j->a.cols, row); break;
        }
    }
}

/* The activation format matrix m's kernel reads: tiled for a packed matrix whose set wants it. */
static int wants_tiled(const qe_mat *m) {
    const qe_kernel_set *ks = m->packer;
    return ks && ks->quant_tiled;
}

static qe_act quantise(qe_pool *pool, qe_matmul_ws *ws, const qe_mat *m, const float *x, int64_t ldx, int n) {
    int64_t cols = m->cols;
    QE_ASSERT(n >= 0 && n <= ws->max_tokens && cols <= ws->max_cols);
    quant_job j = {.x = x, .ldx = ldx, .n = n, .ks = wants_tiled(m) ? m->packer : qe_kernels_active()};
    j.a.fmt = qe_act_fmt_for(m->type, &j.rounding);
    j.a.tiled = wants_tiled(m);
    j.a.tile_bytes = qe_act_tile_bytes(j.a.fmt, cols);
    j.a.cols = cols;
    j.a.cols_pad = (cols + 63) / 64 * 64;
    j.a.stride = qe_act_row_bytes(j.a.fmt, cols);
    j.a.base = ws->buf;
    /* Splitting a few tokens across threads costs more than it saves. */
    if (n * cols >= 16384 && qe_pool_size(pool) > 1) qe_pool_run(pool, quant_rows, &j);
    else quant_rows(&j, 0, 1);
    return j.a;
}

/* --- the row-split matmul ---------------------------------------------------------------------------- */

static void mm_ref_rows(const qe_mat *m, const qe_act *a, int n, float *y, int64_t ldy, const float *bias,
                        int accumulate, int64_t r0, int64_t r1) {
    size_t rb = qe_row_size(m->type, m->cols);
    for (int64_t r = r0; r < r1; r++) {
        const void *w = (const uint8_t *)m->data + (size_t)r * rb;
        for (int t = 0; t < n; t++) {
            float *yy = y + t * ldy + r;
            *yy = qe_epilogue(qe_dot_ref(m->type, w, a, t), yy, bias, r, accumulate);
        }
    }
}

/* Rows are handed out in chunks through an atomic counter rather than split once per thread: on a machine
 * where other programs (or a hypervisor) steal a core for a moment, a static half would leave the other thread
 * waiting at the end of every matmul, and decode runs hundreds of matmuls per token. A chunk is a few row
 * panels: big enough that the counter costs nothing next to streaming it, small enough to balance. */
#define CHUNK_ROWS_MIN 64

static int64_t chunk_rows(const qe_mat *m, int nth) {
    const qe_kernel_set *ks = m->packer;
    int64_t align = ks ? ks->row_align : 1, rows = CHUNK_ROWS_MIN;
    /* at least ~8 chunks per thread where the matrix allows, never below CHUNK_ROWS_MIN */
    while (rows * 2 * 8 * nth <= m->rows) rows *= 2;
    return (rows + align - 1) / align * align;
}

static void mm_range(const qe_mat *m, const qe_act *a, int n, float *y, int64_t ldy, const float *bias,
                     int accumulate, int64_t lo, int64_t hi) {
    const qe_kernel_set *ks = m->packer;
    if (ks) ks->mm(m, a, n, y, ldy, bias, accumulate, lo, hi);
    else mm_ref_rows(m, a, n, y, ldy, bias, accumulate, lo, hi);
}

#define MAX_MULTI 8

typedef struct {
    int n_mats, n;
    const qe_mat *w[MAX_MULTI];
    float *y[MAX_MULTI];
    int64_t ldy[MAX_MULTI];
    const float *bias[MAX_MULTI];
    int accumulate;
    qe_act a;
    int64_t chunk[MAX_MULTI];      /* rows per chunk of each matrix */
    int64_t first_chunk[MAX_MULTI + 1]; /* chunk numbering across the matrices, in order */
    _Atomic int64_t next_chunk;
} mm_job;

static void mm_task(void *p, int ith, int nth) {
    mm_job *j = p;
    int i = 0;
    for (;;) {
        int64_t c = atomic_fetch_add_explicit(&j->next_chunk, 1, memory_order_relaxed);
        if (c >= j->first_chunk[j->n_mats]) return;
        while (c >= j->first_chunk[i + 1]) i++;
        int64_t lo = (c - j->first_chunk[i]) * j->chunk[i], hi = lo + j->chunk[i];
        if (hi > j->w[i]->rows) hi = j->w[i]->rows;
        mm_range(j->w[i], &j->a, j->n, j->y[i], j->ldy[i], j->bias[i], j->accumulate, lo, hi);
    }
}

/* Numbers the chunks of the job's matrices and runs it. */
static void mm_run(qe_pool *pool, mm_job *j) {
    int nth = qe_pool_size(pool);
    j->first_chunk[0] = 0;
    for (int i = 0; i < j->n_mats; i++) {
        j->chunk[i] = chunk_rows(j->w[i], nth);
        j->first_chunk[i + 1] = j->first_chunk[i] + (j->w[i]->rows + j->chunk[i] - 1) / j->chunk[i];
    }
    atomic_store_explicit(&j->next_chunk, 0, memory_order_relaxed);
    qe_pool_run(pool, mm_task, j);
}

void qe_matmul(qe_pool *pool, qe_matmul_ws *ws, const qe_mat *w, const float *x, int64_t ldx, int n,
               float *y, int64_t ldy, const float *bias, int flags) {
    if (n <= 0) return;
    mm_job j = {.n_mats = 1, .n = n, .w = {w}, .y = {y}, .ldy = {ldy}, .bias = {bias},
                .accumulate = (flags & QE_MM_ACCUMULATE) != 0};
    j.a = quantise(pool, ws, w, x, ldx, n);
    mm_run(pool, &j);
}

void qe_matmul_multi(qe_pool *pool, qe_matmul_ws *ws, int n_mats, const qe_mat *const *w, const float *x,
                     int64_t ldx, int n, float *const *y, const int64_t *ldy, const float *const *bias) {
    if (n <= 0) return;
    /* Matrices whose types want the same activation format share one quantisation; the common case (all
     * one format) is a single quantise + a single pool job. */
    int done[MAX_MULTI] = {0};
    for (int i0 = 0; i0 < n_mats; i0 += MAX_MULTI) {
        int cnt = n_mats - i0 < MAX_MULTI ? n_mats - i0 : MAX_MULTI;
        memset(done, 0, sizeof done);
        for (int i = 0; i < cnt; i++) {
            if (done[i]) continue;
            int rnd_i, fmt_i = qe_act_fmt_for(w[i0 + i]->type, &rnd_i);
            mm_job j = {.n = n};
            for (int k = i; k < cnt; k++) {
                int rnd_k, fmt_k = qe_act_fmt_for(w[i0 + k]->type, &rnd_k);
                if (done[k] || fmt_k != fmt_i || rnd_k != rnd_i || w[i0 + k]->cols != w[i0 + i]->cols ||
                    wants_tiled(w[i0 + k]) != wants_tiled(w[i0 + i]) ||
                    (wants_tiled(w[i0 + k]) && w[i0 + k]->packer != w[i0 + i]->packer))
                    continue;
                done[k] = 1;
                j.w[j.n_mats] = w[i0 + k];
                j.y[j.n_mats] = y[i0 + k];
                j.ldy[j.n_mats] = ldy[i0 + k];
                j.bias[j.n_mats] = bias ? bias[i0 + k] : NULL;
                j.n_mats++;
            }
            j.a = quantise(pool, ws, w[i0 + i], x, ldx, n);
            mm_run(pool, &j);
        }
    }
}
