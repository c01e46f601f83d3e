/* test_ops.c — the per-token ops: reference against double-precision formulas, and every kernel set's SIMD
 * version (where it has one) against the reference on odd sizes, with guard values around outputs.
 * Thresholds: rmsnorm/rope vs double 1e-12 NMSE (f32 rounding only), swiglu 1e-13 and 5e-7 max relative
 * error per element (~4 ulp: a SIMD exp must be nearly exact; one 1e-6 off fails); attention vs double 1e-8 (q and p are
 * rounded to fp16 on both sides; an f32 probability next to an fp16 rounding boundary may flip); SIMD vs reference 1e-11 (summation order,
 * exp approximation-free). f32->f16 conversion must be bit-identical. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "kernels/cpu.h"
#include "kernels/kern.h"
#include "kernels/ops.h"
#include "test.h"

static uint64_t rng = 0x243F6A8885A308D3ull;
static uint32_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return (uint32_t)(rng >> 11); }
static float frand(void) { return (float)(rnd() & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f; }

static double nmse_d(const float *y, const double *ref, int n) {
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) { num += (y[i] - ref[i]) * (y[i] - ref[i]); den += ref[i] * ref[i]; }
    return den > 0 ? num / den : num;
}
static double nmse_f(const float *y, const float *ref, int n) {
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) { num += ((double)y[i] - ref[i]) * ((double)y[i] - ref[i]); den += (double)ref[i] * ref[i]; }
    return den > 0 ? num / den : num;
}

static const qe_kernel_set *sets[4];
static int n_sets;

#define G 16
#define GV 777.25f

TEST(rmsnorm) {
    for (int n = 1; n <= 4864; n = n * 3 + 1) {
        float *x = malloc(sizeof(float) * n), *w = malloc(sizeof(float) * n), *o = malloc(sizeof(float) * (n + 2 * G));
        double *e = malloc(sizeof(double) * n);
        for (int i = 0; i < n; i++) { x[i] = frand() * 3; w[i] = frand(); }
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
        for (int i = 0; i < n; i++) e[i] = x[i] / sqrt(ss / n + 1e-6) * w[i];
        for (int si = -1; si < n_sets; si++) {
            for (int i = 0; i < n + 2 * G; i++) o[i] = GV;
            if (si < 0) qe_rmsnorm_ref(o + G, x, w, n, 1e-6f);
            else if (sets[si]->rmsnorm) sets[si]->rmsnorm(o + G, x, w, n, 1e-6f);
            else continue;
            CHECKF(nmse_d(o + G, e, n) < 1e-12, "set %d n %d: %g", si, n, nmse_d(o + G, e, n));
            for (int i = 0; i < G; i++) CHECK(o[i] == GV && o[n + G + i] == GV);
        }
        /* in place */
        float *xi = malloc(sizeof(float) * n);
        memcpy(xi, x, sizeof(float) * n);
        qe_rmsnorm(xi, xi, w, n, 1e-6f);
        CHECK(nmse_d(xi, e, n) < 1e-12);
        free(x); free(w); free(o); free(e); free(xi);
    }
}

TEST(swiglu) {
    for (int n = 1; n <= 4864; n = n * 3 + 1) {
        float *g = malloc(sizeof(float) * n), *u = malloc(sizeof(float) * n), *o = malloc(sizeof(float) * (n + 2 * G));
        double *e = malloc(sizeof(double) * n);
        for (int i = 0; i < n; i++) { g[i] = frand() * 12; u[i] = frand() * 2; e[i] = g[i] / (1 + exp(-(double)g[i])) * u[i]; }
        for (int si = -1; si < n_sets; si++) {
            for (int i = 0; i < n + 2 * G; i++) o[i] = GV;
            if (si < 0) qe_swiglu_ref(o + G, g, u, n);
            else if (sets[si]->swiglu) sets[si]->swiglu(o + G, g, u, n);
            else continue;
            CHECKF(nmse_d(o + G, e, n) < 1e-13, "set %d n %d: %g", si, n, nmse_d(o + G, e, n));
            double worst = 0;
            for (int i = 0; i < n; i++) { double r = fabs(o[G + i] - e[i]) / (fabs(e[i]) + 1e-30); if (r > worst) worst = r; }
            CHECKF(worst < 5e-7, "set %d n %d: max relative error %g", si, n, worst); /* ~4 ulp */
            for (int i = 0; i < G; i++) CHECK(o[i] == GV && o[n + G + i] == GV);
        }
        qe_swiglu(g, g, u, n); /* aliasing */
        CHECK(nmse_d(g, e, n) < 1e-12);
        free(g); free(u); free(o); free(e);
    }
}

