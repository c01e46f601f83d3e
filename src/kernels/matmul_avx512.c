/* matmul_avx512.c — the AVX-512 (F/BW/VL/DQ + VNNI) kernel set: packed weight panels, int8 VNNI tiles for
 * the 32-block quant types, f32 FMA tiles for f16/bf16/f32 weights, and a bit-exact activation quantiser.
 * Compiled with the AVX-512 flags only; chosen at run time by cpu.c. Numerics equal matmul_ref.c up to the
 * order of f32 additions (tests/unit/test_kernels.c holds them together).
 *
 * Panel layout. qe_mat_init repacks a matrix into panels of 16 rows, so that one 64-byte vector holds 4
 * consecutive weights of each of the 16 rows (byte 4*r + k = row r, column 4*g + k of column group g). A
 * VNNI vpdpbusd then multiplies it with 4 activation bytes broadcast from memory and adds into 16 per-row
 * int32 sums — no horizontal reductions, and one weight vector serves every token of a tile.
 *   vpdpbusd multiplies unsigned by signed bytes: weights are stored unsigned (q8_0 + 128; 4/5-bit codes as
 *   they are; iq4_nl as codebook + 128) and activations stay signed; the offset is removed by starting each
 *   block's int32 sum at -offset * sum(activation qs of the block), which the quantiser already computed.
 * Per panel, for a 32-block type with nb = cols/32 blocks:
 *   codes   nb x (512 bytes for q8_0 | 256 bytes of nibbles for 4/5-bit: byte 4r+k of vector j holds column
 *           4j+k in its low nibble and 16+4j+k in its high nibble — exactly the source byte qs[4j+k])
 *   hbits   nb x 8 x uint64 (q5_0/q5_1: bit 4r+k of mask g = 5th bit of row r, column 4g+k)
 *   d       nb x 16 fp16      m  nb x 16 fp16 (q4_1/q5_1)
 * The 4/5-bit matrices stay 4/5-bit in memory (decode is bandwidth-bound); they are widened to bytes in
 * registers, once per block, and reused for every token of the tile.
 * Float types: per panel, cols x 16 values (fp16, bf16 or f32): column c of the 16 rows in one vector.
 * Prefill/decode share one loop: tiles of 16 rows x up to 8 tokens over all columns, tokens in chunks of
 * 64 so a chunk's activations stay in L2 while the thread's panels stream past. */
#include <immintrin.h>
#include <string.h>

#include "base.h"
#include "kernels/kern.h"
#include "quant.h"

enum {
    L_Q8_0 = 101, L_Q4_0, L_Q4_1, L_Q5_0, L_Q5_1, L_IQ4_NL,
    L_Q4_K = 110, L_Q5_K, L_Q6_K,
    L_F16 = 120, L_BF16, L_F32,
};

#define PR 16    /* rows per panel */
#define TT 8     /* tokens per register tile */
#define TCHUNK 64
/* Decode prefetch distance (QE_PF_STREAMED tiles): q8_0 panels 8 blocks (4 KiB of codes) ahead, the nibble
 * layouts (4/5-bit and k-quants, 256 bytes of codes per 32 columns) 32 blocks (8 KiB), float panels 32 column
 * steps (4 KiB of f16 for one token); each measured best of 8 / 16 / 32 / 64 for its type (bench/KERNELS.md,
 * sessions 5 and 7). */
#define PF_BLOCKS_Q8 8
#define PF_BLOCKS_NIBBLE 32
#define PF_COLS_F 32

/* --- packing ------------------------------------------------------------------------------------------ */

static int q32_layout(int type) {
    switch (type) {
    case QE_TYPE_Q8_0: return L_Q8_0;
    case QE_TYPE_Q4_0: return L_Q4_0;
    case QE_TYPE_Q4_1: return L_Q4_1;
    case QE_TYPE_Q5_0: return L_Q5_0;
    case QE_TYPE_Q5_1: return L_Q5_1;
    case QE_TYPE_IQ4_NL: return L_IQ4_NL;
    default: return 0;
    }
}
static int lay_qbytes(int l) { return l == L_Q8_0 ? 512 : 256; }
static int lay_hbytes(int l) { return l == L_Q5_0 || l == L_Q5_1 ? 64 : 0; }
static int lay_mbytes(int l) { return l == L_Q4_1 || l == L_Q5_1 ? 32 : 0; }
static size_t q32_panel_bytes(int l, int64_t nb) {
    return (size_t)nb * (size_t)(lay_qbytes(l) + lay_hbytes(l) + 32 + lay_mbytes(l));
}
static int float_esize(int l) { return l == L_F32 ? 4 : 2; }

/* k-quant panels, per 32-column sub-block (nsb = cols/32, nb = cols/256):
 *   codes nsb x 256 (nibbles as for 4-bit types) | hbits: q5_K nsb x 8 masks (bit 4), q6_K nsb x 16 masks
 *   (8 for bit 4, 8 for bit 5) | scales: q4_K/q5_K u8 sc[nsb][16] and mn[nsb][16], q6_K i8 sc[nsb][2][16]
 *   | d[nb][16] fp16 | dmin[nb][16] fp16 (q4_K/q5_K). Codes are the unsigned ones (q6_K before its -32). */
static int k_hbytes(int l) { return l == L_Q5_K ? 64 : l == L_Q6_K ? 128 : 0; }
static size_t k_panel_bytes(int l, int64_t nsb) {
    size_t nb = (size_t)nsb / 8;
    return (size_t)nsb * (256 + (size_t)k_hbytes(l) + 32) + nb * (l == L_Q6_K ? 32 : 64);
}

