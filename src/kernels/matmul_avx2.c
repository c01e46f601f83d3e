/* matmul_avx2.c — the AVX2 + FMA + F16C kernel set, for x86-64 CPUs without AVX-512 (most desktops and
 * laptops). The same design as matmul_avx512.c with 8-row panels (one ymm = 4 consecutive weights of 8 rows)
 * and without VNNI: int8 products go through vpmaddubsw (u8 x s8 -> s16 pairs, saturating) + vpmaddwd.
 *   - 4/5-bit codes are small unsigned numbers (<= 31), so vpmaddubsw cannot saturate: codes are used as
 *     they are and the offset (8 or 16) is removed with the activation block sums, as in the AVX-512 set.
 *   - q8_0 and iq4_nl weights are signed bytes up to 127 in magnitude: ggml's sign trick, |w| x sign(x, w),
 *     keeps every pair sum <= 2 * 127 * 127 < 32768.
 * Panel per block (8 rows): codes 256 bytes (q8_0, signed) or 128 bytes of nibbles; q5_*: 8 x uint32 masks
 * of the 5th bit; d[8] fp16; m[8] fp16 (q4_1/q5_1). Float types: cols x 8 values. q4_K/q5_K/q6_K: per
 * 32-column sub-block, nibbles (128 bytes) | 5th/6th-bit masks | sub-scales, then d (and dmin) per 256-block
 * (see k_panel_bytes); q2_K/q3_K use the reference path. Activations: the tiled layouts of kern.h, shared with
 * the AVX-512 set. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "base.h"
#include "kernels/kern.h"
#include "quant.h"

enum {
    L_Q8_0 = 201, L_Q4_0, L_Q4_1, L_Q5_0, L_Q5_1, L_IQ4_NL,
    L_Q4_K = 210, L_Q5_K, L_Q6_K,
    L_F16 = 220, L_BF16, L_F32,
};

#define PR 8  /* rows per panel */
#define TT 4  /* tokens per register tile (two tiles per group of 8) */
#define TCHUNK 64

static const int8_t iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

static int q32_layout(int type) {
    switch (type) {
    case QE_TYPE_Q8_0: return L_Q8_0;
    case QE_TYPE_Q4_0: return L_Q4_0;
    case QE_TYPE_Q4_1: return L_Q4_1;
    case QE_TYPE_Q5_0: return L_Q5_0;
    case QE_TYPE_Q5_1: return L_Q5_1;
    case QE_TYPE_IQ4_NL: return L_IQ4_NL;
    default: return 0;
    }
}
static int lay_qbytes(int l) { return l == L_Q8_0 ? 256 : 128; }
static int lay_hbytes(int l) { return l == L_Q5_0 || l == L_Q5_1 ? 32 : 0; }
static int lay_mbytes(int l) { return l == L_Q4_1 || l == L_Q5_1 ? 16 : 0; }
static size_t q32_panel_bytes(int l, int64_t nb) {
    return (size_t)nb * (size_t)(lay_qbytes(l) + lay_hbytes(l) + 16 + lay_mbytes(l));
}
static int float_esize(int l) { return l == L_F32 ? 4 : 2; }
/* k-quant panel: codes nsb x 128 | masks (q5_K: nsb x 8 x u32 for bit 4; q6_K: nsb x 16 x u32 for bits 4, 5)
 * | sub-scales nsb x 16 bytes (q4_K/q5_K: u8 sc[8 rows], u8 mn[8 rows]; q6_K: i8 sc[2 halves][8 rows])
 * | d nb x 8 fp16 | dmin nb x 8 fp16 (q4_K/q5_K). */
static int k_hbytes(int l) { return l == L_Q5_K ? 32 : l == L_Q6_K ? 64 : 0; }
static size_t k_panel_bytes(int l, int64_t nsb) {
    return (size_t)nsb * (128 + (size_t)k_hbytes(l) + 16) + (size_t)(nsb / 8) * (l == L_Q6_K ? 16 : 32);
}

static size_t panel_bytes(int l, int64_t cols) {
    size_t pb = l >= L_F16 ? (size_t)cols * PR * (size_t)float_esize(l)
              : l >= L_Q4_K ? k_panel_bytes(l, cols / 32) : q32_panel_bytes(l, cols / 32);
    return (pb + 63) & ~(size_t)63;
}

