/* matmul_avx512.c — the AVX-512 (F/BW/VL/DQ + VNNI) kernel set: packed weight panels, int8 VNNI tiles for
 * the 32-block quant types, f32 FMA tiles for f16/bf16/f32 weights, and a bit-exact activation quantiser.
 * Compiled with the AVX-512 flags only; chosen at run time by cpu.c. Numerics equal matmul_ref.c up to the
 * order of f32 additions (tests/unit/test_kernels.c holds them together).
 *
 * The weights are in the 16-row panels of panel.h (one 64-byte vector = 4 consecutive weights of each of the 16
 * rows), packed, read back and looped over by panel.c; this file holds the tiles. A VNNI vpdpbusd multiplies one
 * such vector with 4 activation bytes broadcast from memory and adds into 16 per-row int32 sums.
 *   vpdpbusd multiplies unsigned by signed bytes: weights are stored unsigned (q8_0 + 128: q8_unsigned; 4/5-bit
 *   codes as they are; iq4_nl looked up as codebook + 128) and activations stay signed; the offset is removed by
 *   starting each block's int32 sum at -offset * sum(activation qs of the block), which the quantiser computed.
 * The 4/5-bit matrices stay 4/5-bit in memory (decode is bandwidth-bound); they are widened to bytes in
 * registers, once per block, and reused for every token of the tile (16 rows x up to 8 tokens). */
#include <immintrin.h>
#include <string.h>

#include "base.h"
#include "kernels/kern.h"
#include "kernels/panel.h"
#include "quant.h"

#define PR 16    /* rows per panel */
#define TT 8     /* tokens per register tile: a whole activation group, so every tile starts at slot s0 = 0 */
_Static_assert(TT == QE_ACT_TILE, "the tiles below ignore s0");
/* Decode prefetch distance (QE_PF_STREAMED tiles): q8_0 panels 8 blocks (4 KiB of codes) ahead, the nibble
 * layouts (4/5-bit and k-quants, 256 bytes of codes per 32 columns) 32 blocks (8 KiB), float panels 32 column
 * steps (4 KiB of f16 for one token); each the best of 8 / 16 / 32 / 64 for its type (bench/KERNELS.md). */
#define PF_BLOCKS_Q8 8
#define PF_BLOCKS_NIBBLE 32
#define PF_COLS_F 32

/* --- tiles ------------------------------------------------------------------------------------------- */

#define INLINE static inline __attribute__((always_inline))

INLINE void store_tile(__m512 v, float *y, const float *bias, int accumulate, __mmask16 mk) {
    if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk, bias));
    if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk, y));
    _mm512_mask_storeu_ps(y, mk, v);
}

INLINE int32_t load_i32(const int8_t *p) { int32_t v; memcpy(&v, p, 4); return v; }