static void pack_k_panel(int l, int type, const uint8_t *src, size_t rb, int64_t rows, int64_t p, int64_t cols, uint8_t *P) {
    int64_t nsb = cols / 32, nb = cols / 256;
    uint8_t *C = P, *H = C + nsb * 256, *S = H + nsb * k_hbytes(l), *D = S + nsb * 32, *DM = D + nb * 32;
    size_t bb = rb / (size_t)nb;
    for (int rr = 0; rr < PR && p * PR + rr < rows; rr++) {
        const uint8_t *row = src + (size_t)(p * PR + rr) * rb;
        for (int64_t b = 0; b < nb; b++) {
            int q[256], sc[16], mn[16];
            float d, dmin;
            qe_type_traits_get(type)->unpack_k(row + b * bb, q, sc, mn, &d, &dmin);
            uint16_t dh = qe_fp32_to_fp16(d), mh = qe_fp32_to_fp16(dmin); /* exact: they were fp16 */
            memcpy(D + b * 32 + rr * 2, &dh, 2);
            if (l != L_Q6_K) memcpy(DM + b * 32 + rr * 2, &mh, 2);
            for (int s8 = 0; s8 < 8; s8++) {
                int64_t sb = b * 8 + s8;
                const int *qs = q + s8 * 32;
                for (int j = 0; j < 4; j++)
                    for (int k = 0; k < 4; k++)
                        C[sb * 256 + j * 64 + rr * 4 + k] = (uint8_t)((qs[4 * j + k] & 15) | ((qs[16 + 4 * j + k] & 15) << 4));
                uint64_t *hm = (uint64_t *)(H + sb * k_hbytes(l));
                for (int g = 0; g < 8 && l != L_Q4_K; g++)
                    for (int k = 0; k < 4; k++) {
                        hm[g] |= (uint64_t)((qs[4 * g + k] >> 4) & 1) << (rr * 4 + k);
                        if (l == L_Q6_K) hm[8 + g] |= (uint64_t)((qs[4 * g + k] >> 5) & 1) << (rr * 4 + k);
                    }
                if (l == L_Q6_K) {
                    S[sb * 32 + rr] = (uint8_t)(int8_t)sc[2 * s8];
                    S[sb * 32 + 16 + rr] = (uint8_t)(int8_t)sc[2 * s8 + 1];
                } else {
                    S[sb * 32 + rr] = (uint8_t)sc[2 * s8];
                    S[sb * 32 + 16 + rr] = (uint8_t)mn[2 * s8];
                }
            }
        }
    }
}

static int pack_avx512(qe_mat *m) {
    int64_t rows = m->rows, cols = m->cols, np = (rows + PR - 1) / PR;
    int l = q32_layout(m->type);
    if (!l) {
        if (m->type == QE_TYPE_F16) l = L_F16;
        else if (m->type == QE_TYPE_BF16) l = L_BF16;
        else if (m->type == QE_TYPE_F32) l = L_F32;
        else if (m->type == QE_TYPE_Q4_K) l = L_Q4_K;
        else if (m->type == QE_TYPE_Q5_K) l = L_Q5_K;
        else if (m->type == QE_TYPE_Q6_K) l = L_Q6_K;
        else return 0; /* q2_K, q3_K: reference path */
    }
    size_t pb = l >= L_F16 ? (size_t)cols * PR * (size_t)float_esize(l)
              : l >= L_Q4_K ? k_panel_bytes(l, cols / 32) : q32_panel_bytes(l, cols / 32);
    pb = (pb + 63) & ~(size_t)63;
    size_t total = pb * (size_t)np;
    uint8_t *dst = qe_kern_packed_alloc(total);
    if (!dst) return -1;
    size_t rb = qe_row_size(m->type, cols);
    const uint8_t *src = m->data;
    for (int64_t p = 0; p < np; p++) {
        uint8_t *P = dst + (size_t)p * pb;
        /* padding rows of the last panel: zero codes and zero scales contribute nothing; the 5th/6th-bit masks
         * are OR-ed together, so they start from zero */
        if ((p + 1) * PR > rows || l == L_Q5_0 || l == L_Q5_1 || (l >= L_Q4_K && l < L_F16)) memset(P, 0, pb);
        if ((p & 63) == 63) qe_kern_release_source(src + (size_t)(p - 63) * PR * rb, (size_t)64 * PR * rb);
        if (l >= L_Q4_K && l < L_F16) {
            pack_k_panel(l, m->type, src, rb, rows, p, cols, P);
            continue;
        }
        if (l >= L_F16) {
            int es = float_esize(l);
            for (int rr = 0; rr < PR && p * PR + rr < rows; rr++) {
                const uint8_t *row = src + (size_t)(p * PR + rr) * rb;
                for (int64_t c = 0; c < cols; c++) memcpy(P + ((size_t)c * PR + rr) * es, row + (size_t)c * es, es);
            }
            continue;
        }
        int64_t nb = cols / 32;
        int qb = lay_qbytes(l), hb = lay_hbytes(l);
        uint8_t *Q = P, *H = P + nb * qb, *D = H + nb * hb, *M = D + nb * 32;
        if (!hb) {
            /* One gather per 64-byte output vector: lane r reads 4 bytes of row r (missing rows read as 0). */
            int nr = rows - p * PR < PR ? (int)(rows - p * PR) : PR;
            __mmask16 rm = (__mmask16)((1u << nr) - 1);
            __m512i vidx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                              _mm512_set1_epi32((int)rb));
            const uint8_t *base = src + (size_t)p * PR * rb;
            size_t bb = rb / (size_t)nb;
            int qoff = l == L_Q4_1 ? 4 : 2;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = base + (size_t)b * bb;
                if (l == L_Q8_0)
                    for (int g = 0; g < 8; g++)
                        _mm512_storeu_si512(Q + b * 512 + g * 64,
                                            _mm512_xor_si512(_mm512_mask_i32gather_epi32(_mm512_setzero_si512(), rm, vidx, blk + 2 + 4 * g, 1),
                                                             _mm512_set1_epi32((int)0x80808080u)));
                else
                    for (int j = 0; j < 4; j++)
                        _mm512_storeu_si512(Q + b * 256 + j * 64, _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), rm, vidx, blk + qoff + 4 * j, 1));
                _mm256_storeu_si256((__m256i *)(D + b * 32),
                                    _mm512_cvtepi32_epi16(_mm512_mask_i32gather_epi32(_mm512_setzero_si512(), rm, vidx, blk, 1)));
                if (l == L_Q4_1)
                    _mm256_storeu_si256((__m256i *)(M + b * 32),
                                        _mm512_cvtepi32_epi16(_mm512_mask_i32gather_epi32(_mm512_setzero_si512(), rm, vidx, blk + 2, 1)));
            }
            continue;
        }
        for (int rr = 0; rr < PR && p * PR + rr < rows; rr++) {
            const uint8_t *row = src + (size_t)(p * PR + rr) * rb;
            for (int64_t b = 0; b < nb; b++) {
                uint8_t *q = Q + b * qb;
                switch (l) {
                case L_Q8_0: {
                    const block_q8_0 *x = (const block_q8_0 *)row + b;
                    for (int g = 0; g < 8; g++) { /* 4 weights at a time, +128 = flip the sign bits */
                        uint32_t w4;
                        memcpy(&w4, x->qs + 4 * g, 4);
                        w4 ^= 0x80808080u;
                        memcpy(q + g * 64 + rr * 4, &w4, 4);
                    }
                    memcpy(D + b * 32 + rr * 2, &x->d, 2);
                    break;
                }
                case L_Q4_0: case L_IQ4_NL: {
                    const block_q4_0 *x = (const block_q4_0 *)row + b; /* iq4_nl has the same layout */
                    for (int j = 0; j < 4; j++) memcpy(q + j * 64 + rr * 4, x->qs + 4 * j, 4);
                    memcpy(D + b * 32 + rr * 2, &x->d, 2);
                    break;
                }
                case L_Q4_1: {
                    const block_q4_1 *x = (const block_q4_1 *)row + b;
                    for (int j = 0; j < 4; j++) memcpy(q + j * 64 + rr * 4, x->qs + 4 * j, 4);
                    memcpy(D + b * 32 + rr * 2, &x->d, 2);
                    memcpy(M + b * 32 + rr * 2, &x->m, 2);
                    break;
                }
                case L_Q5_0: case L_Q5_1: {
                    const uint8_t *qs, *qhp;
                    if (l == L_Q5_0) { const block_q5_0 *x = (const block_q5_0 *)row + b; qs = x->qs; qhp = x->qh; memcpy(D + b * 32 + rr * 2, &x->d, 2); }
                    else { const block_q5_1 *x = (const block_q5_1 *)row + b; qs = x->qs; qhp = x->qh; memcpy(D + b * 32 + rr * 2, &x->d, 2); memcpy(M + b * 32 + rr * 2, &x->m, 2); }
                    for (int j = 0; j < 4; j++) memcpy(q + j * 64 + rr * 4, qs + 4 * j, 4);
                    uint32_t qh;
                    memcpy(&qh, qhp, 4);
                    uint64_t *hm = (uint64_t *)(H + b * 64);
                    for (int g = 0; g < 8; g++)
                        for (int k = 0; k < 4; k++) hm[g] |= (uint64_t)((qh >> (4 * g + k)) & 1) << (rr * 4 + k);
                    break;
                }
                }
            }
        }
    }
    m->packed = dst;
    m->packed_bytes = total;
    m->layout = l;
    return 0;
}

