/* quant.c — the reference (portable, scalar) conversions between f32 and every GGUF tensor type that
 * qwen-edge knows, plus the traits table. The bit layouts and the dequantisation formulas are ggml's
 * (so files interchange with llama.cpp); the simple quantisers (q4_0 … q8_1, q8_K) round exactly like
 * ggml's quantize_row_*_ref. The searched k-quant and iq4_nl encoders live in quant_k.c.
 *
 * Conventions shared by the 32-weight formats: a block's 4-bit codes are packed two per byte, the low
 * nibble of byte j holding weight j and the high nibble weight j + 16; 5-bit formats keep the fifth bit
 * of weight j in bit j of the 32-bit qh. SIMD versions live in kernels/ and are tested against these. */
#include "quant.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "base.h"
#include "quant_k.h"

const int8_t qe_kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

static inline float h2f(qe_half h) { return qe_fp16_to_fp32(h); }
static inline qe_half f2h(float f) { return qe_fp32_to_fp16(f); }

/* ---- plain floats ---------------------------------------------------------------------------------- */

static void f32_to_float(const void *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }
static void f32_from_float(const float *src, void *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }
static void f16_to_float(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = qe_fp16_to_fp32(s[i]);
}
static void f16_from_float(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = qe_fp32_to_fp16(src[i]);
}
static void bf16_to_float(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = qe_bf16_to_fp32(s[i]);
}
static void bf16_from_float(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = qe_fp32_to_bf16(src[i]);
}

/* ---- 32-weight block formats ------------------------------------------------------------------------ */

/* The weight of largest magnitude, with its sign (the symmetric formats map it to the extreme code). */
static float signed_absmax(const float *x, int n, float *amax_out) {
    float amax = 0, max = 0;
    for (int j = 0; j < n; j++)
        if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
    if (amax_out) *amax_out = amax;
    return max;
}