static int pack_avx2(qe_mat *m) {
    int64_t rows = m->rows, cols = m->cols, np = (rows + PR - 1) / PR;
    int l = q32_layout(m->type);
    if (!l) {
        if (m->type == QE_TYPE_F16) l = L_F16;
        else if (m->type == QE_TYPE_BF16) l = L_BF16;
        else if (m->type == QE_TYPE_F32) l = L_F32;
        else if (m->type == QE_TYPE_Q4_K) l = L_Q4_K;
        else if (m->type == QE_TYPE_Q5_K) l = L_Q5_K;
        else if (m->type == QE_TYPE_Q6_K) l = L_Q6_K;
        else return 0; /* q2_K, q3_K: reference path */
    }
    size_t pb = panel_bytes(l, cols), total = pb * (size_t)np;
    uint8_t *dst = qe_kern_packed_alloc(total);
    if (!dst) return -1;
    size_t rb = qe_kern_row_bytes(m->type, cols);
    const uint8_t *src = m->data;
    for (int64_t p = 0; p < np; p++) {
        uint8_t *P = dst + (size_t)p * pb;
        if ((p + 1) * PR > rows || l == L_Q5_0 || l == L_Q5_1 || (l >= L_Q4_K && l < L_F16)) memset(P, 0, pb); /* padding rows; OR-ed masks */
        if ((p & 127) == 127) qe_kern_release_source(src + (size_t)(p - 127) * PR * rb, (size_t)128 * PR * rb);
        for (int rr = 0; rr < PR && p * PR + rr < rows; rr++) {
            const uint8_t *row = src + (size_t)(p * PR + rr) * rb;
            if (l >= L_Q4_K && l < L_F16) {
                int64_t nsb = cols / 32, nb = cols / 256;
                uint8_t *C = P, *H = C + nsb * 128, *S = H + nsb * k_hbytes(l), *D = S + nsb * 16, *DM = D + nb * 16;
                size_t bb = rb / (size_t)nb;
                for (int64_t b = 0; b < nb; b++) {
                    int q[256], sc[16], mn[16];
                    float d, dmin;
                    qe_unpack_k_codes(m->type, row + b * bb, q, sc, mn, &d, &dmin);
                    uint16_t dh = qe_fp32_to_fp16(d), mh = qe_fp32_to_fp16(dmin); /* exact: they were fp16 */
                    memcpy(D + b * 16 + rr * 2, &dh, 2);
                    if (l != L_Q6_K) memcpy(DM + b * 16 + rr * 2, &mh, 2);
                    for (int s8 = 0; s8 < 8; s8++) {
                        int64_t sb = b * 8 + s8;
                        const int *qs = q + s8 * 32;
                        for (int j = 0; j < 4; j++)
                            for (int k = 0; k < 4; k++)
                                C[sb * 128 + j * 32 + rr * 4 + k] = (uint8_t)((qs[4 * j + k] & 15) | ((qs[16 + 4 * j + k] & 15) << 4));
                        uint32_t *hm = (uint32_t *)(H + sb * k_hbytes(l));
                        for (int g = 0; g < 8 && l != L_Q4_K; g++)
                            for (int k = 0; k < 4; k++) {
                                hm[g] |= (uint32_t)((qs[4 * g + k] >> 4) & 1) << (rr * 4 + k);
                                if (l == L_Q6_K) hm[8 + g] |= (uint32_t)((qs[4 * g + k] >> 5) & 1) << (rr * 4 + k);
                            }
                        S[sb * 16 + rr] = (uint8_t)(l == L_Q6_K ? (uint8_t)(int8_t)sc[2 * s8] : (uint8_t)sc[2 * s8]);
                        S[sb * 16 + 8 + rr] = (uint8_t)(l == L_Q6_K ? (uint8_t)(int8_t)sc[2 * s8 + 1] : (uint8_t)mn[2 * s8]);
                    }
                }
                continue;
            }
            if (l >= L_F16) {
                int es = float_esize(l);
                for (int64_t c = 0; c < cols; c++) memcpy(P + ((size_t)c * PR + rr) * es, row + (size_t)c * es, es);
                continue;
            }
            int64_t nb = cols / 32;
            int qb = lay_qbytes(l), hb = lay_hbytes(l);
            uint8_t *Q = P, *H = P + nb * qb, *D = H + nb * hb, *M = D + nb * 16;
            for (int64_t b = 0; b < nb; b++) {
                uint8_t *q = Q + b * qb;
                const uint8_t *qs, *qhp = NULL, *dp, *mp = NULL;
                switch (l) {
                case L_Q8_0: { const block_q8_0 *x = (const block_q8_0 *)row + b;
                    for (int g = 0; g < 8; g++) memcpy(q + g * 32 + rr * 4, x->qs + 4 * g, 4);
                    memcpy(D + b * 16 + rr * 2, &x->d, 2);
                    continue; }
                case L_Q4_0: case L_IQ4_NL: { const block_q4_0 *x = (const block_q4_0 *)row + b; qs = x->qs; dp = (const uint8_t *)&x->d; break; }
                case L_Q4_1: { const block_q4_1 *x = (const block_q4_1 *)row + b; qs = x->qs; dp = (const uint8_t *)&x->d; mp = (const uint8_t *)&x->m; break; }
                case L_Q5_0: { const block_q5_0 *x = (const block_q5_0 *)row + b; qs = x->qs; qhp = x->qh; dp = (const uint8_t *)&x->d; break; }
                default: { const block_q5_1 *x = (const block_q5_1 *)row + b; qs = x->qs; qhp = x->qh; dp = (const uint8_t *)&x->d; mp = (const uint8_t *)&x->m; break; }
                }
                for (int j = 0; j < 4; j++) memcpy(q + j * 32 + rr * 4, qs + 4 * j, 4);
                memcpy(D + b * 16 + rr * 2, dp, 2);
                if (mp) memcpy(M + b * 16 + rr * 2, mp, 2);
                if (qhp) {
                    uint32_t qh, *hm = (uint32_t *)(H + b * 32);
                    memcpy(&qh, qhp, 4);
                    for (int g = 0; g < 8; g++)
                        for (int k = 0; k < 4; k++) hm[g] |= ((qh >> (4 * g + k)) & 1u) << (rr * 4 + k);
                }
            }
        }
    }
    m->packed = dst;
    m->packed_bytes = total;
    m->layout = l;
    return 0;
}