/* One row back from the packed panels (the token-embedding lookup of a tied lm_head): the same arithmetic as
 * qe_dequant_ref, so the values are identical. */
static void row_f32_avx512(const qe_mat *m, int64_t row, float *out) {
    int l = m->layout;
    int64_t cols = m->cols, p = row / PR;
    int rr = (int)(row % PR);
    if (l >= L_F16) {
        size_t pb = ((size_t)cols * PR * (size_t)float_esize(l) + 63) & ~(size_t)63;
        const uint8_t *P = (const uint8_t *)m->packed + (size_t)p * pb;
        for (int64_t c = 0; c < cols; c++) {
            uint16_t h;
            if (l == L_F32) memcpy(&out[c], P + (c * PR + rr) * 4, 4);
            else { memcpy(&h, P + (c * PR + rr) * 2, 2); out[c] = l == L_F16 ? qe_fp16_to_fp32(h) : qe_bf16_to_fp32(h); }
        }
        return;
    }
    int64_t nsb = cols / 32;
    if (l >= L_Q4_K) {
        size_t pb = (k_panel_bytes(l, nsb) + 63) & ~(size_t)63;
        const uint8_t *C = (const uint8_t *)m->packed + (size_t)p * pb, *H = C + nsb * 256, *S = H + nsb * k_hbytes(l);
        const uint8_t *D = S + nsb * 32, *DM = D + (nsb / 8) * 32;
        for (int64_t sb = 0; sb < nsb; sb++) {
            uint16_t dh, mh = 0;
            memcpy(&dh, D + (sb / 8) * 32 + rr * 2, 2);
            if (l != L_Q6_K) memcpy(&mh, DM + (sb / 8) * 32 + rr * 2, 2);
            float d = qe_fp16_to_fp32(dh), dmin = qe_fp16_to_fp32(mh);
            const uint64_t *hm = (const uint64_t *)(H + sb * k_hbytes(l));
            for (int c = 0; c < 32; c++) {
                int g = c / 4, k = c % 4, j = g % 4;
                uint8_t byte = C[sb * 256 + j * 64 + rr * 4 + k];
                int q = g < 4 ? byte & 15 : byte >> 4;
                if (l != L_Q4_K) q |= (int)((hm[g] >> (rr * 4 + k)) & 1) << 4;
                if (l == L_Q6_K) q |= (int)((hm[8 + g] >> (rr * 4 + k)) & 1) << 5;
                int half = c / 16;
                if (l == L_Q6_K) out[sb * 32 + c] = d * (float)(int8_t)S[sb * 32 + half * 16 + rr] * (float)(q - 32);
                else out[sb * 32 + c] = d * (float)S[sb * 32 + rr] * (float)q - dmin * (float)S[sb * 32 + 16 + rr];
            }
        }
        return;
    }
    size_t pb = (q32_panel_bytes(l, nsb) + 63) & ~(size_t)63;
    int qb = lay_qbytes(l), hb = lay_hbytes(l);
    const uint8_t *Q = (const uint8_t *)m->packed + (size_t)p * pb, *H = Q + nsb * qb, *D = H + nsb * hb, *M = D + nsb * 32;
    for (int64_t b = 0; b < nsb; b++) {
        uint16_t dh, mh = 0;
        memcpy(&dh, D + b * 32 + rr * 2, 2);
        if (lay_mbytes(l)) memcpy(&mh, M + b * 32 + rr * 2, 2);
        float d = qe_fp16_to_fp32(dh), mn = qe_fp16_to_fp32(mh);
        const uint64_t *hm = (const uint64_t *)(H + b * 64);
        for (int c = 0; c < 32; c++) {
            int g = c / 4, k = c % 4, q;
            if (l == L_Q8_0) q = (int)Q[b * 512 + g * 64 + rr * 4 + k] - 128;
            else {
                uint8_t byte = Q[b * 256 + (g % 4) * 64 + rr * 4 + k];
                q = g < 4 ? byte & 15 : byte >> 4;
                if (hb) q |= (int)((hm[g] >> (rr * 4 + k)) & 1) << 4;
                if (l == L_Q4_0) q -= 8;
                else if (l == L_Q5_0) q -= 16;
                else if (l == L_IQ4_NL) q = qe_kvalues_iq4nl[q];
            }
            out[b * 32 + c] = lay_mbytes(l) ? d * (float)q + mn : d * (float)q; /* as to_float, signed zeros too */
        }
    }
}

/* --- tiles ------------------------------------------------------------------------------------------- */

#define INLINE static inline __attribute__((always_inline))

INLINE void store_tile(__m512 v, float *y, const float *bias, int accumulate, __mmask16 mk) {
    if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk, bias));
    if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk, y));
    _mm512_mask_storeu_ps(y, mk, v);
}

INLINE int32_t load_i32(const int8_t *p) { int32_t v; memcpy(&v, p, 4); return v; }

