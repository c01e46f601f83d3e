/* kern.h — private to src/kernels: the quantised-activation layout every matmul kernel reads, and the
 * per-ISA entry points that matmul.c dispatches to. Nothing outside src/kernels and its tests includes this.
 *
 * Activations are converted once per call into one of three formats, chosen by the weight type so that the
 * numerics are those of llama.cpp's vec_dot_type for that weight type:
 *   QE_ACT_F32  f32 rows, optionally rounded through fp16 (F16 weights) or bf16 (BF16 weights) first —
 *               ggml converts activations to the weight's half type before the dot product;
 *   QE_ACT_Q8   32-element blocks as ggml's block_q8_0 / block_q8_1 (their qs and d are identical; q8_1
 *               adds s = fp16(d * sum(qs))): for Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL weights;
 *   QE_ACT_Q8K  256-element blocks as ggml's block_q8_K (f32 d, bsums per 16): for the k-quants.
 * Unlike ggml's interleaved structs, one token row is stored as separate arrays (all qs first, then the
 * per-block scalars) so SIMD kernels can broadcast 4 activation bytes straight from memory. */
#pragma once
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/matmul.h"
#include "kernels/ops.h"

enum { QE_ACT_F32 = 0, QE_ACT_Q8 = 1, QE_ACT_Q8K = 2 };
enum { QE_ROUND_NONE = 0, QE_ROUND_F16 = 1, QE_ROUND_BF16 = 2 };

/* One token row in QE_ACT_Q8:  int8 qs[cols_pad] | float d[nb] | float s[nb] | int32 sum[nb]     (nb = cols/32)
 *                  QE_ACT_Q8K: int8 qs[cols_pad] | float d[nb] | int32 bsum[cols/16]             (nb = cols/256)
 *                  QE_ACT_F32: float x[cols_pad]
 * d is ggml's scale as the dot product sees it (fp16-rounded for Q8, f32 for Q8K); s = fp16(d * sum) (q8_1);
 * sum = sum of the block's qs (used to correct for the unsigned offset of packed weights). */
typedef struct {
    int fmt;
    int64_t cols, cols_pad; /* cols_pad: cols rounded up to 64 */
    size_t stride;          /* bytes from one token row to the next (multiple of 64) */
    uint8_t *base;
    int tiled;              /* 1: the kernel set's tiled layout (below) instead of rows */
    size_t tile_bytes;      /* tiled: bytes of one group of QE_ACT_TILE tokens */
} qe_act;

/* Tiled layout, for kernel sets whose register tiles hold QE_ACT_TILE tokens: tokens are grouped by 8 and,
 * within a group, stored block-major, so one tile finds all its tokens' bytes at fixed offsets from one
 * pointer (no per-token pointers to keep in registers). Group k starts at base + k * tile_bytes:
 *   Q8:  int8 qs[nb][8][32] | float d[nb][8] | float s[nb][8] | int32 negsum[3][nb][8]
 *        negsum[i] = -offset_i * sum(qs of the block), offsets 128, 8, 16 (the unsigned-weight corrections)
 *   Q8K: the Q8 group layout over 32-column sub-blocks (nsb = cols/32), from the q8_K quantisation:
 *        int8 qs[nsb][8][32] | float d[nsb][8] (the 256-block's d, repeated) | float s[nsb][8] = d * sum(32 qs)
 *        | int32 negsum[2][nsb][8] = -32 * sum of the first / second 16 qs (q6_K's offset)
 *   F32: float x[cols][8]   (rounded like QE_ACT_F32 rows)
 * Slots of a partial last group are unused and left as they are. */
#define QE_ACT_TILE 8
size_t qe_act_tile_bytes(int fmt, int64_t cols);
/* Writes token x (cols values) into slot `slot` of the group at `group` (reference, portable). */
void qe_quant_tiled_ref(const float *x, int64_t cols, int fmt, int rounding, uint8_t *group, int slot);

static inline const int8_t *qe_act_qs(const qe_act *a, int t) { return (const int8_t *)(a->base + (size_t)t * a->stride); }
static inline const float *qe_act_f32(const qe_act *a, int t) { return (const float *)(a->base + (size_t)t * a->stride); }
static inline const float *qe_act_d(const qe_act *a, int t) { return (const float *)(a->base + (size_t)t * a->stride + a->cols_pad); }
static inline const float *qe_act_s(const qe_act *a, int t) { return qe_act_d(a, t) + a->cols / 32; }
static inline const int32_t *qe_act_sum(const qe_act *a, int t) { return (const int32_t *)(qe_act_d(a, t) + 2 * (a->cols / 32)); }
static inline const int32_t *qe_act_bsum(const qe_act *a, int t) { return (const int32_t *)(qe_act_d(a, t) + a->cols / 256); }

