/* matmul_ref.c — the reference numerics of every matmul: activation quantisers and one dot product per
 * weight type, written for clarity. They follow llama.cpp's semantics (ggml-quants.c quantize_row_q8_*,
 * ggml-cpu vec_dot_*_q8_*): each block's dot product is an exact integer sum, scaled in f32 afterwards, so
 * a SIMD kernel that only reorders the f32 additions agrees to ~1e-6 relative. The weights are read through
 * the traits of quant.h (block layouts, the k-quant unpackers, the reference dequantiser to_float). */
#include <math.h>
#include <string.h>

#include "base.h"
#include "kernels/kern.h"
#include "quant.h"

static inline float h2f(qe_half h) { return qe_fp16_to_fp32(h); }

/* From the traits: a 32-weight block type multiplies q8_0/q8_1 activations, a k-quant q8_K ones, a float type
 * f32 activations rounded to its own half type first. */
int qe_act_fmt_for(int type, int *rounding) {
    const qe_type_traits *tr = qe_type_traits_get(type);
    *rounding = QE_ROUND_NONE;
    if (!tr) return -1;
    if (tr->b32) return QE_ACT_Q8;
    if (tr->unpack_k) return QE_ACT_Q8K;
    if (type == QE_TYPE_F16) *rounding = QE_ROUND_F16;
    else if (type == QE_TYPE_BF16) *rounding = QE_ROUND_BF16;
    else if (type != QE_TYPE_F32) return -1;
    return QE_ACT_F32;
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

/* --- dot products ----------------------------------------------------------------------------------- */

float qe_dot_ref(int type, const void *w, const qe_act *a, int t) {
    const qe_type_traits *tr = qe_type_traits_get(type);
    int64_t cols = a->cols;
    QE_ASSERT(tr);
    if (tr->block_size == 1) { /* f32 / f16 / bf16: converted a chunk at a time, summed in double */
        const float *x = qe_act_f32(a, t);
        double s = 0;
        float wf[256];
        for (int64_t c0 = 0; c0 < cols; c0 += 256) {
            int64_t nc = cols - c0 < 256 ? cols - c0 : 256;
            tr->to_float((const uint8_t *)w + (size_t)c0 * tr->type_size, wf, nc);
            for (int64_t i = 0; i < nc; i++) s += (double)(wf[i] * x[c0 + i]);
        }
        return (float)s;
    }
    if (tr->b32) {
        const int8_t *qs = qe_act_qs(a, t);
        const float *d = qe_act_d(a, t), *s = qe_act_s(a, t);
        float sumf = 0;
        for (int64_t b = 0; b < cols / 32; b++) {
            int q[32];
            float dq, mq;
            qe_block32_values(tr->b32, (const uint8_t *)w + b * tr->type_size, q, &dq, &mq);
            int32_t isum = 0;
            for (int j = 0; j < 32; j++) isum += q[j] * qs[b * 32 + j];
            sumf += dq * d[b] * (float)isum + mq * s[b]; /* mq = 0 except for q4_1/q5_1 (the q8_1 s term) */
        }
        return sumf;
    }
    QE_ASSERT(tr->unpack_k);
    const int8_t *qs = qe_act_qs(a, t);
    const float *d = qe_act_d(a, t);
    const int32_t *bsum = qe_act_bsum(a, t);
    float sumf = 0;
    for (int64_t b = 0; b < cols / 256; b++) {
        int q[256], sc[16], mn[16];
        float dw, dminw;
        tr->unpack_k((const uint8_t *)w + b * tr->type_size, q, sc, mn, &dw, &dminw);
        int32_t isum = 0, msum = 0;
        for (int j = 0; j < 16; j++) {
            int32_t s16 = 0;
            for (int i = 0; i < 16; i++) s16 += (q[j * 16 + i] - tr->k_zero) * qs[b * 256 + j * 16 + i];
            isum += sc[j] * s16;
            msum += mn[j] * bsum[b * 16 + j];
        }
        sumf += dw * d[b] * (float)isum - dminw * d[b] * (float)msum;
    }
    return sumf;
}
