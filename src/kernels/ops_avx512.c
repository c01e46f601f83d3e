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
#define MAX_HD 256   /* head_dim bound for the stack blocks (Qwen2: 64 or 128) */


/* Keys j0..j0+jn-1 (one 16-key block of the cache) of KV head hk -> KT[d][16] f32; missing keys are zero. */
static void load_kt(const uint16_t *k, int64_t head_stride, int hk, int head_dim, int j0, int jn, float (*KT)[KB]) {
    const __mmask16 keep = (__mmask16)((1u << jn) - 1);
    const uint16_t *row = k + qe_kv_key_index(head_stride, head_dim, hk, j0, 0);
    for (int d = 0; d < head_dim; d++)
        _mm512_store_ps(KT[d], _mm512_maskz_mov_ps(keep, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + d * QE_KV_BLOCK)))));
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
#define SCORES_GN_K(K_) scores_gn(K_, qr, hd, KT, scale, mk, s)
    QE_DISPATCH(gn, 8, SCORES_GN_K)
#undef SCORES_GN_K
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
#define PV4_K(K_) pv4(K_, pj + h0, nv, VB, c0, oh + h0, first)
            QE_DISPATCH(cn, 4, PV4_K)
#undef PV4_K
        }
}

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

/* ---- the entry point ----------------------------------------------------------------------------------------- */

/* Same numerics as qe_attention_ref (q and the normalised probabilities rounded to fp16, the exponentials
 * summed in double). A single query token goes to decode_group; a chunk of up to 16 query tokens is computed over
 * blocks of 16 keys, each key block converted once for every token and head of the chunk:
 *   pass 0: scores (kept in scratch) -> per-lane running max m and running sum of exp(s - m), rescaled when m
 *           grows (no horizontal reduction or branch per block); at the end max = max(m), sum = sum
 *           exp(m - max) * lane sums in double;
 *   pass 1: the kept scores -> p = fp16(exp(s - max) / sum), out = sum_j p_j v_j.
 * The exponentials of pass 0 are computed against the lane maxima, so the sum can differ from the reference's
 * in the last bits of f32 (the inverse is rounded to f32 either way). Pass 1 used to compute the scores again;
 * reading them back gives the same bits for 2/3 of the QK work (bench/KERNELS.md). A three-pass version with the
 * decode path's exact softmax was ~the same speed but moves near-ties of the parity files' greedy output. */
void qe_avx512_attention(const float *q, int n_q, int q_pos0, const uint16_t *k, const uint16_t *v, int64_t head_stride,
                         int n_kv, int n_head, int n_head_kv, int head_dim, int kv_lo, int kv_hi, float *out,
                         float *scratch) {
    /* QC query tokens per chunk (QE_ATT_SCRATCH reserves rows of scores for 16); QR_HD bounds the stack (~100 KB);
     * Qwen2 heads are 64 or 128 */
    enum { GMAX = 8, QC = 16, QR_HD = 128 };
    if (head_dim % 16 || head_dim > QR_HD || n_head % n_head_kv) {
        qe_attention_ref(q, n_q, q_pos0, k, v, head_stride, n_kv, n_head, n_head_kv, head_dim, kv_lo, kv_hi, out, scratch);
        return;
    }
    const int group = n_head / n_head_kv, nd = head_dim / 16;
    const float scale = 1.0f / sqrtf((float)head_dim);
    const int64_t ld = (int64_t)n_head * head_dim;
    if (n_q == 1 && (head_dim == 64 || head_dim == 128)) {
        qe_attention_decode(q, q_pos0, k, v, head_stride, n_kv, n_head, n_head_kv, head_dim, kv_lo, kv_hi, out, scratch,
                            head_dim == 64 ? decode_group64 : decode_group128);
        return;
    }
    float KT[MAX_HD][KB] __attribute__((aligned(64)));
    float VB[KB][MAX_HD] __attribute__((aligned(64)));
    float pj[GMAX][KB] __attribute__((aligned(64)));
    float qr[QC][GMAX * QR_HD] __attribute__((aligned(64))); /* fp16-rounded q of the chunk */
    float dummy[MAX_HD] __attribute__((aligned(64)));
    memset(pj, 0, sizeof pj);
    __m512 mvec[QC * GMAX], svec[QC * GMAX];
    float *S = scratch; /* the chunk's scores from pass 0, row (i, h) at S + (i * gn + h) * srow */
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
                const int64_t srow = (int64_t)(vis_max + KB - 1) / KB * KB;
                for (int pass = 0; pass < 2; pass++) {
                    for (int j0 = 0; j0 < vis_max; j0 += KB) {
                        int jn = vis_max - j0 < KB ? vis_max - j0 : KB;
                        if (pass == 0) load_kt(k, head_stride, hk, head_dim, j0, jn, KT);
                        if (pass == 1)
                            for (int j = 0; j < KB; j++)
                                for (int c = 0; c < nd; c++)
                                    _mm512_store_ps(VB[j] + c * 16, j < jn ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(v + qe_kv_value_index(head_stride, head_dim, hk, j0 + j, c * 16))))
                                                                           : _mm512_setzero_ps());
                        for (int i = 0; i < in; i++) {
                            int vis = q_pos0 + i0 + i + 1 < n_kv ? q_pos0 + i0 + i + 1 : n_kv;
                            if (vis <= j0) continue;
                            int nv = vis - j0 < KB ? vis - j0 : KB;
                            __mmask16 mk = (__mmask16)((1u << nv) - 1);
                            __m512 sc[GMAX];
                            if (pass == 0) {
                                scores(gn, qr[i], head_dim, (const float (*)[KB])KT, scale, mk, sc);
                                for (int h = 0; h < gn; h++) _mm512_storeu_ps(S + (i * gn + h) * srow + j0, sc[h]);
                            } else {
                                for (int h = 0; h < gn; h++) sc[h] = _mm512_loadu_ps(S + (i * gn + h) * srow + j0);
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