/* Bytes of one token row of `cols` in any format (the workspace sizes for the largest). */
size_t qe_act_row_bytes(int fmt, int64_t cols);
/* Activation format and rounding llama.cpp uses for a weight type; -1 if unsupported. */
int qe_act_fmt_for(int type, int *rounding);

/* Reference quantisers of one token row (exactly ggml's x86 semantics; see matmul_ref.c). */
void qe_quant_row_f32_ref(const float *x, int64_t cols, int rounding, uint8_t *row);
void qe_quant_row_q8_ref(const float *x, int64_t cols, uint8_t *row);
void qe_quant_row_q8k_ref(const float *x, int64_t cols, uint8_t *row);

/* Reference dot product of weight row `w` (stored layout of `type`) with token t of a. */
float qe_dot_ref(int type, const void *w, const qe_act *a, int t);

/* The result of one (row, token) pair goes through the same epilogue in every kernel. */
static inline float qe_epilogue(float v, float *y, const float *bias, int64_t r, int accumulate) {
    if (bias) v += bias[r];
    if (accumulate) v += *y;
    return v;
}

/* A kernel set. pack may set m->packed and m->packer = the set (returns 0, or <0 on allocation failure); mm
 * computes rows [r0, r1) of y for tokens [0, n) of a matrix packed by this set. r0 is a multiple of row_align
 * (the rows per panel). quant_q8 (optional) replaces the reference Q8 quantiser with a bit-identical fast one. */
typedef struct qe_kernel_set {
    const char *name;
    int row_align;
    int (*pack)(qe_mat *m);
    void (*mm)(const qe_mat *m, const qe_act *a, int n, float *y, int64_t ldy, const float *bias, int accumulate,
               int64_t r0, int64_t r1);
    void (*quant_q8)(const float *x, int64_t cols, uint8_t *row);
    void (*quant_f32)(const float *x, int64_t cols, int rounding, uint8_t *row);
    /* Set when mm reads tiled activations (Q8 and F32 formats) for packed matrices; must equal
     * qe_quant_tiled_ref bit for bit. */
    void (*quant_tiled)(const float *x, int64_t cols, int fmt, int rounding, uint8_t *group, int slot);
    /* Dequantises one row of a matrix this set packed, from the packed copy only (so the original mapped
     * bytes are never touched after qe_mat_init); must equal the type's to_float (quant.h) of the original row
     * bit for bit. */
    void (*row_f32)(const qe_mat *m, int64_t row, float *out);
    /* ops.h entry points (NULL = reference), same contracts as there. */
    void (*rmsnorm)(float *out, const float *x, const float *w, int n, float eps);
    void (*swiglu)(float *out, const float *gate, const float *up, int n);
    void (*f32_to_f16_row)(const float *x, uint16_t *out, int n);
    void (*attention)(const float *q, int n_q, int q_pos0, const uint16_t *k, const uint16_t *v, int64_t head_stride,
                      int n_kv, int n_head, int n_head_kv, int head_dim, int kv_lo, int kv_hi, float *out,
                      float *scratch);
} qe_kernel_set;

/* Reference ops (ops_ref.c), used where a set has no SIMD version and by the tests. */
void qe_rmsnorm_ref(float *out, const float *x, const float *w, int n, float eps);
void qe_rope_neox_ref(float *x, int n_heads, int head_dim, int pos, float base);
void qe_swiglu_ref(float *out, const float *gate, const float *up, int n);
void qe_f32_to_f16_row_ref(const float *x, uint16_t *out, int n);
void qe_attention_ref(const float *q, int n_q, int q_pos0, const uint16_t *k, const uint16_t *v, int64_t head_stride,
                      int n_kv, int n_head, int n_head_kv, int head_dim, int kv_lo, int kv_hi, float *out,
                      float *scratch);
