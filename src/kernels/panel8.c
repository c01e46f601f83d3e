/* panel8.c — packing weights into the 8-row panels of panel8.h, and reading one row back (portable C). */
#include "kernels/panel8.h"

#include <string.h>

#include "base.h"
#include "kernels/kern.h"
#include "quant.h"

static int q32_layout(int type) {
    switch (type) {
    case QE_TYPE_Q8_0: return P8_Q8_0;
    case QE_TYPE_Q4_0: return P8_Q4_0;
    case QE_TYPE_Q4_1: return P8_Q4_1;
    case QE_TYPE_Q5_0: return P8_Q5_0;
    case QE_TYPE_Q5_1: return P8_Q5_1;
    case QE_TYPE_IQ4_NL: return P8_IQ4_NL;
    default: return 0;
    }
}

int qe_panel8_pack(qe_mat *m, int tag_base) {
    int64_t rows = m->rows, cols = m->cols, np = (rows + P8_ROWS - 1) / P8_ROWS;
    int l = q32_layout(m->type);
    if (!l) {
        if (m->type == QE_TYPE_F16) l = P8_F16;
        else if (m->type == QE_TYPE_BF16) l = P8_BF16;
        else if (m->type == QE_TYPE_F32) l = P8_F32;
        else if (m->type == QE_TYPE_Q4_K) l = P8_Q4_K;
        else if (m->type == QE_TYPE_Q5_K) l = P8_Q5_K;
        else if (m->type == QE_TYPE_Q6_K) l = P8_Q6_K;
        else return 0; /* q2_K, q3_K: reference path */
    }
    size_t pb = p8_panel_bytes(l, cols), total = pb * (size_t)np;
    uint8_t *dst = qe_kern_packed_alloc(total);
    if (!dst) return -1;
    size_t rb = qe_row_size(m->type, cols);
    const uint8_t *src = m->data;
    for (int64_t p = 0; p < np; p++) {
        uint8_t *P = dst + (size_t)p * pb;
        if ((p + 1) * P8_ROWS > rows || l == P8_Q5_0 || l == P8_Q5_1 || p8_is_k(l)) memset(P, 0, pb); /* padding rows; OR-ed masks */
        if ((p & 127) == 127) qe_kern_release_source(src + (size_t)(p - 127) * P8_ROWS * rb, (size_t)128 * P8_ROWS * rb);
        for (int rr = 0; rr < P8_ROWS && p * P8_ROWS + rr < rows; rr++) {
            const uint8_t *row = src + (size_t)(p * P8_ROWS + rr) * rb;
            if (p8_is_k(l)) {
                int64_t nsb = cols / 32, nb = cols / 256;
                uint8_t *C = P, *H = C + nsb * 128, *S = H + nsb * p8_k_hbytes(l), *D = S + nsb * 16, *DM = D + nb * 16;
                size_t bb = rb / (size_t)nb;
                for (int64_t b = 0; b < nb; b++) {
                    int q[256], sc[16], mn[16];
                    float d, dmin;
                    qe_type_traits_get(m->type)->unpack_k(row + b * bb, q, sc, mn, &d, &dmin);
                    uint16_t dh = qe_fp32_to_fp16(d), mh = qe_fp32_to_fp16(dmin); /* exact: they were fp16 */
                    memcpy(D + b * 16 + rr * 2, &dh, 2);
                    if (l != P8_Q6_K) memcpy(DM + b * 16 + rr * 2, &mh, 2);
                    for (int s8 = 0; s8 < 8; s8++) {
                        int64_t sb = b * 8 + s8;
                        const int *qs = q + s8 * 32;
                        for (int j = 0; j < 4; j++)
                            for (int k = 0; k < 4; k++)
                                C[sb * 128 + j * 32 + rr * 4 + k] = (uint8_t)((qs[4 * j + k] & 15) | ((qs[16 + 4 * j + k] & 15) << 4));
                        uint32_t *hm = (uint32_t *)(H + sb * p8_k_hbytes(l));
                        for (int g = 0; g < 8 && l != P8_Q4_K; g++)
                            for (int k = 0; k < 4; k++) {
                                hm[g] |= (uint32_t)((qs[4 * g + k] >> 4) & 1) << (rr * 4 + k);
                                if (l == P8_Q6_K) hm[8 + g] |= (uint32_t)((qs[4 * g + k] >> 5) & 1) << (rr * 4 + k);
                            }
                        S[sb * 16 + rr] = (uint8_t)(l == P8_Q6_K ? (uint8_t)(int8_t)sc[2 * s8] : (uint8_t)sc[2 * s8]);
                        S[sb * 16 + 8 + rr] = (uint8_t)(l == P8_Q6_K ? (uint8_t)(int8_t)sc[2 * s8 + 1] : (uint8_t)mn[2 * s8]);
                    }
                }
                continue;
            }
            if (p8_is_float(l)) {
                int es = p8_float_esize(l);
                for (int64_t c = 0; c < cols; c++) memcpy(P + ((size_t)c * P8_ROWS + rr) * es, row + (size_t)c * es, es);
                continue;
            }
            int64_t nb = cols / 32;
            int qb = p8_qbytes(l), hb = p8_hbytes(l);
            uint8_t *Q = P, *H = P + nb * qb, *D = H + nb * hb, *M = D + nb * 16;
            for (int64_t b = 0; b < nb; b++) {
                uint8_t *q = Q + b * qb;
                const uint8_t *qs, *qhp = NULL, *dp, *mp = NULL;
                switch (l) {
                case P8_Q8_0: { const block_q8_0 *x = (const block_q8_0 *)row + b;
                    for (int g = 0; g < 8; g++) memcpy(q + g * 32 + rr * 4, x->qs + 4 * g, 4);
                    memcpy(D + b * 16 + rr * 2, &x->d, 2);
                    continue; }
                case P8_Q4_0: case P8_IQ4_NL: { const block_q4_0 *x = (const block_q4_0 *)row + b; qs = x->qs; dp = (const uint8_t *)&x->d; break; }
                case P8_Q4_1: { const block_q4_1 *x = (const block_q4_1 *)row + b; qs = x->qs; dp = (const uint8_t *)&x->d; mp = (const uint8_t *)&x->m; break; }
                case P8_Q5_0: { const block_q5_0 *x = (const block_q5_0 *)row + b; qs = x->qs; qhp = x->qh; dp = (const uint8_t *)&x->d; break; }
                default: { const block_q5_1 *x = (const block_q5_1 *)row + b; qs = x->qs; qhp = x->qh; dp = (const uint8_t *)&x->d; mp = (const uint8_t *)&x->m; break; }
                }
                for (int j = 0; j < 4; j++) memcpy(q + j * 32 + rr * 4, qs + 4 * j, 4);
                memcpy(D + b * 16 + rr * 2, dp, 2);
                if (mp) memcpy(M + b * 16 + rr * 2, mp, 2);
                if (qhp) {
                    uint32_t qh, *hm = (uint32_t *)(H + b * 32);
                    memcpy(&qh, qhp, 4);
                    for (int g = 0; g < 8; g++)
                        for (int k = 0; k < 4; k++) hm[g] |= ((qh >> (4 * g + k)) & 1u) << (rr * 4 + k);
                }
            }
        }
    }
    m->packed = dst;
    m->packed_bytes = total;
    m->layout = tag_base + l;
    return 0;
}

