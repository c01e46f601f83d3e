/* matmul_ref.c — the reference numerics of every matmul: activation quantisers and one dot product per
 * weight type, written for clarity. They follow llama.cpp's semantics (ggml-quants.c quantize_row_q8_*,
 * ggml-cpu vec_dot_*_q8_*): each block's dot product is an exact integer sum, scaled in f32 afterwards, so
 * a SIMD kernel that only reorders the f32 additions agrees to ~1e-6 relative. Also the reference
 * dequantisers (qe_mat_row_f32 and the tests use them). Weight block layouts: quant.h. */
#include <math.h>
#include <string.h>

#include "base.h"
#include "kernels/kern.h"
#include "quant.h"

/* IQ4_NL's non-linear 4-bit codebook (same values as ggml's kvalues_iq4nl). */
static const int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

const char *qe_kern_type_name(int type) {
    switch (type) {
    case QE_TYPE_F32: return "f32"; case QE_TYPE_F16: return "f16"; case QE_TYPE_BF16: return "bf16";
    case QE_TYPE_Q8_0: return "q8_0"; case QE_TYPE_Q4_0: return "q4_0"; case QE_TYPE_Q4_1: return "q4_1";
    case QE_TYPE_Q5_0: return "q5_0"; case QE_TYPE_Q5_1: return "q5_1"; case QE_TYPE_IQ4_NL: return "iq4_nl";
    case QE_TYPE_Q2_K: return "q2_K"; case QE_TYPE_Q3_K: return "q3_K"; case QE_TYPE_Q4_K: return "q4_K";
    case QE_TYPE_Q5_K: return "q5_K"; case QE_TYPE_Q6_K: return "q6_K"; case QE_TYPE_Q8_1: return "q8_1";
    case QE_TYPE_Q8_K: return "q8_K"; default: return "?";
    }
}

static inline float h2f(qe_half h) { return qe_fp16_to_fp32(h); }

int qe_kern_block_size(int type) {
    switch (type) {
    case QE_TYPE_F32: case QE_TYPE_F16: case QE_TYPE_BF16: return 1;
    case QE_TYPE_Q8_0: case QE_TYPE_Q4_0: case QE_TYPE_Q4_1: case QE_TYPE_Q5_0: case QE_TYPE_Q5_1:
    case QE_TYPE_IQ4_NL: return 32;
    case QE_TYPE_Q2_K: case QE_TYPE_Q3_K: case QE_TYPE_Q4_K: case QE_TYPE_Q5_K: case QE_TYPE_Q6_K: return QK_K;
    default: return 0;
    }
}

static size_t block_bytes(int type) {
    switch (type) {
    case QE_TYPE_F32: return 4;
    case QE_TYPE_F16: case QE_TYPE_BF16: return 2;
    case QE_TYPE_Q8_0: return sizeof(block_q8_0);
    case QE_TYPE_Q4_0: return sizeof(block_q4_0);
    case QE_TYPE_Q4_1: return sizeof(block_q4_1);
    case QE_TYPE_Q5_0: return sizeof(block_q5_0);
    case QE_TYPE_Q5_1: return sizeof(block_q5_1);
    case QE_TYPE_IQ4_NL: return sizeof(block_iq4_nl);
    case QE_TYPE_Q2_K: return sizeof(block_q2_K);
    case QE_TYPE_Q3_K: return sizeof(block_q3_K);
    case QE_TYPE_Q4_K: return sizeof(block_q4_K);
    case QE_TYPE_Q5_K: return sizeof(block_q5_K);
    case QE_TYPE_Q6_K: return sizeof(block_q6_K);
    default: return 0;
    }
}

size_t qe_kern_row_bytes(int type, int64_t cols) {
    int bs = qe_kern_block_size(type);
    if (!bs || cols <= 0 || cols % bs) return 0;
    return (size_t)(cols / bs) * block_bytes(type);
}