/* silu at the ends of the exp range: large |g| must give g or 0, never NaN */
TEST(swiglu_extremes) {
    float g[24], u[24], o[24];
    for (int i = 0; i < 24; i++) { g[i] = (float)(i - 12) * 12.5f; u[i] = 1.5f; }
    for (int si = -1; si < n_sets; si++) {
        if (si >= 0 && !sets[si]->swiglu) continue;
        if (si < 0) qe_swiglu_ref(o, g, u, 24);
        else sets[si]->swiglu(o, g, u, 24);
        for (int i = 0; i < 24; i++) {
            double e = (double)g[i] / (1.0 + exp(-(double)g[i])) * 1.5;
            CHECKF(isfinite(o[i]) && fabs(o[i] - e) <= 1e-6 * fabs(e) + 1e-30, "set %d g %g: %g vs %g", si, g[i], o[i], e);
        }
    }
}

TEST(rope) {
    int heads = 3, hd = 64;
    float x[3 * 64], y[3 * 64];
    for (int pos = 0; pos < 5000; pos += 1237) {
        for (int i = 0; i < heads * hd; i++) x[i] = y[i] = frand();
        qe_rope_neox(y, heads, hd, pos, 1000000.0f);
        double e[3 * 64];
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < hd / 2; i++) {
                double th = pos * pow(1000000.0, -2.0 * i / hd), c = cos(th), s = sin(th);
                double a = x[h * hd + i], b = x[h * hd + i + hd / 2];
                e[h * hd + i] = a * c - b * s;
                e[h * hd + i + hd / 2] = a * s + b * c;
            }
        /* theta is advanced by repeated f32 multiplication (as ggml does): the angle drifts by ~pos * 1e-6 */
        double thr = pos < 2000 ? 1e-9 : 1e-5;
        CHECKF(nmse_d(y, e, heads * hd) < thr, "pos %d: %g", pos, nmse_d(y, e, heads * hd));
    }
}

TEST(f32_to_f16) {
    int n = 1000;
    float x[1000];
    uint16_t a[1000 + 2 * G], b[1000 + 2 * G];
    for (int i = 0; i < n; i++) x[i] = frand() * powf(2.0f, (float)(rnd() % 40) - 25.0f);
    x[0] = 65520.0f; x[1] = -1e-8f; x[2] = 0.0f; x[3] = -0.0f; x[4] = 1e6f; x[5] = 6.1e-5f;
    qe_f32_to_f16_row_ref(x, a, n);
    for (int i = 0; i < n; i++) CHECK(a[i] == qe_fp32_to_fp16(x[i]));
    for (int si = 0; si < n_sets; si++) {
        if (!sets[si]->f32_to_f16_row) continue;
        for (int i = 0; i < n + 2 * G; i++) b[i] = 0xABCD;
        for (int len = 1; len <= n; len = len * 2 + 1) {
            sets[si]->f32_to_f16_row(x, b + G, len);
            CHECKF(memcmp(a, b + G, 2 * (size_t)len) == 0, "%s len %d", sets[si]->name, len);
            CHECK(b[G + len] == 0xABCD || len == n);
        }
        for (int i = 0; i < G; i++) CHECK(b[i] == 0xABCD && b[n + G + i] == 0xABCD);
    }
}

/* Attention against a double-precision softmax(q k^T / sqrt(d)) v with q and the probabilities rounded to fp16
 * (ggml's numerics). The implementations compute scores and exponentials in f32, so a probability close to a
 * rounding boundary of fp16 may round the other way (an error of 2^-11 of that probability); with few keys a
 * single flip moves a whole output row by ~1e-4: NMSE 1e-8 (a real bug — a wrong key, head or scale — gives
 * 1e-3 or more). */
static void attn_double(const float *q, int n_q, int q_pos0, const uint16_t *k, const uint16_t *v, int64_t st,
                        int n_kv, int nh, int nkv, int hd, double *out) {
    int group = nh / nkv;
    double *s = malloc(sizeof(double) * n_kv);
    for (int i = 0; i < n_q; i++)
        for (int h = 0; h < nh; h++) {
            int hk = h / group, nv = q_pos0 + i + 1 < n_kv ? q_pos0 + i + 1 : n_kv;
            double mx = -1e300, sum = 0;
            for (int j = 0; j < nv; j++) {
                double d = 0;
                for (int c = 0; c < hd; c++)
                    d += (double)qe_fp16_to_fp32(qe_fp32_to_fp16(q[(i * nh + h) * hd + c])) * qe_fp16_to_fp32(k[j * st + hk * hd + c]);
                s[j] = d / sqrt(hd);
                if (s[j] > mx) mx = s[j];
            }
            for (int j = 0; j < nv; j++) { s[j] = exp(s[j] - mx); sum += s[j]; }
            for (int j = 0; j < nv; j++) s[j] = qe_fp16_to_fp32(qe_fp32_to_fp16((float)(s[j] / sum))); /* as ggml: p in fp16 */
            for (int c = 0; c < hd; c++) {
                double o = 0;
                for (int j = 0; j < nv; j++) o += s[j] * qe_fp16_to_fp32(v[j * st + hk * hd + c]);
                out[(i * nh + h) * hd + c] = o;
            }
        }
    free(s);
}

