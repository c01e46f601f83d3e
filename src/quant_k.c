/* quant_k.c — encoders for the formats whose scales are searched rather than computed: the k-quants (q2_K …
 * q6_K) and iq4_nl. The decoders and bit layouts are in quant.c; these produce blocks in exactly those
 * layouts. They are valid, good-quality encoders in the spirit of ggml's reference quantisers (weighted
 * least-squares fits over a small set of candidate scales, then two-level scale quantisation), not bit-for-bit
 * copies of them: a file written here decodes the same everywhere, but may differ in the last code from
 * the one llama-quantize would write.
 *
 * Two fits do the work:
 *   fit_affine     x ~ s * L - m with L in [0, nmax], s, m >= 0    (q2_K, q4_K, q5_K: "scale + min")
 *   fit_symmetric  x ~ s * L with L in [-nmax, nmax - 1]           (q3_K, q6_K)
 * Both try 10-20 candidate inverse scales around the naive one, fit s (and m) by weighted least squares for
 * the codes each candidate gives, and keep the one with the least weighted squared error. Weights favour
 * large-magnitude values (they matter most in a dot product) but never vanish. */
#include "quant_k.h"

#include <math.h>
#include <string.h>

#include "base.h"
#include "quant.h"

static inline int nearest(float f) { return (int)lrintf(f); }
static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Per-value weights: |x| plus the block's rms, so small values still count. */
static void make_weights(const float *x, int n, float *w) {
    float s2 = 0;
    for (int i = 0; i < n; i++) s2 += x[i] * x[i];
    float rms = sqrtf(s2 / n);
    for (int i = 0; i < n; i++) w[i] = rms + fabsf(x[i]);
}

/* Returns s >= 0 and *m_out = m >= 0 with x[i] ~ s * L[i] - m. */
static float fit_affine(int n, int nmax, const float *x, const float *w, uint8_t *L, float *m_out) {
    float mn = x[0], mx = x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < mn) mn = x[i];
        if (x[i] > mx) mx = x[i];
    }
    if (mn > 0) mn = 0; /* the format's offset only subtracts: a positive block uses min 0 */
    if (mx <= mn) {
        memset(L, 0, (size_t)n);
        *m_out = -mn;
        return 0;
    }
    float best_err = INFINITY, best_s = 0, best_b = mn;
    uint8_t Lc[32];
    float sw = 0, sx = 0, sx2 = 0;
    for (int i = 0; i < n; i++) {
        sw += w[i];
        sx += w[i] * x[i];
        sx2 += w[i] * x[i] * x[i];
    }
    for (int step = -5; step <= 5; step++) {
        float is = (nmax + 0.2f * step) / (mx - mn);
        if (is <= 0) continue;
        /* codes for this candidate, then the least-squares (s, b) of x ~ s*L + b */
        float sl = 0, sl2 = 0, sxl = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest(is * (x[i] - mn)), 0, nmax);
            Lc[i] = (uint8_t)l;
            sl += w[i] * l;
            sl2 += w[i] * l * l;
            sxl += w[i] * x[i] * l;
        }
        float D = sw * sl2 - sl * sl, s, b;
        if (D <= 0) continue;
        s = (sw * sxl - sx * sl) / D;
        b = (sl2 * sx - sl * sxl) / D;
        if (b > 0) { b = 0; s = sxl / sl2; }
        if (s <= 0) continue;
        /* sum w (s L + b - x)^2 expanded, so no second pass over the values */
        float err = s * s * sl2 + 2 * s * b * sl + b * b * sw - 2 * s * sxl - 2 * b * sx + sx2;
        if (err < best_err) {
            best_err = err;
            best_s = s;
            best_b = b;
            memcpy(L, Lc, (size_t)n);
        }
    }
    if (best_err == INFINITY) { /* cannot happen for mx > mn, but stay defined */
        best_s = (mx - mn) / nmax;
        for (int i = 0; i < n; i++) L[i] = (uint8_t)clampi(nearest((x[i] - mn) / best_s), 0, nmax);
    }
    *m_out = -best_b;
    return best_s;
}