#define INLINE static inline __attribute__((always_inline))

INLINE int32_t load_i32(const int8_t *p) { int32_t v; memcpy(&v, p, 4); return v; }

/* 0xFF in byte i where bit i of m is set (ggml's bytes_from_bits_32 idea). */
INLINE __m256i bits_to_bytes(uint32_t m) {
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)m), shuf);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

INLINE void store_tile(__m256 v, float *y, const float *bias, int accumulate, int nr) {
    if (nr == PR) {
        if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias));
        if (accumulate) v = _mm256_add_ps(v, _mm256_loadu_ps(y));
        _mm256_storeu_ps(y, v);
        return;
    }
    float tmp[PR];
    _mm256_storeu_ps(tmp, v);
    for (int r = 0; r < nr; r++) y[r] = qe_epilogue(tmp[r], y + r, bias, r, accumulate);
}

/* 8 rows x T tokens (slots s0..s0+T-1 of the group G) of a 32-block layout over nb blocks. */
INLINE void tile_q32(const int L, const int T, const uint8_t *P, int64_t nb, const uint8_t *G, int s0, float *y,
                     int64_t ldy, const float *bias, int accumulate, int nr) {
    const int qb = lay_qbytes(L), hb = lay_hbytes(L);
    const uint8_t *Q = P, *H = P + nb * qb, *D = H + nb * hb, *M = D + nb * 16;
    const int oi = L == L_Q4_0 ? 1 : L == L_Q5_0 ? 2 : -1; /* q8_0 and iq4_nl are signed: no offset */
    const int8_t *XQ = (const int8_t *)G;
    const float *XD = (const float *)(G + nb * QE_ACT_TILE * 32), *XS = XD + nb * QE_ACT_TILE;
    const int32_t *NS = (const int32_t *)(XS + nb * QE_ACT_TILE) + (oi < 0 ? 0 : oi) * nb * QE_ACT_TILE;
    const int signed_w = L == L_Q8_0 || L == L_IQ4_NL;
    __m256 acc[TT];
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    const __m256i lo4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1), b16 = _mm256_set1_epi8(16);
    const __m256i lut = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)iq4nl_values));
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *xq = XQ + (b * QE_ACT_TILE + s0) * 32;
        __m256i s[TT];
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) s[t] = oi >= 0 ? _mm256_set1_epi32(NS[b * QE_ACT_TILE + s0 + t]) : _mm256_setzero_si256();
        if (signed_w) {
            #pragma GCC unroll 8
            for (int g = 0; g < 8; g++) {
                __m256i w;
                if (L == L_Q8_0) w = _mm256_loadu_si256((const __m256i *)(Q + b * 256 + g * 32));
                else {
                    __m256i v = _mm256_loadu_si256((const __m256i *)(Q + b * 128 + (g & 3) * 32));
                    w = _mm256_shuffle_epi8(lut, _mm256_and_si256(g < 4 ? v : _mm256_srli_epi16(v, 4), lo4));
                }
                __m256i aw = _mm256_sign_epi8(w, w);
                #pragma GCC unroll 8
                for (int t = 0; t < T; t++) {
                    __m256i x = _mm256_set1_epi32(load_i32(xq + t * 32 + 4 * g));
                    s[t] = _mm256_add_epi32(s[t], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(x, w)), ones));
                }
            }
        } else {
            /* unsigned codes <= 31: 16-bit pair sums of 4 column groups cannot overflow (4 * 2 * 31 * 127) */
            #pragma GCC unroll 8
            for (int half = 0; half < 2; half++) {
                __m256i p16[TT];
                #pragma GCC unroll 8
                for (int t = 0; t < T; t++) p16[t] = _mm256_setzero_si256();
                #pragma GCC unroll 8
                for (int j = 0; j < 4; j++) {
                    int g = half * 4 + j;
                    __m256i v = _mm256_loadu_si256((const __m256i *)(Q + b * 128 + j * 32));
                    __m256i w = _mm256_and_si256(half ? _mm256_srli_epi16(v, 4) : v, lo4);
                    if (hb) w = _mm256_add_epi8(w, _mm256_and_si256(bits_to_bytes(((const uint32_t *)(H + b * 32))[g]), b16));
                    #pragma GCC unroll 8
                    for (int t = 0; t < T; t++)
                        p16[t] = _mm256_add_epi16(p16[t], _mm256_maddubs_epi16(w, _mm256_set1_epi32(load_i32(xq + t * 32 + 4 * g))));
                }
                #pragma GCC unroll 8
                for (int t = 0; t < T; t++) s[t] = _mm256_add_epi32(s[t], _mm256_madd_epi16(p16[t], ones));
            }
        }
        __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(D + b * 16)));
        __m256 mw = _mm256_setzero_ps();
        if (L == L_Q4_1 || L == L_Q5_1) mw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(M + b * 16)));
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[t]), _mm256_mul_ps(dw, _mm256_set1_ps(XD[b * QE_ACT_TILE + s0 + t])), acc[t]);
            if (L == L_Q4_1 || L == L_Q5_1) acc[t] = _mm256_fmadd_ps(mw, _mm256_set1_ps(XS[b * QE_ACT_TILE + s0 + t]), acc[t]);
        }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++) store_tile(acc[t], y + (int64_t)t * ldy, bias, accumulate, nr);
}

