/* kvcache.c — reservation, writes, position shift and prefix copy of the f16 KV cache (see kvcache.h; the
 * layout itself is defined next to attention, in kernels/ops.h). */
#include "kvcache.h"

#include <math.h>
#include <string.h>
#include <sys/mman.h>

#include "base.h"
#include "kernels/ops.h"

int qe_kvcache_init(qe_kvcache *kv, int n_layer, int n_slots, int n_ctx, int n_head_kv, int head_dim, char *err) {
    memset(kv, 0, sizeof *kv);
    if (n_layer <= 0 || n_slots <= 0 || n_ctx <= 0 || n_head_kv <= 0 || head_dim <= 0 || head_dim > 512)
        return qe_errf(err, QE_EINVAL, "bad KV cache shape (%d layers, %d slots, %d context)", n_layer, n_slots, n_ctx);
    int64_t ctx_pad = ((int64_t)n_ctx + QE_KV_BLOCK - 1) / QE_KV_BLOCK * QE_KV_BLOCK;
    uint64_t per = 0;
    if (!qe_mul_ok((uint64_t)n_layer * n_slots, (uint64_t)ctx_pad * n_head_kv * head_dim * sizeof(uint16_t), &per) ||
        per == 0)
        return qe_errf(err, QE_ERANGE, "KV cache size overflows (%d slots x %d context)", n_slots, n_ctx);
    void *k = mmap(NULL, per, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (k == MAP_FAILED) return qe_errf(err, QE_ENOMEM, "cannot reserve %.0f MB for the KV cache", per / 1e6);
    void *v = mmap(NULL, per, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (v == MAP_FAILED) { munmap(k, per); return qe_errf(err, QE_ENOMEM, "cannot reserve %.0f MB for the KV cache", per / 1e6); }
    *kv = (qe_kvcache){.n_layer = n_layer, .n_slots = n_slots, .n_ctx = n_ctx, .n_head_kv = n_head_kv,
                       .head_dim = head_dim, .head_stride = ctx_pad * head_dim, .k = k, .v = v, .bytes = 2 * per};
    return QE_OK;
}

void qe_kvcache_free(qe_kvcache *kv) {
    if (kv->k) munmap(kv->k, kv->bytes / 2);
    if (kv->v) munmap(kv->v, kv->bytes / 2);
    memset(kv, 0, sizeof *kv);
}

/* One key (head_dim values) into its column of a 16-key block. */
static void put_key(uint16_t *K, int64_t hs, int hd, int hk, int pos, const uint16_t *bits) {
    uint16_t *dst = K + qe_kv_key_index(hs, hd, hk, pos, 0);
    for (int d = 0; d < hd; d++) dst[d * QE_KV_BLOCK] = bits[d];
}

void qe_kvcache_store(qe_kvcache *kv, int slot, int layer, int pos, const float *k, const float *v) {
    const int hd = kv->head_dim;
    const int64_t hs = kv->head_stride;
    uint16_t *K = qe_kv_k(kv, slot, layer), *V = qe_kv_v(kv, slot, layer), bits[512];
    for (int hk = 0; hk < kv->n_head_kv; hk++) {
        qe_f32_to_f16_row(k + (int64_t)hk * hd, bits, hd);
        put_key(K, hs, hd, hk, pos, bits);
        qe_f32_to_f16_row(v + (int64_t)hk * hd, V + qe_kv_value_index(hs, hd, hk, pos, 0), hd);
    }
}

void qe_kvcache_load_keys(const qe_kvcache *kv, int slot, int layer, int pos, float *k) {
    const uint16_t *K = qe_kv_k(kv, slot, layer);
    for (int hk = 0; hk < kv->n_head_kv; hk++)
        for (int d = 0; d < kv->head_dim; d++)
            k[hk * kv->head_dim + d] = qe_fp16_to_fp32(K[qe_kv_key_index(kv->head_stride, kv->head_dim, hk, pos, d)]);
}

void qe_kvcache_remove(qe_kvcache *kv, int slot, int p0, int n_drop, int n_used, float rope_base) {
    if (n_drop <= 0 || p0 + n_drop > n_used) return;
    const int n_move = n_used - p0 - n_drop, hd = kv->head_dim, half = hd / 2;
    const int64_t hs = kv->head_stride;
    /* cos/sin of -n_drop * theta_i for each pair i, computed in double once */
    float c[256], s[256];
    for (int i = 0; i < half && i < 256; i++) {
        double theta = pow((double)rope_base, -2.0 * i / hd);
        c[i] = (float)cos(-(double)n_drop * theta);
        s[i] = (float)sin(-(double)n_drop * theta);
    }
    for (int l = 0; l < kv->n_layer; l++) {
        uint16_t *K = qe_kv_k(kv, slot, l), *V = qe_kv_v(kv, slot, l);
        for (int hk = 0; hk < kv->n_head_kv; hk++) {
            uint16_t *vh = V + qe_kv_value_index(hs, hd, hk, 0, 0);
            memmove(vh + (size_t)p0 * hd, vh + (size_t)(p0 + n_drop) * hd, (size_t)n_move * hd * sizeof(uint16_t));
            /* ascending: a position is written only after every position read from it (they lie n_drop above) */
            for (int p = 0; p < n_move; p++) {
                uint16_t src[512], dst[512];
                const uint16_t *from = K + qe_kv_key_index(hs, hd, hk, p0 + n_drop + p, 0);
                for (int d = 0; d < hd; d++) src[d] = from[d * QE_KV_BLOCK];
                for (int i = 0; i < half; i++) {
                    float x0 = qe_fp16_to_fp32(src[i]), x1 = qe_fp16_to_fp32(src[i + half]);
                    dst[i] = qe_fp32_to_fp16(x0 * c[i] - x1 * s[i]);
                    dst[i + half] = qe_fp32_to_fp16(x0 * s[i] + x1 * c[i]);
                }
                put_key(K, hs, hd, hk, p0 + p, dst);
            }
        }
    }
}

void qe_kvcache_copy_prefix(qe_kvcache *kv, int from, int to, int n) {
    if (from == to || n <= 0) return;
    const int hd = kv->head_dim, full = n / QE_KV_BLOCK * QE_KV_BLOCK, rest = n - full;
    const int64_t hs = kv->head_stride;
    for (int l = 0; l < kv->n_layer; l++) {
        const uint16_t *Kf = qe_kv_k(kv, from, l), *Vf = qe_kv_v(kv, from, l);
        uint16_t *Kt = qe_kv_k(kv, to, l), *Vt = qe_kv_v(kv, to, l);
        for (int hk = 0; hk < kv->n_head_kv; hk++) {
            int64_t k0 = qe_kv_key_index(hs, hd, hk, 0, 0), v0 = qe_kv_value_index(hs, hd, hk, 0, 0);
            memcpy(Kt + k0, Kf + k0, (size_t)full * hd * sizeof(uint16_t));
            /* the last, partial block: only its first `rest` keys, so the copy writes exactly positions [0, n) */
            int64_t kb = qe_kv_key_index(hs, hd, hk, full, 0);
            for (int d = 0; d < hd && rest; d++) memcpy(Kt + kb + d * QE_KV_BLOCK, Kf + kb + d * QE_KV_BLOCK, (size_t)rest * sizeof(uint16_t));
            memcpy(Vt + v0, Vf + v0, (size_t)n * hd * sizeof(uint16_t));
        }
    }
}