/* Returns s (any sign) with x[i] ~ s * L[i], L[i] in [-nmax, nmax - 1] (stored in L as L + nmax). */
static float fit_symmetric(int n, int nmax, const float *x, const float *w, int8_t *L) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
    if (amax < 1e-30f) {
        for (int i = 0; i < n; i++) L[i] = (int8_t)nmax;
        return 0;
    }
    /* The value of largest magnitude maps near -nmax (the longer side of the code range) or near nmax - 1
     * (the other orientation, which fits blocks whose extremes are on the other side). */
    float best = -1, best_s = 0;
    int8_t Lc[32];
    for (int cand = 0; cand < 18; cand++) {
        int step = cand % 9 - 4;
        float is = cand < 9 ? -(nmax + 0.25f * step) / max : (nmax - 1 + 0.25f * step) / max;
        float sxl = 0, sl2 = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest(is * x[i]), -nmax, nmax - 1);
            Lc[i] = (int8_t)l;
            sxl += w[i] * x[i] * l;
            sl2 += w[i] * l * l;
        }
        /* error = sum w x^2 - sxl^2 / sl2 for the best s: maximise sxl^2 / sl2 */
        if (sl2 > 0 && sxl * sxl / sl2 > best) {
            best = sxl * sxl / sl2;
            best_s = sxl / sl2;
            for (int i = 0; i < n; i++) L[i] = (int8_t)(Lc[i] + nmax);
        }
    }
    return best_s;
}

/* ---- q2_K: 16 sub-blocks of 16, 2-bit codes, 4-bit scale and 4-bit min per sub-block ---------------- */

void qe_q2_K_from_float(const float *x, void *dst, int64_t n) {
    block_q2_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        uint8_t L[QK_K];
        float w[16], sc[16], mn[16], max_sc = 0, max_mn = 0;
        for (int j = 0; j < 16; j++) {
            make_weights(x + 16 * j, 16, w);
            sc[j] = fit_affine(16, 3, x + 16 * j, w, L + 16 * j, &mn[j]);
            if (sc[j] > max_sc) max_sc = sc[j];
            if (mn[j] > max_mn) max_mn = mn[j];
        }
        y[i].d = qe_fp32_to_fp16(max_sc / 15);
        y[i].dmin = qe_fp32_to_fp16(max_mn / 15);
        float d = qe_fp16_to_fp32(y[i].d), dmin = qe_fp16_to_fp32(y[i].dmin);
        for (int j = 0; j < 16; j++) {
            int ls = d > 0 ? clampi(nearest(sc[j] / d), 0, 15) : 0;
            int lm = dmin > 0 ? clampi(nearest(mn[j] / dmin), 0, 15) : 0;
            y[i].scales[j] = (uint8_t)(ls | lm << 4);
            /* re-derive the codes from the scales actually stored */
            float dl = d * ls, ml = dmin * lm;
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = dl > 0 ? (uint8_t)clampi(nearest((x[16 * j + l] + ml) / dl), 0, 3) : 0;
        }
        /* byte l of each 32-byte group holds weights l, l+32, l+64, l+96 of its 128-weight half */
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const uint8_t *q = L + 128 * h + l;
                y[i].qs[32 * h + l] = (uint8_t)(q[0] | q[32] << 2 | q[64] << 4 | q[96] << 6);
            }
    }
}

/* ---- q3_K: 16 sub-blocks of 16, 3-bit codes (2 low bits in qs, the third in hmask), 6-bit signed scales */

void qe_q3_K_from_float(const float *x, void *dst, int64_t n) {
    block_q3_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        int8_t L[QK_K];
        float w[16], sc[16], amax = 0, max = 0;
        for (int j = 0; j < 16; j++) {
            make_weights(x + 16 * j, 16, w);
            sc[j] = fit_symmetric(16, 4, x + 16 * j, w, L + 16 * j);
            if (fabsf(sc[j]) > amax) { amax = fabsf(sc[j]); max = sc[j]; }
        }
        memset(y[i].scales, 0, sizeof y[i].scales);
        memset(y[i].hmask, 0, sizeof y[i].hmask);
        float iscale = amax > 0 ? -32.f / max : 0;
        y[i].d = qe_fp32_to_fp16(amax > 0 ? 1 / iscale : 0);
        for (int j = 0; j < 16; j++) {
            int l = clampi(nearest(iscale * sc[j]), -32, 31) + 32; /* stored with a +32 bias */
            if (j < 8) y[i].scales[j] = (uint8_t)(l & 0xf);
            else y[i].scales[j - 8] |= (uint8_t)((l & 0xf) << 4);
            y[i].scales[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
        }
        int8_t s6[16];
        qe_q3_K_scales(y[i].scales, s6);
        float d = qe_fp16_to_fp32(y[i].d);
        for (int j = 0; j < 16; j++) {
            float dl = d * s6[j];
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = (int8_t)(dl != 0 ? clampi(nearest(x[16 * j + l] / dl), -4, 3) + 4 : 4);
        }
        /* The third bit of weight k is bit k/32 of hmask[k%32]; the code's low two bits go in qs as in q2_K. */
        for (int k = 0; k < QK_K; k++)
            if (L[k] > 3) {
                y[i].hmask[k % 32] |= (uint8_t)(1 << (k / 32));
                L[k] -= 4;
            }
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const int8_t *q = L + 128 * h + l;
                y[i].qs[32 * h + l] = (uint8_t)(q[0] | q[32] << 2 | q[64] << 4 | q[96] << 6);
            }
    }
}