/* 8 rows x T tokens of a k-quant layout over nsb sub-blocks (tiled q8_K activations, see kern.h). Codes are
 * unsigned (q6_K: 0..63, its -32 comes from the activation sums), so vpmaddubsw cannot saturate: pairs of
 * 16-bit products are summed over 4 column groups for 4/5-bit codes, 2 for 6-bit ones, before vpmaddwd. */
INLINE void tile_k(const int L, const int T, const uint8_t *P, int64_t nsb, const uint8_t *G, int s0, float *y,
                   int64_t ldy, const float *bias, int accumulate, int nr) {
    const int64_t nb = nsb / 8;
    const uint8_t *C = P, *H = C + nsb * 128, *S = H + nsb * k_hbytes(L), *D = S + nsb * 16, *DM = D + nb * 16;
    const int8_t *XQ = (const int8_t *)G;
    const float *XD = (const float *)(G + nsb * QE_ACT_TILE * 32), *XS = XD + nsb * QE_ACT_TILE;
    const int32_t *NS0 = (const int32_t *)(XS + nsb * QE_ACT_TILE), *NS1 = NS0 + nsb * QE_ACT_TILE;
    __m256 acc[TT];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    const __m256i lo4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1), b16 = _mm256_set1_epi8(16), b32 = _mm256_set1_epi8(32);
    __m256 dK = _mm256_setzero_ps(), dmK = _mm256_setzero_ps();
    for (int64_t b = 0; b < nsb; b++) {
        if ((b & 7) == 0) {
            dK = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(D + (b >> 3) * 16)));
            if (L != L_Q6_K) dmK = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(DM + (b >> 3) * 16)));
        }
        const int8_t *xq = XQ + (b * QE_ACT_TILE + s0) * 32;
        const uint32_t *hm = (const uint32_t *)(H + b * k_hbytes(L));
        __m256i s[2][TT];
#pragma GCC unroll 2
        for (int half = 0; half < 2; half++) {
#pragma GCC unroll 4
            for (int t = 0; t < T; t++)
                s[half][t] = L == L_Q6_K ? _mm256_set1_epi32((half ? NS1 : NS0)[b * QE_ACT_TILE + s0 + t]) : _mm256_setzero_si256();
            __m256i p16[TT];
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) p16[t] = _mm256_setzero_si256();
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                int g = half * 4 + j;
                __m256i v = _mm256_loadu_si256((const __m256i *)(C + b * 128 + j * 32));
                __m256i w = _mm256_and_si256(half ? _mm256_srli_epi16(v, 4) : v, lo4);
                if (L != L_Q4_K) w = _mm256_add_epi8(w, _mm256_and_si256(bits_to_bytes(hm[g]), b16));
                if (L == L_Q6_K) w = _mm256_add_epi8(w, _mm256_and_si256(bits_to_bytes(hm[8 + g]), b32));