/* 16 rows x T tokens of a 32-block layout L over all nb blocks; G = the tokens' tiled activation group. */
INLINE void tile_q32(const int L, const int T, const uint8_t *P, int64_t nb, const uint8_t *G, int slot0, float *y,
                     int64_t ldy, const float *bias, int accumulate, int nr, int pf) {
    const __mmask16 mk = (__mmask16)((1u << nr) - 1);
    const int qb = qe_panel_qbytes(PR, L), hb = qe_panel_hbytes(PR, L);
    const uint8_t *Q = P, *H = P + nb * qb, *D = H + nb * hb, *M = D + nb * 32;
    const int oi = L == QE_TYPE_Q8_0 || L == QE_TYPE_IQ4_NL ? 0 : L == QE_TYPE_Q4_0 ? 1 : L == QE_TYPE_Q5_0 ? 2 : -1;
    const int8_t *XQ = (const int8_t *)G;
    const float *XD = (const float *)(G + nb * QE_ACT_TILE * 32), *XS = XD + nb * QE_ACT_TILE;
    const int32_t *NS = (const int32_t *)(XS + nb * QE_ACT_TILE) + (oi < 0 ? 0 : oi) * nb * QE_ACT_TILE;
    __m512 acc[TT];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    const __m512i lo4 = _mm512_set1_epi8(0x0F);
    const __m512i lut = _mm512_broadcast_i32x4(_mm_add_epi8(_mm_loadu_si128((const __m128i *)qe_kvalues_iq4nl), _mm_set1_epi8((char)0x80)));
    const __m512i b16 = _mm512_set1_epi8(16);
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *xq = XQ + b * QE_ACT_TILE * 32;
        if (pf) { /* this tile streams the panel from memory: ask for it ahead */
            const int ahead = L == QE_TYPE_Q8_0 ? PF_BLOCKS_Q8 : PF_BLOCKS_NIBBLE;
            qe_prefetch_lines(Q + (b + ahead) * qb, qb);
            qe_prefetch_lines(H + (b + ahead) * hb, hb);
            qe_prefetch_lines(D + (b + ahead) * 32, 32);
        }
        /* NC int32 chains per token, the tokens interleaved: 8 independent chains of vpdpbusd in all when T >= 4.
         * With fewer tokens one chain per token would be a serial chain of 8 vpdpbusd per block (latency ~5
         * each): decode would wait on it, so products go round-robin to NC chains, summed at the end (integer
         * sums: the same bits). (Two chains per token at T = 8 were slower: the extra add costs more than the
         * latency it hides; bench/KERNELS.md.) Weights are widened one column-group pair at a time so few registers
         * hold them. */
        const int NC = T == 1 ? 4 : T <= 3 ? 2 : 1;
        __m512i s0[TT][4];
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            s0[t][0] = oi >= 0 ? _mm512_set1_epi32(NS[b * QE_ACT_TILE + t]) : _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int c = 1; c < NC; c++) s0[t][c] = _mm512_setzero_si512();
        }
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            __m512i wl, wh;
            if (L == QE_TYPE_Q8_0) {
                wl = _mm512_loadu_si512(Q + b * 512 + j * 64);
                wh = _mm512_loadu_si512(Q + b * 512 + (j + 4) * 64);
            } else {
                __m512i v = _mm512_loadu_si512(Q + b * 256 + j * 64);
                wl = _mm512_and_si512(v, lo4);
                wh = _mm512_and_si512(_mm512_srli_epi16(v, 4), lo4);
                if (L == QE_TYPE_IQ4_NL) { wl = _mm512_shuffle_epi8(lut, wl); wh = _mm512_shuffle_epi8(lut, wh); }
                if (L == QE_TYPE_Q5_0 || L == QE_TYPE_Q5_1) {
                    const uint64_t *hm = (const uint64_t *)(H + b * 64);
                    wl = _mm512_mask_add_epi8(wl, _cvtu64_mask64(hm[j]), wl, b16);
                    wh = _mm512_mask_add_epi8(wh, _cvtu64_mask64(hm[j + 4]), wh, b16);
                }
            }
            const int cl = (2 * j) % NC, ch = (2 * j + 1) % NC;
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) s0[t][cl] = _mm512_dpbusd_epi32(s0[t][cl], wl, _mm512_set1_epi32(load_i32(xq + t * 32 + 4 * j)));
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) s0[t][ch] = _mm512_dpbusd_epi32(s0[t][ch], wh, _mm512_set1_epi32(load_i32(xq + t * 32 + 4 * j + 16)));
        }
        __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(D + b * 32)));
        __m512 mw = _mm512_setzero_ps();
        if (L == QE_TYPE_Q4_1 || L == QE_TYPE_Q5_1) mw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(M + b * 32)));
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            __m512i si = NC == 4 ? _mm512_add_epi32(_mm512_add_epi32(s0[t][0], s0[t][1]), _mm512_add_epi32(s0[t][2], s0[t][3]))
                       : NC == 2 ? _mm512_add_epi32(s0[t][0], s0[t][1]) : s0[t][0];
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(si), _mm512_mul_ps(dw, _mm512_set1_ps(XD[b * QE_ACT_TILE + t])), acc[t]);
            if (L == QE_TYPE_Q4_1 || L == QE_TYPE_Q5_1) acc[t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(XS[b * QE_ACT_TILE + t]), acc[t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) store_tile(acc[t], y + (int64_t)t * ldy, bias, accumulate, mk);
}

/* 16 rows x T tokens of a k-quant layout over all nsb 32-column sub-blocks (the same VNNI scheme as
 * tile_q32, with per-sub-block weight scales built from the 256-block's d and the 6-bit/8-bit sub-scales). */
