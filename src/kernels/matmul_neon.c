/* matmul_neon.c — the aarch64 NEON kernel sets: "neon" with dotprod (Raspberry Pi 5's Cortex-A76, Apple M1 and
 * later, Graviton 2 and later) and, compiled again by matmul_neon_v80.c, "neon-v80" for ARMv8.0 cores without it
 * (Raspberry Pi 4's Cortex-A72, A53 boards). Weights are in the 8-row panels of panel.h, the layout the AVX2 set
 * uses: the 32 bytes of one column group (4 consecutive weights of 8 rows) are two q registers, rows 0-3 and 4-7.
 *   - sdot (vdotq_laneq_s32) multiplies 4 weights of 4 rows by 4 activation bytes of one token, taken as a
 *     lane of the 16 activation bytes loaded once per token and half block: no broadcast per group. Without
 *     dotprod the same sums come from widening multiplies and pairwise adds (DOT_LANE below).
 *   - Its operands are both signed with 32-bit sums, so nothing saturates: 4/5/6-bit codes are used unsigned
 *     as stored and their offset comes from the activation block sums (as in the x86 sets), q8_0 and iq4_nl
 *     (after a table lookup) are signed bytes used directly — no sign trick.
 *   - Float weights: f16 through vcvt_f32_f16, bf16 by a 16-bit shift, f32 as is; f32 FMA.
 * Activations: the tiled layouts of kern.h; q8 and f32/f16 quantised here, bit for bit as the reference
 * quantiser (q8_K and bf16 through it). The Makefile compiles *_neon.c for
 * plain ARMv8.0; the dotprod set enables the extension for this file only, so nothing else can use it. */
#ifndef QE_NEON_V80
#pragma GCC target("arch=armv8.2-a+dotprod")
#endif
#include <arm_neon.h>
#include <string.h>

#include "base.h"
#include "kernels/kern.h"
#include "kernels/panel.h"
#include "quant.h"

#ifndef QE_NEON_V80
#define SET_NAME "neon"
#define SET_FN qe_kernels_neon
#else
#define SET_NAME "neon-v80"
#define SET_FN qe_kernels_neon_v80
#endif
#define PR 8 /* rows per panel (panel.h) */
#define TT 4 /* tokens per tile */

#define INLINE static inline __attribute__((always_inline))

/* 0xFF in byte i of the result where bit i of m is set (16 bits: one 4-row half of a 32-bit panel mask). */
INLINE uint8x16_t bits_to_bytes(uint32_t m) {
    const uint8x16_t bit = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    uint8x16_t v = vcombine_u8(vdup_n_u8((uint8_t)m), vdup_n_u8((uint8_t)(m >> 8)));
    return vtstq_u8(v, bit);
}

INLINE float32x4_t fp16x4(const uint8_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)p))); }
INLINE float32x4_t u8x4_f32(uint32_t v) { /* 4 unsigned bytes -> f32 */
    return vcvtq_f32_u32(vmovl_u16(vget_low_u16(vmovl_u8(vcreate_u8(v)))));
}
INLINE float32x4_t s8x4_f32(uint32_t v) { /* 4 signed bytes -> f32 */
    return vcvtq_f32_s32(vmovl_s16(vget_low_s16(vmovl_s8(vcreate_s8(v)))));
}
INLINE uint32_t load_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* Rows [0, nr) of a tile's two 4-row halves through the epilogue. */
INLINE void store_tile(float32x4_t lo, float32x4_t hi, float *y, const float *bias, int accumulate, int nr) {
    if (nr == PR) {
        if (bias) { lo = vaddq_f32(lo, vld1q_f32(bias)); hi = vaddq_f32(hi, vld1q_f32(bias + 4)); }
        if (accumulate) { lo = vaddq_f32(lo, vld1q_f32(y)); hi = vaddq_f32(hi, vld1q_f32(y + 4)); }
        vst1q_f32(y, lo);
        vst1q_f32(y + 4, hi);
        return;
    }
    float tmp[PR];
    vst1q_f32(tmp, lo);
    vst1q_f32(tmp + 4, hi);
    for (int r = 0; r < nr; r++) y[r] = qe_epilogue(tmp[r], y + r, bias, r, accumulate);
}

