/* ops_avx2.c — AVX2 + FMA + F16C versions of the per-token ops (ops.h), for CPUs without AVX-512: rmsnorm,
 * swiglu, f32->f16 rows and attention. The attention follows ops_avx512.c (see there for the decode and prefill
 * schemes) with 8-wide vectors and, having 16 registers instead of 32, narrower register tiles; every function is
 * held to ops_ref.c by tests/unit/test_ops.c. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "base.h"
#include "kernels/kern.h"
#include "kernels/ops.h"

#define INLINE static inline __attribute__((always_inline))

/* exp(x): x = n ln2 + r, degree-6 polynomial (Cephes expf), 2^n built in the exponent field. Inputs above
 * 88.72 give +inf and below -87.33 give 0, as expf (to within its subnormal range). */
INLINE __m256 exp256(__m256 x) {
    __m256 big = _mm256_cmp_ps(x, _mm256_set1_ps(88.72283f), _CMP_GT_OQ);
    __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654f), _CMP_LT_OQ);
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.33654f)), _mm256_set1_ps(88.3762626647949f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500E-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* n in [-126, 127]: 2^n is a normal float */
    __m256 pow2n = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
    __m256 e = _mm256_mul_ps(p, pow2n);
    e = _mm256_blendv_ps(e, _mm256_set1_ps(INFINITY), big);
    return _mm256_blendv_ps(e, _mm256_setzero_ps(), tiny);
}

void qe_avx2_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 sq = _mm256_mul_ps(v, v);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(sq)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(sq, 1)));
    }
    double t[4];
    _mm256_storeu_pd(t, _mm256_add_pd(s0, s1));
    double sum = t[0] + t[1] + t[2] + t[3];
    for (; i < n; i++) sum += (double)(x[i] * x[i]);
    float scale = 1.0f / sqrtf((float)(sum / n) + eps);
    __m256 vs = _mm256_set1_ps(scale);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), _mm256_loadu_ps(w + i)));
    for (; i < n; i++) out[i] = (x[i] * scale) * w[i];
}

void qe_avx2_swiglu(float *out, const float *gate, const float *up, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i), u = _mm256_loadu_ps(up + i);
        __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), g));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u));
    }
    for (; i < n; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void qe_avx2_f32_to_f16_row(const float *x, uint16_t *out, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(out + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) out[i] = qe_fp32_to_fp16(x[i]);
}

/* --- attention ---------------------------------------------------------------------------------------------- */

#define KB 8

INLINE __m256 lane_mask(int nv) {
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(nv), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
}

/* ---- decode: one query token against every cached key (the scheme of ops_avx512.c's decode_group) ---------- */

/* Scores of GN heads for 8 keys (one half of a 16-key cache block: row + d * 16 + half * 8), times scale, keys
 * outside the lane mask -inf; stored to scr[h * srow] and folded into the per-lane maxima. 16 ymm registers
 * hold GN accumulators, the converted key row and the broadcast; HD is a constant for fixed displacements. */
INLINE void dec_scores8(const int GN, const int HD, const float *qr, const uint16_t *kb, float scale, __m256 keep,
                        float *scr, int64_t srow, __m256 *mx) {
    __m256 acc[8];
#pragma GCC unroll 8
    for (int h = 0; h < GN; h++) acc[h] = _mm256_setzero_ps();
#pragma GCC unroll 2
    for (int d = 0; d < HD; d++) {
        __m256 kv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kb + d * QE_KV_BLOCK)));
#pragma GCC unroll 8
        for (int h = 0; h < GN; h++) acc[h] = _mm256_fmadd_ps(_mm256_broadcast_ss(qr + h * HD + d), kv, acc[h]);
    }
#pragma GCC unroll 8
    for (int h = 0; h < GN; h++) {
        __m256 sc = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_mul_ps(acc[h], _mm256_set1_ps(scale)), keep);
        _mm256_storeu_ps(scr + h * srow, sc);
        mx[h] = _mm256_max_ps(mx[h], sc);
    }
}

/* out[h][c0 .. c0 + 16) += sum_j p[h][j] v_j[c0 .. c0 + 16) over the nv keys of one block, for H <= 6 heads:
 * 2 H accumulators (loaded from and stored to out: the block's values stay in L1 across the head and column
 * chunks, so the cache is still read once). */
