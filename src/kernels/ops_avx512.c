/* ops_avx512.c — AVX-512 versions of the per-token ops (ops.h): rmsnorm, swiglu, f32->f16 rows and the
 * attention over the fp16 KV cache. Twins of ops_ref.c, held equal by tests/unit/test_ops.c.
 *
 * The cache keeps keys dimension-major in blocks of 16 positions (ops.h), so one converted 32-byte row is
 * dimension d of 16 keys and a score vector for 16 keys is head_dim FMAs with the query element broadcast — no
 * horizontal sums, no transposition — and it serves every query head of the KV head.
 *   decode (one query token): scores of all heads into scratch, softmax over them, then the value rows
 *     streamed once with every head's 64-wide output accumulators held in registers (decode_group);
 *   prefill (a chunk of query tokens): flash-style per block of 16 keys, the block converted once for every
 *     token and head of the chunk, softmax statistics run online in pass 0 and the output summed in pass 1. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "base.h"
#include "kernels/kern.h"
#include "kernels/ops.h"

/* exp(x) for a vector: x = n ln2 + r, |r| <= ln2/2, exp(r) by a degree-6 polynomial (Cephes expf
 * coefficients), times 2^n via vscalefps. ~1 ulp. Inputs below -87.3 give ~1.2e-38, the smallest normal float,
 * not 0: a subnormal result costs a microcode assist of ~200 cycles per vector (measured), and every caller
 * masks the -inf lanes (or adds the result to 1) anyway. */
static inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
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

#define KB 16        /* keys per block */
#define INLINE static inline __attribute__((always_inline))

/* ---- decode: one query token against every cached key --------------------------------------------------- */

/* Scores of GN heads (qr[h][d], fp16-rounded q) for the 16 keys of one cache block, times scale, keys outside mk
 * -inf; stored to scr[h * srow] and folded into the per-lane maxima mx. pf: the block QE_ATT_PF_KEYS keys ahead,
 * asked for one line every two rows of d (NULL near the end). HD is a
 * compile-time constant so every broadcast addresses qr with one index register and a fixed displacement (with a
 * run-time head_dim GCC keeps a pointer per head and spills them: the loop then waits on loads, ~1.7x slower). */
INLINE void decode_scores(const int GN, const int HD, const float *qr, const uint16_t *kb, const uint16_t *pf, float scale,
                          __mmask16 mk, float *scr, int64_t srow, __m512 *mx) {
    __m512 acc[8];
#pragma GCC unroll 8
    for (int h = 0; h < GN; h++) acc[h] = _mm512_setzero_ps();
#pragma GCC unroll 2
    for (int d = 0; d < HD; d++) {
        if (pf && (d & 1) == 0) __builtin_prefetch(pf + d * QE_KV_BLOCK, 0, 3);
        __m512 kv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(kb + d * QE_KV_BLOCK)));
#pragma GCC unroll 8
        for (int h = 0; h < GN; h++) acc[h] = _mm512_fmadd_ps(_mm512_set1_ps(qr[h * HD + d]), kv, acc[h]);
    }
#pragma GCC unroll 8
    for (int h = 0; h < GN; h++) {
        __m512 sc = _mm512_mask_blend_ps(mk, _mm512_set1_ps(-INFINITY), _mm512_mul_ps(acc[h], _mm512_set1_ps(scale)));
        _mm512_storeu_ps(scr + h * srow, sc);
        mx[h] = _mm512_max_ps(mx[h], sc);
    }
}

/* out[h][c0 .. c0 + 64) = sum_j p[h][j] v_j[c0 .. c0 + 64) for GN <= 7 heads: 4 x GN accumulators stay in
 * registers for the whole pass, each value row is converted once for every head. p[h][j] = fp16(e[h][j] * inv[h])
 * from the head's row of exponentials in scr (stride srow), as the reference computes it. */