/* acc[i] += the dot product of bytes 4i..4i+3 of w with bytes 4 lane..4 lane+3 of x (sdot by element). */
#ifndef QE_NEON_V80
#define DOT_LANE(acc, w, x, lane) vdotq_laneq_s32(acc, w, x, lane)
#else
/* Products widened to 16 bits; |w x| <= 128 * 127, so a pair sum fits in int16 (vpaddq), and vpadalq adds the
 * pairs of pairs into the 32-bit lanes: rows 0..3 of the group, as sdot. */
INLINE int32x4_t dot_lane_v80(int32x4_t acc, int8x16_t w, int8x16_t xb) {
    int16x8_t lo = vmull_s8(vget_low_s8(w), vget_low_s8(xb)), hi = vmull_high_s8(w, xb);
    return vpadalq_s16(acc, vpaddq_s16(lo, hi));
}
#define DOT_LANE(acc, w, x, lane) dot_lane_v80(acc, w, vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(x), lane)))
#endif

/* s[t][h] += the 4-column group g of weights w (halves h = rows 0-3, 4-7) times token t's 4 activation bytes,
 * lane g % 4 of x[t][g / 4]. The lane must be a literal, hence a macro over the 8 groups. */
#define DOT_GROUP(g, w0, w1)                                                                                        \
    do {                                                                                                           \
        _Pragma("GCC unroll 4") for (int t = 0; t < T; t++) {                                                      \
            s[t][0] = DOT_LANE(s[t][0], w0, x[t][(g) >> 2], (g) & 3);                                       \
            s[t][1] = DOT_LANE(s[t][1], w1, x[t][(g) >> 2], (g) & 3);                                       \
        }                                                                                                          \
    } while (0)

/* Codes of column group g (0..7) of a 32-column block: q8_0 bytes, or the nibble half of bytes Q[(g % 4) * 32 ...]
 * with the 5th bit from mask hm[g] (when hm is given), q6_K's 6th bit from hm[8 + g], the iq4_nl table applied. */
INLINE void group_codes(const int L, const uint8_t *Q, const uint32_t *hm, int g, int8x16_t *w0, int8x16_t *w1) {
    if (L == QE_TYPE_Q8_0) {
        *w0 = vld1q_s8((const int8_t *)Q + g * 32);
        *w1 = vld1q_s8((const int8_t *)Q + g * 32 + 16);
        return;
    }
    uint8x16_t v0 = vld1q_u8(Q + (g & 3) * 32), v1 = vld1q_u8(Q + (g & 3) * 32 + 16);
    const uint8x16_t lo4 = vdupq_n_u8(0x0F);
    uint8x16_t c0 = g < 4 ? vandq_u8(v0, lo4) : vshrq_n_u8(v0, 4), c1 = g < 4 ? vandq_u8(v1, lo4) : vshrq_n_u8(v1, 4);
    if (hm) {
        const uint8x16_t b16 = vdupq_n_u8(16);
        c0 = vorrq_u8(c0, vandq_u8(bits_to_bytes(hm[g]), b16));
        c1 = vorrq_u8(c1, vandq_u8(bits_to_bytes(hm[g] >> 16), b16));
    }
    if (L == QE_TYPE_Q6_K) {
        const uint8x16_t b32 = vdupq_n_u8(32);
        c0 = vorrq_u8(c0, vandq_u8(bits_to_bytes(hm[8 + g]), b32));
        c1 = vorrq_u8(c1, vandq_u8(bits_to_bytes(hm[8 + g] >> 16), b32));
    }
    if (L == QE_TYPE_IQ4_NL) {
        const int8x16_t lut = vld1q_s8(qe_kvalues_iq4nl);
        *w0 = vqtbl1q_s8(lut, c0);
        *w1 = vqtbl1q_s8(lut, c1);
    } else {
        *w0 = vreinterpretq_s8_u8(c0);
        *w1 = vreinterpretq_s8_u8(c1);
    }
}