INLINE void dec_pv(const int H, const int HD, const float (*pj)[64], int nv, const uint16_t *vb, int c0, float *const *oh) {
    __m256 acc[6][2];
#pragma GCC unroll 6
    for (int h = 0; h < H; h++) {
        acc[h][0] = _mm256_loadu_ps(oh[h] + c0);
        acc[h][1] = _mm256_loadu_ps(oh[h] + c0 + 8);
    }
    for (int j = 0; j < nv; j++) {
        __m256 v0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vb + j * HD + c0)));
        __m256 v1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vb + j * HD + c0 + 8)));
#pragma GCC unroll 6
        for (int h = 0; h < H; h++) {
            __m256 p = _mm256_broadcast_ss(&pj[h][j]);
            acc[h][0] = _mm256_fmadd_ps(p, v0, acc[h][0]);
            acc[h][1] = _mm256_fmadd_ps(p, v1, acc[h][1]);
        }
    }
#pragma GCC unroll 6
    for (int h = 0; h < H; h++) {
        _mm256_storeu_ps(oh[h] + c0, acc[h][0]);
        _mm256_storeu_ps(oh[h] + c0 + 8, acc[h][1]);
    }
}

/* One query token, gn <= 8 heads, n >= 1 visible keys, head_dim HD: scores into scratch with lane maxima; softmax
 * in place (each 8-vector summed in f32, those sums in double, as ggml's soft_max); values in blocks of 64 keys,
 * p = fp16(e / sum). */
INLINE void dec_group(const int HD, const float *qh, int gn, const uint16_t *kh, const uint16_t *vh, int n,
                      float *const *oh, float *scratch) {
    float qr[8 * HD] __attribute__((aligned(32))); /* q rounded through fp16, as ggml converts it to K's type */
    for (int i = 0; i < gn * HD; i += 8)
        _mm256_store_ps(qr + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(qh + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    const float scale = 1.0f / sqrtf((float)HD);
    const int64_t srow = (int64_t)(n + QE_KV_BLOCK - 1) / QE_KV_BLOCK * QE_KV_BLOCK;
    __m256 mx[8];
    for (int h = 0; h < gn; h++) mx[h] = _mm256_set1_ps(-INFINITY);
    for (int j0 = 0; j0 < n; j0 += 8) {
        const uint16_t *kb = kh + qe_kv_key_index(0, HD, 0, j0, 0);
        const __m256 keep = lane_mask(n - j0);
#define SCORES(G) dec_scores8(G, HD, qr, kb, scale, keep, scratch + j0, srow, mx)
        QE_DISPATCH(gn, 8, SCORES)
#undef SCORES
    }
    float inv[8];
    for (int h = 0; h < gn; h++) {
        float *sh = scratch + h * srow, lm[8], M = -INFINITY;
        _mm256_storeu_ps(lm, mx[h]);
        for (int l = 0; l < 8; l++) M = lm[l] > M ? lm[l] : M;
        const __m256 m = _mm256_set1_ps(M), ninf = _mm256_set1_ps(-INFINITY);
        double sum = 0;
        for (int j0 = 0; j0 < n; j0 += 8) {
            __m256 sc = _mm256_loadu_ps(sh + j0);
            __m256 e = _mm256_and_ps(exp256(_mm256_sub_ps(sc, m)), _mm256_cmp_ps(sc, ninf, _CMP_NEQ_OQ));
            _mm256_storeu_ps(sh + j0, e);
            __m128 s4 = _mm_add_ps(_mm256_extractf128_ps(e, 1), _mm256_castps256_ps128(e));
            s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
            s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
            sum += (double)_mm_cvtss_f32(s4);
        }
        inv[h] = sum > 0 ? (float)(1.0 / sum) : 0.0f;
    }
    for (int h = 0; h < gn; h++) memset(oh[h], 0, sizeof(float) * HD);
    /* at most 6 heads per value pass; a group of 7 or 8 runs as two near-equal halves */
    const int hn = gn <= 6 ? gn : (gn + 1) / 2;
    float pj[8][64] __attribute__((aligned(32)));
    for (int j0 = 0; j0 < n; j0 += 64) {
        const int nv = n - j0 < 64 ? n - j0 : 64;
        for (int h = 0; h < gn; h++)
            for (int j = 0; j < nv; j += 8)
                _mm256_store_ps(pj[h] + j, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_mul_ps(_mm256_loadu_ps(scratch + h * srow + j0 + j), _mm256_set1_ps(inv[h])),
                                                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
        const uint16_t *vb = vh + (int64_t)j0 * HD;
        for (int h0 = 0; h0 < gn; h0 += hn) {
            const int hc = gn - h0 < hn ? gn - h0 : hn;
            for (int c0 = 0; c0 < HD; c0 += 16) {
#define PV(H) dec_pv(H, HD, (const float (*)[64])pj + h0, nv, vb, c0, oh + h0)
                QE_DISPATCH(hc, 6, PV)
#undef PV
            }
        }
    }
}

static void dec_group64(const float *qh, int gn, const uint16_t *kh, const uint16_t *vh, int n, float *const *oh, float *scratch) {
    dec_group(64, qh, gn, kh, vh, n, oh, scratch);
}
static void dec_group128(const float *qh, int gn, const uint16_t *kh, const uint16_t *vh, int n, float *const *oh, float *scratch) {
    dec_group(128, qh, gn, kh, vh, n, oh, scratch);
}

/* ---- prefill: a chunk of query tokens (the scheme of ops_avx512.c's prefill_group, 8 keys per block) ------ */

enum { PF_GMAX = 8, PF_QC = 16 }; /* heads per pass, query tokens per chunk */

/* Keys j0..j0+jn-1 (j0 a multiple of 8, so within one 16-key block of the cache) -> KT[d][8] f32; missing keys
 * are zero. The cache stores them dimension-major, so this is a conversion, not a transposition. */
INLINE void prefill_load_keys(const int HD, const uint16_t *kb, int jn, float (*KT)[KB]) {
    const __m256 keep = lane_mask(jn);
#pragma GCC unroll 4
    for (int d = 0; d < HD; d++)
        _mm256_store_ps(KT[d], _mm256_and_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kb + d * QE_KV_BLOCK))), keep));
}