/* ---- q4_K / q5_K: 8 sub-blocks of 32, 6-bit scale and min per sub-block ---------------------------------- */

/* Fits the eight sub-blocks, quantises their scales and mins to 6 bits and packs them (the inverse of
 * qe_get_scale_min_k4), then recomputes the codes L (0..nmax) from the stored values. */
static void k4_scales_and_codes(const float *x, int nmax, qe_half *dh, qe_half *dminh, uint8_t *scales, uint8_t *L) {
    float w[32], sc[8], mn[8], max_sc = 0, max_mn = 0;
    for (int j = 0; j < 8; j++) {
        make_weights(x + 32 * j, 32, w);
        sc[j] = fit_affine(32, nmax, x + 32 * j, w, L + 32 * j, &mn[j]);
        if (sc[j] > max_sc) max_sc = sc[j];
        if (mn[j] > max_mn) max_mn = mn[j];
    }
    *dh = qe_fp32_to_fp16(max_sc / 63);
    *dminh = qe_fp32_to_fp16(max_mn / 63);
    float d = qe_fp16_to_fp32(*dh), dmin = qe_fp16_to_fp32(*dminh);
    memset(scales, 0, K_SCALE_SIZE);
    for (int j = 0; j < 8; j++) {
        int ls = d > 0 ? clampi(nearest(sc[j] / d), 0, 63) : 0;
        int lm = dmin > 0 ? clampi(nearest(mn[j] / dmin), 0, 63) : 0;
        if (j < 4) {
            scales[j] = (uint8_t)ls;
            scales[j + 4] = (uint8_t)lm;
        } else {
            scales[j + 4] = (uint8_t)((ls & 0xf) | (lm & 0xf) << 4);
            scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    for (int j = 0; j < 8; j++) {
        uint8_t ls, lm;
        qe_get_scale_min_k4(j, scales, &ls, &lm);
        float dl = d * ls, ml = dmin * lm;
        for (int l = 0; l < 32; l++)
            L[32 * j + l] = dl > 0 ? (uint8_t)clampi(nearest((x[32 * j + l] + ml) / dl), 0, nmax) : 0;
    }
}

void qe_q4_K_from_float(const float *x, void *dst, int64_t n) {
    block_q4_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        uint8_t L[QK_K];
        k4_scales_and_codes(x, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        /* each 64 weights: the first 32 in the low nibbles of 32 bytes, the next 32 in the high nibbles */
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) y[i].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
    }
}

void qe_q5_K_from_float(const float *x, void *dst, int64_t n) {
    block_q5_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        uint8_t L[QK_K];
        k4_scales_and_codes(x, 31, &y[i].d, &y[i].dmin, y[i].scales, L);
        memset(y[i].qh, 0, sizeof y[i].qh);
        /* as q4_K for the low 4 bits; the fifth bit of weight 64c + l is bit 2c of qh[l], of 64c + 32 + l bit 2c+1 */
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                int a = L[64 * c + l], b = L[64 * c + 32 + l];
                y[i].qs[32 * c + l] = (uint8_t)((a & 0xf) | (b & 0xf) << 4);
                y[i].qh[l] |= (uint8_t)((a >> 4) << (2 * c) | (b >> 4) << (2 * c + 1));
            }
    }
}

/* ---- q6_K: 16 sub-blocks of 16, 6-bit codes, 8-bit signed scales ------------------------------------------ */