#pragma GCC unroll 4
                for (int t = 0; t < T; t++)
                    p16[t] = _mm256_add_epi16(p16[t], _mm256_maddubs_epi16(w, _mm256_set1_epi32(load_i32(xq + t * 32 + 4 * g))));
                if (L == L_Q6_K && (j & 1)) { /* 6-bit: flush every 2 groups (2 * 2 * 63 * 127 < 32768) */
#pragma GCC unroll 4
                    for (int t = 0; t < T; t++) { s[half][t] = _mm256_add_epi32(s[half][t], _mm256_madd_epi16(p16[t], ones)); p16[t] = _mm256_setzero_si256(); }
                }
            }
            if (L != L_Q6_K) {
#pragma GCC unroll 4
                for (int t = 0; t < T; t++) s[half][t] = _mm256_add_epi32(s[half][t], _mm256_madd_epi16(p16[t], ones));
            }
        }
        if (L == L_Q6_K) {
            __m256 dw0 = _mm256_mul_ps(dK, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(S + b * 16)))));
            __m256 dw1 = _mm256_mul_ps(dK, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(S + b * 16 + 8)))));
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                __m256 dx = _mm256_set1_ps(XD[b * QE_ACT_TILE + s0 + t]);
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[0][t]), _mm256_mul_ps(dw0, dx), acc[t]);
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[1][t]), _mm256_mul_ps(dw1, dx), acc[t]);
            }
        } else {
            __m256 dw = _mm256_mul_ps(dK, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(S + b * 16)))));
            __m256 mw = _mm256_sub_ps(_mm256_setzero_ps(),
                                      _mm256_mul_ps(dmK, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(S + b * 16 + 8))))));
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                __m256i si = _mm256_add_epi32(s[0][t], s[1][t]);
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(si), _mm256_mul_ps(dw, _mm256_set1_ps(XD[b * QE_ACT_TILE + s0 + t])), acc[t]);
                acc[t] = _mm256_fmadd_ps(mw, _mm256_set1_ps(XS[b * QE_ACT_TILE + s0 + t]), acc[t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) store_tile(acc[t], y + (int64_t)t * ldy, bias, accumulate, nr);
}

INLINE __m256 load_wcol(const int L, const uint8_t *P, int64_t c) {
    if (L == L_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(P + c * 16)));
    if (L == L_BF16)
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(P + c * 16))), 16));
    return _mm256_loadu_ps((const float *)(P + c * 32));
}

INLINE void tile_f(const int L, const int T, const uint8_t *P, int64_t cols, const uint8_t *G, int s0, float *y,
                   int64_t ldy, const float *bias, int accumulate, int nr) {
    const int U = T >= 3 ? 2 : T == 1 ? 8 : 4; /* >= 8 independent FMA chains (latency 4, 2 ports) */
    const float *X = (const float *)G + s0;
    __m256 acc[TT][8];
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        #pragma GCC unroll 8
        for (int u = 0; u < U; u++) acc[t][u] = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + U <= cols; c += U)
        #pragma GCC unroll 8
        for (int u = 0; u < U; u++) {
            __m256 w = load_wcol(L, P, c + u);
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) acc[t][u] = _mm256_fmadd_ps(w, _mm256_set1_ps(X[(c + u) * QE_ACT_TILE + t]), acc[t][u]);
        }
    for (; c < cols; c++) {
        __m256 w = load_wcol(L, P, c);
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[t][0] = _mm256_fmadd_ps(w, _mm256_set1_ps(X[c * QE_ACT_TILE + t]), acc[t][0]);
    }
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
        __m256 sm = acc[t][0];
        #pragma GCC unroll 8
        for (int u = 1; u < U; u++) sm = _mm256_add_ps(sm, acc[t][u]);
        store_tile(sm, y + (int64_t)t * ldy, bias, accumulate, nr);
    }
}

#define TILE_FN(name, KIND, L)                                                                                      \
    static void name(int T, const uint8_t *P, int64_t k, const uint8_t *G, int s0, float *y, int64_t ldy,          \
                     const float *bias, int acc, int nr) {                                                          \
        switch (T) {                                                                                               \
        case 1: KIND(L, 1, P, k, G, s0, y, ldy, bias, acc, nr); break;                                             \
        case 2: KIND(L, 2, P, k, G, s0, y, ldy, bias, acc, nr); break;                                             \
        case 3: KIND(L, 3, P, k, G, s0, y, ldy, bias, acc, nr); break;                                             \
        default: KIND(L, 4, P, k, G, s0, y, ldy, bias, acc, nr); break;                                            \
        }                                                                                                          \
    }
