/* ops_ref.c — reference versions of the per-token ops of ops.h, written to follow llama.cpp's CPU numerics
 * (ggml rms_norm sums squares in double; rope advances theta by repeated f32 multiplication; attention
 * rounds q to fp16 before the K dot product, as ggml converts it to K's type, and rounds the softmax
 * probabilities to fp16 before the V product, as ggml's kq·V matmul converts them to V's type: with both, the
 * logits of a q8_0 model equal llama.cpp's (non-flash-attention path) bit for bit). SIMD versions must agree
 * with these within the tolerances of tests/unit/test_ops.c. */
#include <math.h>

#include "base.h"
#include "kernels/kern.h"
#include "kernels/ops.h"

void qe_rmsnorm_ref(float *out, const float *x, const float *w, int n, float eps) {
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    float scale = 1.0f / sqrtf((float)(sum / n) + eps);
    for (int i = 0; i < n; i++) out[i] = (x[i] * scale) * w[i];
}

void qe_rope_neox_ref(float *x, int n_heads, int head_dim, int pos, float base) {
    int half = head_dim / 2;
    float theta_scale = powf(base, -2.0f / (float)head_dim), theta = (float)pos;
    /* the angles depend on the pair index only: one cosf/sinf per pair, shared by every head */
    float cs[256], sn[256];
    int cached = half <= 256 ? half : 0;
    for (int i = 0; i < cached; i++) {
        cs[i] = cosf(theta);
        sn[i] = sinf(theta);
        theta *= theta_scale;
    }
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (int64_t)h * head_dim, th = (float)pos;
        for (int i = 0; i < half; i++) {
            float c = i < cached ? cs[i] : cosf(th), s = i < cached ? sn[i] : sinf(th);
            float x0 = v[i], x1 = v[i + half];
            v[i] = x0 * c - x1 * s;
            v[i + half] = x0 * s + x1 * c;
            th *= theta_scale;
        }
    }
}

void qe_swiglu_ref(float *out, const float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void qe_f32_to_f16_row_ref(const float *x, uint16_t *out, int n) {
    for (int i = 0; i < n; i++) out[i] = qe_fp32_to_fp16(x[i]);
}

void qe_attention_ref(const float *q, int n_q, int q_pos0, const uint16_t *k, const uint16_t *v, int64_t head_stride,
                      int n_kv, int n_head, int n_head_kv, int head_dim, int kv_lo, int kv_hi, float *out,
                      float *scratch) {
    int group = n_head / n_head_kv;
    float scale = 1.0f / sqrtf((float)head_dim);
    for (int i = 0; i < n_q; i++) {
        int n_vis = q_pos0 + i + 1 < n_kv ? q_pos0 + i + 1 : n_kv;
        for (int hk = kv_lo; hk < kv_hi; hk++) {
            for (int h = hk * group; h < (hk + 1) * group; h++) {
                const float *qh = q + (int64_t)i * n_head * head_dim + (int64_t)h * head_dim;
                float *o = out + (int64_t)i * n_head * head_dim + (int64_t)h * head_dim;
                float mx = -INFINITY;
                for (int j = 0; j < n_vis; j++) {
                    float s = 0;
                    for (int d = 0; d < head_dim; d++)
                        s += qe_fp16_to_fp32(qe_fp32_to_fp16(qh[d])) *
                             qe_fp16_to_fp32(k[qe_kv_key_index(head_stride, head_dim, hk, j, d)]);
                    scratch[j] = s * scale;
                    if (scratch[j] > mx) mx = scratch[j];
                }
                double sum = 0; /* ggml sums the exponentials in double */
                for (int j = 0; j < n_vis; j++) { scratch[j] = expf(scratch[j] - mx); sum += scratch[j]; }
                float inv = n_vis ? (float)(1.0 / sum) : 0.0f;
                for (int d = 0; d < head_dim; d++) o[d] = 0;
                for (int j = 0; j < n_vis; j++) {
                    const uint16_t *vj = v + qe_kv_value_index(head_stride, head_dim, hk, j, 0);
                    float p = qe_fp16_to_fp32(qe_fp32_to_fp16(scratch[j] * inv));
                    for (int d = 0; d < head_dim; d++) o[d] += p * qe_fp16_to_fp32(vj[d]);
                }
            }
        }
    }
}
