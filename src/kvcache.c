/* kvcache.c — reservation, position shift and prefix copy of the f16 KV cache (see kvcache.h). */
#include "kvcache.h"

#include <math.h>
#include <string.h>
#include <sys/mman.h>

#include "base.h"

int qe_kvcache_init(qe_kvcache *kv, int n_layer, int n_slots, int n_ctx, int n_head_kv, int head_dim, char *err) {
    memset(kv, 0, sizeof *kv);
    uint64_t per = 0;
    if (!qe_mul_ok((uint64_t)n_layer * n_slots, (uint64_t)n_ctx * n_head_kv * head_dim * sizeof(uint16_t), &per) ||
        per == 0)
        return qe_errf(err, QE_ERANGE, "KV cache size overflows (%d slots x %d context)", n_slots, n_ctx);
    void *k = mmap(NULL, per, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (k == MAP_FAILED) return qe_errf(err, QE_ENOMEM, "cannot reserve %.0f MB for the KV cache", per / 1e6);
    void *v = mmap(NULL, per, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (v == MAP_FAILED) { munmap(k, per); return qe_errf(err, QE_ENOMEM, "cannot reserve %.0f MB for the KV cache", per / 1e6); }
    *kv = (qe_kvcache){.n_layer = n_layer, .n_slots = n_slots, .n_ctx = n_ctx, .kv_dim = n_head_kv * head_dim,
                       .head_dim = head_dim, .k = k, .v = v, .bytes = 2 * per};
    return QE_OK;
}

void qe_kvcache_free(qe_kvcache *kv) {
    if (kv->k) munmap(kv->k, kv->bytes / 2);
    if (kv->v) munmap(kv->v, kv->bytes / 2);
    memset(kv, 0, sizeof *kv);
}

void qe_kvcache_remove(qe_kvcache *kv, int slot, int p0, int n_drop, int n_used, float rope_base) {
    if (n_drop <= 0 || p0 + n_drop > n_used) return;
    int n_move = n_used - p0 - n_drop, hd = kv->head_dim, half = hd / 2, n_heads = kv->kv_dim / hd;
    /* cos/sin of -n_drop * theta_i for each pair i, computed in double once */
    float c[256], s[256];
    for (int i = 0; i < half && i < 256; i++) {
        double theta = pow((double)rope_base, -2.0 * i / hd);
        c[i] = (float)cos(-(double)n_drop * theta);
        s[i] = (float)sin(-(double)n_drop * theta);
    }
    for (int l = 0; l < kv->n_layer; l++) {
        uint16_t *K = qe_kv_k(kv, slot, l), *V = qe_kv_v(kv, slot, l);
        size_t row = (size_t)kv->kv_dim;
        memmove(V + (size_t)p0 * row, V + (size_t)(p0 + n_drop) * row, (size_t)n_move * row * sizeof(uint16_t));
        for (int p = 0; p < n_move; p++) {
            const uint16_t *src = K + (size_t)(p0 + n_drop + p) * row;
            uint16_t *dst = K + (size_t)(p0 + p) * row;
            for (int h = 0; h < n_heads; h++) {
                for (int i = 0; i < half; i++) {
                    float x0 = qe_fp16_to_fp32(src[h * hd + i]), x1 = qe_fp16_to_fp32(src[h * hd + i + half]);
                    dst[h * hd + i] = qe_fp32_to_fp16(x0 * c[i] - x1 * s[i]);
                    dst[h * hd + i + half] = qe_fp32_to_fp16(x0 * s[i] + x1 * c[i]);
                }
            }
        }
    }
}

void qe_kvcache_copy_prefix(qe_kvcache *kv, int from, int to, int n) {
    if (from == to || n <= 0) return;
    size_t bytes = (size_t)n * kv->kv_dim * sizeof(uint16_t);
    for (int l = 0; l < kv->n_layer; l++) {
        memcpy(qe_kv_k(kv, to, l), qe_kv_k(kv, from, l), bytes);
        memcpy(qe_kv_v(kv, to, l), qe_kv_v(kv, from, l), bytes);
    }
}
