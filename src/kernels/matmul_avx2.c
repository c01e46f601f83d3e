/* matmul_avx2.c — the AVX2 + FMA + F16C kernel set, for x86-64 CPUs without AVX-512 (most desktops and
 * laptops). The same design as matmul_avx512.c with 8-row panels (one ymm = 4 consecutive weights of 8 rows)
 * and without VNNI: int8 products go through vpmaddubsw (u8 x s8 -> s16 pairs, saturating) + vpmaddwd.
 *   - 4/5-bit codes are small unsigned numbers (<= 31), so vpmaddubsw cannot saturate: codes are used as
 *     they are and the offset (8 or 16) is removed with the activation block sums, as in the AVX-512 set.
 *   - q8_0 and iq4_nl weights are signed bytes up to 127 in magnitude: ggml's sign trick, |w| x sign(x, w),
 *     keeps every pair sum <= 2 * 127 * 127 < 32768.
 * The weights are packed into 8-row panels (panel.h; the NEON set uses the same). Activations: the tiled
 * layouts of kern.h, shared with the AVX-512 set. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "base.h"
#include "kernels/kern.h"
#include "kernels/panel.h"
#include "quant.h"

/* Decode prefetch distance in blocks (matmul_avx512.c has its own). These tiles spend more instructions per
 * byte, and ask further ahead; 32 measured best of 8 / 32 / 64 (bench/KERNELS.md). */
#define PF_BLOCKS 32
#define PR 8 /* rows per panel (panel.h) */
#define TT 4 /* tokens per tile */

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
                     int64_t ldy, const float *bias, int accumulate, int nr, int pf) {
    const int qb = qe_panel_qbytes(PR, L), hb = qe_panel_hbytes(PR, L);
    const uint8_t *Q = P, *H = P + nb * qb, *D = H + nb * hb, *M = D + nb * 16;
    const int oi = L == QE_TYPE_Q4_0 ? 1 : L == QE_TYPE_Q5_0 ? 2 : -1; /* q8_0 and iq4_nl are signed: no offset */
    const int8_t *XQ = (const int8_t *)G;
    const float *XD = (const float *)(G + nb * QE_ACT_TILE * 32), *XS = XD + nb * QE_ACT_TILE;
    const int32_t *NS = (const int32_t *)(XS + nb * QE_ACT_TILE) + (oi < 0 ? 0 : oi) * nb * QE_ACT_TILE;
    const int signed_w = L == QE_TYPE_Q8_0 || L == QE_TYPE_IQ4_NL;
    __m256 acc[TT];
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    const __m256i lo4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1), b16 = _mm256_set1_epi8(16);
    const __m256i lut = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qe_kvalues_iq4nl));
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *xq = XQ + (b * QE_ACT_TILE + s0) * 32;
        if (pf) {
            qe_prefetch_lines(Q + (b + PF_BLOCKS) * qb, qb);
            if (hb) qe_prefetch_lines(H + (b + PF_BLOCKS) * hb, hb);
            qe_prefetch_lines(D + (b + PF_BLOCKS) * 16, 16);
        }
        __m256i s[TT];
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) s[t] = oi >= 0 ? _mm256_set1_epi32(NS[b * QE_ACT_TILE + s0 + t]) : _mm256_setzero_si256();
        if (signed_w) {
            #pragma GCC unroll 8
            for (int g = 0; g < 8; g++) {
                __m256i w;
                if (L == QE_TYPE_Q8_0) w = _mm256_loadu_si256((const __m256i *)(Q + b * 256 + g * 32));
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
        if (L == QE_TYPE_Q4_1 || L == QE_TYPE_Q5_1) mw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(M + b * 16)));
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[t]), _mm256_mul_ps(dw, _mm256_set1_ps(XD[b * QE_ACT_TILE + s0 + t])), acc[t]);
            if (L == QE_TYPE_Q4_1 || L == QE_TYPE_Q5_1) acc[t] = _mm256_fmadd_ps(mw, _mm256_set1_ps(XS[b * QE_ACT_TILE + s0 + t]), acc[t]);
        }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++) store_tile(acc[t], y + (int64_t)t * ldy, bias, accumulate, nr);
}