/* 16 rows x T tokens of a 32-block layout L over all nb blocks; G = the tokens' tiled activation group. */
INLINE void tile_q32(const int L, const int T, const uint8_t *P, int64_t nb, const uint8_t *G, float *y,
                     int64_t ldy, const float *bias, int accumulate, __mmask16 mk, int pf) {
    const int qb = lay_qbytes(L), hb = lay_hbytes(L);
    const uint8_t *Q = P, *H = P + nb * qb, *D = H + nb * hb, *M = D + nb * 32;
    const int oi = L == L_Q8_0 || L == L_IQ4_NL ? 0 : L == L_Q4_0 ? 1 : L == L_Q5_0 ? 2 : -1;
    const int8_t *XQ = (const int8_t *)G;
    const float *XD = (const float *)(G + nb * QE_ACT_TILE * 32), *XS = XD + nb * QE_ACT_TILE;
    const int32_t *NS = (const int32_t *)(XS + nb * QE_ACT_TILE) + (oi < 0 ? 0 : oi) * nb * QE_ACT_TILE;
    __m512 acc[TT];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    const __m512i lo4 = _mm512_set1_epi8(0x0F);
    const __m512i lut = _mm512_broadcast_i32x4(_mm_add_epi8(_mm_loadu_si128((const __m128i *)qe_kvalues_iq4nl), _mm_set1_epi8((char)0x80)));
    const __m512i b16 = _mm512_set1_epi8(16);
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *xq = XQ + b * QE_ACT_TILE * 32;
        if (pf) { /* this tile streams the panel from memory: ask for it ahead */
            const int ahead = L == L_Q8_0 ? PF_BLOCKS_Q8 : PF_BLOCKS_NIBBLE;
            qe_prefetch_lines(Q + (b + ahead) * qb, qb);
            qe_prefetch_lines(H + (b + ahead) * hb, hb);
            qe_prefetch_lines(D + (b + ahead) * 32, 32);
        }
        /* NC int32 chains per token, the tokens interleaved: 8 independent chains of vpdpbusd in all when T >= 4.
         * With fewer tokens one chain per token would be a serial chain of 8 vpdpbusd per block (latency ~5
         * each): decode would wait on it, so products go round-robin to NC chains, summed at the end (integer
         * sums: the same bits). (Two chains per token at T = 8 measured ~5 % slower: the extra add costs more
         * than the latency it hides.) Weights are widened one column-group pair at a time so few registers
         * hold them. */
        const int NC = T == 1 ? 4 : T <= 3 ? 2 : 1;
        __m512i s0[TT][4];
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            s0[t][0] = oi >= 0 ? _mm512_set1_epi32(NS[b * QE_ACT_TILE + t]) : _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int c = 1; c < NC; c++) s0[t][c] = _mm512_setzero_si512();
        }
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            __m512i wl, wh;
            if (L == L_Q8_0) {
                wl = _mm512_loadu_si512(Q + b * 512 + j * 64);
                wh = _mm512_loadu_si512(Q + b * 512 + (j + 4) * 64);
            } else {
                __m512i v = _mm512_loadu_si512(Q + b * 256 + j * 64);
                wl = _mm512_and_si512(v, lo4);
                wh = _mm512_and_si512(_mm512_srli_epi16(v, 4), lo4);
                if (L == L_IQ4_NL) { wl = _mm512_shuffle_epi8(lut, wl); wh = _mm512_shuffle_epi8(lut, wh); }
                if (L == L_Q5_0 || L == L_Q5_1) {
                    const uint64_t *hm = (const uint64_t *)(H + b * 64);
                    wl = _mm512_mask_add_epi8(wl, _cvtu64_mask64(hm[j]), wl, b16);
                    wh = _mm512_mask_add_epi8(wh, _cvtu64_mask64(hm[j + 4]), wh, b16);
                }
            }
            const int cl = (2 * j) % NC, ch = (2 * j + 1) % NC;
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) s0[t][cl] = _mm512_dpbusd_epi32(s0[t][cl], wl, _mm512_set1_epi32(load_i32(xq + t * 32 + 4 * j)));
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) s0[t][ch] = _mm512_dpbusd_epi32(s0[t][ch], wh, _mm512_set1_epi32(load_i32(xq + t * 32 + 4 * j + 16)));
        }
        __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(D + b * 32)));
        __m512 mw = _mm512_setzero_ps();
        if (L == L_Q4_1 || L == L_Q5_1) mw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(M + b * 32)));
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            __m512i si = NC == 4 ? _mm512_add_epi32(_mm512_add_epi32(s0[t][0], s0[t][1]), _mm512_add_epi32(s0[t][2], s0[t][3]))
                       : NC == 2 ? _mm512_add_epi32(s0[t][0], s0[t][1]) : s0[t][0];
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(si), _mm512_mul_ps(dw, _mm512_set1_ps(XD[b * QE_ACT_TILE + t])), acc[t]);
            if (L == L_Q4_1 || L == L_Q5_1) acc[t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(XS[b * QE_ACT_TILE + t]), acc[t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) store_tile(acc[t], y + (int64_t)t * ldy, bias, accumulate, mk);
}

/* 16 rows x T tokens of a k-quant layout over all nsb 32-column sub-blocks (the same VNNI scheme as
 * tile_q32, with per-sub-block weight scales built from the 256-block's d and the 6-bit/8-bit sub-scales). */