/* 8 rows x T tokens (slots s0..s0+T-1 of the group G) of a 32-block layout over nb blocks. */
INLINE void tile_q32(const int L, const int T, const uint8_t *P, int64_t nb, const uint8_t *G, int s0, float *y,
                     int64_t ldy, const float *bias, int accumulate, int nr, int pf) {
    const int qb = qe_panel_qbytes(PR, L), hb = qe_panel_hbytes(PR, L);
    const uint8_t *Q = P, *H = P + nb * qb, *D = H + nb * hb, *M = D + nb * 16;
    const int oi = L == QE_TYPE_Q4_0 ? 1 : L == QE_TYPE_Q5_0 ? 2 : -1; /* which offset correction (kern.h negsum) */
    const int has_min = L == QE_TYPE_Q4_1 || L == QE_TYPE_Q5_1;
    const int8_t *XQ = (const int8_t *)G;
    const float *XD = (const float *)(G + nb * QE_ACT_TILE * 32), *XS = XD + nb * QE_ACT_TILE;
    const int32_t *NS = (const int32_t *)(XS + nb * QE_ACT_TILE) + (oi < 0 ? 0 : oi) * nb * QE_ACT_TILE;
    float32x4_t acc[TT][2];
    _Pragma("GCC unroll 4") for (int t = 0; t < T; t++) acc[t][0] = acc[t][1] = vdupq_n_f32(0);
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *xq = XQ + (b * QE_ACT_TILE + s0) * 32;
        const uint8_t *q = Q + b * qb;
        const uint32_t *hm = hb ? (const uint32_t *)(H + b * 32) : NULL;
        int32x4_t s[TT][2];
        int8x16_t x[TT][2];
        _Pragma("GCC unroll 4") for (int t = 0; t < T; t++) {
            s[t][0] = s[t][1] = vdupq_n_s32(oi >= 0 ? NS[b * QE_ACT_TILE + s0 + t] : 0);
            x[t][0] = vld1q_s8(xq + t * 32);
            x[t][1] = vld1q_s8(xq + t * 32 + 16);
        }
        int8x16_t w0, w1;
        group_codes(L, q, hm, 0, &w0, &w1); DOT_GROUP(0, w0, w1);
        group_codes(L, q, hm, 1, &w0, &w1); DOT_GROUP(1, w0, w1);
        group_codes(L, q, hm, 2, &w0, &w1); DOT_GROUP(2, w0, w1);
        group_codes(L, q, hm, 3, &w0, &w1); DOT_GROUP(3, w0, w1);
        group_codes(L, q, hm, 4, &w0, &w1); DOT_GROUP(4, w0, w1);
        group_codes(L, q, hm, 5, &w0, &w1); DOT_GROUP(5, w0, w1);
        group_codes(L, q, hm, 6, &w0, &w1); DOT_GROUP(6, w0, w1);
        group_codes(L, q, hm, 7, &w0, &w1); DOT_GROUP(7, w0, w1);
        float32x4_t dw0 = fp16x4(D + b * 16), dw1 = fp16x4(D + b * 16 + 8), mw0 = dw0, mw1 = dw1;
        if (has_min) { mw0 = fp16x4(M + b * 16); mw1 = fp16x4(M + b * 16 + 8); }
        _Pragma("GCC unroll 4") for (int t = 0; t < T; t++) {
            float xd = XD[b * QE_ACT_TILE + s0 + t];
            acc[t][0] = vfmaq_f32(acc[t][0], vcvtq_f32_s32(s[t][0]), vmulq_n_f32(dw0, xd));
            acc[t][1] = vfmaq_f32(acc[t][1], vcvtq_f32_s32(s[t][1]), vmulq_n_f32(dw1, xd));
            if (has_min) {
                acc[t][0] = vfmaq_n_f32(acc[t][0], mw0, XS[b * QE_ACT_TILE + s0 + t]);
                acc[t][1] = vfmaq_n_f32(acc[t][1], mw1, XS[b * QE_ACT_TILE + s0 + t]);
            }
        }
    }
    _Pragma("GCC unroll 4") for (int t = 0; t < T; t++) store_tile(acc[t][0], acc[t][1], y + (int64_t)t * ldy, bias, accumulate, nr);
}

/* 8 rows x T tokens of a k-quant layout over nsb 32-column sub-blocks (tiled q8_K activations, kern.h). q6_K
 * has a scale per 16 columns, so each half's sums are scaled on their own (starting from its -32 offset
 * correction); q4_K/q5_K sum both halves in integers and scale once, then subtract the min term. */