TEST(attention) {
    /* {n_q, q_pos0, n_kv, shape}: shape 0 = Qwen2.5-0.5B heads (14 q / 2 kv x 64), 1 = 1.5B (12 / 2 x 128),
     * 2 = 3B-like groups of 8 (16 / 2 x 128), 3 = 7B-like (28 / 4 x 128, group 7) */
    const int cases[][4] = {{1, 0, 1, 0}, {1, 40, 41, 0}, {3, 0, 3, 0}, {7, 10, 17, 0}, {17, 100, 117, 0},
                            {5, 0, 300, 0}, {33, 0, 33, 0}, {9, 20, 29, 1}, {1, 70, 71, 2}, {4, 30, 34, 3},
                            /* decode: many blocks and a partial last one, fewer keys than positions, head_dim 128 */
                            {1, 300, 301, 0}, {1, 100, 60, 0}, {1, 15, 16, 0}, {1, 1000, 1001, 1}, {1, 257, 258, 3},
                            {1, 31, 32, 2}};
    const int shapes[4][3] = {{14, 2, 64}, {12, 2, 128}, {16, 2, 128}, {28, 4, 128}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int n_q = cases[ci][0], pos0 = cases[ci][1], n_kv = cases[ci][2];
        int nh = shapes[cases[ci][3]][0], nkv = shapes[cases[ci][3]][1], hd = shapes[cases[ci][3]][2];
        int64_t st = nkv * hd + 8; /* a stride wider than the row, as a cache with padding would have */
        float *q = malloc(sizeof(float) * n_q * nh * hd), *o = malloc(sizeof(float) * (n_q * nh * hd + 2 * G));
        uint16_t *k = malloc(2 * st * n_kv), *v = malloc(2 * st * n_kv);
        /* the cache layout of ops.h, with a spare block per head: positions past n_kv hold NaN, which no kernel
         * may let into a result */
        int64_t hs = ((n_kv + QE_KV_BLOCK - 1) / QE_KV_BLOCK + 1) * QE_KV_BLOCK * hd;
        uint16_t *kc = malloc(2 * hs * nkv), *vc = malloc(2 * hs * nkv);
        double *e = malloc(sizeof(double) * n_q * nh * hd);
        float *scratch = malloc(sizeof(float) * QE_ATT_SCRATCH(n_kv, nh, nkv));
        for (int i = 0; i < n_q * nh * hd; i++) q[i] = frand() * 2;
        for (int i = 0; i < st * n_kv; i++) { k[i] = qe_fp32_to_fp16(frand() * 2); v[i] = qe_fp32_to_fp16(frand()); }
        for (int64_t i = 0; i < hs * nkv; i++) kc[i] = vc[i] = 0x7E00;
        for (int j = 0; j < n_kv; j++)
            for (int hk = 0; hk < nkv; hk++)
                for (int d = 0; d < hd; d++) {
                    kc[qe_kv_key_index(hs, hd, hk, j, d)] = k[j * st + hk * hd + d];
                    vc[qe_kv_value_index(hs, hd, hk, j, d)] = v[j * st + hk * hd + d];
                }
        attn_double(q, n_q, pos0, k, v, st, n_kv, nh, nkv, hd, e);
        for (int si = -1; si < n_sets; si++) {
            if (si >= 0 && !sets[si]->attention) continue;
            for (int i = 0; i < n_q * nh * hd + 2 * G; i++) o[i] = GV;
            for (int hk = 0; hk < nkv; hk++) { /* one KV head per call, as one thread each would */
                if (si < 0) qe_attention_ref(q, n_q, pos0, kc, vc, hs, n_kv, nh, nkv, hd, hk, hk + 1, o + G, scratch);
                else sets[si]->attention(q, n_q, pos0, kc, vc, hs, n_kv, nh, nkv, hd, hk, hk + 1, o + G, scratch);
            }
            double err = nmse_d(o + G, e, n_q * nh * hd);
            CHECKF(err < 1e-8, "set %d case %zu: %g", si, ci, err);
            for (int i = 0; i < G; i++) CHECK(o[i] == GV && o[n_q * nh * hd + G + i] == GV);
            for (int i = 0; i < n_q * nh * hd; i++) CHECK(isfinite(o[G + i]));
        }
        /* the half-range call writes only its heads */
        for (int i = 0; i < n_q * nh * hd; i++) o[i] = GV;
        qe_attention(q, n_q, pos0, kc, vc, hs, n_kv, nh, nkv, hd, 1, 2, o, scratch);
        int untouched = 1;
        for (int i = 0; i < n_q; i++) for (int c = 0; c < (nh / nkv) * hd; c++) untouched &= o[i * nh * hd + c] == GV;
        CHECK(untouched);
        free(q); free(o); free(k); free(v); free(kc); free(vc); free(e); free(scratch);
    }
    (void)nmse_f;
}

int main(void) {
    for (int i = 0; qe_kernel_set_names[i]; i++)
        if (qe_kernels_usable(qe_kernel_set_names[i])) sets[n_sets++] = qe_kernels_usable(qe_kernel_set_names[i]);
    RUN(rmsnorm);
    RUN(swiglu);
    RUN(swiglu_extremes);
    RUN(rope);
    RUN(f32_to_f16);
    RUN(attention);
    return TEST_DONE();
}