/* Folds one block's scores into a lane's running max m and sum s of exp(score - m): s = s * f + e, f = 1 if the
 * max did not grow, exp(old - new) if it grew from a finite value (from -inf the sum is 0 anyway); the factor's
 * exponential only when some lane grew. */
INLINE void prefill_online_stats(__m256 sc, __m256 *m, __m256 *s) {
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 mo = *m, mn = _mm256_max_ps(mo, sc);
    __m256 grew = _mm256_and_ps(_mm256_cmp_ps(mo, mn, _CMP_LT_OQ), _mm256_cmp_ps(mo, ninf, _CMP_NEQ_OQ));
    __m256 f = _mm256_set1_ps(1.0f);
    if (_mm256_movemask_ps(grew)) f = _mm256_blendv_ps(f, exp256(_mm256_sub_ps(mo, mn)), grew);
    __m256 e = _mm256_and_ps(exp256(_mm256_sub_ps(sc, mn)), _mm256_cmp_ps(sc, ninf, _CMP_NEQ_OQ));
    *s = _mm256_fmadd_ps(*s, f, e);
    *m = mn;
}

/* Scores of GN heads of one query token (qr[h][d], fp16-rounded q) against the 8 keys of KT, times scale, keys
 * outside mk -inf: stored to Sb[h * 8] and folded into the heads' running max and sum. HD a constant: see
 * dec_scores8. */
INLINE void prefill_scores(const int GN, const int HD, const float *qr, const float (*KT)[KB], float scale, __m256 mk,
                           float *Sb, __m256 *m, __m256 *s) {
    __m256 acc[8];
#pragma GCC unroll 8
    for (int h = 0; h < GN; h++) acc[h] = _mm256_setzero_ps();
#pragma GCC unroll 2
    for (int d = 0; d < HD; d++) {
        __m256 kt = _mm256_load_ps(KT[d]);
#pragma GCC unroll 8
        for (int h = 0; h < GN; h++) acc[h] = _mm256_fmadd_ps(_mm256_broadcast_ss(qr + h * HD + d), kt, acc[h]);
    }
#pragma GCC unroll 8
    for (int h = 0; h < GN; h++) {
        __m256 sc = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_mul_ps(acc[h], _mm256_set1_ps(scale)), mk);
        _mm256_storeu_ps(Sb + h * KB, sc);
        prefill_online_stats(sc, &m[h], &s[h]);
    }
}