INLINE void tile_k(const int L, const int T, const uint8_t *P, int64_t nsb, const uint8_t *G, int slot0, float *y,
                   int64_t ldy, const float *bias, int accumulate, int nr, int pf) {
    const __mmask16 mk = (__mmask16)((1u << nr) - 1);
    const int64_t nb = nsb / 8;
    const uint8_t *C = P, *H = C + nsb * 256, *S = H + nsb * qe_panel_hbytes(PR, L), *D = S + nsb * 32, *DM = D + nb * 32;
    const int8_t *XQ = (const int8_t *)G;
    const float *XD = (const float *)(G + nsb * QE_ACT_TILE * 32), *XS = XD + nsb * QE_ACT_TILE;
    const int32_t *NS0 = (const int32_t *)(XS + nsb * QE_ACT_TILE), *NS1 = NS0 + nsb * QE_ACT_TILE;
    __m512 acc[TT];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    const __m512i lo4 = _mm512_set1_epi8(0x0F), b16 = _mm512_set1_epi8(16), b32 = _mm512_set1_epi8(32);
    __m512 dK = _mm512_setzero_ps(), dmK = _mm512_setzero_ps();
    for (int64_t b = 0; b < nsb; b++) {
        if ((b & 7) == 0) {
            dK = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(D + (b >> 3) * 32)));
            if (L != QE_TYPE_Q6_K) dmK = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(DM + (b >> 3) * 32)));
        }
        const int8_t *xq = XQ + b * QE_ACT_TILE * 32;
        if (pf) {
            qe_prefetch_lines(C + (b + PF_BLOCKS_NIBBLE) * 256, 256);
            qe_prefetch_lines(H + (b + PF_BLOCKS_NIBBLE) * qe_panel_hbytes(PR, L), qe_panel_hbytes(PR, L));
            qe_prefetch_lines(S + (b + PF_BLOCKS_NIBBLE) * 32, 32);
        }
        __m512i s0[TT], s1[TT];
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            s0[t] = L == QE_TYPE_Q6_K ? _mm512_set1_epi32(NS0[b * QE_ACT_TILE + t]) : _mm512_setzero_si512();
            s1[t] = L == QE_TYPE_Q6_K ? _mm512_set1_epi32(NS1[b * QE_ACT_TILE + t]) : _mm512_setzero_si512();
        }
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            __m512i v = _mm512_loadu_si512(C + b * 256 + j * 64);
            __m512i wl = _mm512_and_si512(v, lo4), wh = _mm512_and_si512(_mm512_srli_epi16(v, 4), lo4);
            if (L != QE_TYPE_Q4_K) {
                const uint64_t *hm = (const uint64_t *)(H + b * qe_panel_hbytes(PR, L));
                wl = _mm512_mask_add_epi8(wl, _cvtu64_mask64(hm[j]), wl, b16);
                wh = _mm512_mask_add_epi8(wh, _cvtu64_mask64(hm[j + 4]), wh, b16);
                if (L == QE_TYPE_Q6_K) {
                    wl = _mm512_mask_add_epi8(wl, _cvtu64_mask64(hm[8 + j]), wl, b32);
                    wh = _mm512_mask_add_epi8(wh, _cvtu64_mask64(hm[8 + j + 4]), wh, b32);
                }
            }
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) s0[t] = _mm512_dpbusd_epi32(s0[t], wl, _mm512_set1_epi32(load_i32(xq + t * 32 + 4 * j)));
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) s1[t] = _mm512_dpbusd_epi32(s1[t], wh, _mm512_set1_epi32(load_i32(xq + t * 32 + 4 * j + 16)));
        }
        if (L == QE_TYPE_Q6_K) {
            __m512 dw0 = _mm512_mul_ps(dK, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(S + b * 32)))));
            __m512 dw1 = _mm512_mul_ps(dK, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(S + b * 32 + 16)))));
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                __m512 dx = _mm512_set1_ps(XD[b * QE_ACT_TILE + t]);
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0[t]), _mm512_mul_ps(dw0, dx), acc[t]);
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1[t]), _mm512_mul_ps(dw1, dx), acc[t]);
            }
        } else {
            __m512 dw = _mm512_mul_ps(dK, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(S + b * 32)))));
            __m512 mw = _mm512_sub_ps(_mm512_setzero_ps(),
                                      _mm512_mul_ps(dmK, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(S + b * 32 + 16))))));
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                __m512i si = _mm512_add_epi32(s0[t], s1[t]);
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(si), _mm512_mul_ps(dw, _mm512_set1_ps(XD[b * QE_ACT_TILE + t])), acc[t]);
                acc[t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(XS[b * QE_ACT_TILE + t]), acc[t]);
            }
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) store_tile(acc[t], y + (int64_t)t * ldy, bias, accumulate, mk);
}