int qe_act_fmt_for(int type, int *rounding) {
    *rounding = QE_ROUND_NONE;
    switch (type) {
    case QE_TYPE_F32: return QE_ACT_F32;
    case QE_TYPE_F16: *rounding = QE_ROUND_F16; return QE_ACT_F32;
    case QE_TYPE_BF16: *rounding = QE_ROUND_BF16; return QE_ACT_F32;
    case QE_TYPE_Q8_0: case QE_TYPE_Q4_0: case QE_TYPE_Q4_1: case QE_TYPE_Q5_0: case QE_TYPE_Q5_1:
    case QE_TYPE_IQ4_NL: return QE_ACT_Q8;
    case QE_TYPE_Q2_K: case QE_TYPE_Q3_K: case QE_TYPE_Q4_K: case QE_TYPE_Q5_K: case QE_TYPE_Q6_K: return QE_ACT_Q8K;
    default: return -1;
    }
}

size_t qe_act_row_bytes(int fmt, int64_t cols) {
    size_t pad = (size_t)((cols + 63) / 64 * 64), b;
    switch (fmt) {
    case QE_ACT_F32: b = pad * 4; break;
    case QE_ACT_Q8: b = pad + (size_t)(cols / 32) * 12; break;
    case QE_ACT_Q8K: b = pad + (size_t)(cols / 256) * 4 + (size_t)(cols / 16) * 4; break;
    default: return 0;
    }
    return (b + 63) / 64 * 64;
}

static void quant_block_q8(const float *xb, int8_t *qs, float *d, float *s, int32_t *sum);

size_t qe_act_tile_bytes(int fmt, int64_t cols) {
    switch (fmt) {
    case QE_ACT_F32: return (size_t)cols * QE_ACT_TILE * 4;
    case QE_ACT_Q8: return (size_t)(cols / 32) * QE_ACT_TILE * (32 + 4 * 5);
    case QE_ACT_Q8K: return (size_t)(cols / 32) * QE_ACT_TILE * (32 + 4 * 4);
    default: return 0;
    }
}

void qe_quant_tiled_ref(const float *x, int64_t cols, int fmt, int rounding, uint8_t *group, int slot) {
    if (fmt == QE_ACT_F32) {
        float *o = (float *)group;
        for (int64_t c = 0; c < cols; c++)
            o[c * QE_ACT_TILE + slot] = rounding == QE_ROUND_F16 ? h2f(qe_fp32_to_fp16(x[c]))
                                      : rounding == QE_ROUND_BF16 ? qe_bf16_to_fp32(qe_fp32_to_bf16(x[c])) : x[c];
        return;
    }
    if (fmt == QE_ACT_Q8K) {
        int64_t nsb = cols / 32;
        int8_t *qs = (int8_t *)group;
        float *gd = (float *)(group + nsb * QE_ACT_TILE * 32), *gs = gd + nsb * QE_ACT_TILE;
        int32_t *ns = (int32_t *)(gs + nsb * QE_ACT_TILE);
        uint8_t row[64 + 256 + 4 + 64];
        for (int64_t b = 0; b < cols / 256; b++) {
            qe_quant_row_q8k_ref(x + b * 256, 256, row); /* one 256-block: qs[256] | d | bsum[16] */
            float d;
            int32_t bs[16];
            memcpy(&d, row + 256, 4);
            memcpy(bs, row + 260, sizeof bs);
            for (int sb = 0; sb < 8; sb++) {
                int64_t i = (b * 8 + sb) * QE_ACT_TILE + slot;
                memcpy(qs + i * 32, row + sb * 32, 32);
                gd[i] = d;
                gs[i] = d * (float)(bs[2 * sb] + bs[2 * sb + 1]);
                ns[i] = -32 * bs[2 * sb];
                ns[nsb * QE_ACT_TILE + i] = -32 * bs[2 * sb + 1];
            }
        }
        return;
    }
    QE_ASSERT(fmt == QE_ACT_Q8);
    int64_t nb = cols / 32;
    int8_t *qs = (int8_t *)group;
    float *gd = (float *)(group + nb * QE_ACT_TILE * 32), *gs = gd + nb * QE_ACT_TILE;
    int32_t *ns = (int32_t *)(gs + nb * QE_ACT_TILE);
    static const int offs[3] = {128, 8, 16};
    for (int64_t b = 0; b < nb; b++) {
        int32_t sum;
        quant_block_q8(x + b * 32, qs + (b * QE_ACT_TILE + slot) * 32, &gd[b * QE_ACT_TILE + slot],
                       &gs[b * QE_ACT_TILE + slot], &sum);
        for (int i = 0; i < 3; i++) ns[(i * nb + b) * QE_ACT_TILE + slot] = -offs[i] * sum;
    }
}