/* out[h][c0 .. c0 + 16) (+)= sum_j p[h][j] * VB[j][c0 ..] for H <= 4 heads: 2 H accumulators. */
INLINE void prefill_pv(const int H, const int HD, const float (*pj)[KB], int nv, const float *VB, int c0, float *const *oh, int first) {
    __m256 acc[4][2];
#pragma GCC unroll 4
    for (int h = 0; h < H; h++)
#pragma GCC unroll 2
        for (int c = 0; c < 2; c++) acc[h][c] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(oh[h] + c0 + c * 8);
    for (int j = 0; j < nv; j++) {
        __m256 v0 = _mm256_load_ps(VB + j * HD + c0), v1 = _mm256_load_ps(VB + j * HD + c0 + 8);
#pragma GCC unroll 4
        for (int h = 0; h < H; h++) {
            __m256 p = _mm256_broadcast_ss(&pj[h][j]);
            acc[h][0] = _mm256_fmadd_ps(p, v0, acc[h][0]);
            acc[h][1] = _mm256_fmadd_ps(p, v1, acc[h][1]);
        }
    }
#pragma GCC unroll 4
    for (int h = 0; h < H; h++)
#pragma GCC unroll 2
        for (int c = 0; c < 2; c++) _mm256_storeu_ps(oh[h] + c0 + c * 8, acc[h][c]);
}

/* gn <= PF_GMAX heads (head0 ..) of KV head hk, every query token in chunks of PF_QC, over blocks of 8 keys:
 * pass 0 scores (kept in scratch, block-major) and running softmax statistics, pass 1 p = fp16(exp(s - max) / sum)
 * and out = sum_j p_j v_j. */
