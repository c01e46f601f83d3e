/* panel8.h — the 8-row panel layout of packed weights, shared by the kernel sets whose integer vectors hold
 * 4 consecutive weights of 8 rows in 32 bytes: AVX2 (one ymm) and NEON (two q registers, rows 0-3 and 4-7).
 * The packing and the row read-back are portable C (panel8.c); each set keeps its own arithmetic.
 *
 * Panel per 32-column block (8 rows): codes 256 bytes (q8_0, signed) or 128 bytes of nibbles (low nibbles
 * are column groups 0-3, high nibbles 4-7; group g holds bytes [row * 4 + k] for its 4 columns); q5_*: 8 x
 * uint32 masks of the 5th bit (bit row * 4 + k of mask g); d[8] fp16; m[8] fp16 (q4_1/q5_1). Codes are
 * unsigned as stored (q4_0: 0..15, q5_0: 0..31; the offset is removed with the activation block sums);
 * q8_0 and iq4_nl indices are kept as they are. Float types: cols x 8 values. q4_K/q5_K/q6_K: per 32-column
 * sub-block, nibbles (128 bytes) | 5th/6th-bit masks | sub-scales, then d (and dmin) per 256-block (see
 * p8_k_panel_bytes); q2_K/q3_K have no panel layout (reference path). */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/kern.h"

#define P8_ROWS 8

/* Layout codes; a set's tag is its base (100 * k, see matmul.c) plus one of these. */
enum {
    P8_Q8_0 = 1, P8_Q4_0, P8_Q4_1, P8_Q5_0, P8_Q5_1, P8_IQ4_NL,
    P8_Q4_K = 10, P8_Q5_K, P8_Q6_K,
    P8_F16 = 20, P8_BF16, P8_F32,
    P8_N_LAYOUTS
};

static inline int p8_is_k(int l) { return l >= P8_Q4_K && l < P8_F16; }
static inline int p8_is_float(int l) { return l >= P8_F16; }
static inline int p8_qbytes(int l) { return l == P8_Q8_0 ? 256 : 128; }
static inline int p8_hbytes(int l) { return l == P8_Q5_0 || l == P8_Q5_1 ? 32 : 0; }
static inline int p8_mbytes(int l) { return l == P8_Q4_1 || l == P8_Q5_1 ? 16 : 0; }
static inline int p8_float_esize(int l) { return l == P8_F32 ? 4 : 2; }
/* k-quant panel: codes nsb x 128 | masks (q5_K: nsb x 8 x u32 for bit 4; q6_K: nsb x 16 x u32 for bits 4, 5)
 * | sub-scales nsb x 16 bytes (q4_K/q5_K: u8 sc[8 rows], u8 mn[8 rows]; q6_K: i8 sc[2 halves][8 rows])
 * | d nb x 8 fp16 | dmin nb x 8 fp16 (q4_K/q5_K). */
static inline int p8_k_hbytes(int l) { return l == P8_Q5_K ? 32 : l == P8_Q6_K ? 64 : 0; }
static inline size_t p8_k_panel_bytes(int l, int64_t nsb) {
    return (size_t)nsb * (128 + (size_t)p8_k_hbytes(l) + 16) + (size_t)(nsb / 8) * (l == P8_Q6_K ? 16 : 32);
}
static inline size_t p8_panel_bytes(int l, int64_t cols) {
    size_t pb = p8_is_float(l) ? (size_t)cols * P8_ROWS * (size_t)p8_float_esize(l)
              : p8_is_k(l) ? p8_k_panel_bytes(l, cols / 32)
              : (size_t)(cols / 32) * (size_t)(p8_qbytes(l) + p8_hbytes(l) + 16 + p8_mbytes(l));
    return (pb + 63) & ~(size_t)63;
}

/* Packs m into 8-row panels and sets m->layout = tag_base + its P8_* code. Types without a panel layout
 * (q2_K, q3_K) are left unpacked (layout 0). Returns 0, or -1 if the allocation failed. */
int qe_panel8_pack(qe_mat *m, int tag_base);
/* One row of a panel-packed matrix as f32, from the packed copy only; equals qe_dequant_ref of the row. */
void qe_panel8_row_f32(const qe_mat *m, int64_t row, float *out);