/* --- activation quantisers ------------------------------------------------------------------------ */

void qe_quant_row_f32_ref(const float *x, int64_t cols, int rounding, uint8_t *row) {
    float *o = (float *)row;
    for (int64_t i = 0; i < cols; i++)
        o[i] = rounding == QE_ROUND_F16 ? h2f(qe_fp32_to_fp16(x[i]))
             : rounding == QE_ROUND_BF16 ? qe_bf16_to_fp32(qe_fp32_to_bf16(x[i])) : x[i];
}

/* ggml's x86 quantize_row_q8_0/q8_1 for one block of 32: d = amax/127 stored as fp16; q = round-to-nearest-
 * even(x * 127/amax) (the SIMD path multiplies by 127/amax and rounds with _MM_ROUND_NEAREST); q8_1's
 * s = fp16(d * sum(q)) with the unrounded d. */
static void quant_block_q8(const float *xb, int8_t *qs, float *d, float *s, int32_t *sum) {
    float amax = 0;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
    float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int32_t sm = 0;
    for (int j = 0; j < 32; j++) {
        int v = (int)nearbyintf(xb[j] * id);
        qs[j] = (int8_t)v;
        sm += v;
    }
    *d = h2f(qe_fp32_to_fp16(amax / 127.0f));
    *s = h2f(qe_fp32_to_fp16(amax / 127.0f * (float)sm));
    *sum = sm;
}

void qe_quant_row_q8_ref(const float *x, int64_t cols, uint8_t *row) {
    int64_t nb = cols / 32, pad = (cols + 63) / 64 * 64;
    int8_t *qs = (int8_t *)row;
    float *d = (float *)(row + pad), *s = d + nb;
    int32_t *sum = (int32_t *)(s + nb);
    for (int64_t b = 0; b < nb; b++) quant_block_q8(x + b * 32, qs + b * 32, &d[b], &s[b], &sum[b]);
    memset(qs + cols, 0, (size_t)(pad - cols));
}

/* ggml's quantize_row_q8_K_ref (used on x86 too): scale from the element of largest magnitude, keeping its
 * sign, iscale = -127/max, q = min(127, nearest_int(iscale * x)), d = 1/iscale as f32, bsums per 16. */
void qe_quant_row_q8k_ref(const float *x, int64_t cols, uint8_t *row) {
    int64_t nb = cols / 256, pad = (cols + 63) / 64 * 64;
    int8_t *qs = (int8_t *)row;
    float *d = (float *)(row + pad);
    int32_t *bsum = (int32_t *)(d + nb);
    for (int64_t b = 0; b < nb; b++) {
        const float *xb = x + b * 256;
        float amax = 0, max = 0;
        for (int j = 0; j < 256; j++) {
            float ax = fabsf(xb[j]);
            if (ax > amax) { amax = ax; max = xb[j]; }
        }
        if (amax == 0) {
            d[b] = 0;
            memset(qs + b * 256, 0, 256);
            for (int j = 0; j < 16; j++) bsum[b * 16 + j] = 0;
            continue;
        }
        float iscale = -127.f / max;
        for (int j = 0; j < 256; j++) {
            int v = (int)nearbyintf(iscale * xb[j]);
            qs[b * 256 + j] = (int8_t)(v > 127 ? 127 : v);
        }
        for (int j = 0; j < 16; j++) {
            int sm = 0;
            for (int i = 0; i < 16; i++) sm += qs[b * 256 + j * 16 + i];
            bsum[b * 16 + j] = sm;
        }
        d[b] = 1 / iscale;
    }
    memset(qs + cols, 0, (size_t)(pad - cols));
}

