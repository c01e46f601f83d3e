/* panel.h — packed weight panels, the layout every SIMD kernel set multiplies: R rows of a matrix interleaved so
 * that one integer vector holds 4 consecutive weights of each of the R rows (byte 4r + k = row r, column 4g + k
 * of column group g). R is the set's rows per panel: 8 for AVX2 (one ymm) and NEON (two q registers, rows 0-3 and
 * 4-7), 16 for AVX-512 (one zmm). A dot instruction multiplies such a vector with 4 activation bytes broadcast
 * from memory and adds into R per-row int32 sums: no horizontal reductions, one weight vector for every token.
 * The packing, the row read-back and the tile loop are portable C here and in panel.c, parameterised by R; each
 * set keeps only its SIMD tiles. A packed matrix is named by its type and the set that packed it (qe_mat).
 *
 * Per panel, for a 32-weight block type (nb = cols/32 blocks):
 *   codes  nb x (8-bit: 8 groups of 4R bytes, signed, or + 128 for sets that multiply unsigned weights;
 *          4/5-bit: 4 groups of 4R bytes of nibbles, group j holding column 4j + k in the low nibble and
 *          16 + 4j + k in the high one: exactly the source byte qs[4j + k]). Codes are unsigned as stored
 *          (q4_0: 0..15, q5_0: 0..31; the offset comes off with the activation block sums); iq4_nl keeps indices.
 *   hbits  nb x 8 masks of 4R bits (5-bit types: bit 4r + k of mask g = fifth bit of row r, column 4g + k)
 *   d      nb x R fp16        m  nb x R fp16 (types with a min: q4_1, q5_1)
 * k-quants (nsb = cols/32 sub-blocks, nb = cols/256): codes nsb x 16R (nibbles as above, unsigned: q6_K before
 * its -32) | hbits nsb x (bits - 4) x 8 masks of 4R bits (q5_K bit 4; q6_K bit 4, then bit 5) | sub-scales
 * nsb x 2R bytes (q4_K/q5_K: u8 sc[R], u8 mn[R]; q6_K: i8 sc[2 halves][R]) | d nb x R fp16 | dmin nb x R fp16
 * (q4_K/q5_K). Float types: cols x R values (column c of the R rows together). Each panel is padded to 64
 * bytes; rows past the matrix's end are zero. Types with no tile in a set (q2_K, q3_K) stay unpacked. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "kernels/kern.h"
#include "quant.h"

/* The panel shape of a weight type, as constants where the type is one (the tiles are instantiated per type, so
 * these fold away). Code bits and mins restate the traits (quant.h) so that they fold; test_kernels holds them
 * equal to the table. Codes of up to 4 bits are nibbles (q2_K and q3_K would fit as they are; no set has tiles for
 * them yet). */
static inline int qe_panel_bits(int type) {
    switch (type) {
    case QE_TYPE_F32: return 32;
    case QE_TYPE_F16: case QE_TYPE_BF16: return 16;
    case QE_TYPE_Q8_0: return 8;
    case QE_TYPE_Q6_K: return 6;
    case QE_TYPE_Q5_0: case QE_TYPE_Q5_1: case QE_TYPE_Q5_K: return 5;
    case QE_TYPE_Q3_K: return 3;
    case QE_TYPE_Q2_K: return 2;
    default: return 4;
    }
}
static inline int qe_panel_has_min(int type) {
    return type == QE_TYPE_Q4_1 || type == QE_TYPE_Q5_1 || type == QE_TYPE_Q2_K || type == QE_TYPE_Q4_K || type == QE_TYPE_Q5_K;
}
static inline int qe_panel_is_float(int type) { return qe_panel_bits(type) >= 16; }
static inline int qe_panel_is_k(int type) {
    return type == QE_TYPE_Q2_K || type == QE_TYPE_Q3_K || type == QE_TYPE_Q4_K || type == QE_TYPE_Q5_K || type == QE_TYPE_Q6_K;
}
/* bytes per block (k-quants: per 32-column sub-block) of codes, of fifth/sixth-bit masks, of mins */
static inline int qe_panel_qbytes(int R, int type) { return qe_panel_bits(type) == 8 ? 32 * R : 16 * R; }
static inline int qe_panel_hbytes(int R, int type) {
    int b = qe_panel_bits(type);
    return b > 4 && b < 8 ? (b - 4) * 4 * R : 0;
}
static inline int qe_panel_mbytes(int R, int type) { return qe_panel_has_min(type) ? 2 * R : 0; }
static inline size_t qe_panel_bytes(int R, int type, int64_t cols) {
    size_t pb;
    if (qe_panel_is_float(type)) pb = (size_t)cols * (size_t)R * (size_t)(qe_panel_bits(type) / 8);
    else if (qe_panel_is_k(type))
        pb = (size_t)(cols / 32) * (size_t)(16 * R + qe_panel_hbytes(R, type) + 2 * R) +
             (size_t)(cols / 256) * (size_t)(2 * R + qe_panel_mbytes(R, type));
    else pb = (size_t)(cols / 32) * (size_t)(qe_panel_qbytes(R, type) + qe_panel_hbytes(R, type) + 2 * R + qe_panel_mbytes(R, type));
    return (pb + 63) & ~(size_t)63;
}