static void q4_0_to_float(const void *src, float *y, int64_t n) {
    const block_q4_0 *b = src;
    for (int64_t i = 0; i < n / QK4_0; i++, y += QK4_0) {
        float d = h2f(b[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            y[j] = ((b[i].qs[j] & 0xf) - 8) * d;
            y[j + 16] = ((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}
/* d = max / -8 so the largest-magnitude weight lands exactly on code 0 (-8 * d); codes then clamp at 15. */
static void q4_0_from_float(const float *x, void *dst, int64_t n) {
    block_q4_0 *b = dst;
    for (int64_t i = 0; i < n / QK4_0; i++, x += QK4_0) {
        float d = signed_absmax(x, QK4_0, NULL) / -8, id = d ? 1.0f / d : 0.0f;
        b[i].d = f2h(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            int q0 = (int8_t)(x[j] * id + 8.5f), q1 = (int8_t)(x[j + 16] * id + 8.5f);
            b[i].qs[j] = (uint8_t)((q0 < 15 ? q0 : 15) | (q1 < 15 ? q1 : 15) << 4);
        }
    }
}

static void q4_1_to_float(const void *src, float *y, int64_t n) {
    const block_q4_1 *b = src;
    for (int64_t i = 0; i < n / QK4_1; i++, y += QK4_1) {
        float d = h2f(b[i].d), m = h2f(b[i].m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            y[j] = (b[i].qs[j] & 0xf) * d + m;
            y[j + 16] = (b[i].qs[j] >> 4) * d + m;
        }
    }
}
static void minmax(const float *x, int n, float *mn, float *mx) {
    *mn = FLT_MAX;
    *mx = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < *mn) *mn = x[j];
        if (x[j] > *mx) *mx = x[j];
    }
}
static void q4_1_from_float(const float *x, void *dst, int64_t n) {
    block_q4_1 *b = dst;
    for (int64_t i = 0; i < n / QK4_1; i++, x += QK4_1) {
        float mn, mx;
        minmax(x, QK4_1, &mn, &mx);
        float d = (mx - mn) / 15, id = d ? 1.0f / d : 0.0f;
        b[i].d = f2h(d);
        b[i].m = f2h(mn);
        for (int j = 0; j < QK4_1 / 2; j++) {
            int q0 = (int8_t)((x[j] - mn) * id + 0.5f), q1 = (int8_t)((x[j + 16] - mn) * id + 0.5f);
            b[i].qs[j] = (uint8_t)((q0 < 15 ? q0 : 15) | (q1 < 15 ? q1 : 15) << 4);
        }
    }
}

static void q5_0_to_float(const void *src, float *y, int64_t n) {
    const block_q5_0 *b = src;
    for (int64_t i = 0; i < n / QK5_0; i++, y += QK5_0) {
        float d = h2f(b[i].d);
        uint32_t qh;
        memcpy(&qh, b[i].qh, 4);
        for (int j = 0; j < QK5_0 / 2; j++) {
            int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
            y[j] = (((b[i].qs[j] & 0xf) | h0 << 4) - 16) * d;
            y[j + 16] = ((b[i].qs[j] >> 4 | h1 << 4) - 16) * d;
        }
    }
}
static void q5_0_from_float(const float *x, void *dst, int64_t n) {
    block_q5_0 *b = dst;
    for (int64_t i = 0; i < n / QK5_0; i++, x += QK5_0) {
        float d = signed_absmax(x, QK5_0, NULL) / -16, id = d ? 1.0f / d : 0.0f;
        b[i].d = f2h(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            int q0 = (int8_t)(x[j] * id + 16.5f), q1 = (int8_t)(x[j + 16] * id + 16.5f);
            q0 = q0 < 31 ? q0 : 31;
            q1 = q1 < 31 ? q1 : 31;
            b[i].qs[j] = (uint8_t)((q0 & 0xf) | (q1 & 0xf) << 4);
            qh |= (uint32_t)(q0 >> 4) << j | (uint32_t)(q1 >> 4) << (j + 16);
        }
        memcpy(b[i].qh, &qh, 4);
    }
}

static void q5_1_to_float(const void *src, float *y, int64_t n) {
    const block_q5_1 *b = src;
    for (int64_t i = 0; i < n / QK5_1; i++, y += QK5_1) {
        float d = h2f(b[i].d), m = h2f(b[i].m);
        uint32_t qh;
        memcpy(&qh, b[i].qh, 4);
        for (int j = 0; j < QK5_1 / 2; j++) {
            int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
            y[j] = ((b[i].qs[j] & 0xf) | h0 << 4) * d + m;
            y[j + 16] = (b[i].qs[j] >> 4 | h1 << 4) * d + m;
        }
    }
}
static void q5_1_from_float(const float *x, void *dst, int64_t n) {
    block_q5_1 *b = dst;
    for (int64_t i = 0; i < n / QK5_1; i++, x += QK5_1) {
        float mn, mx;
        minmax(x, QK5_1, &mn, &mx);
        float d = (mx - mn) / 31, id = d ? 1.0f / d : 0.0f;
        b[i].d = f2h(d);
        b[i].m = f2h(mn);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            int q0 = (uint8_t)((x[j] - mn) * id + 0.5f), q1 = (uint8_t)((x[j + 16] - mn) * id + 0.5f);
            q0 = q0 < 31 ? q0 : 31; /* ggml does not clamp; rounding of d can push the top code to 32 */
            q1 = q1 < 31 ? q1 : 31;
            b[i].qs[j] = (uint8_t)((q0 & 0xf) | (q1 & 0xf) << 4);
            qh |= (uint32_t)(q0 >> 4) << j | (uint32_t)(q1 >> 4) << (j + 16);
        }
        memcpy(b[i].qh, &qh, 4);
    }
}

static void q8_0_to_float(const void *src, float *y, int64_t n) {
    const block_q8_0 *b = src;
    for (int64_t i = 0; i < n / QK8_0; i++, y += QK8_0) {
        float d = h2f(b[i].d);
        for (int j = 0; j < QK8_0; j++) y[j] = b[i].qs[j] * d;
    }
}
static void q8_0_from_float(const float *x, void *dst, int64_t n) {
    block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        float amax;
        signed_absmax(x, QK8_0, &amax);
        float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        b[i].d = f2h(d);
        for (int j = 0; j < QK8_0; j++) b[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

static void q8_1_to_float(const void *src, float *y, int64_t n) {
    const block_q8_1 *b = src;
    for (int64_t i = 0; i < n / QK8_1; i++, y += QK8_1) {
        float d = h2f(b[i].d);
        for (int j = 0; j < QK8_1; j++) y[j] = b[i].qs[j] * d;
    }
}
static void q8_1_from_float(const float *x, void *dst, int64_t n) {
    block_q8_1 *b = dst;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        float amax;
        signed_absmax(x, QK8_1, &amax);
        float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) {
            b[i].qs[j] = (int8_t)roundf(x[j] * id);
            sum += b[i].qs[j];
        }
        b[i].d = f2h(d);
        b[i].s = f2h((float)sum * d);
    }
}

static void iq4_nl_to_float(const void *src, float *y, int64_t n) {
    const block_iq4_nl *b = src;
    for (int64_t i = 0; i < n / QK4_NL; i++, y += QK4_NL) {
        float d = h2f(b[i].d);
        for (int j = 0; j < QK4_NL / 2; j++) {
            y[j] = d * qe_kvalues_iq4nl[b[i].qs[j] & 0xf];
            y[j + 16] = d * qe_kvalues_iq4nl[b[i].qs[j] >> 4];
        }
    }
}

/* ---- k-quants: 256-weight super-blocks --------------------------------------------------------------- */

static void q2_K_to_float(const void *src, float *y, int64_t n) {
    const block_q2_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        float d = h2f(b[i].d), dmin = h2f(b[i].dmin);
        const uint8_t *q = b[i].qs;
        int is = 0;
        /* Two halves of 128 weights share 32 bytes of qs; each 2-bit plane (shift) of those bytes is a
         * 32-weight run split into two 16-weight sub-blocks with their own 4-bit scale and 4-bit min. */
        for (int half = 0; half < 2; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int k = 0; k < 2; k++) {
                    uint8_t sc = b[i].scales[is++];
                    float dl = d * (sc & 0xf), ml = dmin * (sc >> 4);
                    for (int l = 0; l < 16; l++) *y++ = dl * ((q[l + 16 * k] >> shift) & 3) - ml;
                }
            }
        }
    }
}