/* 16 rows x T tokens of a float layout over all columns; for T < 4 several accumulators per token hide the
 * FMA latency. */
INLINE __m512 load_wcol(const int L, const uint8_t *P, int64_t c) {
    if (L == QE_TYPE_F16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(P + c * 32)));
    if (L == QE_TYPE_BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(P + c * 32))), 16));
    return _mm512_loadu_ps((const float *)(P + c * 64));
}

INLINE void tile_f(const int L, const int T, const uint8_t *P, int64_t cols, const uint8_t *G, int s0, float *y,
                   int64_t ldy, const float *bias, int accumulate, int nr, int pf) {
    const __mmask16 mk = (__mmask16)((1u << nr) - 1);
    const int U = T >= 4 ? 1 : T == 1 ? 4 : 2;
    const float *X = (const float *)G; /* X[c * 8 + t] */
    __m512 acc[TT][4];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++)
#pragma GCC unroll 4
        for (int u = 0; u < U; u++) acc[t][u] = _mm512_setzero_ps();
    int64_t c = 0;
    const int esz = L == QE_TYPE_F32 ? 64 : 32; /* bytes of one weight column of the panel */
    for (; c + U <= cols; c += U) {
        if (pf) qe_prefetch_lines(P + (c + PF_COLS_F * U) * esz, U * esz);
#pragma GCC unroll 4
        for (int u = 0; u < U; u++) {
            __m512 w = load_wcol(L, P, c + u);
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) acc[t][u] = _mm512_fmadd_ps(w, _mm512_set1_ps(X[(c + u) * QE_ACT_TILE + t]), acc[t][u]);
        }
    }
    for (; c < cols; c++) {
        __m512 w = load_wcol(L, P, c);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[t][0] = _mm512_fmadd_ps(w, _mm512_set1_ps(X[c * QE_ACT_TILE + t]), acc[t][0]);
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
        __m512 sm = acc[t][0];
#pragma GCC unroll 4
        for (int u = 1; u < U; u++) sm = _mm512_add_ps(sm, acc[t][u]);
        store_tile(sm, y + (int64_t)t * ldy, bias, accumulate, mk);
    }
}

/* Two panels (32 rows) x T tokens of a float layout, for prefill: each broadcast activation feeds two FMAs,
 * so 16 accumulators run at the FMA ports' rate instead of the load ports'. P2 = the second panel. */