/* A set's register tile: rows [0, nr) of one panel P (nr <= 8) times T tokens (1..P8_TILE_TOKENS) starting at
 * slot s0 of the activation group G; k = blocks (32 columns; k-quants: 32-column sub-blocks) or columns
 * (float types). Writes y[t * ldy + r] through qe_epilogue (bias for rows of this panel, accumulate). pf: this
 * tile streams the panel from memory (QE_PF_STREAMED): prefetch ahead. */
#define P8_TILE_TOKENS 4
typedef void (*qe_panel8_tile_fn)(int T, const uint8_t *P, int64_t k, const uint8_t *G, int s0, float *y, int64_t ldy,
                                  const float *bias, int accumulate, int nr, int pf);

/* The matmul of a set over panels: tokens in chunks of 64 (their activations stay in L1/L2 across a chunk's
 * panels), panels of rows [r0, r1), tiles of up to 4 tokens; tiles[l] is the set's tile function of layout l
 * (l = the matrix's tag minus the set's base). */
void qe_panel8_mm(const qe_mat *m, int l, const qe_panel8_tile_fn tiles[P8_N_LAYOUTS], const qe_act *a, int n,
                  float *y, int64_t ldy, const float *bias, int accumulate, int64_t r0, int64_t r1);

/* A set's kernels KIND(L, T, P, k, G, s0, y, ldy, bias, acc, nr, pf) take the layout L and token count T as
 * compile-time constants; P8_DEFINE_TILES instantiates Q32 (q8_0 .. iq4_nl), KQ (q4_K .. q6_K) and F (float)
 * for every layout and T = 1..4, and gathers them in the table `p8_tiles` that qe_panel8_mm takes. */
#define P8_TILES(name, KIND, L)                                                                                     \
    static void name(int T, const uint8_t *P, int64_t k, const uint8_t *G, int s0, float *y, int64_t ldy,          \
                     const float *bias, int acc, int nr, int pf) {                                                  \
        switch (T) {                                                                                               \
        case 1: KIND(L, 1, P, k, G, s0, y, ldy, bias, acc, nr, pf); break;                                         \
        case 2: KIND(L, 2, P, k, G, s0, y, ldy, bias, acc, nr, pf); break;                                         \
        case 3: KIND(L, 3, P, k, G, s0, y, ldy, bias, acc, nr, pf); break;                                         \
        default: KIND(L, 4, P, k, G, s0, y, ldy, bias, acc, nr, pf); break;                                        \
        }                                                                                                          \
    }
#define P8_DEFINE_TILES(Q32, KQ, F)                                                                                 \
    P8_TILES(p8_tiles_q8_0, Q32, P8_Q8_0)                                                                          \
    P8_TILES(p8_tiles_q4_0, Q32, P8_Q4_0)                                                                          \
    P8_TILES(p8_tiles_q4_1, Q32, P8_Q4_1)                                                                          \
    P8_TILES(p8_tiles_q5_0, Q32, P8_Q5_0)                                                                          \
    P8_TILES(p8_tiles_q5_1, Q32, P8_Q5_1)                                                                          \
    P8_TILES(p8_tiles_iq4_nl, Q32, P8_IQ4_NL)                                                                      \
    P8_TILES(p8_tiles_q4_K, KQ, P8_Q4_K)                                                                           \
    P8_TILES(p8_tiles_q5_K, KQ, P8_Q5_K)                                                                           \
    P8_TILES(p8_tiles_q6_K, KQ, P8_Q6_K)                                                                           \
    P8_TILES(p8_tiles_f16, F, P8_F16)                                                                              \
    P8_TILES(p8_tiles_bf16, F, P8_BF16)                                                                            \
    P8_TILES(p8_tiles_f32, F, P8_F32)                                                                              \
    static const qe_panel8_tile_fn p8_tiles[P8_N_LAYOUTS] = {                                                      \
        [P8_Q8_0] = p8_tiles_q8_0, [P8_Q4_0] = p8_tiles_q4_0, [P8_Q4_1] = p8_tiles_q4_1,                          \
        [P8_Q5_0] = p8_tiles_q5_0, [P8_Q5_1] = p8_tiles_q5_1, [P8_IQ4_NL] = p8_tiles_iq4_nl,                      \
        [P8_Q4_K] = p8_tiles_q4_K, [P8_Q5_K] = p8_tiles_q5_K, [P8_Q6_K] = p8_tiles_q6_K,                          \
        [P8_F16] = p8_tiles_f16, [P8_BF16] = p8_tiles_bf16, [P8_F32] = p8_tiles_f32,                              \
    };