/* Unpacks q3_K's twelve bytes into sixteen 6-bit scales (stored with a +32 bias): the low 4 bits of scale
 * j are in byte j (j < 8, low nibble) or byte j - 8 (high nibble); the top 2 bits come from bytes 8..11. */
void qe_q3_K_scales(const uint8_t *s, int8_t out[16]) {
    for (int j = 0; j < 16; j++) {
        int lo = j < 8 ? s[j] & 0xf : s[j - 8] >> 4;
        int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = (int8_t)((lo | hi << 4) - 32);
    }
}

static void q3_K_to_float(const void *src, float *y, int64_t n) {
    const block_q3_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        float d = h2f(b[i].d);
        int8_t sc[16];
        qe_q3_K_scales(b[i].scales, sc);
        const uint8_t *q = b[i].qs, *hm = b[i].hmask;
        int is = 0;
        uint8_t m = 1;
        /* Same walk as q2_K; the third bit of each weight is bit `m` of hmask (set = no offset, clear = -4). */
        for (int half = 0; half < 2; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
                for (int k = 0; k < 2; k++) {
                    float dl = d * sc[is++];
                    for (int l = 16 * k; l < 16 * k + 16; l++)
                        *y++ = dl * ((int)((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                }
            }
        }
    }
}

/* q4_K / q5_K pack eight 6-bit scales and eight 6-bit mins into 12 bytes: entries 0..3 are the low 6
 * bits of bytes 0..3 (scales) and 4..7 (mins); entries 4..7 keep their low 4 bits in bytes 8..11 (scale in
 * the low nibble, min in the high) and their top 2 bits in the spare top bits of bytes 0..7. */
void qe_get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

static void q4_K_to_float(const void *src, float *y, int64_t n) {
    const block_q4_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        float d = h2f(b[i].d), dmin = h2f(b[i].dmin);
        const uint8_t *q = b[i].qs;
        for (int is = 0; is < 8; is += 2, q += 32) { /* 64 weights: low nibbles, then high nibbles */
            uint8_t sc, m;
            qe_get_scale_min_k4(is, b[i].scales, &sc, &m);
            float d1 = d * sc, m1 = dmin * m;
            qe_get_scale_min_k4(is + 1, b[i].scales, &sc, &m);
            float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xf) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

static void q5_K_to_float(const void *src, float *y, int64_t n) {
    const block_q5_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        float d = h2f(b[i].d), dmin = h2f(b[i].dmin);
        const uint8_t *ql = b[i].qs, *qh = b[i].qh;
        uint8_t u1 = 1, u2 = 2;
        for (int is = 0; is < 8; is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
            uint8_t sc, m;
            qe_get_scale_min_k4(is, b[i].scales, &sc, &m);
            float d1 = d * sc, m1 = dmin * m;
            qe_get_scale_min_k4(is + 1, b[i].scales, &sc, &m);
            float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xf) + ((qh[l] & u1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
        }
    }
}

static void q6_K_to_float(const void *src, float *y, int64_t n) {
    const block_q6_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        float d = h2f(b[i].d);
        const uint8_t *ql = b[i].ql, *qh = b[i].qh;
        const int8_t *sc = b[i].scales;
        /* Each 128-weight half: 64 bytes of low nibbles (weights l and l+64 share byte l, l+32 and l+96 share
         * byte l+32) and 32 bytes of high 2-bit pairs (four weights per byte). 16 weights per scale. */
        for (int half = 0; half < 2; half++, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 0xf) | ((qh[l] >> 0) & 3) << 4) - 32;
                int q2 = ((ql[l + 32] & 0xf) | ((qh[l] >> 2) & 3) << 4) - 32;
                int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                y[l] = d * sc[is] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}

static void q8_K_to_float(const void *src, float *y, int64_t n) {
    const block_q8_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K)
        for (int j = 0; j < QK_K; j++) y[j] = b[i].d * b[i].qs[j];
}
/* As ggml: the largest-magnitude weight maps to -127 exactly (iscale = -127 / max), codes clamp at 127. */
static void q8_K_from_float(const float *x, void *dst, int64_t n) {
    block_q8_K *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float amax, max = signed_absmax(x, QK_K, &amax);
        if (!amax) {
            memset(&b[i], 0, sizeof b[i]);
            continue;
        }
        float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j++) {
            int v = (int)nearbyintf(iscale * x[j]);
            b[i].qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += b[i].qs[j * 16 + l];
            b[i].bsums[j] = (int16_t)sum;
        }
        b[i].d = 1 / iscale;
    }
}