INLINE void tile_k(const int L, const int T, const uint8_t *P, int64_t nsb, const uint8_t *G, float *y,
                   int64_t ldy, const float *bias, int accumulate, __mmask16 mk, int pf) {
    const int64_t nb = nsb / 8;
    const uint8_t *C = P, *H = C + nsb * 256, *S = H + nsb * k_hbytes(L), *D = S + nsb * 32, *DM = D + nb * 32;
    const int8_t *XQ = (const int8_t *)G;
    const float *XD = (const float *)(G + nsb * QE_ACT_TILE * 32), *XS = XD + nsb * QE_ACT_TILE;
    const int32_t *NS0 = (const int32_t *)(XS + nsb * QE_ACT_TILE), *NS1 = NS0 + nsb * QE_ACT_TILE;
    __m512 acc[TT];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    const __m512i lo4 = _mm512_set1_epi8(0x0F), b16 = _mm512_set1_epi8(16), b32 = _mm512_set1_epi8(32);
    __m512 dK = _mm512_setzero_ps(), dmK = _mm512_setzero_ps();
    for (int64_t b = 0; b < nsb; b++) {
        if ((b & 7) == 0) {
            dK = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(D + (b >> 3) * 32)));
            if (L != L_Q6_K) dmK = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(DM + (b >> 3) * 32)));
        }
        const int8_t *xq = XQ + b * QE_ACT_TILE * 32;
        if (pf) {
            qe_prefetch_lines(C + (b + PF_BLOCKS_NIBBLE) * 256, 256);
            qe_prefetch_lines(H + (b + PF_BLOCKS_NIBBLE) * k_hbytes(L), k_hbytes(L));
            qe_prefetch_lines(S + (b + PF_BLOCKS_NIBBLE) * 32, 32);
        }
        __m512i s0[TT], s1[TT];
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            s0[t] = L == L_Q6_K ? _mm512_set1_epi32(NS0[b * QE_ACT_TILE + t]) : _mm512_setzero_si512();
            s1[t] = L == L_Q6_K ? _mm512_set1_epi32(NS1[b * QE_ACT_TILE + t]) : _mm512_setzero_si512();
        }
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            __m512i v = _mm512_loadu_si512(C + b * 256 + j * 64);
            __m512i wl = _mm512_and_si512(v, lo4), wh = _mm512_and_si512(_mm512_srli_epi16(v, 4), lo4);
            if (L != L_Q4_K) {
                const uint64_t *hm = (const uint64_t *)(H + b * k_hbytes(L));
                wl = _mm512_mask_add_epi8(wl, _cvtu64_mask64(hm[j]), wl, b16);
                wh = _mm512_mask_add_epi8(wh, _cvtu64_mask64(hm[j + 4]), wh, b16);
                if (L == L_Q6_K) {
                    wl = _mm512_mask_add_epi8(wl, _cvtu64_mask64(hm[8 + j]), wl, b32);
                    wh = _mm512_mask_add_epi8(wh, _cvtu64_mask64(hm[8 + j + 4]), wh, b32);
                }
            }
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) s0[t] = _mm512_dpbusd_epi32(s0[t], wl, _mm512_set1_epi32(load_i32(xq + t * 32 + 4 * j)));
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) s1[t] = _mm512_dpbusd_epi32(s1[t], wh, _mm512_set1_epi32(load_i32(xq + t * 32 + 4 * j + 16)));
        }
        if (L == L_Q6_K) {
            __m512 dw0 = _mm512_mul_ps(dK, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(S + b * 32)))));
            __m512 dw1 = _mm512_mul_ps(dK, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(S + b * 32 + 16)))));
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                __m512 dx = _mm512_set1_ps(XD[b * QE_ACT_TILE + t]);
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0[t]), _mm512_mul_ps(dw0, dx), acc[t]);
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1[t]), _mm512_mul_ps(dw1, dx), acc[t]);
            }
        } else {
            __m512 dw = _mm512_mul_ps(dK, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(S + b * 32)))));
            __m512 mw = _mm512_sub_ps(_mm512_setzero_ps(),
                                      _mm512_mul_ps(dmK, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(S + b * 32 + 16))))));
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                __m512i si = _mm512_add_epi32(s0[t], s1[t]);
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(si), _mm512_mul_ps(dw, _mm512_set1_ps(XD[b * QE_ACT_TILE + t])), acc[t]);
                acc[t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(XS[b * QE_ACT_TILE + t]), acc[t]);
            }
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) store_tile(acc[t], y + (int64_t)t * ldy, bias, accumulate, mk);
}

/* 16 rows x T tokens of a float layout over all columns; for T < 4 several accumulators per token hide the
 * FMA latency. */
INLINE __m512 load_wcol(const int L, const uint8_t *P, int64_t c) {
    if (L == L_F16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(P + c * 32)));
    if (L == L_BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(P + c * 32))), 16));
    return _mm512_loadu_ps((const float *)(P + c * 64));
}

INLINE void tile_f(const int L, const int T, const uint8_t *P, int64_t cols, const uint8_t *G, float *y,
                   int64_t ldy, const float *bias, int accumulate, __mmask16 mk, int pf) {
    const int U = T >= 4 ? 1 : T == 1 ? 4 : 2;
    const float *X = (const float *)G; /* X[c * 8 + t] */
    __m512 acc[TT][4];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++)
#pragma GCC unroll 4
        for (int u = 0; u < U; u++) acc[t][u] = _mm512_setzero_ps();
    int64_t c = 0;
    const int esz = L == L_F32 ? 64 : 32; /* bytes of one weight column of the panel */
    for (; c + U <= cols; c += U) {
        if (pf) qe_prefetch_lines(P + (c + PF_COLS_F * U) * esz, U * esz);
#pragma GCC unroll 4
        for (int u = 0; u < U; u++) {
            __m512 w = load_wcol(L, P, c + u);
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) acc[t][u] = _mm512_fmadd_ps(w, _mm512_set1_ps(X[(c + u) * QE_ACT_TILE + t]), acc[t][u]);
        }
    }
    for (; c < cols; c++) {
        __m512 w = load_wcol(L, P, c);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[t][0] = _mm512_fmadd_ps(w, _mm512_set1_ps(X[c * QE_ACT_TILE + t]), acc[t][0]);
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
        __m512 sm = acc[t][0];
#pragma GCC unroll 4
        for (int u = 1; u < U; u++) sm = _mm512_add_ps(sm, acc[t][u]);
        store_tile(sm, y + (int64_t)t * ldy, bias, accumulate, mk);
    }
}

/* Two panels (32 rows) x T tokens of a float layout, for prefill: each broadcast activation feeds two FMAs,
 * so 16 accumulators run at the FMA ports' rate instead of the load ports'. P2 = the second panel. */