void qe_panel8_row_f32(const qe_mat *m, int64_t row, float *out) {
    int l = m->layout % 100;
    int64_t cols = m->cols, p = row / P8_ROWS;
    int rr = (int)(row % P8_ROWS);
    const uint8_t *P = (const uint8_t *)m->packed + (size_t)p * p8_panel_bytes(l, cols);
    if (p8_is_k(l)) {
        int64_t nsb = cols / 32, nb = cols / 256;
        const uint8_t *C = P, *H = C + nsb * 128, *S = H + nsb * p8_k_hbytes(l), *D = S + nsb * 16, *DM = D + nb * 16;
        for (int64_t sb = 0; sb < nsb; sb++) {
            uint16_t dh, mh = 0;
            memcpy(&dh, D + (sb / 8) * 16 + rr * 2, 2);
            if (l != P8_Q6_K) memcpy(&mh, DM + (sb / 8) * 16 + rr * 2, 2);
            float d = qe_fp16_to_fp32(dh), dmin = qe_fp16_to_fp32(mh);
            const uint32_t *hm = (const uint32_t *)(H + sb * p8_k_hbytes(l));
            for (int c = 0; c < 32; c++) {
                int g = c / 4, k = c % 4;
                uint8_t byte = C[sb * 128 + (g % 4) * 32 + rr * 4 + k];
                int q = g < 4 ? byte & 15 : byte >> 4;
                if (l != P8_Q4_K) q |= (int)((hm[g] >> (rr * 4 + k)) & 1) << 4;
                if (l == P8_Q6_K) q |= (int)((hm[8 + g] >> (rr * 4 + k)) & 1) << 5;
                if (l == P8_Q6_K) out[sb * 32 + c] = d * (float)(int8_t)S[sb * 16 + (c / 16) * 8 + rr] * (float)(q - 32);
                else out[sb * 32 + c] = d * (float)S[sb * 16 + rr] * (float)q - dmin * (float)S[sb * 16 + 8 + rr];
            }
        }
        return;
    }
    if (p8_is_float(l)) {
        for (int64_t c = 0; c < cols; c++) {
            uint16_t h;
            if (l == P8_F32) memcpy(&out[c], P + (c * P8_ROWS + rr) * 4, 4);
            else { memcpy(&h, P + (c * P8_ROWS + rr) * 2, 2); out[c] = l == P8_F16 ? qe_fp16_to_fp32(h) : qe_bf16_to_fp32(h); }
        }
        return;
    }
    int64_t nb = cols / 32;
    int qb = p8_qbytes(l), hb = p8_hbytes(l);
    const uint8_t *Q = P, *H = Q + nb * qb, *D = H + nb * hb, *M = D + nb * 16;
    for (int64_t b = 0; b < nb; b++) {
        uint16_t dh, mh = 0;
        memcpy(&dh, D + b * 16 + rr * 2, 2);
        if (p8_mbytes(l)) memcpy(&mh, M + b * 16 + rr * 2, 2);
        float d = qe_fp16_to_fp32(dh), mn = qe_fp16_to_fp32(mh);
        const uint32_t *hm = (const uint32_t *)(H + b * 32);
        for (int c = 0; c < 32; c++) {
            int g = c / 4, k = c % 4, q;
            if (l == P8_Q8_0) q = (int8_t)Q[b * 256 + g * 32 + rr * 4 + k];
            else {
                uint8_t byte = Q[b * 128 + (g % 4) * 32 + rr * 4 + k];
                q = g < 4 ? byte & 15 : byte >> 4;
                if (hb) q |= (int)((hm[g] >> (rr * 4 + k)) & 1) << 4;
                if (l == P8_Q4_0) q -= 8;
                else if (l == P8_Q5_0) q -= 16;
                else if (l == P8_IQ4_NL) q = qe_kvalues_iq4nl[q];
            }
            out[b * 32 + c] = p8_mbytes(l) ? d * (float)q + mn : d * (float)q; /* as to_float, signed zeros too */
        }
    }
}