TILE_FN(tiles_q8_0, tile_q32, L_Q8_0)
TILE_FN(tiles_q4_0, tile_q32, L_Q4_0)
TILE_FN(tiles_q4_1, tile_q32, L_Q4_1)
TILE_FN(tiles_q5_0, tile_q32, L_Q5_0)
TILE_FN(tiles_q5_1, tile_q32, L_Q5_1)
TILE_FN(tiles_iq4_nl, tile_q32, L_IQ4_NL)
TILE_FN(tiles_q4_K, tile_k, L_Q4_K)
TILE_FN(tiles_q5_K, tile_k, L_Q5_K)
TILE_FN(tiles_q6_K, tile_k, L_Q6_K)
TILE_FN(tiles_f16, tile_f, L_F16)
TILE_FN(tiles_bf16, tile_f, L_BF16)
TILE_FN(tiles_f32, tile_f, L_F32)

typedef void (*tiles_fn)(int T, const uint8_t *P, int64_t k, const uint8_t *G, int s0, float *y, int64_t ldy,
                         const float *bias, int acc, int nr);

static void mm_avx2(const qe_mat *m, const qe_act *a, int n, float *y, int64_t ldy, const float *bias,
                    int accumulate, int64_t r0, int64_t r1) {
    tiles_fn fn;
    int l = m->layout;
    switch (l) {
    case L_Q8_0: fn = tiles_q8_0; break;
    case L_Q4_0: fn = tiles_q4_0; break;
    case L_Q4_1: fn = tiles_q4_1; break;
    case L_Q5_0: fn = tiles_q5_0; break;
    case L_Q5_1: fn = tiles_q5_1; break;
    case L_IQ4_NL: fn = tiles_iq4_nl; break;
    case L_Q4_K: fn = tiles_q4_K; break;
    case L_Q5_K: fn = tiles_q5_K; break;
    case L_Q6_K: fn = tiles_q6_K; break;
    case L_F16: fn = tiles_f16; break;
    case L_BF16: fn = tiles_bf16; break;
    case L_F32: fn = tiles_f32; break;
    default: QE_ASSERT(0); return;
    }
    QE_ASSERT(a->tiled);
    int64_t k = l >= L_F16 ? m->cols : m->cols / 32;
    size_t pb = panel_bytes(l, m->cols);
    const uint8_t *packed = m->packed;
    for (int tc = 0; tc < n; tc += TCHUNK) {
        int tn = n - tc < TCHUNK ? n - tc : TCHUNK;
        for (int64_t p = r0 / PR; p < (r1 + PR - 1) / PR; p++) {
            int64_t rlo = p * PR, rhi = rlo + PR < r1 ? rlo + PR : r1;
            const float *bp = bias ? bias + rlo : NULL;
            for (int t = tc; t < tc + tn; t += TT) {
                int T = tc + tn - t < TT ? tc + tn - t : TT;
                const uint8_t *G = a->base + (size_t)(t / QE_ACT_TILE) * a->tile_bytes;
                fn(T, packed + (size_t)p * pb, k, G, t % QE_ACT_TILE, y + (int64_t)t * ldy + rlo, ldy, bp, accumulate, (int)(rhi - rlo));
            }
        }
    }
}