INLINE void tile_f2(const int L, const int T, const uint8_t *P, const uint8_t *P2, int64_t cols, const uint8_t *G,
                    float *y, int64_t ldy, const float *bias, int accumulate, __mmask16 mk, __mmask16 mk2) {
    const float *X = (const float *)G;
    __m512 acc0[TT], acc1[TT];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) { acc0[t] = _mm512_setzero_ps(); acc1[t] = _mm512_setzero_ps(); }
    for (int64_t c = 0; c < cols; c++) {
        __m512 w0 = load_wcol(L, P, c), w1 = load_wcol(L, P2, c);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            __m512 xb = _mm512_set1_ps(X[c * QE_ACT_TILE + t]);
            acc0[t] = _mm512_fmadd_ps(w0, xb, acc0[t]);
            acc1[t] = _mm512_fmadd_ps(w1, xb, acc1[t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
        store_tile(acc0[t], y + (int64_t)t * ldy, bias, accumulate, mk);
        store_tile(acc1[t], y + (int64_t)t * ldy + PR, bias ? bias + PR : NULL, accumulate, mk2);
    }
}

#define TILE2_FN(name, L)                                                                                           \
    static void name(int T, const uint8_t *P, const uint8_t *P2, int64_t k, const uint8_t *G, float *y, int64_t ldy, \
                     const float *bias, int acc, __mmask16 mk, __mmask16 mk2) {                                     \
        switch (T) {                                                                                               \
        case 4: tile_f2(L, 4, P, P2, k, G, y, ldy, bias, acc, mk, mk2); break;                                     \
        case 5: tile_f2(L, 5, P, P2, k, G, y, ldy, bias, acc, mk, mk2); break;                                     \
        case 6: tile_f2(L, 6, P, P2, k, G, y, ldy, bias, acc, mk, mk2); break;                                     \
        case 7: tile_f2(L, 7, P, P2, k, G, y, ldy, bias, acc, mk, mk2); break;                                     \
        default: tile_f2(L, 8, P, P2, k, G, y, ldy, bias, acc, mk, mk2); break;                                    \
        }                                                                                                          \
    }
TILE2_FN(tiles2_f16, L_F16)
TILE2_FN(tiles2_bf16, L_BF16)
TILE2_FN(tiles2_f32, L_F32)

/* One function per layout with the token count dispatched to compile-time constants. */
#define TILE_FN(name, KIND, L)                                                                                      \
    static void name(int T, const uint8_t *P, int64_t k, const uint8_t *G, float *y, int64_t ldy,                   \
                     const float *bias, int acc, __mmask16 mk, int pf) {                                            \
        switch (T) {                                                                                               \
        case 1: KIND(L, 1, P, k, G, y, ldy, bias, acc, mk, pf); break;                                         \
        case 2: KIND(L, 2, P, k, G, y, ldy, bias, acc, mk, pf); break;                                         \
        case 3: KIND(L, 3, P, k, G, y, ldy, bias, acc, mk, pf); break;                                         \
        case 4: KIND(L, 4, P, k, G, y, ldy, bias, acc, mk, pf); break;                                         \
        case 5: KIND(L, 5, P, k, G, y, ldy, bias, acc, mk, pf); break;                                         \
        case 6: KIND(L, 6, P, k, G, y, ldy, bias, acc, mk, pf); break;                                         \
        case 7: KIND(L, 7, P, k, G, y, ldy, bias, acc, mk, pf); break;                                         \
        default: KIND(L, 8, P, k, G, y, ldy, bias, acc, mk, pf); break;                                        \
        }                                                                                                          \
    }
TILE_FN(tiles_q8_0, tile_q32, L_Q8_0)
TILE_FN(tiles_q4_0, tile_q32, L_Q4_0)
TILE_FN(tiles_q4_1, tile_q32, L_Q4_1)
TILE_FN(tiles_q5_0, tile_q32, L_Q5_0)
TILE_FN(tiles_q5_1, tile_q32, L_Q5_1)
TILE_FN(tiles_iq4_nl, tile_q32, L_IQ4_NL)
TILE_FN(tiles_q4_K, tile_k, L_Q4_K)
TILE_FN(tiles_q5_K, tile_k, L_Q5_K)
TILE_FN(tiles_q6_K, tile_k, L_Q6_K)
TILE_FN(tiles_f16, tile_f, L_F16)
TILE_FN(tiles_bf16, tile_f, L_BF16)
TILE_FN(tiles_f32, tile_f, L_F32)

typedef void (*tiles_fn)(int T, const uint8_t *P, int64_t k, const uint8_t *G, float *y, int64_t ldy,
                         const float *bias, int acc, __mmask16 mk, int pf);

static void mm_avx512(const qe_mat *m, const qe_act *a, int n, float *y, int64_t ldy, const float *bias,
                      int accumulate, int64_t r0, int64_t r1) {
    tiles_fn fn;
    int64_t k; /* blocks (32-block types) or columns (float types) */
    size_t pb;
    int l = m->layout;
    switch (l) {
    case L_Q8_0: fn = tiles_q8_0; break;
    case L_Q4_0: fn = tiles_q4_0; break;
    case L_Q4_1: fn = tiles_q4_1; break;
    case L_Q5_0: fn = tiles_q5_0; break;
    case L_Q5_1: fn = tiles_q5_1; break;
    case L_IQ4_NL: fn = tiles_iq4_nl; break;
    case L_Q4_K: fn = tiles_q4_K; break;
    case L_Q5_K: fn = tiles_q5_K; break;
    case L_Q6_K: fn = tiles_q6_K; break;
    case L_F16: fn = tiles_f16; break;
    case L_BF16: fn = tiles_bf16; break;
    case L_F32: fn = tiles_f32; break;
    default: QE_ASSERT(0); return;
    }
    if (l >= L_F16) { k = m->cols; pb = (size_t)m->cols * PR * (size_t)float_esize(l); }
    else if (l >= L_Q4_K) { k = m->cols / 32; pb = k_panel_bytes(l, k); }
    else { k = m->cols / 32; pb = q32_panel_bytes(l, k); }
    pb = (pb + 63) & ~(size_t)63;
    const uint8_t *packed = m->packed;
    QE_ASSERT(a->tiled && TT == QE_ACT_TILE);
    void (*fn2)(int, const uint8_t *, const uint8_t *, int64_t, const uint8_t *, float *, int64_t, const float *, int,
                __mmask16, __mmask16) = l == L_F16 ? tiles2_f16 : l == L_BF16 ? tiles2_bf16 : l == L_F32 ? tiles2_f32 : NULL;
    int64_t p0 = r0 / PR, p1 = (r1 + PR - 1) / PR;
    for (int tc = 0; tc < n; tc += TCHUNK) {
        int tn = n - tc < TCHUNK ? n - tc : TCHUNK;
        for (int64_t p = p0; p < p1; p++) {
            int64_t rlo = p * PR, rhi = rlo + PR < r1 ? rlo + PR : r1;
            __mmask16 mk = (__mmask16)((1u << (rhi - rlo)) - 1);
            const float *bp = bias ? bias + rlo : NULL;
            int pair = fn2 && p + 1 < p1; /* float layouts: two panels per tile where there are two */
            int64_t rhi2 = rhi + PR < r1 ? rhi + PR : r1;
            __mmask16 mk2 = pair ? (__mmask16)((1u << (rhi2 - rhi)) - 1) : 0;
            for (int t = tc; t < tc + tn; t += TT) {
                int T = tc + tn - t < TT ? tc + tn - t : TT;
                const uint8_t *G = a->base + (size_t)(t / QE_ACT_TILE) * a->tile_bytes;
                const int pf = QE_PF_STREAMED(t - tc, tn);
                if (pair && T >= 4)
                    fn2(T, packed + (size_t)p * pb, packed + (size_t)(p + 1) * pb, k, G, y + (int64_t)t * ldy + rlo, ldy,
                        bp, accumulate, mk, mk2);
                else {
                    fn(T, packed + (size_t)p * pb, k, G, y + (int64_t)t * ldy + rlo, ldy, bp, accumulate, mk, pf);
                    if (pair) fn(T, packed + (size_t)(p + 1) * pb, k, G, y + (int64_t)t * ldy + rhi, ldy,
                                 bias ? bias + rhi : NULL, accumulate, mk2, pf);
                }
            }
            p += pair;
        }
    }
}

/* --- activation quantisers (bit-identical to qe_quant_row_*_ref) -------------------------------------- */

/* f32 -> fp16 -> f32 through F16C: IEEE round-to-nearest-even like qe_fp32_to_fp16 (the tests hold them equal),
 * ~30x cheaper than the portable bit manipulation. */
static inline float round_fp16(float v) { return _cvtsh_ss(_cvtss_sh(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)); }

static void quant_q8_avx512(const float *x, int64_t cols, uint8_t *row) {
    int64_t nb = cols / 32, pad = (cols + 63) / 64 * 64;
    int8_t *qs = (int8_t *)row;
    float *d = (float *)(row + pad), *s = d + nb;
    int32_t *sum = (int32_t *)(s + nb);
    const __m512 signbit = _mm512_set1_ps(-0.0f);
    for (int64_t b = 0; b < nb; b++) {
        __m512 v0 = _mm512_loadu_ps(x + b * 32), v1 = _mm512_loadu_ps(x + b * 32 + 16);
        __m512 mx = _mm512_max_ps(_mm512_andnot_ps(signbit, v0), _mm512_andnot_ps(signbit, v1));
        float amax = _mm512_reduce_max_ps(mx);
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        __m512 vid = _mm512_set1_ps(id);
        __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid)), i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
        _mm_storeu_si128((__m128i *)(qs + b * 32), _mm512_cvtepi32_epi8(i0));
        _mm_storeu_si128((__m128i *)(qs + b * 32 + 16), _mm512_cvtepi32_epi8(i1));
        int32_t sm = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
        d[b] = round_fp16(amax / 127.0f);
        s[b] = round_fp16(amax / 127.0f * (float)sm);
        sum[b] = sm;
    }
    memset(qs + cols, 0, (size_t)(pad - cols));
}