/* --- k-quant scale unpacking (shared by dot and dequant) ----------------------------------------- */

/* Q4_K/Q5_K: 8 six-bit scales and 8 six-bit mins packed in 12 bytes. */
static inline void scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) { *sc = q[j] & 63; *m = q[j + 4] & 63; }
    else { *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4); *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4); }
}

/* Q3_K: 16 six-bit scales (stored biased by 32) packed in 12 bytes: low 4 bits in bytes 0..7, high 2 bits in 8..11. */
static inline void scales_q3k(const uint8_t *s, int out[16]) {
    for (int j = 0; j < 16; j++) {
        int lo = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
        int hi = (s[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
        out[j] = (lo | (hi << 4)) - 32;
    }
}

/* Unpacks one block of a 32-block type into integers q[32] so that weight = dq * q + mq. */
static void unpack32(int type, const uint8_t *blk, int q[32], float *dq, float *mq) {
    *mq = 0;
    switch (type) {
    case QE_TYPE_Q8_0: { const block_q8_0 *b = (const void *)blk; *dq = h2f(b->d); for (int j = 0; j < 32; j++) q[j] = b->qs[j]; break; }
    case QE_TYPE_Q4_0: { const block_q4_0 *b = (const void *)blk; *dq = h2f(b->d);
        for (int j = 0; j < 16; j++) { q[j] = (b->qs[j] & 0xF) - 8; q[j + 16] = (b->qs[j] >> 4) - 8; } break; }
    case QE_TYPE_Q4_1: { const block_q4_1 *b = (const void *)blk; *dq = h2f(b->d); *mq = h2f(b->m);
        for (int j = 0; j < 16; j++) { q[j] = b->qs[j] & 0xF; q[j + 16] = b->qs[j] >> 4; } break; }
    case QE_TYPE_Q5_0: { const block_q5_0 *b = (const void *)blk; *dq = h2f(b->d); uint32_t qh; memcpy(&qh, b->qh, 4);
        for (int j = 0; j < 16; j++) {
            q[j] = ((b->qs[j] & 0xF) | (((qh >> j) & 1) << 4)) - 16;
            q[j + 16] = ((b->qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16;
        } break; }
    case QE_TYPE_Q5_1: { const block_q5_1 *b = (const void *)blk; *dq = h2f(b->d); *mq = h2f(b->m); uint32_t qh; memcpy(&qh, b->qh, 4);
        for (int j = 0; j < 16; j++) {
            q[j] = (b->qs[j] & 0xF) | (((qh >> j) & 1) << 4);
            q[j + 16] = (b->qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
        } break; }
    case QE_TYPE_IQ4_NL: { const block_iq4_nl *b = (const void *)blk; *dq = h2f(b->d);
        for (int j = 0; j < 16; j++) { q[j] = kvalues_iq4nl[b->qs[j] & 0xF]; q[j + 16] = kvalues_iq4nl[b->qs[j] >> 4]; } break; }
    default: QE_ASSERT(0);
    }
}

/* Unpacks one 256-block of a k-quant into q[256] integers with per-16 integer scales sc[16] and mins mn[16]
 * so that weight[i] = d * sc[i/16] * q[i] - dmin * mn[i/16]. */
static void unpack256(int type, const uint8_t *blk, int q[256], int sc[16], int mn[16], float *d, float *dmin) {
    *dmin = 0;
    for (int j = 0; j < 16; j++) mn[j] = 0;
    switch (type) {
    case QE_TYPE_Q2_K: { const block_q2_K *b = (const void *)blk; *d = h2f(b->d); *dmin = h2f(b->dmin);
        for (int j = 0; j < 16; j++) { sc[j] = b->scales[j] & 0xF; mn[j] = b->scales[j] >> 4; }
        for (int k = 0; k < 2; k++) for (int j = 0; j < 4; j++) for (int l = 0; l < 32; l++)
            q[k * 128 + j * 32 + l] = (b->qs[k * 32 + l] >> (2 * j)) & 3;
        break; }
    case QE_TYPE_Q3_K: { const block_q3_K *b = (const void *)blk; *d = h2f(b->d);
        scales_q3k(b->scales, sc);
        for (int k = 0; k < 2; k++) for (int j = 0; j < 4; j++) for (int l = 0; l < 32; l++) {
            int hbit = (b->hmask[l] >> (k * 4 + j)) & 1;
            q[k * 128 + j * 32 + l] = ((b->qs[k * 32 + l] >> (2 * j)) & 3) - (hbit ? 0 : 4);
        }
        break; }
    case QE_TYPE_Q4_K: case QE_TYPE_Q5_K: {
        const uint8_t *scales, *qs, *qh = NULL;
        if (type == QE_TYPE_Q4_K) { const block_q4_K *b = (const void *)blk; *d = h2f(b->d); *dmin = h2f(b->dmin); scales = b->scales; qs = b->qs; }
        else { const block_q5_K *b = (const void *)blk; *d = h2f(b->d); *dmin = h2f(b->dmin); scales = b->scales; qs = b->qs; qh = b->qh; }
        for (int j = 0; j < 8; j++) {
            int s, m;
            scale_min_k4(j, scales, &s, &m);
            sc[2 * j] = sc[2 * j + 1] = s;
            mn[2 * j] = mn[2 * j + 1] = m;
        }
        for (int c = 0; c < 4; c++) for (int l = 0; l < 32; l++) {
            int lo = qs[c * 32 + l] & 0xF, hi = qs[c * 32 + l] >> 4;
            if (qh) { lo |= ((qh[l] >> (2 * c)) & 1) << 4; hi |= ((qh[l] >> (2 * c + 1)) & 1) << 4; }
            q[c * 64 + l] = lo;
            q[c * 64 + 32 + l] = hi;
        }
        break; }
    case QE_TYPE_Q6_K: { const block_q6_K *b = (const void *)blk; *d = h2f(b->d);
        for (int j = 0; j < 16; j++) sc[j] = b->scales[j];
        for (int n = 0; n < 2; n++) for (int l = 0; l < 32; l++) {
            const uint8_t *ql = b->ql + n * 64, *qh = b->qh + n * 32;
            q[n * 128 + l] = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            q[n * 128 + l + 32] = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            q[n * 128 + l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            q[n * 128 + l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        }
        break; }
    default: QE_ASSERT(0);
    }
}

void qe_unpack_k_codes(int type, const void *blk, int q[256], int sc[16], int mn[16], float *d, float *dmin) {
    unpack256(type, blk, q, sc, mn, d, dmin);
    int off = type == QE_TYPE_Q6_K ? 32 : type == QE_TYPE_Q3_K ? 4 : 0;
    for (int i = 0; i < 256; i++) q[i] += off;
}

/* --- dot products ----------------------------------------------------------------------------------- */

float qe_dot_ref(int type, const void *w, const qe_act *a, int t) {
    int64_t cols = a->cols;
    switch (type) {
    case QE_TYPE_F32: case QE_TYPE_F16: case QE_TYPE_BF16: {
        const float *x = qe_act_f32(a, t);
        double s = 0;
        for (int64_t i = 0; i < cols; i++) {
            float wi = type == QE_TYPE_F32 ? ((const float *)w)[i]
                     : type == QE_TYPE_F16 ? h2f(((const uint16_t *)w)[i]) : qe_bf16_to_fp32(((const uint16_t *)w)[i]);
            s += (double)(wi * x[i]);
        }
        return (float)s;
    }
    case QE_TYPE_Q8_0: case QE_TYPE_Q4_0: case QE_TYPE_Q4_1: case QE_TYPE_Q5_0: case QE_TYPE_Q5_1:
    case QE_TYPE_IQ4_NL: {
        const int8_t *qs = qe_act_qs(a, t);
        const float *d = qe_act_d(a, t), *s = qe_act_s(a, t);
        size_t bb = block_bytes(type);
        float sumf = 0;
        for (int64_t b = 0; b < cols / 32; b++) {
            int q[32];
            float dq, mq;
            unpack32(type, (const uint8_t *)w + b * bb, q, &dq, &mq);
            int32_t isum = 0;
            for (int j = 0; j < 32; j++) isum += q[j] * qs[b * 32 + j];
            sumf += dq * d[b] * (float)isum + mq * s[b]; /* mq = 0 except for q4_1/q5_1 (the q8_1 s term) */
        }
        return sumf;
    }
    case QE_TYPE_Q2_K: case QE_TYPE_Q3_K: case QE_TYPE_Q4_K: case QE_TYPE_Q5_K: case QE_TYPE_Q6_K: {
        const int8_t *qs = qe_act_qs(a, t);
        const float *d = qe_act_d(a, t);
        const int32_t *bsum = qe_act_bsum(a, t);
        size_t bb = block_bytes(type);
        float sumf = 0;
        for (int64_t b = 0; b < cols / 256; b++) {
            int q[256], sc[16], mn[16];
            float dw, dminw;
            unpack256(type, (const uint8_t *)w + b * bb, q, sc, mn, &dw, &dminw);
            int32_t isum = 0, msum = 0;
            for (int j = 0; j < 16; j++) {
                int32_t s16 = 0;
                for (int i = 0; i < 16; i++) s16 += q[j * 16 + i] * qs[b * 256 + j * 16 + i];
                isum += sc[j] * s16;
                msum += mn[j] * bsum[b * 16 + j];
            }
            sumf += dw * d[b] * (float)isum - dminw * d[b] * (float)msum;
        }
        return sumf;
    }
    default: QE_ASSERT(0);
    }
    return 0;
}

int qe_dequant_ref(int type, const void *src, float *dst, int64_t n) {
    int bs = qe_kern_block_size(type);
    if (!bs || n % bs) return -1;
    const uint8_t *p = src;
    size_t bb = block_bytes(type);
    switch (type) {
    case QE_TYPE_F32: memcpy(dst, src, (size_t)n * 4); return 0;
    case QE_TYPE_F16: for (int64_t i = 0; i < n; i++) dst[i] = h2f(((const uint16_t *)src)[i]); return 0;
    case QE_TYPE_BF16: for (int64_t i = 0; i < n; i++) dst[i] = qe_bf16_to_fp32(((const uint16_t *)src)[i]); return 0;
    case QE_TYPE_Q2_K: case QE_TYPE_Q3_K: case QE_TYPE_Q4_K: case QE_TYPE_Q5_K: case QE_TYPE_Q6_K:
        for (int64_t b = 0; b < n / 256; b++) {
            int q[256], sc[16], mn[16];
            float d, dmin;
            unpack256(type, p + b * bb, q, sc, mn, &d, &dmin);
            for (int i = 0; i < 256; i++) dst[b * 256 + i] = d * (float)sc[i / 16] * (float)q[i] - dmin * (float)mn[i / 16];
        }
        return 0;
    default:
        for (int64_t b = 0; b < n / 32; b++) {
            int q[32];
            float d, m;
            unpack32(type, p + b * bb, q, &d, &m);
            for (int i = 0; i < 32; i++) dst[b * 32 + i] = d * (float)q[i] + m;
        }
        return 0;
    }
}