INLINE void tile_k(const int L, const int T, const uint8_t *P, int64_t nsb, const uint8_t *G, int s0, float *y,
                   int64_t ldy, const float *bias, int accumulate, int nr, int pf) {
    const int64_t nb = nsb / 8;
    const uint8_t *C = P, *H = C + nsb * 128, *S = H + nsb * qe_panel_hbytes(PR, L), *D = S + nsb * 16, *DM = D + nb * 16;
    const int8_t *XQ = (const int8_t *)G;
    const float *XD = (const float *)(G + nsb * QE_ACT_TILE * 32), *XS = XD + nsb * QE_ACT_TILE;
    const int32_t *NS0 = (const int32_t *)(XS + nsb * QE_ACT_TILE), *NS1 = NS0 + nsb * QE_ACT_TILE;
    float32x4_t acc[TT][2];
    _Pragma("GCC unroll 4") for (int t = 0; t < T; t++) acc[t][0] = acc[t][1] = vdupq_n_f32(0);
    float32x4_t dK0 = vdupq_n_f32(0), dK1 = dK0, dmK0 = dK0, dmK1 = dK0;
    for (int64_t b = 0; b < nsb; b++) {
        if ((b & 7) == 0) {
            dK0 = fp16x4(D + (b >> 3) * 16);
            dK1 = fp16x4(D + (b >> 3) * 16 + 8);
            if (L != QE_TYPE_Q6_K) { dmK0 = fp16x4(DM + (b >> 3) * 16); dmK1 = fp16x4(DM + (b >> 3) * 16 + 8); }
        }
        const int8_t *xq = XQ + (b * QE_ACT_TILE + s0) * 32;
        const uint8_t *q = C + b * 128;
        const uint32_t *hm = L == QE_TYPE_Q4_K ? NULL : (const uint32_t *)(H + b * qe_panel_hbytes(PR, L));
        int8x16_t x[TT][2], w0, w1;
        int32x4_t s[TT][2];
        _Pragma("GCC unroll 4") for (int t = 0; t < T; t++) {
            x[t][0] = vld1q_s8(xq + t * 32);
            x[t][1] = vld1q_s8(xq + t * 32 + 16);
            s[t][0] = s[t][1] = vdupq_n_s32(L == QE_TYPE_Q6_K ? NS0[b * QE_ACT_TILE + s0 + t] : 0);
        }
        group_codes(L, q, hm, 0, &w0, &w1); DOT_GROUP(0, w0, w1);
        group_codes(L, q, hm, 1, &w0, &w1); DOT_GROUP(1, w0, w1);
        group_codes(L, q, hm, 2, &w0, &w1); DOT_GROUP(2, w0, w1);
        group_codes(L, q, hm, 3, &w0, &w1); DOT_GROUP(3, w0, w1);
        if (L == QE_TYPE_Q6_K) {
            uint32_t sc = load_u32(S + b * 16), sc4 = load_u32(S + b * 16 + 4);
            float32x4_t d0 = vmulq_f32(dK0, s8x4_f32(sc)), d1 = vmulq_f32(dK1, s8x4_f32(sc4));
            _Pragma("GCC unroll 4") for (int t = 0; t < T; t++) {
                float xd = XD[b * QE_ACT_TILE + s0 + t];
                acc[t][0] = vfmaq_f32(acc[t][0], vcvtq_f32_s32(s[t][0]), vmulq_n_f32(d0, xd));
                acc[t][1] = vfmaq_f32(acc[t][1], vcvtq_f32_s32(s[t][1]), vmulq_n_f32(d1, xd));
                s[t][0] = s[t][1] = vdupq_n_s32(NS1[b * QE_ACT_TILE + s0 + t]);
            }
        }
        group_codes(L, q, hm, 4, &w0, &w1); DOT_GROUP(4, w0, w1);
        group_codes(L, q, hm, 5, &w0, &w1); DOT_GROUP(5, w0, w1);
        group_codes(L, q, hm, 6, &w0, &w1); DOT_GROUP(6, w0, w1);
        group_codes(L, q, hm, 7, &w0, &w1); DOT_GROUP(7, w0, w1);
        float32x4_t d0, d1, m0 = vdupq_n_f32(0), m1 = m0;
        if (L == QE_TYPE_Q6_K) {
            d0 = vmulq_f32(dK0, s8x4_f32(load_u32(S + b * 16 + 8)));
            d1 = vmulq_f32(dK1, s8x4_f32(load_u32(S + b * 16 + 12)));
        } else {
            d0 = vmulq_f32(dK0, u8x4_f32(load_u32(S + b * 16)));
            d1 = vmulq_f32(dK1, u8x4_f32(load_u32(S + b * 16 + 4)));
            m0 = vnegq_f32(vmulq_f32(dmK0, u8x4_f32(load_u32(S + b * 16 + 8))));
            m1 = vnegq_f32(vmulq_f32(dmK1, u8x4_f32(load_u32(S + b * 16 + 12))));
        }
        _Pragma("GCC unroll 4") for (int t = 0; t < T; t++) {
            float xd = XD[b * QE_ACT_TILE + s0 + t];
            acc[t][0] = vfmaq_f32(acc[t][0], vcvtq_f32_s32(s[t][0]), vmulq_n_f32(d0, xd));
            acc[t][1] = vfmaq_f32(acc[t][1], vcvtq_f32_s32(s[t][1]), vmulq_n_f32(d1, xd));
            if (L != QE_TYPE_Q6_K) {
                acc[t][0] = vfmaq_n_f32(acc[t][0], m0, XS[b * QE_ACT_TILE + s0 + t]);
                acc[t][1] = vfmaq_n_f32(acc[t][1], m1, XS[b * QE_ACT_TILE + s0 + t]);
            }
        }
    }
    _Pragma("GCC unroll 4") for (int t = 0; t < T; t++) store_tile(acc[t][0], acc[t][1], y + (int64_t)t * ldy, bias, accumulate, nr);
}

