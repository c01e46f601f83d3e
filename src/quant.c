/* quant.c — the one table of tensor types (traits: names, block sizes, layouts as the reference kernels and the
 * packers read them) and the reference (portable, scalar) conversions between f32 and every type qwen-edge
 * knows, including the one reference dequantiser (to_float) everything else is held to. The bit layouts and the dequantisation formulas are ggml's
 * (so files interchange with llama.cpp); the simple quantisers (q4_0 … q8_1, q8_K) round exactly like
 * ggml's quantize_row_*_ref. The searched k-quant and iq4_nl encoders live in quant_k.c.
 *
 * Conventions shared by the 32-weight formats: a block's 4-bit codes are packed two per byte, the low
 * nibble of byte j holding weight j and the high nibble weight j + 16; 5-bit formats keep the fifth bit
 * of weight j in bit j of the 32-bit qh. SIMD versions live in kernels/ and are tested against these. */
#include "quant.h"

#include <float.h>
#include <stddef.h>
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

/* ---- k-quants: 256-weight super-blocks --------------------------------------------------------------- */

/* Unpacks q3_K's twelve bytes into sixteen 6-bit scales (stored with a +32 bias): the low 4 bits of scale
 * j are in byte j (j < 8, low nibble) or byte j - 8 (high nibble); the top 2 bits come from bytes 8..11. */
void qe_q3_K_scales(const uint8_t *s, int8_t out[16]) {
    for (int j = 0; j < 16; j++) {
        int lo = j < 8 ? s[j] & 0xf : s[j - 8] >> 4;
        int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = (int8_t)((lo | hi << 4) - 32);
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

/* The k-quant layouts, read into the common form of quant.h (qe_unpack_k_fn): unsigned codes, per-16 scales
 * and mins. */

/* q2_K: two halves of 128 weights share 32 bytes of qs; each 2-bit plane (shift) of those bytes is a 32-weight
 * run; each byte of scales is one 16-weight sub-block's 4-bit scale (low) and 4-bit min (high). */
static void q2_K_unpack(const void *blk, int q[256], int sc[16], int mn[16], float *d, float *dmin) {
    const block_q2_K *b = blk;
    *d = h2f(b->d);
    *dmin = h2f(b->dmin);
    for (int j = 0; j < 16; j++) { sc[j] = b->scales[j] & 0xf; mn[j] = b->scales[j] >> 4; }
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) q[k * 128 + j * 32 + l] = (b->qs[k * 32 + l] >> (2 * j)) & 3;
}

/* q3_K: the q2_K walk; the third bit of each weight is in hmask (set = no offset, clear = -4: the code is the
 * 2-bit value plus 4 when set, k_zero 4); sixteen signed 6-bit scales, no mins. */
static void q3_K_unpack(const void *blk, int q[256], int sc[16], int mn[16], float *d, float *dmin) {
    const block_q3_K *b = blk;
    int8_t s6[16];
    *d = h2f(b->d);
    *dmin = 0;
    qe_q3_K_scales(b->scales, s6);
    for (int j = 0; j < 16; j++) { sc[j] = s6[j]; mn[j] = 0; }
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) {
                int hbit = (b->hmask[l] >> (k * 4 + j)) & 1;
                q[k * 128 + j * 32 + l] = ((b->qs[k * 32 + l] >> (2 * j)) & 3) | hbit << 2;
            }
}

/* q4_K / q5_K: 64 weights per 32 bytes of qs (low nibbles, then high nibbles), q5_K's fifth bits in qh (bit 2c
 * and 2c + 1 of byte l for the two 32-weight runs of chunk c); eight 6-bit scale/min pairs, one per 32. */
static void q45_K_unpack(const uint8_t *scales, const uint8_t *qs, const uint8_t *qh, int q[256], int sc[16], int mn[16]) {
    for (int j = 0; j < 8; j++) {
        uint8_t s, m;
        qe_get_scale_min_k4(j, scales, &s, &m);
        sc[2 * j] = sc[2 * j + 1] = s;
        mn[2 * j] = mn[2 * j + 1] = m;
    }
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            int lo = qs[c * 32 + l] & 0xf, hi = qs[c * 32 + l] >> 4;
            if (qh) { lo |= ((qh[l] >> (2 * c)) & 1) << 4; hi |= ((qh[l] >> (2 * c + 1)) & 1) << 4; }
            q[c * 64 + l] = lo;
            q[c * 64 + 32 + l] = hi;
        }
}
static void q4_K_unpack(const void *blk, int q[256], int sc[16], int mn[16], float *d, float *dmin) {
    const block_q4_K *b = blk;
    *d = h2f(b->d);
    *dmin = h2f(b->dmin);
    q45_K_unpack(b->scales, b->qs, NULL, q, sc, mn);
}
static void q5_K_unpack(const void *blk, int q[256], int sc[16], int mn[16], float *d, float *dmin) {
    const block_q5_K *b = blk;
    *d = h2f(b->d);
    *dmin = h2f(b->dmin);
    q45_K_unpack(b->scales, b->qs, b->qh, q, sc, mn);
}

