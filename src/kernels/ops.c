/* ops.c — ops.h entry points: the SIMD version of the active kernel set where it has one, else the reference; and
 * (the decode-step loop the SIMD attentions share is qe_attention_decode, inline in kern.h). */
#include "kernels/ops.h"

#include <string.h>

#include "kernels/kern.h"

void qe_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    const qe_kernel_set *ks = qe_kernels_active();
    if (ks && ks->rmsnorm) ks->rmsnorm(out, x, w, n, eps);
    else qe_rmsnorm_ref(out, x, w, n, eps);
}

/* RoPE is a few hundred trig calls per token; not worth a SIMD twin. */
void qe_rope_neox(float *x, int n_heads, int head_dim, int pos, float base) { qe_rope_neox_ref(x, n_heads, head_dim, pos, base); }

void qe_swiglu(float *out, const float *gate, const float *up, int n) {
    const qe_kernel_set *ks = qe_kernels_active();
    if (ks && ks->swiglu) ks->swiglu(out, gate, up, n);
    else qe_swiglu_ref(out, gate, up, n);
}

void qe_f32_to_f16_row(const float *x, uint16_t *out, int n) {
    const qe_kernel_set *ks = qe_kernels_active();
    if (ks && ks->f32_to_f16_row) ks->f32_to_f16_row(x, out, n);
    else qe_f32_to_f16_row_ref(x, out, n);
}

void qe_attention(const float *q, int n_q, int q_pos0, const uint16_t *k, const uint16_t *v, int64_t head_stride,
                  int n_kv, int n_head, int n_head_kv, int head_dim, int kv_lo, int kv_hi, float *out,
                  float *scratch) {
    const qe_kernel_set *ks = qe_kernels_active();
    if (ks && ks->attention)
        ks->attention(q, n_q, q_pos0, k, v, head_stride, n_kv, n_head, n_head_kv, head_dim, kv_lo, kv_hi, out, scratch);
    else
        qe_attention_ref(q, n_q, q_pos0, k, v, head_stride, n_kv, n_head, n_head_kv, head_dim, kv_lo, kv_hi, out, scratch);
}

