/* panel.c — packing weights into the panels of panel.h (any rows per panel), and reading one row back (portable
 * C). The block layouts come from the traits (quant.h): a 32-weight type's codes, fifth bits, scale and min are
 * copied as they are; a k-quant is read through its unpacker. */
#include "kernels/panel.h"

#include <string.h>

#include "base.h"
#include "kernels/kern.h"
#include "quant.h"

static inline void set_bit(uint8_t *mask, int i) { mask[i / 8] |= (uint8_t)(1u << (i % 8)); }
static inline int get_bit(const uint8_t *mask, int i) { return (mask[i / 8] >> (i % 8)) & 1; }

/* Row rr of a panel, 32-weight block type: column group g's 4 weights of row r are bytes 4r..4r+3 of a group of
 * 4R bytes; masks are 4R bits, bit 4r + k. */
static void pack_q32_row(const qe_type_traits *tr, int type, int R, int q8_unsigned, const uint8_t *row, int64_t nb,
                         int rr, uint8_t *P) {
    const qe_block32 *b32 = tr->b32;
    int qb = qe_panel_qbytes(R, type), hb = qe_panel_hbytes(R, type);
    uint8_t *Q = P, *H = P + nb * qb, *D = H + nb * hb, *M = D + nb * 2 * R;
    const uint32_t flip = q8_unsigned ? 0x80808080u : 0; /* + 128 = flip the sign bits */
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = row + (size_t)b * tr->type_size, *qs = blk + b32->qs_off;
        uint8_t *q = Q + b * qb;
        if (b32->bits == 8)
            for (int g = 0; g < 8; g++) { /* 4 weights at a time */
                uint32_t w4;
                memcpy(&w4, qs + 4 * g, 4);
                w4 ^= flip;
                memcpy(q + g * 4 * R + rr * 4, &w4, 4);
            }
        else
            for (int j = 0; j < 4; j++) memcpy(q + j * 4 * R + rr * 4, qs + 4 * j, 4);
        memcpy(D + b * 2 * R + rr * 2, blk, 2);
        if (b32->has_min) memcpy(M + b * 2 * R + rr * 2, blk + 2, 2);
        if (b32->bits == 5) {
            uint32_t qh;
            memcpy(&qh, blk + b32->qh_off, 4);
            for (int g = 0; g < 8; g++)
                for (int k = 0; k < 4; k++)
                    if ((qh >> (4 * g + k)) & 1) set_bit(H + b * hb + g * (R / 2), rr * 4 + k);
        }
    }
}

/* Row rr of a panel, k-quant: per 32-column sub-block the nibbles, the fifth/sixth bits, the two sub-scales. */
static void pack_k_row(const qe_type_traits *tr, int type, int R, const uint8_t *row, int64_t cols, int rr, uint8_t *P) {
    int64_t nsb = cols / 32, nb = cols / 256;
    int hb = qe_panel_hbytes(R, type), mins = qe_panel_has_min(type);
    uint8_t *C = P, *H = C + nsb * 16 * R, *S = H + nsb * hb, *D = S + nsb * 2 * R, *DM = D + nb * 2 * R;
    for (int64_t b = 0; b < nb; b++) {
        int q[256], sc[16], mn[16];
        float d, dmin;
        tr->unpack_k(row + (size_t)b * tr->type_size, q, sc, mn, &d, &dmin);
        uint16_t dh = qe_fp32_to_fp16(d), mh = qe_fp32_to_fp16(dmin); /* exact: they were fp16 */
        memcpy(D + b * 2 * R + rr * 2, &dh, 2);
        if (mins) memcpy(DM + b * 2 * R + rr * 2, &mh, 2);
        for (int s8 = 0; s8 < 8; s8++) {
            int64_t sb = b * 8 + s8;
            const int *qs = q + s8 * 32;
            for (int j = 0; j < 4; j++)
                for (int k = 0; k < 4; k++)
                    C[sb * 16 * R + j * 4 * R + rr * 4 + k] = (uint8_t)((qs[4 * j + k] & 15) | ((qs[16 + 4 * j + k] & 15) << 4));
            for (int g = 0; g < 8 && hb; g++)
                for (int k = 0; k < 4; k++) {
                    if ((qs[4 * g + k] >> 4) & 1) set_bit(H + sb * hb + g * (R / 2), rr * 4 + k);
                    if (hb > 4 * R && (qs[4 * g + k] >> 5) & 1) set_bit(H + sb * hb + (8 + g) * (R / 2), rr * 4 + k);
                }
            /* with mins: scale and min of the 32 columns; without (q6_K): the scales of its two 16-column halves */
            S[sb * 2 * R + rr] = (uint8_t)sc[2 * s8];
            S[sb * 2 * R + R + rr] = (uint8_t)(mins ? mn[2 * s8] : sc[2 * s8 + 1]);
        }
    }
}