static void row_f32_avx2(const qe_mat *m, int64_t row, float *out) {
    int l = m->layout;
    int64_t cols = m->cols, p = row / PR;
    int rr = (int)(row % PR);
    const uint8_t *P = (const uint8_t *)m->packed + (size_t)p * panel_bytes(l, cols);
    if (l >= L_Q4_K && l < L_F16) {
        int64_t nsb = cols / 32, nb = cols / 256;
        const uint8_t *C = P, *H = C + nsb * 128, *S = H + nsb * k_hbytes(l), *D = S + nsb * 16, *DM = D + nb * 16;
        for (int64_t sb = 0; sb < nsb; sb++) {
            uint16_t dh, mh = 0;
            memcpy(&dh, D + (sb / 8) * 16 + rr * 2, 2);
            if (l != L_Q6_K) memcpy(&mh, DM + (sb / 8) * 16 + rr * 2, 2);
            float d = qe_fp16_to_fp32(dh), dmin = qe_fp16_to_fp32(mh);
            const uint32_t *hm = (const uint32_t *)(H + sb * k_hbytes(l));
            for (int c = 0; c < 32; c++) {
                int g = c / 4, k = c % 4;
                uint8_t byte = C[sb * 128 + (g % 4) * 32 + rr * 4 + k];
                int q = g < 4 ? byte & 15 : byte >> 4;
                if (l != L_Q4_K) q |= (int)((hm[g] >> (rr * 4 + k)) & 1) << 4;
                if (l == L_Q6_K) q |= (int)((hm[8 + g] >> (rr * 4 + k)) & 1) << 5;
                if (l == L_Q6_K) out[sb * 32 + c] = d * (float)(int8_t)S[sb * 16 + (c / 16) * 8 + rr] * (float)(q - 32);
                else out[sb * 32 + c] = d * (float)S[sb * 16 + rr] * (float)q - dmin * (float)S[sb * 16 + 8 + rr];
            }
        }
        return;
    }
    if (l >= L_F16) {
        for (int64_t c = 0; c < cols; c++) {
            uint16_t h;
            if (l == L_F32) memcpy(&out[c], P + (c * PR + rr) * 4, 4);
            else { memcpy(&h, P + (c * PR + rr) * 2, 2); out[c] = l == L_F16 ? qe_fp16_to_fp32(h) : qe_bf16_to_fp32(h); }
        }
        return;
    }
    int64_t nb = cols / 32;
    int qb = lay_qbytes(l), hb = lay_hbytes(l);
    const uint8_t *Q = P, *H = Q + nb * qb, *D = H + nb * hb, *M = D + nb * 16;
    for (int64_t b = 0; b < nb; b++) {
        uint16_t dh, mh = 0;
        memcpy(&dh, D + b * 16 + rr * 2, 2);
        if (lay_mbytes(l)) memcpy(&mh, M + b * 16 + rr * 2, 2);
        float d = qe_fp16_to_fp32(dh), mn = qe_fp16_to_fp32(mh);
        const uint32_t *hm = (const uint32_t *)(H + b * 32);
        for (int c = 0; c < 32; c++) {
            int g = c / 4, k = c % 4, q;
            if (l == L_Q8_0) q = (int8_t)Q[b * 256 + g * 32 + rr * 4 + k];
            else {
                uint8_t byte = Q[b * 128 + (g % 4) * 32 + rr * 4 + k];
                q = g < 4 ? byte & 15 : byte >> 4;
                if (hb) q |= (int)((hm[g] >> (rr * 4 + k)) & 1) << 4;
                if (l == L_Q4_0) q -= 8;
                else if (l == L_Q5_0) q -= 16;
                else if (l == L_IQ4_NL) q = iq4nl_values[q];
            }
            out[b * 32 + c] = d * (float)q + mn;
        }
    }
}

/* --- activation quantiser (bit-identical to qe_quant_tiled_ref for Q8 and F32) -------------------------- */