/* A set's register tile: rows [0, nr) of one panel P (nr <= R) times T tokens starting at slot s0 of the
 * activation group G; k = blocks (32 columns; k-quants: 32-column sub-blocks) or columns (float types). Writes
 * y[t * ldy + r] through qe_epilogue (bias for rows of this panel, accumulate). pf: this tile streams the panel
 * from memory (QE_PF_STREAMED): prefetch ahead. */
typedef void (*qe_panel_tile_fn)(int T, const uint8_t *P, int64_t k, const uint8_t *G, int s0, float *y, int64_t ldy,
                                 const float *bias, int accumulate, int nr, int pf);
/* Optional: two panels at once (P, then P2 for the next R rows, nr2 of them), used for T >= pair_min_tokens. */
typedef void (*qe_panel_tile2_fn)(int T, const uint8_t *P, const uint8_t *P2, int64_t k, const uint8_t *G, int s0,
                                  float *y, int64_t ldy, const float *bias, int accumulate, int nr, int nr2);

/* A set's panel kernels: its rows per panel, whether q8_0 codes are stored + 128, and its tiles by weight type
 * (NULL: no tile, the type stays unpacked). */
typedef struct {
    int rows, q8_unsigned;
    int tile_tokens;     /* tokens per tile call (<= QE_ACT_TILE) */
    int pair_min_tokens; /* pairs[] used from this many tokens on */
    qe_panel_tile_fn tiles[QE_TYPE_COUNT];
    qe_panel_tile2_fn pairs[QE_TYPE_COUNT];
} qe_panel_kernels;

/* Packs m into panels of pk->rows rows for the set `owner` (m->packer). Leaves m unpacked (returns 0) when pk has
 * no tile for its type. Returns 0, or -1 if the allocation failed. */
int qe_panel_pack(qe_mat *m, const qe_panel_kernels *pk, const qe_kernel_set *owner);
/* One row of a panel-packed matrix as f32, from the packed copy only; equals the type's to_float bit for bit. */
void qe_panel_row_f32(const qe_panel_kernels *pk, const qe_mat *m, int64_t row, float *out);

/* The matmul over panels: tokens in chunks of 64 (their activations stay in L1/L2 while the thread's panels
 * stream past), panels of rows [r0, r1), tiles of pk->tile_tokens tokens. Inlined into each set's mm with pk a
 * compile-time constant, so the tile functions and the panel geometry are known there. */