INLINE void decode_pv(const int GN, const int HD, const float *scr, int64_t srow, const float *inv, const uint16_t *vh,
                      int c0, int n, float *const *oh) {
    __m512 acc[7][4];
#pragma GCC unroll 7
    for (int h = 0; h < GN; h++)
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) acc[h][c] = _mm512_setzero_ps();
    float pj[7][KB] __attribute__((aligned(64)));
    for (int j0 = 0; j0 < n; j0 += KB) {
#pragma GCC unroll 7
        for (int h = 0; h < GN; h++)
            _mm512_store_ps(pj[h], _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_mul_ps(_mm512_loadu_ps(scr + h * srow + j0), _mm512_set1_ps(inv[h])),
                                                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
        int nv = n - j0 < KB ? n - j0 : KB;
        const uint16_t *vb = vh + (int64_t)j0 * HD + c0;
        for (int j = 0; j < nv; j++) {
            __m512 vv[4];
            if (j0 + j + QE_ATT_PF_KEYS < n) qe_prefetch_lines((const uint8_t *)(vb + (int64_t)(j + QE_ATT_PF_KEYS) * HD), 128);
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) vv[c] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(vb + j * HD + c * 16)));
#pragma GCC unroll 7
            for (int h = 0; h < GN; h++) {
                __m512 pb = _mm512_set1_ps(pj[h][j]);
#pragma GCC unroll 4
                for (int c = 0; c < 4; c++) acc[h][c] = _mm512_fmadd_ps(pb, vv[c], acc[h][c]);
            }
        }
    }
#pragma GCC unroll 7
    for (int h = 0; h < GN; h++)
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) _mm512_storeu_ps(oh[h] + c0 + c * 16, acc[h][c]);
}

/* One query token, gn <= 8 heads of KV head hk, n >= 1 visible keys, head_dim HD (64 or 128):
 *   1. scores: the key blocks streamed once, every head's scores kept in scratch with per-lane maxima;
 *   2. softmax: e = exp(s - max) in place; the sum as ggml's soft_max forms it (each vector of 16 summed in f32,
 *      those sums added in double), since a last-bit change of 1/sum can flip an fp16 rounding of p;
 *   3. values: streamed once per 64 output columns (once for head_dim 64), p = fp16(e / sum).
 * (Computing the softmax sum online during pass 1 instead, to overlap it with the key stream, was measured
 * slower: it needs the exponentials twice.) */
INLINE void decode_group(const int HD, const float *qh, int gn, const uint16_t *kh, const uint16_t *vh, int n,
                         float *const *oh, float *scratch) {
    float qr[8 * HD] __attribute__((aligned(64))); /* q rounded through fp16, as ggml converts it to K's type */
    for (int i = 0; i < gn * HD; i += 16)
        _mm512_store_ps(qr + i, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(qh + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    const float scale = 1.0f / sqrtf((float)HD);
    const int64_t srow = (int64_t)(n + KB - 1) / KB * KB;
    __m512 mx[8];
    for (int h = 0; h < gn; h++) mx[h] = _mm512_set1_ps(-INFINITY);
    for (int j0 = 0; j0 < n; j0 += KB) {
        const __mmask16 mk = (__mmask16)((1u << (n - j0 < KB ? n - j0 : KB)) - 1);
        const uint16_t *kb = kh + (int64_t)j0 * HD;
        const uint16_t *pf = j0 + QE_ATT_PF_KEYS + KB <= n ? kb + (int64_t)QE_ATT_PF_KEYS * HD : NULL;
#define SCORES(G) decode_scores(G, HD, qr, kb, pf, scale, mk, scratch + j0, srow, mx)
        QE_DISPATCH(gn, 8, SCORES)
#undef SCORES
    }
    float inv[8];
    for (int h = 0; h < gn; h++) {
        float *sh = scratch + h * srow;
        const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx[h])), ninf = _mm512_set1_ps(-INFINITY);
        double sum = 0;
        for (int j0 = 0; j0 < srow; j0 += KB) {
            __m512 sc = _mm512_loadu_ps(sh + j0);
            __m512 e = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(sc, ninf, _CMP_NEQ_OQ), exp512(_mm512_sub_ps(sc, m)));
            _mm512_storeu_ps(sh + j0, e);
            sum += (double)_mm512_reduce_add_ps(e);
        }
        inv[h] = sum > 0 ? (float)(1.0 / sum) : 0.0f;
    }
    /* 7 heads x 4 vectors fill the registers: a group of 8 runs as two halves of 4 */
    const int hn = gn <= 7 ? gn : (gn + 1) / 2;
    for (int h0 = 0; h0 < gn; h0 += hn) {
        const int hc = gn - h0 < hn ? gn - h0 : hn;
        for (int c0 = 0; c0 < HD; c0 += 64) {
#define PV(G) decode_pv(G, HD, scratch + h0 * srow, srow, inv + h0, vh, c0, n, oh + h0)
            QE_DISPATCH(hc, 7, PV)
#undef PV
        }
    }
}