/* SIMD ops (ops_<isa>.c), referenced by that ISA's kernel-set table. */
void qe_avx512_rmsnorm(float *out, const float *x, const float *w, int n, float eps);
void qe_avx512_swiglu(float *out, const float *gate, const float *up, int n);
void qe_avx512_f32_to_f16_row(const float *x, uint16_t *out, int n);
void qe_avx512_attention(const float *q, int n_q, int q_pos0, const uint16_t *k, const uint16_t *v, int64_t head_stride,
                         int n_kv, int n_head, int n_head_kv, int head_dim, int kv_lo, int kv_hi, float *out,
                         float *scratch);

void qe_avx2_rmsnorm(float *out, const float *x, const float *w, int n, float eps);
void qe_avx2_swiglu(float *out, const float *gate, const float *up, int n);
void qe_avx2_f32_to_f16_row(const float *x, uint16_t *out, int n);
void qe_avx2_attention(const float *q, int n_q, int q_pos0, const uint16_t *k, const uint16_t *v, int64_t head_stride,
                       int n_kv, int n_head, int n_head_kv, int head_dim, int kv_lo, int kv_hi, float *out,
                       float *scratch);

void qe_neon_rmsnorm(float *out, const float *x, const float *w, int n, float eps);
void qe_neon_swiglu(float *out, const float *gate, const float *up, int n);
void qe_neon_f32_to_f16_row(const float *x, uint16_t *out, int n);
void qe_neon_attention(const float *q, int n_q, int q_pos0, const uint16_t *k, const uint16_t *v, int64_t head_stride,
                       int n_kv, int n_head, int n_head_kv, int head_dim, int kv_lo, int kv_hi, float *out,
                       float *scratch);

/* The decode step (one query token) of a SIMD attention: for each KV head of [kv_lo, kv_hi) and each chunk of up to 8
 * of its query heads, group_fn(qh, gn, kh, vh, n, oh, scratch) with kh / vh that head's keys and values (ops.h
 * layout), n the keys the token sees (>= 1; a token that sees none gets zeros here) and oh the gn output rows. */
typedef void (*qe_decode_group_fn)(const float *qh, int gn, const uint16_t *kh, const uint16_t *vh, int n,
                                   float *const *oh, float *scratch);
/* Inline here, not in ops.c: the per-ISA files below the dispatcher must not call back up into it. */
static inline void qe_attention_decode(const float *q, int q_pos0, const uint16_t *k, const uint16_t *v,
                                       int64_t head_stride, int n_kv, int n_head, int n_head_kv, int head_dim, int kv_lo,
                                       int kv_hi, float *out, float *scratch, qe_decode_group_fn group_fn) {
    enum { GMAX = 8 };
    const int group = n_head / n_head_kv, n = q_pos0 + 1 < n_kv ? q_pos0 + 1 : n_kv;
    for (int hk = kv_lo; hk < kv_hi; hk++)
        for (int gh0 = 0; gh0 < group; gh0 += GMAX) {
            int gn = group - gh0 < GMAX ? group - gh0 : GMAX;
            float *oh[GMAX];
            for (int h = 0; h < gn; h++) oh[h] = out + (int64_t)(hk * group + gh0 + h) * head_dim;
            if (n <= 0) { /* a query that sees no key: zero output, as the reference */
                for (int h = 0; h < gn; h++) memset(oh[h], 0, sizeof(float) * head_dim);
                continue;
            }
            group_fn(q + (int64_t)(hk * group + gh0) * head_dim, gn, k + qe_kv_key_index(head_stride, head_dim, hk, 0, 0),
                     v + qe_kv_value_index(head_stride, head_dim, hk, 0, 0), n, oh, scratch);
        }
}

/* Software prefetch in the tiles that stream a weight panel from memory: the hardware prefetcher restarts at
 * every 4 KiB page, and such a tile reads each panel once, so asking a few KiB ahead (each set's PF_BLOCKS*)
 * keeps more lines in flight (past a panel's end it touches the next panel, which is read next). A panel is
 * streamed when the chunk of tokens has one tile (decode: 1 token, or up to 8 sequences of a batched decode
 * step); when several tiles share the panel the later ones find it in cache and the first one's prefetch
 * measured a loss (prefill). QE_PF_STREAMED(tile's first token within the chunk, tokens in the chunk). */
#ifndef QE_PF_STREAMED
#define QE_PF_STREAMED(t_in_chunk, chunk_tokens) ((t_in_chunk) == 0 && (chunk_tokens) <= QE_ACT_TILE)
#endif
/* Prefetches the cache lines of [p, p + bytes) into L1 (prefetcht0 on x86). */
static inline __attribute__((always_inline)) void qe_prefetch_lines(const uint8_t *p, int bytes) {
    for (int line = 0; line < bytes; line += 64) __builtin_prefetch(p + line, 0, 3);
}