int qe_panel_pack(qe_mat *m, const qe_panel_kernels *pk, const qe_kernel_set *owner) {
    const int R = pk->rows, type = m->type;
    const qe_type_traits *tr = qe_type_traits_get(type);
    if (!tr || !pk->tiles[type]) return 0; /* e.g. q2_K, q3_K: the reference path reads the original rows */
    int64_t rows = m->rows, cols = m->cols, np = (rows + R - 1) / R;
    size_t pb = qe_panel_bytes(R, type, cols), total = pb * (size_t)np, rb = qe_row_size(type, cols);
    uint8_t *dst = qe_kern_packed_alloc(total);
    if (!dst) return -1;
    const uint8_t *src = m->data;
    const int64_t per_release = 1024 / R; /* the source is given back 1024 rows at a time */
    for (int64_t p = 0; p < np; p++) {
        uint8_t *P = dst + (size_t)p * pb;
        /* padding rows of the last panel: zero codes and zero scales contribute nothing; the masks are OR-ed */
        if ((p + 1) * R > rows || qe_panel_hbytes(R, type) || qe_panel_is_k(type)) memset(P, 0, pb);
        if (p % per_release == per_release - 1)
            qe_kern_release_source(src + (size_t)(p + 1 - per_release) * R * rb, (size_t)per_release * R * rb);
        for (int rr = 0; rr < R && p * R + rr < rows; rr++) {
            const uint8_t *row = src + (size_t)(p * R + rr) * rb;
            if (tr->unpack_k) pack_k_row(tr, type, R, row, cols, rr, P);
            else if (tr->b32) pack_q32_row(tr, type, R, pk->q8_unsigned, row, cols / 32, rr, P);
            else {
                size_t es = tr->type_size;
                for (int64_t c = 0; c < cols; c++) memcpy(P + ((size_t)c * R + rr) * es, row + (size_t)c * es, es);
            }
        }
    }
    m->packed = dst;
    m->packed_bytes = total;
    m->packer = owner;
    return 0;
}

/* The expressions are to_float's (quant.c), so the values are identical, signed zeros included. */
void qe_panel_row_f32(const qe_panel_kernels *pk, const qe_mat *m, int64_t row, float *out) {
    const int R = pk->rows, type = m->type;
    const qe_type_traits *tr = qe_type_traits_get(type);
    int64_t cols = m->cols, p = row / R;
    int rr = (int)(row % R);
    const uint8_t *P = (const uint8_t *)m->packed + (size_t)p * qe_panel_bytes(R, type, cols);
    if (qe_panel_is_float(type)) {
        for (int64_t c = 0; c < cols; c++) tr->to_float(P + ((size_t)c * R + rr) * tr->type_size, &out[c], 1);
        return;
    }
    if (tr->unpack_k) {
        int64_t nsb = cols / 32, nb = cols / 256;
        int hb = qe_panel_hbytes(R, type), mins = qe_panel_has_min(type);
        const uint8_t *C = P, *H = C + nsb * 16 * R, *S = H + nsb * hb, *D = S + nsb * 2 * R, *DM = D + nb * 2 * R;
        for (int64_t sb = 0; sb < nsb; sb++) {
            uint16_t dh, mh = 0;
            memcpy(&dh, D + (sb / 8) * 2 * R + rr * 2, 2);
            if (mins) memcpy(&mh, DM + (sb / 8) * 2 * R + rr * 2, 2);
            float d = qe_fp16_to_fp32(dh), dmin = qe_fp16_to_fp32(mh);
            for (int c = 0; c < 32; c++) {
                int g = c / 4, k = c % 4;
                uint8_t byte = C[sb * 16 * R + (g % 4) * 4 * R + rr * 4 + k];
                int q = g < 4 ? byte & 15 : byte >> 4;
                if (hb) q |= get_bit(H + sb * hb + g * (R / 2), rr * 4 + k) << 4;
                if (hb > 4 * R) q |= get_bit(H + sb * hb + (8 + g) * (R / 2), rr * 4 + k) << 5;
                int sc = mins ? S[sb * 2 * R + rr] : (int8_t)S[sb * 2 * R + (c / 16) * R + rr];
                int mn = mins ? S[sb * 2 * R + R + rr] : 0;
                out[sb * 32 + c] = d * (float)sc * (float)(q - tr->k_zero) - dmin * (float)mn;
            }
        }
        return;
    }
    const qe_block32 *b32 = tr->b32;
    int64_t nb = cols / 32;
    int qb = qe_panel_qbytes(R, type), hb = qe_panel_hbytes(R, type);
    const uint8_t *Q = P, *H = Q + nb * qb, *D = H + nb * hb, *M = D + nb * 2 * R;
    for (int64_t b = 0; b < nb; b++) {
        uint16_t dh, mh = 0;
        memcpy(&dh, D + b * 2 * R + rr * 2, 2);
        if (b32->has_min) memcpy(&mh, M + b * 2 * R + rr * 2, 2);
        float d = qe_fp16_to_fp32(dh), mn = qe_fp16_to_fp32(mh);
        for (int c = 0; c < 32; c++) {
            int g = c / 4, k = c % 4, q;
            if (b32->bits == 8) {
                uint8_t byte = Q[b * qb + g * 4 * R + rr * 4 + k];
                q = pk->q8_unsigned ? (int)byte - 128 : (int8_t)byte;
            } else {
                uint8_t byte = Q[b * qb + (g % 4) * 4 * R + rr * 4 + k];
                q = g < 4 ? byte & 15 : byte >> 4;
                if (hb) q |= get_bit(H + b * hb + g * (R / 2), rr * 4 + k) << 4;
                q = b32->codebook ? b32->codebook[q] : q - b32->zero;
            }
            out[b * 32 + c] = b32->has_min ? d * (float)q + mn : d * (float)q;
        }
    }
}