static void decode_group64(const float *qh, int gn, const uint16_t *kh, const uint16_t *vh, int n, float *const *oh, float *scratch) {
    decode_group(64, qh, gn, kh, vh, n, oh, scratch);
}
static void decode_group128(const float *qh, int gn, const uint16_t *kh, const uint16_t *vh, int n, float *const *oh, float *scratch) {
    decode_group(128, qh, gn, kh, vh, n, oh, scratch);
}

/* ---- prefill: a chunk of query tokens against the keys each may see ------------------------------------------ */

enum { PF_GMAX = 8, PF_QC = 16 }; /* heads per pass (a KV group of more runs in parts), query tokens per chunk */

/* Keys j0..j0+jn-1 (one 16-key block of the cache) -> KT[d][16] f32; missing keys are zero. */
INLINE void prefill_load_keys(const int HD, const uint16_t *kb, int jn, float (*KT)[KB]) {
    const __mmask16 keep = (__mmask16)((1u << jn) - 1);
#pragma GCC unroll 4
    for (int d = 0; d < HD; d++)
        _mm512_store_ps(KT[d], _mm512_maskz_mov_ps(keep, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(kb + d * QE_KV_BLOCK)))));
}

/* Folds one block's scores sc into a lane's running max m and sum s of exp(score - m): s = s * exp(m_old - m) + e.
 * Lanes that saw no key yet have m = -inf (their factor is 0), masked keys add exp(-inf) = 0. The factor's
 * exponential is computed only when some lane's max grew, which after the first blocks is rare. */
INLINE void prefill_online_stats(__m512 sc, __m512 *m, __m512 *s) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 mn = _mm512_max_ps(*m, sc);
    __m512 f = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(*m, mn, _CMP_EQ_OQ), _mm512_set1_ps(1.0f));
    __mmask16 grew = _mm512_cmp_ps_mask(*m, mn, _CMP_LT_OQ) & _mm512_cmp_ps_mask(*m, ninf, _CMP_NEQ_OQ);
    if (grew) f = _mm512_mask_mov_ps(f, grew, exp512(_mm512_sub_ps(*m, mn)));
    __m512 e = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(sc, ninf, _CMP_NEQ_OQ), exp512(_mm512_sub_ps(sc, mn)));
    *s = _mm512_fmadd_ps(*s, f, e);
    *m = mn;
}

/* Scores of GN heads of one query token (qr[h][d]: fp16-rounded q) against NB = 1 or 2 blocks of 16 keys (KT, and
 * KT + HD rows), times scale, keys outside mk[b] -inf: block b stored to Sb[b] + h * 16 and folded into the heads'
 * running max m[h] and sum s[h], block 0 first. One broadcast of q serves both blocks: with one block the loop
 * issues a load per FMA and runs well below the FMA ports' rate (bench/KERNELS.md). HD a constant: see
 * decode_scores. */
INLINE void prefill_scores(const int GN, const int NB, const int HD, const float *qr, const float (*KT)[KB], float scale,
                           const __mmask16 *mk, float *const *Sb, __m512 *m, __m512 *s) {
    __m512 acc[2][8];
#pragma GCC unroll 2
    for (int b = 0; b < NB; b++)
#pragma GCC unroll 8
        for (int h = 0; h < GN; h++) acc[b][h] = _mm512_setzero_ps();
#pragma GCC unroll 2
    for (int d = 0; d < HD; d++) {
        __m512 kt[2];
#pragma GCC unroll 2
        for (int b = 0; b < NB; b++) kt[b] = _mm512_load_ps(KT[b * HD + d]);
#pragma GCC unroll 8
        for (int h = 0; h < GN; h++) {
            __m512 qb = _mm512_set1_ps(qr[h * HD + d]);
#pragma GCC unroll 2
            for (int b = 0; b < NB; b++) acc[b][h] = _mm512_fmadd_ps(qb, kt[b], acc[b][h]);
        }
    }
#pragma GCC unroll 2
    for (int b = 0; b < NB; b++)
#pragma GCC unroll 8
        for (int h = 0; h < GN; h++) {
            __m512 sc = _mm512_mask_blend_ps(mk[b], _mm512_set1_ps(-INFINITY), _mm512_mul_ps(acc[b][h], _mm512_set1_ps(scale)));
            _mm512_storeu_ps(Sb[b] + h * KB, sc);
            prefill_online_stats(sc, &m[h], &s[h]);
        }
}

/* out[h][c0 .. c0 + 64) (+)= sum_j p[h][j] * VB[j][c0 ..] for H <= 4 heads: 4 H accumulators, each VB vector loaded
 * once for the H heads. */