/* After the four rounds, lane L holds vector (L % 4) * 4 + L / 4 (traced by hand-simulating the shuffles);
 * this index vector gathers vector i into lane i. */
static inline __m512i hred16_perm(void) { return _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15); }
/* Lane i of the result = max (or integer sum) of the 16 lanes of v[i]: a transposing reduction, 4 shuffle
 * rounds, instead of 16 separate horizontal reductions. The lane order comes out permuted; a final
 * permutation puts vector i in lane i. */
#define HRED16(NAME, T, OP, SH4, SHPS, CAST_IN, CAST_OUT)                                                            \
    static inline T NAME(T *v) {                                                                                   \
        __m512 a[16];                                                                                              \
        for (int i = 0; i < 16; i++) a[i] = CAST_IN(v[i]);                                                         \
        __m512 t[8], u[4], w[2];                                                                                   \
        for (int k = 0; k < 8; k++)                                                                                \
            t[k] = OP(_mm512_shuffle_f32x4(a[2 * k], a[2 * k + 1], 0x44), _mm512_shuffle_f32x4(a[2 * k], a[2 * k + 1], 0xEE)); \
        for (int k = 0; k < 4; k++)                                                                                \
            u[k] = OP(_mm512_shuffle_f32x4(t[2 * k], t[2 * k + 1], 0x88), _mm512_shuffle_f32x4(t[2 * k], t[2 * k + 1], 0xDD)); \
        for (int k = 0; k < 2; k++)                                                                                \
            w[k] = OP(_mm512_shuffle_ps(u[2 * k], u[2 * k + 1], 0x44), _mm512_shuffle_ps(u[2 * k], u[2 * k + 1], 0xEE)); \
        __m512 r = OP(_mm512_shuffle_ps(w[0], w[1], 0x88), _mm512_shuffle_ps(w[0], w[1], 0xDD));                    \
        return CAST_OUT(_mm512_permutexvar_ps(hred16_perm(), r));                                                  \
    }
static inline __m512 max_ps_(__m512 a, __m512 b) { return _mm512_max_ps(a, b); }
static inline __m512 add_epi32_(__m512 a, __m512 b) {
    return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(a), _mm512_castps_si512(b)));
}
static inline __m512 id_ps_(__m512 a) { return a; }
HRED16(hmax16x16, __m512, max_ps_, 0, 0, id_ps_, id_ps_)
HRED16(hsum16x16_epi32_ps, __m512, add_epi32_, 0, 0, id_ps_, id_ps_)
static inline __m512i hsum16x16_epi32(__m512i *v) {
    __m512 a[16];
    for (int i = 0; i < 16; i++) a[i] = _mm512_castsi512_ps(v[i]);
    return _mm512_castps_si512(hsum16x16_epi32_ps(a));
}

/* q8_K into the tiled layout: the scale comes from the first element of largest magnitude (sign kept),
 * iscale = -127/max, q = min(127, round-to-nearest-even(iscale * x)), d = 1/iscale — as qe_quant_row_q8k_ref. */
static void quant_q8k_tiled(const float *x, int64_t cols, uint8_t *group, int slot) {
    int64_t nsb = cols / 32;
    int8_t *qs = (int8_t *)group;
    float *gd = (float *)(group + nsb * QE_ACT_TILE * 32), *gs = gd + nsb * QE_ACT_TILE;
    int32_t *ns = (int32_t *)(gs + nsb * QE_ACT_TILE);
    const __m512 signbit = _mm512_set1_ps(-0.0f);
    for (int64_t b = 0; b < cols / 256; b++) {
        const float *xb = x + b * 256;
        __m512 v[16], mx = _mm512_setzero_ps();
        for (int i = 0; i < 16; i++) {
            v[i] = _mm512_loadu_ps(xb + i * 16);
            mx = _mm512_max_ps(mx, _mm512_andnot_ps(signbit, v[i]));
        }
        float amax = _mm512_reduce_max_ps(mx), d = 0;
        int32_t bs[16] = {0};
        if (amax == 0) {
            for (int sb = 0; sb < 8; sb++) memset(qs + ((b * 8 + sb) * QE_ACT_TILE + slot) * 32, 0, 32);
        } else {
            float max = 0;
            for (int i = 0; i < 16; i++) { /* first element with |x| == amax */
                __mmask16 e = _mm512_cmp_ps_mask(_mm512_andnot_ps(signbit, v[i]), _mm512_set1_ps(amax), _CMP_EQ_OQ);
                if (e) { max = xb[i * 16 + __builtin_ctz(e)]; break; }
            }
            float iscale = -127.f / max;
            __m512 vs = _mm512_set1_ps(iscale);
            for (int i = 0; i < 16; i++) {
                __m512i q = _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(vs, v[i])), _mm512_set1_epi32(127));
                bs[i] = _mm512_reduce_add_epi32(q);
                _mm_storeu_si128((__m128i *)(qs + ((b * 8 + i / 2) * QE_ACT_TILE + slot) * 32 + (i & 1) * 16), _mm512_cvtepi32_epi8(q));
            }
            d = 1 / iscale;
        }
        for (int sb = 0; sb < 8; sb++) {
            int64_t i = (b * 8 + sb) * QE_ACT_TILE + slot;
            gd[i] = d;
            gs[i] = d * (float)(bs[2 * sb] + bs[2 * sb + 1]);
            ns[i] = -32 * bs[2 * sb];
            ns[nsb * QE_ACT_TILE + i] = -32 * bs[2 * sb + 1];
        }
    }
}