/* Decode attention streams each KV head's keys, then its values, once per token, and its arithmetic takes about as
 * long as the memory does (AVX-512: ~40 cycles per key and head, bound by the FMA ports): without asking ahead the
 * two add up instead of overlapping. In positions ahead of the one in use (chosen by measurement: bench/KERNELS.md,
 * session 6). */
#define QE_ATT_PF_KEYS 64

/* Softmax statistics of a row whose scores were folded into per-lane running maxima lm[] and sums ls[] of
 * exp(score - lm) (the SIMD prefill kernels' pass 0; lanes with lm = -inf saw no key): the row's max and 1/sum,
 * sum = sum over lanes of ls * exp(lm - max), in double. */
static inline void qe_lane_softmax_stats(const float *lm, const float *ls, int lanes, float *max_out, float *inv_out) {
    float M = -INFINITY;
    for (int l = 0; l < lanes; l++) M = lm[l] > M ? lm[l] : M;
    double sum = 0;
    for (int l = 0; l < lanes; l++)
        if (lm[l] != -INFINITY) sum += (double)ls[l] * exp((double)lm[l] - (double)M);
    *max_out = M;
    *inv_out = sum > 0 ? (float)(1.0 / sum) : 0.0f;
}

/* QE_DISPATCH(n, MAX, M): M(k) with the compile-time constant k = n for n = 1 .. MAX-1, M(MAX) otherwise
 * (MAX a literal 2..8). How the SIMD kernels turn a small run-time count (heads, tokens, vectors) into a constant
 * for a fully unrolled body with its accumulators in registers. */
#define QE_DISPATCH(n, MAX, M) switch (n) { QE_CASES_BELOW_##MAX(M) default: M(MAX); break; }
#define QE_CASES_BELOW_2(M) case 1: M(1); break;
#define QE_CASES_BELOW_3(M) QE_CASES_BELOW_2(M) case 2: M(2); break;
#define QE_CASES_BELOW_4(M) QE_CASES_BELOW_3(M) case 3: M(3); break;
#define QE_CASES_BELOW_5(M) QE_CASES_BELOW_4(M) case 4: M(4); break;
#define QE_CASES_BELOW_6(M) QE_CASES_BELOW_5(M) case 5: M(5); break;
#define QE_CASES_BELOW_7(M) QE_CASES_BELOW_6(M) case 6: M(6); break;
#define QE_CASES_BELOW_8(M) QE_CASES_BELOW_7(M) case 7: M(7); break;

/* Packed weight buffers: 64-byte aligned; >= 1 MiB ones are 2 MiB aligned with MADV_HUGEPAGE (fewer TLB
 * misses while decode streams them). Freed by qe_mat_free via qe_kern_packed_free. */
void *qe_kern_packed_alloc(size_t bytes);
void qe_kern_packed_free(void *p, size_t bytes);
/* The packed copy replaces the source rows [p, p + bytes): if they lie in a private read-only file mapping
 * (the model file), unmaps the pages wholly inside the range (MADV_DONTNEED; the page cache keeps them), so
 * RSS holds the weights once, and during packing not twice. Anything else (malloc'd weights) is left alone.
 * Packers call it as they go. */
void qe_kern_release_source(const void *p, size_t bytes);

/* Kernel sets compiled in (NULL-returning stubs where the ISA is not compiled). */
const qe_kernel_set *qe_kernels_avx512(void);
const qe_kernel_set *qe_kernels_avx2(void);
const qe_kernel_set *qe_kernels_neon(void);
const qe_kernel_set *qe_kernels_neon_v80(void);
/* The sets in order of preference ("avx512", "avx2", "neon", "neon-v80"; NULL-terminated), and the named set if
 * this CPU and build can run it, else NULL. */
extern const char *const qe_kernel_set_names[];
const qe_kernel_set *qe_kernels_usable(const char *name);
/* The set in use (chosen once from cpuid and QE_KERNELS). */
const qe_kernel_set *qe_kernels_active(void);
/* Testing hook: use this set from now on (NULL = reference). Not thread-safe against running matmuls. */
void qe_kernels_force(const qe_kernel_set *ks);