INLINE void prefill_pv(const int H, const int HD, const float (*pj)[KB], int nv, const float *VB, int c0, float *const *oh, int first) {
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int h = 0; h < H; h++)
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) acc[h][c] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(oh[h] + c0 + c * 16);
    for (int j = 0; j < nv; j++) {
        __m512 vv[4];
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) vv[c] = _mm512_load_ps(VB + j * HD + c0 + c * 16);
#pragma GCC unroll 4
        for (int h = 0; h < H; h++) {
            __m512 p = _mm512_set1_ps(pj[h][j]);
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) acc[h][c] = _mm512_fmadd_ps(p, vv[c], acc[h][c]);
        }
    }
#pragma GCC unroll 4
    for (int h = 0; h < H; h++)
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) _mm512_storeu_ps(oh[h] + c0 + c * 16, acc[h][c]);
}

/* gn <= PF_GMAX heads (head0 ..) of KV head hk, every query token, in chunks of PF_QC tokens, over blocks of 16 keys,
 * each key block converted once for every token and head of the chunk:
 *   pass 0: scores (kept in scratch, block-major so both passes stream them) -> per-lane running max and sum
 *           (prefill_online_stats); at the end max = max(m), sum = sum exp(m - max) * lane sums in double;
 *   pass 1: the kept scores -> p = fp16(exp(s - max) / sum), out = sum_j p_j v_j. */
INLINE void prefill_group(const int HD, const float *q, int n_q, int q_pos0, const uint16_t *k, const uint16_t *v,
                          int64_t head_stride, int n_kv, int hk, int head0, int gn, int64_t ld, float *out, float *scratch) {
    float KT[2 * HD][KB] __attribute__((aligned(64))); /* two key blocks */
    float VB[KB * HD] __attribute__((aligned(64)));
    float pj[PF_GMAX][KB] __attribute__((aligned(64)));
    float qr[PF_QC][PF_GMAX * HD] __attribute__((aligned(64))); /* fp16-rounded q of the chunk */
    __m512 mvec[PF_QC * PF_GMAX], svec[PF_QC * PF_GMAX];
    float m_run[PF_QC * PF_GMAX], inv[PF_QC * PF_GMAX];
    const float scale = 1.0f / sqrtf((float)HD);
    for (int i0 = 0; i0 < n_q; i0 += PF_QC) {
        const int in = n_q - i0 < PF_QC ? n_q - i0 : PF_QC;
        const int vis_max = q_pos0 + i0 + in < n_kv ? q_pos0 + i0 + in : n_kv;
        for (int i = 0; i < in; i++) { /* q rounded through fp16, as ggml converts it to K's type */
            const float *qi = q + (i0 + i) * ld + (int64_t)head0 * HD;
            for (int c = 0; c < gn * HD; c += 16)
                _mm512_store_ps(qr[i] + c, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(qi + c), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
        }
        for (int i = 0; i < in * PF_GMAX; i++) { mvec[i] = _mm512_set1_ps(-INFINITY); svec[i] = _mm512_setzero_ps(); }
        /* the chunk's scores: block b, token i, head h at S + ((b * in + i) * gn + h) * KB */
        float *S = scratch;
        for (int j0 = 0; j0 < vis_max; j0 += 2 * KB) { /* two key blocks at a time */
            for (int b = 0; b < 2 && j0 + b * KB < vis_max; b++) {
                const int jb = j0 + b * KB, jn = vis_max - jb < KB ? vis_max - jb : KB;
                prefill_load_keys(HD, k + qe_kv_key_index(head_stride, HD, hk, jb, 0), jn, KT + b * HD);
            }
            for (int i = 0; i < in; i++) {
                const int vis = q_pos0 + i0 + i + 1 < n_kv ? q_pos0 + i0 + i + 1 : n_kv;
                if (vis <= j0) continue;
                __mmask16 mk[2];
                float *Sb[2];
                for (int b = 0; b < 2; b++) {
                    const int nv = vis - (j0 + b * KB);
                    mk[b] = (__mmask16)((1u << (nv <= 0 ? 0 : nv < KB ? nv : KB)) - 1);
                    Sb[b] = S + ((int64_t)(j0 / KB + b) * in + i) * gn * KB;
                }
                if (vis > j0 + KB) {
#define SCORES(G) prefill_scores(G, 2, HD, qr[i], (const float (*)[KB])KT, scale, mk, Sb, mvec + i * PF_GMAX, svec + i * PF_GMAX)
                    QE_DISPATCH(gn, 8, SCORES)
#undef SCORES
                } else {
#define SCORES(G) prefill_scores(G, 1, HD, qr[i], (const float (*)[KB])KT, scale, mk, Sb, mvec + i * PF_GMAX, svec + i * PF_GMAX)
                    QE_DISPATCH(gn, 8, SCORES)
#undef SCORES
                }
            }
        }
        for (int i = 0; i < in; i++)
            for (int h = 0; h < gn; h++) {
                const int si = i * PF_GMAX + h;
                float lm[16], ls[16];
                _mm512_storeu_ps(lm, mvec[si]);
                _mm512_storeu_ps(ls, svec[si]);
                qe_lane_softmax_stats(lm, ls, 16, &m_run[si], &inv[si]);
            }
        for (int j0 = 0; j0 < vis_max; j0 += KB) {
            const int jn = vis_max - j0 < KB ? vis_max - j0 : KB;
            for (int j = 0; j < KB; j++)
#pragma GCC unroll 8
                for (int c = 0; c < HD; c += 16)
                    _mm512_store_ps(VB + j * HD + c, j < jn ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(v + qe_kv_value_index(head_stride, HD, hk, j0 + j, c))))
                                                            : _mm512_setzero_ps());
            for (int i = 0; i < in; i++) {
                const int vis = q_pos0 + i0 + i + 1 < n_kv ? q_pos0 + i0 + i + 1 : n_kv;
                if (vis <= j0) continue;
                const int nv = vis - j0 < KB ? vis - j0 : KB;
                const __mmask16 mk = (__mmask16)((1u << nv) - 1);
                const float *Sb = S + ((int64_t)(j0 / KB) * in + i) * gn * KB;
                float *oh[PF_GMAX];
                for (int h = 0; h < gn; h++) {
                    const int si = i * PF_GMAX + h;
                    __m512 e = _mm512_maskz_mov_ps(mk, exp512(_mm512_sub_ps(_mm512_loadu_ps(Sb + h * KB), _mm512_set1_ps(m_run[si]))));
                    _mm512_store_ps(pj[h], _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_mul_ps(e, _mm512_set1_ps(inv[si])), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
                    oh[h] = out + (i0 + i) * ld + (int64_t)(head0 + h) * HD;
                }
                for (int h0 = 0; h0 < gn; h0 += 4)
                    for (int c0 = 0; c0 < HD; c0 += 64) {
#define PV(H) prefill_pv(H, HD, (const float (*)[KB])pj + h0, nv, VB, c0, oh + h0, j0 == 0)
                        QE_DISPATCH(gn - h0, 4, PV)
#undef PV
                    }
            }
        }
        /* a query that sees no key (n_kv == 0): zero output, as the reference */
        if (n_kv <= 0)
            for (int i = 0; i < in; i++)
                for (int h = 0; h < gn; h++) memset(out + (i0 + i) * ld + (int64_t)(head0 + h) * HD, 0, sizeof(float) * HD);
    }
}