INLINE void tile_f2(const int L, const int T, const uint8_t *P, const uint8_t *P2, int64_t cols, const uint8_t *G,
                    int s0, float *y, int64_t ldy, const float *bias, int accumulate, int nr, int nr2) {
    const __mmask16 mk = (__mmask16)((1u << nr) - 1), mk2 = (__mmask16)((1u << nr2) - 1);
    const float *X = (const float *)G;
    __m512 acc0[TT], acc1[TT];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) { acc0[t] = _mm512_setzero_ps(); acc1[t] = _mm512_setzero_ps(); }
    for (int64_t c = 0; c < cols; c++) {
        __m512 w0 = load_wcol(L, P, c), w1 = load_wcol(L, P2, c);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            __m512 xb = _mm512_set1_ps(X[c * QE_ACT_TILE + t]);
            acc0[t] = _mm512_fmadd_ps(w0, xb, acc0[t]);
            acc1[t] = _mm512_fmadd_ps(w1, xb, acc1[t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
        store_tile(acc0[t], y + (int64_t)t * ldy, bias, accumulate, mk);
        store_tile(acc1[t], y + (int64_t)t * ldy + PR, bias ? bias + PR : NULL, accumulate, mk2);
    }
}

/* Float layouts from 4 tokens on: two panels per tile (tile_f2). */
#define PAIRS(name, L)                                                                                              \
    static void name(int T, const uint8_t *P, const uint8_t *P2, int64_t k, const uint8_t *G, int s0, float *y,     \
                     int64_t ldy, const float *bias, int acc, int nr, int nr2) {                                    \
        switch (T) {                                                                                               \
        case 4: tile_f2(L, 4, P, P2, k, G, s0, y, ldy, bias, acc, nr, nr2); break;                                 \
        case 5: tile_f2(L, 5, P, P2, k, G, s0, y, ldy, bias, acc, nr, nr2); break;                                 \
        case 6: tile_f2(L, 6, P, P2, k, G, s0, y, ldy, bias, acc, nr, nr2); break;                                 \
        case 7: tile_f2(L, 7, P, P2, k, G, s0, y, ldy, bias, acc, nr, nr2); break;                                 \
        default: tile_f2(L, 8, P, P2, k, G, s0, y, ldy, bias, acc, nr, nr2); break;                                \
        }                                                                                                          \
    }
PAIRS(pairs_f16, QE_TYPE_F16)
PAIRS(pairs_bf16, QE_TYPE_BF16)
PAIRS(pairs_f32, QE_TYPE_F32)

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

/* q8_0 is stored + 128: vpdpbusd multiplies unsigned weights by signed activations. */
static const qe_panel_kernels panel = {
    .rows = PR, .q8_unsigned = 1, .tile_tokens = TT, .pair_min_tokens = 4,
    .tiles = {[QE_TYPE_Q8_0] = tiles_q8_0, [QE_TYPE_Q4_0] = tiles_q4_0, [QE_TYPE_Q4_1] = tiles_q4_1,
              [QE_TYPE_Q5_0] = tiles_q5_0, [QE_TYPE_Q5_1] = tiles_q5_1, [QE_TYPE_IQ4_NL] = tiles_iq4_nl,
              [QE_TYPE_Q4_K] = tiles_q4_K, [QE_TYPE_Q5_K] = tiles_q5_K, [QE_TYPE_Q6_K] = tiles_q6_K,
              [QE_TYPE_F16] = tiles_f16, [QE_TYPE_BF16] = tiles_bf16, [QE_TYPE_F32] = tiles_f32},
    .pairs = {[QE_TYPE_F16] = pairs_f16, [QE_TYPE_BF16] = pairs_bf16, [QE_TYPE_F32] = pairs_f32},
};

static const qe_kernel_set set_avx512;
static int pack_avx512(qe_mat *m) { return qe_panel_pack(m, &panel, &set_avx512); }
static void row_f32_avx512(const qe_mat *m, int64_t row, float *out) { qe_panel_row_f32(&panel, m, row, out); }

static void mm_avx512(const qe_mat *m, const qe_act *a, int n, float *y, int64_t ldy, const float *bias,
                      int accumulate, int64_t r0, int64_t r1) {
    qe_panel_mm(&panel, m, a, n, y, ldy, bias, accumulate, r0, r1);
}

/* --- activation quantisers (bit-identical to qe_quant_row_*_ref) -------------------------------------- */

/* f32 -> fp16 -> f32 through F16C: IEEE round-to-nearest-even like qe_fp32_to_fp16 (the tests hold them equal),
 * ~30x cheaper than the portable bit manipulation. */
static inline float round_fp16(float v) { return _cvtsh_ss(_cvtss_sh(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)); }

static void quant_q8_avx512(const float *x, int64_t cols, uint8_t *row) {
    int64_t nb = cols / 32, pad = (cols + 63) / 64 * 64;
    int8_t *qs = (int8_t *)row;
    float *d = (float *)(row + pad), *s = d + nb;
    int32_t *sum = (int32_t *)(s + nb);
    const __m512 signbit = _mm512_set1_ps(-0.0f);
    for (int64_t b = 0; b < nb; b++) {
        __m512 v0 = _mm512_loadu_ps(x + b * 32), v1 = _mm512_loadu_ps(x + b * 32 + 16);
        __m512 mx = _mm512_max_ps(_mm512_andnot_ps(signbit, v0), _mm512_andnot_ps(signbit, v1));
        float amax = _mm512_reduce_max_ps(mx);
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        __m512 vid = _mm512_set1_ps(id);
        __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid)), i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
        _mm_storeu_si128((__m128i *)(qs + b * 32), _mm512_cvtepi32_epi8(i0));
        _mm_storeu_si128((__m128i *)(qs + b * 32 + 16), _mm512_cvtepi32_epi8(i1));
        int32_t sm = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
        d[b] = round_fp16(amax / 127.0f);
        s[b] = round_fp16(amax / 127.0f * (float)sm);
        sum[b] = sm;
    }
    memset(qs + cols, 0, (size_t)(pad - cols));
}

