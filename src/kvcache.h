/* kvcache.h — the f16 key/value cache of every slot, and the operations the scheduler needs on it.
 *
 * Layout: for each slot and layer, K and V are [n_ctx][kv_dim] fp16 rows (kv_dim = n_head_kv * head_dim), so a
 * slot's layer is one contiguous block that attention streams through. The whole cache is reserved with mmap
 * (MAP_NORESERVE): pages become resident only when a position is written, so a server with 4 slots of 4k
 * context costs memory for the tokens it actually holds. Only the engine thread touches it. */
#pragma once
#include <stdint.h>

typedef struct {
    int n_layer, n_slots, n_ctx, kv_dim, head_dim;
    uint16_t *k, *v;     /* owned mapping */
    uint64_t bytes;      /* reserved (not resident) bytes of k + v */
} qe_kvcache;

int qe_kvcache_init(qe_kvcache *kv, int n_layer, int n_slots, int n_ctx, int n_head_kv, int head_dim, char *err);
void qe_kvcache_free(qe_kvcache *kv);

/* Rows of one slot and layer: [n_ctx][kv_dim]. */
static inline uint16_t *qe_kv_k(const qe_kvcache *kv, int slot, int layer) {
    return kv->k + ((uint64_t)slot * kv->n_layer + layer) * (uint64_t)kv->n_ctx * kv->kv_dim;
}
static inline uint16_t *qe_kv_v(const qe_kvcache *kv, int slot, int layer) {
    return kv->v + ((uint64_t)slot * kv->n_layer + layer) * (uint64_t)kv->n_ctx * kv->kv_dim;
}

/* Removes positions [p0, p0 + n_drop) of a slot holding n_used positions: the tail [p0 + n_drop, n_used) moves down
 * by n_drop and its keys are re-rotated by -n_drop positions (RoPE is a rotation, so R(pos - d) = R(-d) R(pos)).
 * Values do not depend on position and are only moved. */
void qe_kvcache_remove(qe_kvcache *kv, int slot, int p0, int n_drop, int n_used, float rope_base);

/* Copies positions [0, n) of slot `from` to slot `to` (a new request shares a prefix cached in a busy slot). */
void qe_kvcache_copy_prefix(qe_kvcache *kv, int from, int to, int n);