/* Column c of a float panel: rows 0-3 and 4-7. */
INLINE void load_wcol(const int L, const uint8_t *P, int64_t c, float32x4_t *w0, float32x4_t *w1) {
    if (L == QE_TYPE_F16) {
        *w0 = fp16x4(P + c * 16);
        *w1 = fp16x4(P + c * 16 + 8);
    } else if (L == QE_TYPE_BF16) {
        *w0 = vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)(P + c * 16)), 16));
        *w1 = vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)(P + c * 16 + 8)), 16));
    } else {
        *w0 = vld1q_f32((const float *)(P + c * 32));
        *w1 = vld1q_f32((const float *)(P + c * 32 + 16));
    }
}

/* 8 rows x T tokens of a float layout over `cols` columns (tiled f32 activations x[c][8]). U columns in flight
 * per token keep >= 8 independent FMA chains (latency 4, 2 pipes). */
INLINE void tile_f(const int L, const int T, const uint8_t *P, int64_t cols, const uint8_t *G, int s0, float *y,
                   int64_t ldy, const float *bias, int accumulate, int nr, int pf) {
    const int U = T >= 4 ? 1 : T >= 2 ? 2 : 4;
    const float *X = (const float *)G + s0;
    float32x4_t acc[TT][4][2];
    _Pragma("GCC unroll 4") for (int t = 0; t < T; t++)
        _Pragma("GCC unroll 4") for (int u = 0; u < U; u++) acc[t][u][0] = acc[t][u][1] = vdupq_n_f32(0);
    int64_t c = 0;
    for (; c + U <= cols; c += U)
        _Pragma("GCC unroll 4") for (int u = 0; u < U; u++) {
            float32x4_t w0, w1;
            load_wcol(L, P, c + u, &w0, &w1);
            _Pragma("GCC unroll 4") for (int t = 0; t < T; t++) {
                float xv = X[(c + u) * QE_ACT_TILE + t];
                acc[t][u][0] = vfmaq_n_f32(acc[t][u][0], w0, xv);
                acc[t][u][1] = vfmaq_n_f32(acc[t][u][1], w1, xv);
            }
        }
    for (; c < cols; c++) {
        float32x4_t w0, w1;
        load_wcol(L, P, c, &w0, &w1);
        _Pragma("GCC unroll 4") for (int t = 0; t < T; t++) {
            acc[t][0][0] = vfmaq_n_f32(acc[t][0][0], w0, X[c * QE_ACT_TILE + t]);
            acc[t][0][1] = vfmaq_n_f32(acc[t][0][1], w1, X[c * QE_ACT_TILE + t]);
        }
    }
    _Pragma("GCC unroll 4") for (int t = 0; t < T; t++) {
        float32x4_t lo = acc[t][0][0], hi = acc[t][0][1];
        _Pragma("GCC unroll 4") for (int u = 1; u < U; u++) { lo = vaddq_f32(lo, acc[t][u][0]); hi = vaddq_f32(hi, acc[t][u][1]); }
        store_tile(lo, hi, y + (int64_t)t * ldy, bias, accumulate, nr);
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

static const qe_kernel_set set_neon;
static int pack_neon(qe_mat *m) { return qe_panel_pack(m, &panel, &set_neon); }

static void mm_neon(const qe_mat *m, const qe_act *a, int n, float *y, int64_t ldy, const float *bias,
                    int accumulate, int64_t r0, int64_t r1) {
    qe_panel_mm(&panel, m, a, n, y, ldy, bias, accumulate, r0, r1);
}

static void row_f32_neon(const qe_mat *m, int64_t row, float *out) { qe_panel_row_f32(&panel, m, row, out);
}

/* --- activation quantiser (bit-identical to qe_quant_tiled_ref; q8_K and bf16 rounding use it directly) ------ */

/* Q8 (32-blocks): amax by maxNum (as fmaxf), q = round-to-nearest-even(x * 127/amax) (vcvtnq, as nearbyintf);
 * the scalars d, s and the offset corrections exactly as the reference forms them. */
static void quant_q8_tiled(const float *x, int64_t cols, uint8_t *group, int slot) {
    int64_t nb = cols / 32;
    int8_t *qs = (int8_t *)group;
    float *gd = (float *)(group + nb * QE_ACT_TILE * 32), *gs = gd + nb * QE_ACT_TILE;
    int32_t *ns = (int32_t *)(gs + nb * QE_ACT_TILE);
    for (int64_t b = 0; b < nb; b++) {
        float32x4_t v[8], mx = vdupq_n_f32(0);
        for (int i = 0; i < 8; i++) {
            v[i] = vld1q_f32(x + b * 32 + 4 * i);
            mx = vmaxnmq_f32(mx, vabsq_f32(v[i]));
        }
        float amax = vmaxnmvq_f32(mx), id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int32x4_t q[8], sum = vdupq_n_s32(0);
        for (int i = 0; i < 8; i++) {
            q[i] = vcvtnq_s32_f32(vmulq_n_f32(v[i], id));
            sum = vaddq_s32(sum, q[i]);
        }
        int8_t *o = qs + (b * QE_ACT_TILE + slot) * 32;
        for (int i = 0; i < 8; i += 4) { /* |q| <= 127: plain narrowing */
            int16x8_t lo = vcombine_s16(vmovn_s32(q[i]), vmovn_s32(q[i + 1]));
            int16x8_t hi = vcombine_s16(vmovn_s32(q[i + 2]), vmovn_s32(q[i + 3]));
            vst1q_s8(o + 4 * i, vcombine_s8(vmovn_s16(lo), vmovn_s16(hi)));
        }
        int32_t sm = vaddvq_s32(sum);
        gd[b * QE_ACT_TILE + slot] = qe_fp16_to_fp32(qe_fp32_to_fp16(amax / 127.0f));
        gs[b * QE_ACT_TILE + slot] = qe_fp16_to_fp32(qe_fp32_to_fp16(amax / 127.0f * (float)sm));
        ns[(0 * nb + b) * QE_ACT_TILE + slot] = -128 * sm;
        ns[(1 * nb + b) * QE_ACT_TILE + slot] = -8 * sm;
        ns[(2 * nb + b) * QE_ACT_TILE + slot] = -16 * sm;
    }
}

static void quant_tiled_neon(const float *x, int64_t cols, int fmt, int rounding, uint8_t *group, int slot) {
    if (fmt == QE_ACT_Q8) { quant_q8_tiled(x, cols, group, slot); return; }
    if (fmt == QE_ACT_F32 && rounding != QE_ROUND_BF16) {
        float *o = (float *)group + slot, tmp[4];
        int64_t c = 0;
        for (; c + 4 <= cols; c += 4) {
            float32x4_t v = vld1q_f32(x + c);
            if (rounding == QE_ROUND_F16) v = vcvt_f32_f16(vcvt_f16_f32(v)); /* round to nearest even, as F16C */
            vst1q_f32(tmp, v);
            for (int i = 0; i < 4; i++) o[(c + i) * QE_ACT_TILE] = tmp[i];
        }
        for (; c < cols; c++) o[c * QE_ACT_TILE] = rounding == QE_ROUND_F16 ? qe_fp16_to_fp32(qe_fp32_to_fp16(x[c])) : x[c];
        return;
    }
    qe_quant_tiled_ref(x, cols, fmt, rounding, group, slot);
}

static const qe_kernel_set set_neon = {
    .name = SET_NAME,
    .row_align = PR,
    .pack = pack_neon,
    .mm = mm_neon,
    .quant_tiled = quant_tiled_neon,
    .row_f32 = row_f32_neon,
    .rmsnorm = qe_neon_rmsnorm,
    .swiglu = qe_neon_swiglu,
    .f32_to_f16_row = qe_neon_f32_to_f16_row,
    .attention = qe_neon_attention,
};

const qe_kernel_set *SET_FN(void) { return &set_neon; }
