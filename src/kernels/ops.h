/* ops.h — the small per-token operations of the forward pass (everything but the weight matmuls):
 * RMSNorm, RoPE, SwiGLU, softmax, attention over the f16 KV cache. Each has a scalar reference in
 * ops_ref.c and, where it matters, SIMD versions chosen at start-up like the matmul kernels. */
#pragma once
#include <stdint.h>

/* Scratch floats one attention call may use: scores of up to 16 query tokens x the heads of a KV group. */
#define QE_ATT_SCRATCH(n_kv, n_head, n_head_kv) ((size_t)16 * (size_t)((n_head) / (n_head_kv)) * (size_t)((n_kv) + 16))

/* out[i] = x[i] / sqrt(mean(x^2) + eps) * w[i]; out may equal x. */
void qe_rmsnorm(float *out, const float *x, const float *w, int n, float eps);

/* Rotates, in place, n_heads heads of head_dim values for one token at position pos, NeoX layout (pairs
 * (i, i + head_dim/2)), theta_i = pos * base^(-2i/head_dim). */
void qe_rope_neox(float *x, int n_heads, int head_dim, int pos, float base);

/* out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)); out may alias gate or up. */
void qe_swiglu(float *out, const float *gate, const float *up, int n);

/* Converts n floats to fp16 bits (KV cache writes). */
void qe_f32_to_f16_row(const float *x, uint16_t *out, int n);

/* The layout of one sequence's keys and values in one layer, as attention reads them (kvcache.h reserves it).
 * Each KV head has its own region, head_stride elements from the previous head's (a multiple of
 * QE_KV_BLOCK * head_dim):
 *   keys:   blocks of 16 positions stored dimension-major, [pos / 16][head_dim][16] — one 32-byte row holds
 *           dimension d of 16 consecutive keys, so a decode step's scores for 16 keys are head_dim FMAs of a
 *           converted row by a broadcast query element, with no transposition;
 *   values: position-major, [pos][head_dim] — the probability-weighted sum adds whole rows.
 * Both are fp16 bits. A head's keys and values are contiguous, so the thread that owns a KV head streams two
 * sequential regions. */
#define QE_KV_BLOCK 16
static inline int64_t qe_kv_key_index(int64_t head_stride, int head_dim, int hk, int pos, int d) {
    return (int64_t)hk * head_stride + (int64_t)(pos / QE_KV_BLOCK) * QE_KV_BLOCK * head_dim + (int64_t)d * QE_KV_BLOCK +
           pos % QE_KV_BLOCK;
}
static inline int64_t qe_kv_value_index(int64_t head_stride, int head_dim, int hk, int pos, int d) {
    return (int64_t)hk * head_stride + (int64_t)pos * head_dim + d;
}

/* Causal grouped-query attention of n_q query tokens against n_kv cached tokens, for KV heads
 * [kv_lo, kv_hi) only (the caller splits heads or tokens across threads).
 *   q:   [n_q][n_head * head_dim] f32, query token i sits at position q_pos0 + i and sees keys 0..q_pos0+i
 *   k,v: fp16 keys and values of n_kv positions in the layout above (head_stride elements per KV head)
 *   out: [n_q][n_head * head_dim] f32 (only the heads of [kv_lo, kv_hi) are written)
 *   scratch: at least QE_ATT_SCRATCH(n_kv, n_head, n_head_kv) floats (a fast kernel keeps the scores
 *            of every head of a KV group there instead of computing them twice)
 * Scale 1/sqrt(head_dim); softmax in f32. */
void qe_attention(const float *q, int n_q, int q_pos0, const uint16_t *k, const uint16_t *v, int64_t head_stride,
                  int n_kv, int n_head, int n_head_kv, int head_dim, int kv_lo, int kv_hi, float *out,
                  float *scratch);