/* q6_K: each 128-weight half has 64 bytes of low nibbles (weights l and l+64 share byte l, l+32 and l+96 share
 * byte l+32) and 32 bytes of high 2-bit pairs (four weights per byte); signed 8-bit scales, no mins. */
static void q6_K_unpack(const void *blk, int q[256], int sc[16], int mn[16], float *d, float *dmin) {
    const block_q6_K *b = blk;
    *d = h2f(b->d);
    *dmin = 0;
    for (int j = 0; j < 16; j++) { sc[j] = b->scales[j]; mn[j] = 0; }
    for (int n = 0; n < 2; n++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *ql = b->ql + n * 64, *qh = b->qh + n * 32;
            q[n * 128 + l] = (ql[l] & 0xf) | ((qh[l] >> 0) & 3) << 4;
            q[n * 128 + l + 32] = (ql[l + 32] & 0xf) | ((qh[l] >> 2) & 3) << 4;
            q[n * 128 + l + 64] = (ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4;
            q[n * 128 + l + 96] = (ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4;
        }
}

/* ---- the reference dequantiser of the weight types ------------------------------------------------------ */

static const qe_type_traits traits[QE_TYPE_COUNT];

void qe_block32_values(const qe_block32 *b, const void *blk, int q[32], float *d, float *m) {
    const uint8_t *p = blk, *qs = p + b->qs_off;
    qe_half h;
    memcpy(&h, p, 2);
    *d = h2f(h);
    *m = 0;
    if (b->has_min) { memcpy(&h, p + 2, 2); *m = h2f(h); }
    if (b->bits == 8) {
        for (int j = 0; j < 32; j++) q[j] = (int8_t)qs[j];
        return;
    }
    uint32_t qh = 0;
    if (b->bits == 5) memcpy(&qh, p + b->qh_off, 4);
    for (int j = 0; j < 16; j++) {
        int c0 = (qs[j] & 0xf) | ((qh >> j) & 1) << 4, c1 = (qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4;
        q[j] = b->codebook ? b->codebook[c0] : c0 - b->zero;
        q[j + 16] = b->codebook ? b->codebook[c1] : c1 - b->zero;
    }
}

/* ggml's formulas: x = d * q (no "+ 0", which would turn -0 into +0), x = d * q + m with a min; k-quants
 * (d * sc) * q - dmin * mn (subtracting the +0 of a type without mins changes no bit). The kernels' packed
 * read-backs (qe_mat_row_f32) use the same expressions and are held equal to these bit for bit. */
static void block32_to_float(int type, const void *src, float *y, int64_t n) {
    const qe_type_traits *t = &traits[type];
    const uint8_t *p = src;
    for (int64_t i = 0; i < n / 32; i++, p += t->type_size, y += 32) {
        int q[32];
        float d, m;
        qe_block32_values(t->b32, p, q, &d, &m);
        if (t->b32->has_min)
            for (int j = 0; j < 32; j++) y[j] = d * (float)q[j] + m;
        else
            for (int j = 0; j < 32; j++) y[j] = d * (float)q[j];
    }
}

static void k_to_float(int type, const void *src, float *y, int64_t n) {
    const qe_type_traits *t = &traits[type];
    const uint8_t *p = src;
    for (int64_t i = 0; i < n / QK_K; i++, p += t->type_size, y += QK_K) {
        int q[256], sc[16], mn[16];
        float d, dmin;
        t->unpack_k(p, q, sc, mn, &d, &dmin);
        for (int j = 0; j < QK_K; j++) y[j] = d * (float)sc[j / 16] * (float)(q[j] - t->k_zero) - dmin * (float)mn[j / 16];
    }
}

#define TO_FLOAT(name, how, TYPE) \
    static void name(const void *src, float *y, int64_t n) { how(TYPE, src, y, n); }
TO_FLOAT(q4_0_to_float, block32_to_float, QE_TYPE_Q4_0)
TO_FLOAT(q4_1_to_float, block32_to_float, QE_TYPE_Q4_1)
TO_FLOAT(q5_0_to_float, block32_to_float, QE_TYPE_Q5_0)
TO_FLOAT(q5_1_to_float, block32_to_float, QE_TYPE_Q5_1)
TO_FLOAT(q8_0_to_float, block32_to_float, QE_TYPE_Q8_0)
TO_FLOAT(iq4_nl_to_float, block32_to_float, QE_TYPE_IQ4_NL)
TO_FLOAT(q2_K_to_float, k_to_float, QE_TYPE_Q2_K)
TO_FLOAT(q3_K_to_float, k_to_float, QE_TYPE_Q3_K)
TO_FLOAT(q4_K_to_float, k_to_float, QE_TYPE_Q4_K)
TO_FLOAT(q5_K_to_float, k_to_float, QE_TYPE_Q5_K)
TO_FLOAT(q6_K_to_float, k_to_float, QE_TYPE_Q6_K)

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

#define B32(T, ...) &(const qe_block32){__VA_ARGS__, .qs_off = offsetof(T, qs)}
static const qe_type_traits traits[QE_TYPE_COUNT] = {
    [QE_TYPE_F32] = {"f32", 1, 4, f32_to_float, f32_from_float},
    [QE_TYPE_F16] = {"f16", 1, 2, f16_to_float, f16_from_float},
    [QE_TYPE_BF16] = {"bf16", 1, 2, bf16_to_float, bf16_from_float},
    [QE_TYPE_Q4_0] = {"q4_0", QK4_0, sizeof(block_q4_0), q4_0_to_float, q4_0_from_float,
                      .b32 = B32(block_q4_0, .bits = 4, .zero = 8)},
    [QE_TYPE_Q4_1] = {"q4_1", QK4_1, sizeof(block_q4_1), q4_1_to_float, q4_1_from_float,
                      .b32 = B32(block_q4_1, .bits = 4, .has_min = 1)},
    [QE_TYPE_Q5_0] = {"q5_0", QK5_0, sizeof(block_q5_0), q5_0_to_float, q5_0_from_float,
                      .b32 = B32(block_q5_0, .bits = 5, .zero = 16, .qh_off = offsetof(block_q5_0, qh))},
    [QE_TYPE_Q5_1] = {"q5_1", QK5_1, sizeof(block_q5_1), q5_1_to_float, q5_1_from_float,
                      .b32 = B32(block_q5_1, .bits = 5, .has_min = 1, .qh_off = offsetof(block_q5_1, qh))},
    [QE_TYPE_Q8_0] = {"q8_0", QK8_0, sizeof(block_q8_0), q8_0_to_float, q8_0_from_float,
                      .b32 = B32(block_q8_0, .bits = 8)},
    [QE_TYPE_Q8_1] = {"q8_1", QK8_1, sizeof(block_q8_1), q8_1_to_float, q8_1_from_float},
    [QE_TYPE_IQ4_NL] = {"iq4_nl", QK4_NL, sizeof(block_iq4_nl), iq4_nl_to_float, qe_iq4_nl_from_float,
                        .b32 = B32(block_iq4_nl, .bits = 4, .codebook = qe_kvalues_iq4nl)},
    [QE_TYPE_Q2_K] = {"q2_K", QK_K, sizeof(block_q2_K), q2_K_to_float, qe_q2_K_from_float, .unpack_k = q2_K_unpack},
    [QE_TYPE_Q3_K] = {"q3_K", QK_K, sizeof(block_q3_K), q3_K_to_float, qe_q3_K_from_float, .unpack_k = q3_K_unpack,
                      .k_zero = 4},
    [QE_TYPE_Q4_K] = {"q4_K", QK_K, sizeof(block_q4_K), q4_K_to_float, qe_q4_K_from_float, .unpack_k = q4_K_unpack},
    [QE_TYPE_Q5_K] = {"q5_K", QK_K, sizeof(block_q5_K), q5_K_to_float, qe_q5_K_from_float, .unpack_k = q5_K_unpack},
    [QE_TYPE_Q6_K] = {"q6_K", QK_K, sizeof(block_q6_K), q6_K_to_float, qe_q6_K_from_float, .unpack_k = q6_K_unpack,
                      .k_zero = 32},
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
