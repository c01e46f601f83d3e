/* ops_avx512.c — AVX-512 versions of the per-token ops (ops.h): rmsnorm, swiglu, f32->f16 rows and the
 * attention over the fp16 KV cache. Twins of ops_ref.c, held equal by tests/unit/test_ops.c.
 *
 * Attention is computed flash-style per block of 16 keys: the block's K (16 keys x head_dim fp16) is converted
 * and transposed once into 16-wide f32 columns on the stack, so a score vector for 16 keys is head_dim FMAs
 * with the query element broadcast — no horizontal sums — and that transposed block serves every query
 * token and every query head of the KV head. Softmax runs online (running max and sum, rescaling the output
 * accumulator), which changes only the rounding relative to the two-pass reference. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "base.h"
#include "kernels/kern.h"

/* exp(x) for a vector: x = n ln2 + r, |r| <= ln2/2, exp(r) by a degree-6 polynomial (Cephes expf
 * coefficients), times 2^n via vscalefps. ~1 ulp; exp(-inf) = 0. */
static inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f)); /* below: result underflows to 0 anyway */
    x = _mm512_min_ps(x, _mm512_set1_ps(88.7f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500E-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

void qe_avx512_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    /* Sum of squares in double, like the reference (and ggml): 8 doubles per vector. */
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        __m512 sq = _mm512_mul_ps(v, v);
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(sq)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(sq), 1))));
    }
    double sum = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    for (; i < n; i++) sum += (double)(x[i] * x[i]);
    float scale = 1.0f / sqrtf((float)(sum / n) + eps);
    __m512 vs = _mm512_set1_ps(scale);
    for (i = 0; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), vs), _mm512_loadu_ps(w + i)));
    for (; i < n; i++) out[i] = (x[i] * scale) * w[i];
}

void qe_avx512_swiglu(float *out, const float *gate, const float *up, int n) {
    int i = 0;
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 g = _mm512_maskz_loadu_ps(m, gate + i), u = _mm512_maskz_loadu_ps(m, up + i);
        __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), g));
        __m512 s = _mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(s, u));
    }
}

void qe_avx512_f32_to_f16_row(const float *x, uint16_t *out, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(out + i), _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) out[i] = qe_fp32_to_fp16(x[i]);
}

/* 16x16 transpose of f32 vectors r[0..15] in place (4 shuffle rounds). */
static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
        r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
        r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xDD);
    }
}

#define KB 16        /* keys per block */
#define MAX_HD 256   /* head_dim bound for the stack blocks (Qwen2: 64 or 128) */
#define QCHUNK 32    /* query tokens whose softmax state is kept at once */

/* K block j0..j0+jn-1 of KV head hk -> KT[d][16] (f32, transposed); missing keys are zero. */
static void load_kt(const uint16_t *k, int64_t kv_stride, int hk, int head_dim, int j0, int jn, float (*KT)[KB]) {
    for (int c = 0; c < head_dim / 16; c++) {
        __m512 r[16];
        for (int j = 0; j < KB; j++)
            r[j] = j < jn ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(k + (int64_t)(j0 + j) * kv_stride + (int64_t)hk * head_dim + c * 16)))
                          : _mm512_setzero_ps();
        transpose16(r);
        for (int d = 0; d < 16; d++) _mm512_store_ps(KT[c * 16 + d], r[d]);
    }
}

/* Scores of up to 8 heads of one query (qr[h][d]: fp16-rounded q) against the 16 keys of KT, times scale;
 * keys outside mk are -inf. One KT load serves every head: GN independent FMA chains, ~1 load per FMA. */