void qe_panel8_mm(const qe_mat *m, int l, const qe_panel8_tile_fn tiles[P8_N_LAYOUTS], const qe_act *a, int n,
                  float *y, int64_t ldy, const float *bias, int accumulate, int64_t r0, int64_t r1) {
    enum { TCHUNK = 64 };
    QE_ASSERT(l > 0 && l < P8_N_LAYOUTS && tiles[l] && a->tiled);
    qe_panel8_tile_fn fn = tiles[l];
    int64_t k = p8_is_float(l) ? m->cols : m->cols / 32;
    size_t pb = p8_panel_bytes(l, m->cols);
    const uint8_t *packed = m->packed;
    for (int tc = 0; tc < n; tc += TCHUNK) {
        int tn = n - tc < TCHUNK ? n - tc : TCHUNK;
        for (int64_t p = r0 / P8_ROWS; p < (r1 + P8_ROWS - 1) / P8_ROWS; p++) {
            int64_t rlo = p * P8_ROWS, rhi = rlo + P8_ROWS < r1 ? rlo + P8_ROWS : r1;
            const float *bp = bias ? bias + rlo : NULL;
            for (int t = tc; t < tc + tn; t += P8_TILE_TOKENS) {
                int T = tc + tn - t < P8_TILE_TOKENS ? tc + tn - t : P8_TILE_TOKENS;
                const uint8_t *G = a->base + (size_t)(t / QE_ACT_TILE) * a->tile_bytes;
                fn(T, packed + (size_t)p * pb, k, G, t % QE_ACT_TILE, y + (int64_t)t * ldy + rlo, ldy, bp, accumulate,
                   (int)(rhi - rlo), QE_PF_STREAMED(t - tc, tn));
            }
        }
    }
}
