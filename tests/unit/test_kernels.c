/* test_kernels.c — the matmul kernels: the reference against a double-precision dequantise-and-dot, then
 * every kernel set this CPU runs against the reference, for every weight type, on odd shapes (token counts
 * 1..64, row counts that are not multiples of the panel height, several column counts), with bias,
 * accumulation, multi-matrix calls and 1 or 2 threads. Outputs sit between guard values that must survive.
 *
 * Thresholds (NMSE = sum (y - ref)^2 / sum ref^2):
 *   reference vs double dequant-dot: 1e-9. Both use the same quantised activations and the exact integer
 *     block sums, so only f32 rounding of the per-block scale products and the running sum differs
 *     (~1e-7 relative per term -> NMSE ~1e-13); q4_1/q5_1 use the fp16-rounded s = d*sum of q8_1 (as ggml
 *     does) where the double path uses the exact value: relative 1e-3 on the min term, so 1e-6 there.
 *   SIMD vs reference: 1e-10. Same integers, only the order of f32 additions differs, plus f32 vs double
 *     accumulation for f32/f16/bf16 weights (~1e-7 relative per row).
 *   Activation quantisers: bit-identical. */
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "kernels/cpu.h"
#include "kernels/kern.h"
#include "kernels/matmul.h"
#include "kernels/panel.h"
#include "quant.h"
#include "test.h"
#include "threadpool.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return (uint32_t)(rng >> 11); }
static float frand(void) { return (float)(rnd() & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f; } /* [-1, 1) */

static const int all_types[] = {QE_TYPE_F32, QE_TYPE_F16, QE_TYPE_BF16, QE_TYPE_Q8_0, QE_TYPE_Q4_0, QE_TYPE_Q4_1,
                                QE_TYPE_Q5_0, QE_TYPE_Q5_1, QE_TYPE_IQ4_NL, QE_TYPE_Q2_K, QE_TYPE_Q3_K,
                                QE_TYPE_Q4_K, QE_TYPE_Q5_K, QE_TYPE_Q6_K};
#define N_TYPES (int)(sizeof all_types / sizeof all_types[0])

/* The one reference dequantiser (quant.c). */
static void dequant(int type, const void *src, float *dst, int64_t n) { qe_type_traits_get(type)->to_float(src, dst, n); }

static void put_half(uint8_t *p, float v) { uint16_t h = qe_fp32_to_fp16(v); memcpy(p, &h, 2); }

/* Random weights of a type: random bits for every quant and scale field, fp16 scales set to sane values. */
static uint8_t *random_weights(int type, int64_t rows, int64_t cols) {
    size_t rb = qe_row_size(type, cols), bytes = rb * (size_t)rows;
    uint8_t *w = malloc(bytes);
    for (size_t i = 0; i < bytes; i++) w[i] = (uint8_t)rnd();
    int bs = qe_type_traits_get(type)->block_size;
    size_t bb = rb / (size_t)(cols / bs);
    for (size_t off = 0; off < bytes; off += bb) {
        uint8_t *b = w + off;
        float d = 0.01f + 0.02f * fabsf(frand()), m = 0.05f * frand();
        switch (type) {
        case QE_TYPE_F32: { float v = frand(); memcpy(b, &v, 4); break; }
        case QE_TYPE_F16: put_half(b, frand()); break;
        case QE_TYPE_BF16: { uint16_t h = qe_fp32_to_bf16(frand()); memcpy(b, &h, 2); break; }
        case QE_TYPE_Q8_0: case QE_TYPE_Q4_0: case QE_TYPE_Q5_0: case QE_TYPE_IQ4_NL: put_half(b, d); break;
        case QE_TYPE_Q4_1: case QE_TYPE_Q5_1: put_half(b, d); put_half(b + 2, m); break;
        case QE_TYPE_Q2_K: put_half(b + offsetof(block_q2_K, d), d); put_half(b + offsetof(block_q2_K, dmin), d / 2); break;
        case QE_TYPE_Q3_K: put_half(b + offsetof(block_q3_K, d), d / 4); break;
        case QE_TYPE_Q4_K: put_half(b + offsetof(block_q4_K, d), d / 8); put_half(b + offsetof(block_q4_K, dmin), d / 16); break;
        case QE_TYPE_Q5_K: put_half(b + offsetof(block_q5_K, d), d / 16); put_half(b + offsetof(block_q5_K, dmin), d / 16); break;
        case QE_TYPE_Q6_K: put_half(b + offsetof(block_q6_K, d), d / 32); break;
        }
    }
    return w;
}

static float *random_acts(int n, int64_t ld) {
    float *x = malloc(sizeof(float) * (size_t)n * (size_t)ld);
    for (int64_t i = 0; i < n * ld; i++) x[i] = frand() * (1.0f + 3.0f * (float)((rnd() & 15) == 0)); /* some outliers */
    return x;
}

static double nmse(const float *y, const float *ref, int n, int64_t rows, int64_t ld) {
    double num = 0, den = 0;
    for (int t = 0; t < n; t++)
        for (int64_t r = 0; r < rows; r++) {
            double a = y[t * ld + r], b = ref[t * ld + r];
            num += (a - b) * (a - b);
            den += b * b;
        }
    return den > 0 ? num / den : num;
}

static int all_finite(const float *y, int n, int64_t rows, int64_t ld) {
    for (int t = 0; t < n; t++)
        for (int64_t r = 0; r < rows; r++)
            if (!isfinite(y[t * ld + r])) return 0;
    return 1;
}

/* Output buffer of n rows of `rows` with ld = rows + 3 and 64 guard floats before and after; the gaps
 * between rows are guards too. */
#define GUARD 64
#define GUARD_VAL -12345.678f
typedef struct { float *mem, *y; int n; int64_t rows, ld; } outbuf;
static outbuf out_new(int n, int64_t rows) {
    outbuf o = {.n = n, .rows = rows, .ld = rows + 3};
    size_t total = (size_t)n * (size_t)o.ld + 2 * GUARD;
    o.mem = malloc(total * sizeof(float));
    for (size_t i = 0; i < total; i++) o.mem[i] = GUARD_VAL;
    o.y = o.mem + GUARD;
    return o;
}
static int out_guards_ok(const outbuf *o) {
    size_t total = (size_t)o->n * (size_t)o->ld + 2 * GUARD;
    for (size_t i = 0; i < total; i++) {
        int64_t k = (int64_t)i - GUARD;
        int inside = k >= 0 && k < o->n * o->ld && (k % o->ld) < o->rows;
        if (!inside && o->mem[i] != GUARD_VAL) return 0;
    }
    return 1;
}

/* y = W x in double from dequantised weights and the reference-quantised activations, dequantised. */
static void dot_double(int type, const uint8_t *w, int64_t rows, int64_t cols, const float *x, int64_t ldx, int n,
                       float *y, int64_t ldy) {
    int rounding, fmt = qe_act_fmt_for(type, &rounding);
    qe_act a = {.fmt = fmt, .cols = cols, .cols_pad = (cols + 63) / 64 * 64, .stride = qe_act_row_bytes(fmt, cols)};
    a.base = qe_aligned_alloc(64, a.stride * (size_t)n);
    float *xd = malloc(sizeof(float) * (size_t)cols), *wd = malloc(sizeof(float) * (size_t)cols);
    for (int t = 0; t < n; t++) {
        uint8_t *row = a.base + a.stride * (size_t)t;
        if (fmt == QE_ACT_F32) qe_quant_row_f32_ref(x + t * ldx, cols, rounding, row);
        else if (fmt == QE_ACT_Q8) qe_quant_row_q8_ref(x + t * ldx, cols, row);
        else qe_quant_row_q8k_ref(x + t * ldx, cols, row);
        int bs = fmt == QE_ACT_Q8 ? 32 : 256;
        for (int64_t c = 0; c < cols; c++)
            xd[c] = fmt == QE_ACT_F32 ? qe_act_f32(&a, t)[c] : (float)qe_act_qs(&a, t)[c] * qe_act_d(&a, t)[c / bs];
        for (int64_t r = 0; r < rows; r++) {
            dequant(type, w + qe_row_size(type, cols) * (size_t)r, wd, cols);
            double s = 0;
            for (int64_t c = 0; c < cols; c++) s += (double)wd[c] * (double)xd[c];
            y[t * ldy + r] = (float)s;
        }
    }
    free(a.base); free(xd); free(wd);
}

TEST(reference_vs_double) {
    qe_kernels_force(NULL);
    qe_matmul_ws *ws = qe_matmul_ws_new(7, 512);
    for (int ti = 0; ti < N_TYPES; ti++) {
        int type = all_types[ti];
        int64_t cols = qe_type_traits_get(type)->block_size == 256 ? 512 : 96, rows = 5;
        int n = 3;
        uint8_t *w = random_weights(type, rows, cols);
        float *x = random_acts(n, cols);
        qe_mat m;
        CHECK(qe_mat_init(&m, type, rows, cols, w, NULL) == 0);
        CHECK(m.packed == NULL);
        outbuf o = out_new(n, rows), e = out_new(n, rows);
        qe_matmul(NULL, ws, &m, x, cols, n, o.y, o.ld, NULL, 0);
        dot_double(type, w, rows, cols, x, cols, n, e.y, e.ld);
        double err = nmse(o.y, e.y, n, rows, o.ld);
        double thr = type == QE_TYPE_Q4_1 || type == QE_TYPE_Q5_1 ? 1e-6 : 1e-9;
        CHECKF(err < thr, "%s: nmse %.3g", qe_type_name(type), err);
        CHECK(all_finite(o.y, n, rows, o.ld) && out_guards_ok(&o));
        qe_mat_free(&m);
        free(w); free(x); free(o.mem); free(e.mem);
    }
    qe_matmul_ws_free(ws);
}

/* The layout is not hidden by quantisation noise: q8_0 weights with d = 1 against integer activations whose
 * block maximum is 127 (so the activation scale is exactly 1 and q = x) give the exact integer answer. */
TEST(reference_exact_q8_0) {
    qe_kernels_force(NULL);
    int64_t cols = 64, rows = 2;
    block_q8_0 wb[4];
    for (int b = 0; b < 4; b++) { wb[b].d = qe_fp32_to_fp16(1.0f); for (int j = 0; j < 32; j++) wb[b].qs[j] = (int8_t)((b * 32 + j) % 7 - 3); }
    float x[64];
    for (int c = 0; c < 64; c++) x[c] = c % 32 == 0 ? 127.0f : (float)((c % 5) - 2) * 40.0f;
    qe_matmul_ws *ws = qe_matmul_ws_new(1, cols);
    qe_mat m;
    CHECK(qe_mat_init(&m, QE_TYPE_Q8_0, rows, cols, wb, NULL) == 0);
    float y[2];
    qe_matmul(NULL, ws, &m, x, cols, 1, y, rows, NULL, 0);
    for (int r = 0; r < 2; r++) {
        long s = 0;
        for (int c = 0; c < 64; c++) s += (long)wb[r * 2 + c / 32].qs[c % 32] * (long)x[c];
        CHECKF(y[r] == (float)s, "row %d: %g vs %ld", r, y[r], s);
    }
    qe_mat_free(&m);
    qe_matmul_ws_free(ws);
}

static const qe_kernel_set *sets[4];
static int n_sets;

static void collect_sets(void) {
    n_sets = 0;
    for (int i = 0; qe_kernel_set_names[i]; i++)
        if (qe_kernels_usable(qe_kernel_set_names[i])) sets[n_sets++] = qe_kernels_usable(qe_kernel_set_names[i]);
}

/* One kernel set vs the reference over shapes and types. */
static void check_set(const qe_kernel_set *ks, qe_pool *pool) {
    static const int ns[] = {1, 2, 3, 7, 17, 64};
    static const int64_t rowss[] = {1, 15, 16, 17, 47, 100};
    qe_matmul_ws *ws = qe_matmul_ws_new(64, 1024);
    for (int ti = 0; ti < N_TYPES; ti++) {
        int type = all_types[ti];
        int bs = qe_type_traits_get(type)->block_size;
        for (int si = 0; si < 6; si++) {
            int64_t rows = rowss[si];
            int64_t cols = bs == 256 ? 256 * (1 + si % 4) : 32 * (1 + (si * 5) % 11) + (si == 5 ? 896 - 32 * 6 : 0);
            int n = ns[si];
            uint8_t *w = random_weights(type, rows, cols);
            int64_t ldx = cols + 5;
            float *x = random_acts(n, ldx), *bias = random_acts(1, rows);
            qe_mat mr, mf;
            qe_kernels_force(NULL);
            CHECK(qe_mat_init(&mr, type, rows, cols, w, NULL) == 0);
            qe_kernels_force(ks);
            CHECK(qe_mat_init(&mf, type, rows, cols, w, NULL) == 0);
            for (int variant = 0; variant < 2; variant++) {
                outbuf r = out_new(n, rows), f = out_new(n, rows);
                const float *b = variant ? bias : NULL;
                int flags = variant ? QE_MM_ACCUMULATE : 0;
                if (variant) /* accumulate onto a known pattern */
                    for (int t = 0; t < n; t++) for (int64_t i = 0; i < rows; i++) r.y[t * r.ld + i] = f.y[t * f.ld + i] = 0.25f * (float)i;
                qe_kernels_force(NULL);
                qe_matmul(pool, ws, &mr, x, ldx, n, r.y, r.ld, b, flags);
                qe_kernels_force(ks);
                qe_matmul(pool, ws, &mf, x, ldx, n, f.y, f.ld, b, flags);
                double err = nmse(f.y, r.y, n, rows, r.ld);
                CHECKF(err < 1e-10, "%s %s rows %lld cols %lld n %d variant %d: nmse %.3g", ks->name,
                       qe_type_name(type), (long long)rows, (long long)cols, n, variant, err);
                CHECKF(all_finite(f.y, n, rows, f.ld), "%s %s: non-finite output", ks->name, qe_type_name(type));
                CHECKF(out_guards_ok(&f), "%s %s rows %lld n %d: wrote outside its output", ks->name,
                       qe_type_name(type), (long long)rows, n);
                free(r.mem); free(f.mem);
            }
            qe_mat_free(&mr); qe_mat_free(&mf);
            free(w); free(x); free(bias);
        }
    }
    qe_matmul_ws_free(ws);
    qe_kernels_force(NULL);
}

TEST(simd_sets_vs_reference_1_thread) {
    for (int i = 0; i < n_sets; i++) check_set(sets[i], NULL);
}

TEST(simd_sets_vs_reference_2_threads) {
    qe_pool *pool = qe_pool_new(2);
    for (int i = 0; i < n_sets; i++) check_set(sets[i], pool);
    qe_pool_free(pool);
}

/* Float weights allow any column count (no blocks): odd widths through every set. */
TEST(float_types_odd_columns) {
    const int types[3] = {QE_TYPE_F32, QE_TYPE_F16, QE_TYPE_BF16};
    const int64_t colss[3] = {1, 7, 33};
    qe_matmul_ws *ws = qe_matmul_ws_new(9, 64);
    for (int si = 0; si < n_sets; si++)
        for (int ti = 0; ti < 3; ti++)
            for (int ci = 0; ci < 3; ci++) {
                int64_t rows = 19, cols = colss[ci];
                int n = 9;
                uint8_t *w = random_weights(types[ti], rows, cols);
                float *x = random_acts(n, cols);
                qe_mat mr, mf;
                qe_kernels_force(NULL);
                CHECK(qe_mat_init(&mr, types[ti], rows, cols, w, NULL) == 0);
                qe_kernels_force(sets[si]);
                CHECK(qe_mat_init(&mf, types[ti], rows, cols, w, NULL) == 0);
                outbuf r = out_new(n, rows), f = out_new(n, rows);
                qe_kernels_force(NULL);
                qe_matmul(NULL, ws, &mr, x, cols, n, r.y, r.ld, NULL, 0);
                qe_kernels_force(sets[si]);
                qe_matmul(NULL, ws, &mf, x, cols, n, f.y, f.ld, NULL, 0);
                double err = nmse(f.y, r.y, n, rows, r.ld);
                CHECKF(err < 1e-10 && out_guards_ok(&f), "%s %s cols %lld: nmse %g", sets[si]->name,
                       qe_type_name(types[ti]), (long long)cols, err);
                qe_mat_free(&mr); qe_mat_free(&mf);
                free(w); free(x); free(r.mem); free(f.mem);
            }
    qe_kernels_force(NULL);
    qe_matmul_ws_free(ws);
}

/* qe_matmul_multi with mixed types (as q4_k_m files mix q4_K/q6_K/q5_0) equals separate calls. */
TEST(multi_equals_single) {
    const int types[3] = {QE_TYPE_Q5_0, QE_TYPE_Q6_K, QE_TYPE_Q8_0};
    int64_t rows[3] = {40, 24, 24}, cols = 512;
    int n = 5;
    qe_pool *pool = qe_pool_new(2);
    qe_matmul_ws *ws = qe_matmul_ws_new(n, cols);
    for (int si = -1; si < n_sets; si++) {
        qe_kernels_force(si < 0 ? NULL : sets[si]);
        qe_mat m[3];
        uint8_t *w[3];
        float *y1[3], *y2[3], *bias[3];
        int64_t ld[3];
        const qe_mat *mp[3];
        for (int i = 0; i < 3; i++) {
            w[i] = random_weights(types[i], rows[i], cols);
            CHECK(qe_mat_init(&m[i], types[i], rows[i], cols, w[i], NULL) == 0);
            mp[i] = &m[i];
            ld[i] = rows[i];
            y1[i] = calloc((size_t)(n * rows[i]), sizeof(float));
            y2[i] = calloc((size_t)(n * rows[i]), sizeof(float));
            bias[i] = random_acts(1, rows[i]);
        }
        float *x = random_acts(n, cols);
        qe_matmul_multi(pool, ws, 3, mp, x, cols, n, y1, ld, (const float *const *)bias);
        for (int i = 0; i < 3; i++) {
            qe_matmul(pool, ws, &m[i], x, cols, n, y2[i], ld[i], bias[i], 0);
            CHECKF(memcmp(y1[i], y2[i], sizeof(float) * (size_t)(n * rows[i])) == 0, "set %d matrix %d", si, i);
            qe_mat_free(&m[i]);
            free(w[i]); free(y1[i]); free(y2[i]); free(bias[i]);
        }
        free(x);
    }
    qe_kernels_force(NULL);
    qe_matmul_ws_free(ws);
    qe_pool_free(pool);
}

/* SIMD activation quantisers are bit-identical to the reference ones. */
TEST(quantisers_bit_identical) {
    for (int si = 0; si < n_sets; si++) {
        const qe_kernel_set *ks = sets[si];
        for (int64_t cols = 32; cols <= 4864; cols = cols * 3 + 32) {
            float *x = random_acts(1, cols);
            if (cols > 64) x[5] = 0, memset(x + 32, 0, 32 * sizeof(float)); /* an all-zero block */
            if (cols >= 96) { /* exact ties: scale 1 (max 127), values k + 0.5 must round to even, as nearbyintf */
                x[64] = 127.0f;
                for (int j = 65; j < 96; j++) x[j] = (float)(j - 80) + 0.5f;
            }
            if (cols >= 512) { memset(x + 256, 0, 256 * sizeof(float)); x[300] = 2.5f; x[301] = -2.5f; } /* q8_K: a tie of |max| */
            if (cols >= 1024) memset(x + 512, 0, 256 * sizeof(float)); /* q8_K: an all-zero 256-block */
            size_t bytes = qe_act_row_bytes(QE_ACT_Q8, cols);
            uint8_t *a = calloc(1, bytes), *b = calloc(1, bytes);
            if (ks->quant_q8) {
                qe_quant_row_q8_ref(x, cols, a);
                ks->quant_q8(x, cols, b);
                CHECKF(memcmp(a, b, bytes) == 0, "%s quant_q8 cols %lld", ks->name, (long long)cols);
            }
            free(a); free(b);
            bytes = qe_act_row_bytes(QE_ACT_F32, cols);
            a = calloc(1, bytes); b = calloc(1, bytes);
            for (int rnd_mode = 0; rnd_mode < 3 && ks->quant_f32; rnd_mode++) {
                qe_quant_row_f32_ref(x, cols, rnd_mode, a);
                ks->quant_f32(x, cols, rnd_mode, b);
                CHECKF(memcmp(a, b, (size_t)cols * 4) == 0, "%s quant_f32 mode %d", ks->name, rnd_mode);
            }
            free(a); free(b);
            /* tiled layout: fill slots 0, 3 and 7 of a group, compare the whole group */
            for (int fmt = QE_ACT_F32; fmt <= QE_ACT_Q8K && ks->quant_tiled; fmt++)
                for (int rnd_mode = 0; rnd_mode < (fmt == QE_ACT_F32 ? 3 : 1); rnd_mode++) {
                    if (fmt == QE_ACT_Q8K && cols % 256) continue;
                    size_t gb = qe_act_tile_bytes(fmt, cols);
                    a = calloc(1, gb); b = calloc(1, gb);
                    for (int slot = 0; slot < 8; slot += slot == 0 ? 3 : 4) {
                        qe_quant_tiled_ref(x, cols, fmt, rnd_mode, a, slot);
                        ks->quant_tiled(x, cols, fmt, rnd_mode, b, slot);
                    }
                    CHECKF(memcmp(a, b, gb) == 0, "%s quant_tiled fmt %d mode %d cols %lld", ks->name, fmt, rnd_mode, (long long)cols);
                    free(a); free(b);
                }
            free(x);
        }
    }
}

/* panel.h restates each weight type's code bits and mins as constants the tiles fold: they must be the table's
 * (k-quants: read off a block of all-ones bytes, whose codes and mins are the largest there are). */
TEST(panel_shapes_match_traits) {
    for (int type = 0; type < QE_TYPE_COUNT; type++) {
        const qe_type_traits *tr = qe_type_traits_get(type);
        int rounding;
        if (!tr || qe_act_fmt_for(type, &rounding) < 0) continue;
        if (tr->b32) {
            CHECKF(qe_panel_bits(type) == tr->b32->bits && qe_panel_has_min(type) == tr->b32->has_min, "%s", tr->name);
            CHECKF(!qe_panel_is_k(type) && !qe_panel_is_float(type), "%s", tr->name);
        } else if (tr->unpack_k) {
            uint8_t blk[512];
            memset(blk, 0xFF, sizeof blk);
            int q[256], sc[16], mn[16], qmax = 0, any_min = 0;
            float d, dmin;
            tr->unpack_k(blk, q, sc, mn, &d, &dmin);
            for (int i = 0; i < 256; i++) qmax = q[i] > qmax ? q[i] : qmax;
            for (int i = 0; i < 16; i++) any_min |= mn[i] != 0;
            CHECKF(qe_panel_is_k(type) && qmax + 1 == 1 << qe_panel_bits(type), "%s: codes up to %d", tr->name, qmax);
            CHECKF(qe_panel_has_min(type) == any_min, "%s", tr->name);
        } else {
            CHECKF(qe_panel_is_float(type) && qe_panel_bits(type) == 8 * (int)tr->type_size, "%s", tr->name);
        }
    }
}

TEST(row_f32_and_errors) {
    char err[QE_ERR_LEN] = "";
    qe_mat m;
    CHECK(qe_mat_init(&m, QE_TYPE_Q8_1, 4, 32, NULL, err) == QE_EUNSUPPORTED && strstr(err, "not supported"));
    CHECK(qe_mat_init(&m, QE_TYPE_Q4_K, 4, 896, NULL, err) == QE_EUNSUPPORTED && strstr(err, "multiple of 256"));
    CHECK(qe_mat_init(&m, 999, 4, 32, NULL, err) == QE_EUNSUPPORTED);
    /* every type, every set: rows read back (from the packed copy where there is one) equal the reference
     * dequantisation (to_float) of the original bit for bit, and the original bytes are not read (they are
     * scribbled over first) */
    for (int si = -1; si < n_sets; si++)
        for (int ti = 0; ti < N_TYPES; ti++) {
            int type = all_types[ti];
            qe_kernels_force(si < 0 ? NULL : sets[si]);
            int64_t cols = 512, rows = 20;
            uint8_t *w = random_weights(type, rows, cols);
            size_t bytes = qe_row_size(type, cols) * (size_t)rows;
            uint8_t *copy = malloc(bytes);
            memcpy(copy, w, bytes);
            CHECK(qe_mat_init(&m, type, rows, cols, w, err) == 0);
            CHECKF(memcmp(w, copy, bytes) == 0, "malloc'd source changed by init"); /* never dropped: not a file */
            if (m.packed) memset(w, 0x55, bytes);
            float row[512], want[512];
            for (int64_t r = 0; r < rows; r += 19) {
                qe_mat_row_f32(&m, r, row);
                dequant(type, copy + (size_t)r * qe_row_size(type, cols), want, cols);
                CHECKF(memcmp(row, want, sizeof row) == 0, "set %d %s row %lld", si, qe_type_name(type), (long long)r);
            }
            qe_mat_free(&m);
            qe_mat_free(&m); /* twice is fine */
            free(w); free(copy);
        }
    qe_kernels_force(NULL);
}

/* Resident kB of the mapping that starts at p (from /proc/self/smaps), -1 if not found. */
static long mapping_rss_kb(const void *p) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512], perms[8];
    long rss = -1;
    int in = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        /* a mapping's header: "lo-hi perms offset dev inode path"; then "Key:   value kB" lines */
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && strlen(perms) == 4 && (perms[3] == 'p' || perms[3] == 's')) {
            in = lo == (uintptr_t)p;
            continue;
        }
        if (in && !strncmp(line, "Rss:", 4)) { rss = atol(line + 4); break; }
    }
    fclose(f);
    return rss;
}