#define INLINE static inline __attribute__((always_inline))
INLINE void scores_gn(const int GN, const float *qr, int hd, const float (*KT)[KB], float scale, __mmask16 mk, __m512 *s) {
    __m512 acc[8];
#pragma GCC unroll 8
    for (int h = 0; h < GN; h++) acc[h] = _mm512_setzero_ps();
    for (int d = 0; d < hd; d++) {
        __m512 kt = _mm512_load_ps(KT[d]);
#pragma GCC unroll 8
        for (int h = 0; h < GN; h++) acc[h] = _mm512_fmadd_ps(_mm512_set1_ps(qr[h * hd + d]), kt, acc[h]);
    }
#pragma GCC unroll 8
    for (int h = 0; h < GN; h++) s[h] = _mm512_mask_blend_ps(mk, _mm512_set1_ps(-INFINITY), _mm512_mul_ps(acc[h], _mm512_set1_ps(scale)));
}

static void scores(int gn, const float *qr, int hd, const float (*KT)[KB], float scale, __mmask16 mk, __m512 *s) {
    switch (gn) {
    case 1: scores_gn(1, qr, hd, KT, scale, mk, s); break;
    case 2: scores_gn(2, qr, hd, KT, scale, mk, s); break;
    case 3: scores_gn(3, qr, hd, KT, scale, mk, s); break;
    case 4: scores_gn(4, qr, hd, KT, scale, mk, s); break;
    case 5: scores_gn(5, qr, hd, KT, scale, mk, s); break;
    case 6: scores_gn(6, qr, hd, KT, scale, mk, s); break;
    case 7: scores_gn(7, qr, hd, KT, scale, mk, s); break;
    default: scores_gn(8, qr, hd, KT, scale, mk, s); break;
    }
}

/* out[h][c0 .. c0 + 16 CN) (+)= sum_j p[h][j] * VB[j][...] for 4 heads: 4 x CN accumulators in registers, each
 * VB vector loaded once for the 4 heads. */
INLINE void pv4(const int CN, const float (*pj)[KB], int nv, const float (*VB)[MAX_HD], int c0, float *const *oh, int first) {
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int h = 0; h < 4; h++)
#pragma GCC unroll 4
        for (int c = 0; c < CN; c++) acc[h][c] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(oh[h] + c0 + c * 16);
    for (int j = 0; j < nv; j++) {
        __m512 vv[4];
#pragma GCC unroll 4
        for (int c = 0; c < CN; c++) vv[c] = _mm512_load_ps(VB[j] + c0 + c * 16);
#pragma GCC unroll 4
        for (int h = 0; h < 4; h++) {
            __m512 p = _mm512_set1_ps(pj[h][j]);
#pragma GCC unroll 4
            for (int c = 0; c < CN; c++) acc[h][c] = _mm512_fmadd_ps(p, vv[c], acc[h][c]);
        }
    }
#pragma GCC unroll 4
    for (int h = 0; h < 4; h++)
#pragma GCC unroll 4
        for (int c = 0; c < CN; c++) _mm512_storeu_ps(oh[h] + c0 + c * 16, acc[h][c]);
}

/* All gn heads (pj rows beyond gn are zero, their oh point at a dummy row). */
static void pv_accumulate(int gn, const float (*pj)[KB], int nv, const float (*VB)[MAX_HD], int hd, float *const *oh, int first) {
    for (int h0 = 0; h0 < gn; h0 += 4)
        for (int c0 = 0; c0 < hd; c0 += 64) {
            int cn = (hd - c0 < 64 ? hd - c0 : 64) / 16;
            switch (cn) {
            case 1: pv4(1, pj + h0, nv, VB, c0, oh + h0, first); break;
            case 2: pv4(2, pj + h0, nv, VB, c0, oh + h0, first); break;
            case 3: pv4(3, pj + h0, nv, VB, c0, oh + h0, first); break;
            default: pv4(4, pj + h0, nv, VB, c0, oh + h0, first); break;
            }
        }
}