/* After the four rounds, lane L holds vector (L % 4) * 4 + L / 4 (traced by hand-simulating the shuffles);
 * this index vector gathers vector i into lane i. */
static inline __m512i hred16_perm(void) { return _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15); }
/* Lane i of the result = max (or integer sum) of the 16 lanes of v[i]: a transposing reduction, 4 shuffle
 * rounds, instead of 16 separate horizontal reductions. The lane order comes out permuted; a final
 * permutation puts vector i in lane i. */
#define HRED16(NAME, T, OP, SH4, SHPS, CAST_IN, CAST_OUT)                                                            \
    static inline T NAME(T *v) {                                                                                   \
        __m512 a[16];                                                                                              \
        for (int i = 0; i < 16; i++) a[i] = CAST_IN(v[i]);                                                         \
        __m512 t[8], u[4], w[2];                                                                                   \
        for (int k = 0; k < 8; k++)                                                                                \
            t[k] = OP(_mm512_shuffle_f32x4(a[2 * k], a[2 * k + 1], 0x44), _mm512_shuffle_f32x4(a[2 * k], a[2 * k + 1], 0xEE)); \
        for (int k = 0; k < 4; k++)                                                                                \
            u[k] = OP(_mm512_shuffle_f32x4(t[2 * k], t[2 * k + 1], 0x88), _mm512_shuffle_f32x4(t[2 * k], t[2 * k + 1], 0xDD)); \
        for (int k = 0; k < 2; k++)                                                                                \
            w[k] = OP(_mm512_shuffle_ps(u[2 * k], u[2 * k + 1], 0x44), _mm512_shuffle_ps(u[2 * k], u[2 * k + 1], 0xEE)); \
        __m512 r = OP(_mm512_shuffle_ps(w[0], w[1], 0x88), _mm512_shuffle_ps(w[0], w[1], 0xDD));                    \
        return CAST_OUT(_mm512_permutexvar_ps(hred16_perm(), r));                                                  \
    }
static inline __m512 max_ps_(__m512 a, __m512 b) { return _mm512_max_ps(a, b); }
static inline __m512 add_epi32_(__m512 a, __m512 b) {
    return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(a), _mm512_castps_si512(b)));
}
static inline __m512 id_ps_(__m512 a) { return a; }
HRED16(hmax16x16, __m512, max_ps_, 0, 0, id_ps_, id_ps_)
HRED16(hsum16x16_epi32_ps, __m512, add_epi32_, 0, 0, id_ps_, id_ps_)
static inline __m512i hsum16x16_epi32(__m512i *v) {
    __m512 a[16];
    for (int i = 0; i < 16; i++) a[i] = _mm512_castsi512_ps(v[i]);
    return _mm512_castps_si512(hsum16x16_epi32_ps(a));
}

/* q8_K into the tiled layout: the scale comes from the first element of largest magnitude (sign kept),
 * iscale = -127/max, q = min(127, round-to-nearest-even(iscale * x)), d = 1/iscale — as qe_quant_row_q8k_ref. */