/* ---- the entry point ----------------------------------------------------------------------------------------- */

/* Same numerics as qe_attention_ref (q and the normalised probabilities rounded to fp16, the exponentials
 * summed in double). A single query token goes to decode_group, a chunk of query tokens to prefill_group; head
 * sizes other than 64 and 128 (no Qwen2 model has them) to the reference.
 * Prefill: the exponentials of pass 0 are computed against the lane maxima, so the sum can differ from the
 * reference's in the last bits of f32 (the inverse is rounded to f32 either way). Pass 1 used to compute the
 * scores again; reading them back gives the same bits for 2/3 of the QK work (bench/KERNELS.md). A three-pass
 * version with the decode path's exact softmax was ~the same speed but moves near-ties of the parity files'
 * greedy output. */
void qe_avx512_attention(const float *q, int n_q, int q_pos0, const uint16_t *k, const uint16_t *v, int64_t head_stride,
                         int n_kv, int n_head, int n_head_kv, int head_dim, int kv_lo, int kv_hi, float *out,
                         float *scratch) {
    if ((head_dim != 64 && head_dim != 128) || n_head % n_head_kv) {
        qe_attention_ref(q, n_q, q_pos0, k, v, head_stride, n_kv, n_head, n_head_kv, head_dim, kv_lo, kv_hi, out, scratch);
        return;
    }
    if (n_q == 1) {
        qe_attention_decode(q, q_pos0, k, v, head_stride, n_kv, n_head, n_head_kv, head_dim, kv_lo, kv_hi, out, scratch,
                            head_dim == 64 ? decode_group64 : decode_group128);
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