void qe_q6_K_from_float(const float *x, void *dst, int64_t n) {
    block_q6_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        int8_t L[QK_K];
        float w[16], sc[16], amax = 0, max = 0;
        for (int j = 0; j < 16; j++) {
            make_weights(x + 16 * j, 16, w);
            sc[j] = fit_symmetric(16, 32, x + 16 * j, w, L + 16 * j);
            if (fabsf(sc[j]) > amax) { amax = fabsf(sc[j]); max = sc[j]; }
        }
        float iscale = amax > 0 ? -128.f / max : 0;
        y[i].d = qe_fp32_to_fp16(amax > 0 ? 1 / iscale : 0);
        float d = qe_fp16_to_fp32(y[i].d);
        for (int j = 0; j < 16; j++) {
            y[i].scales[j] = (int8_t)clampi(nearest(iscale * sc[j]), -128, 127);
            float dl = d * y[i].scales[j];
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = (int8_t)(dl != 0 ? clampi(nearest(x[16 * j + l] / dl), -32, 31) + 32 : 32);
        }
        /* Per 128-weight half: ql[l] = low nibbles of weights l (low) and l+64 (high), ql[l+32] of l+32 and
         * l+96; qh[l] = the top two bits of l, l+32, l+64, l+96 in bit pairs 0, 2, 4, 6. */
        for (int h = 0; h < 2; h++) {
            uint8_t *ql = y[i].ql + 64 * h, *qh = y[i].qh + 32 * h;
            const int8_t *q = L + 128 * h;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((q[l] & 0xf) | (q[l + 64] & 0xf) << 4);
                ql[l + 32] = (uint8_t)((q[l + 32] & 0xf) | (q[l + 96] & 0xf) << 4);
                qh[l] = (uint8_t)((q[l] >> 4) | (q[l + 32] >> 4) << 2 | (q[l + 64] >> 4) << 4 | (q[l + 96] >> 4) << 6);
            }
        }
    }
}

/* ---- iq4_nl: blocks of 32, each weight one of 16 non-uniform levels times the block scale ---------------- */

static int best_level(float v) {
    /* the levels are sorted: binary search over the midpoints between neighbours (doubled to stay integer) */
    float v2 = v + v;
    int k = 0;
    for (int step = 8; step > 0; step >>= 1)
        if (v2 > (float)(qe_kvalues_iq4nl[k + step - 1] + qe_kvalues_iq4nl[k + step])) k += step;
    return k;
}

void qe_iq4_nl_from_float(const float *x, void *dst, int64_t n) {
    block_iq4_nl *y = dst;
    for (int64_t i = 0; i < n / QK4_NL; i++, x += QK4_NL) {
        float w[QK4_NL], amax = 0, max = 0;
        make_weights(x, QK4_NL, w);
        for (int j = 0; j < QK4_NL; j++)
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
        if (amax < 1e-30f) {
            y[i].d = 0;
            memset(y[i].qs, 0x88, sizeof y[i].qs); /* level 8 = +1: any code times d = 0 is 0 */
            continue;
        }
        /* Candidates map the largest weight near either end of the level table (-127 or +113); for each,
         * the least-squares d for the chosen levels; keep the best. */
        float best = -1, best_d = 0;
        for (int side = 0; side < 2; side++)
            for (int step = -6; step <= 6; step += 2) {
                float id = ((side ? qe_kvalues_iq4nl[15] : qe_kvalues_iq4nl[0]) + step) / max;
                float sqx = 0, sq2 = 0;
                for (int j = 0; j < QK4_NL; j++) {
                    int q = qe_kvalues_iq4nl[best_level(id * x[j])];
                    sqx += w[j] * q * x[j];
                    sq2 += w[j] * q * q;
                }
                if (sq2 > 0 && sqx * sqx / sq2 > best) {
                    best = sqx * sqx / sq2;
                    best_d = sqx / sq2;
                }
            }
        y[i].d = qe_fp32_to_fp16(best_d);
        float d = qe_fp16_to_fp32(y[i].d), id = d != 0 ? 1 / d : 0;
        for (int j = 0; j < QK4_NL / 2; j++)
            y[i].qs[j] = (uint8_t)(best_level(id * x[j]) | best_level(id * x[j + 16]) << 4);
    }
}