static void quant_q8k_tiled(const float *x, int64_t cols, uint8_t *group, int slot) {
    int64_t nsb = cols / 32;
    int8_t *qs = (int8_t *)group;
    float *gd = (float *)(group + nsb * QE_ACT_TILE * 32), *gs = gd + nsb * QE_ACT_TILE;
    int32_t *ns = (int32_t *)(gs + nsb * QE_ACT_TILE);
    const __m512 signbit = _mm512_set1_ps(-0.0f);
    for (int64_t b = 0; b < cols / 256; b++) {
        const float *xb = x + b * 256;
        __m512 v[16], mx = _mm512_setzero_ps();
        for (int i = 0; i < 16; i++) {
            v[i] = _mm512_loadu_ps(xb + i * 16);
            mx = _mm512_max_ps(mx, _mm512_andnot_ps(signbit, v[i]));
        }
        float amax = _mm512_reduce_max_ps(mx), d = 0;
        int32_t bs[16] = {0};
        if (amax == 0) {
            for (int sb = 0; sb < 8; sb++) memset(qs + ((b * 8 + sb) * QE_ACT_TILE + slot) * 32, 0, 32);
        } else {
            float max = 0;
            for (int i = 0; i < 16; i++) { /* first element with |x| == amax */
                __mmask16 e = _mm512_cmp_ps_mask(_mm512_andnot_ps(signbit, v[i]), _mm512_set1_ps(amax), _CMP_EQ_OQ);
                if (e) { max = xb[i * 16 + __builtin_ctz(e)]; break; }
            }
            float iscale = -127.f / max;
            __m512 vs = _mm512_set1_ps(iscale);
            for (int i = 0; i < 16; i++) {
                __m512i q = _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(vs, v[i])), _mm512_set1_epi32(127));
                bs[i] = _mm512_reduce_add_epi32(q);
                _mm_storeu_si128((__m128i *)(qs + ((b * 8 + i / 2) * QE_ACT_TILE + slot) * 32 + (i & 1) * 16), _mm512_cvtepi32_epi8(q));
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

static void quant_tiled_avx512(const float *x, int64_t cols, int fmt, int rounding, uint8_t *group, int slot) {
    if (fmt == QE_ACT_Q8K) { quant_q8k_tiled(x, cols, group, slot); return; }
    if (fmt == QE_ACT_F32) {
        float *o = (float *)group + slot;
        int64_t c = 0;
        const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                               _mm512_set1_epi32(QE_ACT_TILE));
        if (rounding != QE_ROUND_BF16)
            for (; c + 16 <= cols; c += 16) {
                __m512 v = _mm512_loadu_ps(x + c);
                if (rounding == QE_ROUND_F16) v = _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
                _mm512_i32scatter_ps(o + c * QE_ACT_TILE, idx, v, 4);
            }
        for (; c < cols; c++)
            o[c * QE_ACT_TILE] = rounding == QE_ROUND_F16 ? qe_fp16_to_fp32(qe_fp32_to_fp16(x[c]))
                               : rounding == QE_ROUND_BF16 ? qe_bf16_to_fp32(qe_fp32_to_bf16(x[c])) : x[c];
        return;
    }
    int64_t nb = cols / 32, b = 0;
    int8_t *qs = (int8_t *)group;
    float *gd = (float *)(group + nb * QE_ACT_TILE * 32), *gs = gd + nb * QE_ACT_TILE;
    int32_t *ns = (int32_t *)(gs + nb * QE_ACT_TILE);
    const __m512 signbit = _mm512_set1_ps(-0.0f);
    /* 16 blocks at a time: the per-block maxima and sums come out of one transposing reduction each, the
     * divisions and fp16 roundings run on 16 lanes; every value is computed by the same IEEE operations as the
     * scalar loop below (max and integer sums are exact in any order), so the results are bit-identical. */
    for (; b + 16 <= nb; b += 16) {
        __m512 m[16];
        for (int i = 0; i < 16; i++)
            m[i] = _mm512_max_ps(_mm512_andnot_ps(signbit, _mm512_loadu_ps(x + (b + i) * 32)),
                                 _mm512_andnot_ps(signbit, _mm512_loadu_ps(x + (b + i) * 32 + 16)));
        __m512 amax = hmax16x16(m);
        __mmask16 nz = _mm512_cmp_ps_mask(amax, _mm512_setzero_ps(), _CMP_NEQ_OQ);
        __m512 dv = _mm512_div_ps(amax, _mm512_set1_ps(127.0f));
        float id[16], dround[16], dexact[16];
        _mm512_storeu_ps(id, _mm512_maskz_div_ps(nz, _mm512_set1_ps(127.0f), amax));
        _mm512_storeu_ps(dexact, dv);
        _mm512_storeu_ps(dround, _mm512_cvtph_ps(_mm512_cvtps_ph(dv, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
        __m512i sums[16];
        for (int i = 0; i < 16; i++) {
            __m512 vid = _mm512_set1_ps(id[i]);
            __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + (b + i) * 32), vid));
            __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + (b + i) * 32 + 16), vid));
            int8_t *q = qs + ((b + i) * QE_ACT_TILE + slot) * 32;
            _mm_storeu_si128((__m128i *)q, _mm512_cvtepi32_epi8(i0));
            _mm_storeu_si128((__m128i *)(q + 16), _mm512_cvtepi32_epi8(i1));
            sums[i] = _mm512_add_epi32(i0, i1);
        }
        __m512i sm = hsum16x16_epi32(sums);
        float sround[16];
        int32_t smv[16];
        _mm512_storeu_ps(sround, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_mul_ps(_mm512_loadu_ps(dexact), _mm512_cvtepi32_ps(sm)),
                                                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
        _mm512_storeu_si512(smv, sm);
        for (int i = 0; i < 16; i++) {
            gd[(b + i) * QE_ACT_TILE + slot] = dround[i];
            gs[(b + i) * QE_ACT_TILE + slot] = sround[i];
            ns[(0 * nb + b + i) * QE_ACT_TILE + slot] = -128 * smv[i];
            ns[(1 * nb + b + i) * QE_ACT_TILE + slot] = -8 * smv[i];
            ns[(2 * nb + b + i) * QE_ACT_TILE + slot] = -16 * smv[i];
        }
    }
    for (; b < nb; b++) {
        __m512 v0 = _mm512_loadu_ps(x + b * 32), v1 = _mm512_loadu_ps(x + b * 32 + 16);
        __m512 mx = _mm512_max_ps(_mm512_andnot_ps(signbit, v0), _mm512_andnot_ps(signbit, v1));
        float amax = _mm512_reduce_max_ps(mx);
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        __m512 vid = _mm512_set1_ps(id);
        __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid)), i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
        int8_t *q = qs + (b * QE_ACT_TILE + slot) * 32;
        _mm_storeu_si128((__m128i *)q, _mm512_cvtepi32_epi8(i0));
        _mm_storeu_si128((__m128i *)(q + 16), _mm512_cvtepi32_epi8(i1));
        int32_t sm = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
        gd[b * QE_ACT_TILE + slot] = round_fp16(amax / 127.0f);
        gs[b * QE_ACT_TILE + slot] = round_fp16(amax / 127.0f * (float)sm);
        ns[(0 * nb + b) * QE_ACT_TILE + slot] = -128 * sm;
        ns[(1 * nb + b) * QE_ACT_TILE + slot] = -8 * sm;
        ns[(2 * nb + b) * QE_ACT_TILE + slot] = -16 * sm;
    }
}

static void quant_f32_avx512(const float *x, int64_t cols, int rounding, uint8_t *row) {
    float *o = (float *)row;
    int64_t i = 0;
    if (rounding == QE_ROUND_F16)
        for (; i + 16 <= cols; i += 16)
            _mm512_storeu_ps(o + i, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    else if (rounding == QE_ROUND_NONE)
        for (; i + 16 <= cols; i += 16) _mm512_storeu_ps(o + i, _mm512_loadu_ps(x + i));
    if (i < cols) qe_quant_row_f32_ref(x + i, cols - i, rounding, row + i * 4);
}

static const qe_kernel_set set_avx512 = {
    .name = "avx512-vnni",
    .row_align = PR,
    .pack = pack_avx512,
    .mm = mm_avx512,
    .quant_q8 = quant_q8_avx512,
    .quant_f32 = quant_f32_avx512,
    .quant_tiled = quant_tiled_avx512,
    .row_f32 = row_f32_avx512,
    .rmsnorm = qe_avx512_rmsnorm,
    .swiglu = qe_avx512_swiglu,
    .f32_to_f16_row = qe_avx512_f32_to_f16_row,
    .attention = qe_avx512_attention,
};

const qe_kernel_set *qe_kernels_avx512(void) { return &set_avx512; }