/* Same numerics as qe_attention_ref (q and the normalised probabilities rounded to fp16, the exponentials
 * summed in double), computed over blocks of 16 keys shared by every query token and head of a chunk (the
 * scratch holds one row of scores per head, so a chunk of several queries computes its scores twice; a single
 * query, as in decode, keeps them from pass 0):
 *   pass 0: scores -> per-lane running max m and running sum of exp(s - m), rescaled when m grows (no
 *           horizontal reduction or branch per block); at the end max = max(m), sum = sum exp(m - max) * lane sums
 *           in double;
 *   pass 1: scores -> p = fp16(exp(s - max) / sum), out = sum_j p_j v_j.
 * The exponentials of pass 0 are computed against the lane maxima, so the sum can differ from the reference's
 * in the last bits of f32 (the inverse is rounded to f32 either way). */
void qe_avx512_attention(const float *q, int n_q, int q_pos0, const uint16_t *k, const uint16_t *v, int64_t kv_stride,
                         int n_kv, int n_head, int n_head_kv, int head_dim, int kv_lo, int kv_hi, float *out,
                         float *scratch) {
    enum { GMAX = 8, QC = 16, QR_HD = 128 }; /* QR_HD bounds the stack (~100 KB); Qwen2 heads are 64 or 128 */
    if (head_dim % 16 || head_dim > QR_HD || n_head % n_head_kv) {
        qe_attention_ref(q, n_q, q_pos0, k, v, kv_stride, n_kv, n_head, n_head_kv, head_dim, kv_lo, kv_hi, out, scratch);
        return;
    }
    const int group = n_head / n_head_kv, nd = head_dim / 16;
    const float scale = 1.0f / sqrtf((float)head_dim);
    const int64_t ld = (int64_t)n_head * head_dim;
    float KT[MAX_HD][KB] __attribute__((aligned(64)));
    float VB[KB][MAX_HD] __attribute__((aligned(64)));
    float pj[GMAX][KB] __attribute__((aligned(64)));
    float qr[QC][GMAX * QR_HD] __attribute__((aligned(64))); /* fp16-rounded q of the chunk */
    float dummy[MAX_HD] __attribute__((aligned(64)));
    memset(pj, 0, sizeof pj);
    __m512 mvec[QC * GMAX], svec[QC * GMAX];
    float m_run[QC * GMAX], inv[QC * GMAX];
    for (int hk = kv_lo; hk < kv_hi; hk++)
        for (int gh0 = 0; gh0 < group; gh0 += GMAX) {
            int gn = group - gh0 < GMAX ? group - gh0 : GMAX;
            for (int i0 = 0; i0 < n_q; i0 += QC) {
                int in = n_q - i0 < QC ? n_q - i0 : QC;
                int vis_max = q_pos0 + i0 + in < n_kv ? q_pos0 + i0 + in : n_kv;
                for (int i = 0; i < in; i++) { /* q rounded through fp16, as ggml converts it to K's type */
                    const float *qi = q + (i0 + i) * ld + (int64_t)(hk * group + gh0) * head_dim;
                    for (int c = 0; c < gn * nd; c++)
                        _mm512_store_ps(qr[i] + c * 16, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(qi + c * 16), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
                }
                for (int i = 0; i < in * GMAX; i++) { mvec[i] = _mm512_set1_ps(-INFINITY); svec[i] = _mm512_setzero_ps(); }
                /* one query (decode): pass 0 keeps the heads' scores in scratch and pass 1 reads them back, so K
                 * is transposed and multiplied once (QE_ATT_SCRATCH leaves room for gn rows of n_kv + 16) */
                const int keep = in == 1;
                const int64_t srow = (vis_max + KB - 1) / KB * KB;
                for (int pass = 0; pass < 2; pass++) {
                    for (int j0 = 0; j0 < vis_max; j0 += KB) {
                        int jn = vis_max - j0 < KB ? vis_max - j0 : KB;
                        if (!(keep && pass == 1)) load_kt(k, kv_stride, hk, head_dim, j0, jn, KT);
                        if (pass == 1)
                            for (int j = 0; j < KB; j++)
                                for (int c = 0; c < nd; c++)
                                    _mm512_store_ps(VB[j] + c * 16, j < jn ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(v + (int64_t)(j0 + j) * kv_stride + (int64_t)hk * head_dim + c * 16)))
                                                                           : _mm512_setzero_ps());
                        for (int i = 0; i < in; i++) {
                            int vis = q_pos0 + i0 + i + 1 < n_kv ? q_pos0 + i0 + i + 1 : n_kv;
                            if (vis <= j0) continue;
                            int nv = vis - j0 < KB ? vis - j0 : KB;
                            __mmask16 mk = (__mmask16)((1u << nv) - 1);
                            __m512 sc[GMAX];
                            if (keep && pass == 1) {
                                for (int h = 0; h < gn; h++) sc[h] = _mm512_loadu_ps(scratch + h * srow + j0);
                            } else {
                                scores(gn, qr[i], head_dim, (const float (*)[KB])KT, scale, mk, sc);
                                if (keep)
                                    for (int h = 0; h < gn; h++) _mm512_storeu_ps(scratch + h * srow + j0, sc[h]);
                            }
                            float *oh[GMAX];
                            for (int h = gn; h < GMAX; h++) oh[h] = dummy; /* pj rows stay zero */
                            for (int h = 0; h < gn; h++) {
                                int si = i * GMAX + h;
                                if (pass == 0) {
                                    /* lanes that saw no key yet have m = -inf: their factor exp(-inf - x) is 0,
                                     * masked lanes of this block contribute exp(-inf) = 0 */
                                    __m512 mn = _mm512_max_ps(mvec[si], sc[h]);
                                    __m512 f = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(mvec[si], mn, _CMP_EQ_OQ), _mm512_set1_ps(1.0f));
                                    __mmask16 grew = _mm512_cmp_ps_mask(mvec[si], mn, _CMP_LT_OQ) & _mm512_cmp_ps_mask(mvec[si], _mm512_set1_ps(-INFINITY), _CMP_NEQ_OQ);
                                    f = _mm512_mask_mov_ps(f, grew, exp512(_mm512_sub_ps(mvec[si], mn)));
                                    __m512 e = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(sc[h], _mm512_set1_ps(-INFINITY), _CMP_NEQ_OQ), exp512(_mm512_sub_ps(sc[h], mn)));
                                    svec[si] = _mm512_fmadd_ps(svec[si], f, e);
                                    mvec[si] = mn;
                                    continue;
                                }
                                __m512 e = _mm512_maskz_mov_ps(mk, exp512(_mm512_sub_ps(sc[h], _mm512_set1_ps(m_run[si]))));
                                _mm512_store_ps(pj[h], _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_mul_ps(e, _mm512_set1_ps(inv[si])), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
                                oh[h] = out + (i0 + i) * ld + (int64_t)(hk * group + gh0 + h) * head_dim;
                            }
                            if (pass == 1) pv_accumulate(gn, (const float (*)[KB])pj, nv, (const float (*)[MAX_HD])VB, head_dim, oh, j0 == 0);
                        }
                    }
                    if (pass == 0)
                        for (int i = 0; i < in * GMAX; i++) {
                            float M = _mm512_reduce_max_ps(mvec[i]), lm[16], ls[16];
                            _mm512_storeu_ps(lm, mvec[i]);
                            _mm512_storeu_ps(ls, svec[i]);
                            double sum = 0;
                            for (int l = 0; l < 16; l++)
                                if (lm[l] != -INFINITY) sum += (double)ls[l] * exp((double)lm[l] - (double)M);
                            m_run[i] = M;
                            inv[i] = sum > 0 ? (float)(1.0 / sum) : 0.0f;
                        }
                }
                /* a query that sees no key (n_kv == 0): zero output, as the reference */
                if (n_kv <= 0)
                    for (int i = 0; i < in; i++)
                        for (int h = 0; h < gn; h++)
                            memset(out + (i0 + i) * ld + (int64_t)(hk * group + gh0 + h) * head_dim, 0, sizeof(float) * head_dim);
            }
        }
}