/* Weights in a private read-only file mapping (as the model loader maps GGUF files): packing drops the source
 * pages from this process (RSS holds one copy), the results are those of the same weights from malloc, and the
 * mapping still reads back the right bytes afterwards (the page cache refills it). */
TEST(file_mapped_source) {
    int64_t rows = 512, cols = 2048; /* 1.1 MB of q8_0: a few hundred pages */
    size_t bytes = qe_row_size(QE_TYPE_Q8_0, cols) * (size_t)rows;
    uint8_t *w = random_weights(QE_TYPE_Q8_0, rows, cols);
    char path[600];
    snprintf(path, sizeof path, "%s/kern_weights.bin", test_tmpdir());
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(w, 1, bytes, f) == bytes);
    if (f) fclose(f);
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    uint8_t *map = fd >= 0 ? mmap(NULL, bytes, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    CHECK(map != MAP_FAILED);
    if (map == MAP_FAILED) { free(w); return; }
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < bytes; i += 4096) sink ^= map[i]; /* fault everything in */
    (void)sink;
    for (int si = -1; si < n_sets; si++) {
        qe_kernels_force(si < 0 ? NULL : sets[si]);
        unsigned char vec[1024];
        size_t npages = (bytes + 4095) / 4096, resident = 0;
        qe_mat a, b;
        for (size_t i = 0; i < bytes; i += 4096) sink ^= map[i];
        long before = mapping_rss_kb(map);
        CHECK(qe_mat_init(&a, QE_TYPE_Q8_0, rows, cols, map, NULL) == 0);
        long after = mapping_rss_kb(map);
        if (a.packed) CHECKF(before >= 1000 && after >= 0 && after <= 8, "mapping RSS %ld kB -> %ld kB", before, after);
        else CHECKF(after >= 1000, "unpacked: the source stays in use (RSS %ld kB)", after);
        CHECK(qe_mat_init(&b, QE_TYPE_Q8_0, rows, cols, w, NULL) == 0);
        if (mincore(map, bytes, vec) == 0)
            for (size_t i = 0; i < npages && i < sizeof vec; i++) resident += vec[i] & 1;
        (void)resident; /* mincore reports the page cache, which may keep the pages (that is the point) */
        float x[2048], ya[512], yb[512];
        for (int i = 0; i < 2048; i++) x[i] = frand();
        qe_matmul_ws *ws = qe_matmul_ws_new(1, cols);
        qe_matmul(NULL, ws, &a, x, cols, 1, ya, rows, NULL, 0);
        qe_matmul(NULL, ws, &b, x, cols, 1, yb, rows, NULL, 0);
        CHECK(memcmp(ya, yb, sizeof ya) == 0);
        CHECK(memcmp(map, w, bytes) == 0);
        qe_matmul_ws_free(ws);
        qe_mat_free(&a);
        qe_mat_free(&b);
    }
    /* the same addresses, now anonymous memory (a model unloaded, weights converted in memory): never dropped,
     * even right after a matrix from the file mapping was packed */
    if (n_sets) {
        qe_kernels_force(sets[0]);
        qe_mat last;
        CHECK(qe_mat_init(&last, QE_TYPE_Q8_0, rows, cols, map, NULL) == 0);
        qe_mat_free(&last);
    }
    munmap(map, bytes);
    uint8_t *anon = mmap(map, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(anon == map);
    if (anon == map) {
        memcpy(anon, w, bytes);
        for (int si = 0; si < n_sets; si++) {
            qe_kernels_force(sets[si]);
            qe_mat c;
            CHECK(qe_mat_init(&c, QE_TYPE_Q8_0, rows, cols, anon, NULL) == 0);
            CHECKF(memcmp(anon, w, bytes) == 0, "%s: anonymous weights were dropped", sets[si]->name);
            qe_mat_free(&c);
        }
        munmap(anon, bytes);
    }
    qe_kernels_force(NULL);
    close(fd);
    unlink(path);
    free(w);
}

int main(void) {
    collect_sets();
    printf("# cpu: %s; kernel sets tested:", qe_cpu_describe());
    for (int i = 0; i < n_sets; i++) printf(" %s", sets[i]->name);
    printf(" (+ ref)\n");
    RUN(reference_vs_double);
    RUN(reference_exact_q8_0);
    RUN(simd_sets_vs_reference_1_thread);
    RUN(simd_sets_vs_reference_2_threads);
    RUN(float_types_odd_columns);
    RUN(multi_equals_single);
    RUN(quantisers_bit_identical);
    RUN(panel_shapes_match_traits);
    RUN(row_f32_and_errors);
    RUN(file_mapped_source);
    return TEST_DONE();
}