INLINE void prefill_group(const int HD, const float *q, int n_q, int q_pos0, const uint16_t *k, const uint16_t *v,
                          int64_t head_stride, int n_kv, int hk, int head0, int gn, int64_t ld, float *out, float *scratch) {
    float KT[HD][KB] __attribute__((aligned(32)));
    float VB[KB * HD] __attribute__((aligned(32)));
    float pj[PF_GMAX][KB] __attribute__((aligned(32)));
    float qr[PF_QC][PF_GMAX * HD] __attribute__((aligned(32)));
    __m256 mvec[PF_QC * PF_GMAX], svec[PF_QC * PF_GMAX];
    float m_run[PF_QC * PF_GMAX], inv[PF_QC * PF_GMAX];
    const float scale = 1.0f / sqrtf((float)HD);
    for (int i0 = 0; i0 < n_q; i0 += PF_QC) {
        const int in = n_q - i0 < PF_QC ? n_q - i0 : PF_QC;
        const int vis_max = q_pos0 + i0 + in < n_kv ? q_pos0 + i0 + in : n_kv;
        for (int i = 0; i < in; i++) { /* q rounded through fp16, as ggml converts it to K's type */
            const float *qi = q + (i0 + i) * ld + (int64_t)head0 * HD;
            for (int c = 0; c < gn * HD; c += 8)
                _mm256_store_ps(qr[i] + c, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(qi + c), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
        }
        for (int i = 0; i < in * PF_GMAX; i++) { mvec[i] = _mm256_set1_ps(-INFINITY); svec[i] = _mm256_setzero_ps(); }
        float *S = scratch; /* block b, token i, head h at S + ((b * in + i) * gn + h) * KB */
        for (int j0 = 0; j0 < vis_max; j0 += KB) {
            prefill_load_keys(HD, k + qe_kv_key_index(head_stride, HD, hk, j0, 0), vis_max - j0 < KB ? vis_max - j0 : KB, KT);
            for (int i = 0; i < in; i++) {
                const int vis = q_pos0 + i0 + i + 1 < n_kv ? q_pos0 + i0 + i + 1 : n_kv;
                if (vis <= j0) continue;
                float *Sb = S + ((int64_t)(j0 / KB) * in + i) * gn * KB;
#define SCORES(G) prefill_scores(G, HD, qr[i], (const float (*)[KB])KT, scale, lane_mask(vis - j0), Sb, mvec + i * PF_GMAX, svec + i * PF_GMAX)
                QE_DISPATCH(gn, 8, SCORES)
#undef SCORES
            }
        }
        for (int i = 0; i < in; i++)
            for (int h = 0; h < gn; h++) {
                const int si = i * PF_GMAX + h;
                float lm[8], ls[8];
                _mm256_storeu_ps(lm, mvec[si]);
                _mm256_storeu_ps(ls, svec[si]);
                qe_lane_softmax_stats(lm, ls, 8, &m_run[si], &inv[si]);
            }
        for (int j0 = 0; j0 < vis_max; j0 += KB) {
            const int jn = vis_max - j0 < KB ? vis_max - j0 : KB;
            for (int j = 0; j < KB; j++)
#pragma GCC unroll 16
                for (int c = 0; c < HD; c += 8)
                    _mm256_store_ps(VB + j * HD + c, j < jn ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + qe_kv_value_index(head_stride, HD, hk, j0 + j, c))))
                                                            : _mm256_setzero_ps());
            for (int i = 0; i < in; i++) {
                const int vis = q_pos0 + i0 + i + 1 < n_kv ? q_pos0 + i0 + i + 1 : n_kv;
                if (vis <= j0) continue;
                const int nv = vis - j0 < KB ? vis - j0 : KB;
                const __m256 mk = lane_mask(nv);
                const float *Sb = S + ((int64_t)(j0 / KB) * in + i) * gn * KB;
                float *oh[PF_GMAX];
                for (int h = 0; h < gn; h++) {
                    const int si = i * PF_GMAX + h;
                    __m256 e = _mm256_and_ps(exp256(_mm256_sub_ps(_mm256_loadu_ps(Sb + h * KB), _mm256_set1_ps(m_run[si]))), mk);
                    _mm256_store_ps(pj[h], _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_mul_ps(e, _mm256_set1_ps(inv[si])), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
                    oh[h] = out + (i0 + i) * ld + (int64_t)(head0 + h) * HD;
                }
                for (int h0 = 0; h0 < gn; h0 += 4)
                    for (int c0 = 0; c0 < HD; c0 += 16) {
#define PV(H) prefill_pv(H, HD, (const float (*)[KB])pj + h0, nv, VB, c0, oh + h0, j0 == 0)
                        QE_DISPATCH(gn - h0, 4, PV)
#undef PV
                    }
            }
        }
        if (n_kv <= 0) /* a query that sees no key: zero output, as the reference */
            for (int i = 0; i < in; i++)
                for (int h = 0; h < gn; h++) memset(out + (i0 + i) * ld + (int64_t)(head0 + h) * HD, 0, sizeof(float) * HD);
    }
}

void qe_avx2_attention(const float *q, int n_q, int q_pos0, const uint16_t *k, const uint16_t *v, int64_t head_stride,
                       int n_kv, int n_head, int n_head_kv, int head_dim, int kv_lo, int kv_hi, float *out,
                       float *scratch) {
    if ((head_dim != 64 && head_dim != 128) || n_head % n_head_kv) {
        qe_attention_ref(q, n_q, q_pos0, k, v, head_stride, n_kv, n_head, n_head_kv, head_dim, kv_lo, kv_hi, out, scratch);
        return;
    }
    if (n_q == 1) {
        qe_attention_decode(q, q_pos0, k, v, head_stride, n_kv, n_head, n_head_kv, head_dim, kv_lo, kv_hi, out, scratch,
                            head_dim == 64 ? dec_group64 : dec_group128);
        return;
    }
    const int group = n_head / n_head_kv;
    const int64_t ld = (int64_t)n_head * head_dim;
    for (int hk = kv_lo; hk < kv_hi; hk++)
        for (int gh0 = 0; gh0 < group; gh0 += PF_GMAX) {
            const int gn = group - gh0 < PF_GMAX ? group - gh0 : PF_GMAX, head0 = hk * group + gh0;
            if (head_dim == 64) prefill_group(64, q, n_q, q_pos0, k, v, head_stride, n_kv, hk, head0, gn, ld, out, scratch);
            else prefill_group(128, q, n_q, q_pos0, k, v, head_stride, n_kv, hk, head0, gn, ld, out, scratch);
        }
}