static void quant_tiled_avx512(const float *x, int64_t cols, int fmt, int rounding, uint8_t *group, int slot) {
    if (fmt == QE_ACT_Q8K) { quant_q8k_tiled(x, cols, group, slot); return; }
    if (fmt == QE_ACT_F32) {
        float *o = (float *)group + slot;
        int64_t c = 0;
        const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                               _mm512_set1_epi32(QE_ACT_TILE));
        if (rounding != QE_ROUND_BF16)
            for (; c + 16 <= cols; c += 16) {
                __m512 v = _mm512_loadu_ps(x + c);
                if (rounding == QE_ROUND_F16) v = _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
                _mm512_i32scatter_ps(o + c * QE_ACT_TILE, idx, v, 4);
            }
        for (; c < cols; c++)
            o[c * QE_ACT_TILE] = rounding == QE_ROUND_F16 ? qe_fp16_to_fp32(qe_fp32_to_fp16(x[c]))
                               : rounding == QE_ROUND_BF16 ? qe_bf16_to_fp32(qe_fp32_to_bf16(x[c])) : x[c];
        return;
    }
    int64_t nb = cols / 32, b = 0;
    int8_t *qs = (int8_t *)group;
    float *gd = (float *)(group + nb * QE_ACT_TILE * 32), *gs = gd + nb * QE_ACT_TILE;
    int32_t *ns = (int32_t *)(gs + nb * QE_ACT_TILE);
    const __m512 signbit = _mm512_set1_ps(-0.0f);
    /* 16 blocks at a time: the per-block maxima and sums come out of one transposing reduction each, the
     * divisions and fp16 roundings run on 16 lanes; every value is computed by the same IEEE operations as the
     * scalar loop below (max and integer sums are exact in any order), so the results are bit-identical. */
    for (; b + 16 <= nb; b += 16) {
        __m512 m[16];
        for (int i = 0; i < 16; i++)
            m[i] = _mm512_max_ps(_mm512_andnot_ps(signbit, _mm512_loadu_ps(x + (b + i) * 32)),
                                 _mm512_andnot_ps(signbit, _mm512_loadu_ps(x + (b + i) * 32 + 16)));
        __m512 amax = hmax16x16(m);
        __mmask16 nz = _mm512_cmp_ps_mask(amax, _mm512_setzero_ps(), _CMP_NEQ_OQ);
        __m512 dv = _mm512_div_ps(amax, _mm512_set1_ps(127.0f));
        float id[16], dround[16], dexact[16];
        _mm512_storeu_ps(id, _mm512_maskz_div_ps(nz, _mm512_set1_ps(127.0f), amax));
        _mm512_storeu_ps(dexact, dv);
        _mm512_storeu_ps(dround, _mm512_cvtph_ps(_mm512_cvtps_ph(dv, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
        __m512i sums[16];
        for (int i = 0; i < 16; i++) {
            __m512 vid = _mm512_set1_ps(id[i]);
            __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + (b + i) * 32), vid));
            __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + (b + i) * 32 + 16), vid));
            int8_t *q = qs + ((b + i) * QE_ACT_TILE + slot) * 32;
            _mm_storeu_si128((__m128i *)q, _mm512_cvtepi32_epi8(i0));
            _mm_storeu_si128((__m128i *)(q + 16), _mm512_cvtepi32_epi8(i1));
            sums[i] = _mm512_add_epi32(i0, i1);
        }
        __m512i sm = hsum16x16_epi32(sums);
        float sround[16];
        int32_t smv[16];
        _mm512_storeu_ps(sround, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_mul_ps(_mm512_loadu_ps(dexact), _mm512_cvtepi32_ps(sm)),
                                                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
        _mm512_storeu_si512(smv, sm);
        for (int i = 0; i < 16; i++) {
            gd[(b + i) * QE_ACT_TILE + slot] = dround[i];
            gs[(b + i) * QE_ACT_TILE + slot] = sround[i];
            ns[(0 * nb + b + i) * QE_ACT_TILE + slot] = -128 * smv[i];
            ns[(1 * nb + b + i) * QE_ACT_TILE + slot] = -8 * smv[i];
            ns[(2 * nb + b + i) * QE_ACT_TILE + slot] = -16 * smv[i];
        }
    }
    for (; b < nb; b++) {
        __m512 v0 = _mm512_loadu_ps(x + b * 32), v1 = _mm512_loadu_ps(x + b * 32 + 16);
        __m512 mx = _mm512_max_ps(_mm512_andnot_ps(signbit, v0), _mm512_andnot_ps(signbit, v1));
        float amax = _mm512_reduce_max_ps(mx);
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        __m512 vid = _mm512_set1_ps(id);
        __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid)), i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
        int8_t *q = qs + (b * QE_ACT_TILE + slot) * 32;
        _mm_storeu_si128((__m128i *)q, _mm512_cvtepi32_epi8(i0));
        _mm_storeu_si128((__m128i *)(q + 16), _mm512_cvtepi32_epi8(i1));
        int32_t sm = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
        gd[b * QE_ACT_TILE + slot] = round_fp16(amax / 127.0f);
        gs[b * QE_ACT_TILE + slot] = round_fp16(amax / 127.0f * (float)sm);
        ns[(0 * nb + b) * QE_ACT_TILE + slot] = -128 * sm;
        ns[(1 * nb + b) * QE_ACT_TILE + slot] = -8 * sm;
        ns[(2 * nb + b) * QE_ACT_TILE + slot] = -16 * sm;
    }
}

static void quant_f32_avx512(const float *x, int64_t cols, int rounding, uint8_t *row) {
    float *o = (float *)row;
    int64_t i = 0;
    if (rounding == QE_ROUND_F16)
        for (; i + 16 <= cols; i += 16)
            _mm512_storeu_ps(o + i, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    else if (rounding == QE_ROUND_NONE)
        for (; i + 16 <= cols; i += 16) _mm512_storeu_ps(o + i, _mm512_loadu_ps(x + i));
    if (i < cols) qe_quant_row_f32_ref(x + i, cols - i, rounding, row + i * 4);
}

static const qe_kernel_set set_avx512 = {
    .name = "avx512-vnni",
    .row_align = PR,
    .pack = pack_avx512,
    .mm = mm_avx512,
    .quant_q8 = quant_q8_avx512,
    .quant_f32 = quant_f32_avx512,
    .quant_tiled = quant_tiled_avx512,
    .row_f32 = row_f32_avx512,
    .rmsnorm = qe_avx512_rmsnorm,
    .swiglu = qe_avx512_swiglu,
    .f32_to_f16_row = qe_avx512_f32_to_f16_row,
    .attention = qe_avx512_attention,
};

const qe_kernel_set *qe_kernels_avx512(void) { return &set_avx512; }