/* 8 rows x T tokens of a k-quant layout over nsb sub-blocks (tiled q8_K activations, see kern.h). Codes are
 * unsigned (q6_K: 0..63, its -32 comes from the activation sums), so vpmaddubsw cannot saturate: pairs of
 * 16-bit products are summed over 4 column groups for 4/5-bit codes, 2 for 6-bit ones, before vpmaddwd. */
INLINE void tile_k(const int L, const int T, const uint8_t *P, int64_t nsb, const uint8_t *G, int s0, float *y,
                   int64_t ldy, const float *bias, int accumulate, int nr, int pf) {
    const int64_t nb = nsb / 8;
    const uint8_t *C = P, *H = C + nsb * 128, *S = H + nsb * qe_panel_hbytes(PR, L), *D = S + nsb * 16, *DM = D + nb * 16;
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
            if (L != QE_TYPE_Q6_K) dmK = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(DM + (b >> 3) * 16)));
        }
        const int8_t *xq = XQ + (b * QE_ACT_TILE + s0) * 32;
        const uint32_t *hm = (const uint32_t *)(H + b * qe_panel_hbytes(PR, L));
        if (pf) {
            qe_prefetch_lines(C + (b + PF_BLOCKS) * 128, 128);
            if (L != QE_TYPE_Q4_K) qe_prefetch_lines(H + (b + PF_BLOCKS) * qe_panel_hbytes(PR, L), qe_panel_hbytes(PR, L));
            qe_prefetch_lines(S + (b + PF_BLOCKS) * 16, 16);
        }
        __m256i s[2][TT];
#pragma GCC unroll 2
        for (int half = 0; half < 2; half++) {
#pragma GCC unroll 4
            for (int t = 0; t < T; t++)
                s[half][t] = L == QE_TYPE_Q6_K ? _mm256_set1_epi32((half ? NS1 : NS0)[b * QE_ACT_TILE + s0 + t]) : _mm256_setzero_si256();
            __m256i p16[TT];
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) p16[t] = _mm256_setzero_si256();
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                int g = half * 4 + j;
                __m256i v = _mm256_loadu_si256((const __m256i *)(C + b * 128 + j * 32));
                __m256i w = _mm256_and_si256(half ? _mm256_srli_epi16(v, 4) : v, lo4);
                if (L != QE_TYPE_Q4_K) w = _mm256_add_epi8(w, _mm256_and_si256(bits_to_bytes(hm[g]), b16));
                if (L == QE_TYPE_Q6_K) w = _mm256_add_epi8(w, _mm256_and_si256(bits_to_bytes(hm[8 + g]), b32));
#pragma GCC unroll 4
                for (int t = 0; t < T; t++)
                    p16[t] = _mm256_add_epi16(p16[t], _mm256_maddubs_epi16(w, _mm256_set1_epi32(load_i32(xq + t * 32 + 4 * g))));
                if (L == QE_TYPE_Q6_K && (j & 1)) { /* 6-bit: flush every 2 groups (2 * 2 * 63 * 127 < 32768) */
#pragma GCC unroll 4
                    for (int t = 0; t < T; t++) { s[half][t] = _mm256_add_epi32(s[half][t], _mm256_madd_epi16(p16[t], ones)); p16[t] = _mm256_setzero_si256(); }
                }
            }
            if (L != QE_TYPE_Q6_K) {
#pragma GCC unroll 4
                for (int t = 0; t < T; t++) s[half][t] = _mm256_add_epi32(s[half][t], _mm256_madd_epi16(p16[t], ones));
            }
        }
        if (L == QE_TYPE_Q6_K) {
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
    if (L == QE_TYPE_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(P + c * 16)));
    if (L == QE_TYPE_BF16)
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(P + c * 16))), 16));
    return _mm256_loadu_ps((const float *)(P + c * 32));
}