/* ---- traits -------------------------------------------------------------------------------------------- */

static const qe_type_traits traits[QE_TYPE_COUNT] = {
    [QE_TYPE_F32] = {"f32", 1, 4, f32_to_float, f32_from_float},
    [QE_TYPE_F16] = {"f16", 1, 2, f16_to_float, f16_from_float},
    [QE_TYPE_BF16] = {"bf16", 1, 2, bf16_to_float, bf16_from_float},
    [QE_TYPE_Q4_0] = {"q4_0", QK4_0, sizeof(block_q4_0), q4_0_to_float, q4_0_from_float},
    [QE_TYPE_Q4_1] = {"q4_1", QK4_1, sizeof(block_q4_1), q4_1_to_float, q4_1_from_float},
    [QE_TYPE_Q5_0] = {"q5_0", QK5_0, sizeof(block_q5_0), q5_0_to_float, q5_0_from_float},
    [QE_TYPE_Q5_1] = {"q5_1", QK5_1, sizeof(block_q5_1), q5_1_to_float, q5_1_from_float},
    [QE_TYPE_Q8_0] = {"q8_0", QK8_0, sizeof(block_q8_0), q8_0_to_float, q8_0_from_float},
    [QE_TYPE_Q8_1] = {"q8_1", QK8_1, sizeof(block_q8_1), q8_1_to_float, q8_1_from_float},
    [QE_TYPE_IQ4_NL] = {"iq4_nl", QK4_NL, sizeof(block_iq4_nl), iq4_nl_to_float, qe_iq4_nl_from_float},
    [QE_TYPE_Q2_K] = {"q2_K", QK_K, sizeof(block_q2_K), q2_K_to_float, qe_q2_K_from_float},
    [QE_TYPE_Q3_K] = {"q3_K", QK_K, sizeof(block_q3_K), q3_K_to_float, qe_q3_K_from_float},
    [QE_TYPE_Q4_K] = {"q4_K", QK_K, sizeof(block_q4_K), q4_K_to_float, qe_q4_K_from_float},
    [QE_TYPE_Q5_K] = {"q5_K", QK_K, sizeof(block_q5_K), q5_K_to_float, qe_q5_K_from_float},
    [QE_TYPE_Q6_K] = {"q6_K", QK_K, sizeof(block_q6_K), q6_K_to_float, qe_q6_K_from_float},
    [QE_TYPE_Q8_K] = {"q8_K", QK_K, sizeof(block_q8_K), q8_K_to_float, q8_K_from_float},
};

const qe_type_traits *qe_type_traits_get(int type) {
    if (type < 0 || type >= QE_TYPE_COUNT || !traits[type].name) return NULL;
    return &traits[type];
}

const char *qe_type_name(int type) {
    const qe_type_traits *t = qe_type_traits_get(type);
    return t ? t->name : "?";
}

int qe_type_from_name(const char *name) {
    for (int i = 0; i < QE_TYPE_COUNT; i++)
        if (traits[i].name && !strcasecmp(traits[i].name, name)) return i;
    return -1;
}

size_t qe_row_size(int type, int64_t n) {
    const qe_type_traits *t = qe_type_traits_get(type);
    if (!t || n < 0 || n % t->block_size) return 0;
    return (size_t)(n / t->block_size) * t->type_size;
}