static inline __attribute__((always_inline)) void qe_panel_mm(const qe_panel_kernels *pk, const qe_mat *m,
                                                              const qe_act *a, int n, float *y, int64_t ldy,
                                                              const float *bias, int accumulate, int64_t r0, int64_t r1) {
    enum { TCHUNK = 64 };
    const int R = pk->rows, TT = pk->tile_tokens;
    const qe_panel_tile_fn fn = pk->tiles[m->type];
    const qe_panel_tile2_fn fn2 = pk->pairs[m->type];
    QE_ASSERT(fn && a->tiled);
    int64_t k = qe_panel_is_float(m->type) ? m->cols : m->cols / 32;
    size_t pb = qe_panel_bytes(R, m->type, m->cols);
    const uint8_t *packed = m->packed;
    int64_t p0 = r0 / R, p1 = (r1 + R - 1) / R;
    for (int tc = 0; tc < n; tc += TCHUNK) {
        int tn = n - tc < TCHUNK ? n - tc : TCHUNK;
        for (int64_t p = p0; p < p1; p++) {
            int64_t rlo = p * R, rhi = rlo + R < r1 ? rlo + R : r1;
            const float *bp = bias ? bias + rlo : NULL;
            int pair = fn2 && p + 1 < p1; /* two panels per tile where there are two */
            int64_t rhi2 = rhi + R < r1 ? rhi + R : r1;
            for (int t = tc; t < tc + tn; t += TT) {
                int T = tc + tn - t < TT ? tc + tn - t : TT;
                const uint8_t *G = a->base + (size_t)(t / QE_ACT_TILE) * a->tile_bytes;
                const int pf = QE_PF_STREAMED(t - tc, tn);
                if (pair && T >= pk->pair_min_tokens)
                    fn2(T, packed + (size_t)p * pb, packed + (size_t)(p + 1) * pb, k, G, t % QE_ACT_TILE,
                        y + (int64_t)t * ldy + rlo, ldy, bp, accumulate, (int)(rhi - rlo), (int)(rhi2 - rhi));
                else {
                    fn(T, packed + (size_t)p * pb, k, G, t % QE_ACT_TILE, y + (int64_t)t * ldy + rlo, ldy, bp, accumulate,
                       (int)(rhi - rlo), pf);
                    if (pair)
                        fn(T, packed + (size_t)(p + 1) * pb, k, G, t % QE_ACT_TILE, y + (int64_t)t * ldy + rhi, ldy,
                           bias ? bias + rhi : NULL, accumulate, (int)(rhi2 - rhi), pf);
                }
            }
            p += pair;
        }
    }
}

/* QE_PANEL_TILES(name, KIND, TY, MAXT): one tile function for weight type TY whose token count T (1..MAXT, MAXT 4
 * or 8) becomes a compile-time constant for the set's inline tile KIND(TY, T, P, k, G, s0, y, ldy, bias, acc, nr,
 * pf). */
#define QE_PANEL_TILES(name, KIND, TY, MAXT) QE_PANEL_TILES_(name, KIND, TY, MAXT) /* MAXT expanded first */
#define QE_PANEL_TILES_(name, KIND, TY, MAXT)                                                                      \
    static void name(int T, const uint8_t *P, int64_t k, const uint8_t *G, int s0, float *y, int64_t ldy,          \
                     const float *bias, int acc, int nr, int pf) {                                                  \
        switch (T) {                                                                                               \
        QE_PANEL_TILE_CASES_##MAXT(KIND, TY)                                                                       \
        default: KIND(TY, MAXT, P, k, G, s0, y, ldy, bias, acc, nr, pf); break;                                    \
        }                                                                                                          \
    }
#define QE_PANEL_TILE_CASES_4(KIND, TY)                                                                            \
    case 1: KIND(TY, 1, P, k, G, s0, y, ldy, bias, acc, nr, pf); break;                                            \
    case 2: KIND(TY, 2, P, k, G, s0, y, ldy, bias, acc, nr, pf); break;                                            \
    case 3: KIND(TY, 3, P, k, G, s0, y, ldy, bias, acc, nr, pf); break;
#define QE_PANEL_TILE_CASES_8(KIND, TY)                                                                            \
    QE_PANEL_TILE_CASES_4(KIND, TY)                                                                                \
    case 4: KIND(TY, 4, P, k, G, s0, y, ldy, bias, acc, nr, pf); break;                                            \
    case 5: KIND(TY, 5, P, k, G, s0, y, ldy, bias, acc, nr, pf); break;                                            \
    case 6: KIND(TY, 6, P, k, G, s0, y, ldy, bias, acc, nr, pf); break;                                            \
    case 7: KIND(TY, 7, P, k, G, s0, y, ldy, bias, acc, nr, pf); break;