INLINE void tile_f(const int L, const int T, const uint8_t *P, int64_t cols, const uint8_t *G, int s0, float *y,
                   int64_t ldy, const float *bias, int accumulate, int nr, int pf) {
    const int U = T >= 3 ? 2 : T == 1 ? 8 : 4; /* >= 8 independent FMA chains (latency 4, 2 ports) */
    const float *X = (const float *)G + s0;
    __m256 acc[TT][8];
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        #pragma GCC unroll 8
        for (int u = 0; u < U; u++) acc[t][u] = _mm256_setzero_ps();
    int64_t c = 0;
    const int esz = L == QE_TYPE_F32 ? 32 : 16; /* bytes of one weight column of the panel */
    for (; c + U <= cols; c += U) {
        if (pf) qe_prefetch_lines(P + (c + 16 * U) * esz, U * esz);
        #pragma GCC unroll 8
        for (int u = 0; u < U; u++) {
            __m256 w = load_wcol(L, P, c + u);
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) acc[t][u] = _mm256_fmadd_ps(w, _mm256_set1_ps(X[(c + u) * QE_ACT_TILE + t]), acc[t][u]);
        }
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


/* The tiles of this set, one per weight type (q2_K, q3_K: none, they stay on the reference path). */
#define TILES(name, KIND, TY) QE_PANEL_TILES(name, KIND, TY, TT)
TILES(tiles_q8_0, tile_q32, QE_TYPE_Q8_0)
TILES(tiles_q4_0, tile_q32, QE_TYPE_Q4_0)
TILES(tiles_q4_1, tile_q32, QE_TYPE_Q4_1)
TILES(tiles_q5_0, tile_q32, QE_TYPE_Q5_0)
TILES(tiles_q5_1, tile_q32, QE_TYPE_Q5_1)
TILES(tiles_iq4_nl, tile_q32, QE_TYPE_IQ4_NL)
TILES(tiles_q4_K, tile_k, QE_TYPE_Q4_K)
TILES(tiles_q5_K, tile_k, QE_TYPE_Q5_K)
TILES(tiles_q6_K, tile_k, QE_TYPE_Q6_K)
TILES(tiles_f16, tile_f, QE_TYPE_F16)
TILES(tiles_bf16, tile_f, QE_TYPE_BF16)
TILES(tiles_f32, tile_f, QE_TYPE_F32)

static const qe_panel_kernels panel = {
    .rows = PR, .q8_unsigned = 0, .tile_tokens = TT,
    .tiles = {[QE_TYPE_Q8_0] = tiles_q8_0, [QE_TYPE_Q4_0] = tiles_q4_0, [QE_TYPE_Q4_1] = tiles_q4_1,
              [QE_TYPE_Q5_0] = tiles_q5_0, [QE_TYPE_Q5_1] = tiles_q5_1, [QE_TYPE_IQ4_NL] = tiles_iq4_nl,
              [QE_TYPE_Q4_K] = tiles_q4_K, [QE_TYPE_Q5_K] = tiles_q5_K, [QE_TYPE_Q6_K] = tiles_q6_K,
              [QE_TYPE_F16] = tiles_f16, [QE_TYPE_BF16] = tiles_bf16, [QE_TYPE_F32] = tiles_f32},
};

static const qe_kernel_set set_avx2;
static int pack_avx2(qe_mat *m) { return qe_panel_pack(m, &panel, &set_avx2); }

static void mm_avx2(const qe_mat *m, const qe_act *a, int n, float *y, int64_t ldy, const float *bias,
                    int accumulate, int64_t r0, int64_t r1) {
    qe_panel_mm(&panel, m, a, n, y, ldy, bias, accumulate, r0, r1);
}

static void row_f32_avx2(const qe_mat *m, int64_t row, float *out) { qe_panel_row_f32(&panel, m, row, out);
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