static inline float round_fp16(float v) {
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtps_ph(_mm_set_ss(v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
}

static inline float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* f32 rows into the tiled layout (x[c][8]); fp16 rounding through F16C (bf16 stays portable). */
static void quant_f32_tiled(const float *x, int64_t cols, int rounding, uint8_t *group, int slot) {
    float *o = (float *)group + slot, tmp[8];
    int64_t c = 0;
    if (rounding != QE_ROUND_BF16)
        for (; c + 8 <= cols; c += 8) {
            __m256 v = _mm256_loadu_ps(x + c);
            if (rounding == QE_ROUND_F16) v = _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            _mm256_storeu_ps(tmp, v);
            for (int i = 0; i < 8; i++) o[(c + i) * QE_ACT_TILE] = tmp[i];
        }
    for (; c < cols; c++)
        o[c * QE_ACT_TILE] = rounding == QE_ROUND_F16 ? qe_fp16_to_fp32(qe_fp32_to_fp16(x[c]))
                           : rounding == QE_ROUND_BF16 ? qe_bf16_to_fp32(qe_fp32_to_bf16(x[c])) : x[c];
}

/* q8_K into the tiled layout, as qe_quant_row_q8k_ref: scale from the first element of largest magnitude
 * (sign kept), iscale = -127/max, q = min(127, round-to-nearest-even(iscale * x)), d = 1/iscale. */
static void quant_q8k_tiled(const float *x, int64_t cols, uint8_t *group, int slot) {
    int64_t nsb = cols / 32;
    int8_t *qs = (int8_t *)group;
    float *gd = (float *)(group + nsb * QE_ACT_TILE * 32), *gs = gd + nsb * QE_ACT_TILE;
    int32_t *ns = (int32_t *)(gs + nsb * QE_ACT_TILE);
    const __m256 signbit = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < cols / 256; b++) {
        const float *xb = x + b * 256;
        __m256 mx = _mm256_setzero_ps();
        for (int i = 0; i < 32; i++) mx = _mm256_max_ps(mx, _mm256_andnot_ps(signbit, _mm256_loadu_ps(xb + i * 8)));
        float amax = hmax8(mx), d = 0;
        int32_t bs[16] = {0};
        if (amax == 0) {
            for (int sb = 0; sb < 8; sb++) memset(qs + ((b * 8 + sb) * QE_ACT_TILE + slot) * 32, 0, 32);
        } else {
            float max = 0;
            for (int j = 0; j < 256; j++) if (fabsf(xb[j]) == amax) { max = xb[j]; break; }
            float iscale = -127.f / max;
            __m256 vs = _mm256_set1_ps(iscale);
            for (int sb = 0; sb < 8; sb++) {
                __m256i q[4];
                for (int i = 0; i < 4; i++) {
                    q[i] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(xb + sb * 32 + i * 8))), _mm256_set1_epi32(127));
                    int32_t t[8];
                    _mm256_storeu_si256((__m256i *)t, q[i]);
                    bs[2 * sb + i / 2] += t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
                }
                __m256i p01 = _mm256_packs_epi32(q[0], q[1]), p23 = _mm256_packs_epi32(q[2], q[3]);
                __m256i p = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
                _mm256_storeu_si256((__m256i *)(qs + ((b * 8 + sb) * QE_ACT_TILE + slot) * 32), p);
            }
            d = 1 / iscale;
        }
        for (int sb = 0; sb < 8; sb++) {
            int64_t i = (b * 8 + sb) * QE_ACT_TILE + slot;
            gd[i] = d;
            gs[i] = d * (float)(bs[2 * sb] + bs[2 * sb + 1]);
            ns[i] = -32 * bs[2 * sb];
            ns[nsb * QE_ACT_TILE + i] = -32 * bs[2 * sb + 1];
        }
    }
}

static void quant_tiled_avx2(const float *x, int64_t cols, int fmt, int rounding, uint8_t *group, int slot) {
    if (fmt == QE_ACT_F32) { quant_f32_tiled(x, cols, rounding, group, slot); return; }
    if (fmt == QE_ACT_Q8K) { quant_q8k_tiled(x, cols, group, slot); return; }
    int64_t nb = cols / 32;
    int8_t *qs = (int8_t *)group;
    float *gd = (float *)(group + nb * QE_ACT_TILE * 32), *gs = gd + nb * QE_ACT_TILE;
    int32_t *ns = (int32_t *)(gs + nb * QE_ACT_TILE);
    const __m256 signbit = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < nb; b++) {
        __m256 v[4], mx = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) {
            v[i] = _mm256_loadu_ps(x + b * 32 + i * 8);
            mx = _mm256_max_ps(mx, _mm256_andnot_ps(signbit, v[i]));
        }
        float amax = hmax8(mx);
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        __m256 vid = _mm256_set1_ps(id);
        __m256i q[4], sum = _mm256_setzero_si256();
        for (int i = 0; i < 4; i++) {
            q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], vid)); /* MXCSR round-to-nearest-even, like nearbyintf */
            sum = _mm256_add_epi32(sum, q[i]);
        }
        /* pack 32 int32 -> 32 int8 in order */
        __m256i p01 = _mm256_packs_epi32(q[0], q[1]), p23 = _mm256_packs_epi32(q[2], q[3]);
        __m256i p = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(qs + (b * QE_ACT_TILE + slot) * 32), p);
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
        int32_t sm = _mm_cvtsi128_si32(s4);
        gd[b * QE_ACT_TILE + slot] = round_fp16(amax / 127.0f);
        gs[b * QE_ACT_TILE + slot] = round_fp16(amax / 127.0f * (float)sm);
        ns[(0 * nb + b) * QE_ACT_TILE + slot] = -128 * sm;
        ns[(1 * nb + b) * QE_ACT_TILE + slot] = -8 * sm;
        ns[(2 * nb + b) * QE_ACT_TILE + slot] = -16 * sm;
    }
}

static const qe_kernel_set set_avx2 = {
    .name = "avx2",
    .row_align = PR,
    .pack = pack_avx2,
    .mm = mm_avx2,
    .quant_tiled = quant_tiled_avx2,
    .row_f32 = row_f32_avx2,
    .rmsnorm = qe_avx2_rmsnorm,
    .swiglu = qe_avx2_swiglu,
    .f32_to_f16_row = qe_avx2_f32_to_f16_row,
    .attention = qe_avx2_attention,
};

const qe_kernel_set *qe_kernels_avx2(void) { return &set_avx2; }
